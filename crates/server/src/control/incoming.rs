//! The control port's front door. The port is public by default, so a
//! connection that has not authenticated yet (still in its TLS handshake,
//! or past it without a client credential or a redeemed enrollment code)
//! gets deadlines, and such connections are capped in total and per source
//! address: idle or half-open connections can never spend the descriptors
//! the operator API and the client streams need. TLS is terminated here and
//! the finished streams are handed to tonic; the service marks a
//! connection authenticated through its `ConnInfo`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// Limits on connections that have not authenticated yet.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to a finished TLS handshake.
    pub handshake: Duration,
    /// From accept to the first authenticated call; a client opens its
    /// session, or redeems its code, right after the handshake.
    pub authenticate: Duration,
    pub total: usize,
    pub per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            authenticate: Duration::from_secs(30),
            total: 512,
            per_source: 32,
        }
    }
}

/// Counts unauthenticated connections per source address.
#[derive(Debug, Default)]
struct Handshaking {
    by_source: HashMap<IpAddr, usize>,
}

#[derive(Clone)]
struct Gate {
    limits: Limits,
    /// One permit per place under the total cap.
    slots: Arc<Semaphore>,
    state: Arc<Mutex<Handshaking>>,
}

/// An unauthenticated connection's place under the caps, given back on
/// drop.
struct Place {
    gate: Gate,
    source: IpAddr,
    _slot: OwnedSemaphorePermit,
}

impl Gate {
    fn new(limits: Limits) -> Gate {
        Gate {
            limits,
            slots: Arc::new(Semaphore::new(limits.total)),
            state: Arc::default(),
        }
    }

    /// Waits for a place under the total cap. Until one is free the
    /// listener is not polled: new connections wait in the kernel's accept
    /// queue (bounded by the backlog) rather than being closed, so a fleet
    /// reconnecting at once queues instead of failing and backing off ever
    /// further.
    async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Takes a place for `source` unless it is at its own cap; a refused
    /// connection gives its slot back.
    fn try_enter(&self, source: IpAddr, slot: OwnedSemaphorePermit) -> Option<Place> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = s.by_source.entry(source).or_insert(0);
        if *mine >= self.limits.per_source {
            return None;
        }
        *mine += 1;
        Some(Place {
            gate: self.clone(),
            source,
            _slot: slot,
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

/// What the service learns of a control connection: the peer and the way
/// to mark the connection authenticated, which frees its place under the
/// caps and lifts its deadline.
#[derive(Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pending: Arc<Mutex<Option<Place>>>,
}

impl ConnInfo {
    pub fn authenticated(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn is_pending(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// A control connection past its TLS handshake. Until it is marked
/// authenticated, reading from it fails once the deadline passes, which
/// ends the connection.
pub struct ControlStream {
    inner: TlsStream<TcpStream>,
    info: ConnInfo,
    deadline: Pin<Box<Sleep>>,
}

impl Connected for ControlStream {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for ControlStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.info.is_pending() && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no authenticated call before the deadline",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connections of `listener` that finished their TLS handshake within
/// the limits, for `Server::serve_with_incoming`.
pub fn tls_streams(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: Limits,
) -> ReceiverStream<io::Result<ControlStream>> {
    let (tx, rx) = mpsc::channel(64);
    let gate = Gate::new(limits);
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                slot = gate.slot() => slot,
                _ = tx.closed() => return,
            };
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
            let Some(place) = gate.try_enter(peer.ip(), slot) else {
                tracing::debug!(%peer, "too many unauthenticated control connections from one source; closed");
                continue;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            let accepted_at = Instant::now();
            tokio::spawn(async move {
                match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let stream = ControlStream {
                            inner: tls,
                            info: ConnInfo {
                                remote: peer,
                                pending: Arc::new(Mutex::new(Some(place))),
                            },
                            deadline: Box::pin(tokio::time::sleep_until(
                                accepted_at + limits.authenticate,
                            )),
                        };
                        let _ = tx.send(Ok(stream)).await;
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
        let gate = Gate::new(Limits {
            handshake: Duration::from_secs(1),
            authenticate: Duration::from_secs(1),
            total: 3,
            per_source: 2,
        });
        let slot = || gate.slots.clone().try_acquire_owned().ok();
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = gate.try_enter(a, slot().unwrap()).unwrap();
        let _a2 = gate.try_enter(a, slot().unwrap()).unwrap();
        assert!(gate.try_enter(a, slot().unwrap()).is_none(), "per source");
        let _b1 = gate.try_enter(b, slot().unwrap()).unwrap();
        assert!(slot().is_none(), "in total");
        drop(a1);
        let _c1 = gate.try_enter(c, slot().unwrap()).unwrap();
        assert!(slot().is_none(), "the freed place went to c");
    }

    /// Real sockets and real TLS: connections past their handshake that
    /// never authenticate hold their place under the per-source cap until
    /// the deadline closes them; one marked authenticated frees its place
    /// and outlives the deadline.
    async fn within<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("within 10 s")
    }

    #[tokio::test]
    async fn unauthenticated_connections_are_capped_and_closed_by_the_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_stream::StreamExt;

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let acceptor = acceptor(&cert.pem(), &key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            handshake: Duration::from_secs(10),
            authenticate: Duration::from_secs(1),
            total: 8,
            per_source: 2,
        };
        let mut incoming = tls_streams(listener, acceptor, limits);
        let connect = || async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await
        };
        // The server side of each connection echoes, as a live peer would.
        let echo = |mut s: ControlStream| {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            })
        };

        let mut a = connect().await.unwrap();
        let mut b = connect().await.unwrap();
        let server_a = within(incoming.next()).await.unwrap().unwrap();
        let server_b = within(incoming.next()).await.unwrap().unwrap();
        let marked_a = server_a.connect_info();
        assert_eq!(marked_a.remote.ip(), addr.ip());
        echo(server_a);
        echo(server_b);

        // A third from the same source is closed before its handshake.
        assert!(within(connect()).await.is_err());

        // A authenticates: its place is free for a new connection.
        marked_a.authenticated();
        let _c = within(connect()).await.unwrap();
        let _server_c = within(incoming.next()).await.unwrap().unwrap();

        // B never does: the deadline ends it. A outlives the deadline.
        let mut buf = [0u8; 8];
        let end = within(b.read(&mut buf)).await;
        assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
        a.write_all(b"ping").await.unwrap();
        within(a.read_exact(&mut buf[..4])).await.unwrap();
        assert_eq!(&buf[..4], b"ping");
    }
}
