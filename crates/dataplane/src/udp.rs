//! UDP forwarding. Each listen port runs one task (`port.rs`) that reads
//! the listen socket in batches (`io.rs`) and keeps the port's flows in a
//! table keyed by source address (`table.rs`). A flow owns one socket
//! connected to the target chosen when it started (`upstream.rs`), watched
//! by the port's reply poller (`replies.rs`); the target's replies go back
//! to the source through the listen socket.
//!
//! Flows end when idle for `udp_flow_idle`, when their upstream socket
//! reports an ICMP error, or with their listener: replies can only reach
//! a source from the port it wrote to, so a stopped rule keeps its listen
//! sockets while its flows drain (`drain.rs`).
//!
//! **Invariant:** memory does not grow per flow beyond its small state;
//! every receive borrows its worker thread's one buffer set (`io.rs`).

mod budget;
mod drain;
mod io;
mod port;
mod replies;
mod table;
#[cfg(test)]
mod tests;
mod train;
mod upstream;

use crate::engine::Engine;
use crate::error::{ActivationError, ActivationReason};
use crate::gate::Gate;
use crate::handle::Connections;
use crate::limit::RuleLimits;
use crate::listener;
use crate::resolve::Resolver;
use crate::stats::RuleCounters;
use portunus_domain::rule::RuleSpec;
use portunus_domain::source_filter::SourceFilter;
use replies::Replies;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, Instrument};
use upstream::Targets;

pub use budget::{flows_for_descriptors, FlowBudget};
pub(crate) use drain::{DrainingPorts, UdpDrain};

/// What the port tasks of one UDP rule share.
pub(crate) struct UdpRule {
    counters: Arc<RuleCounters>,
    targets: Targets,
    /// New flows pass these; datagrams are charged to their bandwidth caps.
    limits: RuleLimits,
    /// Read when a flow starts (the cap) and when flows are reaped (the
    /// idle timeout), so new settings reach running rules.
    engine: Engine,
    /// Which sources may start a flow; a flow's later datagrams come from
    /// the source that passed it.
    filter: SourceFilter,
    /// The owner's quota gate: closed, the ports take no new source and
    /// drop the flows they have.
    gate: Arc<Gate>,
}

impl UdpRule {
    pub(crate) fn new(
        spec: &RuleSpec,
        counters: Arc<RuleCounters>,
        resolver: Resolver,
        limits: RuleLimits,
        engine: Engine,
        filter: SourceFilter,
        gate: Arc<Gate>,
    ) -> UdpRule {
        UdpRule {
            counters,
            targets: Targets::new(spec, resolver),
            limits,
            engine,
            filter,
            gate,
        }
    }
}

/// Binds all ports of `spec` and starts one task per port among the rule's
/// `connections`, so a stop drains them. Nothing is left bound on error.
/// Must run inside a Tokio runtime.
pub(crate) fn start(
    id: &str,
    spec: &RuleSpec,
    rule: UdpRule,
    connections: &Connections,
    registry: DrainingPorts,
) -> Result<UdpDrain, ActivationError> {
    let start = spec.listen_start();
    let bound = listener::bind_udp(start..=spec.listen_end(), spec.listen_ip())?;
    let sockets = bound
        .into_iter()
        .zip(start..=spec.listen_end())
        .map(|(socket, port)| {
            let fail = |e: std::io::Error| {
                ActivationError::new(
                    ActivationReason::BindFailed,
                    format!("udp port {port}: {e}"),
                )
            };
            Ok((
                io::Socket::new(socket).map_err(fail)?,
                Replies::new().map_err(fail)?,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rule = Arc::new(rule);
    let drain = UdpDrain {
        signal: CancellationToken::new(),
        ports: start..=spec.listen_end(),
        registry,
    };
    for ((socket, replies), offset) in sockets.into_iter().zip(0u16..) {
        let span = debug_span!("udp", rule = id, port = start.wrapping_add(offset));
        let signal = drain.signal.clone();
        let port = port::run(rule.clone(), socket, replies, offset, signal);
        connections.spawn(port.instrument(span));
    }
    Ok(drain)
}
