//! SNI ports through the engine: routing by real ClientHellos, the bytes
//! replayed unchanged, the fallback, unmatched connections, and the shared
//! socket's life as rules join and leave.

use super::support::*;
use crate::copy::adaptive::SCRATCH_SIZE;
use crate::sni::tests::rustls_hello;
use crate::{ActivationReason, Engine, EngineConfig, RuleHandle};
use portunus_domain::rule::RuleSpec;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A backend that reads until the peer half-closes, then answers `tag`,
/// a newline and every byte it received.
pub(crate) async fn tagging_backend(tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind backend");
    serve(listener, move |mut stream| async move {
        let mut got = Vec::new();
        if stream.read_to_end(&mut got).await.is_ok() {
            let mut answer = format!("{tag}\n").into_bytes();
            answer.extend_from_slice(&got);
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        }
    })
}

/// Sends `bytes` to `port` in writes of `chunk` bytes, half-closes and
/// returns everything that comes back before the close.
pub(crate) async fn exchange(port: u16, bytes: &[u8], chunk: usize) -> Vec<u8> {
    let mut stream = connect(port).await;
    stream.set_nodelay(true).expect("nodelay");
    for part in bytes.chunks(chunk) {
        stream.write_all(part).await.expect("write");
    }
    stream.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    // A reset counts as a close with nothing more to read.
    let _ = within("answer", stream.read_to_end(&mut back)).await;
    back
}

fn can_bind(port: u16) -> bool {
    std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

fn tagged(tag: &str, bytes: &[u8]) -> Vec<u8> {
    let mut want = format!("{tag}\n").into_bytes();
    want.extend_from_slice(bytes);
    want
}

fn tls13(name: &str) -> Vec<u8> {
    rustls_hello(name, &[&rustls::version::TLS13])
}

fn tls12(name: &str) -> Vec<u8> {
    rustls_hello(name, &[&rustls::version::TLS12])
}

fn sni_rule(port: u16, pattern: Option<&str>, backend: SocketAddr) -> RuleSpec {
    RuleSpec {
        sni_pattern: pattern.map(str::to_string),
        ..rule(port, vec![target(backend, 1)])
    }
}

/// Starts one rule per `(pattern, backend)` on a port that was free, the
/// first one binding it.
async fn sni_port(
    engine: &Engine,
    routes: &[(Option<&str>, SocketAddr)],
) -> (u16, Vec<RuleHandle>) {
    let (first_pattern, first_backend) = routes[0];
    let first = start_on_free_port(engine, "sni-0", |p| {
        sni_rule(p, first_pattern, first_backend)
    })
    .await;
    let port = first.spec().listen_start();
    let mut handles = vec![first];
    for (i, (pattern, backend)) in routes.iter().enumerate().skip(1) {
        let h = engine
            .start_rule(&format!("sni-{i}"), sni_rule(port, *pattern, *backend))
            .await
            .unwrap_or_else(|e| panic!("join {pattern:?}: {e}"));
        handles.push(h);
    }
    (port, handles)
}

#[tokio::test]
async fn exact_beats_wildcard_beats_fallback_and_bytes_replay_unchanged() {
    let (exact, wild, fallback) = (
        tagging_backend("exact").await,
        tagging_backend("wild").await,
        tagging_backend("fallback").await,
    );
    let engine = Engine::new(EngineConfig::default());
    let (port, handles) = sni_port(
        &engine,
        &[
            (Some("api.example.com"), exact),
            (Some("*.example.com"), wild),
            (None, fallback),
        ],
    )
    .await;
    let cases = [
        (tls13("api.example.com"), "exact"),
        (tls12("api.example.com"), "exact"),
        (tls13("www.example.com"), "wild"),
        (tls12("API.Example.com"), "exact"),
        (tls13("a.b.example.com"), "fallback"),
        (tls13("example.com"), "fallback"),
        (tls13("other.org"), "fallback"),
        (
            rustls_hello("192.0.2.1", &[&rustls::version::TLS13]),
            "fallback",
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "fallback"),
    ];
    // Enough application bytes after the hello for the copy to move on
    // to splice, so the replay is checked on that path too.
    let after_hello = pattern(4 * SCRATCH_SIZE, 5);
    for (hello, tag) in &cases {
        let mut sent = hello.clone();
        sent.extend_from_slice(&after_hello);
        let back = exchange(port, &sent, usize::MAX).await;
        assert_eq!(
            String::from_utf8_lossy(&back[..tag.len().min(back.len())]),
            *tag
        );
        assert_eq!(back, tagged(tag, &sent), "{tag}: replayed bytes differ");
    }
    let routed: Vec<u64> = handles.iter().map(|h| h.stats().sni_routed).collect();
    assert_eq!(routed, vec![3, 1, 5]);
    let unmatched: u64 = handles.iter().map(|h| h.stats().sni_unmatched).sum();
    assert_eq!(unmatched, 0);
    eventually("the connections to end", || {
        handles.iter().all(|h| h.stats().active_connections == 0)
    })
    .await;
    let spliced: u64 = handles
        .iter()
        .map(|h| h.counters().spliced_connections.get())
        .sum();
    assert_eq!(spliced, 9, "SNI connections still splice after the replay");
    let bytes_in: u64 = handles.iter().map(|h| h.stats().bytes_in).sum();
    let sent: usize = cases.iter().map(|(h, _)| h.len() + after_hello.len()).sum();
    assert_eq!(bytes_in, sent as u64, "replayed bytes are counted");
}

#[tokio::test]
async fn hellos_split_over_records_and_writes_are_routed() {
    let (exact, fallback) = (tagging_backend("exact").await, tagging_backend("fb").await);
    let engine = Engine::new(EngineConfig::default());
    let (port, _handles) = sni_port(
        &engine,
        &[(Some("slow.example.com"), exact), (None, fallback)],
    )
    .await;
    let wire = tls13("slow.example.com");
    // Re-split the one handshake record into 16-byte records.
    let message = &wire[5..];
    let mut fragmented = Vec::new();
    for part in message.chunks(16) {
        fragmented.extend_from_slice(&[22, 3, 1, 0, part.len() as u8]);
        fragmented.extend_from_slice(part);
    }
    for (bytes, chunk) in [(&wire, 7), (&fragmented, 21), (&fragmented, usize::MAX)] {
        let back = exchange(port, bytes, chunk).await;
        assert_eq!(back, tagged("exact", bytes), "chunk {chunk}");
    }
}

#[tokio::test]
async fn unmatched_without_fallback_is_closed_and_counted() {
    let exact = tagging_backend("exact").await;
    let engine = Engine::new(EngineConfig::default());
    let (port, handles) = sni_port(&engine, &[(Some("api.example.com"), exact)]).await;
    for hello in [tls13("nope.example.com"), b"SSH-2.0-x\r\n".to_vec()] {
        let back = exchange(port, &hello, usize::MAX).await;
        assert!(back.is_empty(), "closed without an answer");
    }
    let stats = handles[0].stats();
    assert_eq!((stats.sni_unmatched, stats.sni_routed), (2, 0));
    assert_eq!(stats.connections_total, 0, "no connection reached the rule");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_peek_timeout() {
    let exact = tagging_backend("exact").await;
    let engine = Engine::new(EngineConfig::default());
    let (port, handles) = sni_port(&engine, &[(Some("api.example.com"), exact)]).await;
    let mut client = connect(port).await;
    let started = tokio::time::Instant::now();
    assert!(within("peek timeout", closed_by_peer(&mut client)).await);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed too early"
    );
    eventually("unmatched count", || handles[0].stats().sni_unmatched == 1).await;
}

#[tokio::test]
async fn silent_connections_past_the_cap_are_closed_at_once() {
    use crate::sni::MAX_WAITING_HELLOS;
    let exact = tagging_backend("exact").await;
    let engine = Engine::new(EngineConfig::default());
    let (port, handles) = sni_port(&engine, &[(Some("api.example.com"), exact)]).await;
    let mut silent = Vec::with_capacity(MAX_WAITING_HELLOS);
    for _ in 0..MAX_WAITING_HELLOS {
        silent.push(connect(port).await);
    }
    // One more is closed at once, long before the peek timeout, and
    // counted; a real ClientHello still gets through once places free up.
    let mut extra = connect(port).await;
    let started = tokio::time::Instant::now();
    assert!(within("a closed extra", closed_by_peer(&mut extra)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed at accept"
    );
    eventually("the refusal counted", || {
        handles[0].stats().sni_unmatched >= 1
    })
    .await;
    drop(silent);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let back = exchange(port, &tls13("api.example.com"), usize::MAX).await;
        if back.starts_with(b"exact\n") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "places never freed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn one_pattern_and_one_fallback_per_port() {
    let backend = tagging_backend("x").await;
    let engine = Engine::new(EngineConfig::default());
    let (port, _handles) = sni_port(
        &engine,
        &[(Some("a.example.com"), backend), (None, backend)],
    )
    .await;
    for pattern in [Some("a.example.com"), None] {
        let err = engine
            .start_rule("dup", sni_rule(port, pattern, backend))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.reason, ActivationReason::PortInUse, "{}", err.detail);
        assert!(err.detail.contains(&port.to_string()), "{}", err.detail);
    }
}

#[tokio::test]
async fn the_socket_lives_while_any_rule_uses_it() {
    let (a, b, fallback) = (
        tagging_backend("a").await,
        tagging_backend("b").await,
        tagging_backend("fb").await,
    );
    let engine = Engine::new(EngineConfig::default());
    let (port, mut handles) = sni_port(
        &engine,
        &[
            (Some("a.example.com"), a),
            (Some("b.example.com"), b),
            (None, fallback),
        ],
    )
    .await;
    let hello_a = tls13("a.example.com");
    let hello_b = tls13("b.example.com");
    // The rule that bound the port leaves; the others keep routing.
    within("stop a", handles.remove(0).stop(Duration::ZERO)).await;
    assert_eq!(
        exchange(port, &hello_a, usize::MAX).await,
        tagged("fb", &hello_a)
    );
    assert_eq!(
        exchange(port, &hello_b, usize::MAX).await,
        tagged("b", &hello_b)
    );
    // With only the fallback left, connections go to it without a peek.
    within("stop b", handles.remove(0).stop(Duration::ZERO)).await;
    assert_eq!(
        exchange(port, &hello_b, usize::MAX).await,
        tagged("fb", &hello_b)
    );
    // A pattern may join again.
    let a_again = engine
        .start_rule("a2", sni_rule(port, Some("a.example.com"), a))
        .await
        .expect("rejoin");
    assert_eq!(
        exchange(port, &hello_a, usize::MAX).await,
        tagged("a", &hello_a)
    );
    within("stop a2", a_again.stop(Duration::ZERO)).await;
    within("stop fallback", handles.remove(0).stop(Duration::ZERO)).await;
    // The last leaver closed the socket before its stop returned.
    assert!(can_bind(port), "port {port} still bound");
    let plain = engine
        .start_rule("plain", rule(port, vec![target(a, 1)]))
        .await
        .expect("the port is free for a plain rule");
    assert_eq!(exchange(port, b"x", usize::MAX).await, tagged("a", b"x"));
    drop(plain);
}

#[tokio::test]
async fn a_plain_rule_binds_its_own_listener_when_no_rule_routes_the_port() {
    let backend = tagging_backend("plain").await;
    let engine = Engine::new(EngineConfig::default());
    let plain = start_on_free_port(&engine, "plain", |p| rule(p, vec![target(backend, 1)])).await;
    let port = plain.spec().listen_start();
    let err = engine
        .start_rule("sni", sni_rule(port, Some("a.example.com"), backend))
        .await
        .err()
        .expect("a plain port cannot turn into an SNI port");
    assert_eq!(err.reason, ActivationReason::PortInUse);
    assert_eq!(plain.stats().sni_routed, 0);
}
