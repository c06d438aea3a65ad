//! The control plane on PostgreSQL: the walkthrough across a restart, the
//! database going away and coming back while edges forward, TLS to the
//! database, `migrate-store` from a populated SQLite store, and the file
//! commands that point at pg_dump instead. These need a cluster on every
//! pass (`PORTUNUS_TEST_POSTGRES_URL`, or a private one they start).

use portunus_e2e::net::loopback as local;
use portunus_e2e::net::{echo_ok, echo_server};
use portunus_e2e::pg::{self, Cluster};
use portunus_e2e::{
    exit_code as code, expect_fail, fleet, run_server_cli, stderr_text as stderr, wait_connected,
    wait_for, Server, DEADLINE,
};
use serde_json::Value;
use std::path::Path;

fn json(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&server.cli_ok(&all)).unwrap()
}

/// What an operator can list, without what a connection changes.
fn everything(server: &Server) -> Value {
    let clients: Vec<Value> = json(server, &["list-clients"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let keep = ["client_id", "name", "address", "created_at", "enrolled_at"];
            keep.iter().map(|k| c[*k].clone()).collect()
        })
        .collect();
    // A reconnecting edge reports its rules again, which touches updated_at.
    let mut rules = json(server, &["list-rules"]);
    for r in rules.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("updated_at");
    }
    serde_json::json!({
        "rules": rules,
        "clients": clients,
        "users": json(server, &["user-list"]),
        "grants": json(server, &["grant-list"]),
        "owner_caps": json(server, &["owner-cap", "list", "edge-01"]),
        "setting": server.api_get("/v1/settings/advertised-endpoint"),
    })
}

/// Rules of several kinds, a user with a grant, an owner cap, a setting.
fn populate(server: &Server) -> String {
    let backend = echo_server().to_string();
    let (web, port) = server.push_on_free_port(
        "edge-01",
        &[&backend, "--name", "web", "--note", "front door"],
    );
    assert!(echo_ok(local(port)));
    let (off, _) = server.push_on_free_port("edge-01", &[&backend, "--protocol", "udp"]);
    server.cli_ok(&["disable-rule", &off]);
    server.cli_ok(&["user-add", "alice", "--display-name", "Alice"]);
    server.cli_ok(&[
        "grant-add",
        "--user-id",
        "alice",
        "--client",
        "edge-01",
        "--listen-port-start",
        "20000",
        "--listen-port-end",
        "20100",
        "--protocols",
        "tcp",
    ]);
    server.cli_ok(&[
        "owner-cap",
        "set",
        "edge-01",
        "alice",
        "--concurrent-connections",
        "50",
    ]);
    web
}

#[test]
fn the_walkthrough_on_postgres_keeps_everything_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let url = pg::fresh_database();
    pg::serve_from(&srv, &url);
    let (mut server, _client) = fleet(dir.path());
    let web = populate(&server);
    assert!(!srv.join("state.db").exists(), "the SQLite file was used");
    assert_eq!(pg::psql(&url, "SELECT count(*) FROM rules"), "2");
    let before = everything(&server);

    server.pin_ports();
    server.terminate();
    let token = server.token.clone();
    let mut server = Server::start(&srv);
    server.token = token;
    wait_connected(&server, "edge-01", true);
    wait_for("the rule active again", DEADLINE, || {
        (server.api_get(&format!("/v1/rules/{web}"))["state"] == "active").then_some(())
    });
    assert_eq!(everything(&server), before);
    let port = before["rules"][0]["listen_port"].as_u64().unwrap() as u16;
    assert!(echo_ok(local(port)), "forwarding after the restart");
}

#[test]
fn a_lost_database_answers_503_and_the_edges_keep_forwarding() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    pg::serve_from(&srv, &cluster.database());
    let (server, _client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (_, port) = server.push_on_free_port("edge-01", &[&backend]);
    assert!(echo_ok(local(port)));
    let token = server.token.clone().unwrap();

    cluster.stop();
    // Bounded: the HTTP client gives up after 30 s, the store after 10 s.
    let (status, body) = server.get_as("/v1/rules", Some(&token));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("127.0.0.1"), "{body}");
    expect_fail(&server.cli(&["list-rules"]), 69, "store_unavailable");
    assert!(
        echo_ok(local(port)),
        "forwarding goes on without the database"
    );
    let metrics = server.metrics_text();
    assert!(
        metrics.contains("portunus_clients_connected 1") && metrics.contains("portunus_store_up 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("portunus_client_up{"), "{metrics}");

    cluster.resume();
    wait_for("the API back", DEADLINE, || {
        (server.get_as("/v1/rules", Some(&token)).0 == 200).then_some(())
    });
    assert!(server.metrics_text().contains("portunus_store_up 1"));
    let (_, port2) = server.push_on_free_port("edge-01", &[&backend]);
    assert!(echo_ok(local(port2)) && echo_ok(local(port)));
    assert!(
        !server.log.text().contains("panicked"),
        "{}",
        server.log.text()
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM.
fn tls_material() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "portunus test database CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn the_store_speaks_tls_to_the_database_when_the_url_asks() {
    let (ca, cert, key) = tls_material();
    let staging = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start();
    let cert_path = cluster.write_file("server.crt", cert.as_bytes());
    let key_path = cluster.write_file("server.key", key.as_bytes());
    cluster.stop();
    cluster.set_extra(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert_path.display(),
        key_path.display()
    ));
    cluster.resume();
    let ca_path = staging.path().join("ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        cluster.database(),
        ca_path.display()
    );

    let dir = tempfile::tempdir().unwrap();
    pg::serve_from(dir.path(), &url);
    let server = Server::bootstrapped(dir.path());
    server.cli_ok(&["user-add", "bob", "--display-name", "Bob"]);
    let encrypted = pg::psql(
        &cluster.admin_url(),
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = 'portunus-server' AND s.ssl",
    );
    assert_ne!(encrypted, "0", "no TLS session from the server");

    // A root that did not sign the database's certificate is refused.
    let (other_ca, _, _) = tls_material();
    let wrong = staging.path().join("other.pem");
    std::fs::write(&wrong, other_ca).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    pg::serve_from(
        other_dir.path(),
        &url.replace(&ca_path.display().to_string(), &wrong.display().to_string()),
    );
    let out = run_server_cli(
        other_dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    expect_fail(&out, 69, "store_unavailable");
    assert!(!stderr(&out).contains("password"), "{}", stderr(&out));
}

#[test]
fn migrate_store_copies_a_populated_sqlite_store_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    pg::sqlite_under(dir.path());
    let srv = dir.path().join("srv");
    let (mut server, _client) = fleet(dir.path());
    populate(&server);
    let before = everything(&server);
    let audit_before = json(&server, &["audit", "list", "--limit", "500"])["entries"].clone();
    assert!(audit_before.as_array().unwrap().len() > 3, "{audit_before}");
    server.pin_ports();
    server.terminate();

    // Refused while a server holds the data dir, and for a non-URL.
    let target = pg::fresh_database();
    let holder = Server::start(&srv);
    expect_fail(
        &run_server_cli(&srv, None, None, &["migrate-store", "--to", &target]),
        75,
        "store_in_use",
    );
    drop(holder);
    expect_fail(
        &run_server_cli(&srv, None, None, &["migrate-store", "--to", "mysql://x"]),
        78,
        "database_url_invalid",
    );

    let out = run_server_cli(&srv, None, None, &["migrate-store", "--to", &target]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("verified"), "{}", stderr(&out));
    assert!(srv.join("state.db").exists(), "the SQLite file stays");
    expect_fail(
        &run_server_cli(&srv, None, None, &["migrate-store", "--to", &target]),
        73,
        "target_not_empty",
    );

    pg::serve_from(&srv, &target);
    let token = server.token.clone();
    let mut server = Server::start(&srv);
    server.token = token;
    wait_connected(&server, "edge-01", true);
    assert_eq!(everything(&server), before);
    let audit_after = json(&server, &["audit", "list", "--limit", "500"])["entries"].clone();
    for row in audit_before.as_array().unwrap() {
        assert!(
            audit_after.as_array().unwrap().contains(row),
            "audit row {row} missing after the migration"
        );
    }
    // New audit rows continue after the copied ids.
    let copied = pg::psql(&target, "SELECT max(id) FROM audit");
    server.cli_ok(&["user-add", "carol", "--display-name", "Carol"]);
    wait_for("a new audit row after the copied ones", DEADLINE, || {
        let n = pg::psql(
            &target,
            "SELECT count(*) FROM audit WHERE path LIKE '%/users'",
        );
        let newest = pg::psql(&target, "SELECT max(id) FROM audit");
        (n != "0" && newest.parse::<i64>().ok()? > copied.parse::<i64>().ok()?).then_some(())
    });
}

#[test]
fn file_commands_point_at_pg_dump_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    pg::serve_from(dir.path(), &pg::fresh_database());
    run_server_cli(
        dir.path(),
        None,
        None,
        &["bootstrap-superadmin", "--name", "A"],
    );
    let backup = dir.path().join("b.db");
    for args in [
        vec!["backup", "--out", backup.to_str().unwrap()],
        vec!["restore", "--in", backup.to_str().unwrap(), "--force"],
        vec!["reset", "--confirm"],
    ] {
        let out = run_server_cli(dir.path(), None, None, &args);
        expect_fail(&out, 64, "sqlite_only");
        let instead = ["pg_dump", "pg_restore", "dropdb"];
        assert!(
            instead.iter().any(|t| stderr(&out).contains(t)),
            "{}",
            stderr(&out)
        );
    }
    assert!(!Path::new(&backup).exists());
}
