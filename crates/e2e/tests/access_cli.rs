//! Identity and access through the `portunus-server` command line, with
//! real server and client processes: onboarding from the printed setup
//! token, a tenant pushing inside and outside its grant, rotation,
//! cascades, password recovery, audit pruning, and a scan for leaked
//! secrets.
use portunus_e2e::exit_code as code;
use portunus_e2e::net::loopback as local;
use portunus_e2e::stderr_text as stderr;
use portunus_e2e::{expect_fail, fleet};

mod access_support;

use access_support::*;
use portunus_e2e::net::{echo_ok, echo_server, free_port};
use portunus_e2e::{
    run_server_cli, run_server_cli_stdin, wait_for, Server, DEADLINE, SETUP_TOKEN_BANNER,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Output;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs an operator command as the holder of `token`.
fn cli_as(server: &Server, token: &str, args: &[&str]) -> Output {
    run_server_cli(&server.dir, Some(&server.url()), Some(token), args)
}

/// Pushes `edge-01 <free port> <target>` as `token`; retries when the
/// probed port was taken meanwhile (exit 6).
fn push(server: &Server, token: &str, target: SocketAddr) -> (String, u16) {
    for _ in 0..5 {
        let port = free_port();
        let out = cli_as(
            server,
            token,
            &[
                "push-rule",
                "edge-01",
                &port.to_string(),
                &target.to_string(),
            ],
        );
        if out.status.success() {
            return (stdout(&out), port);
        }
        assert_eq!(code(&out), 6, "push-rule failed: {}", stderr(&out));
    }
    panic!("no free port after 5 tries");
}

fn rule_ids(server: &Server, token: &str) -> Vec<String> {
    let out = cli_as(server, token, &["list-rules", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap().to_string())
        .collect()
}

fn wait_closed(port: u16) {
    wait_for(&format!("port {port} to close"), DEADLINE, || {
        std::net::TcpStream::connect(local(port))
            .is_err()
            .then_some(())
    });
}

/// `user-add`, then a credential for the new user; returns its token.
fn tenant(server: &Server, id: &str) -> (String, String) {
    let out = server.cli(&["user-add", id, "--display-name", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let temp = stdout(&out);
    let token = server.cli_ok(&["credential-issue", id, "--label", "ci"]);
    (temp, token)
}

#[test]
fn onboarding_from_the_printed_setup_token() {
    let dir = tempfile::tempdir().unwrap();
    // Offline first: onboarding-token prints a token, and serve replaces it.
    let out = run_server_cli(dir.path(), None, None, &["onboarding-token"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let offline = stdout(&out);
    assert_eq!(offline.len(), 43);
    let mut server = Server::start(dir.path());
    let printed = setup_token(&server);
    assert_ne!(printed, offline, "serve rotates the token on start");
    let out = run_server_cli(dir.path(), None, None, &["onboarding-token"]);
    expect_fail(&out, 75, "store_in_use");
    let api = Api::new(&server);
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        json!({"setup_token": offline, "user_id": ADMIN, "display_name": "R", "password": ADMIN_PASSWORD}),
    )
    .expect(401, "setup_token_invalid");
    let admin = onboard(&server, &api);
    assert_eq!(admin.setup_token, printed);
    server.token = Some(admin.token.clone());
    let users: Value =
        serde_json::from_str(&server.cli_ok(&["user-list", "--format", "json"])).unwrap();
    assert_eq!(users[0]["user_id"], ADMIN);
    assert_eq!(users[0]["role"], "superadmin");
    server.terminate();
    // Once onboarded, no new token is minted, offline or by serve.
    let out = run_server_cli(dir.path(), None, None, &["onboarding-token"]);
    expect_fail(&out, 1, "superadmin_exists");
    // The banner would precede the "listening" line the harness waits for.
    let server = Server::start(dir.path());
    assert!(
        !server.log.text().contains(SETUP_TOKEN_BANNER),
        "no setup token once a superadmin exists"
    );
}

#[test]
fn tenant_pushes_inside_its_grant_and_is_refused_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    server.cli_ok(&["enroll-client", "edge-02"]);
    let (temp, alice) = tenant(&server, "alice");
    assert_eq!(
        temp.len(),
        20,
        "user-add prints the temporary password alone"
    );
    server.cli_ok(&[
        "user-add",
        "bob",
        "--display-name",
        "Bob",
        "--role",
        "admin",
    ]);
    let users: Value =
        serde_json::from_str(&server.cli_ok(&["user-list", "--format", "json"])).unwrap();
    let roles: Vec<(&str, &str)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user_id"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("_superadmin", "superadmin"),
            ("alice", "user"),
            ("bob", "superadmin")
        ]
    );
    let text = server.cli_ok(&["user-get", "alice"]);
    assert!(text.contains("password: temporary"), "{text}");
    expect_fail(&server.cli(&["user-get", "ghost"]), 8, "user_not_found");
    expect_fail(
        &server.cli(&["user-add", "Bad", "--display-name", "x"]),
        2,
        "invalid_user_id",
    );

    let grant = server.cli_ok(&[
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
    assert_eq!(grant.len(), 26, "grant-add prints the grant id: {grant}");
    let listed = server.cli_ok(&["grant-list"]);
    assert!(
        listed.contains(&grant) && listed.contains("1024-65535"),
        "{listed}"
    );

    let backend = echo_server();
    let (mine, port) = push(&server, &alice, backend);
    assert!(echo_ok(local(port)), "alice's rule forwards");
    let target = backend.to_string();
    expect_fail(
        &cli_as(&server, &alice, &["push-rule", "edge-01", "80", &target]),
        1,
        "port_outside_grant",
    );
    expect_fail(
        &cli_as(
            &server,
            &alice,
            &[
                "push-rule",
                "edge-01",
                "20000",
                &target,
                "--protocol",
                "udp",
            ],
        ),
        1,
        "protocol_not_granted",
    );
    expect_fail(
        &cli_as(&server, &alice, &["push-rule", "edge-02", "20000", &target]),
        1,
        "client_not_granted",
    );
    let admin = server.token.clone().unwrap();
    let (theirs, _) = push(&server, &admin, backend);
    expect_fail(
        &cli_as(&server, &alice, &["remove-rule", &theirs]),
        1,
        "not_owner",
    );
    expect_fail(
        &cli_as(&server, &alice, &["rule-stats", &theirs]),
        1,
        "not_owner",
    );
    assert_eq!(rule_ids(&server, &alice), [mine.as_str()]);
    assert_eq!(rule_ids(&server, &admin).len(), 2);
    for args in [
        vec!["user-list"],
        vec!["grant-revoke", &grant],
        vec!["list-clients"],
        vec!["enroll-client", "edge-03"],
    ] {
        expect_fail(&cli_as(&server, &alice, &args), 1, "forbidden");
    }
    let out = cli_as(&server, &alice, &["remove-rule", &mine]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    wait_closed(port);
}

#[test]
fn credential_rotate_refuses_the_old_token_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    let (_, first) = tenant(&server, "alice");
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["credential-list", "alice", "--format", "json"]))
            .unwrap();
    let id = list[0]["credential_id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["label"], "ci");
    assert!(!list.to_string().contains(&first), "listing shows no token");
    assert_eq!(code(&cli_as(&server, &first, &["list-rules"])), 0);
    let out = server.cli(&["credential-rotate", "alice", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let second = stdout(&out);
    assert_eq!(second.len(), 43);
    assert!(!stderr(&out).contains(&second));
    expect_fail(
        &cli_as(&server, &first, &["list-rules"]),
        1,
        "unauthenticated",
    );
    assert_eq!(code(&cli_as(&server, &second, &["list-rules"])), 0);
    let text = server.cli_ok(&["credential-list", "alice"]);
    assert!(text.contains(&id) && text.contains("active"), "{text}");
    server.cli_ok(&["credential-revoke", "alice", &id]);
    expect_fail(
        &cli_as(&server, &second, &["list-rules"]),
        1,
        "unauthenticated",
    );
    assert!(server
        .cli_ok(&["credential-list", "alice"])
        .contains("revoked"));
    expect_fail(
        &server.cli(&["credential-rotate", "alice", &id]),
        1,
        "conflict",
    );
    expect_fail(
        &server.cli(&["credential-issue", "ghost", "--label", "x"]),
        8,
        "user_not_found",
    );
}

#[test]
fn grant_revoke_and_user_remove_take_rules_off_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (_, alice) = tenant(&server, "alice");
    let grant_args = |start: &str, end: &str| {
        vec![
            "grant-add".to_string(),
            "--user-id".into(),
            "alice".into(),
            "--client".into(),
            "*".into(),
            "--listen-port-start".into(),
            start.into(),
            "--listen-port-end".into(),
            end.into(),
            "--protocols".into(),
            "tcp,udp".into(),
        ]
    };
    let args = grant_args("1024", "65535");
    let grant = server.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let backend = echo_server();
    let (first, port) = push(&server, &alice, backend);
    assert!(echo_ok(local(port)));
    // A superadmin rule on the same client is not the grant's business.
    let admin = server.token.clone().unwrap();
    let (admins, admin_port) = push(&server, &admin, backend);

    let out = server.cli(&["grant-revoke", &grant]);
    expect_fail(&out, 0, "removed 1 rule");
    wait_closed(port);
    assert!(rule_ids(&server, &alice).is_empty());
    assert_eq!(rule_ids(&server, &admin), [admins.as_str()]);
    assert!(!rule_ids(&server, &admin).contains(&first));
    expect_fail(&server.cli(&["grant-revoke", &grant]), 1, "not_found");

    let args = grant_args("1024", "65535");
    server.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, port) = push(&server, &alice, backend);
    assert!(echo_ok(local(port)));
    let out = server.cli(&["user-remove", "alice"]);
    expect_fail(&out, 0, "1 rule");
    wait_closed(port);
    expect_fail(
        &cli_as(&server, &alice, &["list-rules"]),
        1,
        "unauthenticated",
    );
    assert!(server.cli_ok(&["grant-list", "--format", "json"]) == "[]");
    assert!(echo_ok(local(admin_port)), "other rules keep forwarding");
    expect_fail(&server.cli(&["user-remove", "alice"]), 8, "user_not_found");
    expect_fail(
        &server.cli(&["user-remove", "_superadmin"]),
        1,
        "last_superadmin",
    );
}

#[test]
fn reset_password_exit_codes_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_server_cli_stdin(
        &dir.path().join("missing"),
        &["reset-password", "root", "--temporary"],
        "",
    );
    expect_fail(&out, 8, "user_not_found");
    assert!(!dir.path().join("missing").exists(), "nothing created");

    let mut server = Server::bootstrapped(dir.path());
    let api = Api::new(&server);
    let admin = server.token.clone().unwrap();
    let alice = api.tenant(Auth::Bearer(&admin), "alice", "alice password 1");
    let session = api.session("alice", "alice password 1");
    let out = run_server_cli_stdin(dir.path(), &["reset-password", "alice", "--temporary"], "");
    expect_fail(&out, 75, "store_in_use");
    server.terminate();

    let out = run_server_cli_stdin(dir.path(), &["reset-password", "ghost", "--temporary"], "");
    expect_fail(&out, 8, "user_not_found");
    let out = run_server_cli_stdin(
        dir.path(),
        &["reset-password", "alice", "--password-stdin"],
        "short\n",
    );
    expect_fail(&out, 2, "password_too_weak");
    let out = run_server_cli_stdin(
        dir.path(),
        &[
            "reset-password",
            "alice",
            "--password-stdin",
            "--keep-api-tokens",
        ],
        "alice recovered pw 1\n",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "a chosen password is never printed");
    assert!(
        stderr(&out).contains("ended 1 Web session"),
        "{}",
        stderr(&out)
    );

    let mut server = Server::start(dir.path());
    let api = Api::new(&server);
    api.get("/v1/users/me", Auth::Cookie(&session))
        .expect(401, "unauthenticated");
    api.get("/v1/users/me", Auth::Bearer(&alice)).ok(200);
    api.login("alice", "alice password 1")
        .expect(401, "unauthenticated");
    assert_eq!(
        api.login("alice", "alice recovered pw 1").ok(200)["password_change_required"],
        false
    );
    server.terminate();

    let out = run_server_cli_stdin(dir.path(), &["reset-password", "alice", "--temporary"], "");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let temp = stdout(&out);
    assert_eq!(temp.len(), 20);
    assert!(
        stderr(&out).contains("revoked 1 API token"),
        "{}",
        stderr(&out)
    );
    let server = Server::start(dir.path());
    let api = Api::new(&server);
    api.get("/v1/users/me", Auth::Bearer(&alice))
        .expect(401, "unauthenticated");
    assert_eq!(
        api.login("alice", &temp).ok(200)["password_change_required"],
        true
    );
    // Recovery never created the unknown user.
    let users = api.get("/v1/users", Auth::Bearer(&admin));
    assert_eq!(users.ok(200).as_array().unwrap().len(), 2);
}

#[test]
fn audit_prune_counts_then_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::bootstrapped(dir.path());
    let api = Api::new(&server);
    let admin = server.token.clone().unwrap();
    // Writes are audited (successful reads are not).
    for i in 0..3 {
        server.cli_ok(&["enroll-client", &format!("edge-{i}")]);
    }
    wait_audit(&api, Auth::Bearer(&admin), |e| {
        e["path"] == "/v1/client-enrollments"
    });
    let out = run_server_cli(
        dir.path(),
        None,
        None,
        &["audit", "prune", "--before", "2999-01-01T00:00:00Z"],
    );
    expect_fail(&out, 75, "store_in_use");
    server.terminate();

    let prune = |before: &str, dry: bool| {
        let mut args = vec!["audit", "prune", "--before", before];
        if dry {
            args.push("--dry-run");
        }
        let out = run_server_cli(dir.path(), None, None, &args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        let n: u64 = text
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a count in {text:?}"));
        n
    };
    assert_eq!(prune("2000-01-01T00:00:00Z", true), 0);
    let n = prune("2999-01-01T00:00:00Z", true);
    assert!(n >= 3, "the writes above left rows: {n}");
    assert_eq!(
        prune("2999-01-01T00:00:00Z", true),
        n,
        "a dry run deletes nothing"
    );
    assert_eq!(prune("2999-01-01T00:00:00Z", false), n);
    assert_eq!(prune("2999-01-01T00:00:00Z", true), 0);
    for bad in ["yesterday", "2024-05-01", "2024-13-01T00:00:00Z"] {
        let out = run_server_cli(dir.path(), None, None, &["audit", "prune", "--before", bad]);
        expect_fail(&out, 2, "invalid_time");
    }
}

/// Every secret the flow below creates or sends, and every place one could
/// leak to: the server's log lines, the audit rows, the database files and
/// the command line's stderr.
#[test]
fn no_secret_reaches_logs_audit_rows_or_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut secrets: Vec<String> = Vec::new();
    let mut logs = String::new();
    let mut cli_stderr = String::new();

    let mut server = Server::start(dir.path());
    let api = Api::new(&server);
    let admin = onboard(&server, &api);
    server.token = Some(admin.token.clone());
    secrets.extend([
        admin.setup_token.clone(),
        admin.cookie.clone(),
        admin.token.clone(),
        ADMIN_PASSWORD.to_string(),
    ]);
    let a = admin.bearer();

    let out = server.cli(&["user-add", "alice", "--display-name", "Alice"]);
    cli_stderr += &stderr(&out);
    let temp = stdout(&out);
    secrets.push(temp.clone());
    let s = api.session("alice", &temp);
    secrets.push(s.clone());
    let new_pw = "alice chosen password";
    secrets.push(new_pw.into());
    let changed = api.post(
        "/v1/users/me/password",
        Auth::Cookie(&s),
        json!({"current_password": temp, "new_password": new_pw}),
    );
    secrets.push(changed.session().unwrap());
    let out = server.cli(&["credential-issue", "alice", "--label", "ci"]);
    cli_stderr += &stderr(&out);
    let token = stdout(&out);
    secrets.push(token.clone());
    let id = api.get("/v1/users/alice/credentials", a).ok(200)[0]["credential_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = server.cli(&["credential-rotate", "alice", &id]);
    cli_stderr += &stderr(&out);
    secrets.push(stdout(&out));
    let reset = api.post("/v1/users/alice/password", a, json!({}));
    secrets.push(reset.ok(200)["temporary_password"].as_str().unwrap().into());
    let set = "admin chosen for alice";
    secrets.push(set.into());
    api.post(
        "/v1/users/alice/password",
        a,
        json!({"password": set, "temporary": false}),
    )
    .ok(200);

    // Failures that carry secrets in their requests.
    for wrong in ["wrong guess number one", "wrong guess number two"] {
        secrets.push(wrong.into());
        api.login("alice", wrong).expect(401, "unauthenticated");
    }
    let bogus = "bogus-bearer-secret-value";
    secrets.push(bogus.into());
    api.get("/v1/rules", Auth::Bearer(bogus))
        .expect(401, "unauthenticated");
    api.get("/v1/rules", Auth::Cookie("forged-session-secret"))
        .expect(401, "unauthenticated");
    secrets.push("forged-session-secret".into());
    let typed = "typed wrong field secret";
    secrets.push(typed.into());
    api.send(
        api.builder("POST", "/v1/auth/login")
            .json(&json!({"user_id": "alice", "password": typed, "unknown": typed})),
    )
    .expect(400, "invalid_request");
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        json!({"setup_token": admin.setup_token, "user_id": "x", "display_name": "x", "password": typed}),
    )
    .expect(409, "superadmin_exists");
    api.post(
        "/v1/users",
        a,
        json!({"user_id": "weak", "display_name": "w", "password": "weak-secret"}),
    )
    .expect(400, "password_too_weak");
    secrets.push("weak-secret".into());
    wait_audit(&api, a, |e| e["reason"] == "password_too_weak");

    let mut audit_rows = String::new();
    let mut cursor = String::new();
    loop {
        let page = api.audit(a, &format!("?limit=1000{cursor}"));
        audit_rows += &page["entries"].to_string();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(audit_rows.contains("/v1/auth/login"), "{audit_rows}");
    server.terminate();
    logs += &server.log.text();

    // Offline recovery, then a second run.
    let out = run_server_cli_stdin(dir.path(), &["reset-password", "alice", "--temporary"], "");
    cli_stderr += &stderr(&out);
    let recovered = stdout(&out);
    secrets.push(recovered.clone());
    let out = run_server_cli_stdin(
        dir.path(),
        &["reset-password", "alice", "--password-stdin"],
        "alice stdin password\n",
    );
    cli_stderr += &stderr(&out);
    secrets.push("alice stdin password".into());
    let mut server = Server::start(dir.path());
    let api = Api::new(&server);
    api.login("alice", "alice stdin password").ok(200);
    server.terminate();
    logs += &server.log.text();

    assert!(
        logs.contains("\"listening\"") && logs.contains(SETUP_TOKEN_BANNER),
        "{logs}"
    );
    // The banner is the one place the setup token is meant to appear.
    let logs: String = logs
        .lines()
        .filter(|l| !l.starts_with(SETUP_TOKEN_BANNER))
        .collect::<Vec<_>>()
        .join("\n");
    let mut db = Vec::new();
    for f in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            db.extend(bytes);
        }
    }
    let db = String::from_utf8_lossy(&db);
    for secret in &secrets {
        assert!(secret.len() >= 10, "{secret:?} is too short to scan for");
        assert!(
            !logs.contains(secret.as_str()),
            "{secret:?} in the server log"
        );
        assert!(
            !audit_rows.contains(secret.as_str()),
            "{secret:?} in an audit row"
        );
        assert!(
            !db.contains(secret.as_str()),
            "{secret:?} in the database files"
        );
        assert!(
            !cli_stderr.contains(secret.as_str()),
            "{secret:?} on CLI stderr"
        );
    }
}
