//! Monthly traffic quotas, one per (client, owner): the allowance, when
//! its periods begin and end, and the bytes used in the current period.
//! Usage grows in the transaction that folds reports into the rollups
//! (`crate::traffic`), so it survives restarts of either side.

use super::db::{params, Connection, OptionalExtension, Row, Value};
use super::StoreResult;
use crate::quota::period::{self, Reset};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub client_id: String,
    pub owner: String,
    pub monthly_bytes: u64,
    pub reset: Reset,
    /// When the quota stops allowing traffic; None: no end.
    pub ends_at: Option<i64>,
    pub period_start: i64,
    pub used_bytes: u64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "client_id, owner, monthly_bytes, reset_day, ends_at, period_start, used_bytes, updated_at";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn row(r: &Row) -> StoreResult<QuotaRow> {
    let reset_day: Option<i64> = r.get(3)?;
    Ok(QuotaRow {
        client_id: r.get(0)?,
        owner: r.get(1)?,
        monthly_bytes: u64::try_from(r.get::<i64>(2)?).unwrap_or(0),
        reset: match reset_day {
            Some(d) => Reset::Monthly(u8::try_from(d).unwrap_or(1)),
            None => Reset::Never,
        },
        ends_at: r.get(4)?,
        period_start: r.get(5)?,
        used_bytes: u64::try_from(r.get::<i64>(6)?).unwrap_or(0),
        updated_at: r.get(7)?,
    })
}

pub fn get(conn: &Connection, client_id: &str, owner: &str) -> StoreResult<Option<QuotaRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM quotas WHERE client_id = ?1 AND owner = ?2"),
        params![client_id, owner],
        row,
    )
    .optional()
}

/// Quotas, optionally of one client and/or one owner, by client and owner.
pub fn list(
    conn: &Connection,
    client_id: Option<&str>,
    owner: Option<&str>,
) -> StoreResult<Vec<QuotaRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM quotas WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    for (column, value) in [("client_id", client_id), ("owner", owner)] {
        if let Some(v) = value {
            values.push(Value::Text(v.to_string()));
            sql.push_str(&format!(" AND {column} = ?{}", values.len()));
        }
    }
    sql.push_str(" ORDER BY client_id, owner");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(values, row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Creates or replaces a quota.
pub fn put(conn: &Connection, q: &QuotaRow) -> StoreResult<()> {
    let reset_day = match q.reset {
        Reset::Monthly(d) => Some(i64::from(d)),
        Reset::Never => None,
    };
    conn.execute(
        &format!(
            "INSERT INTO quotas ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(client_id, owner) DO UPDATE SET monthly_bytes = excluded.monthly_bytes,
                 reset_day = excluded.reset_day, ends_at = excluded.ends_at,
                 period_start = excluded.period_start, used_bytes = excluded.used_bytes,
                 updated_at = excluded.updated_at"
        ),
        params![
            q.client_id,
            q.owner,
            to_i64(q.monthly_bytes),
            reset_day,
            q.ends_at,
            q.period_start,
            to_i64(q.used_bytes),
            q.updated_at
        ],
    )?;
    Ok(())
}

/// Returns whether a quota existed.
pub fn delete(conn: &Connection, client_id: &str, owner: &str) -> StoreResult<bool> {
    Ok(conn.execute(
        "DELETE FROM quotas WHERE client_id = ?1 AND owner = ?2",
        params![client_id, owner],
    )? > 0)
}

/// Starts the current period's count again from zero; returns whether a
/// quota existed.
pub fn clear_usage(conn: &Connection, client_id: &str, owner: &str, now: i64) -> StoreResult<bool> {
    Ok(conn.execute(
        "UPDATE quotas SET used_bytes = 0, updated_at = ?3 WHERE client_id = ?1 AND owner = ?2",
        params![client_id, owner, now],
    )? > 0)
}

/// Counts bytes moved at `at` against the owner's quota on the client,
/// unless they belong to a period before the current one.
pub fn add_usage(
    conn: &Connection,
    client_id: &str,
    owner: &str,
    at: i64,
    bytes: u64,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE quotas SET used_bytes = used_bytes + ?3
         WHERE client_id = ?1 AND owner = ?2 AND period_start <= ?4",
        params![client_id, owner, to_i64(bytes), at],
    )?;
    Ok(())
}

/// Moves every quota whose period has ended into the period that holds
/// `now`, its usage back to zero. Returns how many rolled over.
pub fn roll_periods(conn: &Connection, now: i64) -> StoreResult<u64> {
    let mut rolled = 0;
    for q in list(conn, None, None)? {
        let start = period::period_start(q.reset, q.period_start, now);
        if start != q.period_start {
            conn.execute(
                "UPDATE quotas SET period_start = ?3, used_bytes = 0 WHERE client_id = ?1 AND owner = ?2",
                params![q.client_id, q.owner, start],
            )?;
            rolled += 1;
        }
    }
    Ok(rolled)
}
