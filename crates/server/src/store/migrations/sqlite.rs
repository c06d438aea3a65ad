//! SQLite's schema steps. The version lives in `PRAGMA user_version`, so
//! any SQLite tool can read it. Append new steps; never edit old ones; add
//! the same step to `postgres.rs` under the same number.

use super::super::{StoreError, StoreResult};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

const V1: &str = r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superadmin', 'user')),
    disabled INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    password_temporary INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT,
    token_hash TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    enrolled_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE enrollments (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL UNIQUE,
    endpoint TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed_at INTEGER,
    superseded_at INTEGER
);
CREATE INDEX enrollments_client ON enrollments(client_id);
CREATE TABLE rules (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    owner TEXT NOT NULL REFERENCES users(id),
    protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    listen_port INTEGER NOT NULL,
    listen_port_end INTEGER NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'failed')),
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX rules_client ON rules(client_id);
CREATE INDEX rules_owner ON rules(owner);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Identity and access: Web sessions, grants, the first-run setup token,
/// the audit trail, and credential rotation times.
const V2: &str = r#"
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT REFERENCES clients(id) ON DELETE CASCADE,
    port_start INTEGER NOT NULL CHECK (port_start BETWEEN 1 AND 65535),
    port_end INTEGER NOT NULL CHECK (port_end BETWEEN port_start AND 65535),
    protocols TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX grants_user ON grants(user_id);
CREATE TABLE setup_token (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'deny')),
    reason TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at_ms);
ALTER TABLE api_tokens ADD COLUMN rotated_at INTEGER;
"#;

/// Per-owner rate-limit envelopes on one client.
const V3: &str = r#"
CREATE TABLE owner_rate_limits (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    owner TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rate_limit TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, owner)
);
"#;

/// Session idle timeout: the last use of each Web session.
const V4: &str = r#"
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
"#;

/// Idempotency keys of rule pushes: a retried push names the rule the
/// first one stored. A key goes with its rule.
const V5: &str = r#"
CREATE TABLE push_keys (
    owner TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX push_keys_rule ON push_keys(rule_id);
"#;

/// Rules an operator can switch off without deleting them, and name and
/// annotate. A name is unique on its client; rules without one are many.
const V6: &str = r#"
ALTER TABLE rules ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1));
ALTER TABLE rules ADD COLUMN name TEXT;
ALTER TABLE rules ADD COLUMN note TEXT;
CREATE UNIQUE INDEX rules_client_name ON rules(client_id, name) WHERE name IS NOT NULL;
"#;

/// Traffic history and quotas. Rollup rows name their rule's client and
/// owner themselves (no foreign keys), so history and quota usage outlive
/// a removed rule; retention deletes them. A cursor is the last report a
/// rule's history has folded, written in the same transaction as the
/// buckets it fed.
const V7: &str = r#"
CREATE TABLE traffic_minute (
    rule_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (rule_id, bucket_start)
);
CREATE INDEX traffic_minute_client ON traffic_minute(client_id, bucket_start);
CREATE INDEX traffic_minute_owner ON traffic_minute(owner, bucket_start);
CREATE TABLE traffic_hour (
    rule_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (rule_id, bucket_start)
);
CREATE INDEX traffic_hour_client ON traffic_hour(client_id, bucket_start);
CREATE INDEX traffic_hour_owner ON traffic_hour(owner, bucket_start);
CREATE TABLE traffic_cursors (
    rule_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    instance INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE quotas (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    owner TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    monthly_bytes INTEGER NOT NULL,
    reset_day INTEGER,
    ends_at INTEGER,
    period_start INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, owner)
);
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
    ])
}

pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    migrations()
        .to_latest(conn)
        .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid_and_latest_matches() {
        let m = super::migrations();
        assert!(m.validate().is_ok());
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::migrate(&mut conn).unwrap();
        assert_eq!(
            crate::store::sqlite::schema_version(&conn).unwrap(),
            crate::store::LATEST_VERSION
        );
    }
}
