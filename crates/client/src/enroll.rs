//! `portunus-client enroll <URI>`: redeem a one-time code over pinned TLS and
//! store the credential bundle.
//!
//! Nothing here may print or log the enrollment code or the token.

use crate::bundle::{self, Bundle, Token, BUNDLE_VERSION};
use crate::enroll_uri::EnrollUri;
use crate::tls;
use portunus_domain::endpoint::Endpoint;
use portunus_proto::pb;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use tonic::Code;

const REDEEM_TIMEOUT: Duration = Duration::from_secs(30);

/// What this client tells the server it is: release, commit and build date.
pub const CLIENT_VERSION: &str = portunus_about::LONG;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Uri(#[from] crate::enroll_uri::EnrollUriError),
    #[error("no output path: neither XDG_CONFIG_HOME nor HOME is set; pass --out <PATH>")]
    NoDefaultPath,
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(
        "the server at {server} does not present the pinned certificate ({detail}); \
         the enrollment code was not sent"
    )]
    PinMismatch { server: Endpoint, detail: String },
    #[error("cannot reach {server}: {detail}")]
    Unreachable { server: Endpoint, detail: String },
    #[error("no answer from {server} within {REDEEM_TIMEOUT:?}")]
    Timeout { server: Endpoint },
    #[error(
        "the server refused the enrollment code ({code:?}: {message}); create a new enrollment"
    )]
    CodeRefused { code: Code, message: String },
    #[error("the server could not complete the enrollment ({code:?}: {message})")]
    RedeemFailed { code: Code, message: String },
    #[error("the server's answer is unusable: {0}")]
    BadResponse(String),
}

/// Returns the path the bundle was written to.
pub async fn run(
    uri: &str,
    out: Option<PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, EnrollError> {
    let uri = EnrollUri::parse(uri)?;
    let path = match out {
        Some(p) => p,
        None => bundle::default_path(env).ok_or(EnrollError::NoDefaultPath)?,
    };
    bundle::preflight(&path)?;

    let server = uri.endpoint.clone();
    let channel = tls::channel(&server, uri.pin).await.map_err(|e| {
        let server = server.clone();
        match tls::pin_mismatch(&e) {
            Some(mismatch) => EnrollError::PinMismatch {
                server,
                detail: mismatch.to_string(),
            },
            None => EnrollError::Unreachable {
                server,
                detail: tls::error_chain(&e),
            },
        }
    })?;
    let request = pb::RedeemRequest {
        code: uri.code.clone(),
        client_version: CLIENT_VERSION.to_string(),
    };
    let mut client = pb::control_client::ControlClient::new(channel);
    let response = tokio::time::timeout(REDEEM_TIMEOUT, client.redeem(request))
        .await
        .map_err(|_| EnrollError::Timeout {
            server: server.clone(),
        })?
        .map_err(|status| {
            let (code, message) = (status.code(), status.message().to_string());
            match code {
                Code::NotFound
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::InvalidArgument => EnrollError::CodeRefused { code, message },
                _ => EnrollError::RedeemFailed { code, message },
            }
        })?
        .into_inner();

    let bundle = bundle_from(response, &uri)?;
    bundle::write_atomic(&path, &bundle)?;
    Ok(path)
}

fn bundle_from(r: pb::RedeemResponse, uri: &EnrollUri) -> Result<Bundle, EnrollError> {
    if r.token.is_empty() {
        return Err(EnrollError::BadResponse("empty token".into()));
    }
    if r.client_id.is_empty() {
        return Err(EnrollError::BadResponse("empty client_id".into()));
    }
    // An empty endpoint means the server has nothing better to advertise
    // than the address this client just reached it at.
    let server_endpoint = if r.server_endpoint.is_empty() {
        uri.endpoint.to_string()
    } else {
        Endpoint::parse(&r.server_endpoint)
            .map_err(|e| EnrollError::BadResponse(format!("server_endpoint: {}", e.message)))?
            .to_string()
    };
    Ok(Bundle {
        version: BUNDLE_VERSION,
        client_id: r.client_id,
        client_name: r.client_name,
        server_endpoint,
        server_cert_sha256: uri.pin.to_string(),
        token: Token::new(r.token),
    })
}

#[cfg(test)]
mod tests;
