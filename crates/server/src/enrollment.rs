//! Creating enrollments: shared by the HTTP API and the offline CLI path.

use crate::secrets::{hash_token, new_token};
use crate::store::Connection;
use crate::store::{clients, enrollments, write_tx, StoreResult};
use portunus_domain::names::{validate_bare_host, validate_client_name};
use portunus_domain::{DomainError, ErrorCode};
use serde::Serialize;

pub const DEFAULT_TTL_SECS: i64 = 600;
pub const MAX_TTL_SECS: i64 = 86_400;

/// A one-time enrollment: the URI to redeem and the command that does it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub client_id: String,
    #[schema(example = "edge-01")]
    pub client_name: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(example = "portunus://203.0.113.7:7443/enroll?pin=sha256:3f2a…&code=…")]
    pub uri: String,
    #[schema(
        example = "portunus-client enroll 'portunus://203.0.113.7:7443/enroll?pin=sha256:3f2a…&code=…'"
    )]
    pub command: String,
}

pub fn validate_ttl(ttl: i64) -> Result<(), DomainError> {
    if (1..=MAX_TTL_SECS).contains(&ttl) {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidTtl,
            "ttl_secs",
            format!("{ttl} is not in 1-{MAX_TTL_SECS}"),
        ))
    }
}

pub fn enroll_uri(endpoint: &str, pin: &str, code: &str) -> String {
    format!("portunus://{endpoint}/enroll?pin=sha256:{pin}&code={code}")
}

/// Checks the operator's input, so a bad request is reported as such
/// before the advertised endpoint is resolved.
pub fn validate_request(
    name: &str,
    address: Option<&str>,
    ttl_secs: Option<i64>,
) -> Result<(), DomainError> {
    validate_client_name(name)?;
    if let Some(a) = address {
        validate_bare_host("address", a)?;
    }
    validate_ttl(ttl_secs.unwrap_or(DEFAULT_TTL_SECS))
}

/// Creates (or reuses) the client and a fresh enrollment that supersedes
/// its unredeemed ones. `endpoint` is the advertised endpoint resolved now;
/// it is stored and replayed verbatim at redeem.
pub fn create(
    conn: &mut Connection,
    name: &str,
    address: Option<&str>,
    ttl_secs: Option<i64>,
    endpoint: &str,
    pin: &str,
) -> StoreResult<Created> {
    validate_request(name, address, ttl_secs)?;
    let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    let code = new_token();
    let (client, enrollment) = write_tx(conn, |tx| {
        let client = clients::ensure(tx, name, address)?;
        let e = enrollments::create(tx, &client.id, &hash_token(&code), Some(endpoint), ttl)?;
        Ok((client, e))
    })?;
    let uri = enroll_uri(endpoint, pin, &code);
    Ok(Created {
        client_id: client.id,
        client_name: client.name,
        expires_at: crate::timefmt::rfc3339(enrollment.expires_at),
        command: format!("portunus-client enroll '{uri}'"),
        uri,
    })
}
