//! Web sessions. The cookie carries a random id; only its SHA-256 is
//! stored, so a database dump cannot be replayed as a login.

use super::db::{params, Connection};
use super::StoreResult;

/// How long a session may live: `idle_secs` without a request ends it, and
/// so does `max_secs` after login whatever the activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub idle_secs: i64,
    pub max_secs: i64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            idle_secs: 8 * 60 * 60,
            max_secs: 7 * 24 * 60 * 60,
        }
    }
}

/// A session's last use is written at most this often, so a polling
/// console does not turn every read into a write.
pub const TOUCH_EVERY_SECS: i64 = 60;

pub fn create(
    conn: &Connection,
    id_hash: &str,
    user_id: &str,
    at: i64,
    life: Lifetime,
) -> StoreResult<()> {
    // Ended sessions are swept whenever a new one is made.
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
        params![at, at - life.idle_secs],
    )?;
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?3)",
        params![id_hash, user_id, at, at + life.max_secs],
    )?;
    Ok(())
}

/// Records a use of the session at `at`.
pub fn touch(conn: &Connection, id_hash: &str, at: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1 AND last_seen_at < ?2",
        params![id_hash, at],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id_hash: &str) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])? > 0)
}

/// Ends every session of a user; returns how many there were.
pub fn delete_for_user(conn: &Connection, user_id: &str) -> StoreResult<usize> {
    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, Role};
    use crate::store::{test_store, write_tx};

    const LIFE: Lifetime = Lifetime {
        idle_secs: 100,
        max_secs: 1000,
    };

    fn alive(c: &Connection, id: &str, at: i64) -> bool {
        users::actor_for_session(c, id, at, LIFE.idle_secs)
            .unwrap()
            .is_some()
    }

    #[test]
    fn create_expire_revoke() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| users::create(tx, "alice", "Alice", Role::User))?;
                create(c, "h1", "alice", 1000, LIFE)?;
                create(c, "h2", "alice", 1000, LIFE)?;
                assert!(alive(c, "h1", 1001));
                assert!(delete(c, "h1")?);
                assert!(!delete(c, "h1")?);
                // A login after h2 went idle sweeps it.
                create(c, "h3", "alice", 1000 + LIFE.idle_secs, LIFE)?;
                assert_eq!(delete_for_user(c, "alice")?, 1);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn idle_timeout_and_absolute_lifetime() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                write_tx(c, |tx| users::create(tx, "alice", "Alice", Role::User))?;
                create(c, "idle", "alice", 0, LIFE)?;
                assert!(alive(c, "idle", 99));
                assert!(!alive(c, "idle", 100), "idle for idle_secs ends it");

                // Used every 90 s it outlives the idle timeout, never the
                // absolute lifetime.
                create(c, "busy", "alice", 0, LIFE)?;
                let mut at = 0;
                while at + 90 < 1000 {
                    at += 90;
                    assert!(alive(c, "busy", at), "at {at}");
                    touch(c, "busy", at)?;
                }
                assert!(alive(c, "busy", 999));
                assert!(!alive(c, "busy", 1000), "max_secs after login ends it");
                // A touch never moves the last use backwards.
                touch(c, "busy", 10)?;
                assert!(alive(c, "busy", 999));
                Ok(())
            })
            .unwrap();
    }
}
