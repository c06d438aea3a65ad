//! Traffic history: the edges' cumulative reports folded into per-rule
//! buckets of one minute and one hour, and quota usage counted from the
//! same deltas in the same transaction.
//!
//! Reports are queued in memory as they arrive (`Recorder::record`, no
//! I/O on the control stream's task) and folded in batches by one task
//! (`run`), on the store's blocking pool. A batch also moves each rule's
//! cursor, so a report folded once is never folded again, whether the
//! server, the edge or the stream restarts in between.

mod fold;
pub mod query;
#[cfg(test)]
mod tests;

pub use fold::{step, Counters, Cursor, Step};

use crate::state::Shared;
use crate::store::Transaction;
use crate::store::{self, quotas, traffic::BucketKey, StoreResult};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// The two bucket sizes history keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Minute,
    Hour,
}

impl Grain {
    pub fn secs(self) -> i64 {
        match self {
            Grain::Minute => 60,
            Grain::Hour => 3600,
        }
    }

    /// The start of the bucket that holds `at`.
    pub fn floor(self, at: i64) -> i64 {
        at - at.rem_euclid(self.secs())
    }
}

/// One rule's counters from one report, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub rule_id: String,
    pub client_id: String,
    pub owner: String,
    pub at: i64,
    pub report: Cursor,
}

/// How often queued reports are folded. Short, so history and quotas
/// follow traffic within about one report interval; each fold is one
/// transaction whatever the number of reports.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);
/// Quotas are evaluated at least this often, for periods that roll over
/// and end dates that pass while no report arrives.
const EVALUATE_EVERY: Duration = Duration::from_secs(30);
/// Reports queued beyond this are dropped (and logged): a later report
/// of the same rule carries their bytes, since counters are cumulative.
const QUEUE_CAP: usize = 100_000;

/// The queue between the control streams and the fold task.
#[derive(Default)]
pub struct Recorder {
    queue: Mutex<Vec<Sample>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Recorder {
    pub fn record(&self, sample: Sample) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= QUEUE_CAP {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        queue.push(sample);
    }

    fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a fold changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// Reports that added something.
    pub counted: usize,
    /// Reports folded before (duplicates, late ones).
    pub skipped: usize,
    /// Quotas that moved to a new period.
    pub rolled: u64,
    /// Clients whose owners' usage grew.
    pub clients: BTreeSet<String>,
}

/// Folds `samples` (in arrival order) into the rollups and quota usage in
/// one transaction, after moving quotas whose period ended at `now` into
/// the current one.
pub fn fold(tx: &Transaction, samples: &[Sample], now: i64) -> StoreResult<Folded> {
    let mut out = Folded {
        rolled: quotas::roll_periods(tx, now)?,
        ..Folded::default()
    };
    let mut cursors: HashMap<&str, Option<Cursor>> = HashMap::new();
    for s in samples {
        let cursor = match cursors.get(s.rule_id.as_str()) {
            Some(c) => c.clone(),
            None => store::traffic::cursor(tx, &s.rule_id)?,
        };
        let delta = match step(cursor.as_ref(), &s.report) {
            Step::Skip => {
                out.skipped += 1;
                continue;
            }
            Step::Count(d) => d,
        };
        if !delta.is_zero() {
            for grain in [Grain::Minute, Grain::Hour] {
                let key = BucketKey {
                    rule_id: &s.rule_id,
                    client_id: &s.client_id,
                    owner: &s.owner,
                    start: grain.floor(s.at),
                };
                store::traffic::add(tx, grain, &key, &delta)?;
            }
            if delta.bytes() > 0 {
                quotas::add_usage(tx, &s.client_id, &s.owner, s.at, delta.bytes())?;
                out.clients.insert(s.client_id.clone());
            }
            out.counted += 1;
        }
        store::traffic::put_cursor(tx, &s.rule_id, &s.report, now)?;
        cursors.insert(&s.rule_id, Some(s.report.clone()));
    }
    Ok(out)
}

/// Folds whatever is queued now.
pub async fn fold_queued(state: &Shared) -> StoreResult<Folded> {
    let samples = state.traffic.take();
    let dropped = state
        .traffic
        .dropped
        .swap(0, std::sync::atomic::Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(dropped, "traffic reports dropped: the fold queue was full");
    }
    let now = store::now();
    state.store.write(move |tx| fold(tx, &samples, now)).await
}

/// The fold task: folds queued reports every `FOLD_EVERY` and evaluates
/// quotas when usage or a period changed, and every `EVALUATE_EVERY`.
/// Runs until the server stops; a last fold on the way out is `serve`'s.
pub async fn run(state: Shared) {
    let mut tick = tokio::time::interval(FOLD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_evaluation = tokio::time::Instant::now();
    let mut next_prune = tokio::time::Instant::now() + crate::retention::FIRST_RUN_AFTER;
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= next_prune {
            next_prune += crate::retention::PERIOD;
            match prune(&state, store::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(buckets = n, "pruned traffic history"),
                Err(e) => tracing::warn!(error = %e, "traffic retention pass failed"),
            }
        }
        // An idle server takes no write lock, but still rolls quota
        // periods over on the periodic pass.
        let due = last_evaluation.elapsed() >= EVALUATE_EVERY;
        let changed = if state.traffic.is_empty() && !due {
            false
        } else {
            match fold_queued(&state).await {
                Ok(f) => f.rolled > 0 || !f.clients.is_empty(),
                Err(e) => {
                    tracing::warn!(error = %e, "traffic reports not folded; the next pass retries what later reports carry");
                    false
                }
            }
        };
        if changed || due {
            last_evaluation = tokio::time::Instant::now();
            if let Err(e) = crate::quota::evaluate(&state).await {
                tracing::warn!(error = %e, "quotas not evaluated");
            }
        }
    }
}

/// How long each bucket size is kept (`server.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub minute_days: u32,
    pub hour_days: u32,
}

const DAY: i64 = 86_400;

/// Deletes buckets past their retention and cursors of rules gone that
/// long (a rule that reports again starts over from its counters).
pub async fn prune(state: &Shared, now: i64) -> StoreResult<u64> {
    let r = state.config.traffic_retention;
    let minute_before = now - i64::from(r.minute_days) * DAY;
    let hour_before = now - i64::from(r.hour_days) * DAY;
    state
        .store
        .write(move |tx| {
            let mut n = store::traffic::prune(tx, Grain::Minute, minute_before)?;
            n += store::traffic::prune(tx, Grain::Hour, hour_before)?;
            store::traffic::prune_cursors(tx, hour_before)?;
            Ok(n)
        })
        .await
}
