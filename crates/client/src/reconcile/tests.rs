use super::*;
use crate::testing::{connect, echo_backend, eventually, free_port, round_trip, tcp_rule, within};
use portunus_dataplane::{ActivationReason, EngineConfig};
use std::net::SocketAddr;

const DRAIN: Duration = Duration::from_secs(30);

fn reconciler(drain: Duration) -> Reconciler {
    Reconciler::new(Engine::new(EngineConfig::default()), drain)
}

const OWNER: &str = "_superadmin";

fn set(rules: &[(&str, RuleSpec)]) -> BTreeMap<String, Desired> {
    rules
        .iter()
        .map(|(id, spec)| {
            let desired = Desired {
                owner: OWNER.into(),
                spec: spec.clone(),
            };
            (id.to_string(), desired)
        })
        .collect()
}

fn activated(id: &str) -> RuleOutcome {
    RuleOutcome {
        rule_id: id.into(),
        outcome: Outcome::Activated,
    }
}

/// Starts `id` on a port that was free a moment ago, trying again when
/// something else took it in between.
async fn activate(rec: &mut Reconciler, id: &str, backend: SocketAddr) -> u16 {
    for _ in 0..20 {
        let port = free_port();
        match rec
            .apply_one(id.into(), OWNER, tcp_rule(port, backend))
            .await
            .outcome
        {
            Outcome::Activated => return port,
            Outcome::Failed(e) if e.reason == ActivationReason::PortInUse => continue,
            other => panic!("{id}: {other:?}"),
        }
    }
    panic!("no free port after 20 tries");
}

async fn refuses_connections(port: u16) -> bool {
    connect(port).await.is_err()
}

#[tokio::test]
async fn unchanged_rules_keep_their_connections_across_a_full_set() {
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    let port = activate(&mut rec, "a", backend).await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"one").await, b"one");

    let outcomes = rec.apply_set(set(&[("a", tcp_rule(port, backend))])).await;
    assert_eq!(outcomes, vec![activated("a")]);
    assert_eq!(round_trip(&mut conn, b"two").await, b"two");
    assert_eq!(
        rec.stats()[0].1.connections_total,
        1,
        "the rule was restarted"
    );

    // A push of the same spec is acknowledged without touching the rule.
    assert_eq!(
        rec.apply_one("a".into(), OWNER, tcp_rule(port, backend))
            .await,
        activated("a")
    );
    assert_eq!(round_trip(&mut conn, b"three").await, b"three");
}

#[tokio::test]
async fn a_cap_change_applies_in_place_to_the_next_connection() {
    use portunus_domain::rule::RateLimit;
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    let port = activate(&mut rec, "a", backend).await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"one").await, b"one");

    let capped = RuleSpec {
        rate_limit: Some(RateLimit {
            concurrent_connections: Some(1),
            ..RateLimit::default()
        }),
        ..tcp_rule(port, backend)
    };
    assert_eq!(
        rec.apply_one("a".into(), OWNER, capped.clone()).await,
        activated("a")
    );
    assert_eq!(round_trip(&mut conn, b"two").await, b"two");
    let _refused = connect(port).await.unwrap();
    eventually("the second connection is refused", || async {
        rec.stats()[0].1.rate_limit_rejects_concurrency == 1
    })
    .await;
    assert_eq!(rec.stats()[0].1.connections_total, 1, "not restarted");

    // A full set lifting the cap changes it in place too.
    let outcomes = rec.apply_set(set(&[("a", tcp_rule(port, backend))])).await;
    assert_eq!(outcomes, vec![activated("a")]);
    let mut second = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut second, b"three").await, b"three");
    assert_eq!(round_trip(&mut conn, b"four").await, b"four");
    assert_eq!(rec.stats()[0].1.connections_total, 2);
}

#[tokio::test]
async fn full_set_restarts_changed_stops_absent_and_starts_new() {
    let (first, second) = (echo_backend().await, echo_backend().await);
    let mut rec = reconciler(DRAIN);
    let port_a = activate(&mut rec, "a", first).await;
    let port_b = activate(&mut rec, "b", first).await;
    let port_c = free_port();

    let outcomes = rec
        .apply_set(set(&[
            ("a", tcp_rule(port_a, second)),
            ("c", tcp_rule(port_c, first)),
        ]))
        .await;
    assert_eq!(outcomes, vec![activated("a"), activated("c")]);
    assert_eq!(rec.running_ids().collect::<Vec<_>>(), ["a", "c"]);
    let stats = rec.stats();
    assert_eq!(
        stats[0].1.targets[0].port,
        second.port(),
        "rule a runs its new spec"
    );
    eventually("rule b's listener to close", || refuses_connections(port_b)).await;
    let mut conn = connect(port_c).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"c").await, b"c");
}

#[tokio::test]
async fn failed_rule_is_remembered_and_retried_on_the_next_full_set() {
    let backend = echo_backend().await;
    let blocker = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let mut rec = reconciler(DRAIN);

    let outcomes = rec.apply_set(set(&[("a", tcp_rule(port, backend))])).await;
    match &outcomes[..] {
        [RuleOutcome {
            rule_id,
            outcome: Outcome::Failed(e),
        }] => {
            assert_eq!((rule_id.as_str(), e.reason.code()), ("a", "port_in_use"));
            assert!(e.detail.contains(&port.to_string()), "{}", e.detail);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rec.failed_ids().collect::<Vec<_>>(), ["a"]);
    assert_eq!(rec.running_ids().count(), 0);

    drop(blocker);
    let outcomes = rec.apply_set(set(&[("a", tcp_rule(port, backend))])).await;
    assert_eq!(outcomes, vec![activated("a")]);
    assert_eq!(rec.failed_ids().count(), 0);
}

#[tokio::test]
async fn a_port_given_up_by_an_absent_rule_is_reusable_in_the_same_set() {
    port_moves_to_a_new_rule().await;
}

/// The daemon's runtime: the aborted accept loop may be dropped by the
/// other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_given_up_by_an_absent_rule_is_reusable_on_a_multi_thread_runtime() {
    for _ in 0..20 {
        port_moves_to_a_new_rule().await;
    }
}

async fn port_moves_to_a_new_rule() {
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    let port = activate(&mut rec, "old", backend).await;
    let outcomes = rec
        .apply_set(set(&[("new", tcp_rule(port, backend))]))
        .await;
    assert_eq!(outcomes, vec![activated("new")]);
}

#[tokio::test]
async fn remove_closes_the_listener_and_lets_live_connections_drain() {
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    let port = activate(&mut rec, "a", backend).await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"before").await, b"before");

    let removed = RuleOutcome {
        rule_id: "a".into(),
        outcome: Outcome::Removed,
    };
    assert_eq!(rec.remove("a").await, removed);
    eventually("the listener to close", || refuses_connections(port)).await;
    assert_eq!(
        round_trip(&mut conn, b"during drain").await,
        b"during drain"
    );
    assert_eq!(
        rec.remove("a").await,
        removed,
        "removing twice is still removed"
    );
    assert_eq!(rec.running_ids().count(), 0);
}

#[tokio::test]
async fn undecodable_rule_stops_what_ran_under_its_id() {
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    let port = activate(&mut rec, "a", backend).await;
    let error = ActivationError {
        reason: ActivationReason::InvalidRule,
        detail: "bad".into(),
    };
    let outcome = rec.reject("a".into(), error.clone()).await;
    assert_eq!(outcome.outcome, Outcome::Failed(error));
    assert_eq!(rec.failed_ids().collect::<Vec<_>>(), ["a"]);
    eventually("the listener to close", || refuses_connections(port)).await;
}

#[tokio::test]
async fn shutdown_closes_listeners_and_ends_connections_after_the_drain() {
    use tokio::io::AsyncReadExt;
    let backend = echo_backend().await;
    let mut rec = reconciler(Duration::ZERO);
    let port = activate(&mut rec, "a", backend).await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"x").await, b"x");

    within("shutdown", rec.shutdown()).await;
    assert!(refuses_connections(port).await);
    let mut buf = [0u8; 8];
    let n = within("the connection to end", conn.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[tokio::test]
async fn a_full_set_opens_sni_ports_before_their_fallback() {
    let backend = echo_backend().await;
    let mut rec = reconciler(DRAIN);
    for _ in 0..20 {
        let port = free_port();
        let sni = RuleSpec {
            sni_pattern: Some("a.example.com".into()),
            ..tcp_rule(port, backend)
        };
        // The fallback's id sorts first, yet it must join the SNI port.
        let outcomes = rec
            .apply_set(set(&[
                ("a-fallback", tcp_rule(port, backend)),
                ("b-sni", sni),
            ]))
            .await;
        let taken = |o: &RuleOutcome| matches!(&o.outcome, Outcome::Failed(e) if e.reason == ActivationReason::PortInUse);
        if outcomes.iter().any(taken) {
            // Something else took the port meanwhile; try another.
            rec.apply_set(BTreeMap::new()).await;
            continue;
        }
        assert_eq!(outcomes, vec![activated("a-fallback"), activated("b-sni")]);
        let mut conn = connect(port).await.unwrap();
        assert_eq!(round_trip(&mut conn, b"plain").await, b"plain");
        return;
    }
    panic!("no free port after 20 tries");
}
