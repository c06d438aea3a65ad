//! UDP forwarding. Each listen port runs one task (`port.rs`) that reads
//! the listen socket in batches (`io.rs`) and keeps the port's flows in a
//! table keyed by source address (`table.rs`). A flow owns one socket
//! connected to the target chosen when it started (`upstream.rs`); the
//! target's replies go back to the source through the listen socket.
//!
//! Flows end when idle for `udp_flow_idle`, when their upstream socket
//! reports an ICMP error, or with their listener: replies can only reach
//! a source from the port it wrote to, so a closed listen socket ends the
//! flows behind it and there is nothing to drain.
//!
//! **Invariant:** memory does not grow per flow beyond its small state;
//! every receive borrows its worker thread's one buffer set (`io.rs`).

mod budget;
mod io;
mod port;
mod table;
#[cfg(test)]
mod tests;
mod train;
mod upstream;

use crate::engine::Engine;
use crate::error::{ActivationError, ActivationReason};
use crate::limit::RuleLimits;
use crate::listener;
use crate::resolve::Resolver;
use crate::stats::RuleCounters;
use portunus_domain::rule::RuleSpec;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::{debug_span, Instrument};
use upstream::Targets;

pub use budget::{flows_for_descriptors, FlowBudget};

/// What the port tasks of one UDP rule share.
pub(crate) struct UdpRule {
    counters: Arc<RuleCounters>,
    targets: Targets,
    /// New flows pass these; datagrams are charged to their bandwidth caps.
    limits: RuleLimits,
    /// Read when a flow starts (the cap) and when flows are reaped (the
    /// idle timeout), so new settings reach running rules.
    engine: Engine,
}

impl UdpRule {
    pub(crate) fn new(
        spec: &RuleSpec,
        counters: Arc<RuleCounters>,
        resolver: Resolver,
        limits: RuleLimits,
        engine: Engine,
    ) -> UdpRule {
        UdpRule {
            counters,
            targets: Targets::new(spec, resolver),
            limits,
            engine,
        }
    }
}

/// Binds all ports of `spec` and starts one task per port. Nothing is left
/// bound on error. Must run inside a Tokio runtime.
pub(crate) fn start(
    id: &str,
    spec: &RuleSpec,
    rule: UdpRule,
) -> Result<Vec<JoinHandle<()>>, ActivationError> {
    let start = spec.listen_start();
    let bound = listener::bind_udp(start..=spec.listen_end())?;
    let sockets = bound
        .into_iter()
        .zip(start..=spec.listen_end())
        .map(|(socket, port)| {
            io::Socket::new(socket).map_err(|e| {
                ActivationError::new(
                    ActivationReason::BindFailed,
                    format!("udp port {port}: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rule = Arc::new(rule);
    Ok(sockets
        .into_iter()
        .zip(0u16..)
        .map(|(socket, offset)| {
            let span = debug_span!("udp", rule = id, port = start.wrapping_add(offset));
            tokio::spawn(port::run(rule.clone(), socket, offset).instrument(span))
        })
        .collect())
}
