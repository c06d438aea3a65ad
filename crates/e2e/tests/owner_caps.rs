//! Per-owner envelopes: `owner-cap set|get|list|delete` and their routes.
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::{run_server_cli, Server};
use serde_json::Value;

#[test]
fn empty_set_is_rejected_before_anything_else_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    // No token and no server: the pre-flight check answers first.
    let out = run_server_cli(
        dir.path(),
        Some("http://127.0.0.1:1"),
        None,
        &["owner-cap", "set", "edge-01", "alice"],
    );
    expect_fail(&out, 3, "validation.rate_limit_no_caps_provided");
    let out = run_server_cli(
        dir.path(),
        Some("http://127.0.0.1:1"),
        None,
        &[
            "owner-cap",
            "set",
            "edge-01",
            "alice",
            "--bandwidth-in-bps",
            "0",
        ],
    );
    expect_fail(&out, 2, "validation.rate_limit_cap_zero");
}

#[test]
fn set_get_list_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    server.cli_ok(&["enroll-client", "edge-01"]);
    server.cli_ok(&["user-add", "alice", "--display-name", "Alice"]);

    let set = server.cli_ok(&[
        "owner-cap",
        "set",
        "edge-01",
        "alice",
        "--bandwidth-in-bps",
        "1000000",
        "--concurrent-connections",
        "10",
    ]);
    let set: Value = serde_json::from_str(&set).unwrap();
    assert_eq!(set["bandwidth_in_bps"], 1_000_000);

    let got: Value = serde_json::from_str(&server.cli_ok(&[
        "owner-cap",
        "get",
        "edge-01",
        "alice",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(got["owner"], "alice");
    assert_eq!(got["rate_limit"]["concurrent_connections"], 10);

    let list = server.cli_ok(&["owner-cap", "list", "edge-01"]);
    assert!(
        list.contains("alice") && list.contains("concurrent_connections=10"),
        "{list}"
    );
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["owner-cap", "list", "edge-01", "--format", "json"]))
            .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A burst outside [rate/100, rate*60] is refused with its field named.
    let out = server.cli(&[
        "owner-cap",
        "set",
        "edge-01",
        "alice",
        "--bandwidth-in-bps",
        "1000",
        "--bandwidth-in-burst",
        "1",
    ]);
    expect_fail(&out, 2, "bandwidth_in_burst");

    let out = server.cli(&[
        "owner-cap",
        "set",
        "edge-01",
        "nobody",
        "--bandwidth-in-bps",
        "1000",
    ]);
    assert!(stderr(&out).contains("user_not_found"), "{}", stderr(&out));
    let out = server.cli(&[
        "owner-cap",
        "set",
        "ghost",
        "alice",
        "--bandwidth-in-bps",
        "1000",
    ]);
    assert!(
        stderr(&out).contains("client_not_found"),
        "{}",
        stderr(&out)
    );

    server.cli_ok(&["owner-cap", "delete", "edge-01", "alice"]);
    let out = server.cli(&["owner-cap", "get", "edge-01", "alice"]);
    expect_fail(&out, 1, "not_found");
    let out = server.cli(&["owner-cap", "delete", "edge-01", "alice"]);
    assert_eq!(code(&out), 1);
}
