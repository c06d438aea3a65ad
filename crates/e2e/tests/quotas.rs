//! Quotas through the real binaries: real traffic spends a small quota, the
//! edge refuses the owner's new connections and datagrams and closes the
//! open connection, every list marks the rules, and clearing the usage or
//! raising the quota restores forwarding without a push.

use portunus_e2e::net::{
    echo_ok, echo_roundtrip, echo_server, loopback, payload, sha256, udp_ask, udp_echo_server,
};
use portunus_e2e::{expect_fail, fleet, wait_for, Server, DEADLINE};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

fn json(server: &Server, args: &[&str]) -> Value {
    serde_json::from_str(&server.cli_ok(args)).unwrap()
}

fn quota(server: &Server) -> Value {
    json(
        server,
        &["quota", "get", "edge-01", "_superadmin", "--format", "json"],
    )
}

/// Moves `len` bytes each way through the TCP rule.
fn spend(port: u16, len: usize) {
    let data = payload(len, 7);
    assert_eq!(
        echo_roundtrip(loopback(port), &data).unwrap(),
        sha256(&data)
    );
}

fn metric(server: &Server, name: &str) -> Option<f64> {
    let prefix = format!(r#"{name}{{client="edge-01",owner="_superadmin"}} "#);
    server
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

fn wait_state(server: &Server, state: &str) -> Value {
    let mut last = Value::Null;
    portunus_e2e::poll_until(DEADLINE, || {
        last = quota(server);
        (last["state"] == state).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("quota never {state}: {last}"))
}

#[test]
fn a_spent_quota_cuts_the_owner_off_until_cleared_or_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (tcp_rule, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    let udp_backend = udp_echo_server().to_string();
    let (udp_rule, udp_port) =
        server.push_on_free_port("edge-01", &[&udp_backend, "--protocol", "udp"]);

    let set = json(
        &server,
        &[
            "quota",
            "set",
            "edge-01",
            "_superadmin",
            "--monthly-bytes",
            "5MB",
            "--reset-day",
            "1",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        (set["monthly_bytes"].as_u64(), set["state"].as_str()),
        (Some(5_000_000), Some("ok")),
        "{set}"
    );
    assert_eq!(set["reset_day"], 1);

    // A connection open before the quota is spent, and a UDP flow.
    let mut open = TcpStream::connect(loopback(port)).unwrap();
    open.set_read_timeout(Some(DEADLINE)).unwrap();
    open.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    open.read_exact(&mut buf).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(udp_ask(&udp, loopback(udp_port), b"ping", DEADLINE).is_some());

    // 3 MB each way: 6 MB of a 5 MB quota.
    spend(port, 3_000_000);
    let spent = wait_state(&server, "exhausted");
    assert!(
        spent["used_bytes"].as_u64().unwrap() >= 6_000_000,
        "{spent}"
    );
    assert_eq!(spent["remaining_bytes"], 0);

    // The open connection is closed and new ones are refused.
    match open.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the open connection still carried {n} bytes"),
    }
    wait_for("new connections refused", DEADLINE, || {
        (!echo_ok(loopback(port))).then_some(())
    });
    wait_for("the refusals counted", DEADLINE, || {
        (server.rule_stats(&tcp_rule)["quota_refused"].as_u64() > Some(0)).then_some(())
    });
    // Datagrams of the UDP rule are dropped at the edge and counted.
    wait_for("datagrams dropped", DEADLINE, || {
        let _ = udp.send_to(b"ping", loopback(udp_port));
        (server.rule_stats(&udp_rule)["quota_refused"].as_u64() > Some(0)).then_some(())
    });

    // Every list marks both rules; they stay as they were.
    let rules = json(&server, &["list-rules", "--format", "json"]);
    for r in rules.as_array().unwrap() {
        assert_eq!(
            (r["quota_exhausted"].as_bool(), r["state"].as_str()),
            (Some(true), Some("active")),
            "{r}"
        );
    }
    let text = server.cli_ok(&["list-rules"]);
    assert_eq!(
        text.matches("active (quota exhausted)").count(),
        2,
        "{text}"
    );
    let one = server.api_get(&format!("/v1/rules/{tcp_rule}"));
    assert_eq!(one["quota_exhausted"], true);
    let list = server.cli_ok(&["quota", "list"]);
    assert!(
        list.contains("exhausted") && list.contains("5.0 MB"),
        "{list}"
    );
    assert_eq!(
        metric(&server, "portunus_quota_limit_bytes"),
        Some(5_000_000.0)
    );
    assert!(metric(&server, "portunus_quota_used_bytes").unwrap() >= 6_000_000.0);

    // Clearing the usage restores forwarding, without a push.
    let cleared = json(
        &server,
        &[
            "quota",
            "clear-usage",
            "edge-01",
            "_superadmin",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        (cleared["used_bytes"].as_u64(), cleared["state"].as_str()),
        (Some(0), Some("ok")),
        "{cleared}"
    );
    wait_for("forwarding again", DEADLINE, || {
        echo_ok(loopback(port)).then_some(())
    });
    assert!(udp_ask(&udp, loopback(udp_port), b"again", DEADLINE).is_some());
    let rules = json(&server, &["list-rules", "--format", "json"]);
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["quota_exhausted"] == false),
        "{rules}"
    );

    // Spent again, then raised: the usage stays, the cut-off goes.
    spend(port, 3_000_000);
    wait_state(&server, "exhausted");
    wait_for("new connections refused", DEADLINE, || {
        (!echo_ok(loopback(port))).then_some(())
    });
    let raised = json(
        &server,
        &[
            "quota",
            "set",
            "edge-01",
            "_superadmin",
            "--monthly-bytes",
            "1GB",
            "--format",
            "json",
        ],
    );
    assert!(
        raised["used_bytes"].as_u64().unwrap() >= 6_000_000,
        "usage kept: {raised}"
    );
    assert_eq!(raised["state"], "ok");
    wait_for("forwarding again", DEADLINE, || {
        echo_ok(loopback(port)).then_some(())
    });

    // Deleting the quota leaves nothing to enforce or report.
    server.cli_ok(&["quota", "delete", "edge-01", "_superadmin"]);
    expect_fail(
        &server.cli(&["quota", "get", "edge-01", "_superadmin"]),
        1,
        "quota_not_found",
    );
    wait_for("the series gone", DEADLINE, || {
        metric(&server, "portunus_quota_limit_bytes")
            .is_none()
            .then_some(())
    });
}

#[test]
fn a_quota_past_its_end_date_cuts_off_and_a_later_date_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (_rule, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    let set = json(
        &server,
        &[
            "quota",
            "set",
            "edge-01",
            "_superadmin",
            "--monthly-bytes",
            "1GB",
            "--never-reset",
            "--until",
            "2020-01-31",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        (set["state"].as_str(), set["never_reset"].as_bool()),
        (Some("expired"), Some(true)),
        "{set}"
    );
    assert_eq!(
        (set["until"].as_str(), set["next_reset"].as_str()),
        (Some("2020-01-31"), None)
    );
    wait_for("cut off", DEADLINE, || {
        (!echo_ok(loopback(port))).then_some(())
    });
    let text = server.cli_ok(&[
        "quota",
        "set",
        "edge-01",
        "_superadmin",
        "--monthly-bytes",
        "1GB",
        "--never-reset",
        "--until",
        "2999-12-31",
    ]);
    assert!(
        text.contains("state: ok") && text.contains("until: 2999-12-31"),
        "{text}"
    );
    wait_for("forwarding again", DEADLINE, || {
        echo_ok(loopback(port)).then_some(())
    });
}

#[test]
fn quota_input_errors_have_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    server.cli_ok(&["enroll-client", "edge-01"]);
    let set = |extra: &[&str]| {
        let mut args = vec!["quota", "set", "edge-01", "_superadmin"];
        args.extend_from_slice(extra);
        server.cli(&args)
    };
    expect_fail(&set(&["--monthly-bytes", "0"]), 2, "invalid_quota");
    expect_fail(&set(&["--monthly-bytes", "5XB"]), 2, "invalid_quota");
    expect_fail(
        &set(&["--monthly-bytes", "5MB", "--until", "2027-02-29"]),
        2,
        "invalid_quota",
    );
    // clap refuses these before any request.
    assert_eq!(
        set(&["--monthly-bytes", "5MB", "--reset-day", "29"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        set(&[
            "--monthly-bytes",
            "5MB",
            "--reset-day",
            "3",
            "--never-reset"
        ])
        .status
        .code(),
        Some(2)
    );
    expect_fail(
        &server.cli(&["quota", "set", "edge-01", "ghost", "--monthly-bytes", "5"]),
        8,
        "user_not_found",
    );
    expect_fail(
        &server.cli(&[
            "quota",
            "set",
            "edge-99",
            "_superadmin",
            "--monthly-bytes",
            "5",
        ]),
        1,
        "client_not_found",
    );
    expect_fail(
        &server.cli(&["quota", "clear-usage", "edge-01", "_superadmin"]),
        1,
        "quota_not_found",
    );
    expect_fail(
        &server.cli(&["quota", "delete", "edge-01", "_superadmin"]),
        1,
        "quota_not_found",
    );
    // The API answers the same codes.
    let (status, body) = server.get_as(
        "/v1/clients/edge-01/owners/_superadmin/quota",
        server.token.as_deref(),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("quota_not_found")),
        "{body}"
    );
}

#[test]
fn a_tenant_lists_only_their_own_quotas_and_cannot_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    server.cli_ok(&["enroll-client", "edge-01"]);
    server.cli_ok(&["user-add", "alice", "--display-name", "Alice"]);
    let alice = server.cli_ok(&["credential-issue", "alice", "--label", "ci"]);
    for owner in ["alice", "_superadmin"] {
        server.cli_ok(&["quota", "set", "edge-01", owner, "--monthly-bytes", "5GB"]);
    }
    let as_alice = |args: &[&str]| {
        portunus_e2e::run_server_cli(&server.dir, Some(&server.url()), Some(&alice), args)
    };
    let out = as_alice(&["quota", "list", "--format", "json"]);
    assert!(out.status.success(), "{}", portunus_e2e::stderr_text(&out));
    let mine: Value = serde_json::from_slice(&out.stdout).unwrap();
    let owners: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["alice"]);
    let out = as_alice(&[
        "quota",
        "list",
        "--owner",
        "_superadmin",
        "--format",
        "json",
    ]);
    let still: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(still.as_array().unwrap().len(), 1, "{still}");
    assert_eq!(still[0]["owner"], "alice");
    expect_fail(
        &as_alice(&["quota", "set", "edge-01", "alice", "--monthly-bytes", "9TB"]),
        1,
        "forbidden",
    );
    expect_fail(
        &as_alice(&["quota", "clear-usage", "edge-01", "alice"]),
        1,
        "forbidden",
    );
    let all: Value =
        serde_json::from_str(&server.cli_ok(&["quota", "list", "--format", "json"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
}
