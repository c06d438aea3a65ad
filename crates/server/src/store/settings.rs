//! Operator settings that outlive a restart (key/value).

use super::db::{params, Connection, OptionalExtension};
use super::StoreResult;

pub const ADVERTISED_ENDPOINT: &str = "advertised_endpoint";

pub fn get(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}

/// Sets a value, or clears it with `None`.
pub fn set(conn: &Connection, key: &str, value: Option<&str>) -> StoreResult<()> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => conn.execute("DELETE FROM settings WHERE key = ?1", [key])?,
    };
    Ok(())
}
