//! Users, their passwords and their API credentials' lookup. Only hashes
//! of secrets are stored: tokens carry 256 bits of entropy, so SHA-256 is
//! enough for them; passwords are Argon2id PHC strings.

use super::db::{params, Connection, OptionalExtension, Row};
use super::rules::{self, RuleRow};
use super::{now, StoreResult};
use portunus_domain::{DomainError, ErrorCode};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `admin` is the command line's spelling of the same role.
    #[serde(alias = "admin")]
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UserRow {
    #[schema(example = "alice")]
    pub user_id: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub password_set: bool,
    pub password_change_required: bool,
    #[serde(skip)]
    pub created_at: i64,
}

const COLS: &str =
    "id, display_name, role, disabled, password_hash IS NOT NULL, password_temporary, created_at";

fn from_row(r: &Row) -> StoreResult<UserRow> {
    let role: String = r.get(2)?;
    Ok(UserRow {
        user_id: r.get(0)?,
        display_name: r.get(1)?,
        role: Role::parse(&role),
        disabled: r.get(3)?,
        password_set: r.get(4)?,
        password_change_required: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn not_found(id: &str) -> super::StoreError {
    DomainError::new(ErrorCode::UserNotFound, format!("no user {id:?}")).into()
}

pub fn has_active_superadmin(conn: &Connection) -> StoreResult<bool> {
    Ok(active_superadmins(conn)? > 0)
}

/// `superadmin_exists` with `message` once an active superadmin exists:
/// the guard of everything that only a fresh store allows.
pub fn refuse_if_superadmin(conn: &Connection, message: &str) -> StoreResult<()> {
    if has_active_superadmin(conn)? {
        return Err(DomainError::new(ErrorCode::SuperadminExists, message).into());
    }
    Ok(())
}

pub fn active_superadmins(conn: &Connection) -> StoreResult<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'superadmin' AND disabled = 0",
        params![],
        |r| r.get(0),
    )
}

pub fn exists(conn: &Connection, id: &str) -> StoreResult<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )
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

pub fn find(conn: &Connection, id: &str) -> StoreResult<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<UserRow> {
    find(conn, id)?.ok_or_else(|| not_found(id))
}

pub fn list(conn: &Connection) -> StoreResult<Vec<UserRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM users ORDER BY id"))?;
    let rows = stmt
        .query_map(params![], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// What a login checks: the stored hash of an enabled user, if any.
pub struct LoginRecord {
    pub actor: Actor,
    pub password_hash: Option<String>,
    pub temporary: bool,
}

pub fn login_record(conn: &Connection, id: &str) -> StoreResult<Option<LoginRecord>> {
    conn
        .query_row(
            "SELECT id, role, password_hash, password_temporary FROM users WHERE id = ?1 AND disabled = 0",
            [id],
            |r| {
                let role: String = r.get(1)?;
                Ok(LoginRecord {
                    actor: Actor {
                        user_id: r.get(0)?,
                        role: Role::parse(&role),
                    },
                    password_hash: r.get(2)?,
                    temporary: r.get(3)?,
                })
            },
        )
        .optional()
}

/// Replaces a user's password hash. `temporary` forces a change at the
/// next login.
pub fn set_password(conn: &Connection, id: &str, hash: &str, temporary: bool) -> StoreResult<()> {
    if conn.execute(
        "UPDATE users SET password_hash = ?1, password_temporary = ?2 WHERE id = ?3",
        params![hash, temporary, id],
    )? == 0
    {
        return Err(not_found(id));
    }
    Ok(())
}

/// Changes role and disabled flag, refusing to leave no active superadmin.
pub fn update(
    conn: &Connection,
    id: &str,
    display_name: Option<&str>,
    role: Option<Role>,
    disabled: Option<bool>,
) -> StoreResult<UserRow> {
    let before = get(conn, id)?;
    let role = role.unwrap_or(before.role);
    let disabled = disabled.unwrap_or(before.disabled);
    let was_active_super = before.role == Role::Superadmin && !before.disabled;
    let stays_active_super = role == Role::Superadmin && !disabled;
    if was_active_super && !stays_active_super {
        crate::authz::may_lose_superadmin(active_superadmins(conn)?)?;
    }
    conn.execute(
        "UPDATE users SET display_name = ?1, role = ?2, disabled = ?3 WHERE id = ?4",
        params![
            display_name.unwrap_or(&before.display_name),
            role.as_str(),
            disabled,
            id
        ],
    )?;
    get(conn, id)
}

/// Removes a user with everything that hangs off it: grants, credentials
/// and sessions (by foreign key) and the rules it owns, which are returned
/// so the caller can retract them from their clients. Run inside a write
/// transaction. The last active superadmin is never removed.
pub fn remove(conn: &Connection, id: &str) -> StoreResult<Vec<RuleRow>> {
    let user = get(conn, id)?;
    if user.role == Role::Superadmin && !user.disabled {
        crate::authz::may_lose_superadmin(active_superadmins(conn)?)?;
    }
    let owned = rules::list(conn, None, Some(id))?;
    for r in &owned {
        rules::delete(conn, &r.id)?;
    }
    conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
    Ok(owned)
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
    conn.query_row(
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
    .optional()
}

/// The enabled user behind a Web session that is live at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionActor {
    pub actor: Actor,
    /// The user must change a temporary password first.
    pub temporary: bool,
    pub last_seen_at: i64,
}

/// The session's user, unless the session passed its absolute lifetime or
/// went unused for `idle_secs`.
pub fn actor_for_session(
    conn: &Connection,
    id_hash: &str,
    at: i64,
    idle_secs: i64,
) -> StoreResult<Option<SessionActor>> {
    conn.query_row(
        "SELECT u.id, u.role, u.password_temporary, s.last_seen_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3
               AND u.disabled = 0",
        params![id_hash, at, at - idle_secs],
        |r| {
            let role: String = r.get(1)?;
            Ok(SessionActor {
                actor: Actor {
                    user_id: r.get(0)?,
                    role: Role::parse(&role),
                },
                temporary: r.get(2)?,
                last_seen_at: r.get(3)?,
            })
        },
    )
    .optional()
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
                c.execute("UPDATE users SET disabled = 1", params![])?;
                assert!(actor_for_token(c, "hash-a")?.is_none());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn last_superadmin_is_kept() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| create(tx, "root", "Root", Role::Superadmin))?;
                write_tx(c, |tx| create(tx, "alice", "Alice", Role::User))?;
                let code = |e: crate::store::StoreError| DomainError::from(e).code;
                let e = write_tx(c, |tx| remove(tx, "root")).unwrap_err();
                assert_eq!(code(e), ErrorCode::LastSuperadmin);
                let e =
                    write_tx(c, |tx| update(tx, "root", None, Some(Role::User), None)).unwrap_err();
                assert_eq!(code(e), ErrorCode::LastSuperadmin);
                let e = write_tx(c, |tx| update(tx, "root", None, None, Some(true))).unwrap_err();
                assert_eq!(code(e), ErrorCode::LastSuperadmin);
                // With a second superadmin the first may go.
                write_tx(c, |tx| {
                    update(tx, "alice", Some("Alice A."), Some(Role::Superadmin), None)
                })?;
                assert_eq!(active_superadmins(c)?, 2);
                assert!(write_tx(c, |tx| remove(tx, "root"))?.is_empty());
                assert!(find(c, "root")?.is_none());
                assert_eq!(get(c, "alice")?.display_name, "Alice A.");
                let e = write_tx(c, |tx| remove(tx, "ghost")).unwrap_err();
                assert_eq!(code(e), ErrorCode::UserNotFound);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn passwords_and_sessions() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| create(tx, "alice", "Alice", Role::User))?;
                let rec = login_record(c, "alice")?.unwrap();
                assert!(rec.password_hash.is_none());
                set_password(c, "alice", "$argon2id$fake", true)?;
                let rec = login_record(c, "alice")?.unwrap();
                assert_eq!(rec.password_hash.as_deref(), Some("$argon2id$fake"));
                assert!(rec.temporary);
                let row = get(c, "alice")?;
                assert!(row.password_set && row.password_change_required);
                c.execute(
                    "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at)
                     VALUES ('s1', 'alice', 0, 100, 0)",
                    params![],
                )?;
                let s = actor_for_session(c, "s1", 50, 1000)?.unwrap();
                assert_eq!((s.actor.user_id.as_str(), s.temporary), ("alice", true));
                assert!(actor_for_session(c, "s1", 100, 1000)?.is_none(), "expired");
                assert!(actor_for_session(c, "s2", 50, 1000)?.is_none());
                let e = set_password(c, "ghost", "x", false).unwrap_err();
                assert_eq!(DomainError::from(e).code, ErrorCode::UserNotFound);
                Ok(())
            })
            .unwrap();
    }
}
