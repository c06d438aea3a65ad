//! The fleet file: its model, how it is read (TOML or JSON, every entry
//! checked before anything changes, errors with line and field) and how
//! `export` writes it.

use portunus_domain::names::{validate_client_name, validate_user_id};
use portunus_domain::rule::{Limits, Protocol, RateLimit, RuleSpec};
use portunus_domain::{DomainError, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The version this binary reads and writes.
pub const VERSION: u64 = 1;

/// One entry of the file, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    /// 1-based line of the entry's table in a TOML file.
    pub line: Option<usize>,
    pub item: T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleEntry {
    pub client: String,
    /// Informational in an export; on create it must name the applier.
    pub owner: Option<String>,
    pub spec: RuleSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapEntry {
    pub client: String,
    pub owner: String,
    pub rate_limit: RateLimit,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantEntry {
    pub user: String,
    /// A client name or `*`.
    pub client: String,
    pub listen_port_start: u32,
    pub listen_port_end: u32,
    /// Sorted, without duplicates.
    pub protocols: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    /// Clients the file covers even when it lists no rule on them, so
    /// `--prune` can empty a client.
    pub clients: Vec<String>,
    pub rules: Vec<Entry<RuleEntry>>,
    pub owner_caps: Vec<Entry<CapEntry>>,
    pub grants: Vec<Entry<GrantEntry>>,
}

/// What identifies a rule across servers: never its id.
pub type RuleKey = (String, Protocol, u32, Option<u32>, Option<String>);

pub fn rule_key(client: &str, spec: &RuleSpec) -> RuleKey {
    (
        client.to_string(),
        spec.protocol,
        spec.listen_port,
        spec.listen_port_end,
        spec.sni_pattern.clone(),
    )
}

/// `edge-01 tcp 8080` or `edge-01 tcp 30000-30050 sni *.example.com`.
pub fn describe(client: &str, spec: &RuleSpec) -> String {
    let mut s = format!("{client} {} {}", spec.protocol.as_str(), spec.listen_port);
    if let Some(end) = spec.listen_port_end {
        s += &format!("-{end}");
    }
    if let Some(p) = &spec.sni_pattern {
        s += &format!(" sni {p}");
    }
    s
}

/// Every problem of a file, each as `<file>:<line>: <where>.<field>: …`.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    fn add(&mut self, file: &str, line: Option<usize>, at: &str, e: impl std::fmt::Display) {
        let place = match line {
            Some(l) => format!("{file}:{l}"),
            None => file.to_string(),
        };
        self.0.push(format!("{place}: {at}: {e}"));
    }

    pub fn into_error(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(DomainError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the fleet file is invalid; nothing was changed:\n  {}",
                self.0.join("\n  ")
            ),
        ))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Each entry of a section as JSON, with its line when the file is TOML.
type Raw = Vec<(Option<usize>, Value)>;

fn sections_toml(text: &str) -> Result<(Map<String, Value>, [Raw; 3]), String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(flatten)]
        top: toml::Table,
        #[serde(default)]
        rule: Vec<toml::Spanned<toml::Table>>,
        #[serde(default)]
        owner_cap: Vec<toml::Spanned<toml::Table>>,
        #[serde(default)]
        grant: Vec<toml::Spanned<toml::Table>>,
    }
    let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
    let raw = |v: Vec<toml::Spanned<toml::Table>>| -> Raw {
        v.into_iter()
            .map(|s| {
                let line = line_of(text, s.span().start);
                let value = serde_json::to_value(s.into_inner()).unwrap_or(Value::Null);
                (Some(line), value)
            })
            .collect()
    };
    let top = serde_json::to_value(doc.top)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    Ok((top, [raw(doc.rule), raw(doc.owner_cap), raw(doc.grant)]))
}

fn sections_json(text: &str) -> Result<(Map<String, Value>, [Raw; 3]), String> {
    let mut top: Map<String, Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut take = |k: &str| -> Result<Raw, String> {
        match top.remove(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(v)) => Ok(v.into_iter().map(|e| (None, e)).collect()),
            Some(_) => Err(format!("{k}: must be an array")),
        }
    };
    let sections = [take("rule")?, take("owner_cap")?, take("grant")?];
    Ok((top, sections))
}

fn take_string(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key}: must be a string")),
    }
}

fn need_string(obj: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    take_string(obj, key)?.ok_or_else(|| format!("{key}: is required"))
}

fn rule_entry(v: Value, limits: &Limits) -> Result<RuleEntry, String> {
    let mut obj = v.as_object().cloned().ok_or("must be a table")?;
    let client = need_string(&mut obj, "client")?;
    validate_client_name(&client).map_err(|e| e.to_string())?;
    let owner = take_string(&mut obj, "owner")?;
    let mut spec: RuleSpec =
        serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())?;
    spec.normalize();
    spec.validate(limits).map_err(|e| e.to_string())?;
    Ok(RuleEntry {
        client,
        owner,
        spec,
    })
}

fn cap_entry(v: Value) -> Result<CapEntry, String> {
    let mut obj = v.as_object().cloned().ok_or("must be a table")?;
    let client = need_string(&mut obj, "client")?;
    let owner = need_string(&mut obj, "owner")?;
    validate_user_id(&owner).map_err(|e| e.to_string())?;
    let rate = obj.remove("rate_limit").ok_or("rate_limit: is required")?;
    if let Some(k) = obj.keys().next() {
        return Err(format!("{k}: unknown field"));
    }
    let rate_limit: RateLimit =
        serde_json::from_value(rate).map_err(|e| format!("rate_limit: {e}"))?;
    if rate_limit.is_empty() {
        return Err("rate_limit: names no cap".into());
    }
    rate_limit.validate().map_err(|e| e.to_string())?;
    Ok(CapEntry {
        client,
        owner,
        rate_limit,
    })
}

fn grant_entry(v: Value) -> Result<GrantEntry, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct G {
        user: String,
        client: String,
        listen_port_start: u32,
        listen_port_end: u32,
        protocols: Vec<String>,
    }
    let g: G = serde_json::from_value(v).map_err(|e| e.to_string())?;
    validate_user_id(&g.user).map_err(|e| e.to_string())?;
    if !(1..=65535).contains(&g.listen_port_start)
        || !(g.listen_port_start..=65535).contains(&g.listen_port_end)
    {
        return Err("listen_port_start..listen_port_end: not a port range in 1-65535".into());
    }
    let mut protocols = BTreeSet::new();
    for p in &g.protocols {
        protocols.insert(
            Protocol::parse(p)
                .map_err(|e| format!("protocols: {e}"))?
                .as_str(),
        );
    }
    if protocols.is_empty() {
        return Err("protocols: names no protocol".into());
    }
    Ok(GrantEntry {
        user: g.user,
        client: g.client,
        listen_port_start: g.listen_port_start,
        listen_port_end: g.listen_port_end,
        protocols: protocols.into_iter().map(str::to_string).collect(),
    })
}

/// Reads a fleet file (`name` is for messages). JSON when it starts with
/// `{`, TOML otherwise. Every entry is checked; any problem fails the
/// whole file.
pub fn parse(name: &str, text: &str, limits: &Limits) -> Result<Fleet, DomainError> {
    let parsed = if text.trim_start().starts_with('{') {
        sections_json(text)
    } else {
        sections_toml(text)
    };
    let mut problems = Problems::default();
    let (mut top, [rules, caps, grants]) = match parsed {
        Ok(p) => p,
        Err(e) => {
            problems.add(name, None, "syntax", e.trim());
            problems.into_error()?;
            unreachable!("a problem was recorded")
        }
    };
    let mut fleet = Fleet::default();
    match top.remove("version").map(|v| v.as_u64()) {
        None | Some(Some(VERSION)) => {}
        Some(_) => problems.add(name, None, "version", format!("must be {VERSION}")),
    }
    match top.remove("clients") {
        None => {}
        Some(v) => match serde_json::from_value::<Vec<String>>(v) {
            Ok(c) => fleet.clients = c,
            Err(e) => problems.add(name, None, "clients", e),
        },
    }
    for k in top.keys() {
        problems.add(name, None, k, "unknown field");
    }
    let limits = *limits;
    let mut seen = std::collections::HashSet::new();
    for (i, (line, v)) in rules.into_iter().enumerate() {
        match rule_entry(v, &limits) {
            Ok(item) => {
                if !seen.insert(rule_key(&item.client, &item.spec)) {
                    let what = describe(&item.client, &item.spec);
                    problems.add(
                        name,
                        line,
                        &format!("rule[{i}]"),
                        format!("{what} is listed twice"),
                    );
                }
                fleet.rules.push(Entry { line, item });
            }
            Err(e) => problems.add(name, line, &format!("rule[{i}]"), e),
        }
    }
    let mut seen = BTreeSet::new();
    for (i, (line, v)) in caps.into_iter().enumerate() {
        match cap_entry(v) {
            Ok(item) => {
                if !seen.insert((item.client.clone(), item.owner.clone())) {
                    problems.add(name, line, &format!("owner_cap[{i}]"), "listed twice");
                }
                fleet.owner_caps.push(Entry { line, item });
            }
            Err(e) => problems.add(name, line, &format!("owner_cap[{i}]"), e),
        }
    }
    for (i, (line, v)) in grants.into_iter().enumerate() {
        match grant_entry(v) {
            Ok(item) => fleet.grants.push(Entry { line, item }),
            Err(e) => problems.add(name, line, &format!("grant[{i}]"), e),
        }
    }
    problems.into_error()?;
    Ok(fleet)
}

#[derive(Serialize)]
struct Out {
    version: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clients: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rule: Vec<Map<String, Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    owner_cap: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    grant: Vec<GrantOut>,
}

/// A grant as written, in the order its fields read best.
#[derive(Serialize)]
struct GrantOut {
    user: String,
    client: String,
    listen_port_start: u32,
    listen_port_end: u32,
    protocols: Vec<String>,
}

fn out(fleet: &Fleet) -> Out {
    Out {
        version: VERSION,
        clients: fleet.clients.clone(),
        rule: fleet
            .rules
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("client".into(), Value::String(e.item.client.clone()));
                if let Some(o) = &e.item.owner {
                    m.insert("owner".into(), Value::String(o.clone()));
                }
                if let Ok(Value::Object(spec)) = serde_json::to_value(&e.item.spec) {
                    m.extend(spec);
                }
                m
            })
            .collect(),
        owner_cap: fleet
            .owner_caps
            .iter()
            .map(|e| {
                serde_json::json!({
                    "client": e.item.client, "owner": e.item.owner, "rate_limit": e.item.rate_limit,
                })
            })
            .collect(),
        grant: fleet
            .grants
            .iter()
            .map(|e| GrantOut {
                user: e.item.user.clone(),
                client: e.item.client.clone(),
                listen_port_start: e.item.listen_port_start,
                listen_port_end: e.item.listen_port_end,
                protocols: e.item.protocols.clone(),
            })
            .collect(),
    }
}

pub fn to_toml(fleet: &Fleet) -> String {
    toml::to_string_pretty(&out(fleet)).expect("a fleet serializes to TOML")
}

pub fn to_json(fleet: &Fleet) -> String {
    serde_json::to_string_pretty(&out(fleet)).expect("a fleet serializes to JSON")
}
