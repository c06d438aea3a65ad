//! Backends, clients and waiting helpers shared by the engine tests.

use crate::{ActivationReason, Engine, RuleHandle};
use portunus_domain::rule::{Protocol, RuleSpec, Target};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound for anything a test waits on; generous for a loaded CI box.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn target(addr: SocketAddr, priority: u32) -> Target {
    Target {
        host: addr.ip().to_string(),
        port: u32::from(addr.port()),
        priority,
        proxy_protocol: None,
    }
}

pub(crate) fn rule(listen_port: u16, targets: Vec<Target>) -> RuleSpec {
    RuleSpec {
        listen_port: u32::from(listen_port),
        listen_port_end: None,
        protocol: Protocol::Tcp,
        targets,
        sni_pattern: None,
        prefer_ipv6: false,
        health_check_interval_secs: None,
        rate_limit: None,
        allow_sources: Vec::new(),
        deny_sources: Vec::new(),
        listen_address: None,
    }
}

/// A port nothing listens on right now, as the kernel hands it out.
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind probe");
    probe.local_addr().expect("probe address").port()
}

/// An address that refuses connections: a port that was just released.
pub(crate) fn closed_addr() -> SocketAddr {
    let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe");
    probe.local_addr().expect("probe address")
}

/// Starts a rule on a port that was free a moment ago, trying again when
/// something else took it in between.
pub(crate) async fn start_on_free_port(
    engine: &Engine,
    id: &str,
    spec_for: impl Fn(u16) -> RuleSpec,
) -> RuleHandle {
    for _ in 0..20 {
        match engine.start_rule(id, spec_for(free_port())).await {
            Ok(handle) => return handle,
            Err(e) if e.reason == ActivationReason::PortInUse => continue,
            Err(e) => panic!("start_rule: {e}"),
        }
    }
    panic!("no free port after 20 tries");
}

/// `start_on_free_port` for a rule of `owner`, under its envelope and
/// quota gate.
pub(crate) async fn start_owned_on_free_port(
    engine: &Engine,
    id: &str,
    owner: &str,
    spec_for: impl Fn(u16) -> RuleSpec,
) -> RuleHandle {
    for _ in 0..20 {
        match engine
            .start_owned_rule(id, owner, spec_for(free_port()))
            .await
        {
            Ok(handle) => return handle,
            Err(e) if e.reason == ActivationReason::PortInUse => continue,
            Err(e) => panic!("start_owned_rule: {e}"),
        }
    }
    panic!("no free port after 20 tries");
}

/// A socket that holds a port: a TCP listener or a UDP socket.
pub(crate) trait PortHolder: Sized {
    /// "tcp" or "udp", as activation errors name the protocol.
    const PROTOCOL: &'static str;
    fn bind(ip: Ipv4Addr, port: u16) -> std::io::Result<Self>;
    fn port(&self) -> u16;
}

impl PortHolder for std::net::TcpListener {
    const PROTOCOL: &'static str = "tcp";
    fn bind(ip: Ipv4Addr, port: u16) -> std::io::Result<Self> {
        std::net::TcpListener::bind((ip, port))
    }
    fn port(&self) -> u16 {
        self.local_addr().expect("listener address").port()
    }
}

impl PortHolder for std::net::UdpSocket {
    const PROTOCOL: &'static str = "udp";
    fn bind(ip: Ipv4Addr, port: u16) -> std::io::Result<Self> {
        std::net::UdpSocket::bind((ip, port))
    }
    fn port(&self) -> u16 {
        self.local_addr().expect("socket address").port()
    }
}

/// `n` sockets on consecutive ports of `ip`, found by trying ports the
/// kernel hands out and their neighbours.
pub(crate) fn consecutive<H: PortHolder>(ip: Ipv4Addr, n: u16) -> Vec<H> {
    for _ in 0..200 {
        let first = H::bind(ip, 0).expect("bind");
        let start = first.port();
        if start.checked_add(n - 1).is_none() {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n).map(|i| H::bind(ip, start + i)).collect();
        if let Ok(rest) = rest {
            return std::iter::once(first).chain(rest).collect();
        }
    }
    panic!("no {n} consecutive free ports after 200 tries");
}

pub(crate) fn consecutive_listeners(ip: Ipv4Addr, n: u16) -> Vec<std::net::TcpListener> {
    consecutive(ip, n)
}

pub(crate) fn port_of(holder: &impl PortHolder) -> u16 {
    holder.port()
}

/// A three-port range rule (`spec_for(start)`) whose middle port is held
/// by another socket must fail as `PortInUse` naming that port, and leave
/// both outer ports free.
pub(crate) async fn busy_middle_port_binds_nothing<H: PortHolder>(
    engine: &Engine,
    spec_for: impl Fn(u16) -> RuleSpec,
) {
    for _ in 0..20 {
        let mut holders = consecutive::<H>(Ipv4Addr::UNSPECIFIED, 3);
        let start = holders[0].port();
        let middle = holders.swap_remove(1);
        drop(holders);
        let mut spec = spec_for(start);
        spec.listen_port_end = Some(u32::from(start) + 2);
        let err = engine
            .start_rule("range", spec)
            .await
            .err()
            .expect("a range with a busy port must fail");
        assert_eq!(err.reason, ActivationReason::PortInUse);
        if !err
            .detail
            .contains(&format!("{} port {}:", H::PROTOCOL, start + 1))
        {
            // Something else took an outer port meanwhile; try another range.
            continue;
        }
        // Nothing of the rule stayed bound: both outer ports are free.
        for port in [start, start + 2] {
            H::bind(Ipv4Addr::UNSPECIFIED, port)
                .unwrap_or_else(|e| panic!("port {port} still bound: {e}"));
        }
        drop(middle);
        return;
    }
    panic!("could not isolate a busy middle port in 20 tries");
}

pub(crate) fn tokio_listener(listener: std::net::TcpListener) -> TcpListener {
    listener.set_nonblocking(true).expect("nonblocking");
    TcpListener::from_std(listener).expect("register listener")
}

/// Serves every connection of `listener` with `handler` in its own task.
pub(crate) fn serve<F, Fut>(listener: TcpListener, handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().expect("backend address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    addr
}

async fn loopback_listener() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind backend")
}

/// Echoes every byte and closes its write side when the peer does.
pub(crate) async fn echo_backend() -> SocketAddr {
    serve(loopback_listener().await, |stream| async move {
        let (mut r, mut w) = stream.into_split();
        if tokio::io::copy(&mut r, &mut w).await.is_ok() {
            let _ = w.shutdown().await;
        }
    })
}

/// Reads until the peer shuts its write side, then answers
/// `seen <n> bytes` and closes: an answer that only exists after EOF.
pub(crate) async fn counting_backend() -> SocketAddr {
    serve(loopback_listener().await, |mut stream| async move {
        let mut sink = Vec::new();
        if stream.read_to_end(&mut sink).await.is_ok() {
            let _ = stream.write_all(answer_for(sink.len()).as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    })
}

pub(crate) fn answer_for(n: usize) -> String {
    format!("seen {n} bytes")
}

pub(crate) async fn connect(port: u16) -> TcpStream {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("connect to the rule")
}

/// Deterministic bytes that differ from offset to offset, so a reordered
/// or dropped chunk shows.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Polls `condition` until it holds, failing the test at the deadline.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `future`, failing the test at the deadline.
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// True once the peer has closed: a read returns end of input or an error.
pub(crate) async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

/// Sends `msg` and reads the same number of bytes back.
pub(crate) async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).await.expect("read echo");
    back
}
