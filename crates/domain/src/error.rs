//! The domain error and the JSON error envelope shared by the API and CLIs.

use crate::codes::ErrorCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A failure with a stable code and a human message that names the field
/// at fault. Messages never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A validation failure of one field: the message starts with the field.
    pub fn field(code: ErrorCode, field: &str, problem: impl fmt::Display) -> Self {
        Self::new(code, format!("{field}: {problem}"))
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// `{"error":{"code":"…","message":"…"}}`, the body of every API failure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code from the code table, e.g. `client_not_connected`.
    #[cfg_attr(feature = "openapi", schema(example = "rule_not_found"))]
    pub code: String,
    /// Human text; a validation failure starts with the field at fault.
    #[cfg_attr(feature = "openapi", schema(example = "no rule \"01J8X\""))]
    pub message: String,
}

impl From<&DomainError> for ErrorEnvelope {
    fn from(e: &DomainError) -> Self {
        ErrorEnvelope {
            error: ErrorBody {
                code: e.code.as_str().to_string(),
                message: e.message.clone(),
            },
        }
    }
}
