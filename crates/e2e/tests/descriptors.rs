//! Descriptor budgets on the edge: a client held to 1,024 descriptors
//! takes a flood of new UDP sources (one datagram each, as spoofed sources
//! would send) without starving the rest of the edge: its TCP rule keeps
//! forwarding, a new push still binds, the flow that was there first keeps
//! answering, and the refused flows are counted.

use portunus_e2e::net::{echo_ok, echo_server, free_port, loopback, udp_ask, udp_echo_server};
use portunus_e2e::{poll_until, wait_connected, wait_for, Client, Server, DEADLINE};
use std::net::UdpSocket;
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

    let (tcp_port, udp_port) = (free_port(), free_port());
    let backend = echo_server();
    server.cli_ok(&[
        "push-rule",
        "edge-01",
        &tcp_port.to_string(),
        &backend.to_string(),
    ]);
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
    let another = free_port();
    server.cli_ok(&[
        "push-rule",
        "edge-01",
        &another.to_string(),
        &backend.to_string(),
    ]);
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
