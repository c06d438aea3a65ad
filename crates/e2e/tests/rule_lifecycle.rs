//! Rules operators live with, between real processes: switched off and on
//! without losing their id or counters, called by name, every operator
//! action of the API on the command line, and an edge that enrolls itself
//! from its environment the way a container does.

use portunus_e2e::net::loopback as local;
use portunus_e2e::net::{echo_ok, echo_roundtrip, echo_server, payload, sha256};
use portunus_e2e::{
    client_cmd, expect_fail, fleet, wait_connected, wait_for, Client, Server, DEADLINE,
};
use serde_json::Value;
use std::net::TcpStream;
use std::path::Path;

fn json(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = server.cli_ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn bytes_in(server: &Server, rule: &str) -> u64 {
    json(server, &["rule-stats", rule])["bytes_in"]
        .as_u64()
        .unwrap()
}

/// Sends `len` bytes through the rule and waits until its counters show
/// at least `at_least` bytes in.
fn transfer(server: &Server, port: u16, rule: &str, len: usize, at_least: u64) {
    let data = payload(len, len as u64);
    assert_eq!(echo_roundtrip(local(port), &data).unwrap(), sha256(&data));
    wait_for("the transfer in the rule's counters", DEADLINE, || {
        (bytes_in(server, rule) >= at_least).then_some(())
    });
}

#[test]
fn disable_closes_the_port_and_enable_reopens_it_with_the_same_id_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (id, port) = server.push_on_free_port(
        "edge-01",
        &[&backend, "--name", "web-frontend", "--note", "team blue"],
    );
    transfer(&server, port, &id, 100_000, 100_000);
    let before = bytes_in(&server, &id);

    let off = json(&server, &["disable-rule", "web-frontend"]);
    assert_eq!(
        (&off["rule_id"], &off["enabled"], &off["state"]),
        (
            &Value::from(id.as_str()),
            &Value::Bool(false),
            &Value::from("disabled")
        )
    );
    wait_for("the listener to close", DEADLINE, || {
        TcpStream::connect(local(port)).is_err().then_some(())
    });
    // The rule, its name, note and counters stay while it is off.
    let rules = json(&server, &["list-rules"]);
    assert_eq!(rules.as_array().unwrap().len(), 1);
    assert_eq!(rules[0]["name"], "web-frontend");
    assert_eq!(rules[0]["note"], "team blue");
    assert_eq!(rules[0]["enabled"], false);
    let text = server.cli_ok(&["list-rules"]);
    assert!(
        text.contains("NAME") && text.contains("web-frontend") && text.contains("disabled"),
        "{text}"
    );
    assert!(bytes_in(&server, "web-frontend") >= before);
    let overview = server.api_get("/v1/overview");
    assert_eq!(overview["rules"]["disabled"], 1, "{overview}");
    // Its port stays reserved on the client while it is off.
    let clash = server.cli(&["push-rule", "edge-01", &port.to_string(), &backend]);
    expect_fail(&clash, 1, "listen_port_conflict");
    // Disabling again changes nothing.
    assert_eq!(json(&server, &["disable-rule", &id])["state"], "disabled");

    let on = json(&server, &["enable-rule", "web-frontend"]);
    assert_eq!(
        (&on["rule_id"], &on["enabled"], &on["state"]),
        (
            &Value::from(id.as_str()),
            &Value::Bool(true),
            &Value::from("active")
        )
    );
    assert!(echo_ok(local(port)));
    // Counters continue from where they were, not from zero.
    transfer(&server, port, &id, 50_000, before + 50_000);

    // The edge never learns a rule's name or note.
    let edge_log = client.log.text();
    assert!(
        !edge_log.contains("web-frontend") && !edge_log.contains("team blue"),
        "{edge_log}"
    );
}

#[test]
fn enabling_a_rule_whose_port_is_taken_fails_and_leaves_it_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (id, port) = server.push_on_free_port("edge-01", &[&backend]);
    server.cli_ok(&["disable-rule", &id]);
    let squatter = wait_for("the port to be free to take", DEADLINE, || {
        std::net::TcpListener::bind(local(port)).ok()
    });
    let out = server.cli(&["enable-rule", &id]);
    expect_fail(&out, 6, "port_in_use");
    assert_eq!(json(&server, &["get-rule", &id])["state"], "disabled");
    drop(squatter);
    assert_eq!(json(&server, &["enable-rule", &id])["state"], "active");
    assert!(echo_ok(local(port)));
}

#[test]
fn a_name_stands_for_the_rule_in_stats_update_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let bundle = dir.path().join("edge2").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    server.enroll("edge-02", &bundle);
    let _client2 = Client::start(&bundle);
    wait_connected(&server, "edge-02", true);
    let backend = echo_server().to_string();
    let (id1, _) = server.push_on_free_port("edge-01", &[&backend, "--name", "web"]);
    let (id2, _) = server.push_on_free_port("edge-02", &[&backend, "--name", "web"]);

    // Unique per client only: the same name twice on one client is refused,
    // and a bare name on two clients needs --client.
    let (port, dup) = (portunus_e2e::net::free_port().to_string(), "web");
    let out = server.cli(&["push-rule", "edge-01", &port, &backend, "--name", dup]);
    expect_fail(&out, 1, "already_exists");
    let out = server.cli(&["push-rule", "edge-01", &port, &backend, "--name", "web/1"]);
    expect_fail(&out, 2, "invalid_rule_name");
    let out = server.cli(&["rule-stats", "web"]);
    expect_fail(&out, 2, "rule_name_ambiguous");
    let stats = json(&server, &["rule-stats", "web", "--client", "edge-02"]);
    assert_eq!(stats["rule_id"], id2.as_str());
    assert_eq!(stats["name"], "web");
    let out = server.cli(&["get-rule", "nothing", "--client", "edge-01"]);
    expect_fail(&out, 1, "rule_not_found");

    // Caps merge with those the rule has; names and notes change in place.
    let r = json(
        &server,
        &[
            "update-rule",
            "web",
            "--client",
            "edge-01",
            "--bandwidth-in-bps",
            "1000000",
            "--note",
            "capped for the launch",
        ],
    );
    assert_eq!(r["rate_limit"]["bandwidth_in_bps"], 1_000_000);
    assert_eq!(r["note"], "capped for the launch");
    assert_eq!(r["state"], "active");
    let r = json(
        &server,
        &[
            "update-rule",
            &id1,
            "--concurrent-connections",
            "5",
            "--name",
            "web-eu",
        ],
    );
    assert_eq!(r["rate_limit"]["bandwidth_in_bps"], 1_000_000);
    assert_eq!(r["rate_limit"]["concurrent_connections"], 5);
    assert_eq!(r["name"], "web-eu");
    let r = json(&server, &["get-rule", "web-eu"]);
    assert_eq!(r["rule_id"], id1.as_str());
    let out = server.cli(&["update-rule", "web-eu"]);
    expect_fail(&out, 2, "invalid_request");

    // "web" is now unique (on edge-02): no --client needed.
    server.cli_ok(&["remove-rule", "web"]);
    server.cli_ok(&["remove-rule", "web-eu", "--client", "edge-01"]);
    let rules = json(&server, &["list-rules"]);
    assert_eq!(rules, Value::Array(vec![]), "both removed");
}

#[test]
fn every_client_and_user_action_has_a_verb() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(dir.path());

    let c = json(&server, &["get-client", "edge-01"]);
    assert_eq!(
        (&c["name"], &c["connected"]),
        (&Value::from("edge-01"), &Value::Bool(true))
    );
    let c = json(
        &server,
        &["set-client-address", "edge-01", "edge.example.com"],
    );
    assert_eq!(c["address"], "edge.example.com");
    let c = json(&server, &["set-client-address", "edge-01", "--clear"]);
    assert_eq!(c["address"], Value::Null);
    let c = json(&server, &["rename-client", "edge-01", "edge-99"]);
    assert_eq!(c["name"], "edge-99");
    let clients = json(&server, &["list-clients"]);
    assert_eq!(clients[0]["name"], "edge-99");
    let e = json(&server, &["re-enroll", "edge-99", "--ttl-secs", "60"]);
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .starts_with("portunus-client enroll '"),
        "{e}"
    );
    let text = server.cli_ok(&["re-enroll", "edge-99"]);
    assert!(text.starts_with("portunus-client enroll '"), "{text}");

    let out = server.cli(&["delete-client", "edge-99"]);
    expect_fail(&out, 1, "client_not_revoked");
    server.cli_ok(&["revoke", "edge-99"]);
    client.kill9();
    server.cli_ok(&["delete-client", "edge-99"]);
    assert_eq!(json(&server, &["list-clients"]), Value::Array(vec![]));
    let out = server.cli(&["get-client", "edge-99"]);
    expect_fail(&out, 1, "client_not_found");

    server.cli_ok(&["user-add", "bob", "--display-name", "Bob"]);
    let u = json(
        &server,
        &[
            "user-update",
            "bob",
            "--display-name",
            "Robert",
            "--role",
            "admin",
        ],
    );
    assert_eq!(
        (&u["display_name"], &u["role"]),
        (&Value::from("Robert"), &Value::from("superadmin"))
    );
    let u = json(&server, &["user-update", "bob", "--disable"]);
    assert_eq!(u["disabled"], true);
    let users = json(&server, &["user-list"]);
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == "bob")
        .unwrap();
    assert_eq!(bob["disabled"], true);
    let u = json(
        &server,
        &["user-update", "bob", "--enable", "--role", "user"],
    );
    assert_eq!(
        (&u["disabled"], &u["role"]),
        (&Value::Bool(false), &Value::from("user"))
    );
    assert_eq!(
        json(&server, &["user-get", "bob"])["display_name"],
        "Robert"
    );
    let out = server.cli(&["user-update", "nobody", "--disable"]);
    expect_fail(&out, 8, "user_not_found");
}

/// The daemon as a container runs it: no bundle, no flags but the test
/// ones, the enrollment URI in its environment.
fn container(home: &Path, uri: &str) -> Client {
    let mut cmd = client_cmd(home);
    cmd.env("PORTUNUS_ENROLL_URI", uri);
    Client::start_cmd(cmd, home)
}

#[test]
fn a_container_enrolls_from_its_environment_then_restarts_on_its_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(&dir.path().join("srv"));
    let command = server.cli_ok(&["enroll-client", "edge-c"]);
    let uri = command.split('\'').nth(1).unwrap().to_string();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let mut first = container(&home, &uri);
    wait_connected(&server, "edge-c", true);
    let bundle = home.join(".config/portunus/client.bundle.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        first.log.text().contains("enrolling"),
        "{}",
        first.log.text()
    );
    assert!(!first.log.text().contains(&uri), "the URI holds a secret");
    let backend = echo_server().to_string();
    let (_, port) = server.push_on_free_port("edge-c", &[&backend]);
    assert!(echo_ok(local(port)));

    // The code is spent; a restart with the same environment runs on the
    // bundle it wrote and gets its rules back.
    first.kill9();
    wait_connected(&server, "edge-c", false);
    let again = container(&home, &uri);
    wait_connected(&server, "edge-c", true);
    wait_for("the rule back on the restarted edge", DEADLINE, || {
        echo_ok(local(port)).then_some(())
    });
    assert!(
        !again.log.text().contains("enrolling"),
        "{}",
        again.log.text()
    );

    // Without a bundle and with a spent code, it says why and exits 1.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let out = client_cmd(&other)
        .env("PORTUNUS_ENROLL_URI", &uri)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("enrollment failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
