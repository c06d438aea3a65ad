//! Rules: their spec (JSON), owner, client and last known state.

use super::{now, StoreError, StoreResult};
use portunus_domain::rule::{check_listen_conflict, RuleSpec};
use portunus_domain::{DomainError, ErrorCode};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// `pending` until the client reports an outcome, then `active` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Pending,
    Active,
    Failed,
}

impl RuleState {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Pending => "pending",
            RuleState::Active => "active",
            RuleState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RuleState {
        match s {
            "active" => RuleState::Active,
            "failed" => RuleState::Failed,
            _ => RuleState::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub owner: String,
    pub spec: RuleSpec,
    pub state: RuleState,
    pub reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT r.id, r.client_id, c.name, r.owner, r.spec, r.state, r.reason, r.created_at, r.updated_at
                      FROM rules r JOIN clients c ON c.id = r.client_id";

fn from_row(r: &Row) -> rusqlite::Result<RuleRow> {
    let spec: String = r.get(4)?;
    let spec = serde_json::from_str(&spec).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let state: String = r.get(5)?;
    Ok(RuleRow {
        id: r.get(0)?,
        client_id: r.get(1)?,
        client_name: r.get(2)?,
        owner: r.get(3)?,
        spec,
        state: RuleState::parse(&state),
        reason: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

pub fn not_found(id: &str) -> StoreError {
    DomainError::new(ErrorCode::RuleNotFound, format!("no rule {id:?}")).into()
}

pub fn find(conn: &Connection, id: &str) -> StoreResult<Option<RuleRow>> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE r.id = ?1"), [id], from_row)
        .optional()?)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<RuleRow> {
    find(conn, id)?.ok_or_else(|| not_found(id))
}

/// Rules filtered by client id and owner, oldest first.
pub fn list(
    conn: &Connection,
    client_id: Option<&str>,
    owner: Option<&str>,
) -> StoreResult<Vec<RuleRow>> {
    let sql = format!(
        "{SELECT} WHERE (?1 IS NULL OR r.client_id = ?1) AND (?2 IS NULL OR r.owner = ?2) ORDER BY r.created_at, r.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![client_id, owner], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Inserts a pending rule after checking it against the client's other
/// rules. Run inside a write transaction so the check and the insert are
/// one step.
pub fn insert(
    conn: &Connection,
    client_id: &str,
    owner: &str,
    spec: &RuleSpec,
) -> StoreResult<RuleRow> {
    let existing = list(conn, Some(client_id), None)?;
    check_listen_conflict(existing.iter().map(|r| &r.spec), spec)?;
    let id = portunus_domain::new_id();
    let t = now();
    let json = serde_json::to_string(spec).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO rules (id, client_id, owner, protocol, listen_port, listen_port_end, spec, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
        params![
            id,
            client_id,
            owner,
            spec.protocol.as_str(),
            spec.listen_port,
            spec.listen_port_end.unwrap_or(spec.listen_port),
            json,
            t
        ],
    )?;
    get(conn, &id)
}

/// Records a client-reported outcome. Unknown ids are ignored: the rule
/// may have been removed while the outcome was in flight.
pub fn set_state(
    conn: &Connection,
    id: &str,
    state: RuleState,
    reason: Option<&str>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE rules SET state = ?1, reason = ?2, updated_at = ?3 WHERE id = ?4",
        params![state.as_str(), reason, now(), id],
    )?;
    Ok(())
}

/// Replaces a rule's spec (a cap change) and marks it pending until the
/// client confirms it.
pub fn set_spec(conn: &Connection, id: &str, spec: &RuleSpec) -> StoreResult<()> {
    let json = serde_json::to_string(spec).map_err(|e| StoreError::Internal(e.to_string()))?;
    if conn.execute(
        "UPDATE rules SET spec = ?1, state = 'pending', reason = NULL, updated_at = ?2 WHERE id = ?3",
        params![json, now(), id],
    )? == 0
    {
        return Err(not_found(id));
    }
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    if conn.execute("DELETE FROM rules WHERE id = ?1", [id])? == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{clients, test_store, users, write_tx};
    use portunus_domain::rule::Protocol;

    fn spec(port: u32) -> RuleSpec {
        RuleSpec::single(Protocol::Tcp, port, "127.0.0.1", 9)
    }

    #[test]
    fn insert_conflict_state_delete() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| {
                    users::create(tx, "_superadmin", "Admin", users::Role::Superadmin)
                })?;
                let client = write_tx(c, |tx| clients::ensure(tx, "edge", None))?;
                let r = write_tx(c, |tx| insert(tx, &client.id, "_superadmin", &spec(8080)))?;
                assert_eq!(r.state, RuleState::Pending);
                assert_eq!(r.client_name, "edge");
                let dup = write_tx(c, |tx| insert(tx, &client.id, "_superadmin", &spec(8080)))
                    .unwrap_err();
                assert_eq!(DomainError::from(dup).code, ErrorCode::ListenPortConflict);
                set_state(c, &r.id, RuleState::Failed, Some("port_in_use"))?;
                let back = get(c, &r.id)?;
                assert_eq!(
                    (back.state, back.reason.as_deref()),
                    (RuleState::Failed, Some("port_in_use"))
                );
                assert_eq!(back.spec, spec(8080));
                assert_eq!(list(c, Some(&client.id), None)?.len(), 1);
                assert_eq!(list(c, None, Some("nobody"))?.len(), 0);
                delete(c, &r.id)?;
                assert!(find(c, &r.id)?.is_none());
                Ok(())
            })
            .unwrap();
    }
}
