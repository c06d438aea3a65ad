//! The durable audit trail: one row per operator API request. Rows hold
//! who, what route, and the decision; never a secret or a request body.

use super::db::{params, Connection, OptionalExtension, Row};
use super::StoreResult;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub at_ms: i64,
    pub actor: Option<String>,
    pub method: String,
    pub path: String,
    pub outcome: Outcome,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Option<String>,
    pub method: String,
    pub path: String,
    pub outcome: String,
    pub reason: String,
}

fn from_row(r: &Row) -> StoreResult<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        actor: r.get(2)?,
        method: r.get(3)?,
        path: r.get(4)?,
        outcome: r.get(5)?,
        reason: r.get(6)?,
    })
}

/// Appends a batch. Run inside a write transaction so a batch costs one
/// commit.
pub fn insert_batch(conn: &Connection, entries: &[NewEntry]) -> StoreResult<()> {
    for e in entries {
        conn.execute(
            "INSERT INTO audit (at_ms, actor, method, path, outcome, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
            e.at_ms,
            e.actor,
            e.method,
            e.path,
            e.outcome.as_str(),
            e.reason
            ],
        )?;
    }
    Ok(())
}

/// A page of the trail, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub limit: u32,
    pub outcome: Option<Outcome>,
    /// Inclusive lower bound, Unix milliseconds.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound, Unix milliseconds.
    pub until_ms: Option<i64>,
    /// Only rows older than this id: the cursor of the previous page.
    pub before_id: Option<i64>,
    /// Only rows of this actor (user id).
    pub actor: Option<String>,
}

/// Rows matching `q`, and the cursor of the next page when there may be one.
pub fn query(conn: &Connection, q: &Query) -> StoreResult<(Vec<Entry>, Option<i64>)> {
    let mut stmt = conn.prepare(
        "SELECT id, at_ms, actor, method, path, outcome, reason FROM audit
         WHERE (CAST(?1 AS TEXT) IS NULL OR outcome = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2)
           AND (CAST(?3 AS BIGINT) IS NULL OR at_ms < ?3) AND (CAST(?4 AS BIGINT) IS NULL OR id < ?4)
           AND (CAST(?6 AS TEXT) IS NULL OR actor = ?6)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows: Vec<Entry> = stmt
        .query_map(
            params![
                q.outcome.map(Outcome::as_str),
                q.since_ms,
                q.until_ms,
                q.before_id,
                q.limit,
                q.actor
            ],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    let next = match rows.last() {
        Some(last) if rows.len() == q.limit as usize => Some(last.id),
        _ => None,
    };
    Ok((rows, next))
}

/// Deletes (or, dry, counts) the rows older than `before_ms`.
pub fn prune(conn: &Connection, before_ms: i64, dry_run: bool) -> StoreResult<u64> {
    let n = if dry_run {
        conn.query_row(
            "SELECT COUNT(*) FROM audit WHERE at_ms < ?1",
            [before_ms],
            |r| r.get::<i64>(0),
        )? as u64
    } else {
        conn.execute("DELETE FROM audit WHERE at_ms < ?1", [before_ms])? as u64
    };
    Ok(n)
}

/// Deletes at most `batch` rows older than `before_ms`; returns how many
/// went. Retention deletes in batches so that API writes interleave.
pub fn prune_older_batch(conn: &Connection, before_ms: i64, batch: u64) -> StoreResult<u64> {
    Ok(conn.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < ?1 LIMIT ?2)",
        params![before_ms, batch],
    )? as u64)
}

/// The newest row id beyond the newest `keep` rows: that row and every
/// older one exceed the cap. None when there are at most `keep` rows.
pub fn first_id_beyond(conn: &Connection, keep: u64) -> StoreResult<Option<i64>> {
    conn.query_row(
        "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1",
        [keep],
        |r| r.get(0),
    )
    .optional()
}

/// Deletes at most `batch` of the rows whose id is at most `last_id`,
/// oldest first; returns how many went.
pub fn prune_through_id_batch(conn: &Connection, last_id: i64, batch: u64) -> StoreResult<u64> {
    Ok(conn.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        params![last_id, batch],
    )? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, write_tx};

    fn stored(c: &Connection) -> Vec<i64> {
        let q = Query {
            limit: 1000,
            ..Default::default()
        };
        let mut at: Vec<i64> = query(c, &q).unwrap().0.iter().map(|r| r.at_ms).collect();
        at.sort();
        at
    }

    #[test]
    fn retention_prunes_by_age_and_by_count_in_batches() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                // Insertion order is id order; times are deliberately not
                // sorted, as request times of one batch need not be.
                let times = [500, 100, 300, 200, 400, 900, 700, 800, 600, 1000];
                let batch: Vec<NewEntry> =
                    times.iter().map(|&t| entry(t, Outcome::Allow)).collect();
                write_tx(c, |tx| insert_batch(tx, &batch))?;

                assert_eq!(prune_older_batch(c, 450, 2)?, 2);
                assert_eq!(prune_older_batch(c, 450, 2)?, 2);
                assert_eq!(prune_older_batch(c, 450, 2)?, 0);
                assert_eq!(stored(c), [500, 600, 700, 800, 900, 1000]);

                assert_eq!(first_id_beyond(c, 6)?, None);
                // The cap keeps the newest rows by insertion, not by time.
                let last = first_id_beyond(c, 4)?.expect("two rows too many");
                assert_eq!(prune_through_id_batch(c, last, 1)?, 1);
                assert_eq!(prune_through_id_batch(c, last, 5)?, 1);
                assert_eq!(prune_through_id_batch(c, last, 5)?, 0);
                assert_eq!(stored(c), [600, 700, 800, 1000]);
                Ok(())
            })
            .unwrap();
    }

    fn entry(at_ms: i64, outcome: Outcome) -> NewEntry {
        NewEntry {
            at_ms,
            actor: Some("alice".into()),
            method: "GET".into(),
            path: "/v1/rules".into(),
            outcome,
            reason: if outcome == Outcome::Allow {
                "ok".into()
            } else {
                "forbidden".into()
            },
        }
    }

    #[test]
    fn cursor_pages_newest_first_without_gaps_or_repeats() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let batch: Vec<NewEntry> = (0..7)
                    .map(|i| {
                        let o = if i % 3 == 0 {
                            Outcome::Deny
                        } else {
                            Outcome::Allow
                        };
                        entry(1000 + i, o)
                    })
                    .collect();
                write_tx(c, |tx| insert_batch(tx, &batch))?;
                let mut q = Query {
                    limit: 3,
                    ..Default::default()
                };
                let mut seen = Vec::new();
                let mut pages = 0;
                loop {
                    let (rows, next) = query(c, &q)?;
                    pages += 1;
                    seen.extend(rows.iter().map(|r| r.at_ms));
                    match next {
                        Some(id) => q.before_id = Some(id),
                        None => break,
                    }
                }
                assert_eq!(seen, (1000..1007).rev().collect::<Vec<_>>());
                // 3 + 3 + 1: the short page ends the walk.
                assert_eq!(pages, 3);

                let deny = Query {
                    limit: 10,
                    outcome: Some(Outcome::Deny),
                    ..Default::default()
                };
                let (rows, next) = query(c, &deny)?;
                assert_eq!(
                    rows.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
                    [1006, 1003, 1000]
                );
                assert_eq!(next, None);
                let window = Query {
                    limit: 10,
                    since_ms: Some(1002),
                    until_ms: Some(1004),
                    ..Default::default()
                };
                let (rows, _) = query(c, &window)?;
                assert_eq!(
                    rows.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
                    [1003, 1002]
                );

                let by = |actor: &str| {
                    let q = Query {
                        limit: 100,
                        actor: Some(actor.into()),
                        ..Default::default()
                    };
                    query(c, &q).map(|(rows, _)| rows.len())
                };
                assert_eq!((by("alice")?, by("bob")?), (7, 0));

                assert_eq!(prune(c, 1003, true)?, 3);
                assert_eq!(
                    query(
                        c,
                        &Query {
                            limit: 100,
                            ..Default::default()
                        }
                    )?
                    .0
                    .len(),
                    7
                );
                assert_eq!(prune(c, 1003, false)?, 3);
                assert_eq!(prune(c, 1003, true)?, 0);
                assert_eq!(
                    query(
                        c,
                        &Query {
                            limit: 100,
                            ..Default::default()
                        }
                    )?
                    .0
                    .len(),
                    4
                );
                Ok(())
            })
            .unwrap();
    }
}
