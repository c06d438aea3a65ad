//! A rule push whose answer was lost (a dropped connection, a server
//! crash) can be sent again: its `Idempotency-Key` makes the server store
//! it once, and the command line retries with it by itself.

use portunus_e2e::net::free_port;
use portunus_e2e::{fleet, server_cmd, wait_for, Server, DEADLINE};
use serde_json::{json, Value};
use std::process::Stdio;

fn rule_count(server: &Server) -> usize {
    server.api_get("/v1/rules").as_array().unwrap().len()
}

#[test]
fn a_key_stores_a_push_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let http = reqwest::blocking::Client::new();
    let push = |key: &str, port: u16| {
        let resp = http
            .post(format!("{}/v1/rules", server.url()))
            .bearer_auth(server.token.as_deref().unwrap())
            .header("idempotency-key", key)
            .json(&json!({
                "client": "edge-01",
                "listen_port": port,
                "protocol": "tcp",
                "targets": [{ "host": "127.0.0.1", "port": 9, "priority": 1 }],
            }))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    let port = free_port();
    let (status, first) = push("key-1", port);
    assert_eq!(status, 201, "{first}");
    let (status, again) = push("key-1", port);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["rule_id"], first["rule_id"]);
    assert_eq!(again["state"], "active");
    let (status, other) = push("key-1", free_port());
    assert_eq!(
        (status, other["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (status, bad) = push("has space", port);
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_idempotency_key"))
    );
    assert_eq!(rule_count(&server), 1);

    // The command line takes the key too.
    let (id, cli_port) =
        server.push_on_free_port("edge-01", &["127.0.0.1:9", "--idempotency-key", "cli-1"]);
    let args = [
        "push-rule",
        "edge-01",
        &cli_port.to_string(),
        "127.0.0.1:9",
        "--idempotency-key",
        "cli-1",
    ];
    assert_eq!(server.cli_ok(&args).trim(), id);
    assert_eq!(rule_count(&server), 2);

    // A key lives as long as its rule: once removed, the same push stores
    // a new rule.
    server.cli_ok(&["remove-rule", &id]);
    let again = server.cli_ok(&args);
    assert_ne!(again.trim(), id);
    assert_eq!(rule_count(&server), 2);
}

/// The server dies while `push-rule` waits for the edge's outcome; the
/// command retries with its key once the server is back and prints the
/// rule the first attempt stored.
#[test]
fn push_rule_retries_across_a_server_crash_without_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, client) = fleet(dir.path());
    server.pin_ports();
    // A frozen edge never reports an outcome: the push waits.
    client.freeze();
    let port = free_port().to_string();
    let cli = server_cmd(&server.dir)
        .arg("--data-dir")
        .arg(&server.dir)
        .args(["push-rule", "edge-01", &port, "127.0.0.1:9"])
        .args(["--ack-timeout", "60s"])
        .env("PORTUNUS_OPERATOR_TOKEN", server.token.as_deref().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stored = wait_for("the push to be stored", DEADLINE, || {
        let rules = server.api_get("/v1/rules");
        rules.as_array()?.first()?["rule_id"]
            .as_str()
            .map(str::to_string)
    });
    server.kill9();
    let token = server.token.clone();
    let mut server = Server::start(&server.dir.clone());
    server.token = token;
    let out = cli.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), stored);
    assert_eq!(rule_count(&server), 1);
    client.thaw();
}
