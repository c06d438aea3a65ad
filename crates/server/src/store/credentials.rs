//! API credentials (bearer tokens) of users. Rows keep only the token's
//! SHA-256; rotation swaps the hash in place so the credential id stays.

use super::db::{params, Connection, OptionalExtension, Row};
use super::{now, users, StoreError, StoreResult};
use portunus_domain::{DomainError, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLS: &str = "id, user_id, label, created_at, rotated_at, revoked_at";

fn from_row(r: &Row) -> StoreResult<CredentialRow> {
    Ok(CredentialRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        rotated_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

fn not_found(user_id: &str, id: &str) -> StoreError {
    DomainError::new(
        ErrorCode::NotFound,
        format!("user {user_id:?} has no credential {id:?}"),
    )
    .into()
}

pub fn get(conn: &Connection, user_id: &str, id: &str) -> StoreResult<CredentialRow> {
    conn.query_row(
        &format!("SELECT {COLS} FROM api_tokens WHERE id = ?1 AND user_id = ?2"),
        [id, user_id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| not_found(user_id, id))
}

/// Stores a new credential for an existing user.
pub fn issue(
    conn: &Connection,
    user_id: &str,
    label: &str,
    token_hash: &str,
) -> StoreResult<CredentialRow> {
    users::get(conn, user_id)?;
    let id = users::issue_token(conn, user_id, label, token_hash)?;
    get(conn, user_id, &id)
}

/// A user's credentials, revoked ones included, oldest first.
pub fn list(conn: &Connection, user_id: &str) -> StoreResult<Vec<CredentialRow>> {
    users::get(conn, user_id)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM api_tokens WHERE user_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Revokes one credential. Revoking a revoked credential changes nothing.
pub fn revoke(conn: &Connection, user_id: &str, id: &str) -> StoreResult<CredentialRow> {
    get(conn, user_id, id)?;
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        params![now(), id],
    )?;
    get(conn, user_id, id)
}

/// Revokes every live credential of a user; returns how many.
pub fn revoke_all(conn: &Connection, user_id: &str) -> StoreResult<usize> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
        params![now(), user_id],
    )
}

/// Replaces a live credential's token hash: the old token stops working
/// with this statement. Run inside a write transaction.
pub fn rotate(
    conn: &Connection,
    user_id: &str,
    id: &str,
    token_hash: &str,
) -> StoreResult<CredentialRow> {
    let row = get(conn, user_id, id)?;
    if row.revoked_at.is_some() {
        return Err(DomainError::new(
            ErrorCode::Conflict,
            format!("credential {id:?} is revoked; issue a new one"),
        )
        .into());
    }
    conn.execute(
        "UPDATE api_tokens SET token_hash = ?1, rotated_at = ?2 WHERE id = ?3",
        params![token_hash, now(), id],
    )?;
    get(conn, user_id, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Role;
    use crate::store::{test_store, write_tx};

    #[test]
    fn issue_rotate_revoke() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| users::create(tx, "alice", "Alice", Role::User))?;
                let code = |e: StoreError| DomainError::from(e).code;
                assert_eq!(
                    code(issue(c, "ghost", "ci", "h0").unwrap_err()),
                    ErrorCode::UserNotFound
                );
                let cred = issue(c, "alice", "ci", "h1")?;
                assert!(users::actor_for_token(c, "h1")?.is_some());
                let rotated = write_tx(c, |tx| rotate(tx, "alice", &cred.id, "h2"))?;
                assert_eq!(
                    (rotated.id.as_str(), rotated.label.as_str()),
                    (cred.id.as_str(), "ci")
                );
                assert!(rotated.rotated_at.is_some());
                assert!(users::actor_for_token(c, "h1")?.is_none());
                assert!(users::actor_for_token(c, "h2")?.is_some());
                // Another user's credential id is not found under alice.
                assert_eq!(
                    code(revoke(c, "bob", &cred.id).unwrap_err()),
                    ErrorCode::NotFound
                );
                assert!(revoke(c, "alice", &cred.id)?.revoked_at.is_some());
                assert!(users::actor_for_token(c, "h2")?.is_none());
                assert_eq!(
                    code(rotate(c, "alice", &cred.id, "h3").unwrap_err()),
                    ErrorCode::Conflict
                );
                issue(c, "alice", "other", "h4")?;
                assert_eq!(list(c, "alice")?.len(), 2);
                assert_eq!(revoke_all(c, "alice")?, 1);
                Ok(())
            })
            .unwrap();
    }
}
