//! Traffic rollups: per-rule buckets of one minute and one hour, and the
//! cursor of each rule (the last report folded into them). The arithmetic
//! lives in `crate::traffic`; this module only reads and writes rows.

use super::db::{params, Connection, OptionalExtension, Value};
use super::StoreResult;
use crate::traffic::{Counters, Cursor, Grain};

fn table(grain: Grain) -> &'static str {
    match grain {
        Grain::Minute => "traffic_minute",
        Grain::Hour => "traffic_hour",
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub fn cursor(conn: &Connection, rule_id: &str) -> StoreResult<Option<Cursor>> {
    conn.query_row(
        "SELECT run_id, instance, seq, bytes_in, bytes_out, connections
             FROM traffic_cursors WHERE rule_id = ?1",
        [rule_id],
        |r| {
            Ok(Cursor {
                run_id: r.get(0)?,
                instance: to_u64(r.get(1)?),
                seq: to_u64(r.get(2)?),
                counters: Counters {
                    bytes_in: to_u64(r.get(3)?),
                    bytes_out: to_u64(r.get(4)?),
                    connections: to_u64(r.get(5)?),
                },
            })
        },
    )
    .optional()
}

pub fn put_cursor(conn: &Connection, rule_id: &str, c: &Cursor, now: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO traffic_cursors (rule_id, run_id, instance, seq, bytes_in, bytes_out, connections, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(rule_id) DO UPDATE SET run_id = excluded.run_id, instance = excluded.instance,
             seq = excluded.seq, bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out,
             connections = excluded.connections, updated_at = excluded.updated_at",
        params![
            rule_id,
            c.run_id,
            to_i64(c.instance),
            to_i64(c.seq),
            to_i64(c.counters.bytes_in),
            to_i64(c.counters.bytes_out),
            to_i64(c.counters.connections),
            now
        ],
    )?;
    Ok(())
}

/// Where a rule's delta goes: its bucket of `grain` that holds `start`.
pub struct BucketKey<'a> {
    pub rule_id: &'a str,
    pub client_id: &'a str,
    pub owner: &'a str,
    pub start: i64,
}

/// Adds `delta` to a bucket, creating it.
pub fn add(
    conn: &Connection,
    grain: Grain,
    key: &BucketKey<'_>,
    delta: &Counters,
) -> StoreResult<()> {
    let t = table(grain);
    conn.execute(
        &format!(
            "INSERT INTO {t} (rule_id, client_id, owner, bucket_start, bytes_in, bytes_out, connections)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(rule_id, bucket_start) DO UPDATE SET
                 bytes_in = {t}.bytes_in + excluded.bytes_in,
                 bytes_out = {t}.bytes_out + excluded.bytes_out,
                 connections = {t}.connections + excluded.connections"
        ),
        params![
            key.rule_id,
            key.client_id,
            key.owner,
            key.start,
            to_i64(delta.bytes_in),
            to_i64(delta.bytes_out),
            to_i64(delta.connections)
        ],
    )?;
    Ok(())
}

/// Which rules a history query sums: every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub rule_id: Option<String>,
    pub client_id: Option<String>,
    pub owner: Option<String>,
}

/// The buckets of `grain` in `[since, until)` whose rules pass `filter`,
/// summed per bucket start, oldest first. Empty buckets are absent.
pub fn sums(
    conn: &Connection,
    grain: Grain,
    filter: &Filter,
    since: i64,
    until: i64,
) -> StoreResult<Vec<(i64, Counters)>> {
    let mut sql = format!(
        "SELECT bucket_start, CAST(SUM(bytes_in) AS BIGINT), CAST(SUM(bytes_out) AS BIGINT),
                CAST(SUM(connections) AS BIGINT) FROM {}
         WHERE bucket_start >= ?1 AND bucket_start < ?2",
        table(grain)
    );
    let mut values = vec![Value::Int(since), Value::Int(until)];
    for (column, value) in [
        ("rule_id", &filter.rule_id),
        ("client_id", &filter.client_id),
        ("owner", &filter.owner),
    ] {
        if let Some(v) = value {
            values.push(Value::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ?{}", values.len()));
        }
    }
    sql.push_str(" GROUP BY bucket_start ORDER BY bucket_start");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(values, |r| {
            Ok((
                r.get::<i64>(0)?,
                Counters {
                    bytes_in: to_u64(r.get(1)?),
                    bytes_out: to_u64(r.get(2)?),
                    connections: to_u64(r.get(3)?),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Bytes both ways that `owner`'s rules on a client moved in hours
/// starting at or after `since` (an hour boundary).
pub fn bytes_since(
    conn: &Connection,
    client_id: &str,
    owner: &str,
    since: i64,
) -> StoreResult<u64> {
    let total: Option<i64> = conn.query_row(
        "SELECT CAST(SUM(bytes_in + bytes_out) AS BIGINT) FROM traffic_hour
         WHERE client_id = ?1 AND owner = ?2 AND bucket_start >= ?3",
        params![client_id, owner, since],
        |r| r.get(0),
    )?;
    Ok(total.map_or(0, to_u64))
}

/// Deletes the buckets of `grain` that start before `before`, one client
/// at a time through the client index; returns how many went.
pub fn prune(conn: &Connection, grain: Grain, before: i64) -> StoreResult<u64> {
    let t = table(grain);
    let clients: Vec<String> = conn
        .prepare(&format!("SELECT DISTINCT client_id FROM {t}"))?
        .query_map(params![], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut deleted = 0;
    for client in clients {
        deleted += conn.execute(
            &format!("DELETE FROM {t} WHERE client_id = ?1 AND bucket_start < ?2"),
            params![client, before],
        )? as u64;
    }
    Ok(deleted)
}

/// Forgets the cursors of rules that have not reported since `before`.
pub fn prune_cursors(conn: &Connection, before: i64) -> StoreResult<u64> {
    Ok(conn.execute(
        "DELETE FROM traffic_cursors WHERE updated_at < ?1",
        [before],
    )? as u64)
}
