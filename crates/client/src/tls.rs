//! TLS to the control plane, trusted by certificate pin instead of a CA.
//!
//! The server is accepted only when the SHA-256 of its leaf certificate
//! equals the pin, and the handshake signatures are still verified, so a
//! matching pin also proves the server holds the certificate's key. A
//! mismatch fails inside the handshake, before any application byte (and
//! so any enrollment code or bearer token) is written.

use crate::pin::CertPin;
use hyper_util::rt::TokioIo;
use portunus_domain::endpoint::{Endpoint, EndpointHost};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::Channel;

/// Bounds DNS resolution, TCP connect and the TLS handshake together.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 pings find a server that vanished without closing the socket
/// (a dead NAT entry, a power cut), which TCP alone would notice only
/// after many minutes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("server certificate sha256:{actual} does not match the pinned sha256:{expected}")]
pub struct PinMismatch {
    pub expected: CertPin,
    pub actual: CertPin,
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: CertPin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    // Neither the chain, the name nor the validity period is checked: the
    // pin, like an SSH host key, is the whole trust decision, and a
    // self-signed server certificate has no CA to chain to.
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            expected: self.pin,
            actual: CertPin::of_der(end_entity),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(mismatch)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn client_config(pin: CertPin) -> Arc<ClientConfig> {
    let provider = provider();
    let verifier = PinnedVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// TCP connect plus TLS handshake to `endpoint`. SNI carries the host when
/// it is a DNS name; rustls sends none for an IP address.
pub async fn dial(
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    dial_from(endpoint, config, None).await
}

/// [`dial`] from a chosen local address; the fleet simulator gives each of
/// its edges an address of its own, as a real fleet has.
pub async fn dial_from(
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    source: Option<IpAddr>,
) -> io::Result<TlsStream<TcpStream>> {
    let server_name = match &endpoint.host {
        EndpointHost::Dns(name) => ServerName::try_from(name.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}")))?,
        EndpointHost::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
    };
    let handshake = async {
        let tcp = match source {
            None => TcpStream::connect((endpoint.host_str(), endpoint.port)).await?,
            Some(source) => connect_from(endpoint, source).await?,
        };
        tcp.set_nodelay(true)?;
        TlsConnector::from(config).connect(server_name, tcp).await
    };
    tokio::time::timeout(DIAL_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TLS session with {endpoint} within {DIAL_TIMEOUT:?}"),
            )
        })?
}

/// Connects to the first address of `endpoint` in `source`'s family.
async fn connect_from(endpoint: &Endpoint, source: IpAddr) -> io::Result<TcpStream> {
    let target = tokio::net::lookup_host((endpoint.host_str(), endpoint.port))
        .await?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{endpoint} has no address in the family of {source}"),
            )
        })?;
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// A gRPC channel whose only transport is [`dial`]. The `http://` URI only
/// names the `:authority`; TLS is done by the connector.
pub async fn channel(
    endpoint: &Endpoint,
    pin: CertPin,
) -> Result<Channel, tonic::transport::Error> {
    channel_from(endpoint, pin, None).await
}

/// [`channel`] over [`dial_from`].
pub async fn channel_from(
    endpoint: &Endpoint,
    pin: CertPin,
    source: Option<IpAddr>,
) -> Result<Channel, tonic::transport::Error> {
    let config = client_config(pin);
    let target = endpoint.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        let (target, config) = (target.clone(), config.clone());
        async move { dial_from(&target, config, source).await.map(TokioIo::new) }
    });
    tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))?
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
}

/// The pin mismatch behind a connection error, if that is what it was, so
/// that logs can say so plainly instead of burying it in a TLS error chain.
pub fn pin_mismatch<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a PinMismatch> {
    causes(err).find_map(|e| match e.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
            other.0.downcast_ref()
        }
        _ => e.downcast_ref(),
    })
}

/// The error and its causes. `io::Error::source` skips the error it wraps,
/// so that wrapped error is visited explicitly.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut stack = vec![err];
    std::iter::from_fn(move || {
        let e = stack.pop()?;
        if let Some(next) = e.source() {
            stack.push(next);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            stack.push(inner);
        }
        Some(e)
    })
}

/// One line with every cause, for logs and stderr.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests;
