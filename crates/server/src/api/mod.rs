//! The operator HTTP API (`/v1`). Public routes are listed here; every other
//! route passes the authentication layer.

mod audit;
mod auth;
mod clients;
mod credentials;
pub mod error;
mod extract;
mod grants;
pub mod openapi;
mod overview;
pub mod owner_caps;
mod push_key;
mod quotas;
#[cfg(test)]
mod route_table;
mod rule_patch;
mod rule_reads;
mod rule_stats;
pub mod rules;
mod schemas;
mod session;
mod settings;
mod strict;
mod traffic;
mod users;
mod views;

use crate::metrics::FleetClient;
use crate::state::Shared;
use axum::extract::{DefaultBodyLimit, State};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Json, Router};
use error::{ApiError, ApiResult};
use portunus_domain::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/client-enrollments", post(clients::enroll))
        .route("/v1/clients", get(clients::list))
        .route(
            "/v1/clients/{id}",
            get(clients::get)
                .put(clients::set_address)
                .delete(clients::delete),
        )
        .route(
            "/v1/clients/{id}/name",
            axum::routing::patch(clients::rename),
        )
        .route("/v1/clients/{id}/enrollment", post(clients::re_enroll))
        .route("/v1/clients/{id}/revoke", post(clients::revoke))
        .route("/v1/rules", post(rules::create).get(rule_reads::list))
        .route(
            "/v1/rules/{id}",
            get(rule_reads::get)
                .put(rules::update)
                .patch(rule_patch::patch)
                .delete(rules::delete),
        )
        .route("/v1/rules/{id}/stats", get(rule_stats::stats))
        .route("/v1/rules/{id}/stats/stream", get(rule_stats::stats_stream))
        .route("/v1/metrics", get(metrics_mirror))
        .route("/v1/overview", get(overview::get))
        .route("/v1/clients/{id}/owners", get(owner_caps::list_owners))
        .route(
            "/v1/clients/{id}/owners/{owner}/rate-limit",
            get(owner_caps::get)
                .put(owner_caps::put)
                .delete(owner_caps::delete),
        )
        .route("/v1/traffic", get(traffic::get))
        .route("/v1/quotas", get(quotas::list))
        .route(
            "/v1/clients/{id}/owners/{owner}/quota",
            get(quotas::get).put(quotas::put).delete(quotas::delete),
        )
        .route(
            "/v1/clients/{id}/owners/{owner}/quota/clear-usage",
            post(quotas::clear_usage),
        )
        .route(
            "/v1/settings/advertised-endpoint",
            get(settings::get_advertised_endpoint).put(settings::put_advertised_endpoint),
        )
        .route("/v1/auth/logout", post(session::logout))
        .route("/v1/users/me", get(users::me))
        .route("/v1/users/me/password", post(users::change_own_password))
        .route("/v1/users", post(users::create).get(users::list))
        .route(
            "/v1/users/{id}",
            get(users::get).patch(users::update).delete(users::remove),
        )
        .route("/v1/users/{id}/password", post(users::reset_password))
        .route(
            "/v1/users/{id}/credentials",
            post(credentials::issue).get(credentials::list),
        )
        .route(
            "/v1/users/{id}/credentials/{cid}",
            axum::routing::delete(credentials::revoke),
        )
        .route(
            "/v1/users/{id}/credentials/{cid}/rotate",
            post(credentials::rotate),
        )
        .route("/v1/grants", post(grants::create).get(grants::list))
        .route("/v1/grants/{id}", axum::routing::delete(grants::revoke))
        .route("/v1/audit", get(audit::list))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/v1/auth/status", get(auth_status))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/auth/onboarding", post(session::onboarding))
        .route("/v1/auth/login", post(session::login))
        .merge(protected)
        // After every route, since it applies to the routes present.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(from_fn_with_state(state.clone(), crate::audit::layer))
        .with_state(state)
}

/// Whether the store still needs its first superadmin.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthStatus {
    /// True until a superadmin exists: the console then offers onboarding.
    pub onboarding_required: bool,
    /// The server's release, e.g. `0.1.0`.
    pub version: &'static str,
    /// The git commit it was built from, or `unknown`.
    pub commit: &'static str,
    /// The build date (UTC, `YYYY-MM-DD`).
    pub build_date: &'static str,
    /// The control-stream wire version it speaks.
    pub wire_version: u32,
}

/// Whether onboarding is still open; the one call a console makes first.
#[utoipa::path(get, path = "/v1/auth/status", tag = "auth", operation_id = "getAuthStatus",
    responses((status = 200, description = "The status.", body = AuthStatus)))]
async fn auth_status(State(state): State<Shared>) -> ApiResult<Json<AuthStatus>> {
    let bootstrapped = state.is_bootstrapped()
        || state
            .store
            .call(|c| crate::store::users::has_active_superadmin(c))
            .await?;
    // Public like the rest of this route: the console shows it before
    // sign-in, and a monitor can tell which build answers without a token.
    Ok(Json(AuthStatus {
        onboarding_required: !bootstrapped,
        version: portunus_about::RELEASE,
        commit: portunus_about::COMMIT,
        build_date: portunus_about::BUILD_DATE,
        wire_version: portunus_proto::WIRE_VERSION,
    }))
}

/// The Prometheus exposition of `/metrics`, for superadmins who reach only
/// the operator listener.
#[utoipa::path(get, path = "/v1/metrics", tag = "overview", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text format.",
        content_type = "text/plain", body = String)))]
async fn metrics_mirror(State(state): State<Shared>) -> ApiResult<String> {
    Ok(scrape(&state).await)
}

/// The exposition, with the per-client series taken from the store and the
/// live streams now. When the store cannot be read the per-client series
/// are left out rather than served stale (they could hide an offline
/// client) and `portunus_store_up` says so; the rest still answers.
async fn scrape(state: &Shared) -> String {
    let counts = match state
        .store
        .call(|c| crate::store::clients::rule_counts(c))
        .await
    {
        Ok(counts) => {
            state.metrics.store_up.set(1);
            counts
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics scrape without the store");
            state.metrics.store_up.set(0);
            Vec::new()
        }
    };
    let fleet: Vec<FleetClient> = counts
        .into_iter()
        .map(|c| FleetClient {
            connected: state.registry.info(&c.id).is_some(),
            rules: [
                ("pending", c.pending),
                ("active", c.active),
                ("failed", c.failed),
                ("disabled", c.disabled),
            ],
            name: c.name,
        })
        .collect();
    state.metrics.encode_with_fleet(&fleet)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method; Allow lists those it takes",
    )
}

/// The Prometheus listener: `GET /metrics`, no authentication.
pub fn metrics_router(state: Shared) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    scrape(&s).await,
                )
            }),
        )
        .with_state(state)
}
