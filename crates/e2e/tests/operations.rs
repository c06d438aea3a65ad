//! What an operator sees of a running fleet beyond its rules: which builds
//! talk to each other.

use portunus_e2e::tools::success_stdout;
use portunus_e2e::*;
use serde_json::Value;
use std::process::Command;

fn version_of(name: &str) -> String {
    let out = Command::new(bin(name)).arg("--version").output().unwrap();
    let text = success_stdout(&out);
    text.trim()
        .strip_prefix(&format!("{name} "))
        .unwrap_or_else(|| panic!("{text:?}"))
        .to_string()
}

/// The first JSON line of the client's log whose message is `msg`; the
/// client nests an event's fields under "fields".
fn client_event(client: &Client, msg: &str) -> Option<Value> {
    client
        .log
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["fields"].clone())
        .find(|f| f["message"] == msg)
}

#[test]
fn auth_status_and_the_welcome_carry_both_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, client) = fleet(tmp.path());
    let long = version_of("portunus-server");

    let (status, body) = server.get_as("/v1/auth/status", None);
    assert_eq!(status, 200, "{body}");
    let stamp = format!(
        "{} (commit {}, built {})",
        body["version"].as_str().unwrap(),
        body["commit"].as_str().unwrap(),
        body["build_date"].as_str().unwrap()
    );
    assert_eq!(stamp, long, "{body}");
    assert!(body["wire_version"].as_u64().unwrap() >= 1, "{body}");

    let welcome = wait_for("the client's welcome line", DEADLINE, || {
        client_event(&client, "welcomed by the control plane")
    });
    assert_eq!(welcome["server_version"], long.as_str(), "{welcome}");
    assert_eq!(
        welcome["client_version"],
        version_of("portunus-client").as_str()
    );
    assert_eq!(welcome["server_wire"], body["wire_version"], "{welcome}");

    let hello = wait_for("the server's hello line", DEADLINE, || {
        server.log.find_json("client hello")
    });
    assert_eq!(hello["client"], "edge-01", "{hello}");
    assert!(
        !server.log.text().contains("older than the wire"),
        "a current client is not warned about"
    );
}

#[test]
fn environment_beats_server_toml_and_a_flag_beats_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("srv");
    std::fs::create_dir_all(&dir).unwrap();
    // Out of range: the server refuses to start on the file alone.
    std::fs::write(
        dir.join("server.toml"),
        format!("{SERVER_TOML}udp_flow_idle_secs = 5\n"),
    )
    .unwrap();
    let refused = server_cmd(&dir)
        .arg("--data-dir")
        .arg(&dir)
        .arg("serve")
        .output()
        .unwrap();
    expect_fail(&refused, 1, "udp_flow_idle_secs must be in 30..=300");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let env = [
        ("PORTUNUS_UDP_FLOW_IDLE_SECS", "45"),
        ("PORTUNUS_METRICS_LISTEN", busy.as_str()),
    ];
    // The variable fixes the idle time; a variable naming a busy metrics
    // port wins over the file's ephemeral one.
    let out = server_cmd(&dir)
        .envs(env)
        .arg("--data-dir")
        .arg(&dir)
        .arg("serve")
        .output()
        .unwrap();
    expect_fail(
        &out,
        1,
        &format!("cannot bind the metrics listener on {busy}"),
    );

    // The flag beats the variable.
    let opts = ServerOptions {
        extra_args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let server = Server::start_with(&dir, opts);
    assert_ne!(server.metrics.to_string(), busy);
    assert!(server.metrics_text().contains("portunus_clients_connected"));
}
