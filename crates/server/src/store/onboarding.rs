//! The first-run setup token: one row, only its hash, with an expiry.

use super::db::{params, Connection, OptionalExtension};
use super::StoreResult;

/// Replaces the setup token.
pub fn set(conn: &Connection, token_hash: &str, expires_at: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO setup_token (id, token_hash, expires_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, expires_at = excluded.expires_at",
        params![token_hash, expires_at],
    )?;
    Ok(())
}

/// True when `token_hash` is the current token and it has not expired.
pub fn matches(conn: &Connection, token_hash: &str, at: i64) -> StoreResult<bool> {
    let stored: Option<(String, i64)> = conn
        .query_row(
            "SELECT token_hash, expires_at FROM setup_token WHERE id = 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match stored {
        Some((hash, expires_at)) => {
            // Comparing hashes leaks nothing useful about the token itself.
            at < expires_at && hash == token_hash
        }
        None => false,
    })
}

/// Consumes the token: it opens onboarding once.
pub fn clear(conn: &Connection) -> StoreResult<()> {
    conn.execute("DELETE FROM setup_token", params![])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn rotate_expire_consume() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                assert!(!matches(c, "a", 0)?);
                set(c, "a", 100)?;
                assert!(matches(c, "a", 99)?);
                assert!(!matches(c, "a", 100)?, "expired");
                assert!(!matches(c, "b", 0)?);
                set(c, "b", 100)?;
                assert!(!matches(c, "a", 0)?, "rotated away");
                assert!(matches(c, "b", 0)?);
                clear(c)?;
                assert!(!matches(c, "b", 0)?);
                Ok(())
            })
            .unwrap();
    }
}
