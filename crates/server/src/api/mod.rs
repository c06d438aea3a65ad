//! The operator HTTP API (`/v1`). Public routes are listed here; every other
//! route passes the authentication layer.

mod audit;
mod auth;
mod clients;
mod credentials;
pub mod error;
mod extract;
mod grants;
pub mod owner_caps;
#[cfg(test)]
mod route_table;
pub mod rules;
mod session;
mod settings;
mod users;
mod views;

use crate::authz::require_superadmin;
use crate::state::Shared;
use crate::store::users::Actor;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use error::{ApiError, ApiResult};
use portunus_domain::ErrorCode;

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
        .route("/v1/rules", post(rules::create).get(rules::list))
        .route(
            "/v1/rules/{id}",
            get(rules::get).put(rules::update).delete(rules::delete),
        )
        .route("/v1/rules/{id}/stats", get(rules::stats))
        .route("/v1/metrics", get(metrics_mirror))
        .route("/v1/clients/{id}/owners", get(owner_caps::list_owners))
        .route(
            "/v1/clients/{id}/owners/{owner}/rate-limit",
            get(owner_caps::get)
                .put(owner_caps::put)
                .delete(owner_caps::delete),
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
        .route("/v1/auth/onboarding", post(session::onboarding))
        .route("/v1/auth/login", post(session::login))
        .merge(protected)
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), crate::audit::layer))
        .with_state(state)
}

/// Every `/v1` route as `(method, path, public)`. Public routes need no
/// credentials; every other one answers 401 without them (503 before the
/// first superadmin exists). A unit test holds the router to this list,
/// and the process-level access tests walk it.
#[cfg_attr(not(test), allow(dead_code))] // Read by the route-table test only.
pub const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/v1/auth/status", true),
    ("POST", "/v1/auth/onboarding", true),
    ("POST", "/v1/auth/login", true),
    ("POST", "/v1/auth/logout", false),
    ("GET", "/v1/users/me", false),
    ("POST", "/v1/users/me/password", false),
    ("POST", "/v1/users", false),
    ("GET", "/v1/users", false),
    ("GET", "/v1/users/{id}", false),
    ("PATCH", "/v1/users/{id}", false),
    ("DELETE", "/v1/users/{id}", false),
    ("POST", "/v1/users/{id}/password", false),
    ("POST", "/v1/users/{id}/credentials", false),
    ("GET", "/v1/users/{id}/credentials", false),
    ("DELETE", "/v1/users/{id}/credentials/{cid}", false),
    ("POST", "/v1/users/{id}/credentials/{cid}/rotate", false),
    ("POST", "/v1/grants", false),
    ("GET", "/v1/grants", false),
    ("DELETE", "/v1/grants/{id}", false),
    ("GET", "/v1/audit", false),
    ("POST", "/v1/client-enrollments", false),
    ("GET", "/v1/clients", false),
    ("GET", "/v1/clients/{id}", false),
    ("PUT", "/v1/clients/{id}", false),
    ("DELETE", "/v1/clients/{id}", false),
    ("PATCH", "/v1/clients/{id}/name", false),
    ("POST", "/v1/clients/{id}/enrollment", false),
    ("POST", "/v1/clients/{id}/revoke", false),
    ("POST", "/v1/rules", false),
    ("GET", "/v1/rules", false),
    ("GET", "/v1/rules/{id}", false),
    ("PUT", "/v1/rules/{id}", false),
    ("DELETE", "/v1/rules/{id}", false),
    ("GET", "/v1/rules/{id}/stats", false),
    ("GET", "/v1/metrics", false),
    ("GET", "/v1/clients/{id}/owners", false),
    ("GET", "/v1/clients/{id}/owners/{owner}/rate-limit", false),
    ("PUT", "/v1/clients/{id}/owners/{owner}/rate-limit", false),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        false,
    ),
    ("GET", "/v1/settings/advertised-endpoint", false),
    ("PUT", "/v1/settings/advertised-endpoint", false),
];

async fn auth_status(State(state): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    let bootstrapped = state.is_bootstrapped()
        || state
            .store
            .call(|c| crate::store::users::has_active_superadmin(c))
            .await?;
    Ok(Json(
        serde_json::json!({ "onboarding_required": !bootstrapped }),
    ))
}

async fn metrics_mirror(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<String> {
    require_superadmin(&actor)?;
    Ok(state.metrics.encode())
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
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
                    s.metrics.encode(),
                )
            }),
        )
        .with_state(state)
}
