//! Stopping and dropping rules: ports, drain, abort, isolation.

use super::support::*;
use crate::{Engine, EngineConfig, RuleHandle};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo_rule(engine: &Engine, id: &str) -> RuleHandle {
    let backend = echo_backend().await;
    start_on_free_port(engine, id, |p| rule(p, vec![target(backend, 1)])).await
}

/// A connection through the rule that is known to forward already.
async fn live_connection(handle: &RuleHandle) -> TcpStream {
    let mut client = connect(handle.spec().listen_start()).await;
    assert_eq!(
        within("first echo", round_trip(&mut client, b"hello")).await,
        b"hello"
    );
    client
}

fn can_bind(port: u16) -> bool {
    std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

#[tokio::test]
async fn stop_frees_the_port_before_returning() {
    let engine = Engine::new(EngineConfig::default());
    let handle = echo_rule(&engine, "stop").await;
    let port = handle.spec().listen_start();
    let _client = live_connection(&handle).await;
    assert!(!can_bind(port), "the rule holds its port");
    within("stop", handle.stop(Duration::ZERO)).await;
    assert!(can_bind(port), "port {port} still bound after stop");
}

#[tokio::test]
async fn stop_lets_a_live_connection_finish_within_the_drain() {
    let engine = Engine::new(EngineConfig::default());
    let handle = echo_rule(&engine, "drain").await;
    let port = handle.spec().listen_start();
    let counters = handle.counters();
    let mut client = live_connection(&handle).await;

    // A drain far longer than the test deadline: returning at all proves
    // stop ended because the connection did.
    let stopping = tokio::spawn(handle.stop(Duration::from_secs(3600)));
    eventually("the listener to close", || can_bind(port)).await;
    assert!(
        !stopping.is_finished(),
        "stop must wait for the live connection"
    );

    assert_eq!(
        within("echo while draining", round_trip(&mut client, b"more")).await,
        b"more"
    );
    client.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    within("echo close", client.read_to_end(&mut rest))
        .await
        .expect("read");
    assert!(rest.is_empty());

    within("stop after the connection ended", stopping)
        .await
        .expect("stop task");
    assert_eq!(counters.snapshot().active_connections, 0);
}

#[tokio::test]
async fn stop_aborts_connections_left_after_the_drain() {
    let engine = Engine::new(EngineConfig::default());
    let handle = echo_rule(&engine, "abort").await;
    let counters = handle.counters();
    let mut client = live_connection(&handle).await;

    within("stop", handle.stop(Duration::from_millis(200))).await;
    assert_eq!(counters.snapshot().active_connections, 0);
    assert!(within("abort reaches the client", closed_by_peer(&mut client)).await);
}

#[tokio::test]
async fn stopping_one_rule_leaves_another_running() {
    let engine = Engine::new(EngineConfig::default());
    let a = echo_rule(&engine, "a").await;
    let b = echo_rule(&engine, "b").await;
    let mut on_a = live_connection(&a).await;
    let mut on_b = live_connection(&b).await;

    within("stop a", a.stop(Duration::ZERO)).await;
    assert!(within("a's connection closes", closed_by_peer(&mut on_a)).await);
    assert_eq!(
        within("b still echoes", round_trip(&mut on_b, b"still")).await,
        b"still"
    );
    assert_eq!(b.stats().active_connections, 1);
    let mut fresh = live_connection(&b).await;
    assert_eq!(
        within("new connection on b", round_trip(&mut fresh, b"new")).await,
        b"new"
    );
}

#[tokio::test]
async fn dropping_the_handle_aborts_everything() {
    let engine = Engine::new(EngineConfig::default());
    let handle = echo_rule(&engine, "drop").await;
    let port = handle.spec().listen_start();
    let counters = handle.counters();
    let mut client = live_connection(&handle).await;

    drop(handle);
    assert!(within("abort reaches the client", closed_by_peer(&mut client)).await);
    eventually("the port to be released", || can_bind(port)).await;
    eventually("the gauge to drop", || {
        counters.snapshot().active_connections == 0
    })
    .await;
}
