//! Grants: which client (or every client), listen-port range and protocols
//! a user may push rules for.

use super::db::{params, Connection, OptionalExtension, Row};
use super::rules::{self, RuleRow};
use super::{now, StoreError, StoreResult};
use portunus_domain::rule::Protocol;
use portunus_domain::{DomainError, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub user_id: String,
    /// `None` is the `*` grant: every client.
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub port_start: u32,
    pub port_end: u32,
    pub protocols: Vec<Protocol>,
    pub created_at: i64,
}

pub struct NewGrant<'a> {
    pub user_id: &'a str,
    pub client_id: Option<&'a str>,
    pub port_start: u32,
    pub port_end: u32,
    pub protocols: &'a [Protocol],
}

const SELECT: &str = "SELECT g.id, g.user_id, g.client_id, c.name, g.port_start, g.port_end, g.protocols, g.created_at
                      FROM grants g LEFT JOIN clients c ON c.id = g.client_id";

fn from_row(r: &Row) -> StoreResult<GrantRow> {
    let protocols: String = r.get(6)?;
    Ok(GrantRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        client_id: r.get(2)?,
        client_name: r.get(3)?,
        port_start: r.get(4)?,
        port_end: r.get(5)?,
        protocols: protocols
            .split(',')
            .filter_map(|p| Protocol::parse(p).ok())
            .collect(),
        created_at: r.get(7)?,
    })
}

pub fn not_found(id: &str) -> StoreError {
    DomainError::new(ErrorCode::NotFound, format!("no grant {id:?}")).into()
}

pub fn insert(conn: &Connection, g: &NewGrant) -> StoreResult<GrantRow> {
    let id = portunus_domain::new_id();
    let protocols: Vec<&str> = g.protocols.iter().map(|p| p.as_str()).collect();
    conn.execute(
        "INSERT INTO grants (id, user_id, client_id, port_start, port_end, protocols, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            g.user_id,
            g.client_id,
            g.port_start,
            g.port_end,
            protocols.join(","),
            now()
        ],
    )?;
    get(conn, &id)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<GrantRow> {
    conn.query_row(&format!("{SELECT} WHERE g.id = ?1"), [id], from_row)
        .optional()?
        .ok_or_else(|| not_found(id))
}

/// Grants, of one user or all, oldest first.
pub fn list(conn: &Connection, user_id: Option<&str>) -> StoreResult<Vec<GrantRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR g.user_id = ?1) ORDER BY g.created_at, g.id"
    ))?;
    let rows = stmt
        .query_map(params![user_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The grants a push by `actor` is checked against; a superadmin needs none.
pub fn for_actor(conn: &Connection, actor: &super::users::Actor) -> StoreResult<Vec<GrantRow>> {
    match actor.role {
        super::users::Role::Superadmin => Ok(Vec::new()),
        super::users::Role::User => list(conn, Some(&actor.user_id)),
    }
}

/// Deletes a grant and every rule of its user that no remaining grant
/// covers. Returns the grant and the removed rules, which the caller
/// retracts from their clients. Run inside a write transaction. A
/// superadmin's rules never depend on grants.
pub fn revoke(conn: &Connection, id: &str) -> StoreResult<(GrantRow, Vec<RuleRow>)> {
    let grant = get(conn, id)?;
    conn.execute("DELETE FROM grants WHERE id = ?1", [id])?;
    let user = super::users::get(conn, &grant.user_id)?;
    if user.role == super::users::Role::Superadmin {
        return Ok((grant, Vec::new()));
    }
    let remaining = list(conn, Some(&grant.user_id))?;
    let mut removed = Vec::new();
    for rule in rules::list(conn, None, Some(&grant.user_id))? {
        if crate::authz::covered(&remaining, &rule.client_id, &rule.spec).is_err() {
            rules::delete(conn, &rule.id)?;
            removed.push(rule);
        }
    }
    Ok((grant, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, Role};
    use crate::store::{clients, test_store, write_tx};
    use portunus_domain::rule::RuleSpec;

    fn spec(port: u32, protocol: Protocol) -> RuleSpec {
        RuleSpec::single(protocol, port, "127.0.0.1", 9)
    }

    #[test]
    fn revoke_cascades_only_uncovered_rules() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| users::create(tx, "alice", "Alice", Role::User))?;
                let edge = write_tx(c, |tx| clients::ensure(tx, "edge", None))?;
                let narrow = write_tx(c, |tx| {
                    insert(
                        tx,
                        &NewGrant {
                            user_id: "alice",
                            client_id: Some(&edge.id),
                            port_start: 8000,
                            port_end: 8010,
                            protocols: &[Protocol::Tcp],
                        },
                    )
                })?;
                let wide = write_tx(c, |tx| {
                    insert(
                        tx,
                        &NewGrant {
                            user_id: "alice",
                            client_id: None,
                            port_start: 8005,
                            port_end: 9000,
                            protocols: &[Protocol::Tcp, Protocol::Udp],
                        },
                    )
                })?;
                assert_eq!(narrow.client_name.as_deref(), Some("edge"));
                assert_eq!(wide.client_id, None);
                assert_eq!(wide.protocols, vec![Protocol::Tcp, Protocol::Udp]);
                let only_narrow = write_tx(c, |tx| {
                    rules::insert(
                        tx,
                        &edge.id,
                        "alice",
                        &spec(8000, Protocol::Tcp),
                        &Default::default(),
                    )
                })?;
                let both = write_tx(c, |tx| {
                    rules::insert(
                        tx,
                        &edge.id,
                        "alice",
                        &spec(8006, Protocol::Tcp),
                        &Default::default(),
                    )
                })?;
                let (g, removed) = write_tx(c, |tx| revoke(tx, &narrow.id))?;
                assert_eq!(g.id, narrow.id);
                assert_eq!(
                    removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
                    [only_narrow.id.as_str()]
                );
                assert!(rules::find(c, &both.id)?.is_some());
                assert_eq!(list(c, Some("alice"))?.len(), 1);
                assert_eq!(list(c, Some("bob"))?.len(), 0);
                let (_, removed) = write_tx(c, |tx| revoke(tx, &wide.id))?;
                assert_eq!(removed.len(), 1);
                let e = write_tx(c, |tx| revoke(tx, &wide.id)).unwrap_err();
                assert_eq!(DomainError::from(e).code, ErrorCode::NotFound);
                Ok(())
            })
            .unwrap();
    }
}
