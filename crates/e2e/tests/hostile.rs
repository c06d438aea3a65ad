//! Hostile load on loopback, bounded in count and time. Descriptor
//! budgets on the edge: a client held to 1,024 descriptors
//! takes a flood of new UDP sources (one datagram each, as spoofed sources
//! would send) without starving the rest of the edge: its TCP rule keeps
//! forwarding, a new push still binds, the flow that was there first keeps
//! answering, and the refused flows are counted. On the control plane:
//! idle connections to the public control port cannot starve the API.
//! Guessed enrollment codes and forged client bearers are throttled,
//! counted and logged.

use portunus_e2e::net::{echo_ok, echo_server, free_port, loopback, udp_ask, udp_echo_server};
use portunus_e2e::{poll_until, wait_connected, wait_for, Client, Server, DEADLINE};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const NOFILE: u64 = 1024;
/// More sources than the descriptors the client has.
const SOURCES: usize = 1100;
const WAVE: usize = 50;

#[test]
fn a_udp_source_flood_cannot_spend_the_edges_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(&dir.path().join("srv"));
    let bundle = dir.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    server.enroll("edge-01", &bundle);
    let client = Client::start_with_nofile(&bundle, NOFILE);
    wait_connected(&server, "edge-01", true);
    let started = wait_for("the client's budget log line", DEADLINE, || {
        client.log.find_json("UDP flows of all rules together")
    });
    assert_eq!(started["udp_flow_budget"], 768, "{started}");
    let limit = client.log.find_json("descriptor limit").unwrap();
    assert_eq!(limit["nofile"], NOFILE);

    let udp_port = free_port();
    let backend = echo_server();
    let tcp_port = server
        .push_on_free_port("edge-01", &[&backend.to_string()])
        .1;
    let udp = server.cli_ok(&[
        "push-rule",
        "edge-01",
        &udp_port.to_string(),
        &udp_echo_server().to_string(),
        "--protocol",
        "udp",
    ]);
    let listen = loopback(udp_port);
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        udp_ask(&first, listen, b"first", Duration::from_secs(5)).as_deref(),
        Some(&b"first"[..])
    );

    // The flood: one datagram from each of many sources, in waves small
    // enough for the listen socket's receive buffer (a wave waits for its
    // answers, at most a second), bounded in count and time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sources = Vec::with_capacity(SOURCES);
    let mut answered = 0;
    while sources.len() < SOURCES && Instant::now() < deadline {
        let wave: Vec<UdpSocket> = (0..WAVE)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for s in &wave {
            s.send_to(b"x", listen).unwrap();
            s.set_nonblocking(true).unwrap();
        }
        let mut waiting: Vec<&UdpSocket> = wave.iter().collect();
        let until = Instant::now() + Duration::from_secs(1);
        poll_until(Duration::from_secs(1), || {
            let mut buf = [0u8; 16];
            waiting.retain(|s| s.recv(&mut buf).is_err());
            (waiting.is_empty() || Instant::now() > until).then_some(())
        });
        answered += WAVE - waiting.len();
        sources.extend(wave);
    }
    assert!(answered < SOURCES, "the budget refused some flows");
    assert!(answered >= 700, "the budget admitted flows: {answered}");

    // The rest of the edge is untouched.
    wait_for("the TCP rule to forward", DEADLINE, || {
        echo_ok(loopback(tcp_port)).then_some(())
    });
    assert_eq!(
        udp_ask(&first, listen, b"still", Duration::from_secs(5)).as_deref(),
        Some(&b"still"[..]),
        "the first flow keeps answering"
    );
    let another = server
        .push_on_free_port("edge-01", &[&backend.to_string()])
        .1;
    assert!(echo_ok(loopback(another)), "a new push binds and forwards");

    // The refused flows are counted in the rule's stats and the metrics.
    let stats = wait_for("the overflow in the rule stats", DEADLINE, || {
        let v = server.api_get(&format!("/v1/rules/{udp}/stats"));
        (v["flows_dropped_overflow"].as_u64()? > 0).then_some(v)
    });
    let active = stats["active_flows"].as_u64().unwrap();
    assert!(active <= 768, "{stats}");
    assert!(
        server
            .metrics_text()
            .contains("portunus_rule_flows_dropped_overflow_total"),
        "the drop is a metric too"
    );
    assert!(
        !client.log.text().contains("Too many open files"),
        "the edge never ran out of descriptors"
    );
}

/// The control port is public: connections that never start TLS must not
/// spend the server's descriptors. A server held to 1,024 descriptors takes
/// 1,100 idle connections and still answers its API at once, enrolls a new
/// edge, keeps the connected one, and closes the idle ones by the TLS
/// handshake deadline.
#[test]
fn idle_connections_cannot_take_the_control_plane_down() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped_with_nofile(&dir.path().join("srv"), NOFILE);
    let edge = dir.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(edge.parent().unwrap()).unwrap();
    server.enroll("edge-01", &edge);
    let _client = Client::start(&edge);
    wait_connected(&server, "edge-01", true);

    // The idle connections come from another address than the edges
    // (127.0.0.2; all of 127/8 is loopback), as an attacker's would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut idle = Vec::with_capacity(SOURCES);
    while idle.len() < SOURCES && Instant::now() < deadline {
        idle.push(connect_from("127.0.0.2", server.control));
    }
    assert_eq!(idle.len(), SOURCES);

    // The operator API answers at once, and a new edge enrolls through
    // the same control port.
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let asked = Instant::now();
    let clients: serde_json::Value = http
        .get(format!("{}/v1/clients", server.url()))
        .bearer_auth(server.token.as_deref().unwrap())
        .send()
        .expect("the API answers within 2 s")
        .json()
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(clients[0]["connected"], true, "the edge kept its stream");
    let second = dir.path().join("edge2").join("client.bundle.json");
    std::fs::create_dir_all(second.parent().unwrap()).unwrap();
    server.enroll("edge-02", &second);

    // Every idle connection is closed by the handshake deadline or at once.
    for s in &idle {
        s.set_nonblocking(true).unwrap();
    }
    wait_for("the idle connections to be closed", DEADLINE, || {
        let mut buf = [0u8; 1];
        idle.retain(|mut s| match s.read(&mut buf) {
            Ok(0) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            _ => false,
        });
        idle.is_empty().then_some(())
    });
    assert!(!server.log.text().contains("Too many open files"));
}

fn connect_from(ip: &str, to: std::net::SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{ip}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// Enrollment codes are guessed on the public control port: failed redeems
/// are throttled per source, counted and logged without the code; a bad
/// client bearer is counted and logged too.
#[test]
fn guessed_enrollment_codes_are_throttled_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(&dir.path().join("srv"));
    let command = server.cli_ok(&["enroll-client", "edge-01"]);
    let uri = command.split('\'').nth(1).unwrap();
    let (head, _) = uri.split_once("code=").unwrap();
    let guess = "not-a-code-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let bundle = dir.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let enroll = |uri: &str| {
        portunus_e2e::client_cmd(bundle.parent().unwrap())
            .args(["enroll", uri, "--out"])
            .arg(&bundle)
            .output()
            .unwrap()
    };
    let mut throttled_after = None;
    for i in 1..=40 {
        let out = enroll(&format!("{head}code={guess}"));
        assert!(!out.status.success());
        let err = portunus_e2e::stderr_text(&out);
        if err.contains("too many failed enrollment attempts") {
            throttled_after = Some(i - 1);
            break;
        }
        assert!(err.contains("invalid, expired"), "{err}");
    }
    assert_eq!(throttled_after, Some(30), "30 failures per source");
    // Throttled, even the right code waits: the guesser cannot tell.
    let out = enroll(uri);
    assert!(portunus_e2e::stderr_text(&out).contains("too many failed enrollment attempts"));
    let metrics = server.metrics_text();
    assert!(
        metrics.contains("portunus_auth_failures_total{reason=\"invalid_enrollment_code\"} 30"),
        "{metrics}"
    );
    let logged = server
        .log
        .find_json("enrollment refused: the code is invalid, expired, superseded or used");
    assert!(logged.is_some(), "the refusal is logged");
    assert!(
        !server.log.text().contains(guess),
        "the code never reaches the log"
    );

    // A client bearer that is not valid: refused, counted and logged.
    let other = tempfile::tempdir().unwrap();
    let fresh = Server::bootstrapped(other.path());
    let good = other.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(good.parent().unwrap()).unwrap();
    fresh.enroll("edge-01", &good);
    let mut text = std::fs::read_to_string(&good).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    text = text.replace(&token, "forged-token-forged-token-forged-token-xxxx");
    std::fs::write(&good, text).unwrap();
    let _client = Client::start(&good);
    wait_for("the bad bearer to be counted", DEADLINE, || {
        fresh
            .metrics_text()
            .contains("portunus_auth_failures_total{reason=\"invalid_client_token\"}")
            .then_some(())
    });
    assert!(fresh.log.find_json("client stream refused").is_some());
    assert!(!fresh.log.text().contains("forged-token"));
}

/// The operator listener: connections that never finish their request
/// headers are closed by the header deadline, and their number is capped,
/// so a server held to 1,024 descriptors never runs out and answers again
/// as soon as they are gone.
#[test]
fn slow_and_idle_operator_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped_with_nofile(&dir.path().join("srv"), NOFILE);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut idle = Vec::with_capacity(SOURCES);
    while idle.len() < SOURCES && Instant::now() < deadline {
        let mut s = connect_from("127.0.0.2", server.http);
        // Half a request line, never finished.
        let _ = s.write_all(b"GET /v1/auth/status HTTP/1.1\r\nHost: x\r\n");
        idle.push(s);
    }
    for s in &idle {
        s.set_nonblocking(true).unwrap();
    }
    wait_for("the slow connections to be closed", DEADLINE, || {
        let mut buf = [0u8; 512];
        idle.retain(|mut s| match s.read(&mut buf) {
            Ok(0) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            _ => false,
        });
        idle.is_empty().then_some(())
    });
    let status: serde_json::Value = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("{}/v1/auth/status", server.url()))
        .send()
        .expect("the API answers")
        .json()
        .unwrap();
    assert_eq!(status["onboarding_required"], false);
    assert!(!server.log.text().contains("Too many open files"));
}

/// Whatever the listener or the router refuses answers the JSON envelope
/// with a stable code, never an empty or plain-text body.
#[test]
fn every_refusal_answers_the_error_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    let token = server.token.as_deref().unwrap();
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let long_query = format!("/v1/rules?client={}", "a".repeat(9 * 1024));
    let big_body = "x".repeat(65 * 1024);
    let cases: Vec<(reqwest::blocking::RequestBuilder, u16, &str)> = vec![
        (http.delete(url("/v1/rules")), 405, "method_not_allowed"),
        (http.get(url("/v1/nope")), 404, "not_found"),
        (
            http.post(url("/v1/rules"))
                .header("content-type", "application/json")
                .body(big_body),
            413,
            "payload_too_large",
        ),
        (http.get(url(&long_query)), 414, "uri_too_long"),
        (http.get(url("/v1/rules/%FF")), 400, "invalid_request"),
        (
            http.get(url("/v1/rules"))
                .header("x-padding", "p".repeat(40 * 1024)),
            431,
            "headers_too_large",
        ),
        (
            (0..120).fold(http.get(url("/v1/rules")), |rb, i| {
                rb.header(format!("x-h{i}"), "1")
            }),
            431,
            "headers_too_large",
        ),
    ];
    for (rb, status, code) in cases {
        let resp = rb.bearer_auth(token).send().unwrap();
        let got = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let body: serde_json::Value = resp.json().expect("a JSON body");
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
}
