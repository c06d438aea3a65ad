//! The Prometheus side of a running fleet: the series an operator's
//! dashboards and alerts read, scraped from a real server.

use portunus_e2e::net::{echo_server, loopback};
use portunus_e2e::promql::{legend_labels, refs};
use portunus_e2e::tools::*;
use portunus_e2e::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

/// The value of the first sample line that starts with `series` (the name
/// with its labels, as exposed).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

#[test]
fn fleet_series_show_a_client_offline_with_its_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(tmp.path());
    let target = echo_server().to_string();
    server.push_on_free_port("edge-01", &[&target]);

    let up = r#"portunus_client_up{client="edge-01"}"#;
    let active = r#"portunus_client_rules{client="edge-01",state="active"}"#;
    let text = server.metrics_text();
    assert_eq!(sample(&text, up).as_deref(), Some("1"), "{text}");
    assert_eq!(sample(&text, active).as_deref(), Some("1"), "{text}");

    client.kill9();
    wait_connected(&server, "edge-01", false);
    let text = server.metrics_text();
    assert_eq!(sample(&text, up).as_deref(), Some("0"), "{text}");
    assert_eq!(sample(&text, active).as_deref(), Some("1"), "{text}");

    server.cli_ok(&["revoke", "edge-01"]);
    let text = server.metrics_text();
    assert_eq!(sample(&text, up), None, "a revoked client has no series");
}

/// Sample names in an exposition (counters with their `_total`).
fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap_or(l.len())].to_string())
        .collect()
}

/// A scrape of a fleet that has done a little of everything exports every
/// documented series, and nothing undocumented.
#[test]
fn a_real_scrape_exports_exactly_the_documented_series() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _client) = fleet_with_settings(tmp.path(), "audit_retention_days = 30\n");
    let (status, _) = server.get_as("/v1/clients", Some("not-a-token"));
    assert_eq!(status, 401);
    let echo = echo_server().to_string();

    // Per-rule series, and a rate-limit reject: a second connection to a
    // rule capped at one.
    let (_, capped) =
        server.push_on_free_port("edge-01", &[&echo, "--concurrent-connections", "1"]);
    let mut held = TcpStream::connect(loopback(capped)).unwrap();
    held.set_read_timeout(Some(DEADLINE)).unwrap();
    held.write_all(b"ping").unwrap();
    held.read_exact(&mut [0u8; 4]).unwrap();
    let mut refused = TcpStream::connect(loopback(capped)).unwrap();
    refused.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = refused.write_all(b"ping");
    let _ = refused.read(&mut [0u8; 4]);

    // An SNI port with no rule for a plain-text peer: unmatched.
    let (_, sni) = server.push_on_free_port("edge-01", &[&echo, "--sni", "a.example.com"]);
    let mut plain = TcpStream::connect(loopback(sni)).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = plain.read_to_end(&mut Vec::new());

    // A quota: its usage and limit series.
    server.cli_ok(&[
        "quota",
        "set",
        "edge-01",
        "_superadmin",
        "--monthly-bytes",
        "1GB",
    ]);

    let documented: BTreeSet<String> = documented_series().into_keys().collect();
    let mut last = BTreeSet::new();
    let matched = poll_until(DEADLINE, || {
        last = exposed_names(&server.metrics_text());
        (last == documented).then_some(())
    });
    assert!(
        matched.is_some(),
        "scraped but undocumented: {:?}\ndocumented but never scraped: {:?}",
        last.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&last).collect::<Vec<_>>()
    );
}

struct Query {
    source: String,
    expr: String,
    legend: String,
}

/// Every query of the dashboard: panel targets and variable definitions.
fn dashboard_queries() -> Vec<Query> {
    let dash: Value = serde_json::from_str(&repo_file("deploy/grafana/portunus.json")).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                source: format!("panel {:?}", panel["title"]),
                expr: t["expr"].as_str().unwrap().to_string(),
                legend: t["legendFormat"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            out.push(Query {
                source: format!("variable {}", var["name"]),
                expr: var["definition"].as_str().unwrap().to_string(),
                legend: String::new(),
            });
        }
    }
    out
}

/// Every `expr:` of the alert rules, folded lines joined.
fn alert_exprs() -> Vec<String> {
    let text = repo_file("deploy/prometheus/alerts.yml");
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let mut expr = rest.trim().trim_start_matches(">-").trim().to_string();
        while let Some(next) = lines.peek() {
            let deeper = next.len() - next.trim_start().len() > indent.len();
            if !deeper || next.trim().is_empty() {
                break;
            }
            expr.push(' ');
            expr.push_str(next.trim());
            lines.next();
        }
        out.push(expr);
    }
    out
}

/// Each name is a documented (so registered, by the server's own test)
/// series, and each label it uses is one of its series'.
fn check_refs(
    source: &str,
    expr: &str,
    legend: &str,
    documented: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let found = refs(expr);
    let mut labels: BTreeSet<&str> = BTreeSet::new();
    for metric in &found.metrics {
        let known = documented
            .get(metric)
            .unwrap_or_else(|| panic!("{source}: {metric} is not an exported series ({expr})"));
        labels.extend(known.iter().map(String::as_str));
    }
    for label in found.labels.iter().chain(&legend_labels(legend)) {
        assert!(
            labels.contains(label.as_str()),
            "{source}: label {label} is on none of {:?} ({expr})",
            found.metrics
        );
    }
    found.metrics
}

#[test]
fn dashboard_and_alerts_query_only_exported_series_and_their_labels() {
    let documented = documented_series();
    let mut dashboard = BTreeSet::new();
    for q in dashboard_queries() {
        dashboard.extend(check_refs(&q.source, &q.expr, &q.legend, &documented));
    }
    let mut alerts = BTreeSet::new();
    for expr in alert_exprs() {
        alerts.extend(check_refs("alerts.yml", &expr, "", &documented));
    }
    // What each is for: fleet health, traffic, rate limits, UDP, access.
    for want in [
        "portunus_client_up",
        "portunus_client_rules",
        "portunus_rule_bytes_in_total",
        "portunus_rule_bytes_out_total",
        "portunus_rate_limit_reject_total",
        "portunus_rule_active_flows",
        "portunus_rule_flows_dropped_overflow_total",
        "portunus_auth_failures_total",
    ] {
        assert!(dashboard.contains(want), "the dashboard shows {want}");
    }
    for want in [
        "portunus_client_up",
        "portunus_client_rules",
        "portunus_rule_targets_unhealthy",
    ] {
        assert!(alerts.contains(want), "an alert reads {want}");
    }
}

/// The dashboard's panel queries are valid PromQL once Grafana's variables
/// are filled in: promtool parses them as recording rules.
#[test]
fn dashboard_queries_parse_as_promql() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in dashboard_queries().iter().enumerate() {
        if q.source.starts_with("variable") {
            continue; // label_values() is Grafana's, not PromQL.
        }
        let expr = q
            .expr
            .replace("$__rate_interval", "5m")
            .replace("$client", ".*")
            .replace("$owner", ".*");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = tmp.path().join("dashboard.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = run_tool(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&file),
        "prometheus",
    );
    assert!(
        out.status.success(),
        "{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = repo_root().join("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = run_tool(
            Command::new("promtool").args(args).current_dir(&dir),
            "prometheus",
        );
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
