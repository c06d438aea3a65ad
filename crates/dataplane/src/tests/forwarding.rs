//! Bytes through a rule: both copy paths, half-close, ranges, failover,
//! counters.

use super::support::*;
use crate::{CopyMode, Engine, EngineConfig};
use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EIGHT_MIB: usize = 8 * 1024 * 1024;

fn engine(mode: CopyMode) -> Engine {
    Engine::new(EngineConfig::default()).with_copy_mode(mode)
}

/// 8 MiB up and the same 8 MiB back through an echo backend, written and
/// read concurrently so both directions are busy at once.
async fn echo_8mib(mode: CopyMode) {
    let backend = echo_backend().await;
    let engine = engine(mode);
    let handle = start_on_free_port(&engine, "echo", |p| rule(p, vec![target(backend, 1)])).await;
    let client = connect(handle.spec().listen_start()).await;
    let (mut reader, mut writer) = client.into_split();
    let sent = pattern(EIGHT_MIB, 7);
    let upload = sent.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&upload).await.expect("upload");
        writer.shutdown().await.expect("shutdown");
    });
    let mut received = Vec::with_capacity(EIGHT_MIB);
    within("echo", reader.read_to_end(&mut received))
        .await
        .expect("download");
    within("writer", writing).await.expect("writer task");
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "echoed bytes differ");

    eventually("the connection to end", || {
        handle.stats().active_connections == 0
    })
    .await;
    let stats = handle.stats();
    let n = EIGHT_MIB as u64;
    assert_eq!((stats.bytes_in, stats.bytes_out), (n, n));
    assert_eq!(stats.connections_total, 1);
    let spliced = handle.counters().spliced_connections.get();
    let want_splice = mode == CopyMode::Auto && cfg!(target_os = "linux");
    assert_eq!(spliced, u64::from(want_splice), "copy path for {mode:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_8mib_each_way_with_splice() {
    echo_8mib(CopyMode::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_8mib_each_way_in_userspace() {
    echo_8mib(CopyMode::Userspace).await;
}

/// The client shuts its write side; the backend only answers after it saw
/// that EOF, and the answer must still reach the client.
async fn half_close(mode: CopyMode) {
    let backend = counting_backend().await;
    let engine = engine(mode);
    let handle = start_on_free_port(&engine, "half", |p| rule(p, vec![target(backend, 1)])).await;
    let mut client = connect(handle.spec().listen_start()).await;
    let request = pattern(100_000, 3);
    client.write_all(&request).await.expect("write");
    client.shutdown().await.expect("shutdown write");
    let mut answer = String::new();
    within("answer after EOF", client.read_to_string(&mut answer))
        .await
        .expect("read answer");
    assert_eq!(answer, answer_for(request.len()));
}

#[tokio::test]
async fn half_close_answer_arrives_with_splice() {
    half_close(CopyMode::Auto).await;
}

#[tokio::test]
async fn half_close_answer_arrives_in_userspace() {
    half_close(CopyMode::Userspace).await;
}

#[tokio::test]
async fn stats_count_bytes_connections_per_port_and_target() {
    let backend = counting_backend().await;
    let engine = engine(CopyMode::Auto);
    let handle = start_on_free_port(&engine, "stats", |p| rule(p, vec![target(backend, 1)])).await;
    let port = handle.spec().listen_start();
    let mut answered = 0;
    for size in [1_000, 3_000] {
        let mut client = connect(port).await;
        client.write_all(&pattern(size, 5)).await.expect("write");
        client.shutdown().await.expect("shutdown");
        let mut answer = String::new();
        within("answer", client.read_to_string(&mut answer))
            .await
            .expect("read");
        answered += answer.len() as u64;
    }
    eventually("connections to end", || {
        handle.stats().active_connections == 0
    })
    .await;

    let stats = handle.stats();
    assert_eq!(stats.bytes_in, 4_000);
    assert_eq!(stats.bytes_out, answered);
    assert_eq!(stats.connections_total, 2);
    assert_eq!(stats.connect_failures, 0);
    assert_eq!(stats.ports.len(), 1);
    let p = &stats.ports[0];
    assert_eq!(
        (
            p.port,
            p.bytes_in,
            p.bytes_out,
            p.connections_total,
            p.active_connections
        ),
        (port, 4_000, answered, 2, 0)
    );
    assert_eq!(stats.targets.len(), 1);
    let t = &stats.targets[0];
    assert_eq!(t.host, "127.0.0.1");
    assert_eq!(t.port, backend.port());
    assert_eq!((t.connects_ok, t.connects_failed, t.healthy), (2, 0, true));
    assert_eq!((t.bytes_in, t.bytes_out), (4_000, answered));
}

#[tokio::test]
async fn range_maps_each_listen_port_to_its_target_port() {
    // Each backend answers with its own port, so the answer shows where a
    // listen port was forwarded to.
    let backends = consecutive_listeners(Ipv4Addr::LOCALHOST, 3);
    let backend_start = port_of(&backends[0]);
    for listener in backends {
        let listener = tokio_listener(listener);
        let own_port = listener.local_addr().expect("address").port();
        serve(listener, move |mut stream| async move {
            let _ = stream.write_all(own_port.to_string().as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
    let engine = engine(CopyMode::Auto);
    let mut started = None;
    for _ in 0..20 {
        let holders = consecutive_listeners(Ipv4Addr::UNSPECIFIED, 3);
        let start = port_of(&holders[0]);
        drop(holders);
        let mut spec = rule(
            start,
            vec![target((Ipv4Addr::LOCALHOST, backend_start).into(), 1)],
        );
        spec.listen_port_end = Some(u32::from(start) + 2);
        match engine.start_rule("range", spec).await {
            Ok(handle) => {
                started = Some(handle);
                break;
            }
            Err(e) if e.reason == crate::ActivationReason::PortInUse => continue,
            Err(e) => panic!("start_rule: {e}"),
        }
    }
    let handle = started.expect("a free range of 3 ports");
    let listen_start = handle.spec().listen_start();
    for i in 0..3 {
        let mut client = connect(listen_start + i).await;
        let mut answer = String::new();
        within("backend answer", client.read_to_string(&mut answer))
            .await
            .expect("read");
        assert_eq!(
            answer,
            (backend_start + i).to_string(),
            "listen port {}",
            listen_start + i
        );
    }
    eventually("connections to end", || {
        handle.stats().active_connections == 0
    })
    .await;
    let ports: Vec<(u16, u64)> = handle
        .stats()
        .ports
        .iter()
        .map(|p| (p.port, p.connections_total))
        .collect();
    assert_eq!(
        ports,
        vec![
            (listen_start, 1),
            (listen_start + 1, 1),
            (listen_start + 2, 1)
        ]
    );
}

#[tokio::test]
async fn failover_to_next_target_when_the_preferred_one_refuses() {
    let backend = echo_backend().await;
    let refusing = closed_addr();
    let engine = engine(CopyMode::Auto);
    // Listed second but preferred: priority, not list order, decides.
    let handle = start_on_free_port(&engine, "failover", |p| {
        rule(p, vec![target(backend, 2), target(refusing, 1)])
    })
    .await;
    let mut client = connect(handle.spec().listen_start()).await;
    let back = within("echo via second target", round_trip(&mut client, b"ping")).await;
    assert_eq!(back, b"ping");

    let stats = handle.stats();
    assert_eq!(stats.target_failovers, 1);
    assert_eq!(stats.connect_failures, 0);
    assert_eq!(
        (
            stats.targets[0].connects_ok,
            stats.targets[0].connects_failed
        ),
        (1, 0)
    );
    assert_eq!(
        (
            stats.targets[1].connects_ok,
            stats.targets[1].connects_failed
        ),
        (0, 1)
    );
}

#[tokio::test]
async fn all_targets_down_closes_the_downstream_and_counts_it() {
    let engine = engine(CopyMode::Auto);
    let handle = start_on_free_port(&engine, "down", |p| {
        rule(p, vec![target(closed_addr(), 1), target(closed_addr(), 1)])
    })
    .await;
    let mut client = connect(handle.spec().listen_start()).await;
    assert!(within("downstream close", closed_by_peer(&mut client)).await);
    eventually("the connection to end", || {
        handle.stats().active_connections == 0
    })
    .await;
    let stats = handle.stats();
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.connections_total, 1);
    assert_eq!(stats.target_failovers, 0);
    let failed: Vec<u64> = stats.targets.iter().map(|t| t.connects_failed).collect();
    assert_eq!(failed, vec![1, 1]);
}
