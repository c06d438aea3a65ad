//! The one place where a failure becomes an HTTP answer:
//! status from the domain code table, `{"error":{"code","message"}}` body.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portunus_domain::{DomainError, ErrorCode, ErrorEnvelope};

#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError(DomainError::new(code, message))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(ErrorEnvelope::from(&self.0))).into_response();
        // The code travels in the extensions too, for whoever logs or counts.
        resp.extensions_mut().insert(self.0.code);
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
