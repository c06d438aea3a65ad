//! TCP forwarding: one accept loop per listen port (or a seat at a shared
//! SNI port), one task per accepted connection that dials a target, writes
//! the connection's preface (PROXY header, replayed ClientHello) and then
//! copies both ways.

use crate::copy::{Direction, Pumps};
use crate::error::ActivationError;
use crate::gate::Gate;
use crate::handle::Connections;
use crate::limit::{self, Admission, RuleLimits};
use crate::listener;
use crate::proxy_protocol;
use crate::sni::{SniMembership, SniPorts};
use crate::stats::{ConnectionGuard, RuleCounters};
use crate::target::Dialer;
use portunus_domain::rule::RuleSpec;
use portunus_domain::source_filter::SourceFilter;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, debug_span, warn, Instrument, Span};

/// How long writing a connection's preface (PROXY header and replayed
/// ClientHello) to a fresh target connection may take.
pub(crate) const PREFACE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the accept loops and connections of one TCP rule share.
pub(crate) struct TcpRule {
    pub(crate) counters: Arc<RuleCounters>,
    pub(crate) dialer: Dialer,
    /// Decided once per rule by `capability::may_splice`; a bandwidth cap
    /// in force when a connection starts rules it out for that connection.
    pub(crate) splice: bool,
    /// The owner's envelope and the rule's caps, both changeable live.
    pub(crate) limits: RuleLimits,
    pub(crate) connections: Connections,
    /// Which peers the rule serves; checked before any limit is charged.
    pub(crate) filter: SourceFilter,
    /// The owner's quota gate: closed, it refuses new connections and
    /// ends the open ones.
    pub(crate) gate: Arc<Gate>,
}

/// A started TCP rule: its own tasks (accept loops, health probes) and,
/// on an SNI port, its seat there.
pub(crate) struct Started {
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) sni: Option<SniMembership>,
}

/// Binds all ports of `spec` (or joins the SNI port it routes on) and
/// starts accepting. A rule without a pattern on a port that already
/// routes by SNI becomes that port's fallback. Nothing is left bound on
/// error.
pub(crate) fn start(
    id: &str,
    spec: &RuleSpec,
    rule: TcpRule,
    sni_ports: &SniPorts,
) -> Result<Started, ActivationError> {
    let start = spec.listen_start();
    let rule = Arc::new(rule);
    let span = debug_span!("tcp", rule = id, port = start);
    let sni = if spec.is_range() {
        None
    } else {
        let pattern = spec.sni_pattern.clone();
        sni_ports.join(start, pattern, rule.clone(), span.clone())?
    };
    let mut tasks = match sni {
        Some(_) => Vec::new(),
        None => {
            let listeners = listener::bind_tcp(start..=spec.listen_end(), spec.listen_ip())?;
            listeners
                .into_iter()
                .zip(0u16..)
                .map(|(listener, offset)| {
                    let port = start.wrapping_add(offset);
                    let span = debug_span!("tcp", rule = id, port);
                    tokio::spawn(accept_loop(rule.clone(), listener, offset).instrument(span))
                })
                .collect()
        }
    };
    if let Some(secs) = spec.health_check_interval_secs {
        let every = Duration::from_secs(u64::from(secs));
        tasks.extend(spawn_probes(&rule, every, &span));
    }
    Ok(Started { tasks, sni })
}

/// One probe loop per target, each connecting every `every`.
fn spawn_probes(rule: &Arc<TcpRule>, every: Duration, span: &Span) -> Vec<JoinHandle<()>> {
    (0..rule.dialer.target_count())
        .map(|index| {
            let rule = rule.clone();
            let probe = async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    rule.dialer.probe(index, &rule.counters).await;
                }
            };
            tokio::spawn(probe.instrument(span.clone()))
        })
        .collect()
}

async fn accept_loop(rule: Arc<TcpRule>, listener: TcpListener, offset: u16) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(admission) = admit(&rule, &stream, peer) else {
                    continue;
                };
                // Counted before the task exists, so a connection the rule
                // aborts before it ever runs is still balanced.
                let guard = ConnectionGuard::open(rule.counters.clone(), usize::from(offset));
                let task = serve(
                    rule.clone(),
                    stream,
                    peer,
                    offset,
                    (guard, admission),
                    Vec::new(),
                );
                rule.connections
                    .spawn(until_gate_closes(rule.gate.closing(), task).in_current_span());
            }
            Err(e) => pause_after(&e).await,
        }
    }
}

/// Hands a connection accepted elsewhere (an SNI port) to `rule`, with the
/// bytes already read from it to replay to the target first.
pub(crate) fn hand_over(
    rule: &Arc<TcpRule>,
    span: &Span,
    stream: TcpStream,
    peer: SocketAddr,
    replay: Vec<u8>,
) {
    let _entered = span.enter();
    let Some(admission) = admit(rule, &stream, peer) else {
        return;
    };
    let guard = ConnectionGuard::open(rule.counters.clone(), 0);
    let task = serve(rule.clone(), stream, peer, 0, (guard, admission), replay);
    rule.connections
        .spawn(until_gate_closes(rule.gate.closing(), task).instrument(span.clone()));
}

/// Admits a new connection through the rule's source filter, then the
/// owner's envelope and the rule's caps, so a refused source spends no
/// token. A refused connection is reset at once (`SO_LINGER 0` then close,
/// so the peer sees an RST rather than a clean end) and counted.
fn admit(rule: &TcpRule, stream: &TcpStream, peer: SocketAddr) -> Option<Admission> {
    if rule.gate.is_closed() {
        rule.counters.quota_refused.inc();
        debug!(%peer, "connection refused: the owner's quota is spent");
        reset(stream, peer);
        return None;
    }
    if !rule.filter.admits(peer.ip()) {
        rule.counters.source_denied.inc();
        debug!(%peer, "connection refused by the source filter");
        reset(stream, peer);
        return None;
    }
    match rule.limits.admit(Instant::now()) {
        Ok(admission) => Some(admission),
        Err(reject) => {
            rule.counters.rate_limit_reject(reject);
            debug!(%peer, reason = reject.reason(), "connection refused by a rate limit");
            reset(stream, peer);
            None
        }
    }
}

/// Runs a connection until it ends or its owner's quota gate closes;
/// dropping it closes both sockets.
async fn until_gate_closes(
    closing: impl std::future::Future<Output = ()>,
    connection: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        () = connection => {}
        () = closing => debug!("connection closed: the owner's quota is spent"),
    }
}

/// Makes the coming close an RST.
fn reset(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)) {
        debug!(%peer, error = %e, "SO_LINGER 0 not set");
    }
}

/// Logs a failed accept and waits as long as `accept_pause` says. Under
/// descriptor exhaustion every listener fails ten times a second, so the
/// warning is given at most once per `ACCEPT_WARN_EVERY` process-wide, with
/// the count of those it stood for.
pub(crate) async fn pause_after(error: &io::Error) {
    match accept_pause(error) {
        None => debug!(%error, "accept failed"),
        Some(pause) => {
            match ACCEPT_WARNINGS.admit(Instant::now()) {
                Some(suppressed) => warn!(%error, suppressed, "accept failed, pausing"),
                None => debug!(%error, "accept failed, pausing"),
            }
            tokio::time::sleep(pause).await;
        }
    }
}

const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

static ACCEPT_WARNINGS: LogGate = LogGate::new(ACCEPT_WARN_EVERY);

/// Lets one log line through per period and counts the rest.
pub(crate) struct LogGate {
    every: Duration,
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl LogGate {
    pub(crate) const fn new(every: Duration) -> LogGate {
        LogGate {
            every,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be
    /// written at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, held) = &mut *state;
        if last.is_some_and(|l| now.duration_since(l) < self.every) {
            *held += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held))
    }
}

/// How long to wait after a failed accept. A peer that gave up before we
/// took its connection is no reason to pause; running out of descriptors
/// or memory is, or the loop would spin until something closes.
fn accept_pause(error: &io::Error) -> Option<Duration> {
    match error.raw_os_error() {
        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::ECONNRESET | libc::EPERM) => {
            None
        }
        _ => Some(Duration::from_millis(100)),
    }
}

async fn serve(
    rule: Arc<TcpRule>,
    downstream: TcpStream,
    peer: SocketAddr,
    offset: u16,
    (guard, _admission): (ConnectionGuard, Admission),
    replay: Vec<u8>,
) {
    let counters = guard.counters();
    let dialed = match rule.dialer.dial(offset, counters).await {
        Ok(dialed) => dialed,
        Err(e) => {
            counters.connect_failures.inc();
            debug!(%peer, error = %e, "no target reachable, closing");
            return;
        }
    };
    let mut upstream = dialed.stream;
    set_nodelay(&upstream);
    let port_index = guard.port_index();
    let mut preface = match rule.dialer.proxy_protocol(dialed.target_index) {
        None => Vec::new(),
        Some(version) => match downstream.local_addr() {
            Ok(local) => proxy_protocol::header(version, peer, local),
            Err(e) => {
                debug!(%peer, error = %e, "no local address for the PROXY header, closing");
                return;
            }
        },
    };
    if !replay.is_empty() || !preface.is_empty() {
        preface.extend_from_slice(&replay);
        match tokio::time::timeout(PREFACE_TIMEOUT, upstream.write_all(&preface)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "preface write failed, closing");
                return;
            }
            Err(_) => {
                debug!(%peer, "preface write timed out, closing");
                return;
            }
        }
        if !replay.is_empty() {
            counters.record_bytes(
                port_index,
                dialed.target_index,
                Direction::Inbound,
                replay.len(),
            );
        }
    }
    let mut pumps = if rule.limits.shapes_bandwidth() {
        Pumps::throttled(
            charge(&rule.limits, limit::Direction::In),
            charge(&rule.limits, limit::Direction::Out),
        )
    } else {
        Pumps::new(rule.splice)
    };
    debug!(%peer, target = %dialed.addr, splice = pumps.may_splice(), "forwarding");
    let (mut bytes_in, mut bytes_out) = (replay.len() as u64, 0u64);
    let result = pumps
        .run(&downstream, &upstream, |direction, n| {
            counters.record_bytes(port_index, dialed.target_index, direction, n);
            match direction {
                Direction::Inbound => bytes_in += n as u64,
                Direction::Outbound => bytes_out += n as u64,
            }
        })
        .await;
    if pumps.spliced() {
        counters.spliced_connections.inc();
    }
    match result {
        Ok(()) => debug!(%peer, bytes_in, bytes_out, "connection closed"),
        Err(e) => debug!(%peer, bytes_in, bytes_out, error = %e, "connection torn down"),
    }
}

/// Charges one direction's chunks to the limits in force at each charge.
fn charge(limits: &RuleLimits, dir: limit::Direction) -> crate::copy::throttle::Charge {
    let limits = limits.clone();
    Box::new(move |n| limits.charge(dir, n as u64, Instant::now()))
}

/// Small writes (interactive protocols, TLS handshakes) must not wait for
/// Nagle; a failure only costs latency, so it is logged and ignored. The
/// downstream side inherits the option from its listener.
fn set_nodelay(upstream: &TcpStream) {
    if let Err(e) = upstream.set_nodelay(true) {
        debug!(error = %e, "TCP_NODELAY not set on the upstream connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_gate_lets_one_line_through_per_period() {
        let gate = LogGate::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(gate.admit(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(gate.admit(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(gate.admit(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(gate.admit(t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn accept_pause_table() {
        let cases = [
            (libc::ECONNABORTED, false),
            (libc::EINTR, false),
            (libc::EPROTO, false),
            (libc::ECONNRESET, false),
            (libc::EPERM, false),
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOBUFS, true),
            (libc::ENOMEM, true),
        ];
        for (errno, pauses) in cases {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(accept_pause(&e).is_some(), pauses, "errno {errno}");
        }
    }
}
