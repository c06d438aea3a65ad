//! TCP rule forms between real processes: failover, DNS names, SNI
//! routing with real ClientHellos, PROXY headers, port ranges, and the
//! validation exits of `push-rule`.
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::fleet;
use portunus_e2e::net::loopback as local;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::net::{consecutive, echo_ok, echo_server};
use portunus_e2e::{wait_for, Server, DEADLINE};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A port that nothing listens on: bound on all addresses, then released.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `push-rule edge-01 <port> <args…>` on a port that was free, trying
/// another when something took it meanwhile (exit 6). Returns the rule id
/// and the port.
fn push_on_free_port(server: &Server, args: &[&str]) -> (String, u16) {
    for _ in 0..5 {
        let port = free_port();
        let out = push(server, &port.to_string(), args);
        if out.status.success() {
            return (
                String::from_utf8(out.stdout).unwrap().trim().to_string(),
                port,
            );
        }
        assert_eq!(code(&out), 6, "push-rule failed: {}", stderr(&out));
    }
    panic!("no free port after 5 tries");
}

fn push(server: &Server, listen: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["push-rule", "edge-01", listen];
    all.extend_from_slice(args);
    server.cli(&all)
}

fn push_ok(server: &Server, listen: &str, args: &[&str]) -> String {
    let out = push(server, listen, args);
    assert!(out.status.success(), "push-rule {args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn rule_stats(server: &Server, id: &str, flag: &str) -> Value {
    serde_json::from_str(&server.cli_ok(&["rule-stats", id, flag, "--format", "json"])).unwrap()
}

/// A backend that reads until the peer half-closes, then answers `tag`, a
/// newline and every byte it received.
fn tagging_server(tag: &'static str) -> SocketAddr {
    tagging_on(TcpListener::bind("127.0.0.1:0").unwrap(), tag)
}

fn tagging_on(listener: TcpListener, tag: &'static str) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if c.read_to_end(&mut got).is_ok() {
                    let _ = c.write_all(format!("{tag}\n").as_bytes());
                    let _ = c.write_all(&got);
                }
            });
        }
    });
    addr
}

fn tagged(tag: &str, bytes: &[u8]) -> Vec<u8> {
    let mut want = format!("{tag}\n").into_bytes();
    want.extend_from_slice(bytes);
    want
}

/// Sends `bytes` from a fresh connection, half-closes, and returns the
/// answer with the client's own port. A reset reads as an empty answer.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, u16) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let client_port = s.local_addr().unwrap().port();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    (back, client_port)
}

/// The first flight of a real rustls client for `name`: its ClientHello.
fn client_hello(name: &str, version: &'static rustls::SupportedProtocolVersion) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Waits for a metrics line that starts with `series` and carries a
/// value of at least `min`.
fn wait_metric(server: &Server, series: &str, min: f64) -> f64 {
    let family = series.split('{').next().unwrap_or(series);
    let mut seen = String::new();
    let what = || format!("{series} >= {min}");
    let found = portunus_e2e::poll_until(DEADLINE, || {
        let text = server.metrics_text();
        seen = text
            .lines()
            .filter(|l| l.starts_with(family))
            .collect::<Vec<_>>()
            .join("\n");
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series))?
            .trim()
            .parse()
            .ok()?;
        (value >= min).then_some(value)
    });
    found.unwrap_or_else(|| panic!("timed out waiting for {}; last seen:\n{seen}", what()))
}

#[test]
fn failover_skips_a_dead_target_and_reports_its_health() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let echo = echo_server();
    let (id, port) = push_on_free_port(
        &server,
        &[
            "--target",
            &format!("{dead}@1"),
            "--target",
            &format!("{echo}@2"),
        ],
    );
    for _ in 0..4 {
        assert!(echo_ok(local(port)), "served past the dead target");
    }
    let stats = wait_for("per-target stats", DEADLINE, || {
        let s = rule_stats(&server, &id, "--per-target");
        (s["connections_total"].as_u64()? >= 4).then_some(s)
    });
    // Three failures mark the dead target failed; the fourth connection
    // goes to the healthy one first.
    assert_eq!(stats["target_failovers"], 3, "{stats}");
    let targets = stats["per_target"].as_array().unwrap();
    assert_eq!(targets[0]["port"], dead.port());
    assert_eq!(targets[0]["healthy"], false, "{stats}");
    assert_eq!(targets[0]["connects_failed"], 3);
    assert_eq!(targets[1]["healthy"], true);
    assert_eq!(targets[1]["connects_ok"], 4);
    let series = format!(
        r#"portunus_rule_target_failovers_total{{client="edge-01",rule="{id}",owner="_superadmin"}}"#
    );
    assert_eq!(wait_metric(&server, &series, 3.0), 3.0);
}

#[test]
fn a_localhost_target_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let echo = echo_server();
    let (id, port) = push_on_free_port(&server, &[&format!("localhost:{}", echo.port())]);
    assert!(echo_ok(local(port)));
    let stats = wait_for("stats", DEADLINE, || {
        let s = rule_stats(&server, &id, "--per-target");
        (s["connections_total"].as_u64()? >= 1).then_some(s)
    });
    assert_eq!(stats["dns_failures"], 0);
    assert_eq!(stats["per_target"][0]["host"], "localhost");
    assert_eq!(stats["per_target"][0]["connects_ok"], 1);
    let series = format!(
        r#"portunus_rule_dns_failures_total{{client="edge-01",rule="{id}",owner="_superadmin"}}"#
    );
    assert_eq!(wait_metric(&server, &series, 0.0), 0.0);
}

#[test]
fn sni_routes_exact_then_wildcard_then_fallback_and_replays_the_hello() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (exact, wild, fallback) = (
        tagging_server("exact"),
        tagging_server("wild"),
        tagging_server("fallback"),
    );
    let (exact_id, port) =
        push_on_free_port(&server, &[&exact.to_string(), "--sni", "api.example.com"]);
    let rule_port = port.to_string();
    let tls13 = &rustls::version::TLS13;
    let tls12 = &rustls::version::TLS12;

    // With no fallback yet, an unknown name is closed unanswered.
    let (back, _) = exchange(local(port), &client_hello("other.example.org", tls13));
    assert!(back.is_empty(), "unmatched connection answered: {back:?}");

    push_ok(
        &server,
        &rule_port,
        &[&wild.to_string(), "--sni", "*.example.com"],
    );
    push_ok(&server, &rule_port, &[&fallback.to_string()]);
    let cases = [
        (client_hello("api.example.com", tls13), "exact"),
        (client_hello("api.example.com", tls12), "exact"),
        (client_hello("www.example.com", tls13), "wild"),
        (client_hello("deep.www.example.com", tls12), "fallback"),
        (client_hello("other.example.org", tls13), "fallback"),
        (b"GET / HTTP/1.0\r\n\r\n".to_vec(), "fallback"),
    ];
    for (hello, tag) in &cases {
        let (back, _) = exchange(local(port), hello);
        assert_eq!(
            &back,
            &tagged(tag, hello),
            "{tag}: routing or replayed bytes differ"
        );
    }
    wait_metric(
        &server,
        r#"portunus_tls_sni_route_total{result="routed"}"#,
        6.0,
    );
    wait_metric(
        &server,
        r#"portunus_tls_sni_route_total{result="unmatched"}"#,
        1.0,
    );
    let stats = rule_stats(&server, &exact_id, "--per-port");
    assert_eq!(stats["sni_unmatched"], 1, "{stats}");

    // The port is in SNI mode: a second plain rule is a plain conflict.
    let out = push(&server, &rule_port, &[&fallback.to_string()]);
    expect_fail(&out, 1, "listen_port_conflict");
}

#[test]
fn proxy_v1_and_v2_headers_reach_the_backend_first() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = tagging_server("b");
    for version in ["v1", "v2"] {
        let json = format!(
            r#"[{{"host":"127.0.0.1","port":{},"priority":1,"proxy_protocol":"{version}"}}]"#,
            backend.port()
        );
        let (_id, port) = push_on_free_port(&server, &["--targets-json", &json]);
        let (back, client_port) = exchange(local(port), b"payload");
        let mut header = Vec::new();
        if version == "v1" {
            header.extend_from_slice(
                format!("PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {port}\r\n").as_bytes(),
            );
        } else {
            header.extend_from_slice(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c");
            header.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
            header.extend_from_slice(&client_port.to_be_bytes());
            header.extend_from_slice(&port.to_be_bytes());
        }
        header.extend_from_slice(b"payload");
        assert_eq!(back, tagged("b", &header), "{version}");
    }
}

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

#[test]
fn a_three_port_range_maps_offsets_and_counts_per_port() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backends = consecutive("127.0.0.1", 3);
    let target = format!(
        "127.0.0.1:{}-{}",
        port_of(&backends[0]),
        port_of(&backends[2])
    );
    for (l, tag) in backends.into_iter().zip(["t0", "t1", "t2"]) {
        tagging_on(l, tag);
    }
    let (id, start) = (0..5)
        .find_map(|_| {
            let probe = consecutive("0.0.0.0", 3);
            let (a, b) = (port_of(&probe[0]), port_of(&probe[2]));
            drop(probe);
            let out = push(&server, &format!("{a}-{b}"), &[&target]);
            if out.status.success() {
                return Some((String::from_utf8(out.stdout).unwrap().trim().to_string(), a));
            }
            assert_eq!(code(&out), 6, "{}", stderr(&out));
            None
        })
        .expect("a free range");
    for (offset, tag) in ["t0", "t1", "t2"].iter().enumerate() {
        let (back, _) = exchange(local(start + offset as u16), b"x");
        assert_eq!(back, tagged(tag, b"x"), "offset {offset}");
    }
    let (back, _) = exchange(local(start + 1), b"again");
    assert_eq!(back, tagged("t1", b"again"));
    let stats = wait_for("per-port stats", DEADLINE, || {
        let s = rule_stats(&server, &id, "--per-port");
        (s["connections_total"].as_u64()? >= 4).then_some(s)
    });
    let per_port: Vec<(u64, u64)> = stats["per_port"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["connections_total"].as_u64().unwrap(),
            )
        })
        .collect();
    let s = u64::from(start);
    assert_eq!(per_port, vec![(s, 1), (s + 1, 2), (s + 2, 1)]);
    let metrics = server.metrics_text();
    assert!(
        !metrics.contains(&format!("port=\"{start}\"")),
        "no per-port series"
    );
}

#[test]
fn a_range_with_one_busy_port_fails_whole_and_binds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let mut probe = consecutive("0.0.0.0", 3);
    let (a, busy, c) = (port_of(&probe[0]), port_of(&probe[1]), port_of(&probe[2]));
    let squatter = probe.remove(1);
    drop(probe);
    let out = push(&server, &format!("{a}-{c}"), &["127.0.0.1:20000-20002"]);
    expect_fail(&out, 6, "port_in_use");
    assert!(
        stderr(&out).contains(&busy.to_string()),
        "names the port: {}",
        stderr(&out)
    );
    assert_eq!(server.cli_ok(&["list-rules", "--format", "json"]), "[]");
    for port in [a, c] {
        assert!(
            TcpListener::bind(("0.0.0.0", port)).is_ok(),
            "port {port} left bound"
        );
    }
    drop(squatter);
}

#[test]
fn validation_and_port_mode_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let udp_proxy = r#"[{"host":"127.0.0.1","port":80,"proxy_protocol":"v1"}]"#;
    let nine: Vec<String> = (1..=9).map(|i| format!("127.0.0.1:{i}@{i}")).collect();
    let mut nine_args = vec![];
    for t in &nine {
        nine_args.extend(["--target", t.as_str()]);
    }
    // (listen, args, stable code, the field the message names)
    let cases: Vec<(&str, Vec<&str>, &str, &str)> = vec![
        (
            "18443",
            vec![
                "127.0.0.1:443",
                "--sni",
                "a.example.com",
                "--protocol",
                "udp",
            ],
            "validation.sni_on_unsupported_rule",
            "sni_pattern",
        ),
        (
            "18000-18002",
            vec!["127.0.0.1:443-445", "--sni", "a.example.com"],
            "validation.sni_on_unsupported_rule",
            "sni_pattern",
        ),
        (
            "18443",
            vec!["127.0.0.1:443", "--sni", "*.*.example.com"],
            "validation.sni_pattern_invalid",
            "sni_pattern",
        ),
        (
            "18443",
            vec![
                "--targets-json",
                r#"[{"host":"127.0.0.1","port":80,"proxy_protocol":"v3"}]"#,
            ],
            "validation.proxy_protocol_invalid",
            "targets_json",
        ),
        (
            "18443",
            vec!["--protocol", "udp", "--targets-json", udp_proxy],
            "validation.proxy_protocol_invalid",
            "targets[0].proxy_protocol",
        ),
        (
            "18443",
            vec!["127.0.0.1:443", "--health-check-interval-secs", "0"],
            "validation.health_check_interval_invalid",
            "health_check_interval_secs",
        ),
        (
            "18443",
            vec!["127.0.0.1:443", "--health-check-interval-secs", "3601"],
            "validation.health_check_interval_invalid",
            "health_check_interval_secs",
        ),
        ("0", vec!["127.0.0.1:443"], "invalid_port", "listen_port"),
        (
            "70000",
            vec!["127.0.0.1:443"],
            "invalid_port",
            "listen_port",
        ),
        (
            "18443",
            vec!["--target", "127.0.0.1:443@70000"],
            "invalid_priority",
            "priority",
        ),
        ("18443", nine_args, "target_count_invalid", "targets"),
        (
            "18000-18002",
            vec!["127.0.0.1:443-444"],
            "range_invalid",
            "target",
        ),
        (
            "18000-20000",
            vec!["127.0.0.1:20000-22000"],
            "exceeds_cap",
            "listen_port_end",
        ),
    ];
    for (listen, args, want, field) in cases {
        let out = push(&server, listen, &args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{listen} {args:?}: {err}");
        assert!(err.contains(want), "{listen} {args:?}: {err}");
        assert!(
            err.contains(field),
            "{listen} {args:?} names {field}: {err}"
        );
    }
    assert_eq!(server.cli_ok(&["list-rules", "--format", "json"]), "[]");

    // A plain port cannot turn into an SNI port.
    let echo = echo_server();
    let (_id, port) = push_on_free_port(&server, &[&echo.to_string()]);
    let out = push(
        &server,
        &port.to_string(),
        &[&echo.to_string(), "--sni", "a.example.com"],
    );
    expect_fail(&out, 1, "conflict.legacy_to_sni_unsupported");
    assert!(echo_ok(local(port)), "the plain rule keeps forwarding");
}
