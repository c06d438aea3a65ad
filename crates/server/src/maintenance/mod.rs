//! Store maintenance on the files of a data dir: `backup`, `restore`,
//! `reset`, and the file-system check `serve` runs before it opens the
//! store. Backup copies beside a running server; restore and reset take the
//! data-dir lock and refuse while a server holds it.

mod backup;
pub mod fscheck;
mod migrate;
mod reset;
mod restore;

use crate::store::{has_sqlite_header, StoreError, LATEST_VERSION};
use anyhow::Context;
use portunus_domain::{DomainError, ErrorCode};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The store-maintenance subcommands, flattened into the top-level CLI.
#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Copy state.db to a new file (online: consistent while serving).
    ///
    /// A directory target gets portunus-state-<UTC timestamp>.db inside it.
    #[command(
        after_help = "Exit codes: 0 ok (prints the backup's path); 1 the target exists, \
                            no database, not a SQLite file, I/O; 64 the store is PostgreSQL (use \
                            pg_dump); 78 schema newer than this binary."
    )]
    Backup {
        /// A file that does not exist yet, or an existing directory.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Replace state.db with a backup; older schemas are migrated.
    #[command(
        after_help = "Exit codes: 0 ok; 1 not a SQLite/Portunus file, data dir not empty \
                            without --force, failed check (data dir unchanged); 64 the store is \
                            PostgreSQL (use pg_restore); 75 a server holds the data dir; 78 backup \
                            schema newer than this binary."
    )]
    Restore {
        /// The backup file.
        #[arg(long = "in", value_name = "PATH")]
        input: PathBuf,
        /// Replace an existing state.db (and its -wal/-shm); one that is not
        /// a SQLite file is moved aside, never deleted.
        #[arg(long)]
        force: bool,
    },
    /// Remove state.db, its sidecars and the lock file (dry run without --confirm).
    ///
    /// Keeps server.crt, server.key and server.toml.
    #[command(
        after_help = "Exit codes: 0 ok, dry run or nothing to remove; 1 state.db is not a \
                            SQLite file (without --force), I/O; 64 the store is PostgreSQL; 75 a \
                            server holds the data dir; 78 schema newer than this binary."
    )]
    Reset {
        /// Remove the files; without it, only list them.
        #[arg(long)]
        confirm: bool,
        /// When state.db is not a SQLite file, move it aside instead of
        /// refusing (it is never deleted).
        #[arg(long)]
        force: bool,
    },
    /// Copy the data dir's SQLite store into an empty PostgreSQL database.
    ///
    /// Verifies every row after the copy; state.db is left as it was. Stop
    /// `serve` first (it holds the data dir).
    #[command(
        after_help = "Exit codes: 0 copied and verified; 1 no SQLite store, verification \
                            failed (drop the target and retry); 69 the database cannot be reached; \
                            73 the target already holds rows; 75 a server holds the data dir; 78 \
                            the URL is not postgres:// or a schema is newer than this binary."
    )]
    MigrateStore {
        /// The target, `postgres://user:password@host:port/db`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

impl StorageCommand {
    pub fn run(self, data_dir: &Path) -> anyhow::Result<()> {
        if let StorageCommand::MigrateStore { to } = &self {
            return migrate::migrate_store(data_dir, to);
        }
        if let crate::store::Location::Url(url) = crate::serve::store_location(data_dir)? {
            let (verb, instead) = match self {
                StorageCommand::Backup { .. } => ("backup", "pg_dump --format=custom"),
                StorageCommand::Restore { .. } => ("restore", "pg_restore into an empty database"),
                StorageCommand::Reset { .. } => ("reset", "dropdb and createdb"),
                StorageCommand::MigrateStore { .. } => unreachable!("handled above"),
            };
            return Err(DomainError::new(
                ErrorCode::SqliteOnly,
                format!(
                    "{verb} works on the SQLite file of a data dir; this store is PostgreSQL at {}: use {instead} (see docs/operations.md)",
                    crate::store::postgres::redacted(&url)
                ),
            )
            .into());
        }
        match self {
            StorageCommand::Backup { out } => backup::backup(data_dir, &out),
            StorageCommand::Restore { input, force } => restore::restore(data_dir, &input, force),
            StorageCommand::Reset { confirm, force } => reset::reset(data_dir, confirm, force),
            StorageCommand::MigrateStore { .. } => unreachable!("handled above"),
        }
    }
}

/// Files SQLite keeps beside a database. A stale one next to a different
/// database can corrupt it, so they move and go together with the database.
const SIDECAR_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// How long a copy waits for a lock on either database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `path` with `suffix` appended to its file name (`state.db` → `state.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The sidecar paths of a database, whether or not they exist.
fn sidecars(db: &Path) -> Vec<PathBuf> {
    SIDECAR_SUFFIXES
        .iter()
        .map(|s| with_suffix(db, s))
        .collect()
}

/// Moves a database that is not one (no SQLite header) and its sidecars
/// aside as `<name>.unreadable-<unix seconds>`, never deleting them, and
/// returns the new name of the main file.
fn move_aside_unreadable(db: &Path) -> anyhow::Result<PathBuf> {
    // Never over an earlier one: a rename would replace it.
    let base = format!(".unreadable-{}", crate::store::now());
    let suffix = (0..)
        .map(|n| match n {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|s| !with_suffix(db, s).exists())
        .expect("some suffix is free");
    for p in sidecars(db).into_iter().filter(|p| p.exists()) {
        let to = with_suffix(&p, &suffix);
        std::fs::rename(&p, &to).with_context(|| format!("cannot move {} aside", p.display()))?;
    }
    let aside = with_suffix(db, &suffix);
    std::fs::rename(db, &aside).with_context(|| format!("cannot move {} aside", db.display()))?;
    sync_dir(db.parent().unwrap_or(Path::new(".")))?;
    eprintln!(
        "Moved the unreadable {} aside to {}.",
        db.display(),
        aside.display()
    );
    Ok(aside)
}

/// Whether a file exists and holds bytes that are not a SQLite database.
fn is_unreadable(db: &Path) -> anyhow::Result<bool> {
    let has_content = std::fs::metadata(db).is_ok_and(|m| m.len() > 0);
    Ok(has_content
        && !has_sqlite_header(db).with_context(|| format!("cannot read {}", db.display()))?)
}

/// Fails unless `path` starts with the SQLite header, so a command never
/// reads, replaces or deletes a file that is not a database.
fn require_sqlite(path: &Path, action: &str) -> anyhow::Result<()> {
    let ok = has_sqlite_header(path).with_context(|| format!("cannot read {}", path.display()))?;
    if ok {
        return Ok(());
    }
    Err(DomainError::new(
        ErrorCode::FailedPrecondition,
        format!(
            "{} is not a SQLite database (no SQLite header); refusing to {action}",
            path.display()
        ),
    )
    .into())
}

/// Refuses a schema newer than this binary, naming both versions (exit 78).
fn require_known_schema(found: i64) -> Result<(), DomainError> {
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        }
        .into());
    }
    Ok(())
}

/// Opens an existing database without write access. SQLite still reads
/// the `-wal` beside it, so a copy sees every committed transaction.
fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `PRAGMA user_version` through an open connection.
fn user_version(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Copies every page of `src` into `dst` in one step, so the copy is one
/// read transaction on `src`: a consistent snapshot even while another
/// process writes (WAL readers do not block the writer).
fn copy_database(src: &Connection, dst: &mut Connection) -> anyhow::Result<()> {
    let backup = Backup::new(src, dst).context("cannot start the SQLite backup")?;
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match backup.step(-1).context("SQLite backup failed")? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if Instant::now() > deadline {
                    anyhow::bail!("the database stayed locked for {BUSY_TIMEOUT:?}; retry");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // `StepResult` is non-exhaustive; treat anything new as "go on".
            _ => {}
        }
    }
}

/// Runs `PRAGMA integrity_check` and fails with its first findings.
fn integrity_check(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()
        .context("integrity check failed")?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
    anyhow::bail!("integrity check failed: {}", shown.join("; "))
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A temporary name for a database being written; whatever is still at
/// that name (and its sidecars) is removed on drop, so a failed command
/// leaves nothing behind. Renaming the file away first keeps it.
struct Staged {
    path: PathBuf,
}

impl Staged {
    /// Claims `path`, removing what an interrupted earlier run left there.
    fn new(path: PathBuf) -> std::io::Result<Staged> {
        remove_with_sidecars(&path)?;
        Ok(Staged { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = remove_with_sidecars(&self.path);
    }
}

/// Removes a file and its sidecars; missing files are fine.
fn remove_with_sidecars(path: &Path) -> std::io::Result<()> {
    for p in sidecars(path)
        .iter()
        .chain(std::iter::once(&path.to_path_buf()))
    {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
