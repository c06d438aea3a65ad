//! Authentication: the one layer every protected `/v1` route passes. It
//! turns a bearer token into an `Actor` in the request extensions.

use super::error::ApiError;
use crate::secrets::hash_token;
use crate::state::Shared;
use crate::store::users;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portunus_domain::ErrorCode;

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn authenticate(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    if !state.is_bootstrapped() {
        let has = state.store.call(|c| users::has_active_superadmin(c)).await;
        match has {
            Ok(true) => state.mark_bootstrapped(),
            Ok(false) => {
                return ApiError::new(
                    ErrorCode::BootstrapRequired,
                    "no superadmin exists yet; complete onboarding or run bootstrap-superadmin",
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let Some(token) = bearer(&req).filter(|t| !t.is_empty()) else {
        return ApiError::new(ErrorCode::Unauthenticated, "missing bearer token").into_response();
    };
    let hash = hash_token(token);
    match state
        .store
        .call(move |c| users::actor_for_token(c, &hash))
        .await
    {
        Ok(Some(actor)) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Ok(None) => ApiError::new(
            ErrorCode::Unauthenticated,
            "invalid or revoked bearer token",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
