//! What an operator sees of a running fleet beyond its rules: which builds
//! talk to each other.

use portunus_e2e::tools::{store_exec, success_stdout};
use portunus_e2e::*;
use std::process::Command;

fn version_of(name: &str) -> String {
    let out = Command::new(bin(name)).arg("--version").output().unwrap();
    let text = success_stdout(&out);
    text.trim()
        .strip_prefix(&format!("{name} "))
        .unwrap_or_else(|| panic!("{text:?}"))
        .to_string()
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
        client.log.find_json("welcomed by the control plane")
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

/// The retention task's first pass, shortly after start, applies both
/// limits and counts what it deleted.
#[test]
fn audit_retention_prunes_old_rows_and_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("srv");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        format!("{SERVER_TOML}audit_retention_days = 30\naudit_max_rows = 2\n"),
    )
    .unwrap();
    let token = bootstrap_superadmin(&dir);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut script = String::new();
    // Five rows from 1970, then three from the last minute.
    for at in [
        1_000,
        2_000,
        3_000,
        4_000,
        5_000,
        now_ms - 3_000,
        now_ms - 2_000,
        now_ms - 1_000,
    ] {
        script.push_str(&format!(
            "INSERT INTO audit (at_ms, actor, method, path, outcome, reason) \
             VALUES ({at}, 'admin', 'POST', '/v1/rules', 'allow', 'ok');\n"
        ));
    }
    store_exec(&dir, &script);

    let mut server = Server::start(&dir);
    server.token = Some(token);
    let pruned = |reason: &str| {
        let line = format!("portunus_audit_pruned_total{{reason=\"{reason}\"}} ");
        server
            .metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()).map(str::to_string))
    };
    wait_for("the first retention pass", DEADLINE, || {
        (pruned("age")? != "0" || pruned("max_rows")? != "0").then_some(())
    });
    assert_eq!(pruned("age").as_deref(), Some("5"));
    assert_eq!(pruned("max_rows").as_deref(), Some("1"));
    let rows = server.api_get("/v1/audit?limit=100");
    let at: Vec<&str> = rows["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{rows}"))
        .iter()
        .map(|r| r["at"].as_str().unwrap())
        .collect();
    // The newest two of today's three.
    assert_eq!(at.len(), 2, "{rows}");
    assert!(at.iter().all(|t| !t.starts_with("1970")), "{rows}");
    assert!(server.log.find_json("pruned audit rows").is_some());
}
