//! The operator commands' HTTP client: finds the server, sends the bearer,
//! and turns error envelopes back into domain errors (and exit codes).

use crate::config::{FileConfig, DEFAULT_OPERATOR_HTTP_LISTEN};
use portunus_domain::{DomainError, ErrorCode, ErrorEnvelope};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::Path;

pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// `--server-url`/`PORTUNUS_SERVER_URL`, else `operator_http_listen` from
/// the data dir's server.toml, else the default listener.
pub fn server_url(explicit: Option<&str>, data_dir: &Path) -> String {
    if let Some(u) = explicit.filter(|u| !u.is_empty()) {
        return u.trim_end_matches('/').to_string();
    }
    let listen = FileConfig::load(data_dir)
        .ok()
        .and_then(|c| c.operator_http_listen)
        .unwrap_or_else(|| DEFAULT_OPERATOR_HTTP_LISTEN.parse().expect("valid default"));
    format!("http://{}", dialable(listen))
}

/// A wildcard bind address is dialled on loopback.
fn dialable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v) if v.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

pub fn operator_token() -> Result<String, DomainError> {
    std::env::var("PORTUNUS_OPERATOR_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::TokenMissing,
                "PORTUNUS_OPERATOR_TOKEN is not set; export an operator API token",
            )
        })
}

impl ApiClient {
    pub fn new(base: String, token: String) -> ApiClient {
        ApiClient {
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, DomainError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            DomainError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "cannot reach portunus-server at {}: {}",
                    self.base,
                    root_cause(&e)
                ),
            )
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            DomainError::new(
                ErrorCode::ServerUnreachable,
                format!("reading the answer failed: {e}"),
            )
        })?;
        if status.is_success() {
            let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(body).map_err(|e| {
                DomainError::new(
                    ErrorCode::Internal,
                    format!("unexpected answer from server: {e}"),
                )
            });
        }
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(env) => Err(DomainError::new(
                ErrorCode::parse(&env.error.code).unwrap_or(ErrorCode::Internal),
                env.error.message,
            )),
            Err(_) => Err(DomainError::new(
                ErrorCode::Internal,
                format!("server answered HTTP {status}"),
            )),
        }
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_dialled_on_loopback() {
        assert_eq!(
            dialable("0.0.0.0:7080".parse().unwrap()).to_string(),
            "127.0.0.1:7080"
        );
        assert_eq!(
            dialable("[::]:7080".parse().unwrap()).to_string(),
            "[::1]:7080"
        );
        assert_eq!(
            dialable("10.1.2.3:1".parse().unwrap()).to_string(),
            "10.1.2.3:1"
        );
        assert_eq!(
            server_url(Some("http://x:1/"), Path::new("/nonexistent")),
            "http://x:1"
        );
        assert_eq!(
            server_url(None, Path::new("/nonexistent")),
            "http://127.0.0.1:7080"
        );
    }
}
