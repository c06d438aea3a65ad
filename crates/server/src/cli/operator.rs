//! Operator commands over the HTTP API.

use super::http::ApiClient;
use super::output::{items, print_json, print_listing, table, Format};
use super::push::{build_spec, PushArgs};
use super::rules::{display_name, resolve, RuleRef};
use crate::datadir::{self, DirLock};
use portunus_domain::{DomainError, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub(super) fn seg(s: &str) -> String {
    // Names and ids are restricted to URL-safe characters by their grammars;
    // anything else is escaped so it cannot alter the path.
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Through the API when a server holds the data dir, else directly on it.
pub async fn enroll_client(
    data_dir: &Path,
    api: impl FnOnce() -> anyhow::Result<ApiClient>,
    name: String,
    address: Option<String>,
    ttl_secs: Option<i64>,
) -> anyhow::Result<()> {
    let lock = if data_dir.exists() {
        match DirLock::acquire(data_dir) {
            Ok(l) => Some(l),
            Err(e) if e.code == ErrorCode::StoreInUse => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        datadir::ensure_dir(data_dir)?;
        Some(DirLock::acquire(data_dir)?)
    };
    let (command, expires) = match lock {
        Some(lock) => {
            let c =
                super::offline::enroll_client(data_dir, lock, &name, address.as_deref(), ttl_secs)?;
            (c.command, c.expires_at)
        }
        None => {
            let mut body = json!({ "name": name });
            if let Some(a) = address {
                body["address"] = json!(a);
            }
            if let Some(t) = ttl_secs {
                body["ttl_secs"] = json!(t);
            }
            let v: Value = api()?
                .call(Method::POST, "/v1/client-enrollments", Some(body))
                .await?;
            (s(&v, "command"), s(&v, "expires_at"))
        }
    };
    eprintln!("One-time enrollment, valid until {expires}. Run on the edge host:");
    println!("{command}");
    Ok(())
}

pub async fn revoke(api: &ApiClient, client: &str) -> anyhow::Result<()> {
    let v: Value = api
        .call(
            Method::POST,
            &format!("/v1/clients/{}/revoke", seg(client)),
            None,
        )
        .await?;
    eprintln!("revoked client {}", s(&v, "name"));
    Ok(())
}

pub async fn list_clients(api: &ApiClient, format: Format) -> anyhow::Result<()> {
    let v: Value = api.call(Method::GET, "/v1/clients", None).await?;
    print_listing(
        &v,
        format,
        items(&v),
        &["NAME", "ID", "STATUS", "REMOTE", "SINCE", "ADDRESS"],
        |c| {
            let status = if c["revoked"] == json!(true) {
                "revoked"
            } else if c["connected"] == json!(true) {
                "connected"
            } else {
                "disconnected"
            };
            vec![
                s(c, "name"),
                s(c, "client_id"),
                status.into(),
                s(c, "remote_addr"),
                s(c, "connected_since"),
                s(c, "address"),
            ]
        },
    );
    Ok(())
}

/// How long a push whose answer was lost is retried, e.g. across a server
/// restart by its supervisor.
const PUSH_PATIENCE: Duration = Duration::from_secs(15);

pub async fn push_rule(api: &ApiClient, args: &PushArgs) -> anyhow::Result<()> {
    let body = crate::api::rules::PushRuleBody {
        client: args.client.clone(),
        name: args.name.clone(),
        note: args.note.clone(),
        spec: build_spec(args)?,
    };
    let body = serde_json::to_value(&body)
        .map_err(|e| DomainError::new(ErrorCode::Internal, e.to_string()))?;
    let path = format!("/v1/rules?ack_timeout_ms={}", args.ack_timeout.as_millis());
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(crate::secrets::new_token);
    let v: Value = api
        .call_idempotent(Method::POST, &path, body, &key, PUSH_PATIENCE)
        .await?;
    if args.format == Format::Json {
        print_json(&v);
    } else {
        println!("{}", s(&v, "rule_id"));
    }
    if v["state"] == json!("pending") {
        eprintln!(
            "warning: the client did not confirm activation within {:?}; the rule is pending",
            args.ack_timeout
        );
    }
    Ok(())
}

pub async fn remove_rule(api: &ApiClient, rule: &RuleRef, ack: Duration) -> anyhow::Result<()> {
    let found = resolve(api, rule).await?;
    let path = format!(
        "/v1/rules/{}?ack_timeout_ms={}",
        seg(&s(&found, "rule_id")),
        ack.as_millis()
    );
    let v: Value = api.call(Method::DELETE, &path, None).await?;
    if v["client_acknowledged"] != json!(true) {
        eprintln!("note: the client was not reachable; it drops the rule when it reconnects");
    }
    eprintln!("removed rule {}", display_name(&found));
    Ok(())
}

fn listen_of(r: &Value) -> String {
    match r["listen_port_end"].as_u64() {
        Some(end) => format!("{}-{end}", r["listen_port"]),
        None => r["listen_port"].to_string(),
    }
}

pub(super) fn targets_of(r: &Value) -> String {
    r["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{}:{}@{}",
                        t["host"].as_str().unwrap_or("?"),
                        t["port"],
                        t["priority"]
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub async fn list_rules(
    api: &ApiClient,
    client: Option<&str>,
    owner: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(c) = client {
        q.push(format!("client={}", seg(c)));
    }
    if let Some(o) = owner {
        q.push(format!("owner={}", seg(o)));
    }
    let path = if q.is_empty() {
        "/v1/rules".to_string()
    } else {
        format!("/v1/rules?{}", q.join("&"))
    };
    let v: Value = api.call(Method::GET, &path, None).await?;
    print_listing(
        &v,
        format,
        items(&v),
        &[
            "ID", "NAME", "CLIENT", "OWNER", "PROTO", "LISTEN", "TARGETS", "STATE", "NOTE",
        ],
        |r| {
            let mut state = match r["reason"].as_str() {
                Some(reason) => format!("{}({reason})", s(r, "state")),
                None => s(r, "state"),
            };
            if r["quota_exhausted"] == json!(true) {
                state.push_str(" (quota exhausted)");
            }
            vec![
                s(r, "rule_id"),
                s(r, "name"),
                s(r, "client"),
                s(r, "owner"),
                s(r, "protocol"),
                listen_of(r),
                targets_of(r),
                state,
                s(r, "note"),
            ]
        },
    );
    Ok(())
}

pub async fn rule_stats(
    api: &ApiClient,
    rule: &RuleRef,
    per_port: bool,
    per_target: bool,
    format: Format,
) -> anyhow::Result<()> {
    let found = resolve(api, rule).await?;
    let path = format!(
        "/v1/rules/{}/stats?per_port={per_port}&per_target={per_target}",
        seg(&s(&found, "rule_id"))
    );
    let v: Value = api.call(Method::GET, &path, None).await?;
    if format == Format::Json {
        print_json(&v);
        return Ok(());
    }
    let keys = [
        "rule_id",
        "name",
        "client",
        "reported_at",
        "bytes_in",
        "bytes_out",
        "connections_total",
        "active_connections",
        "connect_failures",
        "dns_failures",
        "target_failovers",
        "udp_datagrams_in",
        "udp_datagrams_out",
        "active_flows",
        "flows_dropped_overflow",
        "rate_limit_rejects",
        "sni_routed",
        "sni_unmatched",
        "source_denied",
        "quota_refused",
    ];
    for k in keys {
        println!("{k}: {}", s(&v, k));
    }
    if let Some(ports) = v["per_port"].as_array() {
        let rows: Vec<Vec<String>> = ports
            .iter()
            .map(|p| {
                vec![
                    s(p, "port"),
                    s(p, "bytes_in"),
                    s(p, "bytes_out"),
                    s(p, "connections_total"),
                    s(p, "active_connections"),
                ]
            })
            .collect();
        println!(
            "\n{}",
            table(
                &["PORT", "BYTES_IN", "BYTES_OUT", "CONNECTIONS", "ACTIVE"],
                &rows
            )
        );
    }
    if let Some(targets) = v["per_target"].as_array() {
        let rows: Vec<Vec<String>> = targets
            .iter()
            .map(|t| {
                vec![
                    format!("{}:{}", s(t, "host"), s(t, "port")),
                    s(t, "healthy"),
                    s(t, "connects_ok"),
                    s(t, "connects_failed"),
                    s(t, "bytes_in"),
                    s(t, "bytes_out"),
                ]
            })
            .collect();
        println!(
            "\n{}",
            table(
                &[
                    "TARGET",
                    "HEALTHY",
                    "CONNECTS_OK",
                    "CONNECTS_FAILED",
                    "BYTES_IN",
                    "BYTES_OUT"
                ],
                &rows
            )
        );
    }
    Ok(())
}
