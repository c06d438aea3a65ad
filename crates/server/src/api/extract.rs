//! Extractors whose rejections use the stable error envelope.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use portunus_domain::ErrorCode;
use serde::de::DeserializeOwned;

/// `axum::Json`, answering `invalid_request` with the parser's reason.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiError::new(ErrorCode::InvalidRequest, json_reason(&e))),
        }
    }
}

fn json_reason(e: &JsonRejection) -> String {
    format!("request body: {}", e.body_text())
}

/// `axum::extract::Query` with the same envelope on failure.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::new(ErrorCode::InvalidRequest, query_reason(&e))),
        }
    }
}

fn query_reason(e: &QueryRejection) -> String {
    format!("query string: {}", e.body_text())
}
