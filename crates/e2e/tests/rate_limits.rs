//! Rate limits between real processes: per-rule caps from `push-rule`,
//! cap changes through `PUT /v1/rules/{id}`, per-owner envelopes from
//! `owner-cap`, their counters in `rule-stats` and `/metrics`.
use portunus_e2e::exit_code as code;
use portunus_e2e::fleet;
use portunus_e2e::net::loopback as local;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::net::{echo_server, free_port, payload, udp_ask, udp_echo_server};
use portunus_e2e::{wait_for, Server, DEADLINE};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Pushes a rule to `target` with `extra` arguments on a free port,
/// retrying when the probed port got taken in between (exit 6).
fn push(server: &Server, target: SocketAddr, extra: &[&str]) -> (String, u16) {
    for _ in 0..5 {
        let port = free_port();
        let (listen, target) = (port.to_string(), target.to_string());
        let mut args = vec!["push-rule", "edge-01", &listen, &target];
        args.extend_from_slice(extra);
        let out = server.cli(&args);
        if out.status.success() {
            let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
            return (id, port);
        }
        assert_eq!(code(&out), 6, "push-rule failed: {}", stderr(&out));
    }
    panic!("no free port after 5 tries");
}

/// A connection through the rule on `port`; `None` when the edge reset it
/// (refused by a rate limit) instead of echoing a first message.
fn open(port: u16) -> Option<TcpStream> {
    let s = match TcpStream::connect_timeout(&local(port), Duration::from_secs(5)) {
        Ok(s) => s,
        // The reset can beat the end of a nonblocking connect.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("connect to {port}: {e}"),
    };
    // Fails on a socket already reset, which `echoes` then reports.
    let _ = s.set_read_timeout(Some(DEADLINE));
    echoes(&s).then_some(s)
}

/// True when `s` still carries a message to the echo backend and back.
fn echoes(mut s: &TcpStream) -> bool {
    let msg = b"ping";
    if s.write_all(msg).is_err() {
        return false;
    }
    let mut back = [0u8; 4];
    match s.read_exact(&mut back) {
        Ok(()) => &back == msg,
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                ),
                "neither an echo nor a reset: {e}"
            );
            false
        }
    }
}

/// Waits until the edge has reported at least `n` rate-limit rejects.
fn wait_rejects(server: &Server, id: &str, n: u64) {
    wait_for(&format!("{n} rate-limit rejects of {id}"), DEADLINE, || {
        let got = server.rule_stats(id)["rate_limit_rejects"].as_u64()?;
        (got >= n).then_some(())
    });
}

#[test]
fn concurrent_connections_cap_resets_the_third_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push(&server, echo_server(), &["--concurrent-connections", "2"]);
    let first = open(port).expect("first connection");
    let second = open(port).expect("second connection");
    assert!(open(port).is_none(), "a third connection must be reset");
    assert!(echoes(&first) && echoes(&second), "the two stay open");
    wait_rejects(&server, &id, 1);
    wait_for("the reject metric", DEADLINE, || {
        let text = server.metrics_text();
        text.lines()
            .any(|l| {
                l.starts_with(
                    r#"portunus_rate_limit_reject_total{reason="concurrent_connections"}"#,
                )
            })
            .then_some(())
    });
    // A slot frees when its connection ends.
    drop(first);
    wait_for("a freed slot", DEADLINE, || open(port));
}

#[test]
fn new_connection_rate_resets_most_of_a_rapid_burst() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push(
        &server,
        echo_server(),
        &[
            "--new-connections-per-sec",
            "1",
            "--new-connections-burst",
            "1",
        ],
    );
    // Connect all five before the first probe, so they arrive together.
    let conns: Vec<_> = (0..5)
        .map(|_| TcpStream::connect_timeout(&local(port), Duration::from_secs(5)))
        .collect();
    let refused = conns
        .into_iter()
        .filter(|conn| match conn {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(DEADLINE));
                !echoes(s)
            }
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        })
        .count();
    assert!(refused >= 3, "only {refused} of 5 rapid connections reset");
    wait_rejects(&server, &id, 3);
}

#[test]
fn bandwidth_cap_throttles_without_closing() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, _client) = fleet(dir.path());
    let (_id, port) = push(&_server, echo_server(), &["--bandwidth-in-bps", "200000"]);
    let mut s = open(port).expect("connection");
    let data = payload(400_000, 7);
    let mut writer = s.try_clone().unwrap();
    let started = Instant::now();
    let sent = data.clone();
    let sender = std::thread::spawn(move || writer.write_all(&sent));
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("all bytes come back");
    let elapsed = started.elapsed();
    sender.join().unwrap().unwrap();
    assert!(back == data, "bytes changed on the way");
    // A burst of one second of rate, then 200 KB at 200 KB/s.
    assert!(
        elapsed >= Duration::from_millis(800),
        "400 KB under a 200 KB/s cap took only {elapsed:?}"
    );
    assert!(echoes(&s), "the connection stays open");
}

#[test]
fn owner_envelope_caps_the_sum_of_an_owners_rules_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server();
    let (_a, port_a) = push(&server, backend, &[]);
    let (b, port_b) = push(&server, backend, &[]);
    let held = open(port_a).expect("a connection on the first rule");
    server.cli_ok(&[
        "owner-cap",
        "set",
        "edge-01",
        "_superadmin",
        "--concurrent-connections",
        "1",
    ]);
    // The envelope reaches the edge shortly after the command returns.
    wait_for("the envelope to bind", DEADLINE, || {
        open(port_b).is_none().then_some(())
    });
    assert!(echoes(&held), "the open connection is untouched");
    wait_rejects(&server, &b, 1);
    server.cli_ok(&["owner-cap", "delete", "edge-01", "_superadmin"]);
    wait_for("the envelope to lift", DEADLINE, || open(port_b));
    assert!(echoes(&held));
}

#[test]
fn a_cap_change_through_the_api_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push(&server, echo_server(), &[]);
    let held = open(port).expect("a connection before the change");
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/v1/rules/{id}", server.url()))
        .bearer_auth(server.token.as_deref().unwrap())
        .json(&json!({"rate_limit": {"concurrent_connections": 1}}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let rule: Value = resp.json().unwrap();
    assert_eq!(rule["state"], "active", "{rule}");
    assert!(echoes(&held), "the rule was not restarted");
    assert!(
        open(port).is_none(),
        "the new cap binds the next connection"
    );
    wait_rejects(&server, &id, 1);
    assert_eq!(server.rule_stats(&id)["connections_total"], 1);
}

#[test]
fn udp_new_flow_rate_drops_a_second_sources_first_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push(
        &server,
        udp_echo_server(),
        &[
            "--protocol",
            "udp",
            "--new-connections-per-sec",
            "1",
            "--new-connections-burst",
            "1",
        ],
    );
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        udp_ask(&first, local(port), b"one", Duration::from_secs(10)).as_deref(),
        Some(&b"one"[..])
    );
    let second = UdpSocket::bind("127.0.0.1:0").unwrap();
    second.send_to(b"two", local(port)).unwrap();
    wait_rejects(&server, &id, 1);
    assert!(
        udp_ask(&first, local(port), b"three", Duration::from_secs(10)).is_some(),
        "the admitted flow goes on"
    );
}
