//! Counters of a running rule, updated as bytes move, and their snapshots.

use crate::copy::Direction;
use crate::health::HealthCell;
use crate::limit::Reject;
use portunus_domain::rule::RuleSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one rule, cumulative since it was started.
/// `bytes_in` flows from downstream peers towards targets, `bytes_out` back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_total: u64,
    pub active_connections: u64,
    pub connect_failures: u64,
    pub dns_failures: u64,
    pub target_failovers: u64,
    pub udp_datagrams_in: u64,
    pub udp_datagrams_out: u64,
    pub active_flows: u64,
    pub flows_dropped_overflow: u64,
    /// All rate-limit refusals: the three below together.
    pub rate_limit_rejects: u64,
    /// New connections (UDP: new flows) refused by `new_connections_per_sec`.
    pub rate_limit_rejects_new_connections: u64,
    /// New connections (UDP: new flows) refused by `concurrent_connections`.
    pub rate_limit_rejects_concurrency: u64,
    /// UDP datagrams dropped by a bandwidth cap.
    pub rate_limit_rejects_bandwidth: u64,
    pub sni_routed: u64,
    pub sni_unmatched: u64,
    /// TCP connections closed at accept and UDP datagrams dropped before a
    /// flow existed, because the source filter refused their peer.
    pub source_denied: u64,
    /// TCP connections refused and UDP datagrams dropped while the owner's
    /// quota gate was closed.
    pub quota_refused: u64,
    pub ports: Vec<PortStats>,
    pub targets: Vec<TargetStats>,
}

/// One listen port's share of its rule. For UDP rules the connection
/// counters count flows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    pub port: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_total: u64,
    pub active_connections: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetStats {
    pub host: String,
    pub port: u16,
    pub connects_ok: u64,
    pub connects_failed: u64,
    pub healthy: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A monotonic counter or, with `dec`, a gauge. Relaxed ordering: readers
/// want a recent value, not a consistent cut across counters.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(&self) {
        self.add(1);
    }

    fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Bytes {
    inbound: Counter,
    outbound: Counter,
}

impl Bytes {
    fn add(&self, direction: Direction, n: u64) {
        match direction {
            Direction::Inbound => self.inbound.add(n),
            Direction::Outbound => self.outbound.add(n),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PortCounters {
    port: u16,
    bytes: Bytes,
    connections_total: Counter,
    active_connections: Counter,
}

#[derive(Debug)]
pub(crate) struct TargetCounters {
    host: String,
    port: u16,
    pub(crate) connects_ok: Counter,
    pub(crate) connects_failed: Counter,
    pub(crate) health: HealthCell,
    bytes: Bytes,
}

#[derive(Debug)]
pub(crate) struct RuleCounters {
    bytes: Bytes,
    connections_total: Counter,
    active_connections: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) dns_failures: Counter,
    pub(crate) target_failovers: Counter,
    /// Connections an SNI port handed to this rule (by pattern or as its
    /// fallback), and connections it closed for want of any route; the
    /// latter are counted on the port's oldest rule.
    pub(crate) sni_routed: Counter,
    pub(crate) sni_unmatched: Counter,
    pub(crate) source_denied: Counter,
    pub(crate) quota_refused: Counter,
    /// Ended connections that moved bulk bytes with splice; not reported,
    /// but lets tests tell the copy paths apart.
    pub(crate) spliced_connections: Counter,
    rejects_new_connections: Counter,
    rejects_concurrency: Counter,
    rejects_bandwidth: Counter,
    pub(crate) udp: UdpCounters,
    /// Indexed by listen port minus the first listen port.
    ports: Vec<PortCounters>,
    /// Indexed like `RuleSpec::targets`.
    targets: Vec<TargetCounters>,
}

impl RuleCounters {
    pub(crate) fn new(spec: &RuleSpec) -> Self {
        let ports = (spec.listen_start()..=spec.listen_end())
            .map(|port| PortCounters {
                port,
                bytes: Bytes::default(),
                connections_total: Counter::default(),
                active_connections: Counter::default(),
            })
            .collect();
        let targets = spec
            .targets
            .iter()
            .map(|t| TargetCounters {
                host: t.host.clone(),
                port: u16::try_from(t.port).unwrap_or(0),
                connects_ok: Counter::default(),
                connects_failed: Counter::default(),
                health: HealthCell::default(),
                bytes: Bytes::default(),
            })
            .collect();
        RuleCounters {
            bytes: Bytes::default(),
            connections_total: Counter::default(),
            active_connections: Counter::default(),
            connect_failures: Counter::default(),
            dns_failures: Counter::default(),
            target_failovers: Counter::default(),
            sni_routed: Counter::default(),
            sni_unmatched: Counter::default(),
            source_denied: Counter::default(),
            quota_refused: Counter::default(),
            spliced_connections: Counter::default(),
            rejects_new_connections: Counter::default(),
            rejects_concurrency: Counter::default(),
            rejects_bandwidth: Counter::default(),
            udp: UdpCounters::default(),
            ports,
            targets,
        }
    }

    /// Counts a connection or flow refused at admission.
    pub(crate) fn rate_limit_reject(&self, reject: Reject) {
        match reject {
            Reject::NewConnectionRate => self.rejects_new_connections.inc(),
            Reject::Concurrency => self.rejects_concurrency.inc(),
        }
    }

    /// Counts datagrams a bandwidth cap dropped.
    pub(crate) fn rate_limit_drop(&self, datagrams: u64) {
        self.rejects_bandwidth.add(datagrams);
    }

    pub(crate) fn target(&self, index: usize) -> Option<&TargetCounters> {
        self.targets.get(index)
    }

    /// Counts bytes that reached their destination on `port_index` through
    /// target `target_index`.
    pub(crate) fn record_bytes(
        &self,
        port_index: usize,
        target_index: usize,
        direction: Direction,
        n: usize,
    ) {
        let n = n as u64;
        self.bytes.add(direction, n);
        if let Some(p) = self.ports.get(port_index) {
            p.bytes.add(direction, n);
        }
        if let Some(t) = self.targets.get(target_index) {
            t.bytes.add(direction, n);
        }
    }

    pub(crate) fn snapshot(&self) -> RuleStats {
        RuleStats {
            bytes_in: self.bytes.inbound.get(),
            bytes_out: self.bytes.outbound.get(),
            connections_total: self.connections_total.get(),
            active_connections: self.active_connections.get(),
            connect_failures: self.connect_failures.get(),
            dns_failures: self.dns_failures.get(),
            target_failovers: self.target_failovers.get(),
            udp_datagrams_in: self.udp.datagrams_in.get(),
            udp_datagrams_out: self.udp.datagrams_out.get(),
            active_flows: self.udp.active_flows.get(),
            flows_dropped_overflow: self.udp.flows_dropped_overflow.get(),
            rate_limit_rejects: self.rejects_new_connections.get()
                + self.rejects_concurrency.get()
                + self.rejects_bandwidth.get(),
            rate_limit_rejects_new_connections: self.rejects_new_connections.get(),
            rate_limit_rejects_concurrency: self.rejects_concurrency.get(),
            rate_limit_rejects_bandwidth: self.rejects_bandwidth.get(),
            sni_routed: self.sni_routed.get(),
            sni_unmatched: self.sni_unmatched.get(),
            source_denied: self.source_denied.get(),
            quota_refused: self.quota_refused.get(),
            ports: self
                .ports
                .iter()
                .map(|p| PortStats {
                    port: p.port,
                    bytes_in: p.bytes.inbound.get(),
                    bytes_out: p.bytes.outbound.get(),
                    connections_total: p.connections_total.get(),
                    active_connections: p.active_connections.get(),
                })
                .collect(),
            targets: self
                .targets
                .iter()
                .map(|t| TargetStats {
                    host: t.host.clone(),
                    port: t.port,
                    connects_ok: t.connects_ok.get(),
                    connects_failed: t.connects_failed.get(),
                    healthy: t.health.is_healthy(),
                    bytes_in: t.bytes.inbound.get(),
                    bytes_out: t.bytes.outbound.get(),
                })
                .collect(),
        }
    }
}

/// One accepted connection, counted from accept until drop, so the active
/// gauges stay exact whichever way the connection ends (error, abort, or a
/// task dropped before it ran).
pub(crate) struct ConnectionGuard {
    counters: Arc<RuleCounters>,
    port_index: usize,
}

impl ConnectionGuard {
    pub(crate) fn open(counters: Arc<RuleCounters>, port_index: usize) -> Self {
        counters.connections_total.inc();
        counters.active_connections.inc();
        if let Some(p) = counters.ports.get(port_index) {
            p.connections_total.inc();
            p.active_connections.inc();
        }
        ConnectionGuard {
            counters,
            port_index,
        }
    }

    pub(crate) fn counters(&self) -> &RuleCounters {
        &self.counters
    }

    pub(crate) fn port_index(&self) -> usize {
        self.port_index
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counters.active_connections.dec();
        if let Some(p) = self.counters.ports.get(self.port_index) {
            p.active_connections.dec();
        }
    }
}

/// Counters only UDP rules move. Datagrams count once they are handed to
/// the kernel for their destination.
#[derive(Debug, Default)]
pub(crate) struct UdpCounters {
    pub(crate) datagrams_in: Counter,
    pub(crate) datagrams_out: Counter,
    /// Datagrams dropped because they would have opened a flow past the
    /// rule's cap.
    pub(crate) flows_dropped_overflow: Counter,
    /// Live flows of the rule, all ports together: the number the flow cap
    /// is checked against.
    active_flows: Counter,
}

/// One UDP flow's place under its rule's flow cap, held from admission
/// until the flow leaves its table. Like `ConnectionGuard`, it keeps the
/// gauges exact however the flow ends.
#[derive(Debug)]
pub(crate) struct FlowGuard {
    counters: Arc<RuleCounters>,
    port_index: usize,
}

impl FlowGuard {
    /// Takes a place when fewer than `cap` flows of the rule are live; the
    /// check and the increment are one atomic step, so ports of a range
    /// admitting at once cannot pass the cap together.
    pub(crate) fn try_open(
        counters: Arc<RuleCounters>,
        port_index: usize,
        cap: u64,
    ) -> Option<Self> {
        counters
            .udp
            .active_flows
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        if let Some(p) = counters.ports.get(port_index) {
            p.active_connections.inc();
        }
        Some(FlowGuard {
            counters,
            port_index,
        })
    }

    /// Counts the flow in the totals once it passed every admission check.
    pub(crate) fn count(&self) {
        self.counters.connections_total.inc();
        if let Some(p) = self.counters.ports.get(self.port_index) {
            p.connections_total.inc();
        }
    }
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        self.counters.udp.active_flows.dec();
        if let Some(p) = self.counters.ports.get(self.port_index) {
            p.active_connections.dec();
        }
    }
}
