//! The SQLite store: one connection behind a mutex, used from a blocking
//! thread so async workers never wait on disk. Writes run in
//! `BEGIN IMMEDIATE` transactions so a multi-row change is all or nothing.

pub mod audit;
pub mod clients;
pub mod credentials;
pub mod enrollments;
pub mod grants;
mod migrations;
pub mod onboarding;
pub mod owner_caps;
pub mod push_keys;
pub mod quotas;
pub mod rules;
pub mod sessions;
pub mod settings;
pub mod traffic;
pub mod users;

pub use migrations::LATEST_VERSION;

use portunus_domain::{DomainError, ErrorCode};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Store failures, by kind. The API turns them into stable codes in one
/// place (`impl From<StoreError> for DomainError`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is busy")]
    Busy,
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("the database file is not a Portunus SQLite database: {0}")]
    Corrupt(String),
    #[error("the database schema is version {found}, newer than this binary supports ({supported}); use a newer portunus-server")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("storage failure: {0}")]
    Internal(String),
}

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

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Domain(d) => d.code,
            StoreError::Busy => ErrorCode::StoreBusy,
            StoreError::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            StoreError::Corrupt(_) | StoreError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d,
            StoreError::Busy => DomainError::new(ErrorCode::StoreBusy, "the store is busy; retry"),
            StoreError::SchemaTooNew { .. } => {
                DomainError::new(ErrorCode::SchemaTooNew, e.to_string())
            }
            StoreError::Corrupt(_) | StoreError::Internal(_) => {
                tracing::error!(error = %e, "store failure");
                DomainError::new(ErrorCode::Internal, "internal storage error")
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

/// Seconds since the Unix epoch; every timestamp column uses it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

impl Store {
    /// Opens (creating if needed) and migrates the database. Refuses a
    /// schema newer than this binary before touching anything.
    pub fn open(path: &Path) -> StoreResult<Store> {
        // An empty file is an empty database to SQLite (and what
        // `owner_only` leaves if the first open is interrupted).
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
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the blocking pool. Use from async code.
    pub async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }

    /// Runs a write transaction on the blocking pool.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
    {
        self.call(move |conn| write_tx(conn, f)).await
    }

    /// Runs `f` on the current thread. For offline commands only.
    pub fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// One `BEGIN IMMEDIATE` transaction: committed when `f` succeeds, rolled
/// back otherwise.
pub fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).expect("open");
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_newer_schema_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", LATEST_VERSION + 1)
                .unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (LATEST_VERSION + 1, LATEST_VERSION))
            }
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"definitely not sqlite").unwrap();
        assert!(matches!(Store::open(&junk), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn the_state_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        store
            .blocking(|c| {
                c.execute("CREATE TABLE t (x)", [])?;
                Ok(())
            })
            .unwrap();
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            let p = dir.path().join(name);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        drop(store);
        // A looser file is tightened on open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn migrates_to_latest() {
        let (_d, store) = test_store();
        let v = store.blocking(|c| schema_version(c)).unwrap();
        assert_eq!(v, LATEST_VERSION);
    }
}
