//! Per-target behaviour through the engine: PROXY headers, passive and
//! active health, and name targets.

use super::sni_routing::{exchange, tagging_backend};
use super::support::*;
use crate::copy::adaptive::SCRATCH_SIZE;
use crate::{Engine, EngineConfig};
use portunus_domain::rule::{ProxyProtocol, RuleSpec, Target};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn with_proxy(addr: SocketAddr, version: ProxyProtocol) -> Target {
    Target {
        proxy_protocol: Some(version),
        ..target(addr, 1)
    }
}

/// Sends `payload`, half-closes, and returns the answer of a tagging
/// backend together with the client's own port.
async fn send_from(port: u16, payload: &[u8]) -> (Vec<u8>, u16) {
    let mut stream = connect(port).await;
    let client_port = stream.local_addr().expect("client address").port();
    stream.write_all(payload).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    within("answer", stream.read_to_end(&mut back))
        .await
        .expect("read answer");
    (back, client_port)
}

#[tokio::test]
async fn proxy_v1_and_v2_headers_precede_the_payload() {
    let backend = tagging_backend("b").await;
    let engine = Engine::new(EngineConfig::default());
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let handle = start_on_free_port(&engine, "proxy", |p| {
            rule(p, vec![with_proxy(backend, version)])
        })
        .await;
        let port = handle.spec().listen_start();
        // Enough to move the copy on to splice after the header.
        let payload = pattern(4 * SCRATCH_SIZE, 9);
        let (back, client_port) = send_from(port, &payload).await;
        let mut want = b"b\n".to_vec();
        match version {
            ProxyProtocol::V1 => want.extend_from_slice(
                format!("PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {port}\r\n").as_bytes(),
            ),
            ProxyProtocol::V2 => {
                want.extend_from_slice(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c");
                want.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
                want.extend_from_slice(&client_port.to_be_bytes());
                want.extend_from_slice(&port.to_be_bytes());
            }
        }
        want.extend_from_slice(&payload);
        assert!(back == want, "{version:?}: the answer differs");
        eventually("the connection to end", || {
            handle.stats().active_connections == 0
        })
        .await;
        let payload_len = payload.len() as u64;
        assert_eq!(
            handle.stats().bytes_in,
            payload_len,
            "the header is not payload"
        );
        assert_eq!(handle.counters().spliced_connections.get(), 1);
    }
}

#[tokio::test]
async fn proxy_header_comes_before_a_replayed_client_hello() {
    let backend = tagging_backend("b").await;
    let engine = Engine::new(EngineConfig::default());
    let handle = start_on_free_port(&engine, "sni-proxy", |p| RuleSpec {
        sni_pattern: Some("*.example.com".into()),
        ..rule(p, vec![with_proxy(backend, ProxyProtocol::V1)])
    })
    .await;
    let port = handle.spec().listen_start();
    let hello = crate::sni::tests::rustls_hello("x.example.com", &[&rustls::version::TLS13]);
    let back = exchange(port, &hello, usize::MAX).await;
    let header_end = back
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a v1 header")
        + 2;
    assert!(back.starts_with(b"b\nPROXY TCP4 127.0.0.1 127.0.0.1 "));
    assert_eq!(&back[header_end..], &hello[..]);
}

#[tokio::test]
async fn three_failures_take_a_target_out_until_it_recovers() {
    let backend = echo_backend().await;
    let dead = closed_addr();
    let engine = Engine::new(EngineConfig::default());
    let handle = start_on_free_port(&engine, "passive", |p| {
        rule(p, vec![target(dead, 1), target(backend, 2)])
    })
    .await;
    let port = handle.spec().listen_start();
    for i in 1..=5u64 {
        let mut client = connect(port).await;
        assert_eq!(within("echo", round_trip(&mut client, b"hi")).await, b"hi");
        let stats = handle.stats();
        // Three connections try the dead target first; after that it is
        // failed and the healthy one is tried first.
        assert_eq!(stats.target_failovers, i.min(3), "connection {i}");
        assert_eq!(stats.targets[0].connects_failed, i.min(3));
        assert_eq!(stats.targets[0].healthy, i < 3, "connection {i}");
        assert!(stats.targets[1].healthy);
    }
}

#[tokio::test]
async fn all_failed_still_tries_the_best_target() {
    let engine = Engine::new(EngineConfig::default());
    let (first, second) = (closed_addr(), closed_addr());
    let handle = start_on_free_port(&engine, "all-failed", |p| {
        rule(p, vec![target(first, 1), target(second, 2)])
    })
    .await;
    let port = handle.spec().listen_start();
    for _ in 0..4 {
        let mut client = connect(port).await;
        assert!(within("close", closed_by_peer(&mut client)).await);
    }
    eventually("four failed connections", || {
        handle.stats().connect_failures == 4
    })
    .await;
    let stats = handle.stats();
    assert!(!stats.targets[0].healthy && !stats.targets[1].healthy);
    assert_eq!(
        (
            stats.targets[0].connects_failed,
            stats.targets[1].connects_failed
        ),
        (4, 4)
    );
}

#[tokio::test]
async fn active_probes_fail_and_revive_a_target_without_traffic() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let dead = closed_addr();
    let handle = start_on_free_port(&engine, "active", |p| RuleSpec {
        health_check_interval_secs: Some(1),
        ..rule(p, vec![target(dead, 1), target(backend, 2)])
    })
    .await;
    eventually("probes to fail the dead target", || {
        !handle.stats().targets[0].healthy
    })
    .await;
    assert!(handle.stats().targets[1].healthy);
    assert_eq!(handle.stats().connections_total, 0);
    // Bring the dead target up on its old port; probes revive it.
    let Ok(revived) = std::net::TcpListener::bind(dead) else {
        return; // Someone else took the port meanwhile; nothing to check.
    };
    eventually("probes to revive the target", || {
        handle.stats().targets[0].healthy
    })
    .await;
    drop(revived);
}

#[tokio::test]
async fn a_localhost_target_resolves_to_loopback() {
    let backend = echo_backend().await;
    let engine = Engine::new(EngineConfig::default());
    let handle = start_on_free_port(&engine, "localhost", |p| {
        rule(
            p,
            vec![Target {
                host: "localhost".into(),
                ..target(backend, 1)
            }],
        )
    })
    .await;
    let mut client = connect(handle.spec().listen_start()).await;
    assert_eq!(within("echo", round_trip(&mut client, b"lo")).await, b"lo");
    let stats = handle.stats();
    assert_eq!((stats.dns_failures, stats.targets[0].connects_ok), (0, 1));
}
