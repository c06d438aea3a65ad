//! Source filters on TCP rules: a refused peer is reset at accept and
//! counted, before any limit is charged.

use super::support::*;
use crate::{Engine, EngineConfig};
use portunus_domain::rule::RuleSpec;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind the source");
    socket
        .connect((Ipv4Addr::LOCALHOST, port).into())
        .await
        .expect("connect to the rule")
}

#[tokio::test]
async fn a_denied_source_is_reset_while_an_allowed_one_passes() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let handle = start_on_free_port(&engine, "filtered", |p| RuleSpec {
        allow_sources: vec!["127.0.0.0/8".into()],
        deny_sources: vec!["127.0.0.2/32".into()],
        rate_limit: Some(portunus_domain::rule::RateLimit {
            concurrent_connections: Some(1),
            ..Default::default()
        }),
        ..rule(p, vec![target(backend, 1)])
    })
    .await;
    let port = handle.spec().listen_start();
    let mut denied = connect_from(Ipv4Addr::new(127, 0, 0, 2), port).await;
    assert!(within("the reset", closed_by_peer(&mut denied)).await);
    let mut allowed = connect_from(Ipv4Addr::LOCALHOST, port).await;
    assert_eq!(round_trip(&mut allowed, b"hello").await, b"hello");
    let stats = handle.stats();
    assert_eq!(stats.source_denied, 1, "{stats:?}");
    // The refusal took no place under the concurrency cap.
    assert_eq!(stats.rate_limit_rejects, 0, "{stats:?}");
}

#[tokio::test]
async fn an_allow_list_refuses_what_it_does_not_name() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let handle = start_on_free_port(&engine, "allow-only", |p| RuleSpec {
        allow_sources: vec!["127.0.0.2".into()],
        ..rule(p, vec![target(backend, 1)])
    })
    .await;
    let port = handle.spec().listen_start();
    let mut other = connect_from(Ipv4Addr::LOCALHOST, port).await;
    assert!(within("the reset", closed_by_peer(&mut other)).await);
    let mut named = connect_from(Ipv4Addr::new(127, 0, 0, 2), port).await;
    assert_eq!(round_trip(&mut named, b"hi").await, b"hi");
    assert_eq!(handle.stats().source_denied, 1);
}
