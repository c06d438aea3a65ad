//! The fold against a real store: each byte counted once through client
//! restarts, duplicate and late reports and a server restart, and quota
//! usage moving with the buckets.

use super::*;
use crate::quota::period::Reset;
use crate::store::quotas::QuotaRow;
use crate::store::traffic::{sums, Filter};
use crate::store::{clients, users, write_tx, Store};

const T0: i64 = 1_772_359_200; // 2026-03-01T10:00:00Z

fn sample(
    client: &str,
    rule: &str,
    at: i64,
    run: &str,
    instance: u64,
    seq: u64,
    bytes: u64,
) -> Sample {
    Sample {
        rule_id: rule.into(),
        client_id: client.into(),
        owner: "alice".into(),
        at,
        report: Cursor {
            run_id: run.into(),
            instance,
            seq,
            counters: Counters {
                bytes_in: bytes,
                bytes_out: bytes / 2,
                connections: 1,
            },
        },
    }
}

fn setup(store: &Store) -> String {
    store
        .blocking(|c| {
            write_tx(c, |tx| {
                users::create(tx, "alice", "Alice", users::Role::User)?;
                Ok(clients::ensure(tx, "edge", None)?.id)
            })
        })
        .unwrap()
}

fn fold_now(store: &Store, samples: &[Sample], now: i64) -> Folded {
    store
        .blocking(|c| write_tx(c, |tx| fold(tx, samples, now)))
        .unwrap()
}

fn minute_bytes_in(store: &Store, filter: &Filter) -> Vec<(i64, u64)> {
    store
        .blocking(|c| sums(c, Grain::Minute, filter, 0, i64::MAX))
        .unwrap()
        .into_iter()
        .map(|(at, c)| (at, c.bytes_in))
        .collect()
}

#[test]
fn restarts_duplicates_and_a_server_restart_count_each_byte_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let edge = setup(&store);
    let r = |at, run, inst, seq, bytes| sample(&edge, "r1", at, run, inst, seq, bytes);
    let f = fold_now(
        &store,
        &[
            r(T0 + 5, "a", 1, 1, 1000),
            r(T0 + 10, "a", 1, 2, 3000),
            r(T0 + 10, "a", 1, 2, 3000),
        ],
        T0 + 11,
    );
    assert_eq!((f.counted, f.skipped), (2, 1));
    // The server restarts: the cursor is on disk, so the edge's next
    // report (the same run) adds only what is new.
    drop(store);
    let store = Store::open(&path).unwrap();
    fold_now(
        &store,
        &[r(T0 + 65, "a", 1, 3, 3500), r(T0 + 66, "a", 1, 2, 3000)],
        T0 + 70,
    );
    // The edge restarts: its counters start from zero in a new run.
    fold_now(
        &store,
        &[r(T0 + 125, "b", 1, 1, 200), r(T0 + 130, "b", 1, 1, 200)],
        T0 + 131,
    );
    let filter = Filter {
        rule_id: Some("r1".into()),
        ..Filter::default()
    };
    assert_eq!(
        minute_bytes_in(&store, &filter),
        vec![(T0, 3000), (T0 + 60, 500), (T0 + 120, 200)]
    );
    let hours = store
        .blocking(|c| sums(c, Grain::Hour, &filter, 0, i64::MAX))
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(
        hours[0].1,
        Counters {
            bytes_in: 3700,
            bytes_out: 1850,
            connections: 2
        }
    );
}

#[test]
fn filters_scope_by_client_and_owner_and_history_outlives_the_rule() {
    let (_d, store) = crate::store::test_store();
    let edge = setup(&store);
    let mut other = sample("other-client", "r2", T0, "a", 1, 1, 70);
    other.owner = "bob".into();
    fold_now(&store, &[sample(&edge, "r1", T0, "a", 1, 1, 10), other], T0);
    let by = |client: Option<&str>, owner: Option<&str>| {
        minute_bytes_in(
            &store,
            &Filter {
                rule_id: None,
                client_id: client.map(str::to_string),
                owner: owner.map(str::to_string),
            },
        )
    };
    assert_eq!(by(None, None), vec![(T0, 80)]);
    assert_eq!(by(Some(&edge), None), vec![(T0, 10)]);
    assert_eq!(by(None, Some("bob")), vec![(T0, 70)]);
    assert_eq!(by(Some(&edge), Some("bob")), vec![]);
}

#[test]
fn quota_usage_follows_the_deltas_and_rolls_over_with_the_period() {
    let (_d, store) = crate::store::test_store();
    let edge = setup(&store);
    let quota = QuotaRow {
        client_id: edge.clone(),
        owner: "alice".into(),
        monthly_bytes: 10_000,
        reset: Reset::Monthly(1),
        ends_at: None,
        period_start: 0,
        used_bytes: 0,
        updated_at: T0,
    };
    let quota = QuotaRow {
        period_start: crate::quota::period::period_start(quota.reset, 0, T0),
        ..quota
    };
    store
        .blocking(|c| crate::store::quotas::put(c, &quota))
        .unwrap();
    fold_now(&store, &[sample(&edge, "r1", T0, "a", 1, 1, 4000)], T0);
    let used = |store: &Store| {
        store
            .blocking(|c| crate::store::quotas::get(c, &edge, "alice"))
            .unwrap()
            .unwrap()
            .used_bytes
    };
    assert_eq!(used(&store), 6000, "in plus out");
    // April 1st: the next fold moves the quota into the new period first.
    let april = 1_775_001_600; // 2026-04-01T00:00:00Z
    let f = fold_now(
        &store,
        &[sample(&edge, "r1", april + 30, "a", 1, 2, 4100)],
        april + 31,
    );
    assert_eq!(f.rolled, 1);
    assert_eq!(used(&store), 150);
    // The buckets the quota was counted from stay as history.
    let usage = store
        .blocking(|c| crate::store::traffic::bytes_since(c, &edge, "alice", T0 - 36_000))
        .unwrap();
    assert_eq!(usage, 6150);
}

#[test]
fn retention_deletes_old_buckets_of_each_size_and_stale_cursors() {
    let (_d, store) = crate::store::test_store();
    let edge = setup(&store);
    let day = 86_400;
    // Reports ten days apart, each folded then.
    for (i, at) in [T0, T0 + 10 * day].into_iter().enumerate() {
        let seq = i as u64 + 1;
        fold_now(
            &store,
            &[sample(&edge, "r1", at, "a", 1, seq, 100 * seq)],
            at,
        );
    }
    fold_now(&store, &[sample(&edge, "r2", T0, "a", 1, 1, 5)], T0);
    let now = T0 + 10 * day + 60;
    let count = |grain| {
        store
            .blocking(|c| sums(c, grain, &Filter::default(), 0, i64::MAX))
            .unwrap()
            .len()
    };
    assert_eq!((count(Grain::Minute), count(Grain::Hour)), (2, 2));
    let deleted = store
        .blocking(|c| {
            let minutes = crate::store::traffic::prune(c, Grain::Minute, now - 7 * day)?;
            let hours = crate::store::traffic::prune(c, Grain::Hour, now - 90 * day)?;
            let cursors = crate::store::traffic::prune_cursors(c, now - 7 * day)?;
            Ok((minutes, hours, cursors))
        })
        .unwrap();
    // Both rules' minutes of the first day go (one bucket start, two
    // rules); hours stay; r2 has not reported for ten days.
    assert_eq!(deleted, (2, 0, 1));
    assert_eq!((count(Grain::Minute), count(Grain::Hour)), (1, 2));
    let r2 = store
        .blocking(|c| crate::store::traffic::cursor(c, "r2"))
        .unwrap();
    assert_eq!(r2, None);
}

/// What one busy rule costs per day: a row per minute and per hour, with
/// their indexes, read from the engine's own accounting (SQLite's pages,
/// PostgreSQL's relation sizes). docs/operations.md states both figures.
fn bytes_per_busy_rule_day(store: &Store, size: impl Fn(&Store) -> i64) -> i64 {
    let edge = setup(store);
    let day = |rule: &str| {
        let samples: Vec<Sample> = (0..1440)
            .map(|m| {
                let mut s = sample(
                    &edge,
                    rule,
                    T0 + m * 60,
                    "a",
                    1,
                    m as u64 + 1,
                    (m as u64 + 1) * 1_000_000,
                );
                s.report.counters.connections = m as u64 * 10;
                s
            })
            .collect();
        fold_now(store, &samples, T0 + 86_400);
    };
    // A first day fills the pages a table needs at all.
    day("01JABCDEFGHJKMNPQRSTVWXYZ0");
    let before = size(store);
    day("01JABCDEFGHJKMNPQRSTVWXYZ1");
    size(store) - before
}

#[test]
fn a_rule_busy_all_day_stays_under_the_documented_bytes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let per_rule_day = bytes_per_busy_rule_day(&store, |store| {
        store
            .sqlite(|c| {
                let count: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
                let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
                count * size
            })
            .expect("a SQLite store")
    });
    assert!(
        per_rule_day < 300 * 1024,
        "{per_rule_day} bytes per rule per day"
    );
}

#[test]
fn a_rule_busy_all_day_stays_under_the_documented_bytes_on_postgres() {
    let store = Store::open_postgres(&crate::store::test_database_url()).unwrap();
    let per_rule_day = bytes_per_busy_rule_day(&store, |store| {
        store
            .blocking(|c| {
                c.query_row(
                    "SELECT CAST(pg_total_relation_size('traffic_minute')
                                 + pg_total_relation_size('traffic_hour') AS BIGINT)",
                    crate::store::db::params![],
                    |r| r.get(0),
                )
            })
            .unwrap()
    });
    assert!(
        per_rule_day < 600 * 1024,
        "{per_rule_day} bytes per rule per day"
    );
}
