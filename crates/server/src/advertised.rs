//! The advertised endpoint: the `host:port` clients dial, embedded in every
//! enrollment URI. Tiers, first that yields: operator override (stored),
//! seed (flag, env or `server.toml`), loopback on the control port.

use portunus_domain::endpoint::Endpoint;
use portunus_domain::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Override,
    Seed,
    Loopback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct EndpointResolver {
    seed: Option<String>,
    control_port: u16,
}

impl EndpointResolver {
    pub fn new(seed: Option<String>, control_port: u16) -> EndpointResolver {
        EndpointResolver { seed, control_port }
    }

    /// Explicit tiers fail closed: a malformed override or seed is an error,
    /// never a silent fallback to loopback.
    pub fn resolve(&self, override_value: Option<&str>) -> Result<Resolved, DomainError> {
        if let Some(v) = override_value.filter(|v| !v.is_empty()) {
            let e = Endpoint::parse(v)?;
            return Ok(Resolved {
                endpoint: e.to_string(),
                source: Source::Override,
            });
        }
        if let Some(v) = self.seed.as_deref().filter(|v| !v.is_empty()) {
            let e = Endpoint::parse(v)?;
            return Ok(Resolved {
                endpoint: e.to_string(),
                source: Source::Seed,
            });
        }
        Ok(Resolved {
            endpoint: format!("127.0.0.1:{}", self.control_port),
            source: Source::Loopback,
        })
    }
}
