//! The operator HTTP API (`/v1`). Public routes are listed here; every other
//! route passes the authentication layer.

mod auth;
mod clients;
pub mod error;
mod extract;
pub mod rules;
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
        .route("/v1/rules/{id}", get(rules::get).delete(rules::delete))
        .route("/v1/rules/{id}/stats", get(rules::stats))
        .route("/v1/metrics", get(metrics_mirror))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/v1/auth/status", get(auth_status))
        .merge(protected)
        .fallback(not_found)
        .with_state(state)
}

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
