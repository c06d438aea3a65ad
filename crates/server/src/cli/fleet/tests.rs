use super::file::{self, Entry, Fleet, RuleEntry};
use super::plan::{self, Applier, Current, CurrentRule, Step};
use portunus_domain::rule::{Limits, Protocol, RateLimit, RuleSpec};

const FILE: &str = r#"
version = 1
clients = ["edge-02"]

[[rule]]
client = "edge-01"
listen_port = 8080
targets = [{ host = "10.0.0.5", port = 80 }]

[[rule]]
client = "edge-01"
protocol = "udp"
listen_port = 53
targets = [{ host = "10.0.0.53", port = 53 }]
[rule.rate_limit]
bandwidth_in_bps = 1000

[[owner_cap]]
client = "edge-01"
owner = "alice"
rate_limit = { bandwidth_out_bps = 5000 }

[[grant]]
user = "alice"
client = "*"
listen_port_start = 20000
listen_port_end = 20999
protocols = ["udp", "tcp"]
"#;

fn parse(text: &str) -> Result<Fleet, String> {
    file::parse("fleet.toml", text, &Limits::default()).map_err(|e| e.message)
}

fn tcp(port: u32, host: &str) -> RuleSpec {
    RuleSpec::single(Protocol::Tcp, port, host, 80)
}

fn me() -> Applier {
    Applier {
        user_id: "root".into(),
        superadmin: true,
    }
}

fn current(id: &str, client: &str, spec: RuleSpec) -> CurrentRule {
    CurrentRule {
        rule_id: id.into(),
        client: client.into(),
        owner: "root".into(),
        spec,
    }
}

fn fleet_of(rules: Vec<(&str, RuleSpec)>) -> Fleet {
    Fleet {
        rules: rules
            .into_iter()
            .map(|(client, spec)| Entry {
                line: None,
                item: RuleEntry {
                    client: client.into(),
                    owner: None,
                    spec,
                },
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn reads_every_section_with_lines() {
    let f = parse(FILE).unwrap();
    assert_eq!(f.clients, ["edge-02"]);
    assert_eq!(f.rules.len(), 2);
    assert_eq!(f.rules[0].line, Some(5));
    assert_eq!(f.rules[1].item.spec.protocol, Protocol::Udp);
    assert_eq!(
        f.rules[1].item.spec.rate_limit.unwrap().bandwidth_in_bps,
        Some(1000)
    );
    assert_eq!(f.owner_caps[0].item.owner, "alice");
    assert_eq!(f.grants[0].item.protocols, ["tcp", "udp"]);
}

#[test]
fn export_round_trips_through_toml_and_json() {
    let f = parse(FILE).unwrap();
    let strip = |mut f: Fleet| {
        for e in &mut f.rules {
            e.line = None;
        }
        for e in &mut f.owner_caps {
            e.line = None;
        }
        for e in &mut f.grants {
            e.line = None;
        }
        f
    };
    let again = parse(&file::to_toml(&f)).unwrap();
    assert_eq!(strip(again), strip(f.clone()));
    let json = parse(&file::to_json(&f)).unwrap();
    assert_eq!(json, strip(f));
}

#[test]
fn every_problem_is_reported_with_line_and_field() {
    let text = r#"
[[rule]]
client = "edge-01"
listen_port = 8080
targets = [{ host = "10.0.0.5", port = 0 }]

[[rule]]
client = "edge-01"
listen_port = 9090
targets = []
color = "blue"

[[rule]]
client = "edge-01"
listen_port = 8443
sni_pattern = "*.example.com"
listen_port_end = 8450
targets = [{ host = "10.0.0.7", port = 443 }]
"#;
    let err = parse(text).unwrap_err();
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(
        err.contains("fleet.toml:2: rule[0]: targets[0].port"),
        "{err}"
    );
    assert!(err.contains("fleet.toml:7: rule[1]"), "{err}");
    assert!(err.contains("color"), "{err}");
    assert!(
        err.contains("fleet.toml:13: rule[2]") && err.contains("sni_on_unsupported_rule"),
        "{err}"
    );
    for bad in [
        "version = 2",
        "colour = 1",
        "[[rule]]\nlisten_port = 1\ntargets = [{ host = \"a\", port = 1 }]",
        "[[owner_cap]]\nclient = \"e\"\nowner = \"alice\"\nrate_limit = {}",
        "[[grant]]\nuser = \"alice\"\nclient = \"*\"\nlisten_port_start = 9\nlisten_port_end = 1\nprotocols = [\"tcp\"]",
        "[[rule]]\nclient = \"e\"\nlisten_port = 1\ntargets = [{ host = \"a\", port = 1 }]\n[[rule]]\nclient = \"e\"\nlisten_port = 1\ntargets = [{ host = \"b\", port = 1 }]",
        "not toml at all = = =",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn caps_update_in_place_other_fields_replace() {
    let capped = RuleSpec {
        rate_limit: Some(RateLimit {
            bandwidth_in_bps: Some(5000),
            ..Default::default()
        }),
        ..tcp(8080, "10.0.0.5")
    };
    let cur = Current {
        rules: vec![
            current("r1", "edge-01", tcp(8080, "10.0.0.5")),
            current("r2", "edge-01", tcp(9090, "10.0.0.5")),
            current("r3", "edge-01", tcp(7070, "10.0.0.5")),
            current("r4", "edge-02", tcp(7070, "10.0.0.5")),
        ],
        ..Default::default()
    };
    let fleet = fleet_of(vec![
        ("edge-01", capped),
        ("edge-01", tcp(9090, "10.0.0.6")),
        ("edge-01", tcp(6060, "10.0.0.5")),
    ]);
    let p = plan::plan(&fleet, &cur, &me(), false);
    assert_eq!(p.unlisted, 1, "r3 is unlisted; r4 is on another client");
    let kinds: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match s {
            Step::UpdateRule { rule_id, .. } => rule_id.as_str(),
            Step::ReplaceRule { rule_id, .. } => rule_id.as_str(),
            Step::CreateRule(_) => "create",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["r1", "r2", "create"]);
    assert!(matches!(p.steps[0], Step::UpdateRule { .. }));
    assert!(matches!(&p.steps[1], Step::ReplaceRule { diffs, .. }
        if diffs.len() == 1 && diffs[0].starts_with("targets: ")));
    let text = plan::render(&p, false);
    assert!(
        text.contains("~ update   rule edge-01 tcp 8080 (r1), in place"),
        "{text}"
    );
    assert!(
        text.contains("rate_limit: none → {\"bandwidth_in_bps\":5000}"),
        "{text}"
    );
    assert!(text.contains("--prune deletes them"), "{text}");

    let pruned = plan::plan(&fleet, &cur, &me(), true);
    assert!(matches!(&pruned.steps[0], Step::DeleteRule(r) if r.rule_id == "r3"));
}

#[test]
fn an_applied_file_plans_nothing() {
    let cur = Current {
        rules: vec![current("r1", "edge-01", tcp(8080, "10.0.0.5"))],
        ..Default::default()
    };
    let fleet = fleet_of(vec![("edge-01", tcp(8080, "10.0.0.5"))]);
    let p = plan::plan(&fleet, &cur, &me(), true);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(plan::render(&p, true), "no changes\n");
}

#[test]
fn owners_and_roles_are_respected() {
    let alice = Applier {
        user_id: "alice".into(),
        superadmin: false,
    };
    let mut fleet = parse(FILE).unwrap();
    fleet.rules[0].item.owner = Some("bob".into());
    let p = plan::plan(&fleet, &Current::default(), &alice, true);
    let refused: Vec<String> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Refuse { what, code, .. } => Some(format!("{what} {code}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            "grant alice * 20000-20999 forbidden",
            "rule edge-01 tcp 8080 not_owner",
            "owner cap edge-01 alice forbidden",
        ]
    );
    assert!(p
        .steps
        .iter()
        .any(|s| matches!(s, Step::CreateRule(e) if e.spec.listen_port == 53)));
}

#[test]
fn grants_and_caps_are_pruned_only_when_the_file_lists_some() {
    let grant = |id: &str, user: &str| plan::CurrentGrant {
        grant_id: id.into(),
        grant: file::GrantEntry {
            user: user.into(),
            client: "edge-01".into(),
            listen_port_start: 1,
            listen_port_end: 2,
            protocols: vec!["tcp".into()],
        },
    };
    let cur = Current {
        grants: vec![grant("g1", "bob")],
        ..Default::default()
    };
    let rules_only = fleet_of(vec![("edge-01", tcp(8080, "10.0.0.5"))]);
    let p = plan::plan(&rules_only, &cur, &me(), true);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::DeleteGrant(_))));
    let with_grants = parse(FILE).unwrap();
    let p = plan::plan(&with_grants, &cur, &me(), true);
    assert!(matches!(p.steps.last(), Some(Step::DeleteGrant(g)) if g.grant_id == "g1"));
}

/// The complete example in docs/fleet.md is a valid fleet file.
#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../../../docs/fleet.md");
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let f = parse(text).unwrap();
    assert_eq!(f.rules.len(), 3);
    assert_eq!(
        f.rules[1]
            .item
            .spec
            .rate_limit
            .unwrap()
            .concurrent_connections,
        Some(100)
    );
    assert_eq!(f.rules[2].item.spec.listen_port_end, Some(30050));
    assert_eq!((f.owner_caps.len(), f.grants.len()), (1, 1));
}
