//! Users and their API credentials. Only SHA-256 hashes of tokens are
//! stored; tokens carry 256 bits of entropy, so a fast hash is enough.

use super::{now, StoreResult};
use portunus_domain::{DomainError, ErrorCode};
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Superadmin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::User => "user",
        }
    }

    fn parse(s: &str) -> Role {
        if s == "superadmin" {
            Role::Superadmin
        } else {
            Role::User
        }
    }
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub role: Role,
}

pub fn has_active_superadmin(conn: &Connection) -> StoreResult<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'superadmin' AND disabled = 0)",
        [],
        |r| r.get(0),
    )?)
}

pub fn exists(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?)
}

pub fn create(conn: &Connection, id: &str, display_name: &str, role: Role) -> StoreResult<()> {
    if exists(conn, id)? {
        return Err(DomainError::new(
            ErrorCode::AlreadyExists,
            format!("user {id:?} already exists"),
        )
        .into());
    }
    conn.execute(
        "INSERT INTO users (id, display_name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, display_name, role.as_str(), now()],
    )?;
    Ok(())
}

/// Stores a credential's hash; returns the credential id.
pub fn issue_token(
    conn: &Connection,
    user_id: &str,
    label: &str,
    token_hash: &str,
) -> StoreResult<String> {
    let id = portunus_domain::new_id();
    conn.execute(
        "INSERT INTO api_tokens (id, user_id, label, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, user_id, label, token_hash, now()],
    )?;
    Ok(id)
}

/// The enabled user a live bearer token belongs to.
pub fn actor_for_token(conn: &Connection, token_hash: &str) -> StoreResult<Option<Actor>> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled = 0",
            [token_hash],
            |r| {
                let role: String = r.get(1)?;
                Ok(Actor {
                    user_id: r.get(0)?,
                    role: Role::parse(&role),
                })
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, write_tx};

    #[test]
    fn tokens_resolve_to_enabled_users() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                assert!(!has_active_superadmin(c)?);
                write_tx(c, |tx| create(tx, "_superadmin", "Admin", Role::Superadmin))?;
                assert!(has_active_superadmin(c)?);
                let dup = create(c, "_superadmin", "x", Role::User).unwrap_err();
                assert_eq!(DomainError::from(dup).code, ErrorCode::AlreadyExists);
                issue_token(c, "_superadmin", "bootstrap", "hash-a")?;
                let actor = actor_for_token(c, "hash-a")?.unwrap();
                assert_eq!(actor.role, Role::Superadmin);
                assert!(actor_for_token(c, "hash-b")?.is_none());
                c.execute("UPDATE users SET disabled = 1", [])?;
                assert!(actor_for_token(c, "hash-a")?.is_none());
                Ok(())
            })
            .unwrap();
    }
}
