//! JSON shapes the API answers with.

use crate::control::registry::SessionInfo;
use crate::store::clients::ClientRow;
use crate::store::rules::{RuleRow, RuleState};
use crate::timefmt::rfc3339;
use portunus_domain::rule::RuleSpec;
use portunus_proto::pb;
use serde::Serialize;
use utoipa::ToSchema;

/// An edge client as the operator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    #[schema(example = "01J8XQ3V8Z6D1N0M4Q2W5E7R9T")]
    pub client_id: String,
    #[schema(example = "edge-01")]
    pub name: String,
    /// The public host consumers of this client's ports reach.
    pub address: Option<String>,
    /// Whether the client holds a live control stream now.
    pub connected: bool,
    pub remote_addr: Option<String>,
    #[schema(format = DateTime)]
    pub connected_since: Option<String>,
    /// Whether its enrollment has been redeemed.
    pub enrolled: bool,
    pub revoked: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl ClientView {
    pub fn new(c: ClientRow, session: Option<SessionInfo>) -> ClientView {
        ClientView {
            connected: session.is_some(),
            remote_addr: session
                .as_ref()
                .and_then(|s| s.remote)
                .map(|a| a.to_string()),
            connected_since: session.map(|s| rfc3339(s.since)),
            enrolled: c.enrolled_at.is_some(),
            revoked: c.revoked_at.is_some(),
            created_at: rfc3339(c.created_at),
            client_id: c.id,
            name: c.name,
            address: c.address,
        }
    }
}

/// A rule: where it lives, who owns it, its state, and its specification.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    #[schema(example = "01J8XR0K2M4N6P8Q0S2T4V6W8Y")]
    pub rule_id: String,
    /// The client's name.
    #[schema(example = "edge-01")]
    pub client: String,
    pub client_id: String,
    /// The user who pushed it.
    pub owner: String,
    /// Unique on its client; the command line takes it where a rule id goes.
    #[schema(example = "web-frontend")]
    pub name: Option<String>,
    /// Free text for operators.
    pub note: Option<String>,
    /// False while an operator has switched the rule off: it is then not
    /// on its client, and its `state` is `disabled`.
    pub enabled: bool,
    pub state: RuleState,
    /// Why the edge could not activate it, when `state` is `failed`.
    pub reason: Option<String>,
    /// True while its owner's traffic quota on its client is spent or past
    /// its end date: the edge refuses new connections and flows for it and
    /// has closed the open ones. The rule stays as it is.
    pub quota_exhausted: bool,
    #[serde(flatten)]
    pub spec: RuleSpec,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        RuleView {
            rule_id: r.id,
            client: r.client_name,
            client_id: r.client_id,
            owner: r.owner,
            name: r.label.name,
            note: r.label.note,
            enabled: r.enabled,
            state: r.state,
            reason: r.reason,
            quota_exhausted: false,
            spec: r.spec,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

impl RuleView {
    /// Marks the rule when its owner's quota on its client cuts it off.
    pub fn with_quota(mut self, cut_off: &crate::quota::Cutoffs) -> RuleView {
        self.quota_exhausted = cut_off
            .get(&self.client_id)
            .is_some_and(|owners| owners.contains(&self.owner));
        self
    }
}

/// A rule's counters from its client's latest report (all zero and
/// `reported_at` null before the first one). Counters are cumulative since
/// the client started the rule.
#[derive(Debug, Serialize, Default, ToSchema)]
pub struct StatsView {
    pub rule_id: String,
    /// The rule's name, when it has one.
    pub name: Option<String>,
    pub client: String,
    #[schema(format = DateTime)]
    pub reported_at: Option<String>,
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
    pub rate_limit_rejects: u64,
    pub sni_routed: u64,
    pub sni_unmatched: u64,
    /// Connections and UDP datagrams the source filter refused.
    pub source_denied: u64,
    /// Connections refused (and closed) and UDP datagrams dropped because
    /// the owner's quota on the client is spent.
    pub quota_refused: u64,
    /// With `per_port=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub per_port: Option<Vec<PortView>>,
    /// With `per_target=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub per_target: Option<Vec<TargetView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortView {
    pub port: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_total: u64,
    pub active_connections: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    pub host: String,
    pub port: u32,
    pub healthy: bool,
    pub connects_ok: u64,
    pub connects_failed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl StatsView {
    pub fn new(
        rule: &RuleRow,
        s: Option<(&pb::RuleStats, i64)>,
        per_port: bool,
        per_target: bool,
    ) -> StatsView {
        let mut v = StatsView {
            rule_id: rule.id.clone(),
            name: rule.label.name.clone(),
            client: rule.client_name.clone(),
            ..Default::default()
        };
        let Some((s, at)) = s else {
            v.per_port = per_port.then(Vec::new);
            v.per_target = per_target.then(Vec::new);
            return v;
        };
        v.reported_at = Some(rfc3339(at));
        v.bytes_in = s.bytes_in;
        v.bytes_out = s.bytes_out;
        v.connections_total = s.connections_total;
        v.active_connections = s.active_connections;
        v.connect_failures = s.connect_failures;
        v.dns_failures = s.dns_failures;
        v.target_failovers = s.target_failovers;
        v.udp_datagrams_in = s.udp_datagrams_in;
        v.udp_datagrams_out = s.udp_datagrams_out;
        v.active_flows = s.active_flows;
        v.flows_dropped_overflow = s.flows_dropped_overflow;
        v.rate_limit_rejects = s.rate_limit_rejects;
        v.sni_routed = s.sni_routed;
        v.sni_unmatched = s.sni_unmatched;
        v.source_denied = s.source_denied;
        v.quota_refused = s.quota_refused;
        v.per_port = per_port.then(|| {
            s.ports
                .iter()
                .map(|p| PortView {
                    port: p.port,
                    bytes_in: p.bytes_in,
                    bytes_out: p.bytes_out,
                    connections_total: p.connections_total,
                    active_connections: p.active_connections,
                })
                .collect()
        });
        v.per_target = per_target.then(|| {
            s.targets
                .iter()
                .map(|t| TargetView {
                    host: t.host.clone(),
                    port: t.port,
                    healthy: t.healthy,
                    connects_ok: t.connects_ok,
                    connects_failed: t.connects_failed,
                    bytes_in: t.bytes_in,
                    bytes_out: t.bytes_out,
                })
                .collect()
        });
        v
    }
}
