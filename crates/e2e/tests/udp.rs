//! UDP rules between real processes: `push-rule --protocol udp` on the
//! server, forwarding by the client, counters back in `rule-stats` and
//! `/metrics`.
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::net::loopback as local;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::net::{echo_ok, echo_server, udp_ask, udp_echo_on, udp_echo_server};
use portunus_e2e::{fleet, fleet_with_settings, wait_for, Server, DEADLINE};
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// How long one question to a rule may take, resends included.
const ASK: Duration = Duration::from_secs(10);

fn source() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// A UDP port nothing was bound to a moment ago.
fn free_udp_port() -> u16 {
    UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` UDP sockets on consecutive ports of `ip`.
fn consecutive_udp(ip: &str, n: u16) -> Vec<UdpSocket> {
    for _ in 0..200 {
        let first = UdpSocket::bind((ip, 0)).unwrap();
        let start = first.local_addr().unwrap().port();
        if start.checked_add(n - 1).is_none() {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n).map(|i| UdpSocket::bind((ip, start + i))).collect();
        if let Ok(rest) = rest {
            return std::iter::once(first).chain(rest).collect();
        }
    }
    panic!("no {n} consecutive free UDP ports after 200 tries");
}

fn port_of(socket: &UdpSocket) -> u16 {
    socket.local_addr().unwrap().port()
}

/// Pushes a UDP rule on a listen port `pick` chooses, retrying when the
/// probed port got taken in between (exit 6).
fn push_udp(server: &Server, pick: impl Fn() -> String, target: &str) -> (String, String) {
    for _ in 0..5 {
        let listen = pick();
        let out = server.cli(&["push-rule", "edge-01", &listen, target, "--protocol", "udp"]);
        if out.status.success() {
            let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
            return (id, listen);
        }
        assert_eq!(code(&out), 6, "push-rule failed: {}", stderr(&out));
    }
    panic!("no free port after 5 tries");
}

fn push_udp_port(server: &Server, target: SocketAddr) -> (String, u16) {
    let (id, listen) = push_udp(server, || free_udp_port().to_string(), &target.to_string());
    (id, listen.parse().unwrap())
}

#[test]
fn udp_echo_through_a_rule_with_stats_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push_udp_port(&server, udp_echo_server());
    let s = source();
    assert_eq!(
        udp_ask(&s, local(port), b"hello udp", ASK).as_deref(),
        Some(&b"hello udp"[..])
    );

    let rules: Value =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    assert_eq!(rules[0]["protocol"], "udp");
    assert_eq!(rules[0]["state"], "active");
    let stats = wait_for("UDP counters in rule-stats", DEADLINE, || {
        let s = server.rule_stats(&id);
        (s["udp_datagrams_in"].as_u64()? >= 1 && s["udp_datagrams_out"].as_u64()? >= 1).then_some(s)
    });
    assert_eq!(stats["active_flows"], 1, "{stats}");
    assert!(stats["bytes_in"].as_u64().unwrap() >= 9, "{stats}");
    wait_for("UDP metrics", DEADLINE, || {
        let moved = server.rule_metric("portunus_rule_udp_datagrams_in_total", &id)? >= 1.0
            && server.rule_metric("portunus_rule_udp_datagrams_out_total", &id)? >= 1.0
            && server.rule_metric("portunus_rule_active_flows", &id)? == 1.0
            && server.rule_metric("portunus_rule_flows_dropped_overflow_total", &id)? == 0.0;
        moved.then_some(())
    });

    server.cli_ok(&["remove-rule", &id]);
    wait_for("port free after remove-rule", DEADLINE, || {
        UdpSocket::bind(("0.0.0.0", port)).ok()
    });
}

#[test]
fn two_hundred_sources_each_get_their_own_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let (id, port) = push_udp_port(&server, udp_echo_server());
    let sources: Vec<UdpSocket> = (0..200).map(|_| source()).collect();
    std::thread::scope(|scope| {
        let asks: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    let payload = format!("payload of source {i} from {}", s.local_addr().unwrap());
                    let back = udp_ask(s, local(port), payload.as_bytes(), ASK);
                    assert_eq!(back.as_deref(), Some(payload.as_bytes()), "source {i}");
                })
            })
            .collect();
        for ask in asks {
            ask.join().expect("every source got its own payload back");
        }
    });
    wait_for("200 flows in rule-stats", DEADLINE, || {
        (server.rule_stats(&id)["active_flows"].as_u64()? == 200).then_some(())
    });
}

/// Pushes a UDP and a TCP rule on one port number. Another process may take
/// the TCP side of a port that was only free for UDP, so a refused TCP push
/// gives the UDP rule back and tries a new number.
fn push_both_on_one_port(server: &Server, udp: SocketAddr, tcp: SocketAddr) -> u16 {
    for _ in 0..5 {
        let (udp_id, port) = push_udp_port(server, udp);
        let out = server.cli(&["push-rule", "edge-01", &port.to_string(), &tcp.to_string()]);
        if out.status.success() {
            return port;
        }
        assert_eq!(
            code(&out),
            6,
            "TCP on the UDP rule's port: {}",
            stderr(&out)
        );
        server.cli_ok(&["remove-rule", &udp_id]);
    }
    panic!("no port free for both TCP and UDP after 5 tries");
}

#[test]
fn tcp_and_udp_rules_share_a_port_number() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let port = push_both_on_one_port(&server, udp_echo_server(), echo_server());
    assert!(echo_ok(local(port)), "TCP forwards");
    let back = udp_ask(&source(), local(port), b"udp too", ASK);
    assert_eq!(back.as_deref(), Some(&b"udp too"[..]), "UDP forwards");
    let rules: Value =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 2);
}

#[test]
fn a_udp_range_maps_each_port_to_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backends = consecutive_udp("127.0.0.1", 3);
    let first = port_of(&backends[0]);
    let tags: [&'static [u8]; 3] = [b"+0 ", b"+1 ", b"+2 "];
    for (socket, tag) in backends.into_iter().zip(tags) {
        udp_echo_on(socket, tag);
    }
    let target = format!("127.0.0.1:{first}-{}", first + 2);
    let pick = || {
        let holders = consecutive_udp("0.0.0.0", 3);
        let start = port_of(&holders[0]);
        format!("{start}-{}", start + 2)
    };
    let (id, listen) = push_udp(&server, pick, &target);
    let start: u16 = listen.split('-').next().unwrap().parse().unwrap();
    let s = source();
    for (offset, tag) in tags.iter().enumerate() {
        let back = udp_ask(&s, local(start + offset as u16), b"which?", ASK);
        assert_eq!(
            back,
            Some([*tag, b"which?"].concat()),
            "listen port +{offset}"
        );
    }
    let ports = wait_for("per-port flows", DEADLINE, || {
        let v: Value = serde_json::from_str(&server.cli_ok(&[
            "rule-stats",
            &id,
            "--per-port",
            "--format",
            "json",
        ]))
        .ok()?;
        let ports = v["per_port"].as_array()?.clone();
        (ports.len() == 3 && ports.iter().all(|p| p["connections_total"] == 1)).then_some(ports)
    });
    let numbers: Vec<u64> = ports.iter().filter_map(|p| p["port"].as_u64()).collect();
    let want: Vec<u64> = (0..3).map(|i| u64::from(start) + i).collect();
    assert_eq!(numbers, want, "one row per listen port");
}

#[test]
fn a_udp_range_with_one_busy_port_fails_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    for _ in 0..20 {
        let mut holders = consecutive_udp("0.0.0.0", 3);
        let start = port_of(&holders[0]);
        let busy = holders.swap_remove(1);
        drop(holders);
        let listen = format!("{start}-{}", start + 2);
        let out = server.cli(&[
            "push-rule",
            "edge-01",
            &listen,
            "127.0.0.1:9000-9002",
            "--protocol",
            "udp",
        ]);
        expect_fail(&out, 6, "port_in_use");
        if !stderr(&out).contains(&(start + 1).to_string()) {
            // Another process took an outer port meanwhile; try another range.
            continue;
        }
        for port in [start, start + 2] {
            UdpSocket::bind(("0.0.0.0", port))
                .unwrap_or_else(|e| panic!("port {port} still bound: {e}"));
        }
        assert_eq!(
            server.cli_ok(&["list-rules", "--format", "json"]),
            "[]",
            "a failed push leaves no rule"
        );
        drop(busy);
        return;
    }
    panic!("could not isolate a busy middle port in 20 tries");
}

#[test]
fn the_flow_cap_drops_the_fourth_source() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = fleet_with_settings(
        dir.path(),
        "udp_max_flows_per_rule = 3\nudp_flow_idle_secs = 30\n",
    );
    wait_for("the welcome to carry the UDP settings", DEADLINE, || {
        let log = client.log.text();
        (log.contains("\"udp_max_flows_per_rule\":3") && log.contains("\"udp_flow_idle_secs\":30"))
            .then_some(())
    });
    let (id, port) = push_udp_port(&server, udp_echo_server());
    let admitted: Vec<UdpSocket> = (0..3).map(|_| source()).collect();
    for (i, s) in admitted.iter().enumerate() {
        let msg = format!("flow {i}");
        assert_eq!(
            udp_ask(s, local(port), msg.as_bytes(), ASK),
            Some(msg.into_bytes())
        );
    }
    let fourth = source();
    assert_eq!(
        udp_ask(
            &fourth,
            local(port),
            b"room for me?",
            Duration::from_secs(1)
        ),
        None,
        "the fourth source is over the cap"
    );
    let stats = wait_for("overflow drops in rule-stats", DEADLINE, || {
        let s = server.rule_stats(&id);
        (s["flows_dropped_overflow"].as_u64()? > 0).then_some(s)
    });
    assert_eq!(stats["active_flows"], 3, "{stats}");
    wait_for("overflow drops in /metrics", DEADLINE, || {
        (server.rule_metric("portunus_rule_flows_dropped_overflow_total", &id)? > 0.0).then_some(())
    });
    // The cap never evicts: the admitted sources are still answered.
    for s in &admitted {
        assert_eq!(
            udp_ask(s, local(port), b"still here", ASK).as_deref(),
            Some(&b"still here"[..])
        );
    }
}
