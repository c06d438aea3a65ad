//! The day-one walkthrough between real processes: enroll, push, forward,
//! observe, survive restarts on either side.
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::fleet;
use portunus_e2e::net::loopback as local;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::net::{echo_ok, echo_roundtrip, echo_server, payload, sha256};
use portunus_e2e::{client_cmd, wait_connected, wait_for, Server, DEADLINE};
use serde_json::Value;

#[test]
fn walkthrough_forwards_20_mib_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server();
    let (id, port) = server.push_on_free_port("edge-01", &[&backend.to_string()]);
    assert_eq!(
        id.len(),
        26,
        "push-rule prints the bare rule id, got {id:?}"
    );

    let data = payload(20 * 1024 * 1024, 7);
    let echoed = echo_roundtrip(local(port), &data).unwrap();
    assert_eq!(echoed, sha256(&data), "20 MiB came back intact");

    let rules: Value = serde_json::from_str(&server.cli_ok(&[
        "list-rules",
        "--client",
        "edge-01",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(rules[0]["rule_id"], id.as_str());
    assert_eq!(rules[0]["state"], "active");
    assert_eq!(rules[0]["owner"], "_superadmin");
    let text = server.cli_ok(&["list-rules"]);
    assert!(text.contains(&id) && text.contains("active"), "{text}");

    let stats = wait_for("stats report with the transfer", DEADLINE, || {
        let s = server.rule_stats(&id);
        (s["bytes_in"].as_u64()? >= data.len() as u64
            && s["bytes_out"].as_u64()? >= data.len() as u64)
            .then_some(s)
    });
    assert!(stats["connections_total"].as_u64().unwrap() >= 1);
    let text = server.cli_ok(&["rule-stats", &id]);
    assert!(
        text.contains(&format!("bytes_in: {}", stats["bytes_in"])),
        "{text}"
    );

    let metrics = server.metrics_text();
    assert!(
        metrics.contains("portunus_clients_connected 1"),
        "{metrics}"
    );
    let series = format!(
        r#"portunus_rule_bytes_in_total{{client="edge-01",rule="{id}",owner="_superadmin"}}"#
    );
    assert!(metrics.contains(&series), "{metrics}");

    let clients: Value =
        serde_json::from_str(&server.cli_ok(&["list-clients", "--format", "json"])).unwrap();
    assert_eq!(clients[0]["connected"], true);
    assert!(clients[0]["remote_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(clients[0]["connected_since"].is_string());
    let text = server.cli_ok(&["list-clients"]);
    assert!(
        text.contains("edge-01") && text.contains("connected"),
        "{text}"
    );

    server.cli_ok(&["remove-rule", &id]);
    wait_for("listener closed after remove-rule", DEADLINE, || {
        (!echo_ok(local(port))).then_some(())
    });
    assert_eq!(server.cli_ok(&["list-rules", "--format", "json"]), "[]");
    wait_for("series dropped", DEADLINE, || {
        (!server.metrics_text().contains(&id)).then_some(())
    });
}

#[test]
fn busy_port_fails_activation_with_exit_6() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let squatter = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let out = server.cli(&["push-rule", "edge-01", &port.to_string(), "127.0.0.1:9"]);
    expect_fail(&out, 6, "port_in_use");
    assert!(
        stderr(&out).contains(&port.to_string()),
        "the message names the port: {}",
        stderr(&out)
    );
    assert_eq!(
        server.cli_ok(&["list-rules", "--format", "json"]),
        "[]",
        "a failed push leaves no rule"
    );
}

#[test]
fn revoke_drops_the_stream_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(dir.path());
    server.cli_ok(&["revoke", "edge-01"]);
    wait_connected(&server, "edge-01", false);
    let clients: Value =
        serde_json::from_str(&server.cli_ok(&["list-clients", "--format", "json"])).unwrap();
    assert_eq!(clients[0]["revoked"], true);
    // The client keeps retrying with a dead credential and stays out.
    wait_for("client to log the rejected credential", DEADLINE, || {
        client.log.text().contains("re-enroll").then_some(())
    });
    assert!(
        client.exited().is_none(),
        "a revoked client keeps running (fail-static)"
    );
    let out = server.cli(&["push-rule", "edge-01", "18081", "127.0.0.1:9"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[test]
fn forwarding_survives_a_killed_server_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _client) = fleet(dir.path());
    let backend = echo_server();
    let (_id, port) = server.push_on_free_port("edge-01", &[&backend.to_string()]);
    assert!(echo_ok(local(port)));
    // A connection open across the crash keeps flowing too.
    let mut live = std::net::TcpStream::connect(local(port)).unwrap();

    server.pin_ports();
    server.kill9();
    assert!(
        echo_ok(local(port)),
        "the data plane forwards while the control plane is down"
    );
    {
        use std::io::{Read, Write};
        live.write_all(b"still here").unwrap();
        let mut buf = [0u8; 10];
        live.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still here");
    }

    let token = server.token.clone();
    let dir_srv = server.dir.clone();
    drop(server);
    let mut server = Server::start(&dir_srv);
    server.token = token;
    wait_connected(&server, "edge-01", true);
    let rules: Value =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let (_id2, port2) = server.push_on_free_port("edge-01", &[&backend.to_string()]);
    assert!(echo_ok(local(port2)), "a new push works after the restart");
    assert!(
        echo_ok(local(port)),
        "the old rule kept working through reconciliation"
    );
}

#[test]
fn restarted_client_gets_its_rules_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(dir.path());
    let backend = echo_server();
    let (id, port) = server.push_on_free_port("edge-01", &[&backend.to_string()]);
    assert!(echo_ok(local(port)));
    client.kill9();
    wait_connected(&server, "edge-01", false);
    wait_for("port closed with the client gone", DEADLINE, || {
        (!echo_ok(local(port))).then_some(())
    });
    client.restart();
    wait_connected(&server, "edge-01", true);
    wait_for("rule re-bound after reconnect", DEADLINE, || {
        echo_ok(local(port)).then_some(())
    });
    let rule = server.api_get(&format!("/v1/rules/{id}"));
    assert_eq!(rule["state"], "active");
}

#[test]
fn client_sigterm_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(dir.path());
    let (_id, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    assert!(echo_ok(local(port)));
    let status = client.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(!echo_ok(local(port)));
}

#[test]
fn wrong_pin_never_sends_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(&dir.path().join("srv"));
    let command = server.cli_ok(&["enroll-client", "edge-01"]);
    let uri = command.split('\'').nth(1).unwrap().to_string();
    let wrong_pin = "0".repeat(64);
    let bad_uri = uri.replace(&server.pin, &wrong_pin);
    assert_ne!(bad_uri, uri);
    let home = dir.path().join("edge");
    std::fs::create_dir_all(&home).unwrap();
    let bundle = home.join("b.json");
    let out = client_cmd(&home)
        .args(["enroll", &bad_uri, "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!bundle.exists());
    let code_param = uri
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        !stderr(&out).contains(code_param),
        "the code is never echoed"
    );
    // The code was never redeemed, so the genuine URI still works once.
    let out = client_cmd(&home)
        .args(["enroll", &uri, "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(b["client_name"], "edge-01");
    assert_eq!(b["server_cert_sha256"], server.pin.as_str());
    assert_eq!(
        b["server_endpoint"],
        format!("127.0.0.1:{}", server.control.port())
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Single use.
    let again = home.join("again.json");
    let out = client_cmd(&home)
        .args(["enroll", &uri, "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
}

#[test]
fn stats_stream_sends_events_until_the_rule_is_removed() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    let resp = reqwest::blocking::Client::builder()
        .timeout(DEADLINE)
        .build()
        .unwrap()
        .get(format!("{}/v1/rules/{id}/stats/stream", server.url()))
        .bearer_auth(server.token.as_deref().unwrap())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut lines = BufReader::new(resp).lines();
    let first = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("data:"))
        .unwrap();
    let event: Value = serde_json::from_str(first.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(event["rule_id"], id.as_str());
    assert!(echo_ok(local(port)));
    // The next report carries the traffic.
    wait_for("a stats event with traffic", DEADLINE, || {
        let line = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with("data:"))?;
        let v: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).ok()?;
        (v["bytes_in"].as_u64()? > 0).then_some(())
    });
    server.cli_ok(&["remove-rule", &id]);
    // The stream ends (EOF) once the rule is gone.
    for line in lines.by_ref() {
        line.unwrap();
    }
}
