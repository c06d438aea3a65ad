//! Shared SNI ports. The first rule with a pattern on a port binds it and
//! starts its accept loop; later rules take a seat in its route table; a
//! rule without a pattern on such a port becomes its fallback. When the
//! last rule leaves, the socket closes.

use super::client_hello::MAX_HELLO_BYTES;
use super::peek::{read_client_hello, Peeked, PEEK_TIMEOUT};
use super::route::{RouteTable, Taken};
use crate::error::{ActivationError, ActivationReason};
use crate::listener;
use crate::tcp::{self, TcpRule};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::future::FutureExt as _;
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, Instrument, Span};

/// The SNI ports of one engine, by port number.
#[derive(Clone, Default)]
pub(crate) struct SniPorts {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    ports: Mutex<HashMap<u16, PortEntry>>,
    next_key: AtomicU64,
}

struct PortEntry {
    port: Arc<Port>,
    accept: JoinHandle<()>,
}

struct Port {
    number: u16,
    routes: RwLock<Routes>,
    /// Cancels connections still being read when the port closes.
    peeks: CancellationToken,
    /// Places for connections waiting for their ClientHello: a flood of
    /// silent connections would otherwise pile up, and each that times out
    /// goes on to the fallback's backend.
    waiting: Arc<Semaphore>,
}

/// Connections one SNI port lets wait for a ClientHello at once; past
/// that, new ones are closed at accept and counted as unmatched.
pub(crate) const MAX_WAITING_HELLOS: usize = 1024;

/// The rules seated at a port, in the order they joined, and the table
/// that routes to them by index.
#[derive(Default)]
struct Routes {
    members: Vec<Member>,
    table: RouteTable<usize>,
}

struct Member {
    key: u64,
    pattern: Option<String>,
    rule: Arc<TcpRule>,
    span: Span,
}

impl Routes {
    fn build(members: Vec<Member>) -> Result<Routes, Taken> {
        let mut table = RouteTable::default();
        for (i, m) in members.iter().enumerate() {
            table.insert(m.pattern.as_deref(), i)?;
        }
        Ok(Routes { members, table })
    }
}

/// A rule's seat at an SNI port. `leave` gives it up and, for the last
/// rule, waits until the port is closed; dropping it leaves at once
/// without waiting.
pub(crate) struct SniMembership {
    ports: SniPorts,
    port: u16,
    key: u64,
    seated: bool,
}

impl SniMembership {
    pub(crate) async fn leave(mut self) {
        self.seated = false;
        if let Some(accept) = self.ports.leave(self.port, self.key) {
            // The accept loop owns the socket; once it has ended, the port
            // is free to bind again.
            let _ = accept.await;
        }
    }
}

impl Drop for SniMembership {
    fn drop(&mut self) {
        if self.seated {
            self.ports.leave(self.port, self.key);
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl SniPorts {
    fn ports(&self) -> MutexGuard<'_, HashMap<u16, PortEntry>> {
        self.inner
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Seats `rule` at SNI port `port`: with a pattern, binding the port
    /// when no rule routes there yet; without one, as the fallback of a
    /// port that already routes, or not at all (`Ok(None)`), leaving the
    /// caller to bind a plain listener.
    pub(crate) fn join(
        &self,
        port: u16,
        pattern: Option<String>,
        rule: Arc<TcpRule>,
        span: Span,
    ) -> Result<Option<SniMembership>, ActivationError> {
        let mut ports = self.ports();
        let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        let member = Member {
            key,
            pattern,
            rule,
            span,
        };
        match ports.get(&port) {
            Some(entry) => entry.port.seat(member)?,
            None if member.pattern.is_none() => return Ok(None),
            None => {
                let listener = listener::bind_tcp(port..=port, None)?
                    .pop()
                    .expect("one port bound");
                let routes = Routes::build(vec![member]).expect("one member fits");
                let shared = Arc::new(Port {
                    number: port,
                    routes: RwLock::new(routes),
                    peeks: CancellationToken::new(),
                    waiting: Arc::new(Semaphore::new(MAX_WAITING_HELLOS)),
                });
                let span = debug_span!("sni", port);
                let accept = tokio::spawn(accept_loop(shared.clone(), listener).instrument(span));
                ports.insert(
                    port,
                    PortEntry {
                        port: shared,
                        accept,
                    },
                );
            }
        }
        Ok(Some(SniMembership {
            ports: self.clone(),
            port,
            key,
            seated: true,
        }))
    }

    /// Takes member `key` off `port`. For the last member the port closes:
    /// its reads in progress are cancelled and its accept loop aborted,
    /// which is returned to be awaited.
    fn leave(&self, port: u16, key: u64) -> Option<JoinHandle<()>> {
        let mut ports = self.ports();
        let empty = ports.get(&port)?.port.unseat(key);
        if !empty {
            return None;
        }
        let entry = ports.remove(&port)?;
        entry.port.peeks.cancel();
        entry.accept.abort();
        debug!(port, "last rule left, SNI port closed");
        Some(entry.accept)
    }
}

impl Port {
    fn seat(&self, member: Member) -> Result<(), ActivationError> {
        let mut routes = write(&self.routes);
        let mut table = routes.table.clone();
        table
            .insert(member.pattern.as_deref(), routes.members.len())
            .map_err(|taken| seat_taken(self.number, &taken))?;
        routes.members.push(member);
        routes.table = table;
        Ok(())
    }

    /// Removes member `key`; true when no member is left.
    fn unseat(&self, key: u64) -> bool {
        let mut routes = write(&self.routes);
        let mut members = std::mem::take(&mut routes.members);
        members.retain(|m| m.key != key);
        *routes = Routes::build(members).expect("a subset of members fits");
        routes.members.is_empty()
    }

    /// Routes a new connection: straight to the fallback when no rule
    /// routes by pattern, otherwise after reading its ClientHello in a
    /// task of its own.
    fn accepted(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        {
            let routes = read(&self.routes);
            if !routes.table.has_patterns() {
                routes.hand_over(routes.table.fallback(), stream, peer, Vec::new());
                return;
            }
        }
        let Ok(place) = self.waiting.clone().try_acquire_owned() else {
            debug!(%peer, "too many connections waiting for a ClientHello; closed");
            if let Some(oldest) = read(&self.routes).members.first() {
                oldest.rule.counters.sni_unmatched.inc();
            }
            return;
        };
        let port = self.clone();
        let cancel = self.peeks.clone();
        // A combinator, not an `async` wrapper, which would hold the
        // classify future twice.
        tokio::spawn(
            port.classify(stream, peer, place)
                .with_cancellation_token_owned(cancel)
                .in_current_span(),
        );
    }

    async fn classify(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        place: OwnedSemaphorePermit,
    ) {
        let (bytes, peeked) = read_client_hello(&mut stream, MAX_HELLO_BYTES, PEEK_TIMEOUT).await;
        drop(place);
        let server_name = match peeked {
            Peeked::Hello(hello) => hello.server_name,
            Peeked::Closed => {
                debug!(%peer, read = bytes.len(), "closed before a complete ClientHello");
                return;
            }
            Peeked::NotTls(e) => {
                debug!(%peer, error = %e, "no ClientHello, routing as without SNI");
                None
            }
            Peeked::TimedOut => {
                debug!(%peer, read = bytes.len(), "no ClientHello in time, routing as without SNI");
                None
            }
        };
        // Routed under the read lock: a rule that has left cannot be
        // handed a connection after its stop started waiting for them.
        let routes = read(&self.routes);
        let member = routes.table.route(server_name.as_deref());
        if member.is_none() {
            debug!(%peer, sni = ?server_name, "no rule routes this name, closing");
        }
        routes.hand_over(member, stream, peer, bytes);
    }
}

impl Routes {
    /// Gives the connection to member `index` and counts it as routed, or,
    /// without a member, drops it and counts it as unmatched on the oldest
    /// member, so the port's total is the sum over its rules.
    fn hand_over(
        &self,
        index: Option<usize>,
        stream: TcpStream,
        peer: SocketAddr,
        replay: Vec<u8>,
    ) {
        match index.and_then(|i| self.members.get(i)) {
            Some(m) => {
                m.rule.counters.sni_routed.inc();
                tcp::hand_over(&m.rule, &m.span, stream, peer, replay);
            }
            None => {
                if let Some(oldest) = self.members.first() {
                    oldest.rule.counters.sni_unmatched.inc();
                }
            }
        }
    }
}

fn seat_taken(port: u16, taken: &Taken) -> ActivationError {
    let detail = match taken {
        Taken::Pattern(p) => format!("tcp port {port}: another rule already routes {p:?}"),
        Taken::Fallback => format!("tcp port {port}: another rule is already the fallback"),
    };
    ActivationError::new(ActivationReason::PortInUse, detail)
}

async fn accept_loop(port: Arc<Port>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => port.accepted(stream, peer),
            Err(e) => tcp::pause_after(&e).await,
        }
    }
}
