//! Edge clients: identity, address, credential hash, revocation.

use super::db::{params, Connection, OptionalExtension, Row};
use super::{now, StoreError, StoreResult};
use portunus_domain::{DomainError, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    pub created_at: i64,
    pub enrolled_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLS: &str = "id, name, address, created_at, enrolled_at, revoked_at";

fn from_row(r: &Row) -> StoreResult<ClientRow> {
    Ok(ClientRow {
        id: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        created_at: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

pub fn not_found(reference: &str) -> StoreError {
    DomainError::new(
        ErrorCode::ClientNotFound,
        format!("no client {reference:?}"),
    )
    .into()
}

/// Finds a client by id or, failing that, by name.
pub fn find(conn: &Connection, reference: &str) -> StoreResult<Option<ClientRow>> {
    let sql = format!("SELECT {COLS} FROM clients WHERE id = ?1 UNION ALL SELECT {COLS} FROM clients WHERE name = ?1 LIMIT 1");
    conn.query_row(&sql, [reference], from_row).optional()
}

pub fn get(conn: &Connection, reference: &str) -> StoreResult<ClientRow> {
    find(conn, reference)?.ok_or_else(|| not_found(reference))
}

/// The client a bearer token belongs to, unless it was revoked.
pub fn by_token_hash(conn: &Connection, hash: &str) -> StoreResult<Option<ClientRow>> {
    let sql = format!("SELECT {COLS} FROM clients WHERE token_hash = ?1 AND revoked_at IS NULL");
    conn.query_row(&sql, [hash], from_row).optional()
}

pub fn list(conn: &Connection) -> StoreResult<Vec<ClientRow>> {
    let sql = format!("SELECT {COLS} FROM clients ORDER BY name");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// An enrolled, unrevoked client and how many of its rules are in each
/// state: what the fleet series report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounts {
    pub id: String,
    pub name: String,
    pub pending: i64,
    pub active: i64,
    pub failed: i64,
    pub disabled: i64,
}

pub fn rule_counts(conn: &Connection) -> StoreResult<Vec<RuleCounts>> {
    let mut stmt = conn.prepare(
        "SELECT c.id, c.name,
                CAST(COALESCE(SUM(CASE WHEN r.enabled = 1 AND r.state = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN r.enabled = 1 AND r.state = 'active' THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN r.enabled = 1 AND r.state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN r.enabled = 0 THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM clients c LEFT JOIN rules r ON r.client_id = c.id
         WHERE c.enrolled_at IS NOT NULL AND c.revoked_at IS NULL
         GROUP BY c.id ORDER BY c.name",
    )?;
    let rows = stmt
        .query_map(params![], |r| {
            Ok(RuleCounts {
                id: r.get(0)?,
                name: r.get(1)?,
                pending: r.get(2)?,
                active: r.get(3)?,
                failed: r.get(4)?,
                disabled: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Returns the client named `name`, creating it when absent. An address,
/// when given, replaces the stored one.
pub fn ensure(conn: &Connection, name: &str, address: Option<&str>) -> StoreResult<ClientRow> {
    if let Some(existing) = conn
        .query_row(
            &format!("SELECT {COLS} FROM clients WHERE name = ?1"),
            [name],
            from_row,
        )
        .optional()?
    {
        if let Some(addr) = address {
            conn.execute(
                "UPDATE clients SET address = ?1 WHERE id = ?2",
                params![addr, existing.id],
            )?;
        }
        return get(conn, &existing.id);
    }
    let id = portunus_domain::new_id();
    conn.execute(
        "INSERT INTO clients (id, name, address, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, name, address, now()],
    )?;
    get(conn, &id)
}

/// Installs a new bearer hash (enrollment redeem); clears any revocation.
pub fn set_token(conn: &Connection, id: &str, token_hash: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE clients SET token_hash = ?1, enrolled_at = ?2, revoked_at = NULL WHERE id = ?3",
        params![token_hash, now(), id],
    )?;
    Ok(())
}

pub fn set_address(conn: &Connection, id: &str, address: Option<&str>) -> StoreResult<()> {
    conn.execute(
        "UPDATE clients SET address = ?1 WHERE id = ?2",
        params![address, id],
    )?;
    Ok(())
}

/// Renames a client; names stay unique.
pub fn rename(conn: &Connection, id: &str, name: &str) -> StoreResult<()> {
    if find(conn, name)?.is_some_and(|other| other.id != id) {
        return Err(DomainError::new(
            ErrorCode::AlreadyExists,
            format!("a client named {name:?} exists"),
        )
        .into());
    }
    conn.execute(
        "UPDATE clients SET name = ?1 WHERE id = ?2",
        params![name, id],
    )?;
    Ok(())
}

pub fn revoke(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE clients SET token_hash = NULL, revoked_at = ?1 WHERE id = ?2",
        params![now(), id],
    )?;
    Ok(())
}

/// Deletes a revoked client with its rules and enrollments.
pub fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    let client = get(conn, id)?;
    if client.revoked_at.is_none() {
        return Err(DomainError::new(
            ErrorCode::ClientNotRevoked,
            format!(
                "client {:?} must be revoked before it is deleted",
                client.name
            ),
        )
        .into());
    }
    conn.execute("DELETE FROM clients WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, write_tx};

    #[test]
    fn ensure_find_revoke_delete() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let a = write_tx(c, |tx| ensure(tx, "edge-01", None))?;
                let again = write_tx(c, |tx| ensure(tx, "edge-01", Some("203.0.113.7")))?;
                assert_eq!(a.id, again.id);
                assert_eq!(again.address.as_deref(), Some("203.0.113.7"));
                assert_eq!(get(c, "edge-01")?.id, a.id);
                assert_eq!(get(c, &a.id)?.name, "edge-01");
                set_token(c, &a.id, "h1")?;
                assert_eq!(by_token_hash(c, "h1")?.map(|r| r.id), Some(a.id.clone()));
                let err = DomainError::from(delete(c, &a.id).unwrap_err());
                assert_eq!(err.code, ErrorCode::ClientNotRevoked);
                revoke(c, &a.id)?;
                assert!(by_token_hash(c, "h1")?.is_none());
                delete(c, &a.id)?;
                assert!(find(c, "edge-01")?.is_none());
                Ok(())
            })
            .unwrap();
    }
}
