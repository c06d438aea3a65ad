//! `GET /v1/overview`: the fleet at a glance, for the console's dashboard
//! and for scripts. Scoped like the rule list: a superadmin sees every
//! client and rule, a user only their own rules (and no client census).

use super::error::ApiResult;
use crate::authz;
use crate::state::Shared;
use crate::store::clients::{self, ClientRow};
use crate::store::rules::{self, RuleRow, RuleState};
use crate::store::users::Actor;
use axum::extract::State;
use axum::{Extension, Json};
use portunus_proto::pb;
use serde::Serialize;
use std::collections::HashSet;
use utoipa::ToSchema;

/// How many rules the top-traffic list holds.
pub const TOP_RULES: usize = 5;

#[derive(Debug, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct ClientCounts {
    pub total: u64,
    pub connected: u64,
    pub offline: u64,
    pub revoked: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct RuleCounts {
    pub total: u64,
    pub active: u64,
    pub pending: u64,
    pub failed: u64,
    /// Switched off by an operator; not on their clients.
    pub disabled: u64,
}

/// Sums of the latest cumulative reports of the visible rules.
#[derive(Debug, Default, Serialize, PartialEq, Eq, ToSchema)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub active_connections: u64,
    pub active_flows: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct TopRule {
    pub rule_id: String,
    /// The rule's name, when it has one.
    pub name: Option<String>,
    pub client: String,
    pub owner: String,
    pub protocol: String,
    pub listen: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A client that is not connected while rules are assigned to it.
    ClientOffline { client: String, rules: u64 },
    RuleFailed {
        rule_id: String,
        client: String,
        reason: Option<String>,
    },
    TargetUnhealthy {
        rule_id: String,
        client: String,
        target: String,
    },
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct Overview {
    /// `null` for users who may not list clients.
    pub clients: Option<ClientCounts>,
    pub rules: RuleCounts,
    pub traffic: Traffic,
    pub top_rules: Vec<TopRule>,
    pub alerts: Vec<Alert>,
}

fn listen(spec: &portunus_domain::rule::RuleSpec) -> String {
    match spec.listen_port_end {
        Some(end) => format!("{}-{end}", spec.listen_port),
        None => spec.listen_port.to_string(),
    }
}

/// The overview of `rules`, given the clients (when the caller may see
/// them), which clients are connected, and each rule's latest report.
pub fn summarize(
    rules: &[RuleRow],
    clients: Option<&[ClientRow]>,
    connected: impl Fn(&str) -> bool,
    report: impl Fn(&str) -> Option<pb::RuleStats>,
) -> Overview {
    let mut out = Overview {
        clients: None,
        rules: RuleCounts::default(),
        traffic: Traffic::default(),
        top_rules: Vec::new(),
        alerts: Vec::new(),
    };
    if let Some(clients) = clients {
        let mut c = ClientCounts::default();
        for row in clients {
            c.total += 1;
            if row.revoked_at.is_some() {
                c.revoked += 1;
            } else if connected(&row.id) {
                c.connected += 1;
            } else {
                c.offline += 1;
            }
        }
        out.clients = Some(c);
    }
    let mut offline: Vec<(String, String, u64)> = Vec::new();
    let mut top = Vec::new();
    for r in rules {
        out.rules.total += 1;
        match r.state {
            RuleState::Active => out.rules.active += 1,
            RuleState::Pending => out.rules.pending += 1,
            RuleState::Failed => {
                out.rules.failed += 1;
                out.alerts.push(Alert::RuleFailed {
                    rule_id: r.id.clone(),
                    client: r.client_name.clone(),
                    reason: r.reason.clone(),
                });
            }
            RuleState::Disabled => {
                out.rules.disabled += 1;
                continue;
            }
        }
        if !connected(&r.client_id) {
            match offline.iter_mut().find(|(id, _, _)| *id == r.client_id) {
                Some(entry) => entry.2 += 1,
                None => offline.push((r.client_id.clone(), r.client_name.clone(), 1)),
            }
        }
        let Some(s) = report(&r.id) else { continue };
        out.traffic.bytes_in += s.bytes_in;
        out.traffic.bytes_out += s.bytes_out;
        out.traffic.active_connections += s.active_connections;
        out.traffic.active_flows += s.active_flows;
        let mut seen = HashSet::new();
        for t in s.targets.iter().filter(|t| !t.healthy) {
            let target = format!("{}:{}", t.host, t.port);
            if seen.insert(target.clone()) {
                out.alerts.push(Alert::TargetUnhealthy {
                    rule_id: r.id.clone(),
                    client: r.client_name.clone(),
                    target,
                });
            }
        }
        top.push(TopRule {
            rule_id: r.id.clone(),
            name: r.label.name.clone(),
            client: r.client_name.clone(),
            owner: r.owner.clone(),
            protocol: r.spec.protocol.as_str().to_string(),
            listen: listen(&r.spec),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
        });
    }
    for (_, client, rules) in offline {
        out.alerts.insert(0, Alert::ClientOffline { client, rules });
    }
    top.retain(|t| t.bytes_in + t.bytes_out > 0);
    top.sort_by(|a, b| {
        (b.bytes_in + b.bytes_out)
            .cmp(&(a.bytes_in + a.bytes_out))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
    top.truncate(TOP_RULES);
    out.top_rules = top;
    out
}

/// The fleet at a glance: counts, traffic, the busiest rules, alerts.
///
/// Scoped like the rule list: a user sees only their own rules and no
/// client census.
#[utoipa::path(get, path = "/v1/overview", tag = "overview", operation_id = "getOverview",
    responses((status = 200, description = "The overview.", body = Overview)))]
pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Overview>> {
    let owner = authz::visible_owner(&actor, None).map(str::to_string);
    let census = authz::require_superadmin(&actor).is_ok();
    let (rules, clients) = state
        .store
        .call(move |c| {
            let rules = rules::list(c, None, owner.as_deref())?;
            let clients = if census {
                Some(clients::list(c)?)
            } else {
                None
            };
            Ok((rules, clients))
        })
        .await?;
    Ok(Json(summarize(
        &rules,
        clients.as_deref(),
        |id| state.registry.info(id).is_some(),
        |id| state.stats.get(id).map(|r| r.stats),
    )))
}

#[cfg(test)]
mod tests;
