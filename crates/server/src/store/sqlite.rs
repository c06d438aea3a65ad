//! The SQLite engine: one file in the data dir, one connection behind the
//! store's mutex, WAL with full fsync.

use super::db::{Row, Value};
use super::{migrations, StoreError, StoreResult, LATEST_VERSION};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::path::Path;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Busy,
            Some(C::NotADatabase | C::DatabaseCorrupt) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// The SQLite header every database file starts with.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// True when the file starts with the SQLite header.
pub fn has_sqlite_header(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let mut f = std::fs::File::open(path)?;
    match f.read_exact(&mut buf) {
        Ok(()) => Ok(&buf == SQLITE_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL makes every acknowledged write durable across power loss too.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Reads `PRAGMA user_version` without changing the database.
pub fn schema_version(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Creates the database file 0600 (or tightens an existing one) before
/// SQLite opens it: SQLite gives its -wal and -shm files the database's
/// mode, so the whole state is private whatever the directory's mode or
/// the umask.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Opens (creating if needed) and migrates the database file. Refuses a
/// schema newer than this binary before touching anything.
pub fn open(path: &Path) -> StoreResult<Connection> {
    // An empty file is an empty database to SQLite (and what `owner_only`
    // leaves if the first open is interrupted).
    let empty = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    if !empty && !has_sqlite_header(path).map_err(|e| StoreError::Internal(e.to_string()))? {
        return Err(StoreError::Corrupt(format!(
            "{} has no SQLite header",
            path.display()
        )));
    }
    owner_only(path).map_err(|e| {
        StoreError::Internal(format!("cannot make {} private: {e}", path.display()))
    })?;
    let mut conn = Connection::open(path)?;
    let found = schema_version(&conn)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    configure(&conn)?;
    migrations::sqlite::migrate(&mut conn)?;
    Ok(conn)
}

fn bind(values: Vec<Value>) -> impl Iterator<Item = rusqlite::types::Value> {
    values.into_iter().map(|v| match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(i),
        Value::Real(f) => rusqlite::types::Value::Real(f),
        Value::Text(s) => rusqlite::types::Value::Text(s),
        Value::Blob(b) => rusqlite::types::Value::Blob(b),
    })
}

pub(super) fn execute(conn: &Connection, sql: &str, values: Vec<Value>) -> StoreResult<usize> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.execute(rusqlite::params_from_iter(bind(values)))?)
}

pub(super) fn query(conn: &Connection, sql: &str, values: Vec<Value>) -> StoreResult<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(bind(values)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(Row::new(values));
    }
    Ok(out)
}
