//! Traffic history through the real binaries: bytes a rule moves appear in
//! its 1-minute buckets, once, through a client restart and a server
//! restart; a tenant sees only their own history; bad queries get their
//! codes.

use portunus_e2e::net::{echo_roundtrip, echo_server, free_port, loopback, payload, sha256};
use portunus_e2e::{
    expect_fail, fleet, run_server_cli, wait_connected, wait_for, Server, DEADLINE,
};
use serde_json::Value;
use std::net::SocketAddr;

/// Sends `len` bytes through the rule's port to an echo backend and checks
/// they came back: `len` bytes in and `len` out.
fn move_bytes(port: u16, len: usize, seed: u64) {
    let data = payload(len, seed);
    let echoed = echo_roundtrip(loopback(port), &data).expect("echo through the rule");
    assert_eq!(echoed, sha256(&data));
}

fn history(server: &Server, query: &str) -> Value {
    server.api_get(&format!("/v1/traffic?{query}"))
}

/// Waits until the rule's last hour of 1-minute buckets sums to `bytes`
/// each way, and returns that answer.
fn wait_history(server: &Server, rule: &str, bytes: u64) -> Value {
    let mut last = Value::Null;
    let found = portunus_e2e::poll_until(DEADLINE, || {
        last = history(
            server,
            &format!("rule={rule}&step=1m&since={}", since_an_hour_ago()),
        );
        (last["bytes_in"] == bytes && last["bytes_out"] == bytes).then(|| last.clone())
    });
    found.unwrap_or_else(|| panic!("history never summed to {bytes} each way: {last}"))
}

fn since_an_hour_ago() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    rfc3339(now - 3600)
}

fn rfc3339(unix: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits until the server has taken two more reports of the rule than it
/// had: whatever those reports carried has been folded by then too, since
/// a report is folded within a second of arriving and reports come every
/// second.
fn two_more_reports(server: &Server, rule: &str) {
    let first = server.rule_stats(rule)["reported_at"].clone();
    let mut seen = vec![first];
    wait_for("two more reports", DEADLINE, || {
        let at = server.rule_stats(rule)["reported_at"].clone();
        if !seen.contains(&at) {
            seen.push(at);
        }
        (seen.len() >= 3).then_some(())
    });
}

/// Waits until the edge listens on `port` again (a connection that moves
/// no byte).
fn listening(port: u16) {
    wait_for("the edge to listen", DEADLINE, || {
        std::net::TcpStream::connect(loopback(port)).ok().map(drop)
    });
}

#[test]
fn history_counts_each_byte_once_through_client_and_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(dir.path());
    let backend: SocketAddr = echo_server();
    let (rule, port) = server.push_on_free_port("edge-01", &[&backend.to_string()]);

    move_bytes(port, 300_000, 1);
    let h = wait_history(&server, &rule, 300_000);
    assert_eq!(h["step"], "1m");
    assert_eq!(h["step_secs"], 60);
    let buckets = h["buckets"].as_array().unwrap();
    assert!(buckets.len() >= 60, "an hour of minutes: {}", buckets.len());
    let busy: Vec<&Value> = buckets.iter().filter(|b| b["bytes_in"] != 0).collect();
    assert!(
        (1..=2).contains(&busy.len()),
        "one transfer lands in one or two minutes: {busy:?}"
    );
    assert!(busy.iter().all(|b| b["connections"] != 0), "{busy:?}");

    // The edge restarts: its counters start from zero, none counted twice.
    client.restart();
    wait_connected(&server, "edge-01", true);
    listening(port);
    move_bytes(port, 200_000, 2);
    wait_history(&server, &rule, 500_000);
    two_more_reports(&server, &rule);
    wait_history(&server, &rule, 500_000);

    // The server restarts: the history and the cursors are in the store.
    server.pin_ports();
    let token = server.token.clone();
    let srv_dir = server.dir.clone();
    drop(server);
    let mut server = Server::start(&srv_dir);
    server.token = token;
    wait_connected(&server, "edge-01", true);
    wait_history(&server, &rule, 500_000);
    move_bytes(port, 100_000, 3);
    wait_history(&server, &rule, 600_000);
    two_more_reports(&server, &rule);
    let h = wait_history(&server, &rule, 600_000);

    // The client's and the owner's views hold the same bytes; the CLI
    // prints them, as JSON or with a bar per bucket.
    let by_client = history(&server, "client=edge-01&since=2026-01-01T00:00:00Z&step=1d");
    assert_eq!(by_client["bytes_in"], h["bytes_in"], "{by_client}");
    let by_owner = history(&server, "owner=_superadmin&step=1h");
    assert_eq!(by_owner["bytes_out"], h["bytes_out"], "{by_owner}");
    let cli: Value = serde_json::from_str(&server.cli_ok(&[
        "traffic", "--rule", &rule, "--client", "edge-01", "--since", "2h", "--step", "5m",
        "--format", "json",
    ]))
    .unwrap();
    assert_eq!(
        (cli["bytes_in"].clone(), cli["step"].clone()),
        (Value::from(600_000), Value::from("5m"))
    );
    let text = server.cli_ok(&[
        "traffic", "--client", "edge-01", "--since", "1h", "--step", "15m",
    ]);
    assert!(text.contains('█') && text.contains("600.0 kB"), "{text}");
}

#[test]
fn a_tenant_sees_only_their_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (admin_rule, admin_port) = server.push_on_free_port("edge-01", &[&backend]);

    server.cli_ok(&["user-add", "alice", "--display-name", "Alice"]);
    let alice = server.cli_ok(&["credential-issue", "alice", "--label", "ci"]);
    server.cli_ok(&[
        "grant-add",
        "--user-id",
        "alice",
        "--client",
        "edge-01",
        "--listen-port-start",
        "1024",
        "--listen-port-end",
        "65535",
        "--protocols",
        "tcp",
    ]);
    let as_alice =
        |args: &[&str]| run_server_cli(&server.dir, Some(&server.url()), Some(&alice), args);
    let (alice_rule, alice_port) = loop {
        let port = free_port();
        let out = as_alice(&["push-rule", "edge-01", &port.to_string(), &backend]);
        if out.status.success() {
            break (
                String::from_utf8(out.stdout).unwrap().trim().to_string(),
                port,
            );
        }
    };
    move_bytes(admin_port, 400_000, 4);
    move_bytes(alice_port, 100_000, 5);
    wait_history(&server, &admin_rule, 400_000);
    wait_history(&server, &alice_rule, 100_000);

    // Everything, the client, even another owner's name: alice's bytes only.
    for query in [
        "step=1h",
        "client=edge-01&step=1h",
        "owner=_superadmin&step=1h",
    ] {
        let (status, h) = server.get_as(&format!("/v1/traffic?{query}"), Some(&alice));
        assert_eq!(status, 200, "{h}");
        assert_eq!(h["bytes_in"], 100_000, "{query}: {h}");
    }
    let (status, h) = server.get_as(&format!("/v1/traffic?rule={admin_rule}"), Some(&alice));
    assert_eq!(
        (status, h["error"]["code"].as_str()),
        (403, Some("not_owner")),
        "{h}"
    );
    let (status, h) = server.get_as("/v1/traffic?client=no-such-edge", Some(&alice));
    assert_eq!((status, h["bytes_in"].as_u64()), (200, Some(0)), "{h}");
    // The superadmin sees both.
    assert_eq!(history(&server, "step=1h")["bytes_in"], 500_000);
    let out = as_alice(&["traffic", "--rule", &alice_rule, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_queries_answer_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    let token = server.token.clone();
    let cases = [
        ("step=2m", 400, "invalid_traffic_step"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            400,
            "invalid_traffic_window",
        ),
        (
            "since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z&step=1m",
            400,
            "invalid_traffic_window",
        ),
        ("since=yesterday", 400, "invalid_time"),
        ("bogus=1", 400, "invalid_request"),
        ("rule=01JNOSUCHRULE0000000000000", 404, "rule_not_found"),
        ("client=no-such-edge", 404, "client_not_found"),
    ];
    for (query, status, code) in cases {
        let (got, body) = server.get_as(&format!("/v1/traffic?{query}"), token.as_deref());
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    expect_fail(
        &server.cli(&["traffic", "--step", "2m"]),
        2,
        "invalid_traffic_step",
    );
    expect_fail(
        &server.cli(&["traffic", "--since", "soon"]),
        2,
        "invalid_time",
    );
}
