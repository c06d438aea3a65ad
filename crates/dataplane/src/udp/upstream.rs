//! A flow's upstream: one connected socket to the target chosen when the
//! flow starts, and what its errors mean.

use super::io::FlowSocket;
use super::table::Millis;
use crate::resolve::{without_lookup, Resolver};
use crate::stats::RuleCounters;
use crate::target::{attempt_order, priority_order, target_port};
use futures::FutureExt as _;
use portunus_domain::rule::{RuleSpec, Target};
use socket2::{Domain, Protocol, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::debug;

/// What an error on an upstream socket means for its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// The target or the path to it is gone (an ICMP error came back, as
    /// the kernel reports it on a connected socket): the flow ends, and
    /// the source's next datagram starts a new one.
    Evict,
    /// A local, passing condition: this datagram is lost, the flow stays.
    Drop,
}

/// The meaning of an error from `send` or `recv` on a flow's connected
/// socket. Unknown errors evict: a new socket on the next datagram cannot
/// do worse than one in a state nobody understood.
pub(crate) fn on_upstream_error(error: &io::Error) -> OnError {
    match error.raw_os_error() {
        Some(
            libc::EAGAIN
            | libc::EINTR
            | libc::EMSGSIZE
            | libc::ENOBUFS
            | libc::ENOMEM
            | libc::EPERM,
        ) => OnError::Drop,
        Some(
            libc::ECONNREFUSED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::ENONET,
        ) => OnError::Evict,
        _ if error.kind() == io::ErrorKind::WouldBlock => OnError::Drop,
        _ => OnError::Evict,
    }
}

/// A flow's connected socket.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) socket: FlowSocket,
    pub(crate) peer: SocketAddr,
    pub(crate) target_index: usize,
    /// When the target last sent a reply, on the port's clock.
    replied: AtomicU64,
}

impl Upstream {
    pub(crate) fn replied(&self) -> Millis {
        self.replied.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_reply(&self, now: Millis) {
        self.replied.fetch_max(now, Ordering::Relaxed);
    }
}

/// The targets of one UDP rule and how to reach them.
pub(crate) struct Targets {
    targets: Vec<Target>,
    priority: Vec<usize>,
    prefer_ipv6: bool,
    resolver: Resolver,
    /// Every target is an IP literal or `localhost`: `connect` then never
    /// waits, and a new flow can be set up in place.
    lookup_free: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("no target could be reached; last: {0}")]
    AllFailed(String),
}

impl Targets {
    pub(crate) fn new(spec: &RuleSpec, resolver: Resolver) -> Targets {
        Targets {
            priority: priority_order(&spec.targets),
            targets: spec.targets.clone(),
            prefer_ipv6: spec.prefer_ipv6,
            resolver,
            lookup_free: spec
                .targets
                .iter()
                .all(|t| without_lookup(&t.host).is_some()),
        }
    }

    /// `connect` at once, when no target needs a lookup; `None` when one
    /// does and the caller must await `connect`.
    pub(crate) fn connect_now(
        &self,
        offset: u16,
        counters: &RuleCounters,
    ) -> Option<Result<Upstream, SetupError>> {
        if !self.lookup_free {
            return None;
        }
        // Nothing in `connect` waits without a lookup, so its first poll
        // finishes; the future lives on the stack and is gone after.
        self.connect(offset, counters).now_or_never()
    }

    /// A socket connected to the best target that resolves, for a flow on
    /// the port `offset` into the listen range: healthy targets by
    /// priority first, each resolved address in family order.
    pub(crate) async fn connect(
        &self,
        offset: u16,
        counters: &RuleCounters,
    ) -> Result<Upstream, SetupError> {
        let healthy = |i: usize| counters.target(i).is_none_or(|t| t.health.is_healthy());
        let mut last = String::from("the rule has no targets");
        for (attempt, index) in attempt_order(&self.priority, healthy)
            .into_iter()
            .enumerate()
        {
            let target = &self.targets[index];
            let Some(port) = target_port(target.port, offset) else {
                last = format!("port {}+{offset} passes 65535", target.port);
                continue;
            };
            let addrs = match self
                .resolver
                .resolve(&target.host, port, self.prefer_ipv6)
                .await
            {
                Ok(addrs) => addrs,
                Err(e) => {
                    counters.dns_failures.inc();
                    debug!(host = %target.host, error = %e, "target did not resolve");
                    last = e.to_string();
                    continue;
                }
            };
            for addr in addrs {
                match connected(addr) {
                    Ok(socket) => {
                        if let Some(t) = counters.target(index) {
                            t.connects_ok.inc();
                        }
                        if attempt > 0 {
                            counters.target_failovers.inc();
                        }
                        return Ok(Upstream {
                            socket,
                            peer: addr,
                            target_index: index,
                            replied: AtomicU64::new(0),
                        });
                    }
                    Err(e) => {
                        debug!(%addr, error = %e, "upstream socket failed");
                        last = format!("{addr}: {e}");
                    }
                }
            }
            if let Some(t) = counters.target(index) {
                t.connects_failed.inc();
            }
        }
        Err(SetupError::AllFailed(last))
    }
}

/// A new socket on an ephemeral port, connected to `addr`, so the kernel
/// only lets the target's datagrams in and reports ICMP errors on it.
fn connected(addr: SocketAddr) -> io::Result<FlowSocket> {
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.connect(&addr.into())?;
    FlowSocket::new(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_upstream_error_table() {
        let cases = [
            (libc::ECONNREFUSED, OnError::Evict),
            (libc::EHOSTUNREACH, OnError::Evict),
            (libc::ENETUNREACH, OnError::Evict),
            (libc::EHOSTDOWN, OnError::Evict),
            (libc::ENETDOWN, OnError::Evict),
            (libc::ENONET, OnError::Evict),
            (libc::EBADF, OnError::Evict),
            (libc::EAGAIN, OnError::Drop),
            (libc::EINTR, OnError::Drop),
            (libc::EMSGSIZE, OnError::Drop),
            (libc::ENOBUFS, OnError::Drop),
            (libc::ENOMEM, OnError::Drop),
            (libc::EPERM, OnError::Drop),
        ];
        for (errno, want) in cases {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(on_upstream_error(&e), want, "errno {errno}: {e}");
        }
        let would_block = io::Error::from(io::ErrorKind::WouldBlock);
        assert_eq!(on_upstream_error(&would_block), OnError::Drop);
    }
}
