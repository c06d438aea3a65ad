//! Web sessions. The cookie carries a random id; only its SHA-256 is
//! stored, so a database dump cannot be replayed as a login.

use super::StoreResult;
use rusqlite::{params, Connection};

/// How long a session lives after login, in seconds.
pub const TTL_SECS: i64 = 12 * 60 * 60;

pub fn create(conn: &Connection, id_hash: &str, user_id: &str, at: i64) -> StoreResult<()> {
    // Expired sessions are swept whenever a new one is made.
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [at])?;
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id_hash, user_id, at, at + TTL_SECS],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id_hash: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])? > 0)
}

/// Ends every session of a user; returns how many there were.
pub fn delete_for_user(conn: &Connection, user_id: &str) -> StoreResult<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, Role};
    use crate::store::{test_store, write_tx};

    #[test]
    fn create_expire_revoke() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| users::create(tx, "alice", "Alice", Role::User))?;
                create(c, "h1", "alice", 1000)?;
                create(c, "h2", "alice", 1000)?;
                assert!(users::actor_for_session(c, "h1", 1001)?.is_some());
                assert!(users::actor_for_session(c, "h1", 1000 + TTL_SECS)?.is_none());
                assert!(delete(c, "h1")?);
                assert!(!delete(c, "h1")?);
                // A login after h2 expired sweeps it.
                create(c, "h3", "alice", 1000 + TTL_SECS)?;
                assert_eq!(delete_for_user(c, "alice")?, 1);
                Ok(())
            })
            .unwrap();
    }
}
