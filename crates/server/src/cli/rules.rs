//! Rule commands that take a rule by id or name: `get-rule`,
//! `update-rule`, `enable-rule`, `disable-rule`, and the lookup that
//! `remove-rule` and `rule-stats` share with them.
//!
//! A reference is tried as an id first, then as a name. Names are unique
//! per client only, so a name carried by rules on several clients needs
//! `--client` (`rule_name_ambiguous` otherwise).

use super::http::ApiClient;
use super::operator::{s, seg};
use super::output::{print_json, Format};
use super::push::{parse_duration, CapArgs};
use portunus_domain::rule::RateLimit;
use portunus_domain::{DomainError, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A rule reference as the commands take it.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleRef {
    /// The rule's id, or its name.
    pub rule: String,
    /// The rule's client (name or id): needed for a name that rules on
    /// several clients carry.
    #[arg(long)]
    pub client: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RuleCommand {
    /// Show one rule.
    #[command(name = "get-rule")]
    Get {
        #[command(flatten)]
        rule: RuleRef,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Change a rule's caps, name or note in place.
    ///
    /// The caps given replace those of the same kind; the others stay (a
    /// new rate without its burst drops the old burst, which then defaults
    /// to one second of the rate). Names and notes never reach the edge.
    #[command(name = "update-rule")]
    Update {
        #[command(flatten)]
        rule: RuleRef,
        #[command(flatten)]
        caps: CapArgs,
        /// Remove every cap (before applying those given).
        #[arg(long)]
        clear_caps: bool,
        /// A new name, unique on the rule's client.
        #[arg(long, conflicts_with = "clear_name")]
        name: Option<String>,
        #[arg(long)]
        clear_name: bool,
        /// A new note: free text, one line.
        #[arg(long, conflicts_with = "clear_note")]
        note: Option<String>,
        #[arg(long)]
        clear_note: bool,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        ack_timeout: Duration,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Switch a rule off: the edge closes its listeners and drains it like
    /// a removal; the rule, its id, name, caps and counters stay.
    #[command(name = "disable-rule")]
    Disable {
        #[command(flatten)]
        rule: RuleRef,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        ack_timeout: Duration,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Switch a disabled rule on again: bound all or nothing, as on a push
    /// (exit 6 and still disabled when a port is in use).
    #[command(name = "enable-rule")]
    Enable {
        #[command(flatten)]
        rule: RuleRef,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        ack_timeout: Duration,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

impl RuleCommand {
    pub async fn run(self, api: &ApiClient) -> anyhow::Result<()> {
        match self {
            RuleCommand::Get { rule, format } => {
                let v = resolve(api, &rule).await?;
                print_rule(&v, format);
                Ok(())
            }
            RuleCommand::Update {
                rule,
                caps,
                clear_caps,
                name,
                clear_name,
                note,
                clear_note,
                ack_timeout,
                format,
            } => {
                let given = caps.to_rate_limit();
                let label = label_patch(name, clear_name, note, clear_note);
                if given.is_empty() && !clear_caps && label.is_empty() {
                    return Err(DomainError::new(
                        ErrorCode::InvalidRequest,
                        "nothing to change: give caps, --clear-caps, --name, --note or their --clear-",
                    )
                    .into());
                }
                let mut v = resolve(api, &rule).await?;
                let id = s(&v, "rule_id");
                if !given.is_empty() || clear_caps {
                    let current: Option<RateLimit> =
                        serde_json::from_value(v["rate_limit"].clone()).unwrap_or_default();
                    let base = if clear_caps { None } else { current };
                    let merged = merge_caps(base, given);
                    let path = format!(
                        "/v1/rules/{}?ack_timeout_ms={}",
                        seg(&id),
                        ack_timeout.as_millis()
                    );
                    v = api
                        .call(Method::PUT, &path, Some(json!({ "rate_limit": merged })))
                        .await?;
                }
                if !label.is_empty() {
                    let path = format!("/v1/rules/{}", seg(&id));
                    v = api
                        .call(Method::PATCH, &path, Some(Value::Object(label)))
                        .await?;
                }
                report(&v, format, "updated");
                Ok(())
            }
            RuleCommand::Disable {
                rule,
                ack_timeout,
                format,
            } => switch(api, &rule, false, ack_timeout, format).await,
            RuleCommand::Enable {
                rule,
                ack_timeout,
                format,
            } => switch(api, &rule, true, ack_timeout, format).await,
        }
    }
}

async fn switch(
    api: &ApiClient,
    rule: &RuleRef,
    enabled: bool,
    ack: Duration,
    format: Format,
) -> anyhow::Result<()> {
    let v = resolve(api, rule).await?;
    let path = format!(
        "/v1/rules/{}?ack_timeout_ms={}",
        seg(&s(&v, "rule_id")),
        ack.as_millis()
    );
    let v: Value = api
        .call(Method::PATCH, &path, Some(json!({ "enabled": enabled })))
        .await?;
    report(&v, format, if enabled { "enabled" } else { "disabled" });
    if enabled && v["state"] == json!("pending") {
        eprintln!(
            "warning: the client did not confirm activation within {ack:?}; the rule is pending"
        );
    }
    Ok(())
}

/// The PATCH fields for a name and note change.
fn label_patch(
    name: Option<String>,
    clear_name: bool,
    note: Option<String>,
    clear_note: bool,
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if let Some(n) = name {
        out.insert("name".into(), json!(n));
    } else if clear_name {
        out.insert("name".into(), Value::Null);
    }
    if let Some(n) = note {
        out.insert("note".into(), json!(n));
    } else if clear_note {
        out.insert("note".into(), Value::Null);
    }
    out
}

/// `given` over `base`, field by field. A rate given without its burst
/// drops the old burst: it was sized for the old rate.
fn merge_caps(base: Option<RateLimit>, given: RateLimit) -> Option<RateLimit> {
    let mut out = base.unwrap_or_default();
    let pairs = [
        (
            given.bandwidth_in_bps,
            given.bandwidth_in_burst,
            &mut out.bandwidth_in_bps,
            &mut out.bandwidth_in_burst,
        ),
        (
            given.bandwidth_out_bps,
            given.bandwidth_out_burst,
            &mut out.bandwidth_out_bps,
            &mut out.bandwidth_out_burst,
        ),
        (
            given.new_connections_per_sec,
            given.new_connections_burst,
            &mut out.new_connections_per_sec,
            &mut out.new_connections_burst,
        ),
    ];
    for (rate, burst, out_rate, out_burst) in pairs {
        if rate.is_some() {
            *out_rate = rate;
            *out_burst = burst;
        } else if burst.is_some() {
            *out_burst = burst;
        }
    }
    if given.concurrent_connections.is_some() {
        out.concurrent_connections = given.concurrent_connections;
    }
    (!out.is_empty()).then_some(out)
}

fn report(v: &Value, format: Format, what: &str) {
    match format {
        Format::Json => print_json(v),
        Format::Text => eprintln!("{what} rule {}", display_name(v)),
    }
}

/// `id (name)`, or the id alone.
pub fn display_name(v: &Value) -> String {
    match v["name"].as_str() {
        Some(name) => format!("{} ({name})", s(v, "rule_id")),
        None => s(v, "rule_id"),
    }
}

fn print_rule(v: &Value, format: Format) {
    if format == Format::Json {
        print_json(v);
        return;
    }
    for k in [
        "rule_id",
        "name",
        "client",
        "owner",
        "enabled",
        "state",
        "reason",
        "quota_exhausted",
        "protocol",
        "listen_port",
        "listen_port_end",
        "note",
        "created_at",
        "updated_at",
    ] {
        println!("{k}: {}", s(v, k));
    }
    println!("targets: {}", super::operator::targets_of(v));
    println!("rate_limit: {}", s(v, "rate_limit"));
}

fn not_found(reference: &str, client: Option<&str>) -> DomainError {
    let on = client
        .map(|c| format!(" on client {c:?}"))
        .unwrap_or_default();
    DomainError::new(
        ErrorCode::RuleNotFound,
        format!("no rule with id or name {reference:?}{on}"),
    )
}

/// The rule `r` names, as the API shows it.
pub async fn resolve(api: &ApiClient, r: &RuleRef) -> Result<Value, DomainError> {
    let client = r.client.as_deref();
    match api
        .call::<Value>(Method::GET, &format!("/v1/rules/{}", seg(&r.rule)), None)
        .await
    {
        Ok(rule) => {
            let on_client =
                client.is_none_or(|c| rule["client"] == json!(c) || rule["client_id"] == json!(c));
            return if on_client {
                Ok(rule)
            } else {
                Err(not_found(&r.rule, client))
            };
        }
        Err(e) if e.code == ErrorCode::RuleNotFound => {}
        Err(e) => return Err(e),
    }
    let mut path = format!("/v1/rules?name={}", seg(&r.rule));
    if let Some(c) = client {
        path.push_str(&format!("&client={}", seg(c)));
    }
    let found: Vec<Value> = api.call(Method::GET, &path, None).await?;
    pick(&r.rule, client, found)
}

/// The one rule of `found`, or why there is not exactly one.
fn pick(name: &str, client: Option<&str>, mut found: Vec<Value>) -> Result<Value, DomainError> {
    match found.len() {
        0 => Err(not_found(name, client)),
        1 => Ok(found.remove(0)),
        _ => {
            let clients: Vec<String> = found.iter().map(|r| s(r, "client")).collect();
            Err(DomainError::new(
                ErrorCode::RuleNameAmbiguous,
                format!(
                    "rules named {name:?} are on clients {}; add --client",
                    clients.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_merge_field_by_field() {
        let base = RateLimit {
            bandwidth_in_bps: Some(1000),
            bandwidth_in_burst: Some(5000),
            concurrent_connections: Some(10),
            ..Default::default()
        };
        let new_rate = RateLimit {
            bandwidth_in_bps: Some(100),
            ..Default::default()
        };
        let m = merge_caps(Some(base), new_rate).unwrap();
        assert_eq!(
            (
                m.bandwidth_in_bps,
                m.bandwidth_in_burst,
                m.concurrent_connections
            ),
            (Some(100), None, Some(10))
        );
        let burst_only = RateLimit {
            bandwidth_in_burst: Some(2000),
            ..Default::default()
        };
        let m = merge_caps(Some(base), burst_only).unwrap();
        assert_eq!(
            (m.bandwidth_in_bps, m.bandwidth_in_burst),
            (Some(1000), Some(2000))
        );
        assert_eq!(merge_caps(None, RateLimit::default()), None);
    }

    #[test]
    fn a_name_picks_one_rule_or_says_why_not() {
        let rule = |client: &str| json!({ "rule_id": format!("id-{client}"), "client": client });
        assert_eq!(
            pick("web", None, vec![]).unwrap_err().code,
            ErrorCode::RuleNotFound
        );
        assert_eq!(pick("web", None, vec![rule("a")]).unwrap()["client"], "a");
        let e = pick("web", None, vec![rule("a"), rule("b")]).unwrap_err();
        assert_eq!(e.code, ErrorCode::RuleNameAmbiguous);
        assert!(e.message.contains("a, b"), "{}", e.message);
    }

    #[test]
    fn label_fields() {
        let p = label_patch(Some("web".into()), false, None, true);
        assert_eq!(Value::Object(p), json!({ "name": "web", "note": null }));
        assert!(label_patch(None, false, None, false).is_empty());
    }
}
