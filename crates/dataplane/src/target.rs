//! Choosing and dialing a rule's targets: the best healthy target first,
//! then the others by priority; every resolved address of one target
//! before the next target. Each attempt feeds the target's health.

use crate::health::{Health, HealthCell};
use crate::resolve::{ResolveError, Resolver};
use crate::stats::RuleCounters;
use portunus_domain::rule::{ProxyProtocol, RuleSpec, Target};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::{debug, info};

/// How long one address may take to accept a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Target indices by preference: lowest priority number first, list order
/// among equals.
pub(crate) fn priority_order(targets: &[Target]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| targets[i].priority);
    order
}

/// The order to try targets in for one connection: the best healthy one
/// first, then all the others by priority. With no healthy target this is
/// the priority order, so the best one is still tried first.
pub(crate) fn attempt_order(priority: &[usize], healthy: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut order = priority.to_vec();
    if let Some(pos) = order.iter().position(|&i| healthy(i)) {
        let best = order.remove(pos);
        order.insert(0, best);
    }
    order
}

/// The target port for a connection accepted `offset` ports into the
/// listen range; `None` when it would pass 65535 (validation rules that
/// out, so it marks a bug, not a peer).
pub(crate) fn target_port(base: u32, offset: u16) -> Option<u16> {
    u16::try_from(base.checked_add(u32::from(offset))?).ok()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("port {base}+{offset} passes 65535")]
    PortOutOfRange { base: u32, offset: u16 },
}

impl TargetError {
    /// The edge itself is out of descriptors or memory: the target is not
    /// to blame, and no other target would fare better now.
    pub(crate) fn is_local(&self) -> bool {
        match self {
            TargetError::Connect { source, .. } => is_local_exhaustion(source),
            _ => false,
        }
    }
}

fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("all {tried} targets failed, last: {last}")]
    AllFailed {
        tried: usize,
        #[source]
        last: TargetError,
    },
    #[error("the rule has no targets")]
    NoTargets,
}

pub(crate) struct Dialed {
    pub(crate) stream: TcpStream,
    pub(crate) target_index: usize,
    pub(crate) addr: SocketAddr,
}

/// Dials the targets of one rule.
pub(crate) struct Dialer {
    targets: Vec<Target>,
    priority: Vec<usize>,
    prefer_ipv6: bool,
    resolver: Resolver,
    connect_timeout: Duration,
}

impl Dialer {
    pub(crate) fn new(spec: &RuleSpec, resolver: Resolver) -> Self {
        Dialer {
            priority: priority_order(&spec.targets),
            targets: spec.targets.clone(),
            prefer_ipv6: spec.prefer_ipv6,
            resolver,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    pub(crate) fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// The PROXY protocol header target `index` wants, if any.
    pub(crate) fn proxy_protocol(&self, index: usize) -> Option<ProxyProtocol> {
        self.targets.get(index).and_then(|t| t.proxy_protocol)
    }

    /// Connects to the first target that answers, for a connection accepted
    /// `offset` ports into the listen range. Counts per-target outcomes,
    /// lookup failures and failovers (a connection served by a target
    /// other than the first one tried).
    pub(crate) async fn dial(
        &self,
        offset: u16,
        counters: &RuleCounters,
    ) -> Result<Dialed, DialError> {
        let order = attempt_order(&self.priority, |i| {
            counters.target(i).is_none_or(|t| t.health.is_healthy())
        });
        let mut last = None;
        for (attempt, &index) in order.iter().enumerate() {
            let target = &self.targets[index];
            let per_target = counters.target(index);
            let result = self.dial_target(target, offset).await;
            let result = match result {
                Err(e) if e.is_local() => {
                    debug!(host = %target.host, error = %e, "no descriptor or memory to dial; the target is not blamed");
                    return Err(DialError::AllFailed {
                        tried: attempt + 1,
                        last: e,
                    });
                }
                other => other,
            };
            if let Some(t) = per_target {
                let counter = match &result {
                    Ok(_) => &t.connects_ok,
                    Err(_) => &t.connects_failed,
                };
                counter.inc();
                record_health(&t.health, target, result.is_ok());
            }
            match result {
                Ok((stream, addr)) => {
                    if attempt > 0 {
                        counters.target_failovers.inc();
                    }
                    return Ok(Dialed {
                        stream,
                        target_index: index,
                        addr,
                    });
                }
                Err(e) => {
                    if matches!(e, TargetError::Resolve(_)) {
                        counters.dns_failures.inc();
                    }
                    debug!(host = %target.host, error = %e, "target failed");
                    last = Some(e);
                }
            }
        }
        match last {
            Some(last) => Err(DialError::AllFailed {
                tried: order.len(),
                last,
            }),
            None => Err(DialError::NoTargets),
        }
    }

    /// One active health probe of target `index`: can a TCP connection be
    /// opened to its first port? The connection is closed at once.
    pub(crate) async fn probe(&self, index: usize, counters: &RuleCounters) {
        let (Some(target), Some(t)) = (self.targets.get(index), counters.target(index)) else {
            return;
        };
        let result = self.dial_target(target, 0).await;
        if let Err(e) = &result {
            debug!(host = %target.host, error = %e, "health probe failed");
        }
        record_health(&t.health, target, result.is_ok());
    }

    async fn dial_target(
        &self,
        target: &Target,
        offset: u16,
    ) -> Result<(TcpStream, SocketAddr), TargetError> {
        let port = target_port(target.port, offset).ok_or(TargetError::PortOutOfRange {
            base: target.port,
            offset,
        })?;
        let addrs = self
            .resolver
            .resolve(&target.host, port, self.prefer_ipv6)
            .await?;
        let mut last = None;
        for addr in addrs {
            let source = match tokio::time::timeout(self.connect_timeout, connect(addr)).await {
                Ok(Ok(stream)) => return Ok((stream, addr)),
                Ok(Err(e)) => e,
                Err(_) => io::ErrorKind::TimedOut.into(),
            };
            debug!(%addr, error = %source, "connect failed");
            last = Some(TargetError::Connect { addr, source });
        }
        Err(last.unwrap_or_else(|| {
            ResolveError::NoAddresses {
                host: target.host.clone(),
            }
            .into()
        }))
    }
}

/// Connects to `addr` like `TcpStream::connect`, minus the
/// `getsockopt(SO_ERROR)` that follows every connect there: a nonblocking
/// connect that failed wakes its writer with EPOLLERR/EPOLLHUP, which
/// reads as write-closed readiness, so the error is fetched only then.
/// One syscall less on every forwarded connection.
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(socket.into())?;
    let ready = stream.ready(Interest::WRITABLE).await?;
    if ready.is_write_closed() {
        // Closed without a pending error: the peer reset a connection
        // that had just been made.
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::ErrorKind::ConnectionReset.into()));
    }
    Ok(stream)
}

/// Feeds one outcome to a target's health and logs when it flips.
fn record_health(cell: &HealthCell, target: &Target, ok: bool) {
    let (before, after) = cell.record(ok);
    if before.is_healthy() != after.is_healthy() {
        let target = format!("{}:{}", target.host, target.port);
        match after {
            Health::Failed { .. } => info!(%target, "target marked failed"),
            Health::Healthy { .. } => info!(%target, "target healthy again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(priority: u32) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: 80,
            priority,
            proxy_protocol: None,
        }
    }

    #[test]
    fn local_exhaustion_is_not_the_targets_fault() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let connect = |errno| TargetError::Connect {
            addr,
            source: io::Error::from_raw_os_error(errno),
        };
        for (errno, local) in [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOBUFS, true),
            (libc::ENOMEM, true),
            (libc::ECONNREFUSED, false),
            (libc::ETIMEDOUT, false),
            (libc::EHOSTUNREACH, false),
        ] {
            assert_eq!(connect(errno).is_local(), local, "errno {errno}");
        }
        let out_of_range = TargetError::PortOutOfRange {
            base: 65535,
            offset: 1,
        };
        assert!(!out_of_range.is_local());
    }

    #[test]
    fn priority_order_table() {
        let cases: [(&[u32], &[usize]); 6] = [
            (&[1], &[0]),
            (&[1, 2], &[0, 1]),
            (&[2, 1], &[1, 0]),
            (&[1, 1, 1], &[0, 1, 2]),
            (&[5, 0, 5, 0], &[1, 3, 0, 2]),
            (&[3, 2, 1, 2], &[2, 1, 3, 0]),
        ];
        for (priorities, want) in cases {
            let targets: Vec<Target> = priorities.iter().map(|&p| target(p)).collect();
            assert_eq!(priority_order(&targets), want, "{priorities:?}");
        }
    }

    #[test]
    fn attempt_order_table() {
        // Priority order 0, 1, 2, 3; `healthy[i]` is target i's health.
        let priority = [0, 1, 2, 3];
        let cases: [(&[bool], &[usize]); 6] = [
            (&[true, true, true, true], &[0, 1, 2, 3]),
            (&[false, true, true, true], &[1, 0, 2, 3]),
            (&[false, false, true, false], &[2, 0, 1, 3]),
            (&[false, false, false, true], &[3, 0, 1, 2]),
            (&[false, false, false, false], &[0, 1, 2, 3]),
            (&[true, false, false, false], &[0, 1, 2, 3]),
        ];
        for (healthy, want) in cases {
            assert_eq!(
                attempt_order(&priority, |i| healthy[i]),
                want,
                "{healthy:?}"
            );
        }
        assert_eq!(attempt_order(&[2, 0, 1], |i| i != 2), vec![0, 2, 1]);
        assert_eq!(attempt_order(&[], |_| true), Vec::<usize>::new());
    }

    #[test]
    fn target_port_table() {
        let cases = [
            (80, 0, Some(80)),
            (30000, 2, Some(30002)),
            (65535, 0, Some(65535)),
            (65535, 1, None),
            (65000, 600, None),
            (u32::MAX, 1, None),
        ];
        for (base, offset, want) in cases {
            assert_eq!(target_port(base, offset), want, "{base}+{offset}");
        }
    }
}
