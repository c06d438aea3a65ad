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

/// JSON for bodies that carry a password or token: a rejection names the
/// expected shape but never echoes the parser's view of the input.
pub struct SecretJson<T>(pub T);

impl<S, T> FromRequest<S> for SecretJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(SecretJson(v)),
            Err(e) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "request body: not the expected JSON object (HTTP {})",
                    e.status().as_u16()
                ),
            )),
        }
    }
}

/// The peer address of the request, for per-source throttling. Without
/// connection info (in-process tests) it is the unspecified address.
pub struct SourceIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for SourceIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        Ok(SourceIp(ip))
    }
}
