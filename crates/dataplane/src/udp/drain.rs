//! Draining UDP rules. A reply can only reach its source from the port
//! the source wrote to, so a stopped UDP rule keeps its listen sockets
//! while its flows drain: the ports take no new source and end once their
//! flows are gone. Since the sockets stay bound, a new rule on one of
//! those ports cuts the drain short and takes the port over, so removing a
//! rule and pushing another on its port works as it does for TCP.

use crate::handle::Connections;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// The draining UDP rules of one engine, by listen port.
#[derive(Clone, Default)]
pub(crate) struct DrainingPorts {
    rules: Arc<Mutex<Vec<Draining>>>,
}

struct Draining {
    ports: RangeInclusive<u16>,
    connections: Connections,
}

impl DrainingPorts {
    fn add(&self, ports: RangeInclusive<u16>, connections: Connections) {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        rules.retain(|d| !d.connections.finished());
        rules.push(Draining { ports, connections });
    }

    /// Ends at once every draining rule that still holds one of `ports`,
    /// and returns when their sockets are closed.
    pub(crate) async fn take_over(&self, ports: &RangeInclusive<u16>) {
        let overlapping: Vec<Connections> = {
            let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
            let (hit, kept) = std::mem::take(&mut *rules)
                .into_iter()
                .partition(|d| d.ports.start() <= ports.end() && ports.start() <= d.ports.end());
            *rules = kept;
            hit.into_iter().map(|d| d.connections).collect()
        };
        for connections in overlapping {
            tracing::debug!("a new rule takes over a draining UDP port");
            connections.abort_and_wait().await;
        }
    }
}

/// A UDP rule's side of draining: the signal its port tasks watch.
pub(crate) struct UdpDrain {
    pub(crate) signal: CancellationToken,
    pub(crate) ports: RangeInclusive<u16>,
    pub(crate) registry: DrainingPorts,
}

impl UdpDrain {
    /// Stops the ports taking new sources and lists them as draining;
    /// their tasks are the rule's connections.
    pub(crate) fn begin(&self, connections: &Connections) {
        self.signal.cancel();
        self.registry.add(self.ports.clone(), connections.clone());
    }
}
