//! Prometheus series. Per-rule series carry `client, rule, owner` and exist
//! once per live rule: never per port or per target.

use portunus_proto::pb;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub client: String,
    pub rule: String,
    pub owner: String,
}

/// How an SNI port handled a connection: `routed` to a rule (by pattern
/// or as the fallback) or closed as `unmatched`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SniResultLabels {
    pub result: &'static str,
}

/// Why a rate limit refused a connection (UDP: a flow) or dropped a
/// datagram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub client: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientStateLabels {
    pub client: String,
    pub state: &'static str,
}

/// One enrolled, unrevoked client as the fleet series show it: whether it
/// holds a stream, and its stored rules by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetClient {
    pub name: String,
    pub connected: bool,
    pub rules: [(&'static str, i64); 4],
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    pub client: String,
    pub owner: String,
}

/// One quota as its series show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFigures {
    pub labels: QuotaLabels,
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub outcome: String,
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    pub clients_connected: Gauge,
    /// 1 when the last scrape read the store, 0 when it failed.
    pub store_up: Gauge,
    /// Set from the store and the registry at each scrape.
    client_up: Family<ClientLabels, Gauge>,
    client_rules: Family<ClientStateLabels, Gauge>,
    /// One scrape at a time rebuilds the two families above.
    fleet_scrape: std::sync::Mutex<()>,
    auth_failures: Family<ReasonLabels, Counter>,
    operator_requests: Family<RequestLabels, Counter>,
    /// Audit rows lost because the queue was full or the store failed.
    pub audit_dropped: Counter,
    audit_pruned: Family<ReasonLabels, Counter>,
    rule_bytes_in: Family<RuleLabels, Counter>,
    rule_bytes_out: Family<RuleLabels, Counter>,
    rule_active_connections: Family<RuleLabels, Gauge>,
    rule_dns_failures: Family<RuleLabels, Counter>,
    rule_target_failovers: Family<RuleLabels, Counter>,
    rule_udp_datagrams_in: Family<RuleLabels, Counter>,
    rule_udp_datagrams_out: Family<RuleLabels, Counter>,
    rule_active_flows: Family<RuleLabels, Gauge>,
    rule_flows_dropped_overflow: Family<RuleLabels, Counter>,
    rule_source_denied: Family<RuleLabels, Counter>,
    rule_targets_unhealthy: Family<RuleLabels, Gauge>,
    /// Fleet-wide, not per rule: an unmatched connection belongs to none.
    tls_sni_route: Family<SniResultLabels, Counter>,
    /// Fleet-wide, like the SNI series: one series per reason.
    rate_limit_reject: Family<RejectReasonLabels, Counter>,
    /// Rebuilt from the store each time quotas are evaluated.
    quota_used: Family<QuotaLabels, Gauge>,
    quota_limit: Family<QuotaLabels, Gauge>,
    /// One rebuild at a time, so a deleted quota's series go for good.
    quota_rebuild: std::sync::Mutex<()>,
}

/// Counter increase between two cumulative reports. A smaller value means
/// the edge restarted its counters, so the new value is all new traffic.
pub fn counter_delta(previous: Option<u64>, current: u64) -> u64 {
    match previous {
        Some(p) if current >= p => current - p,
        _ => current,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            clients_connected: Gauge::default(),
            store_up: Gauge::default(),
            client_up: Family::default(),
            client_rules: Family::default(),
            fleet_scrape: Default::default(),
            auth_failures: Family::default(),
            operator_requests: Family::default(),
            audit_dropped: Counter::default(),
            audit_pruned: Family::default(),
            rule_bytes_in: Family::default(),
            rule_bytes_out: Family::default(),
            rule_active_connections: Family::default(),
            rule_dns_failures: Family::default(),
            rule_target_failovers: Family::default(),
            rule_udp_datagrams_in: Family::default(),
            rule_udp_datagrams_out: Family::default(),
            rule_active_flows: Family::default(),
            rule_flows_dropped_overflow: Family::default(),
            rule_source_denied: Family::default(),
            rule_targets_unhealthy: Family::default(),
            tls_sni_route: Family::default(),
            rate_limit_reject: Family::default(),
            quota_used: Family::default(),
            quota_limit: Family::default(),
            quota_rebuild: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "portunus_clients_connected",
            "Edge clients with a live control stream",
            m.clients_connected.clone(),
        );
        registry.register(
            "portunus_store_up",
            "1 when the scrape read the store, 0 when it could not",
            m.store_up.clone(),
        );
        registry.register(
            "portunus_client_up",
            "1 while an enrolled, unrevoked client holds a control stream, else 0",
            m.client_up.clone(),
        );
        registry.register(
            "portunus_client_rules",
            "Rules stored for a client, by state (pending, active, failed)",
            m.client_rules.clone(),
        );
        registry.register(
            "portunus_auth_failures",
            "Failed operator authentications and password checks, by reason",
            m.auth_failures.clone(),
        );
        registry.register(
            "portunus_operator_requests",
            "Operator API requests, by outcome (allow/deny) and reason (error code or ok)",
            m.operator_requests.clone(),
        );
        registry.register(
            "portunus_audit_dropped",
            "Audit rows dropped because the audit queue was full or the store failed",
            m.audit_dropped.clone(),
        );
        registry.register(
            "portunus_audit_pruned",
            "Audit rows deleted by retention, by the limit that removed them (age, max_rows)",
            m.audit_pruned.clone(),
        );
        registry.register(
            "portunus_rule_bytes_in",
            "Bytes from downstream peers towards targets",
            m.rule_bytes_in.clone(),
        );
        registry.register(
            "portunus_rule_bytes_out",
            "Bytes from targets back to downstream peers",
            m.rule_bytes_out.clone(),
        );
        registry.register(
            "portunus_rule_active_connections",
            "Open TCP connections",
            m.rule_active_connections.clone(),
        );
        registry.register(
            "portunus_rule_dns_failures",
            "Failed DNS resolutions of targets",
            m.rule_dns_failures.clone(),
        );
        registry.register(
            "portunus_rule_target_failovers",
            "Connections that moved past a failed target",
            m.rule_target_failovers.clone(),
        );
        registry.register(
            "portunus_rule_udp_datagrams_in",
            "UDP datagrams received from peers",
            m.rule_udp_datagrams_in.clone(),
        );
        registry.register(
            "portunus_rule_udp_datagrams_out",
            "UDP datagrams sent back to peers",
            m.rule_udp_datagrams_out.clone(),
        );
        registry.register(
            "portunus_rule_active_flows",
            "Live UDP flows",
            m.rule_active_flows.clone(),
        );
        registry.register(
            "portunus_rule_flows_dropped_overflow",
            "UDP datagrams dropped at the flow cap",
            m.rule_flows_dropped_overflow.clone(),
        );
        registry.register(
            "portunus_rule_source_denied",
            "TCP connections and UDP datagrams refused by the rule's source filter",
            m.rule_source_denied.clone(),
        );
        registry.register(
            "portunus_rule_targets_unhealthy",
            "Targets of a rule its client currently marks failed (3 connect failures in a row)",
            m.rule_targets_unhealthy.clone(),
        );
        registry.register(
            "portunus_tls_sni_route",
            "Connections on SNI ports, by result: routed to a rule or closed unmatched",
            m.tls_sni_route.clone(),
        );
        registry.register(
            "portunus_rate_limit_reject",
            "Connections and UDP flows refused, and UDP datagrams dropped, by rate limits, by reason",
            m.rate_limit_reject.clone(),
        );
        registry.register(
            "portunus_quota_used_bytes",
            "Bytes both ways an owner's rules on a client moved in the quota's current period",
            m.quota_used.clone(),
        );
        registry.register(
            "portunus_quota_limit_bytes",
            "An owner's quota on a client: bytes allowed per period",
            m.quota_limit.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Replaces the quota series with `quotas`.
    pub fn set_quotas(&self, quotas: &[QuotaFigures]) {
        let _one = self.quota_rebuild.lock().unwrap_or_else(|p| p.into_inner());
        self.quota_used.clear();
        self.quota_limit.clear();
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for q in quotas {
            self.quota_used
                .get_or_create(&q.labels)
                .set(gauge(q.used_bytes));
            self.quota_limit
                .get_or_create(&q.labels)
                .set(gauge(q.limit_bytes));
        }
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn operator_request(&self, outcome: &str, reason: &str) {
        self.operator_requests
            .get_or_create(&RequestLabels {
                outcome: outcome.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts rows retention deleted; a zero still creates the series, so
    /// a configured limit shows from the first scrape.
    pub fn audit_pruned(&self, reason: &str, rows: u64) {
        self.audit_pruned
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc_by(rows);
    }

    /// Folds a cumulative report into the series.
    pub fn apply_rule_report(
        &self,
        labels: &RuleLabels,
        previous: Option<&pb::RuleStats>,
        current: &pb::RuleStats,
    ) {
        let counters = [
            (
                &self.rule_bytes_in,
                previous.map(|p| p.bytes_in),
                current.bytes_in,
            ),
            (
                &self.rule_bytes_out,
                previous.map(|p| p.bytes_out),
                current.bytes_out,
            ),
            (
                &self.rule_dns_failures,
                previous.map(|p| p.dns_failures),
                current.dns_failures,
            ),
            (
                &self.rule_target_failovers,
                previous.map(|p| p.target_failovers),
                current.target_failovers,
            ),
            (
                &self.rule_udp_datagrams_in,
                previous.map(|p| p.udp_datagrams_in),
                current.udp_datagrams_in,
            ),
            (
                &self.rule_udp_datagrams_out,
                previous.map(|p| p.udp_datagrams_out),
                current.udp_datagrams_out,
            ),
            (
                &self.rule_flows_dropped_overflow,
                previous.map(|p| p.flows_dropped_overflow),
                current.flows_dropped_overflow,
            ),
            (
                &self.rule_source_denied,
                previous.map(|p| p.source_denied),
                current.source_denied,
            ),
        ];
        for (family, prev, cur) in counters {
            family
                .get_or_create(labels)
                .inc_by(counter_delta(prev, cur));
        }
        let sni = [
            ("routed", previous.map(|p| p.sni_routed), current.sni_routed),
            (
                "unmatched",
                previous.map(|p| p.sni_unmatched),
                current.sni_unmatched,
            ),
        ];
        for (result, prev, cur) in sni {
            let delta = counter_delta(prev, cur);
            if delta > 0 {
                self.tls_sni_route
                    .get_or_create(&SniResultLabels { result })
                    .inc_by(delta);
            }
        }
        let rejects = [
            (
                "new_connections_per_sec",
                previous.map(|p| p.rate_limit_rejects_new_connections),
                current.rate_limit_rejects_new_connections,
            ),
            (
                "concurrent_connections",
                previous.map(|p| p.rate_limit_rejects_concurrency),
                current.rate_limit_rejects_concurrency,
            ),
            (
                "bandwidth",
                previous.map(|p| p.rate_limit_rejects_bandwidth),
                current.rate_limit_rejects_bandwidth,
            ),
        ];
        for (reason, prev, cur) in rejects {
            let delta = counter_delta(prev, cur);
            if delta > 0 {
                self.rate_limit_reject
                    .get_or_create(&RejectReasonLabels { reason })
                    .inc_by(delta);
            }
        }
        self.rule_active_connections
            .get_or_create(labels)
            .set(current.active_connections as i64);
        self.rule_active_flows
            .get_or_create(labels)
            .set(current.active_flows as i64);
        let unhealthy = current.targets.iter().filter(|t| !t.healthy).count();
        self.rule_targets_unhealthy
            .get_or_create(labels)
            .set(unhealthy as i64);
    }

    /// Drops every series of a removed rule.
    pub fn remove_rule(&self, labels: &RuleLabels) {
        self.rule_bytes_in.remove(labels);
        self.rule_bytes_out.remove(labels);
        self.rule_active_connections.remove(labels);
        self.rule_dns_failures.remove(labels);
        self.rule_target_failovers.remove(labels);
        self.rule_udp_datagrams_in.remove(labels);
        self.rule_udp_datagrams_out.remove(labels);
        self.rule_active_flows.remove(labels);
        self.rule_flows_dropped_overflow.remove(labels);
        self.rule_source_denied.remove(labels);
        self.rule_targets_unhealthy.remove(labels);
    }

    /// The exposition with the per-client series rebuilt from `fleet`, so
    /// that a deleted or revoked client's series go with it.
    pub fn encode_with_fleet(&self, fleet: &[FleetClient]) -> String {
        let _one_scrape = self.fleet_scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.client_up.clear();
        self.client_rules.clear();
        for c in fleet {
            self.client_up
                .get_or_create(&ClientLabels {
                    client: c.name.clone(),
                })
                .set(i64::from(c.connected));
            for (state, n) in c.rules {
                self.client_rules
                    .get_or_create(&ClientStateLabels {
                        client: c.name.clone(),
                        state,
                    })
                    .set(n);
            }
        }
        self.encode()
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests;
