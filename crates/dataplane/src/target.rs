//! Choosing and dialing a rule's targets: by priority, every resolved
//! address of one target before the next target.

use crate::resolve::{ResolveError, Resolver};
use crate::stats::RuleCounters;
use portunus_domain::rule::{RuleSpec, Target};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::debug;

/// How long one address may take to accept a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Target indices in the order to try them: lowest priority number first,
/// list order among equals.
pub(crate) fn attempt_order(targets: &[Target]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| targets[i].priority);
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
    order: Vec<usize>,
    prefer_ipv6: bool,
    resolver: Resolver,
    connect_timeout: Duration,
}

impl Dialer {
    pub(crate) fn new(spec: &RuleSpec, resolver: Resolver) -> Self {
        Dialer {
            order: attempt_order(&spec.targets),
            targets: spec.targets.clone(),
            prefer_ipv6: spec.prefer_ipv6,
            resolver,
            connect_timeout: CONNECT_TIMEOUT,
        }
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
        let mut last = None;
        for (attempt, &index) in self.order.iter().enumerate() {
            let target = &self.targets[index];
            let per_target = counters.target(index);
            match self.dial_target(target, offset, counters).await {
                Ok((stream, addr)) => {
                    if let Some(t) = per_target {
                        t.connects_ok.inc();
                    }
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
                    if let Some(t) = per_target {
                        t.connects_failed.inc();
                    }
                    debug!(host = %target.host, error = %e, "target failed");
                    last = Some(e);
                }
            }
        }
        match last {
            Some(last) => Err(DialError::AllFailed {
                tried: self.order.len(),
                last,
            }),
            None => Err(DialError::NoTargets),
        }
    }

    async fn dial_target(
        &self,
        target: &Target,
        offset: u16,
        counters: &RuleCounters,
    ) -> Result<(TcpStream, SocketAddr), TargetError> {
        let port = target_port(target.port, offset).ok_or(TargetError::PortOutOfRange {
            base: target.port,
            offset,
        })?;
        let addrs = match self
            .resolver
            .resolve(&target.host, port, self.prefer_ipv6)
            .await
        {
            Ok(addrs) => addrs,
            Err(e) => {
                counters.dns_failures.inc();
                return Err(e.into());
            }
        };
        let mut last = None;
        for addr in addrs {
            let source =
                match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
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
    fn attempt_order_table() {
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
            assert_eq!(attempt_order(&targets), want, "{priorities:?}");
        }
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
