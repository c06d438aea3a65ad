//! The advertised endpoint over real processes: the settings API, the four
//! resolver tiers and their precedence, SAN coverage of the certificate the
//! server actually serves, resolve-once replay at redeem, legacy
//! enrollments without a stored endpoint, and client addresses.
use portunus_e2e::stderr_text as stderr;
use portunus_e2e::tools::{store_exec, store_query};

use portunus_e2e::{bootstrap_superadmin, client_cmd, run_server_cli, Server, ServerOptions};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

const SETTING: &str = "/v1/settings/advertised-endpoint";
const STARTUP_WARNING: &str =
    "the advertised endpoint cannot be resolved; enrollments fail until the override or seed is fixed";
use portunus_e2e::SERVER_TOML as LISTENERS;

// ---------------------------------------------------------------- helpers

fn opts(args: &[&str], env: &[(&str, &str)]) -> ServerOptions {
    ServerOptions {
        extra_args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Bootstraps a superadmin in `dir`, then serves it with `o`.
fn boot(dir: &Path, o: ServerOptions) -> Server {
    let token = bootstrap_superadmin(dir);
    let mut s = Server::start_with(dir, o);
    s.token = Some(token);
    s
}

/// Stops `server` (exit 0) and serves its data dir again with `o`.
fn restart(mut server: Server, o: ServerOptions) -> Server {
    assert_eq!(server.terminate().code(), Some(0));
    let mut s = Server::start_with(&server.dir.clone(), o);
    s.token = server.token.take();
    s
}

fn request(
    s: &Server,
    token: Option<&str>,
    host: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Client::new().request(method, format!("{}{path}", s.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(h) = host {
        req = req.header(reqwest::header::HOST, h);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn api(s: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    request(s, s.token.as_deref(), None, method, path, body)
}

fn get_endpoint(s: &Server) -> Value {
    let (status, v) = api(s, Method::GET, SETTING, None);
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn put_endpoint(s: &Server, value: Value) -> (StatusCode, Value) {
    api(
        s,
        Method::PUT,
        SETTING,
        Some(json!({ "advertised_endpoint": value })),
    )
}

fn report(effective: &str, source: &str, over: Option<&str>) -> Value {
    json!({ "override": over, "effective": effective, "source": source, "diagnostic": null })
}

#[track_caller]
fn assert_error(got: (StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
}

fn enroll_api(s: &Server, name: &str, host: Option<&str>) -> (StatusCode, Value) {
    request(
        s,
        s.token.as_deref(),
        host,
        Method::POST,
        "/v1/client-enrollments",
        Some(json!({ "name": name })),
    )
}

/// `host:port` of a `portunus://host:port/enroll?...` URI.
fn authority(uri: &str) -> String {
    uri.strip_prefix("portunus://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not an enrollment URI: {uri}"))
        .to_string()
}

/// The endpoint an enrollment created over HTTP (with `host`) advertises.
#[track_caller]
fn enrolled_endpoint(s: &Server, name: &str, host: Option<&str>) -> String {
    let (status, v) = enroll_api(s, name, host);
    assert_eq!(status, StatusCode::CREATED, "{v}");
    authority(v["uri"].as_str().unwrap())
}

fn uri_of_command(command: &str) -> String {
    command
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no URI in {command:?}"))
        .to_string()
}

fn sha256_hex(s: &[u8]) -> String {
    hex::encode(Sha256::digest(s))
}

/// Writes a self-signed certificate with exactly these SANs and its key
/// (mode 0600); returns the pin clients would use.
fn write_cert(cert: &Path, key: &Path, dns: &[&str], ips: &[&str]) -> String {
    let mut params = rcgen::CertificateParams::default();
    for d in dns {
        params
            .subject_alt_names
            .push(rcgen::SanType::DnsName((*d).try_into().unwrap()));
    }
    for ip in ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().unwrap()));
    }
    let pair = rcgen::KeyPair::generate().unwrap();
    let c = params.self_signed(&pair).unwrap();
    std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
    std::fs::write(cert, c.pem()).unwrap();
    std::fs::write(key, pair.serialize_pem()).unwrap();
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    sha256_hex(c.der())
}

/// `portunus-server <args>` on `dir` with no server running, with a clean
/// environment plus `env`.
fn offline(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = portunus_e2e::server_cmd(dir);
    cmd.envs(env.iter().copied());
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portunus-server")
}

/// Redeems `uri` with the real client; the bundle goes to `home/name.json`.
fn redeem(uri: &str, home: &Path, name: &str) -> (Output, std::path::PathBuf) {
    let bundle = home.join(format!("{name}.json"));
    let out = client_cmd(home)
        .args(["enroll", uri, "--out"])
        .arg(&bundle)
        .output()
        .expect("run portunus-client");
    (out, bundle)
}

fn read_bundle(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ------------------------------------------------------------------ tests

#[test]
fn settings_api_answers_every_status_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let token = bootstrap_superadmin(dir.path());
    // A plain user with an API token, straight into the store.
    let viewer_token = "viewer-token-for-the-403-case";
    store_exec(
        dir.path(),
        &format!(
            "INSERT INTO users (id, display_name, role, created_at) VALUES ('viewer', 'Viewer', 'user', 0);
             INSERT INTO api_tokens (id, user_id, label, token_hash, created_at)
             VALUES ('viewer-tok', 'viewer', 'test', '{}', 0);",
            sha256_hex(viewer_token.as_bytes())
        ),
    );
    let mut s = Server::start(dir.path());
    s.token = Some(token);
    let loopback = format!("127.0.0.1:{}", s.control.port());

    // Authentication and authorisation.
    let body = || Some(json!({ "advertised_endpoint": "localhost:1" }));
    assert_error(
        request(&s, None, None, Method::GET, SETTING, None),
        401,
        "unauthenticated",
    );
    assert_error(
        request(&s, None, None, Method::PUT, SETTING, body()),
        401,
        "unauthenticated",
    );
    let viewer = Some(viewer_token);
    assert_error(
        request(&s, viewer, None, Method::GET, SETTING, None),
        403,
        "forbidden",
    );
    assert_error(
        request(&s, viewer, None, Method::PUT, SETTING, body()),
        403,
        "forbidden",
    );

    // Nothing configured: loopback on the bound control port.
    assert_eq!(get_endpoint(&s), report(&loopback, "loopback", None));

    // Grammar comes first.
    for bad in [
        "https://localhost:443",
        "localhost",
        "localhost:",
        "localhost:0",
        "localhost:65536",
        "localhost:443/path",
        "user@localhost:443",
        "[::1]:443",
        "::1:443",
        " localhost:443",
        "*.example.com:443",
        "proxy.example.com",
    ] {
        assert_error(put_endpoint(&s, json!(bad)), 422, "endpoint_invalid");
    }
    // Then SAN coverage: the generated certificate covers the hostname,
    // localhost and 127.0.0.1 only.
    for uncovered in ["proxy.example.com:443", "10.0.0.1:443", "sub.localhost:443"] {
        let got = put_endpoint(&s, json!(uncovered));
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DNS:localhost"),
            "{}",
            got.1
        );
        assert_error(got, 422, "endpoint_not_in_cert_san");
    }
    // Malformed requests.
    let put_raw = |body: Value| api(&s, Method::PUT, SETTING, Some(body));
    assert_error(put_raw(json!({})), 400, "invalid_request");
    assert_error(
        put_raw(json!({ "advertised_endpoint": 5 })),
        400,
        "invalid_request",
    );
    assert_error(
        put_raw(json!({ "advertised_endpoint": "localhost:1", "extra": 1 })),
        400,
        "invalid_request",
    );
    let no_json = Client::new()
        .put(format!("{}{SETTING}", s.url()))
        .bearer_auth(s.token.as_deref().unwrap())
        .body("localhost:1")
        .send()
        .unwrap();
    assert_eq!(no_json.status(), StatusCode::BAD_REQUEST);
    // No failure persisted anything.
    assert_eq!(get_endpoint(&s), report(&loopback, "loopback", None));

    // Set (the host keeps its spelling), read back, clear with null and "".
    let set = put_endpoint(&s, json!("LocalHost:34567"));
    assert_eq!(set.0, StatusCode::OK, "{}", set.1);
    let want = report("LocalHost:34567", "override", Some("LocalHost:34567"));
    assert_eq!(set.1, want);
    assert_eq!(get_endpoint(&s), want);
    let set = put_endpoint(&s, json!("127.0.0.1:1"));
    assert_eq!(
        set.1,
        report("127.0.0.1:1", "override", Some("127.0.0.1:1"))
    );
    let cleared = put_endpoint(&s, Value::Null);
    assert_eq!(cleared.0, StatusCode::OK);
    assert_eq!(cleared.1, report(&loopback, "loopback", None));
    put_endpoint(&s, json!("localhost:2"));
    let cleared = put_endpoint(&s, json!(""));
    assert_eq!(cleared.1, report(&loopback, "loopback", None));

    // The override lives in SQLite and survives a restart.
    assert_eq!(put_endpoint(&s, json!("localhost:3")).0, StatusCode::OK);
    let s = restart(s, opts(&[], &[]));
    assert_eq!(
        get_endpoint(&s),
        report("localhost:3", "override", Some("localhost:3"))
    );
}

#[test]
fn seed_by_flag_env_and_file_and_tier_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let s = boot(
        dir.path(),
        opts(&["--advertised-endpoint", "localhost:5001"], &[]),
    );
    assert_eq!(get_endpoint(&s), report("localhost:5001", "seed", None));
    // The seed beats the derived tier...
    assert_eq!(
        enrolled_endpoint(&s, "edge", Some("localhost:9999")),
        "localhost:5001"
    );
    // ...and the override beats the seed.
    assert_eq!(put_endpoint(&s, json!("127.0.0.1:5002")).0, StatusCode::OK);
    assert_eq!(
        get_endpoint(&s),
        report("127.0.0.1:5002", "override", Some("127.0.0.1:5002"))
    );
    assert_eq!(
        enrolled_endpoint(&s, "edge", Some("localhost:9999")),
        "127.0.0.1:5002"
    );
    assert_eq!(put_endpoint(&s, Value::Null).0, StatusCode::OK);
    assert_eq!(get_endpoint(&s), report("localhost:5001", "seed", None));

    // The environment variable is the same tier.
    let env = [("PORTUNUS_ADVERTISED_ENDPOINT", "localhost:5003")];
    let s = restart(s, opts(&[], &env));
    assert_eq!(get_endpoint(&s), report("localhost:5003", "seed", None));
    assert_eq!(enrolled_endpoint(&s, "edge", None), "localhost:5003");

    // The flag beats the environment.
    let s = restart(s, opts(&["--advertised-endpoint", "127.0.0.1:5004"], &env));
    assert_eq!(get_endpoint(&s), report("127.0.0.1:5004", "seed", None));

    // server.toml's key seeds too, and the environment beats it.
    std::fs::write(
        dir.path().join("server.toml"),
        format!("{LISTENERS}advertised_endpoint = \"localhost:5005\"\n"),
    )
    .unwrap();
    let s = restart(s, opts(&[], &[]));
    assert_eq!(get_endpoint(&s), report("localhost:5005", "seed", None));
    let s = restart(s, opts(&[], &env));
    assert_eq!(get_endpoint(&s), report("localhost:5003", "seed", None));

    // Without any seed the request host, then loopback, decide.
    std::fs::write(dir.path().join("server.toml"), LISTENERS).unwrap();
    let s = restart(s, opts(&[], &[]));
    let port = s.control.port();
    assert_eq!(
        get_endpoint(&s),
        report(&format!("127.0.0.1:{port}"), "loopback", None)
    );
    assert_eq!(
        enrolled_endpoint(&s, "edge", Some("localhost:9999")),
        format!("localhost:{port}")
    );
}

#[test]
fn broken_seed_is_logged_and_enrollments_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = boot(
        dir.path(),
        opts(&["--advertised-endpoint", "proxy.example.com:443"], &[]),
    );
    // The server serves anyway and says why at startup.
    let warning = s.log.find_json(STARTUP_WARNING).expect("startup warning");
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(warning["code"], "endpoint_not_in_cert_san", "{warning}");
    let diagnostic = warning["diagnostic"].as_str().unwrap();
    assert!(diagnostic.contains("proxy.example.com"), "{diagnostic}");

    let got = get_endpoint(&s);
    assert_eq!(got["effective"], Value::Null, "{got}");
    assert_eq!(got["source"], Value::Null, "{got}");
    assert_eq!(got["override"], Value::Null, "{got}");
    let diagnostic = got["diagnostic"].as_str().unwrap();
    assert!(
        diagnostic.contains("endpoint_not_in_cert_san"),
        "{diagnostic}"
    );
    assert!(diagnostic.contains("proxy.example.com"), "{diagnostic}");

    // No silent fallback to the derived tier or loopback, over HTTP or CLI.
    assert_error(
        enroll_api(&s, "edge", Some("localhost:9999")),
        422,
        "endpoint_not_in_cert_san",
    );
    let out = s.cli(&["enroll-client", "edge"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_not_in_cert_san"),
        "{}",
        stderr(&out)
    );
    // A failed enrollment leaves no client behind.
    assert_eq!(api(&s, Method::GET, "/v1/clients", None).1, json!([]));

    // A valid override takes over without a restart; clearing it brings
    // the broken seed back.
    assert_eq!(put_endpoint(&s, json!("localhost:6001")).0, StatusCode::OK);
    assert_eq!(enrolled_endpoint(&s, "edge", None), "localhost:6001");
    put_endpoint(&s, Value::Null);
    assert_eq!(get_endpoint(&s)["effective"], Value::Null);

    // A malformed seed (here from the environment) fails closed the same way.
    let s = restart(
        s,
        opts(
            &[],
            &[("PORTUNUS_ADVERTISED_ENDPOINT", "https://localhost:443")],
        ),
    );
    let warning = s.log.find_json(STARTUP_WARNING).expect("startup warning");
    assert_eq!(warning["code"], "endpoint_invalid", "{warning}");
    let got = get_endpoint(&s);
    assert!(
        got["diagnostic"]
            .as_str()
            .unwrap()
            .contains("endpoint_invalid"),
        "{got}"
    );
    assert_error(enroll_api(&s, "edge", None), 422, "endpoint_invalid");
    let out = s.cli(&["enroll-client", "edge"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_invalid"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn custom_certificate_decides_coverage_with_webpki_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pin = write_cert(
        &dir.path().join("server.crt"),
        &dir.path().join("server.key"),
        &["*.example.com", "proxy.example.net"],
        &["203.0.113.7"],
    );
    let s = boot(dir.path(), opts(&[], &[]));
    assert_eq!(s.pin, pin, "the server serves the certificate written");
    let port = s.control.port();

    for (value, covered) in [
        ("a.example.com:443", true),
        ("A.EXAMPLE.com:443", true),
        ("example.com:443", false),
        ("a.b.example.com:443", false),
        ("proxy.example.net:1", true),
        ("PROXY.Example.NET:1", true),
        ("203.0.113.7:443", true),
        ("203.0.113.8:443", false),
        ("127.0.0.1:443", false),
        ("localhost:443", false),
    ] {
        let got = put_endpoint(&s, json!(value));
        if covered {
            assert_eq!(got.0, StatusCode::OK, "{value}: {}", got.1);
            assert_eq!(got.1["effective"], value);
        } else {
            assert_error(got, 422, "endpoint_not_in_cert_san");
        }
    }
    put_endpoint(&s, Value::Null);

    // The derived tier uses the same coverage and falls through to
    // loopback (which is not checked) when it is not covered.
    let loopback = format!("127.0.0.1:{port}");
    for (host, want) in [
        ("edge.example.com:8443", format!("edge.example.com:{port}")),
        ("203.0.113.7", format!("203.0.113.7:{port}")),
        ("x.y.example.com", loopback.clone()),
        ("localhost:9999", loopback.clone()),
        ("127.0.0.1:80", loopback.clone()),
    ] {
        assert_eq!(
            enrolled_endpoint(&s, "edge", Some(host)),
            want,
            "Host: {host}"
        );
    }
    assert_eq!(get_endpoint(&s), report(&loopback, "loopback", None));
}

#[test]
fn tls_cert_path_is_the_certificate_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        dir.path().join("pki/edge.crt"),
        dir.path().join("pki/edge.key"),
    );
    let pin = write_cert(&cert, &key, &["edge.example.org"], &[]);
    std::fs::write(
        dir.path().join("server.toml"),
        format!(
            "{LISTENERS}tls_cert_path = \"{}\"\ntls_key_path = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let s = boot(dir.path(), opts(&[], &[]));
    assert_eq!(s.pin, pin);
    assert!(!dir.path().join("server.crt").exists());
    assert_eq!(
        put_endpoint(&s, json!("edge.example.org:7443")).0,
        StatusCode::OK
    );
    // A generated certificate would cover these; this one does not.
    assert_error(
        put_endpoint(&s, json!("localhost:7443")),
        422,
        "endpoint_not_in_cert_san",
    );
    assert_error(
        put_endpoint(&s, json!("127.0.0.1:7443")),
        422,
        "endpoint_not_in_cert_san",
    );
}

#[test]
fn derived_tier_comes_from_the_enrollment_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::bootstrapped(dir.path());
    let port = s.control.port();
    let loopback = format!("127.0.0.1:{port}");
    // The host, any port dropped, joined with the control port.
    assert_eq!(
        enrolled_endpoint(&s, "edge", Some("localhost:9999")),
        format!("localhost:{port}")
    );
    assert_eq!(
        enrolled_endpoint(&s, "edge", Some("LOCALHOST")),
        format!("LOCALHOST:{port}")
    );
    // IPv6, uncovered and malformed hosts fall through to loopback.
    for host in ["[::1]:7080", "proxy.example.com", "localhost:http"] {
        assert_eq!(
            enrolled_endpoint(&s, "edge", Some(host)),
            loopback,
            "Host: {host}"
        );
    }
    // Re-enrolling an existing client over HTTP derives the same way.
    let (status, v) = request(
        &s,
        s.token.as_deref(),
        Some("localhost:1"),
        Method::POST,
        "/v1/clients/edge/enrollment",
        None,
    );
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        authority(v["uri"].as_str().unwrap()),
        format!("localhost:{port}")
    );
    // The settings API has no enrollment host to derive from.
    assert_eq!(get_endpoint(&s), report(&loopback, "loopback", None));
}

#[test]
fn enrollment_endpoint_is_resolved_once_and_replayed_at_redeem() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let s = Server::bootstrapped(dir.path());
    let port = s.control.port();
    let first = format!("localhost:{port}");
    let second = format!("127.0.0.1:{port}");

    assert_eq!(put_endpoint(&s, json!(first)).0, StatusCode::OK);
    let (status, created) = enroll_api(&s, "edge", None);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let uri = created["uri"].as_str().unwrap().to_string();
    assert_eq!(authority(&uri), first);

    // Changing the override does not touch the existing enrollment.
    assert_eq!(put_endpoint(&s, json!(second)).0, StatusCode::OK);
    let (out, bundle) = redeem(&uri, home.path(), "edge");
    assert!(out.status.success(), "enroll failed: {}", stderr(&out));
    let b = read_bundle(&bundle);
    assert_eq!(b["server_endpoint"], first, "{b}");
    assert_eq!(b["client_name"], "edge");
    assert_eq!(b["server_cert_sha256"], s.pin);

    // A new enrollment picks up the new value.
    assert_eq!(enrolled_endpoint(&s, "edge2", None), second);
    let command = s.cli_ok(&["enroll-client", "edge3"]);
    let uri = uri_of_command(&command);
    assert_eq!(authority(&uri), second);
    let (out, bundle) = redeem(&uri, home.path(), "edge3");
    assert!(out.status.success(), "enroll failed: {}", stderr(&out));
    assert_eq!(read_bundle(&bundle)["server_endpoint"], second);
}

#[test]
fn legacy_enrollment_resolves_at_redeem_and_a_failure_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut s = Server::bootstrapped(dir.path());
    // The client holds a credential already, so a rotation would show.
    let (out, bundle) = redeem(
        &uri_of_command(&s.cli_ok(&["enroll-client", "edge"])),
        home.path(),
        "first",
    );
    assert!(out.status.success(), "enroll failed: {}", stderr(&out));
    let first_token = read_bundle(&bundle)["token"].as_str().unwrap().to_string();
    let clients = api(&s, Method::GET, "/v1/clients", None).1;
    let client_id = clients[0]["client_id"].as_str().unwrap().to_string();
    s.terminate();

    // An enrollment row as written before endpoints were stored.
    let code = stdout(&run_server_cli(dir.path(), None, None, &["gen-token"]));
    assert_eq!(code.len(), 43);
    store_exec(
        dir.path(),
        &format!(
            "INSERT INTO enrollments (id, client_id, code_hash, endpoint, created_at, expires_at)
             VALUES ('legacy-1', '{client_id}', '{}', NULL,
                     {now}, {now} + 3600);",
            sha256_hex(code.as_bytes()),
            now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        ),
    );
    let state = || {
        store_query(
            dir.path(),
            "SELECT e.redeemed_at, c.token_hash FROM enrollments e JOIN clients c ON c.id = e.client_id
             WHERE e.id = 'legacy-1'",
        )[0]
        .clone()
    };
    let uri_for = |s: &Server| {
        format!(
            "portunus://127.0.0.1:{}/enroll?pin=sha256:{}&code={code}",
            s.control.port(),
            s.pin
        )
    };

    // With an uncovered seed the redeem is refused as a failed precondition.
    let mut s = Server::start_with(
        dir.path(),
        opts(&["--advertised-endpoint", "proxy.example.com:443"], &[]),
    );
    let (out, _) = redeem(&uri_for(&s), home.path(), "refused");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("FailedPrecondition"), "{err}");
    assert!(err.contains("advertised endpoint"), "{err}");
    // Nothing was consumed or rotated.
    assert_eq!(
        state(),
        json!([null, sha256_hex(first_token.as_bytes())]),
        "the failed redeem changed the store"
    );
    s.terminate();

    // Once the configuration is fixed the same code works, and the bundle
    // carries the endpoint resolved at redeem.
    let s = Server::start_with(
        dir.path(),
        opts(&["--advertised-endpoint", "localhost:34567"], &[]),
    );
    let (out, bundle) = redeem(&uri_for(&s), home.path(), "retried");
    assert!(out.status.success(), "retry failed: {}", stderr(&out));
    let b = read_bundle(&bundle);
    assert_eq!(b["server_endpoint"], "localhost:34567", "{b}");
    assert_eq!(b["client_id"], client_id.as_str());
    let after = state();
    assert!(after[0].is_i64(), "redeemed_at set: {after}");
    assert_eq!(
        after[1],
        sha256_hex(b["token"].as_str().unwrap().as_bytes())
    );
    // And it was single use.
    let (out, _) = redeem(&uri_for(&s), home.path(), "again");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn client_address_is_recorded_validated_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::bootstrapped(dir.path());
    s.cli_ok(&["enroll-client", "edge-01", "--address", "edge.example.com"]);
    let table = s.cli_ok(&["list-clients"]);
    assert!(table.contains("ADDRESS"), "{table}");
    let row = table.lines().find(|l| l.contains("edge-01")).unwrap();
    assert!(row.contains("edge.example.com"), "{table}");
    let listed: Value =
        serde_json::from_str(&s.cli_ok(&["list-clients", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["address"], "edge.example.com", "{listed}");

    // Only a bare host: no port, scheme or path.
    for bad in [
        "edge.example.com:443",
        "https://edge.example.com",
        "edge/x",
        "203.0.113.9:80",
    ] {
        let out = s.cli(&["enroll-client", "edge-02", "--address", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid_client_address"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        api(&s, Method::GET, "/v1/clients", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        1,
        "a refused enrollment creates no client"
    );
    let post = |body: Value| api(&s, Method::POST, "/v1/client-enrollments", Some(body));
    assert_error(
        post(json!({ "name": "edge-03", "address": "203.0.113.9:80" })),
        400,
        "invalid_client_address",
    );
    let (status, _) = post(json!({ "name": "edge-03", "address": "2001:db8::1" }));
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = api(&s, Method::GET, "/v1/clients/edge-03", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["address"], "2001:db8::1");

    // PUT /v1/clients/{id} changes or clears it.
    let put = |body: Value| api(&s, Method::PUT, "/v1/clients/edge-01", Some(body));
    let (status, v) = put(json!({ "address": "203.0.113.10" }));
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["address"], "203.0.113.10");
    assert_error(
        put(json!({ "address": "edge.example.com:1" })),
        400,
        "invalid_client_address",
    );
    let (_, v) = put(json!({ "address": null }));
    assert_eq!(v["address"], Value::Null);
    put(json!({ "address": "kept.example.com" }));
    // Re-enrolling without --address keeps the stored one.
    s.cli_ok(&["enroll-client", "edge-01"]);
    assert_eq!(
        api(&s, Method::GET, "/v1/clients/edge-01", None).1["address"],
        "kept.example.com"
    );

    // The offline path (no server running) records and validates it too;
    // it needs the real control port in server.toml to name it.
    s.pin_ports();
    s.terminate();
    let out = offline(
        dir.path(),
        &[],
        &[
            "enroll-client",
            "edge-04",
            "--address",
            "offline.example.com",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = offline(
        dir.path(),
        &[],
        &["enroll-client", "edge-05", "--address", "x.example.com:1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid_client_address"),
        "{}",
        stderr(&out)
    );
    let token = s.token.clone();
    let mut s = Server::start(dir.path());
    s.token = token;
    let table = s.cli_ok(&["list-clients"]);
    let row = table.lines().find(|l| l.contains("edge-04")).unwrap();
    assert!(row.contains("offline.example.com"), "{table}");
    assert!(!table.contains("edge-05"), "{table}");
}

#[test]
fn offline_enrollment_uses_the_same_resolver_and_the_certificate_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The control port is only configured, never bound, in this test.
    let toml = "control_listen = \"127.0.0.1:17443\"\n";
    std::fs::write(d.join("server.toml"), toml).unwrap();
    // This certificate covers edge.example.org and 127.0.0.1, not localhost.
    write_cert(
        &d.join("server.crt"),
        &d.join("server.key"),
        &["edge.example.org"],
        &["127.0.0.1"],
    );
    let enroll = |env: &[(&str, &str)]| offline(d, env, &["enroll-client", "edge"]);
    let endpoint_of = |out: Output| {
        assert!(out.status.success(), "{}", stderr(&out));
        authority(&uri_of_command(&stdout(&out)))
    };
    let seed = "PORTUNUS_ADVERTISED_ENDPOINT";

    // Loopback on the configured control port (no request host offline).
    assert_eq!(endpoint_of(enroll(&[])), "127.0.0.1:17443");
    // The environment seeds it; coverage is checked against the disk cert.
    assert_eq!(
        endpoint_of(enroll(&[(seed, "edge.example.org:9000")])),
        "edge.example.org:9000"
    );
    let out = enroll(&[(seed, "localhost:9000")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_not_in_cert_san"),
        "{}",
        stderr(&out)
    );
    let out = enroll(&[(seed, "edge.example.org")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_invalid"),
        "{}",
        stderr(&out)
    );

    // server.toml seeds it; the environment beats the file.
    std::fs::write(
        d.join("server.toml"),
        format!("{toml}advertised_endpoint = \"proxy.example.com:1\"\n"),
    )
    .unwrap();
    let out = enroll(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_not_in_cert_san"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        endpoint_of(enroll(&[(seed, "127.0.0.1:9001")])),
        "127.0.0.1:9001"
    );

    // A stored override beats every seed, and fails closed too.
    store_exec(
        d,
        "INSERT INTO settings (key, value) VALUES ('advertised_endpoint', 'edge.example.org:9002');",
    );
    assert_eq!(
        endpoint_of(enroll(&[(seed, "127.0.0.1:9001")])),
        "edge.example.org:9002"
    );
    store_exec(
        d,
        "UPDATE settings SET value = 'localhost:9002' WHERE key = 'advertised_endpoint';",
    );
    let out = enroll(&[(seed, "127.0.0.1:9001")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("override"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("endpoint_not_in_cert_san"),
        "{}",
        stderr(&out)
    );
}
