//! The store: one API over two engines. SQLite (a file in the data dir,
//! the default) and PostgreSQL (`--database-url`). Callers hand a closure
//! to [`Store::call`] or [`Store::write`]; it runs on a blocking thread, so
//! async workers never wait on the database, with a [`db::Connection`] that
//! speaks to whichever engine is open. Writes run in transactions that
//! exclude each other (`BEGIN IMMEDIATE` on SQLite, one advisory lock on
//! PostgreSQL), so a multi-row change is all or nothing and invariants
//! checked inside it (listen-port conflicts, the last superadmin) hold.

pub mod audit;
pub mod clients;
pub mod credentials;
pub mod db;
pub mod enrollments;
pub mod grants;
mod migrations;
pub mod onboarding;
pub mod owner_caps;
pub mod postgres;
pub mod push_keys;
pub mod quotas;
pub mod rules;
pub mod sessions;
pub mod settings;
pub mod sqlite;
pub mod traffic;
pub mod users;

pub use db::{Connection, Transaction};
pub use migrations::LATEST_VERSION;
pub use sqlite::{has_sqlite_header, schema_version, SQLITE_HEADER};

use portunus_domain::{DomainError, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Store failures, by kind. The API turns them into stable codes in one
/// place (`impl From<StoreError> for DomainError`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is busy")]
    Busy,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("the database file is not a Portunus SQLite database: {0}")]
    Corrupt(String),
    #[error("the database schema is version {found}, newer than this binary supports ({supported}); use a newer portunus-server")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("{0}")]
    Config(String),
    #[error("the query returned no rows")]
    NoRows,
    #[error("storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Domain(d) => d.code,
            StoreError::Busy => ErrorCode::StoreBusy,
            StoreError::Unavailable(_) => ErrorCode::StoreUnavailable,
            StoreError::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            StoreError::Config(_) => ErrorCode::DatabaseUrlInvalid,
            StoreError::Corrupt(_) | StoreError::NoRows | StoreError::Internal(_) => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d,
            StoreError::Busy => DomainError::new(ErrorCode::StoreBusy, "the store is busy; retry"),
            StoreError::Unavailable(ref why) => {
                // The driver's words stay in the log: they may name hosts.
                tracing::warn!(error = %why, "the database is unavailable");
                DomainError::new(
                    ErrorCode::StoreUnavailable,
                    "the database is unavailable; retry when it is back",
                )
            }
            StoreError::SchemaTooNew { .. } | StoreError::Config(_) => {
                DomainError::new(e.code(), e.to_string())
            }
            StoreError::Corrupt(_) | StoreError::NoRows | StoreError::Internal(_) => {
                tracing::error!(error = %e, "store failure");
                DomainError::new(ErrorCode::Internal, "internal storage error")
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL URL (`postgres://…`).
    Url(String),
}

impl Location {
    /// Names the location for messages and logs, without a password.
    pub fn describe(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Url(u) => postgres::redacted(u),
        }
    }
}

enum Engine {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(postgres::PgEngine),
}

impl Engine {
    fn run<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        match self {
            Engine::Sqlite(conn) => {
                let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut Connection::new(db::Session::Sqlite(&guard)))
            }
            Engine::Postgres(pg) => {
                let session = pg.session()?;
                f(&mut Connection::new(db::Session::Postgres(&session)))
            }
        }
    }
}

#[derive(Clone)]
pub struct Store {
    engine: Arc<Engine>,
}

/// Threads for blocking work per runtime (the shared one and the control
/// port's): store calls (one SQLite connection, or a PostgreSQL pool of 8)
/// and password hashing. A reconnecting fleet queues thousands of store
/// calls at once; past this many, more threads would only wait on the same
/// connections (tokio's default of 512 was reached by 5,000 edges
/// reconnecting, each thread with its own stack).
pub const BLOCKING_THREADS: usize = 64;

/// Seconds since the Unix epoch; every timestamp column uses it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) and migrates a SQLite database file.
    /// Refuses a schema newer than this binary before touching anything.
    pub fn open(path: &Path) -> StoreResult<Store> {
        let conn = sqlite::open(path)?;
        Ok(Store {
            engine: Arc::new(Engine::Sqlite(Mutex::new(conn))),
        })
    }

    /// Connects to a PostgreSQL database and migrates it.
    pub fn open_postgres(url: &str) -> StoreResult<Store> {
        let engine = run_outside_async(|| postgres::PgEngine::open(url))?;
        Ok(Store {
            engine: Arc::new(Engine::Postgres(engine)),
        })
    }

    pub fn open_at(location: &Location) -> StoreResult<Store> {
        match location {
            Location::File(p) => Store::open(p),
            Location::Url(u) => Store::open_postgres(u),
        }
    }

    /// Runs `f` on the blocking pool. Use from async code.
    pub async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.run(f))
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

    /// Runs `f` on the current thread. For offline commands and start-up.
    pub fn blocking<T: Send>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        match *self.engine {
            Engine::Sqlite(_) => self.engine.run(f),
            Engine::Postgres(_) => run_outside_async(|| self.engine.run(f)),
        }
    }

    /// The schema version the database holds.
    #[cfg(test)]
    pub fn schema_version(&self) -> StoreResult<i64> {
        match &*self.engine {
            Engine::Sqlite(conn) => {
                sqlite::schema_version(&conn.lock().unwrap_or_else(|p| p.into_inner()))
            }
            Engine::Postgres(pg) => {
                run_outside_async(|| migrations::postgres::schema_version(&pg.session()?))
            }
        }
    }

    /// The SQLite connection, for the file-level maintenance commands
    /// (backup, restore); `None` on PostgreSQL.
    pub fn sqlite<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> T) -> Option<T> {
        match &*self.engine {
            Engine::Sqlite(conn) => {
                let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                Some(f(&guard))
            }
            Engine::Postgres(_) => None,
        }
    }
}

/// The PostgreSQL engine blocks its thread on its own runtime, which tokio
/// forbids on an async worker: there, hand the worker's other tasks away
/// first, or (on a single-threaded runtime) block another thread.
fn run_outside_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Err(_) => f(),
    }
}

/// One write transaction: committed when `f` succeeds, rolled back
/// otherwise.
pub fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.begin_write()?;
    match f(conn) {
        Ok(out) => {
            conn.commit()?;
            Ok(out)
        }
        Err(e) => {
            conn.rollback();
            Err(e)
        }
    }
}

/// A store for one test: a SQLite file in a temp dir, or with
/// `PORTUNUS_TEST_ENGINE=postgres` a fresh database in the cluster
/// `PORTUNUS_TEST_POSTGRES_URL` names.
#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = match std::env::var("PORTUNUS_TEST_ENGINE").as_deref() {
        Ok("postgres") => Store::open_postgres(&test_database_url()).expect("open"),
        _ => Store::open(&dir.path().join("state.db")).expect("open"),
    };
    (dir, store)
}

/// A fresh, empty PostgreSQL database for one test. Fails (never skips)
/// without a cluster to create it in.
#[cfg(test)]
pub(crate) fn test_database_url() -> String {
    let admin = std::env::var("PORTUNUS_TEST_POSTGRES_URL").expect(
        "PORTUNUS_TEST_POSTGRES_URL is not set: start a throwaway cluster with \
         `eval \"$(bash scripts/pg-cluster.sh start /tmp/portunus-pg)\"` (or run `bash .ci/run`)",
    );
    postgres::create_database(&admin).expect("create a test database")
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
            let c = rusqlite::Connection::open(&path).unwrap();
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
                c.execute("CREATE TABLE t (x)", db::params![])?;
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
        let v = store.schema_version().unwrap();
        assert_eq!(v, LATEST_VERSION);
    }
}
