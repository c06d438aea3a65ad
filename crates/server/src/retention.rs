//! Audit retention: a background task keeps the audit table within
//! `audit_retention_days` and `audit_max_rows`. It runs shortly after start
//! and then hourly; `audit prune` stays for a one-off cut.

use crate::state::Shared;
use crate::store::{audit, Store, StoreResult};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// After start-up work, not during it: a large first cut waits until the
/// listeners serve.
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(5);
pub const PERIOD: Duration = Duration::from_secs(3600);
/// Rows per delete transaction, so API requests get the store in between.
const BATCH: u64 = 5000;
const DAY_MS: i64 = 86_400_000;

/// What the audit table keeps. Both unset (the default) keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age_days: Option<u32>,
    pub max_rows: Option<u64>,
}

/// Rows one pass deleted, by the limit that removed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub by_age: u64,
    pub by_rows: u64,
}

impl Retention {
    pub fn is_unlimited(&self) -> bool {
        self.max_age_days.is_none() && self.max_rows.is_none()
    }

    /// One pass at `now_ms`: rows past the age limit, then the oldest rows
    /// past the row cap.
    pub async fn prune_once(&self, store: &Store, now_ms: i64) -> StoreResult<Pruned> {
        let mut pruned = Pruned::default();
        if let Some(days) = self.max_age_days {
            let before = now_ms - i64::from(days) * DAY_MS;
            pruned.by_age =
                in_batches(store, move |c| audit::prune_older_batch(c, before, BATCH)).await?;
        }
        if let Some(keep) = self.max_rows {
            if let Some(last) = store.call(move |c| audit::first_id_beyond(c, keep)).await? {
                pruned.by_rows = in_batches(store, move |c| {
                    audit::prune_through_id_batch(c, last, BATCH)
                })
                .await?;
            }
        }
        Ok(pruned)
    }
}

/// Repeats `delete` (one transaction each) until it deletes nothing.
async fn in_batches(
    store: &Store,
    delete: impl Fn(&crate::store::Connection) -> StoreResult<u64> + Send + Sync + 'static,
) -> StoreResult<u64> {
    let delete = Arc::new(delete);
    let mut total = 0;
    loop {
        let step = delete.clone();
        let n = store.write(move |tx| step(tx)).await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The task: a pass after `FIRST_RUN_AFTER`, then one every `PERIOD`,
/// until `stopped` resolves. A failed pass is logged and retried at the
/// next period.
pub async fn run(state: Shared, stopped: impl Future<Output = ()>) {
    let policy = state.config.audit_retention;
    if policy.is_unlimited() {
        return;
    }
    let (store, metrics) = (&state.store, &state.metrics);
    for reason in ["age", "max_rows"] {
        metrics.audit_pruned(reason, 0);
    }
    let passes = async {
        tokio::time::sleep(FIRST_RUN_AFTER).await;
        loop {
            match policy.prune_once(store, now_ms()).await {
                Ok(p) => {
                    metrics.audit_pruned("age", p.by_age);
                    metrics.audit_pruned("max_rows", p.by_rows);
                    if p.by_age + p.by_rows > 0 {
                        tracing::info!(by_age = p.by_age, by_rows = p.by_rows, "pruned audit rows");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "audit retention pass failed"),
            }
            tokio::time::sleep(PERIOD).await;
        }
    };
    tokio::select! {
        () = passes => {},
        () = stopped => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::{insert_batch, NewEntry, Outcome};
    use crate::store::{test_store, write_tx};

    fn row(at_ms: i64) -> NewEntry {
        NewEntry {
            at_ms,
            actor: None,
            method: "POST".into(),
            path: "/v1/rules".into(),
            outcome: Outcome::Allow,
            reason: "ok".into(),
        }
    }

    #[tokio::test]
    async fn a_pass_applies_age_then_count() {
        let (_d, store) = test_store();
        let now = 100 * DAY_MS;
        // 12 rows 40 days old, then 8 rows of today.
        let rows: Vec<NewEntry> = (0..20)
            .map(|i| row(if i < 12 { now - 40 * DAY_MS } else { now - i }))
            .collect();
        store
            .write(move |tx| insert_batch(tx, &rows))
            .await
            .unwrap();

        let keep_all = Retention::default();
        assert_eq!(
            keep_all.prune_once(&store, now).await.unwrap(),
            Pruned::default()
        );
        let policy = Retention {
            max_age_days: Some(30),
            max_rows: Some(5),
        };
        let got = policy.prune_once(&store, now).await.unwrap();
        assert_eq!(
            got,
            Pruned {
                by_age: 12,
                by_rows: 3
            }
        );
        assert_eq!(
            policy.prune_once(&store, now).await.unwrap(),
            Pruned::default()
        );
        let left = store
            .call(|c| {
                let q = audit::Query {
                    limit: 100,
                    ..Default::default()
                };
                audit::query(c, &q)
            })
            .await
            .unwrap()
            .0;
        // The five newest by insertion survive.
        let at: Vec<i64> = left.iter().map(|r| now - r.at_ms).collect();
        assert_eq!(at, [19, 18, 17, 16, 15]);
    }

    #[tokio::test]
    async fn more_rows_than_a_batch_all_go() {
        let (_d, store) = test_store();
        let total = BATCH * 2 + 7;
        let rows: Vec<NewEntry> = (0..total).map(|i| row(i as i64)).collect();
        store
            .blocking(|c| write_tx(c, |tx| insert_batch(tx, &rows)))
            .unwrap();
        let policy = Retention {
            max_age_days: None,
            max_rows: Some(3),
        };
        let got = policy.prune_once(&store, 0).await.unwrap();
        assert_eq!(got.by_rows, total - 3);
    }
}
