//! The server's command line and HTTP surface, without edge clients.
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::{run_server_cli, wait_for, Server, DEADLINE};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

#[test]
fn gen_token_prints_43_url_safe_chars() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_server_cli(dir.path(), None, None, &["gen-token"]);
    assert_eq!(code(&out), 0);
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 43);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

#[test]
fn operator_commands_without_token_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["list-clients"],
        vec!["push-rule", "edge", "8080", "127.0.0.1:80"],
        vec!["list-rules"],
        vec!["revoke", "edge"],
        vec!["rule-stats", "x"],
        vec!["remove-rule", "x"],
    ] {
        let out = run_server_cli(dir.path(), Some("http://127.0.0.1:1"), None, &args);
        expect_fail(&out, 4, "PORTUNUS_OPERATOR_TOKEN");
    }
}

#[test]
fn second_serve_on_a_data_dir_exits_75_and_sigterm_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let out = run_server_cli(dir.path(), None, None, &["serve"]);
    expect_fail(&out, 75, "store_in_use");
    // Offline maintenance refuses too while the server holds the store.
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    // The lock died with the process: the dir is usable again.
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn first_serve_generates_cert_and_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    server.terminate();
    let key = std::fs::metadata(dir.path().join("server.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(dir.path().join("server.crt")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(server.pin.len(), 64);
    // A key readable by others is refused.
    std::fs::set_permissions(
        dir.path().join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = run_server_cli(dir.path(), None, None, &["serve"]);
    expect_fail(&out, 1, "0644");
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.toml"),
        "control_listen = \"127.0.0.1:0\"\nfrobnicate = true\n",
    )
    .unwrap();
    let out = run_server_cli(dir.path(), None, None, &["serve"]);
    expect_fail(&out, 1, "frobnicate");
}

#[test]
fn a_configured_certificate_that_is_missing_is_an_error_not_a_new_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        dir.path().join("tls/edge.crt"),
        dir.path().join("tls/edge.key"),
    );
    std::fs::write(
        dir.path().join("server.toml"),
        format!(
            "{}tls_cert_path = \"{}\"\ntls_key_path = \"{}\"\n",
            portunus_e2e::SERVER_TOML,
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let out = run_server_cli(dir.path(), None, None, &["serve"]);
    expect_fail(&out, 1, &cert.display().to_string());
    assert!(!cert.exists() && !key.exists(), "no identity was minted");
}

#[test]
fn newer_schema_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    portunus_e2e::tools::set_schema_version(dir.path(), 999);
    let out = run_server_cli(dir.path(), None, None, &["serve"]);
    expect_fail(&out, 78, "999");
}

#[test]
fn bootstrap_superadmin_refuses_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    assert_eq!(code(&out), 0);
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    expect_fail(&out, 1, "superadmin_exists");
}

#[test]
fn http_contract_before_and_after_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, body) = server.get_as("/v1/auth/status", None);
    assert_eq!(
        (status, body["onboarding_required"].clone()),
        (200, Value::Bool(true))
    );
    let (status, body) = server.get_as("/v1/clients", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("bootstrap_required"))
    );
    drop(server);

    let server = Server::bootstrapped(dir.path());
    let token = server.token.clone().unwrap();
    let (status, body) = server.get_as("/v1/clients", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = server.get_as("/v1/clients", Some("wrong-token"));
    assert_eq!(status, 401);
    let (status, body) = server.get_as("/v1/clients", Some(&token));
    assert_eq!((status, body), (200, Value::Array(vec![])));
    let (status, body) = server.get_as("/v1/nope", Some(&token));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = server.get_as("/v1/rules/01NOPE", Some(&token));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("rule_not_found"))
    );

    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/rules", server.url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"client": "edge", "listen_port": 0, "targets": []}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_port");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("listen_port"));

    let metrics = server.metrics_text();
    assert!(
        metrics.contains("portunus_clients_connected 0"),
        "{metrics}"
    );
}

#[test]
fn legacy_operator_token_mints_legacy_superadmin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.toml"),
        "control_listen = \"127.0.0.1:0\"\noperator_http_listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\noperator_token = \"legacy-secret-token-value\"\n",
    )
    .unwrap();
    let mut server = Server::start(dir.path());
    server.token = Some("legacy-secret-token-value".into());
    let out = server.cli_ok(&["list-clients", "--format", "json"]);
    assert_eq!(out, "[]");
    assert!(
        !server.log.text().contains("legacy-secret-token-value"),
        "token leaked into logs"
    );
}

#[test]
fn enroll_client_works_offline_and_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // No server: straight to the store.
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["enroll-client", "edge-01", "--ttl-secs", "60"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cmd = String::from_utf8(out.stdout).unwrap();
    assert!(
        cmd.starts_with("portunus-client enroll 'portunus://"),
        "{cmd}"
    );
    assert!(
        cmd.contains("/enroll?pin=sha256:") && cmd.contains("&code="),
        "{cmd}"
    );
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["enroll-client", "edge-01", "--ttl-secs", "0"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_ttl"));
    let out = run_server_cli(dir.path(), None, None, &["enroll-client", "bad name"]);
    assert_eq!(code(&out), 2);

    // With a server: through the API (needs the token).
    let mut server = Server::start(dir.path());
    server.token = Some(token);
    let cmd = server.cli_ok(&["enroll-client", "edge-02", "--address", "edge2.example.com"]);
    assert!(
        cmd.contains(&format!("portunus://127.0.0.1:{}/enroll", server.control))
            || cmd.contains(&server.control.to_string()),
        "{cmd}"
    );
    assert!(cmd.contains(&server.pin), "URI pins the served certificate");
    let out = run_server_cli(
        &server.dir,
        Some(&server.url()),
        None,
        &["enroll-client", "edge-03"],
    );
    assert_eq!(code(&out), 4, "API path needs the token");
    let clients = server.api_get("/v1/clients");
    let names: Vec<&str> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["edge-01", "edge-02"]);
    assert_eq!(clients[1]["address"], "edge2.example.com");
}

#[test]
fn push_to_a_disconnected_client_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    server.cli_ok(&["enroll-client", "edge-01"]);
    let out = server.cli(&["push-rule", "edge-01", "18080", "127.0.0.1:80"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("client_not_connected"));
    let out = server.cli(&["push-rule", "ghost", "18080", "127.0.0.1:80"]);
    assert!(
        stderr(&out).contains("client_not_found"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(&["push-rule", "edge-01", "70000", "127.0.0.1:80"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("invalid_port"));
    let rules = wait_for("empty rule list", DEADLINE, || {
        Some(server.cli_ok(&["list-rules", "--format", "json"]))
    });
    assert_eq!(rules, "[]");
}

#[test]
fn offline_enrollment_refuses_an_ephemeral_control_port() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.toml"),
        "control_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = run_server_cli(dir.path(), None, None, &["enroll-client", "edge-01"]);
    expect_fail(&out, 2, "port 0");
    std::fs::write(
        dir.path().join("server.toml"),
        "control_listen = \"127.0.0.1:0\"\nadvertised_endpoint = \"localhost:7443\"\n",
    )
    .unwrap();
    let out = run_server_cli(dir.path(), None, None, &["enroll-client", "edge-01"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("portunus://localhost:7443/enroll"));
}
