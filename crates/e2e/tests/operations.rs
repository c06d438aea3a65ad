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
