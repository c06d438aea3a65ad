//! `reset [--confirm]`: removes `state.db`, its sidecars and the lock file,
//! keeping the certificate, key and `server.toml`. Without `--confirm` it
//! runs the same checks and only lists what it would remove.

use super::{require_known_schema, require_sqlite, sidecars, sync_dir, with_suffix};
use crate::datadir::{self, DirLock, LOCK_FILE};
use crate::store::{schema_version, SQLITE_HEADER};
use anyhow::{Context, Result};
use portunus_domain::{DomainError, ErrorCode};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files reset leaves in place, listed so the operator sees they survive.
const KEPT: [&str; 3] = ["server.crt", "server.key", "server.toml"];

pub fn reset(data_dir: &Path, confirm: bool, force: bool) -> Result<()> {
    if !data_dir.is_dir() {
        eprintln!("Nothing to remove: {} does not exist.", data_dir.display());
        return Ok(());
    }
    let _lock = if confirm {
        Some(DirLock::acquire(data_dir)?)
    } else {
        refuse_if_held(data_dir)?;
        None
    };
    let db = datadir::db_path(data_dir);
    // An empty file holds nothing to protect; SQLite reads it as an empty
    // database.
    if force && super::is_unreadable(&db)? {
        if !confirm {
            println!("would move {} aside (not a SQLite file)", db.display());
            eprintln!("Dry run: nothing was moved. Run again with --confirm.");
            return Ok(());
        }
        super::move_aside_unreadable(&db)?;
    }
    let has_content = std::fs::metadata(&db).is_ok_and(|m| m.len() > 0);
    if has_content {
        require_sqlite(&db, "remove it (--force moves it aside)")?;
        require_known_schema(stored_version(&db, confirm)?)?;
    }
    // Sidecars before the database: a stale `-wal` must never outlive it.
    let mut doomed: Vec<PathBuf> = sidecars(&db)
        .into_iter()
        .chain(std::iter::once(db.clone()))
        .filter(|p| p.exists())
        .collect();
    if doomed.is_empty() {
        eprintln!(
            "Nothing to remove: {} holds no database.",
            data_dir.display()
        );
        return Ok(());
    }
    let lock_file = data_dir.join(LOCK_FILE);
    if lock_file.exists() {
        doomed.push(lock_file);
    }
    let kept: Vec<PathBuf> = KEPT
        .iter()
        .map(|k| data_dir.join(k))
        .filter(|p| p.exists())
        .collect();

    if !confirm {
        for p in &doomed {
            println!("would remove {}", p.display());
        }
        for p in &kept {
            println!("would keep {}", p.display());
        }
        eprintln!("Dry run: nothing was removed. Run again with --confirm to remove these files.");
        return Ok(());
    }
    for p in &doomed {
        std::fs::remove_file(p).with_context(|| format!("cannot remove {}", p.display()))?;
        println!("removed {}", p.display());
    }
    for p in &kept {
        println!("kept {}", p.display());
    }
    sync_dir(data_dir)?;
    Ok(())
}

/// Fails with `store_in_use` while a process holds the data dir, without
/// creating the lock file (a dry run changes nothing).
fn refuse_if_held(data_dir: &Path) -> Result<()> {
    let Ok(file) = std::fs::File::open(data_dir.join(LOCK_FILE)) else {
        return Ok(());
    };
    match file.try_lock() {
        Err(std::fs::TryLockError::WouldBlock) => Err(DomainError::new(
            ErrorCode::StoreInUse,
            format!(
                "the data dir {} is in use by a portunus-server process; stop it first",
                data_dir.display()
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// The schema version of a database that no server is using. The header
/// field of the main file is read directly, which changes no file; it
/// misses only a migration still waiting in the WAL, so when the files are
/// about to go (`through_wal`) and a `-wal` exists, SQLite reads it instead.
fn stored_version(db: &Path, through_wal: bool) -> Result<i64> {
    if through_wal && with_suffix(db, "-wal").exists() {
        let conn = super::open_read_only(db)?;
        return Ok(schema_version(&conn)?);
    }
    let mut header = [0u8; 64];
    std::fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("cannot read {}", db.display()))?;
    Ok(header_user_version(&header))
}

/// `user_version` is the big-endian 32-bit integer at offset 60 of the
/// database header.
fn header_user_version(header: &[u8; 64]) -> i64 {
    debug_assert!(header.starts_with(SQLITE_HEADER));
    i64::from(i32::from_be_bytes([
        header[60], header[61], header[62], header[63],
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version_matches_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 42;")
            .unwrap();
        conn.close().unwrap();
        assert_eq!(stored_version(&db, false).unwrap(), 42);
        assert_eq!(stored_version(&db, true).unwrap(), 42);
        assert!(!with_suffix(&db, "-wal").exists());
    }
}
