//! Idempotency keys of rule pushes. A push retried with its key (its
//! answer lost to a dropped connection or a server crash) finds the rule
//! the first attempt stored instead of storing a second one. A key lives
//! as long as its rule: once the rule is gone, the key is free again.

use super::db::{params, Connection, OptionalExtension};
use super::rules::{self, RuleRow};
use super::{now, StoreResult};

/// What a key says about a push.
#[derive(Debug)]
pub enum Seen {
    /// Not used by this owner (or its rule is gone): push anew.
    New,
    /// The same request was stored as this rule.
    Replay(Box<RuleRow>),
    /// The key was used for a different request.
    Mismatch,
}

pub fn lookup(conn: &Connection, owner: &str, key: &str, request_hash: &str) -> StoreResult<Seen> {
    let found: Option<(String, String)> = conn
        .query_row(
            "SELECT request_hash, rule_id FROM push_keys WHERE owner = ?1 AND key = ?2",
            params![owner, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match found {
        None => Seen::New,
        Some((hash, _)) if hash != request_hash => Seen::Mismatch,
        Some((_, rule_id)) => match rules::find(conn, &rule_id)? {
            Some(rule) => Seen::Replay(Box::new(rule)),
            None => Seen::New,
        },
    })
}

/// Ties `key` to the rule just stored. Run in the transaction that stored
/// it, so a crash leaves both or neither.
pub fn record(
    conn: &Connection,
    owner: &str,
    key: &str,
    request_hash: &str,
    rule_id: &str,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO push_keys (owner, key, request_hash, rule_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (owner, key) DO UPDATE SET request_hash = excluded.request_hash,
             rule_id = excluded.rule_id, created_at = excluded.created_at",
        params![owner, key, request_hash, rule_id, now()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{clients, test_store, users, write_tx};
    use portunus_domain::rule::{Protocol, RuleSpec};

    #[test]
    fn a_key_replays_its_rule_refuses_another_request_and_frees_with_the_rule() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let owner = "_superadmin";
                write_tx(c, |tx| {
                    users::create(tx, owner, "Admin", users::Role::Superadmin)
                })?;
                let client = write_tx(c, |tx| clients::ensure(tx, "edge", None))?;
                assert!(matches!(lookup(c, owner, "k1", "h1")?, Seen::New));
                let spec = RuleSpec::single(Protocol::Tcp, 8080, "127.0.0.1", 9);
                let rule = write_tx(c, |tx| {
                    let rule = rules::insert(tx, &client.id, owner, &spec, &Default::default())?;
                    record(tx, owner, "k1", "h1", &rule.id)?;
                    Ok(rule)
                })?;
                match lookup(c, owner, "k1", "h1")? {
                    Seen::Replay(r) => assert_eq!(r.id, rule.id),
                    other => panic!("{other:?}"),
                }
                assert!(matches!(lookup(c, owner, "k1", "h2")?, Seen::Mismatch));
                // Keys are per owner.
                assert!(matches!(lookup(c, "someone-else", "k1", "h1")?, Seen::New));
                rules::delete(c, &rule.id)?;
                assert!(matches!(lookup(c, owner, "k1", "h1")?, Seen::New));
                Ok(())
            })
            .unwrap();
    }
}
