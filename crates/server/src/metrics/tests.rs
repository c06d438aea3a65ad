use super::*;

#[test]
fn deltas() {
    assert_eq!(counter_delta(None, 10), 10);
    assert_eq!(counter_delta(Some(4), 10), 6);
    assert_eq!(counter_delta(Some(10), 3), 3);
}

#[test]
fn report_series_and_removal() {
    let m = Metrics::new();
    let l = RuleLabels {
        client: "edge".into(),
        rule: "r1".into(),
        owner: "_superadmin".into(),
    };
    let r1 = pb::RuleStats {
        bytes_in: 100,
        bytes_out: 7,
        active_connections: 2,
        ..Default::default()
    };
    m.apply_rule_report(&l, None, &r1);
    let r2 = pb::RuleStats {
        bytes_in: 150,
        bytes_out: 7,
        active_connections: 0,
        ..Default::default()
    };
    m.apply_rule_report(&l, Some(&r1), &r2);
    let text = m.encode();
    assert!(
        text.contains(
            r#"portunus_rule_bytes_in_total{client="edge",rule="r1",owner="_superadmin"} 150"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"portunus_rule_active_connections{client="edge",rule="r1",owner="_superadmin"} 0"#
        ),
        "{text}"
    );
    m.remove_rule(&l);
    assert!(!m.encode().contains("r1"));
}

#[test]
fn sni_route_series_sum_report_deltas_over_rules() {
    let m = Metrics::new();
    let labels = |rule: &str| RuleLabels {
        client: "edge".into(),
        rule: rule.into(),
        owner: "_superadmin".into(),
    };
    let report = |routed, unmatched| pb::RuleStats {
        sni_routed: routed,
        sni_unmatched: unmatched,
        ..Default::default()
    };
    m.apply_rule_report(&labels("a"), None, &report(3, 1));
    m.apply_rule_report(&labels("a"), Some(&report(3, 1)), &report(5, 1));
    m.apply_rule_report(&labels("b"), None, &report(4, 0));
    m.remove_rule(&labels("a"));
    let text = m.encode();
    for want in [
        r#"portunus_tls_sni_route_total{result="routed"} 9"#,
        r#"portunus_tls_sni_route_total{result="unmatched"} 1"#,
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
}

#[test]
fn access_series() {
    let m = Metrics::new();
    m.auth_failure("invalid_password");
    m.auth_failure("invalid_password");
    m.operator_request("deny", "not_owner");
    m.audit_dropped.inc();
    let text = m.encode();
    for want in [
        r#"portunus_auth_failures_total{reason="invalid_password"} 2"#,
        r#"portunus_operator_requests_total{outcome="deny",reason="not_owner"} 1"#,
        "portunus_audit_dropped_total 1",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
}

#[test]
fn rate_limit_rejects_sum_report_deltas_by_reason() {
    let m = Metrics::new();
    let labels = |rule: &str| RuleLabels {
        client: "edge".into(),
        rule: rule.into(),
        owner: "_superadmin".into(),
    };
    let report = |rate, concurrency| pb::RuleStats {
        rate_limit_rejects: rate + concurrency,
        rate_limit_rejects_new_connections: rate,
        rate_limit_rejects_concurrency: concurrency,
        ..Default::default()
    };
    m.apply_rule_report(&labels("a"), None, &report(2, 0));
    m.apply_rule_report(&labels("a"), Some(&report(2, 0)), &report(5, 1));
    m.apply_rule_report(&labels("b"), None, &report(0, 3));
    let text = m.encode();
    assert!(
        text.contains(r#"portunus_rate_limit_reject_total{reason="new_connections_per_sec"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portunus_rate_limit_reject_total{reason="concurrent_connections"} 4"#),
        "{text}"
    );
    assert!(!text.contains(r#"reason="bandwidth""#), "{text}");
}

#[test]
fn fleet_series_follow_the_latest_scrape() {
    let m = Metrics::new();
    let client = |name: &str, connected, failed| FleetClient {
        name: name.into(),
        connected,
        rules: [
            ("pending", 0),
            ("active", 2),
            ("failed", failed),
            ("disabled", 0),
        ],
    };
    m.encode_with_fleet(&[client("edge-a", true, 0), client("edge-b", false, 1)]);
    let text = m.encode_with_fleet(&[client("edge-b", false, 1)]);
    for want in [
        r#"portunus_client_up{client="edge-b"} 0"#,
        r#"portunus_client_rules{client="edge-b",state="failed"} 1"#,
        r#"portunus_client_rules{client="edge-b",state="active"} 2"#,
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert!(
        !text.contains("edge-a"),
        "a gone client's series go: {text}"
    );
}

#[test]
fn unhealthy_targets_are_counted_per_rule() {
    let m = Metrics::new();
    let labels = RuleLabels {
        client: "edge".into(),
        rule: "r1".into(),
        owner: "_superadmin".into(),
    };
    let target = |healthy| pb::TargetStats {
        healthy,
        ..Default::default()
    };
    let report = pb::RuleStats {
        targets: vec![target(true), target(false), target(false)],
        ..Default::default()
    };
    m.apply_rule_report(&labels, None, &report);
    let want = r#"portunus_rule_targets_unhealthy{client="edge",rule="r1",owner="_superadmin"} 2"#;
    assert!(m.encode().contains(want), "{}", m.encode());
    m.remove_rule(&labels);
    assert!(!m.encode().contains("r1"));
}

/// Every family, with at least one series each.
fn populated() -> Metrics {
    let m = Metrics::new();
    m.auth_failure("invalid_token");
    m.operator_request("allow", "ok");
    m.audit_dropped.inc();
    m.audit_pruned("age", 1);
    let labels = RuleLabels {
        client: "edge".into(),
        rule: "r1".into(),
        owner: "alice".into(),
    };
    let report = pb::RuleStats {
        sni_routed: 1,
        rate_limit_rejects_bandwidth: 1,
        ..Default::default()
    };
    m.apply_rule_report(&labels, None, &report);
    m.set_quotas(&[QuotaFigures {
        labels: QuotaLabels {
            client: "edge".into(),
            owner: "alice".into(),
        },
        used_bytes: 10,
        limit_bytes: 100,
    }]);
    m.encode_with_fleet(&[FleetClient {
        name: "edge".into(),
        connected: true,
        rules: [
            ("pending", 0),
            ("active", 1),
            ("failed", 0),
            ("disabled", 0),
        ],
    }]);
    m
}

/// (sample name, type, sorted label names) of every family in `text`.
fn families(text: &str) -> std::collections::BTreeSet<(String, String, Vec<String>)> {
    let mut kinds = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            kinds.insert(name.to_string(), kind.to_string());
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let sample = &line[..name_end];
        let family = sample.strip_suffix("_total").unwrap_or(sample);
        let Some(kind) = kinds.get(family).or_else(|| kinds.get(sample)) else {
            continue;
        };
        let mut labels: Vec<String> = match line[name_end..].strip_prefix('{') {
            Some(rest) => rest[..rest.find('}').unwrap()]
                .split(',')
                .map(|kv| kv.split('=').next().unwrap().to_string())
                .collect(),
            None => vec![],
        };
        labels.sort();
        out.insert((sample.to_string(), kind.clone(), labels));
    }
    out
}

#[test]
fn docs_metrics_md_lists_exactly_the_registered_series() {
    let text = populated().encode();
    let registered = families(&text);
    let declared = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(
        registered.len(),
        declared,
        "every registered family has a series in the fixture: {registered:?}"
    );
    let doc = include_str!("../../../../docs/metrics.md");
    let documented: std::collections::BTreeSet<(String, String, Vec<String>)> = doc
        .lines()
        .filter(|l| l.starts_with("| `portunus_"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let mut labels: Vec<String> = cells[3]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            labels.sort();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].to_string(),
                labels,
            )
        })
        .collect();
    assert_eq!(documented, registered);
}
