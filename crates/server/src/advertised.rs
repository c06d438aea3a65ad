//! The advertised endpoint: the `host:port` clients dial, embedded in every
//! enrollment URI and replayed into the credential bundle at redeem.
//!
//! Tiers, first that yields:
//!
//! 1. the operator override stored in the `settings` table;
//! 2. the seed: `--advertised-endpoint`, `PORTUNUS_ADVERTISED_ENDPOINT` or
//!    `advertised_endpoint` in server.toml;
//! 3. derived from the `Host` header of an HTTP enrollment request: its
//!    host joined with the control port;
//! 4. loopback, `127.0.0.1:<control port>`.
//!
//! Tiers 1 and 2 are explicit configuration and fail closed: a malformed
//! value is `endpoint_invalid`, a host the served certificate's SANs do not
//! cover is `endpoint_not_in_cert_san`, and neither ever falls back to a
//! later tier. Tier 3 is a guess and falls through when it cannot produce a
//! covered endpoint.

use crate::san::SanSet;
use portunus_domain::endpoint::Endpoint;
use portunus_domain::{DomainError, ErrorCode};
use serde::Serialize;
use std::sync::Arc;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Override,
    Seed,
    Derived,
    Loopback,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Override => "override",
            Source::Seed => "seed",
            Source::Derived => "derived",
            Source::Loopback => "loopback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint: String,
    pub source: Source,
}

/// Everything one resolution depends on. Resolving does no I/O.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub override_value: Option<&'a str>,
    pub seed: Option<&'a str>,
    /// The `Host` of the HTTP request that creates the enrollment; `None`
    /// everywhere else (redeem, offline commands, the settings API).
    pub host_header: Option<&'a str>,
    pub sans: &'a SanSet,
    pub control_port: u16,
}

const OVERRIDE_LABEL: &str = "advertised endpoint override";
const SEED_LABEL: &str =
    "advertised endpoint seed (--advertised-endpoint, PORTUNUS_ADVERTISED_ENDPOINT or server.toml)";

/// An empty value counts as unset, so `PORTUNUS_ADVERTISED_ENDPOINT=` does
/// not pin an endpoint.
fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.is_empty())
}

/// The first tier that yields, or the error of a broken explicit tier.
pub fn resolve(inputs: &Inputs) -> Result<Resolved, DomainError> {
    if let Some(v) = present(inputs.override_value) {
        let e = check(OVERRIDE_LABEL, v, inputs.sans)?;
        return Ok(Resolved {
            endpoint: e.to_string(),
            source: Source::Override,
        });
    }
    if let Some(v) = present(inputs.seed) {
        let e = check(SEED_LABEL, v, inputs.sans)?;
        return Ok(Resolved {
            endpoint: e.to_string(),
            source: Source::Seed,
        });
    }
    if let Some(e) = inputs
        .host_header
        .and_then(|h| derive(h, inputs.control_port, inputs.sans))
    {
        return Ok(Resolved {
            endpoint: e.to_string(),
            source: Source::Derived,
        });
    }
    Ok(Resolved {
        endpoint: format!("127.0.0.1:{}", inputs.control_port),
        source: Source::Loopback,
    })
}

/// Grammar first, then SAN coverage. `what` names the value in messages.
pub fn check(what: &str, value: &str, sans: &SanSet) -> Result<Endpoint, DomainError> {
    let endpoint = Endpoint::parse(value).map_err(|e| {
        let problem = e
            .message
            .strip_prefix("advertised_endpoint: ")
            .unwrap_or(&e.message);
        DomainError::field(e.code, what, problem)
    })?;
    if !sans.covers(&endpoint.host) {
        return Err(DomainError::field(
            ErrorCode::EndpointNotInCertSan,
            what,
            format!(
                "host {:?} of {value:?} is not covered by the server certificate's subject alternative names ({sans}); \
                 use a covered host or reissue the certificate",
                endpoint.host_str()
            ),
        ));
    }
    Ok(endpoint)
}

/// Tier 3: the request's host with any port dropped, joined with the
/// control port. `None` for IPv6 literals, malformed values and hosts the
/// certificate does not cover.
pub fn derive(host_header: &str, control_port: u16, sans: &SanSet) -> Option<Endpoint> {
    if host_header.contains('[') {
        return None;
    }
    let host = match host_header.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => host_header,
    };
    let endpoint = Endpoint::parse(&format!("{host}:{control_port}")).ok()?;
    sans.covers(&endpoint.host).then_some(endpoint)
}

/// What `GET /v1/settings/advertised-endpoint` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The operator's override, stored in the database.
    pub r#override: Option<String>,
    /// What new enrollments embed now; null when no tier yields a value.
    #[schema(example = "proxy.example.com:7443")]
    pub effective: Option<String>,
    /// Which tier `effective` came from.
    pub source: Option<Source>,
    /// Why `effective` is null; null otherwise.
    pub diagnostic: Option<String>,
}

/// The server's resolver: the seed, the served certificate's SANs and the
/// bound control port, fixed at startup. The override is read from the
/// store by each caller, inside its own transaction.
#[derive(Debug, Clone)]
pub struct EndpointResolver {
    seed: Option<String>,
    sans: Arc<SanSet>,
    control_port: u16,
}

impl EndpointResolver {
    pub fn new(seed: Option<String>, sans: SanSet, control_port: u16) -> EndpointResolver {
        EndpointResolver {
            seed,
            sans: Arc::new(sans),
            control_port,
        }
    }

    fn inputs<'a>(&'a self, override_value: Option<&'a str>, host: Option<&'a str>) -> Inputs<'a> {
        Inputs {
            override_value,
            seed: self.seed.as_deref(),
            host_header: host,
            sans: &self.sans,
            control_port: self.control_port,
        }
    }

    /// Resolution without a request host: redeem, offline enrollment,
    /// startup checks and the settings API.
    pub fn resolve(&self, override_value: Option<&str>) -> Result<Resolved, DomainError> {
        resolve(&self.inputs(override_value, None))
    }

    /// Resolution for an enrollment created over HTTP, with its `Host`.
    pub fn resolve_for_request(
        &self,
        override_value: Option<&str>,
        host_header: Option<&str>,
    ) -> Result<Resolved, DomainError> {
        resolve(&self.inputs(override_value, host_header))
    }

    /// Validates a new override: grammar, then SAN coverage.
    pub fn check_override(&self, value: &str) -> Result<Endpoint, DomainError> {
        check("advertised_endpoint", value, &self.sans)
    }

    pub fn report(&self, override_value: Option<String>) -> Report {
        match self.resolve(override_value.as_deref()) {
            Ok(r) => Report {
                r#override: override_value,
                effective: Some(r.endpoint),
                source: Some(r.source),
                diagnostic: None,
            },
            Err(e) => Report {
                r#override: override_value,
                effective: None,
                source: None,
                diagnostic: Some(e.to_string()),
            },
        }
    }

    /// Logs the endpoint new enrollments will advertise, or why there is
    /// none. The server keeps serving either way.
    pub fn log_startup(&self, override_value: Option<&str>) {
        match self.resolve(override_value) {
            Ok(r) => tracing::info!(
                endpoint = %r.endpoint,
                source = r.source.as_str(),
                san = %self.sans,
                "advertised endpoint"
            ),
            Err(e) => tracing::warn!(
                code = %e.code,
                diagnostic = %e.message,
                san = %self.sans,
                "the advertised endpoint cannot be resolved; enrollments fail until the override or seed is fixed"
            ),
        }
    }
}
