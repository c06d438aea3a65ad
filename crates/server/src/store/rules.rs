//! Rules: their spec (JSON), owner, client and last known state.

use super::db::{params, Connection, OptionalExtension, Row};
use super::{now, StoreError, StoreResult};
use portunus_domain::rule::{check_listen_conflict, RuleSpec};
use portunus_domain::{DomainError, ErrorCode};

/// `pending` until the client reports an outcome, then `active` or
/// `failed`; `disabled` while an operator has switched the rule off (it is
/// then not on its client at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Pending,
    Active,
    Failed,
    Disabled,
}

impl RuleState {
    /// The stored spelling. `disabled` is never stored: it comes from the
    /// `enabled` column, so an outcome in flight cannot overwrite it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Pending | RuleState::Disabled => "pending",
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
    pub enabled: bool,
    pub label: Label,
}

/// What operators call a rule and say about it. It stays on the server:
/// the edge never learns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Label {
    pub name: Option<String>,
    pub note: Option<String>,
}

const SELECT: &str = "SELECT r.id, r.client_id, c.name, r.owner, r.spec, r.state, r.reason, r.created_at, r.updated_at,
                             r.enabled, r.name, r.note
                      FROM rules r JOIN clients c ON c.id = r.client_id";

fn from_row(r: &Row) -> StoreResult<RuleRow> {
    let spec: String = r.get(4)?;
    let spec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Internal(format!("column 4 holds bad JSON: {e}")))?;
    let state: String = r.get(5)?;
    let enabled: bool = r.get(9)?;
    Ok(RuleRow {
        id: r.get(0)?,
        client_id: r.get(1)?,
        client_name: r.get(2)?,
        owner: r.get(3)?,
        spec,
        state: if enabled {
            RuleState::parse(&state)
        } else {
            RuleState::Disabled
        },
        reason: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        enabled,
        label: Label {
            name: r.get(10)?,
            note: r.get(11)?,
        },
    })
}

pub fn not_found(id: &str) -> StoreError {
    DomainError::new(ErrorCode::RuleNotFound, format!("no rule {id:?}")).into()
}

pub fn find(conn: &Connection, id: &str) -> StoreResult<Option<RuleRow>> {
    conn.query_row(&format!("{SELECT} WHERE r.id = ?1"), [id], from_row)
        .optional()
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
    list_named(conn, client_id, owner, None)
}

/// Like [`list`], also filtered by rule name.
pub fn list_named(
    conn: &Connection,
    client_id: Option<&str>,
    owner: Option<&str>,
    name: Option<&str>,
) -> StoreResult<Vec<RuleRow>> {
    let sql = format!(
        "{SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR r.client_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR r.owner = ?2)
                    AND (CAST(?3 AS TEXT) IS NULL OR r.name = ?3) ORDER BY r.created_at, r.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![client_id, owner, name], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The rules a connected client runs: every enabled one.
pub fn list_enabled(conn: &Connection, client_id: &str) -> StoreResult<Vec<RuleRow>> {
    Ok(list(conn, Some(client_id), None)?
        .into_iter()
        .filter(|r| r.enabled)
        .collect())
}

/// Refuses a name another rule of the client carries. The unique index
/// would refuse it too, with a less helpful message.
fn check_name_free(
    conn: &Connection,
    client_id: &str,
    name: Option<&str>,
    except: Option<&str>,
) -> StoreResult<()> {
    let Some(name) = name else { return Ok(()) };
    let taken = list_named(conn, Some(client_id), None, Some(name))?
        .into_iter()
        .any(|r| Some(r.id.as_str()) != except);
    if taken {
        return Err(DomainError::field(
            ErrorCode::AlreadyExists,
            "name",
            format!("another rule on this client is named {name:?}"),
        )
        .into());
    }
    Ok(())
}

/// Inserts a pending rule after checking it against the client's other
/// rules (disabled ones keep their ports and names). Run inside a write
/// transaction so the checks and the insert are one step.
pub fn insert(
    conn: &Connection,
    client_id: &str,
    owner: &str,
    spec: &RuleSpec,
    label: &Label,
) -> StoreResult<RuleRow> {
    let existing = list(conn, Some(client_id), None)?;
    check_listen_conflict(existing.iter().map(|r| &r.spec), spec)?;
    check_name_free(conn, client_id, label.name.as_deref(), None)?;
    let id = portunus_domain::new_id();
    let t = now();
    let json = serde_json::to_string(spec).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO rules (id, client_id, owner, protocol, listen_port, listen_port_end, spec, state, created_at, updated_at, name, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9, ?10)",
        params![
            id,
            client_id,
            owner,
            spec.protocol.as_str(),
            spec.listen_port,
            spec.listen_port_end.unwrap_or(spec.listen_port),
            json,
            t,
            label.name,
            label.note
        ],
    )?;
    get(conn, &id)
}

/// Replaces a rule's name and note.
pub fn set_label(conn: &Connection, id: &str, label: &Label) -> StoreResult<()> {
    let row = get(conn, id)?;
    check_name_free(conn, &row.client_id, label.name.as_deref(), Some(id))?;
    conn.execute(
        "UPDATE rules SET name = ?1, note = ?2, updated_at = ?3 WHERE id = ?4",
        params![label.name, label.note, now(), id],
    )?;
    Ok(())
}

/// Switches a rule on or off. Either way it is pending until its client
/// reports again: an enabled rule is sent, a disabled one taken off.
pub fn set_enabled(conn: &Connection, id: &str, enabled: bool) -> StoreResult<()> {
    if conn.execute(
        "UPDATE rules SET enabled = ?1, state = 'pending', reason = NULL, updated_at = ?2 WHERE id = ?3",
        params![enabled, now(), id],
    )? == 0
    {
        return Err(not_found(id));
    }
    Ok(())
}

/// Records a client-reported outcome. Unknown and disabled rules are left
/// alone: the rule may have been removed or switched off while the outcome
/// was in flight.
pub fn set_state(
    conn: &Connection,
    id: &str,
    state: RuleState,
    reason: Option<&str>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE rules SET state = ?1, reason = ?2, updated_at = ?3 WHERE id = ?4 AND enabled = 1",
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
                let r = write_tx(c, |tx| {
                    insert(
                        tx,
                        &client.id,
                        "_superadmin",
                        &spec(8080),
                        &Label::default(),
                    )
                })?;
                assert_eq!(r.state, RuleState::Pending);
                assert_eq!(r.client_name, "edge");
                let dup = write_tx(c, |tx| {
                    insert(
                        tx,
                        &client.id,
                        "_superadmin",
                        &spec(8080),
                        &Label::default(),
                    )
                })
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

    #[test]
    fn names_are_unique_per_client_and_disabling_keeps_the_row() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| {
                    users::create(tx, "_superadmin", "Admin", users::Role::Superadmin)
                })?;
                let a = write_tx(c, |tx| clients::ensure(tx, "edge-a", None))?;
                let b = write_tx(c, |tx| clients::ensure(tx, "edge-b", None))?;
                let web = Label {
                    name: Some("web".into()),
                    note: Some("team blue".into()),
                };
                let r1 = write_tx(c, |tx| insert(tx, &a.id, "_superadmin", &spec(80), &web))?;
                assert_eq!(r1.label, web);
                let dup = write_tx(c, |tx| insert(tx, &a.id, "_superadmin", &spec(81), &web))
                    .unwrap_err();
                assert_eq!(DomainError::from(dup).code, ErrorCode::AlreadyExists);
                // The same name on another client is another rule's.
                write_tx(c, |tx| insert(tx, &b.id, "_superadmin", &spec(80), &web))?;
                assert_eq!(list_named(c, None, None, Some("web"))?.len(), 2);
                assert_eq!(list_named(c, Some(&a.id), None, Some("web"))?.len(), 1);
                // Unnamed rules are many; renaming to one's own name is fine.
                let r2 = write_tx(c, |tx| {
                    insert(tx, &a.id, "_superadmin", &spec(82), &Label::default())
                })?;
                write_tx(c, |tx| {
                    insert(tx, &a.id, "_superadmin", &spec(83), &Label::default())
                })?;
                set_label(c, &r1.id, &web)?;
                let taken = set_label(c, &r2.id, &web).unwrap_err();
                assert_eq!(DomainError::from(taken).code, ErrorCode::AlreadyExists);

                set_state(c, &r1.id, RuleState::Active, None)?;
                set_enabled(c, &r1.id, false)?;
                // A late outcome does not switch a disabled rule back on.
                set_state(c, &r1.id, RuleState::Active, None)?;
                let off = get(c, &r1.id)?;
                assert_eq!((off.enabled, off.state), (false, RuleState::Disabled));
                assert!(list_enabled(c, &a.id)?.iter().all(|r| r.id != r1.id));
                // Its ports stay reserved while it is off.
                let clash = write_tx(c, |tx| {
                    insert(tx, &a.id, "_superadmin", &spec(80), &Label::default())
                })
                .unwrap_err();
                assert_eq!(DomainError::from(clash).code, ErrorCode::ListenPortConflict);
                set_enabled(c, &r1.id, true)?;
                let on = get(c, &r1.id)?;
                assert_eq!((on.enabled, on.state), (true, RuleState::Pending));
                Ok(())
            })
            .unwrap();
    }
}
