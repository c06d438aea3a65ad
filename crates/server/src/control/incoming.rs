//! The control port's front door. The port is public by default, so a
//! connection that has not finished TLS gets a deadline, and such
//! connections are capped in total and per source address: idle or
//! half-open connections can never spend the descriptors the operator API
//! and the client streams need. TLS is terminated here and the finished
//! streams are handed to tonic.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

/// Limits on connections that have not finished their TLS handshake.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake: Duration,
    pub total: usize,
    pub per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            total: 512,
            per_source: 32,
        }
    }
}

/// Counts handshakes in progress, in total and per source address.
#[derive(Debug, Default)]
struct Handshaking {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

#[derive(Clone)]
struct Gate {
    limits: Limits,
    state: Arc<Mutex<Handshaking>>,
}

/// A handshake's place under the caps, given back on drop.
struct Place {
    gate: Gate,
    source: IpAddr,
}

impl Gate {
    fn try_enter(&self, source: IpAddr) -> Option<Place> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = s.by_source.get(&source).copied().unwrap_or(0);
        if s.total >= self.limits.total || mine >= self.limits.per_source {
            return None;
        }
        s.total += 1;
        *s.by_source.entry(source).or_insert(0) += 1;
        Some(Place {
            gate: self.clone(),
            source,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut s = self
            .gate
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.total -= 1;
        if let Some(n) = s.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                s.by_source.remove(&self.source);
            }
        }
    }
}

/// How long to wait after a failed accept: a peer that left before we
/// took its connection is no reason to; running out of descriptors is,
/// or the loop would spin until one is freed.
fn accept_pause(e: &io::Error) -> Option<Duration> {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionAborted | ConnectionReset | Interrupted | PermissionDenied => None,
        _ => Some(Duration::from_millis(100)),
    }
}

/// TLS streams of `listener`'s connections that finished their handshake
/// within the limits, for `Server::serve_with_incoming`.
pub fn tls_streams(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: Limits,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let gate = Gate {
        limits,
        state: Arc::default(),
    };
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        if let Some(pause) = accept_pause(&e) {
                            tracing::warn!(error = %e, "control accept failed, pausing");
                            tokio::time::sleep(pause).await;
                        }
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let Some(place) = gate.try_enter(peer.ip()) else {
                tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
                continue;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            let deadline = gate.limits.handshake;
            tokio::spawn(async move {
                let done = tokio::time::timeout(deadline, acceptor.accept(tcp)).await;
                drop(place);
                match done {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake deadline passed; closed"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The rustls configuration of the control port: the server's identity,
/// HTTP/2 only.
pub fn acceptor(cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsAcceptor> {
    use anyhow::Context;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("malformed TLS certificate")?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .context("malformed TLS key")?
        .context("no private key in the TLS key file")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("invalid TLS identity")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_pause_table() {
        // Linux errnos: EMFILE, ENFILE, ENOMEM pause; ECONNABORTED,
        // ECONNRESET, EINTR do not.
        for (errno, pauses) in [
            (24, true),
            (23, true),
            (12, true),
            (103, false),
            (104, false),
            (4, false),
        ] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(accept_pause(&e).is_some(), pauses, "errno {errno}");
        }
    }

    #[test]
    fn handshakes_are_capped_in_total_and_per_source() {
        let gate = Gate {
            limits: Limits {
                handshake: Duration::from_secs(1),
                total: 3,
                per_source: 2,
            },
            state: Arc::default(),
        };
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = gate.try_enter(a).unwrap();
        let _a2 = gate.try_enter(a).unwrap();
        assert!(gate.try_enter(a).is_none(), "per source");
        let _b1 = gate.try_enter(b).unwrap();
        assert!(gate.try_enter(c).is_none(), "in total");
        drop(a1);
        let _c1 = gate.try_enter(c).unwrap();
        assert!(gate.try_enter(a).is_none(), "the freed place went to c");
    }
}
