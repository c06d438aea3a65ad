//! Per-owner rate-limit envelopes: one per (client, owner). An envelope caps
//! the sum of that owner's rules on the client.

use super::db::{params, Connection, OptionalExtension};
use super::{now, StoreError, StoreResult};
use portunus_domain::rule::RateLimit;

fn decode(json: String) -> StoreResult<RateLimit> {
    serde_json::from_str(&json)
        .map_err(|e| StoreError::Internal(format!("column 0 holds bad JSON: {e}")))
}

pub fn get(conn: &Connection, client_id: &str, owner: &str) -> StoreResult<Option<RateLimit>> {
    let json: Option<String> = conn
        .query_row(
            "SELECT rate_limit FROM owner_rate_limits WHERE client_id = ?1 AND owner = ?2",
            params![client_id, owner],
            |r| r.get(0),
        )
        .optional()?;
    json.map(decode).transpose()
}

/// Every envelope on a client, by owner.
pub fn list(conn: &Connection, client_id: &str) -> StoreResult<Vec<(String, RateLimit)>> {
    let mut stmt = conn.prepare(
        "SELECT owner, rate_limit FROM owner_rate_limits WHERE client_id = ?1 ORDER BY owner",
    )?;
    let rows = stmt
        .query_map([client_id], |r| {
            Ok((r.get::<String>(0)?, decode(r.get(1)?)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Owners with rules on the client, and how many rules each has.
pub fn owners_with_rules(conn: &Connection, client_id: &str) -> StoreResult<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT owner, COUNT(*) FROM rules WHERE client_id = ?1 GROUP BY owner ORDER BY owner",
    )?;
    let rows = stmt
        .query_map([client_id], |r| Ok((r.get(0)?, r.get::<i64>(1)? as u64)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn set(conn: &Connection, client_id: &str, owner: &str, limit: &RateLimit) -> StoreResult<()> {
    let json = serde_json::to_string(limit).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO owner_rate_limits (client_id, owner, rate_limit, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(client_id, owner) DO UPDATE SET rate_limit = excluded.rate_limit, updated_at = excluded.updated_at",
        params![client_id, owner, json, now()],
    )?;
    Ok(())
}

/// Returns whether an envelope existed.
pub fn delete(conn: &Connection, client_id: &str, owner: &str) -> StoreResult<bool> {
    Ok(conn.execute(
        "DELETE FROM owner_rate_limits WHERE client_id = ?1 AND owner = ?2",
        params![client_id, owner],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{clients, test_store, users, write_tx};

    #[test]
    fn set_get_list_delete() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| {
                    users::create(tx, "alice", "Alice", users::Role::User)
                })?;
                let client = write_tx(c, |tx| clients::ensure(tx, "edge", None))?;
                assert_eq!(get(c, &client.id, "alice")?, None);
                let lim = RateLimit {
                    bandwidth_in_bps: Some(1000),
                    ..Default::default()
                };
                set(c, &client.id, "alice", &lim)?;
                let lim2 = RateLimit {
                    concurrent_connections: Some(5),
                    ..Default::default()
                };
                set(c, &client.id, "alice", &lim2)?;
                assert_eq!(get(c, &client.id, "alice")?, Some(lim2));
                assert_eq!(list(c, &client.id)?, vec![("alice".to_string(), lim2)]);
                assert!(delete(c, &client.id, "alice")?);
                assert!(!delete(c, &client.id, "alice")?);
                Ok(())
            })
            .unwrap();
    }
}
