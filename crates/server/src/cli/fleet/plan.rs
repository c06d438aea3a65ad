//! What `apply` would do: a pure comparison of the fleet file with the
//! server's current state, matched by identity (client, protocol, listen
//! port or range, SNI pattern), never by id.

use super::file::{describe, rule_key, CapEntry, Fleet, GrantEntry, RuleEntry, RuleKey};
use portunus_domain::rule::{RateLimit, RuleSpec};
use portunus_domain::ErrorCode;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct CurrentRule {
    pub rule_id: String,
    pub client: String,
    pub owner: String,
    pub spec: RuleSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CurrentGrant {
    pub grant_id: String,
    pub grant: GrantEntry,
}

/// The server's state as the applier sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub rules: Vec<CurrentRule>,
    /// Owner envelopes; only a superadmin reads them.
    pub caps: Vec<CapEntry>,
    pub grants: Vec<CurrentGrant>,
}

/// Who applies: rules are created as their owner.
#[derive(Debug, Clone)]
pub struct Applier {
    pub user_id: String,
    pub superadmin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    CreateRule(RuleEntry),
    /// Only caps differ: changed in place, the rule id and its live
    /// connections stay.
    UpdateRule {
        rule_id: String,
        entry: RuleEntry,
        diffs: Vec<String>,
    },
    /// An identity-defining field differs: removed, then pushed again.
    ReplaceRule {
        rule_id: String,
        entry: RuleEntry,
        diffs: Vec<String>,
    },
    DeleteRule(CurrentRule),
    SetCap {
        entry: CapEntry,
        diffs: Vec<String>,
    },
    DeleteCap(CapEntry),
    CreateGrant(GrantEntry),
    DeleteGrant(CurrentGrant),
    /// An entry the applier may not converge; reported with its code.
    Refuse {
        what: String,
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Rules in scope that the file does not list, kept without `--prune`.
    pub unlisted: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "none".into(),
        Some(v) => v.to_string(),
    }
}

/// `field: old → new` for every top-level field that differs.
pub fn field_diffs<T: serde::Serialize>(old: &T, new: &T) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(old).unwrap_or(Value::Null),
        serde_json::to_value(new).unwrap_or(Value::Null),
    );
    let keys: BTreeSet<&String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|o| o.keys())
        .collect();
    keys.into_iter()
        .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                show(a.get(k.as_str())),
                show(b.get(k.as_str()))
            )
        })
        .collect()
}

fn only_caps_differ(old: &RuleSpec, new: &RuleSpec) -> bool {
    RuleSpec {
        rate_limit: new.rate_limit,
        ..old.clone()
    } == *new
}

fn refuse(what: String, code: ErrorCode, message: impl Into<String>) -> Step {
    Step::Refuse {
        what,
        code,
        message: message.into(),
    }
}

/// The steps that take `current` to `fleet`. Rules of the covered clients
/// (the file's `clients` and every client it lists a rule on) that the
/// file does not list are deleted with `prune`. Owner caps and grants are
/// pruned only when the file has entries of that kind, so a rules-only
/// file never revokes a grant.
pub fn plan(fleet: &Fleet, current: &Current, me: &Applier, prune: bool) -> Plan {
    let mut out = Plan::default();
    let scope: BTreeSet<&str> = fleet
        .clients
        .iter()
        .map(String::as_str)
        .chain(fleet.rules.iter().map(|e| e.item.client.as_str()))
        .collect();

    // Grants first: a tenant's rules need them.
    let grants = grant_steps(fleet, current, me, prune, &scope);
    out.steps.extend(grants.0);
    let by_key: HashMap<RuleKey, &CurrentRule> = current
        .rules
        .iter()
        .map(|r| (rule_key(&r.client, &r.spec), r))
        .collect();
    let mut listed = BTreeSet::new();
    let mut rule_steps = Vec::new();
    for e in &fleet.rules {
        let entry = &e.item;
        let key = rule_key(&entry.client, &entry.spec);
        let what = format!("rule {}", describe(&entry.client, &entry.spec));
        match by_key.get(&key) {
            Some(cur) => {
                listed.insert(cur.rule_id.clone());
                if let Some(owner) = entry.owner.as_ref().filter(|o| **o != cur.owner) {
                    rule_steps.push(refuse(
                        what,
                        ErrorCode::NotOwner,
                        format!("owned by {} on the server, {owner} in the file; a rule keeps its owner", cur.owner),
                    ));
                } else if cur.spec != entry.spec {
                    let diffs = field_diffs(&cur.spec, &entry.spec);
                    let (rule_id, entry) = (cur.rule_id.clone(), entry.clone());
                    rule_steps.push(if only_caps_differ(&cur.spec, &entry.spec) {
                        Step::UpdateRule {
                            rule_id,
                            entry,
                            diffs,
                        }
                    } else {
                        Step::ReplaceRule {
                            rule_id,
                            entry,
                            diffs,
                        }
                    });
                }
            }
            None => match entry.owner.as_ref().filter(|o| **o != me.user_id) {
                Some(owner) => rule_steps.push(refuse(
                    what,
                    ErrorCode::NotOwner,
                    format!(
                        "rules are created as their owner: apply this entry with {owner}'s token"
                    ),
                )),
                None => rule_steps.push(Step::CreateRule(entry.clone())),
            },
        }
    }
    // Deletions first, so a port a replaced or re-listed rule needs is free.
    for r in &current.rules {
        if scope.contains(r.client.as_str()) && !listed.contains(&r.rule_id) {
            if prune {
                out.steps.push(Step::DeleteRule(r.clone()));
            } else {
                out.unlisted += 1;
            }
        }
    }
    out.steps.extend(rule_steps);
    out.steps
        .extend(cap_steps(fleet, current, me, prune, &scope));
    out.steps.extend(grants.1);
    out
}

/// Grant creations (and refusals), and grant deletions to run last since
/// revoking a grant removes the rules that depend on it.
fn grant_steps(
    fleet: &Fleet,
    current: &Current,
    me: &Applier,
    prune: bool,
    scope: &BTreeSet<&str>,
) -> (Vec<Step>, Vec<Step>) {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for e in &fleet.grants {
        let g = &e.item;
        if current.grants.iter().any(|c| c.grant == *g) {
            continue;
        }
        if me.superadmin {
            first.push(Step::CreateGrant(g.clone()));
        } else {
            first.push(refuse(
                format!(
                    "grant {} {} {}-{}",
                    g.user, g.client, g.listen_port_start, g.listen_port_end
                ),
                ErrorCode::Forbidden,
                "only a superadmin creates grants",
            ));
        }
    }
    if prune && me.superadmin && !fleet.grants.is_empty() {
        for c in &current.grants {
            let in_scope = c.grant.client == "*" || scope.contains(c.grant.client.as_str());
            if in_scope && !fleet.grants.iter().any(|e| e.item == c.grant) {
                last.push(Step::DeleteGrant(c.clone()));
            }
        }
    }
    (first, last)
}

fn cap_steps(
    fleet: &Fleet,
    current: &Current,
    me: &Applier,
    prune: bool,
    scope: &BTreeSet<&str>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for e in &fleet.owner_caps {
        let c = &e.item;
        if !me.superadmin {
            steps.push(refuse(
                format!("owner cap {} {}", c.client, c.owner),
                ErrorCode::Forbidden,
                "only a superadmin sets owner caps",
            ));
            continue;
        }
        let old = current
            .caps
            .iter()
            .find(|x| x.client == c.client && x.owner == c.owner)
            .map(|x| x.rate_limit);
        if old != Some(c.rate_limit) {
            steps.push(Step::SetCap {
                entry: c.clone(),
                diffs: field_diffs(&old.unwrap_or_else(RateLimit::default), &c.rate_limit),
            });
        }
    }
    if prune && me.superadmin && !fleet.owner_caps.is_empty() {
        for c in &current.caps {
            let listed = fleet
                .owner_caps
                .iter()
                .any(|e| e.item.client == c.client && e.item.owner == c.owner);
            if scope.contains(c.client.as_str()) && !listed {
                steps.push(Step::DeleteCap(c.clone()));
            }
        }
    }
    steps
}

/// One line per step (and its field differences), as `diff` prints it.
pub fn render(plan: &Plan, prune: bool) -> String {
    let mut out = String::new();
    for s in &plan.steps {
        let (mark, verb, what, diffs): (&str, &str, String, &[String]) = match s {
            Step::CreateRule(e) => (
                "+",
                "create",
                format!("rule {}", describe(&e.client, &e.spec)),
                &[],
            ),
            Step::UpdateRule {
                rule_id,
                entry,
                diffs,
            } => (
                "~",
                "update",
                format!(
                    "rule {} ({rule_id}), in place",
                    describe(&entry.client, &entry.spec)
                ),
                diffs,
            ),
            Step::ReplaceRule {
                rule_id,
                entry,
                diffs,
            } => (
                "±",
                "replace",
                format!("rule {} ({rule_id})", describe(&entry.client, &entry.spec)),
                diffs,
            ),
            Step::DeleteRule(r) => (
                "-",
                "delete",
                format!("rule {} ({})", describe(&r.client, &r.spec), r.rule_id),
                &[],
            ),
            Step::SetCap { entry, diffs } => (
                "~",
                "set",
                format!("owner cap {} {}", entry.client, entry.owner),
                diffs,
            ),
            Step::DeleteCap(c) => (
                "-",
                "delete",
                format!("owner cap {} {}", c.client, c.owner),
                &[],
            ),
            Step::CreateGrant(g) => (
                "+",
                "create",
                format!(
                    "grant {} {} {}-{} {}",
                    g.user,
                    g.client,
                    g.listen_port_start,
                    g.listen_port_end,
                    g.protocols.join(",")
                ),
                &[],
            ),
            Step::DeleteGrant(c) => (
                "-",
                "delete",
                format!(
                    "grant {} {} {}-{} ({})",
                    c.grant.user,
                    c.grant.client,
                    c.grant.listen_port_start,
                    c.grant.listen_port_end,
                    c.grant_id
                ),
                &[],
            ),
            Step::Refuse {
                what,
                code,
                message,
            } => ("!", "refuse", format!("{what}: {message} ({code})"), &[]),
        };
        out += &format!("{mark} {verb:<8} {what}\n");
        for d in diffs {
            out += &format!("      {d}\n");
        }
    }
    if plan.steps.is_empty() {
        out += "no changes\n";
    }
    if plan.unlisted > 0 && !prune {
        out += &format!(
            "{} rule(s) of the covered clients are not in the file; --prune deletes them\n",
            plan.unlisted
        );
    }
    out
}
