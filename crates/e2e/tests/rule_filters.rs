//! Per-rule source filters and UDP drain between real processes: a denied
//! source is refused (TCP reset at accept, UDP datagrams dropped) while an
//! allowed one passes, the refusals are counted in `rule-stats` and
//! `/metrics`, and a removed UDP rule keeps its flows answering while it
//! drains.

use portunus_e2e::net::{echo_ok, echo_server, echo_server_on, udp_ask, udp_echo_server};
use portunus_e2e::{expect_fail, fleet, wait_connected, wait_for, Client, DEADLINE};
use serde_json::Value;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// How long one question to a rule may take, resends included.
const ASK: Duration = Duration::from_secs(10);

/// How long a datagram that must go unanswered is given.
const SILENCE: Duration = Duration::from_millis(1500);

/// Connects to `to` from `source` (any port).
fn tcp_from(source: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into())?;
    socket.connect_timeout(&to.into(), ASK)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(ASK))?;
    Ok(stream)
}

/// Whether the rule closed the connection without a byte: a reset at
/// accept reads as an error or an end of input, or, when it arrives
/// before the connect finished, fails the connect itself.
fn refused(connected: std::io::Result<TcpStream>) -> bool {
    use std::io::Write;
    let Ok(mut stream) = connected else {
        return true;
    };
    let _ = stream.write_all(b"hello");
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

fn udp_from(source: &str) -> UdpSocket {
    UdpSocket::bind((source, 0)).unwrap()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_denied_tcp_source_is_reset_while_an_allowed_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (id, port) = server.push_on_free_port(
        "edge-01",
        &[
            &backend,
            "--allow-source",
            "127.0.0.0/8",
            "--deny-source",
            "127.0.0.2",
        ],
    );
    let rule: Value =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    assert_eq!(rule[0]["allow_sources"][0], "127.0.0.0/8", "{rule}");
    assert_eq!(rule[0]["deny_sources"][0], "127.0.0.2/32", "{rule}");
    assert!(echo_ok(local(port)), "127.0.0.1 is allowed");
    assert!(refused(tcp_from("127.0.0.2", local(port))));
    wait_for("source_denied in rule-stats and /metrics", DEADLINE, || {
        let counted = server.rule_stats(&id)["source_denied"].as_u64()? >= 1
            && server.rule_metric("portunus_rule_source_denied_total", &id)? >= 1.0;
        counted.then_some(())
    });
}

#[test]
fn a_denied_udp_source_is_dropped_while_an_allowed_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = udp_echo_server().to_string();
    let (id, port) = server.push_on_free_port(
        "edge-01",
        &[&backend, "--protocol", "udp", "--allow-source", "127.0.0.1"],
    );
    let allowed = udp_from("127.0.0.1");
    assert_eq!(
        udp_ask(&allowed, local(port), b"in", ASK).as_deref(),
        Some(&b"in"[..])
    );
    let outside = udp_from("127.0.0.2");
    assert_eq!(udp_ask(&outside, local(port), b"out", SILENCE), None);
    let stats = wait_for("source_denied in rule-stats", DEADLINE, || {
        let s = server.rule_stats(&id);
        (s["source_denied"].as_u64()? >= 1).then_some(s)
    });
    assert_eq!(
        stats["active_flows"], 1,
        "no flow for the refused source: {stats}"
    );
    wait_for("portunus_rule_source_denied_total", DEADLINE, || {
        (server.rule_metric("portunus_rule_source_denied_total", &id)? >= 1.0).then_some(())
    });
}

#[test]
fn malformed_source_filters_are_refused_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    for (flag, value, field) in [
        ("--allow-source", "10.0.0.1/8", "allow_sources[0]"),
        ("--deny-source", "not-an-address", "deny_sources[0]"),
        ("--deny-source", "2001:db8::/129", "deny_sources[0]"),
    ] {
        let out = server.cli(&["push-rule", "edge-01", "9", "127.0.0.1:9", flag, value]);
        expect_fail(&out, 2, "validation.source_filter_invalid");
        expect_fail(&out, 2, field);
    }
}

#[test]
fn a_removed_udp_rule_keeps_its_flows_answering_while_it_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = fleet(dir.path());
    drop(client);
    let bundle = dir.path().join("edge").join("client.bundle.json");
    let _client = Client::start_with_drain(&bundle, 60);
    wait_connected(&server, "edge-01", true);
    let backend = udp_echo_server().to_string();
    let (id, port) = server.push_on_free_port("edge-01", &[&backend, "--protocol", "udp"]);
    let old = udp_from("127.0.0.1");
    assert_eq!(
        udp_ask(&old, local(port), b"before", ASK).as_deref(),
        Some(&b"before"[..])
    );
    server.cli_ok(&["remove-rule", &id]);
    assert_eq!(
        udp_ask(&old, local(port), b"draining", ASK).as_deref(),
        Some(&b"draining"[..]),
        "the flow answers during the drain"
    );
    let newcomer = udp_from("127.0.0.1");
    assert_eq!(
        udp_ask(&newcomer, local(port), b"new", SILENCE),
        None,
        "a new source is refused during the drain"
    );
    // A rule pushed on the draining port takes it over.
    server.cli_ok(&[
        "push-rule",
        "edge-01",
        &port.to_string(),
        &backend,
        "--protocol",
        "udp",
    ]);
    assert_eq!(
        udp_ask(&newcomer, local(port), b"taken over", ASK).as_deref(),
        Some(&b"taken over"[..])
    );
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
}

#[test]
fn a_rule_answers_on_both_families_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (_, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    assert!(echo_ok(local(port)), "TCP over 127.0.0.1");
    assert!(echo_ok(v6(port)), "TCP over ::1");
    let udp_backend = udp_echo_server().to_string();
    let (_, port) = server.push_on_free_port("edge-01", &[&udp_backend, "--protocol", "udp"]);
    let four = udp_from("127.0.0.1");
    assert_eq!(
        udp_ask(&four, local(port), b"v4", ASK).as_deref(),
        Some(&b"v4"[..])
    );
    let six = UdpSocket::bind("[::1]:0").unwrap();
    assert_eq!(
        udp_ask(&six, v6(port), b"v6", ASK).as_deref(),
        Some(&b"v6"[..])
    );
}

#[test]
fn a_listen_address_narrows_the_rule_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server().to_string();
    let (id, port) = server.push_on_free_port("edge-01", &[&backend, "--listen-address", "::1"]);
    assert!(echo_ok(v6(port)), "TCP over ::1");
    assert!(TcpStream::connect_timeout(&local(port), ASK).is_err());
    let rules: Value =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == id)
        .unwrap();
    assert_eq!(rule["listen_address"], "::1", "{rule}");
    let out = server.cli(&[
        "push-rule",
        "edge-01",
        "9",
        &backend,
        "--listen-address",
        "edge",
    ]);
    expect_fail(&out, 2, "validation.listen_address_invalid");
}

#[test]
fn an_ipv6_target_is_reached_and_sees_a_v6_proxy_header() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server_on("[::1]:0");
    let target = format!("[::1]:{}@1", backend.port());
    let (_, port) = server.push_on_free_port("edge-01", &["--target", &target]);
    assert!(echo_ok(local(port)), "an IPv4 peer reaches the IPv6 target");
    assert!(echo_ok(v6(port)), "an IPv6 peer reaches the IPv6 target");

    let proxied = std::net::TcpListener::bind("[::1]:0").unwrap();
    let json = format!(
        r#"[{{"host":"::1","port":{},"proxy_protocol":"v1"}}]"#,
        proxied.local_addr().unwrap().port()
    );
    let (_, port) = server.push_on_free_port("edge-01", &["--targets-json", &json]);
    let peer = TcpStream::connect(v6(port)).unwrap();
    let source_port = peer.local_addr().unwrap().port();
    let (mut backend_side, _) = proxied.accept().unwrap();
    backend_side.set_read_timeout(Some(ASK)).unwrap();
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        backend_side.read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    assert_eq!(
        String::from_utf8(header).unwrap(),
        format!("PROXY TCP6 ::1 ::1 {source_port} {port}\r\n")
    );
}
