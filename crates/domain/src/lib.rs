#![forbid(unsafe_code)]
//! Pure domain of Portunus. No I/O lives here: every function is a decision
//! over values, so each is tested with tables.

pub mod codes;
pub mod endpoint;
pub mod error;
pub mod names;
pub mod routes;
pub mod rule;
pub mod source_filter;
pub mod target_syntax;

pub use codes::ErrorCode;
pub use error::{DomainError, ErrorBody, ErrorEnvelope};

/// A fresh, sortable identifier (ULID) for clients, rules, grants and the like.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}
