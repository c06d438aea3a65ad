//! Quota gates on TCP rules: a closed gate resets new connections and ends
//! the open ones of the owner's rules only; opening it lets new ones in on
//! the listener that stayed bound.

use super::support::*;
use crate::{Engine, EngineConfig};
use tokio::net::TcpStream;

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_closed_gate_cuts_its_owner_off_and_an_open_one_restores() {
    let engine = Engine::new(EngineConfig::default());
    let backend = echo_backend().await;
    let alice = start_owned_on_free_port(&engine, "alice-rule", "alice", |p| {
        rule(p, vec![target(backend, 1)])
    })
    .await;
    let bob = start_owned_on_free_port(&engine, "bob-rule", "bob", |p| {
        rule(p, vec![target(backend, 1)])
    })
    .await;
    let (a_port, b_port) = (alice.spec().listen_start(), bob.spec().listen_start());
    let mut open = connect(a_port).await;
    assert_eq!(round_trip(&mut open, b"before").await, b"before");
    let mut bobs = connect(b_port).await;
    assert_eq!(round_trip(&mut bobs, b"bob").await, b"bob");

    engine.set_exhausted_owners(&["alice".to_string()]);
    assert!(engine.owner_exhausted("alice") && !engine.owner_exhausted("bob"));
    assert!(within("the open connection closed", closed_by_peer(&mut open)).await);
    let mut refused = connect(a_port).await;
    assert!(within("the new connection reset", closed_by_peer(&mut refused)).await);
    assert!(alice.stats().quota_refused >= 1, "{:?}", alice.stats());
    assert_eq!(
        round_trip(&mut bobs, b"still").await,
        b"still",
        "bob is not cut off"
    );

    // The complete list names nobody now: alice's gate opens.
    engine.set_exhausted_owners(&[]);
    let mut again = connect(a_port).await;
    assert_eq!(round_trip(&mut again, b"after").await, b"after");
}

#[tokio::test]
async fn a_gate_closed_before_the_rule_starts_holds_it() {
    let engine = Engine::new(EngineConfig::default());
    engine.set_exhausted_owners(&["carol".to_string()]);
    let backend = echo_backend().await;
    let handle = start_owned_on_free_port(&engine, "carol-rule", "carol", |p| {
        rule(p, vec![target(backend, 1)])
    })
    .await;
    let mut refused = connect(handle.spec().listen_start()).await;
    assert!(within("the reset", closed_by_peer(&mut refused)).await);
}
