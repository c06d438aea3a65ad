//! The operator commands' HTTP client: finds the server, sends the bearer,
//! and turns error envelopes back into domain errors (and exit codes).

use crate::config::{FileConfig, DEFAULT_OPERATOR_HTTP_LISTEN};
use portunus_domain::{DomainError, ErrorCode, ErrorEnvelope};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

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
        self.attempt(method, path, body.as_ref(), None)
            .await
            .map_err(Failure::into_error)
    }

    /// Sends a write with an `Idempotency-Key`; if the answer is lost after
    /// the request may have reached the server (a dropped connection, a
    /// server restart), sends it again with the same key until `patience`
    /// runs out. The server stores the write at most once.
    pub async fn call_idempotent<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: serde_json::Value,
        key: &str,
        patience: Duration,
    ) -> Result<T, DomainError> {
        let give_up = Instant::now() + patience;
        let mut pause = Duration::from_millis(100);
        let mut sent = false;
        loop {
            match self
                .attempt(method.clone(), path, Some(&body), Some(key))
                .await
            {
                Ok(v) => return Ok(v),
                Err(Failure::Answered(e)) => return Err(e),
                // Nothing was ever sent: no doubt to resolve.
                Err(Failure::Unsent(e)) if !sent => return Err(e),
                Err(Failure::Unsent(e) | Failure::Lost(e)) => {
                    sent = true;
                    if Instant::now() + pause > give_up {
                        return Err(DomainError::new(
                            e.code,
                            format!(
                                "{}; the write may have been stored: run the same command \
                                 with --idempotency-key {key} to retry it safely",
                                e.message
                            ),
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        key: Option<&str>,
    ) -> Result<T, Failure> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let unreachable = |e: &reqwest::Error| {
            DomainError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "cannot reach portunus-server at {}: {}",
                    self.base,
                    root_cause(e)
                ),
            )
        };
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                Failure::Unsent(unreachable(&e))
            } else {
                Failure::Lost(unreachable(&e))
            }
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            Failure::Lost(DomainError::new(
                ErrorCode::ServerUnreachable,
                format!("reading the answer failed: {e}"),
            ))
        })?;
        if status.is_success() {
            let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(body).map_err(|e| {
                Failure::Answered(DomainError::new(
                    ErrorCode::Internal,
                    format!("unexpected answer from server: {e}"),
                ))
            });
        }
        Err(Failure::Answered(
            match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
                Ok(env) => DomainError::new(
                    ErrorCode::parse(&env.error.code).unwrap_or(ErrorCode::Internal),
                    env.error.message,
                ),
                Err(_) => DomainError::new(
                    ErrorCode::Internal,
                    format!("server answered HTTP {status}"),
                ),
            },
        ))
    }
}

/// How a call failed, as far as a retry is concerned.
enum Failure {
    /// The connection was never made.
    Unsent(DomainError),
    /// The request may have reached the server but no answer came back.
    Lost(DomainError),
    Answered(DomainError),
}

impl Failure {
    fn into_error(self) -> DomainError {
        match self {
            Failure::Unsent(e) | Failure::Lost(e) | Failure::Answered(e) => e,
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
