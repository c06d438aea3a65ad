//! TCP forwarding: one accept loop per listen port, one task per accepted
//! connection that dials a target and copies both ways.

use crate::copy::{Direction, Pumps};
use crate::error::ActivationError;
use crate::handle::Connections;
use crate::listener;
use crate::stats::{ConnectionGuard, RuleCounters};
use crate::target::Dialer;
use portunus_domain::rule::RuleSpec;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, debug_span, warn, Instrument};

/// What the accept loops and connections of one TCP rule share.
pub(crate) struct TcpRule {
    pub(crate) counters: Arc<RuleCounters>,
    pub(crate) dialer: Dialer,
    /// Decided once per rule by `capability::may_splice`.
    pub(crate) splice: bool,
    pub(crate) connections: Connections,
}

/// Binds all ports of `spec` and starts their accept loops. Nothing is left
/// bound on error.
pub(crate) fn start(
    id: &str,
    spec: &RuleSpec,
    rule: TcpRule,
) -> Result<Vec<JoinHandle<()>>, ActivationError> {
    let start = spec.listen_start();
    let listeners = listener::bind_tcp(start..=spec.listen_end())?;
    let rule = Arc::new(rule);
    Ok(listeners
        .into_iter()
        .zip(0u16..)
        .map(|(listener, offset)| {
            let port = start.wrapping_add(offset);
            let span = debug_span!("tcp", rule = id, port);
            tokio::spawn(accept_loop(rule.clone(), listener, offset).instrument(span))
        })
        .collect())
}

async fn accept_loop(rule: Arc<TcpRule>, listener: TcpListener, offset: u16) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Counted before the task exists, so a connection the rule
                // aborts before it ever runs is still balanced.
                let guard = ConnectionGuard::open(rule.counters.clone(), usize::from(offset));
                let task = serve(rule.clone(), stream, peer, offset, guard);
                rule.connections.spawn(task.in_current_span());
            }
            Err(e) => match accept_pause(&e) {
                None => debug!(error = %e, "accept failed"),
                Some(pause) => {
                    warn!(error = %e, "accept failed, pausing");
                    tokio::time::sleep(pause).await;
                }
            },
        }
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
    guard: ConnectionGuard,
) {
    let counters = guard.counters();
    set_nodelay(&downstream, "downstream");
    let dialed = match rule.dialer.dial(offset, counters).await {
        Ok(dialed) => dialed,
        Err(e) => {
            counters.connect_failures.inc();
            debug!(%peer, error = %e, "no target reachable, closing");
            return;
        }
    };
    let upstream = dialed.stream;
    set_nodelay(&upstream, "upstream");
    let pumps = Pumps::new(rule.splice);
    if pumps.is_splice() {
        counters.spliced_connections.inc();
    }
    debug!(%peer, target = %dialed.addr, splice = pumps.is_splice(), "forwarding");
    let port_index = guard.port_index();
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    let result = pumps
        .run(&downstream, &upstream, |direction, n| {
            counters.record_bytes(port_index, dialed.target_index, direction, n);
            match direction {
                Direction::Inbound => bytes_in += n as u64,
                Direction::Outbound => bytes_out += n as u64,
            }
        })
        .await;
    match result {
        Ok(()) => debug!(%peer, bytes_in, bytes_out, "connection closed"),
        Err(e) => debug!(%peer, bytes_in, bytes_out, error = %e, "connection torn down"),
    }
}

/// Small writes (interactive protocols, TLS handshakes) must not wait for
/// Nagle; a failure only costs latency, so it is logged and ignored.
fn set_nodelay(stream: &TcpStream, side: &str) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(side, error = %e, "TCP_NODELAY not set");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
