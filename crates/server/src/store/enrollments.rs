//! One-time enrollment codes. Only a hash of each code is stored.

use super::db::{params, Connection, OptionalExtension};
use super::{now, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRow {
    pub id: String,
    pub client_id: String,
    /// The advertised endpoint resolved at creation; `None` on rows made
    /// before endpoints were stored.
    pub endpoint: Option<String>,
    pub expires_at: i64,
}

/// Creates an enrollment and supersedes the client's unredeemed ones.
pub fn create(
    conn: &Connection,
    client_id: &str,
    code_hash: &str,
    endpoint: Option<&str>,
    ttl_secs: i64,
) -> StoreResult<EnrollmentRow> {
    let t = now();
    conn.execute(
        "UPDATE enrollments SET superseded_at = ?1
         WHERE client_id = ?2 AND redeemed_at IS NULL AND superseded_at IS NULL",
        params![t, client_id],
    )?;
    let row = EnrollmentRow {
        id: portunus_domain::new_id(),
        client_id: client_id.to_string(),
        endpoint: endpoint.map(str::to_string),
        expires_at: t + ttl_secs,
    };
    conn.execute(
        "INSERT INTO enrollments (id, client_id, code_hash, endpoint, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            row.id,
            row.client_id,
            code_hash,
            row.endpoint,
            t,
            row.expires_at
        ],
    )?;
    Ok(row)
}

/// The live enrollment for a code: not redeemed, not superseded, not expired.
pub fn redeemable(conn: &Connection, code_hash: &str) -> StoreResult<Option<EnrollmentRow>> {
    conn
        .query_row(
            "SELECT id, client_id, endpoint, expires_at FROM enrollments
             WHERE code_hash = ?1 AND redeemed_at IS NULL AND superseded_at IS NULL AND expires_at > ?2",
            params![code_hash, now()],
            |r| {
                Ok(EnrollmentRow {
                    id: r.get(0)?,
                    client_id: r.get(1)?,
                    endpoint: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            },
        )
        .optional()
}

pub fn mark_redeemed(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE enrollments SET redeemed_at = ?1 WHERE id = ?2",
        params![now(), id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{clients, test_store, write_tx};

    #[test]
    fn single_use_and_superseded() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let client = write_tx(c, |tx| clients::ensure(tx, "edge", None))?;
                let first = write_tx(c, |tx| {
                    create(tx, &client.id, "h1", Some("127.0.0.1:7443"), 600)
                })?;
                assert_eq!(redeemable(c, "h1")?.map(|e| e.id), Some(first.id.clone()));
                write_tx(c, |tx| create(tx, &client.id, "h2", None, 600))?;
                assert!(redeemable(c, "h1")?.is_none(), "superseded");
                let second = redeemable(c, "h2")?.unwrap();
                assert_eq!(second.endpoint, None);
                mark_redeemed(c, &second.id)?;
                assert!(redeemable(c, "h2")?.is_none(), "single use");
                write_tx(c, |tx| create(tx, &client.id, "h3", None, -1))?;
                assert!(redeemable(c, "h3")?.is_none(), "expired");
                Ok(())
            })
            .unwrap();
    }
}
