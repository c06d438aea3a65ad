use super::*;
use portunus_domain::rule::{Protocol, RuleSpec};

fn rule(id: &str, client: &str, owner: &str, state: RuleState) -> RuleRow {
    RuleRow {
        id: id.into(),
        client_id: format!("id-{client}"),
        client_name: client.into(),
        owner: owner.into(),
        spec: RuleSpec::single(Protocol::Tcp, 8080, "127.0.0.1", 80),
        state,
        reason: (state == RuleState::Failed).then(|| "port_in_use".into()),
        created_at: 0,
        updated_at: 0,
        enabled: state != RuleState::Disabled,
        label: Default::default(),
    }
}

fn client(name: &str, revoked: bool) -> ClientRow {
    ClientRow {
        id: format!("id-{name}"),
        name: name.into(),
        address: None,
        created_at: 0,
        enrolled_at: Some(0),
        revoked_at: revoked.then_some(1),
    }
}

fn stats(bytes: u64, unhealthy: &[&str]) -> pb::RuleStats {
    pb::RuleStats {
        bytes_in: bytes,
        bytes_out: bytes * 2,
        active_connections: 1,
        targets: unhealthy
            .iter()
            .map(|h| pb::TargetStats {
                host: h.to_string(),
                port: 80,
                healthy: false,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn counts_traffic_top_rules_and_alerts() {
    let rules = [
        rule("r1", "edge-01", "alice", RuleState::Active),
        rule("r2", "edge-01", "bob", RuleState::Failed),
        rule("r3", "edge-02", "alice", RuleState::Active),
        rule("r4", "edge-02", "alice", RuleState::Pending),
        rule("r5", "edge-02", "alice", RuleState::Disabled),
    ];
    let clients = [
        client("edge-01", false),
        client("edge-02", false),
        client("edge-03", true),
    ];
    let o = summarize(
        &rules,
        Some(&clients),
        |id| id == "id-edge-01",
        |id| match id {
            "r1" => Some(stats(10, &[])),
            "r3" => Some(stats(100, &["10.0.0.9", "10.0.0.9"])),
            "r4" => Some(stats(0, &[])),
            // A switched-off rule's last report is history, not traffic.
            "r5" => Some(stats(1000, &["10.0.0.7"])),
            _ => None,
        },
    );
    assert_eq!(
        o.clients,
        Some(ClientCounts {
            total: 3,
            connected: 1,
            offline: 1,
            revoked: 1
        })
    );
    assert_eq!(
        o.rules,
        RuleCounts {
            total: 5,
            active: 2,
            pending: 1,
            failed: 1,
            disabled: 1
        }
    );
    assert_eq!(
        o.traffic,
        Traffic {
            bytes_in: 110,
            bytes_out: 220,
            active_connections: 3,
            active_flows: 0
        }
    );
    // Busiest first; rules that moved nothing are left out.
    let top: Vec<&str> = o.top_rules.iter().map(|t| t.rule_id.as_str()).collect();
    assert_eq!(top, ["r3", "r1"]);
    assert_eq!(o.top_rules[0].listen, "8080");
    assert_eq!(
        o.alerts,
        [
            Alert::ClientOffline {
                client: "edge-02".into(),
                rules: 2
            },
            Alert::RuleFailed {
                rule_id: "r2".into(),
                client: "edge-01".into(),
                reason: Some("port_in_use".into())
            },
            Alert::TargetUnhealthy {
                rule_id: "r3".into(),
                client: "edge-02".into(),
                target: "10.0.0.9:80".into()
            },
        ]
    );
}

#[test]
fn users_get_no_client_census_and_top_is_bounded() {
    let rules: Vec<RuleRow> = (0..8)
        .map(|i| rule(&format!("r{i}"), "edge-01", "alice", RuleState::Active))
        .collect();
    let o = summarize(
        &rules,
        None,
        |_| true,
        |id| Some(stats(id[1..].parse::<u64>().unwrap() + 1, &[])),
    );
    assert_eq!(o.clients, None);
    assert!(o.alerts.is_empty());
    let top: Vec<&str> = o.top_rules.iter().map(|t| t.rule_id.as_str()).collect();
    assert_eq!(top, ["r7", "r6", "r5", "r4", "r3"]);
}
