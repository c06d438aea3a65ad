//! The UDP engine over real loopback sockets: flows, ranges, the cap,
//! reaping, ICMP eviction and shutdown.

use crate::tests::support::{
    busy_middle_port_binds_nothing, consecutive, eventually, port_of, rule, target, within,
};
use crate::{ActivationReason, Engine, EngineConfig, RuleHandle};
use portunus_domain::rule::{Protocol, RuleSpec};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

fn udp_rule(listen_port: u16, backend: SocketAddr) -> RuleSpec {
    RuleSpec {
        protocol: Protocol::Udp,
        ..rule(listen_port, vec![target(backend, 1)])
    }
}

fn local(port: u16) -> SocketAddr {
    (Ipv4Addr::LOCALHOST, port).into()
}

async fn client() -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind client")
}

/// Echoes every datagram to its sender, prefixed with `tag`.
async fn echo_backend_on(socket: UdpSocket, tag: &'static [u8]) -> SocketAddr {
    let addr = socket.local_addr().expect("backend address");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let reply = [tag, &buf[..n]].concat();
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

async fn echo_backend() -> SocketAddr {
    echo_backend_on(client().await, b"").await
}

/// A UDP port that answers with ICMP port unreachable: one just released.
fn closed_udp_addr() -> SocketAddr {
    let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe");
    probe.local_addr().expect("probe address")
}

/// Sends `msg` to `to` and returns the first datagram that comes back,
/// sending again each second in case one was lost; bounded by the test
/// deadline.
async fn ask(socket: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    within("an answer", async {
        let mut buf = vec![0u8; 65536];
        loop {
            socket.send_to(msg, to).await.expect("send");
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
            {
                return buf[..n].to_vec();
            }
        }
    })
    .await
}

/// Starts a UDP rule on a port that was free a moment ago.
async fn start_udp(engine: &Engine, spec_for: impl Fn(u16) -> RuleSpec) -> (RuleHandle, u16) {
    for _ in 0..20 {
        let port = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|s| s.local_addr())
            .expect("probe")
            .port();
        match engine.start_rule("udp", spec_for(port)).await {
            Ok(handle) => return (handle, port),
            Err(e) if e.reason == ActivationReason::PortInUse => continue,
            Err(e) => panic!("start_rule: {e}"),
        }
    }
    panic!("no free UDP port after 20 tries");
}

fn consecutive_udp(ip: Ipv4Addr, n: u16) -> Vec<std::net::UdpSocket> {
    consecutive(ip, n)
}

/// An engine running one UDP rule to an echo backend, and a client whose
/// flow is open: its first datagram, `open`, was answered.
async fn open_echo_flow() -> (Engine, RuleHandle, u16, UdpSocket) {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let c = client().await;
    assert_eq!(ask(&c, local(port), b"open").await, b"open");
    (engine, handle, port, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_a_rule_and_counters_move() {
    let (_engine, handle, port, c) = open_echo_flow().await;
    assert_eq!(ask(&c, local(port), b"again").await, b"again");
    let stats = handle.stats();
    assert!(
        stats.udp_datagrams_in >= 2 && stats.udp_datagrams_out >= 2,
        "{stats:?}"
    );
    assert!(stats.bytes_in >= 9 && stats.bytes_out >= 9, "{stats:?}");
    assert_eq!(stats.active_flows, 1, "one source is one flow");
    assert_eq!(stats.connections_total, 1);
    assert_eq!(stats.ports[0].active_connections, 1);
    assert!(stats.ports[0].bytes_in >= 9);
    assert_eq!(stats.targets[0].connects_ok, 1);
}

#[tokio::test]
async fn many_sources_each_get_their_own_answers() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let mut sources = Vec::new();
    for _ in 0..64 {
        sources.push(client().await);
    }
    let asks = sources.iter().enumerate().map(|(i, s)| async move {
        let msg = format!("source {i}");
        assert_eq!(ask(s, local(port), msg.as_bytes()).await, msg.as_bytes());
    });
    futures::future::join_all(asks).await;
    assert_eq!(handle.stats().active_flows, 64);
}

#[tokio::test]
async fn a_range_maps_each_port_to_its_offset() {
    let engine = Engine::new(EngineConfig::default());
    let backends = consecutive_udp(Ipv4Addr::LOCALHOST, 3);
    let first_backend = port_of(&backends[0]);
    let tags: [&'static [u8]; 3] = [b"0:", b"1:", b"2:"];
    for (socket, tag) in backends.into_iter().zip(tags) {
        socket.set_nonblocking(true).unwrap();
        echo_backend_on(UdpSocket::from_std(socket).unwrap(), tag).await;
    }
    let (handle, start) = loop {
        let holders = consecutive_udp(Ipv4Addr::UNSPECIFIED, 3);
        let start = port_of(&holders[0]);
        drop(holders);
        let mut spec = udp_rule(start, local(first_backend));
        spec.listen_port_end = Some(u32::from(start) + 2);
        match engine.start_rule("range", spec).await {
            Ok(handle) => break (handle, start),
            Err(e) if e.reason == ActivationReason::PortInUse => continue,
            Err(e) => panic!("{e}"),
        }
    };
    let c = client().await;
    for (offset, tag) in tags.iter().enumerate() {
        let answer = ask(&c, local(start + offset as u16), b"x").await;
        assert_eq!(answer, [*tag, b"x"].concat(), "port offset {offset}");
    }
    let stats = handle.stats();
    assert_eq!(stats.active_flows, 3, "one flow per (port, source)");
    let per_port: Vec<u64> = stats.ports.iter().map(|p| p.connections_total).collect();
    assert_eq!(per_port, [1, 1, 1]);
}

#[tokio::test]
async fn a_range_with_a_busy_port_binds_nothing() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    busy_middle_port_binds_nothing::<std::net::UdpSocket>(&engine, |start| {
        udp_rule(start, backend)
    })
    .await;
}

#[tokio::test]
async fn the_flow_cap_drops_new_sources_and_keeps_old_flows() {
    let engine = Engine::new(EngineConfig {
        udp_max_flows_per_rule: 3,
        ..EngineConfig::default()
    });
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let mut admitted = Vec::new();
    for i in 0..3u8 {
        let c = client().await;
        assert_eq!(ask(&c, local(port), &[i]).await, [i]);
        admitted.push(c);
    }
    let late = client().await;
    late.send_to(b"no room", local(port)).await.unwrap();
    eventually("the overflow to be counted", || {
        handle.stats().flows_dropped_overflow >= 1
    })
    .await;
    // The admitted flows were not evicted to make room.
    for (i, c) in admitted.iter().enumerate() {
        assert_eq!(ask(c, local(port), b"still").await, b"still", "flow {i}");
    }
    let stats = handle.stats();
    assert_eq!((stats.active_flows, stats.connections_total), (3, 3));
    let mut buf = [0u8; 16];
    assert!(
        late.try_recv_from(&mut buf).is_err(),
        "the dropped source got nothing"
    );
    // Raising the cap reaches the running rule's next flow.
    engine.set_config(EngineConfig {
        udp_max_flows_per_rule: 4,
        ..engine.config()
    });
    assert_eq!(ask(&late, local(port), b"now").await, b"now");
}

#[tokio::test]
async fn idle_flows_are_reaped_and_come_back_as_new_flows() {
    let engine = Engine::new(EngineConfig {
        udp_flow_idle: Duration::from_millis(200),
        ..EngineConfig::default()
    });
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let c = client().await;
    assert_eq!(ask(&c, local(port), b"one").await, b"one");
    assert_eq!(handle.stats().active_flows, 1);
    eventually("the idle flow to be reaped", || {
        handle.stats().active_flows == 0
    })
    .await;
    assert_eq!(ask(&c, local(port), b"two").await, b"two");
    let stats = handle.stats();
    assert_eq!((stats.active_flows, stats.connections_total), (1, 2));
}

#[tokio::test]
async fn an_icmp_error_evicts_the_flow() {
    let engine = Engine::new(EngineConfig::default());
    let dead = closed_udp_addr();
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, dead)).await;
    let c = client().await;
    c.send_to(b"anyone?", local(port)).await.unwrap();
    eventually("the flow to open", || handle.stats().connections_total >= 1).await;
    eventually("the refused flow to be evicted", || {
        handle.stats().active_flows == 0
    })
    .await;
    // The next datagram opens a new flow rather than reusing the dead one.
    c.send_to(b"again?", local(port)).await.unwrap();
    eventually("a second flow", || handle.stats().connections_total >= 2).await;
}

#[tokio::test]
async fn tcp_and_udp_rules_share_a_port_number() {
    let engine = Engine::new(EngineConfig::default());
    let udp_backend = echo_backend().await;
    let tcp_backend = crate::tests::support::echo_backend().await;
    // A port free for UDP may be held for TCP by another test's socket:
    // then both rules move to another port.
    let mut both = None;
    for _ in 0..20 {
        let (udp, port) = start_udp(&engine, |p| udp_rule(p, udp_backend)).await;
        match engine
            .start_rule("tcp", rule(port, vec![target(tcp_backend, 1)]))
            .await
        {
            Ok(tcp) => {
                both = Some((udp, tcp, port));
                break;
            }
            Err(e) if e.reason == ActivationReason::PortInUse => {
                udp.stop(Duration::ZERO).await;
            }
            Err(e) => panic!("TCP on the UDP rule's port: {e}"),
        }
    }
    let (_udp, _tcp, port) = both.expect("a port free for both protocols");
    let c = client().await;
    assert_eq!(ask(&c, local(port), b"udp").await, b"udp");
    let mut stream = crate::tests::support::connect(port).await;
    let back = crate::tests::support::round_trip(&mut stream, b"tcp").await;
    assert_eq!(back, b"tcp");
}

/// Whether a datagram to `to` is answered within a short wait.
async fn answered(socket: &UdpSocket, to: SocketAddr, msg: &[u8]) -> bool {
    socket.send_to(msg, to).await.expect("send");
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .is_ok()
}

#[tokio::test]
async fn a_stopped_rule_keeps_its_flows_answering_and_refuses_new_sources() {
    let (_engine, mut handle, port, c) = open_echo_flow().await;
    let counters = handle.counters();
    within("close", handle.close_listeners()).await;
    assert_eq!(ask(&c, local(port), b"still").await, b"still");
    let newcomer = client().await;
    assert!(!answered(&newcomer, local(port), b"new").await);
    assert_eq!(counters.snapshot().active_flows, 1);
    within("stop", handle.stop(Duration::from_millis(300))).await;
    assert_eq!(counters.snapshot().active_flows, 0);
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).expect("port free after the drain");
}

#[tokio::test]
async fn a_drain_ends_when_the_last_flow_is_reaped() {
    let engine = Engine::new(EngineConfig {
        udp_flow_idle: Duration::from_millis(200),
        ..EngineConfig::default()
    });
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let c = client().await;
    assert_eq!(ask(&c, local(port), b"open").await, b"open");
    within(
        "the drain ends with its flows",
        handle.stop(Duration::from_secs(3600)),
    )
    .await;
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).expect("port free after the drain");
}

#[tokio::test]
async fn a_new_rule_takes_over_a_draining_port() {
    let (engine, mut handle, port, c) = open_echo_flow().await;
    within("close", handle.close_listeners()).await;
    let draining = tokio::spawn(handle.stop(Duration::from_secs(3600)));
    let backend = echo_backend_on(client().await, b"new:").await;
    let _new = engine
        .start_rule("udp-2", udp_rule(port, backend))
        .await
        .expect("the new rule binds the draining port");
    within("the old drain ends", draining).await.expect("join");
    assert_eq!(ask(&c, local(port), b"x").await, b"new:x");
}

#[tokio::test]
async fn a_source_filter_drops_datagrams_before_a_flow_exists() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| RuleSpec {
        allow_sources: vec!["127.0.0.0/8".into()],
        deny_sources: vec!["127.0.0.2".into()],
        ..udp_rule(p, backend)
    })
    .await;
    let allowed = client().await;
    assert_eq!(ask(&allowed, local(port), b"ok").await, b"ok");
    let denied = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0))
        .await
        .expect("bind 127.0.0.2");
    assert!(!answered(&denied, local(port), b"no").await);
    let stats = handle.stats();
    assert!(stats.source_denied >= 1, "{stats:?}");
    assert_eq!((stats.active_flows, stats.connections_total), (1, 1));
}

/// A source sending a GSO train (many datagrams in one `sendmsg`) gets
/// every datagram through and every answer back, one by one.
#[tokio::test]
async fn a_gso_train_through_a_rule_arrives_datagram_by_datagram() {
    let (_engine, handle, port, c) = open_echo_flow().await;
    let std_socket = c.into_std().expect("into std");
    let sender = super::io::Socket::new(std_socket).expect("batched socket");
    let train: Vec<u8> = (0..16 * 50).map(|i| (i / 50) as u8).collect();
    sender
        .send(local(port), None, &train, 50)
        .expect("send the train");
    let mut answers = Vec::new();
    within("16 answers", async {
        while answers.len() < 16 {
            sender.readable().await.expect("readable");
            let _ =
                sender.recv_batch(|d| answers.extend(d.bytes.chunks(d.stride).map(<[u8]>::to_vec)));
        }
    })
    .await;
    answers.sort();
    let want: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; 50]).collect();
    assert_eq!(answers, want);
    let stats = handle.stats();
    // Each datagram of the train counts, plus the opening one (sent again
    // only if it was lost).
    assert!(stats.udp_datagrams_in >= 17, "{stats:?}");
    assert!(stats.udp_datagrams_out >= 17, "{stats:?}");
}

#[tokio::test]
async fn the_largest_datagram_passes_whole() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let (_handle, port) = start_udp(&engine, |p| udp_rule(p, backend)).await;
    let c = client().await;
    let big = crate::tests::support::pattern(65_507, 7);
    assert_eq!(ask(&c, local(port), &big).await, big);
}

/// A burst from one source, sent without waiting so the port reads it in
/// batches and gathers trains: every datagram arrives whole, once and in
/// order, whatever its size (an empty one and short ones break trains),
/// and each is counted once.
#[tokio::test]
async fn a_burst_from_one_source_arrives_in_order_and_whole() {
    let (_engine, handle, port, c) = open_echo_flow().await;
    let before = handle.stats();
    let sizes = [
        100, 100, 100, 40, 100, 100, 0, 1200, 1200, 1200, 1200, 7, 300,
    ]
    .iter()
    .cycle()
    .take(60)
    .copied();
    let burst: Vec<Vec<u8>> = sizes
        .enumerate()
        .map(|(i, n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
        .collect();
    for d in &burst {
        c.send_to(d, local(port)).await.expect("send");
    }
    let mut back = Vec::new();
    let mut buf = vec![0u8; 65536];
    within("the burst back", async {
        while back.len() < burst.len() {
            let (n, _) = c.recv_from(&mut buf).await.expect("receive");
            back.push(buf[..n].to_vec());
        }
    })
    .await;
    assert!(back == burst, "datagrams changed, merged or reordered");
    let n = burst.len() as u64;
    eventually("the burst to be counted", || {
        let s = handle.stats();
        s.udp_datagrams_out - before.udp_datagrams_out == n
    })
    .await;
    assert_eq!(handle.stats().udp_datagrams_in - before.udp_datagrams_in, n);
}

/// Answers every name with one address, but only on the second poll, as
/// a lookup that has to ask somebody would.
struct SlowAnswer(std::net::IpAddr);

impl crate::resolve::Lookup for SlowAnswer {
    fn lookup(&self, _host: String) -> crate::resolve::LookupFuture {
        let ip = self.0;
        Box::pin(async move {
            tokio::task::yield_now().await;
            Ok(crate::resolve::Answer {
                addrs: vec![ip],
                ttl: Duration::from_secs(60),
            })
        })
    }
}

/// A target that needs a lookup sets its flows up in the background (IP
/// literals are set up in place): the first datagram waits for the
/// answer, then goes out, and the flow works like any other.
#[tokio::test]
async fn a_flow_to_a_name_target_is_set_up_after_the_lookup() {
    let resolver = crate::resolve::Resolver::new(
        Box::new(SlowAnswer(Ipv4Addr::LOCALHOST.into())),
        std::time::Instant::now,
    );
    let engine = Engine::with_resolver(EngineConfig::default(), resolver);
    let backend = echo_backend().await;
    let (handle, port) = start_udp(&engine, |p| {
        let mut spec = udp_rule(p, backend);
        spec.targets[0].host = "echo.portunus.test".into();
        spec
    })
    .await;
    let c = client().await;
    assert_eq!(ask(&c, local(port), b"first").await, b"first");
    assert_eq!(ask(&c, local(port), b"second").await, b"second");
    let stats = handle.stats();
    assert_eq!(stats.targets[0].connects_ok, 1, "{stats:?}");
    assert_eq!(stats.active_flows, 1);
}
