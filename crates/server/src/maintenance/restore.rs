//! `restore --in P [--force]`: replaces `state.db` with a backup. The
//! backup is checked, copied next to the database, migrated and verified
//! before anything in the data dir changes; the swap puts the old files
//! back if any step of it fails.

use super::{
    copy_database, integrity_check, open_read_only, require_known_schema, require_sqlite, sidecars,
    sync_dir, user_version, with_suffix, Staged,
};
use crate::datadir::{self, DirLock};
use crate::store::{Store, LATEST_VERSION};
use anyhow::{Context, Result};
use portunus_domain::{DomainError, ErrorCode};
use rusqlite::Connection;
use std::io;
use std::path::{Path, PathBuf};

/// Where the new database is prepared, beside `state.db`.
const STAGED_SUFFIX: &str = ".restoring";
/// Where the old database and its sidecars wait until the swap is done.
const ASIDE_SUFFIX: &str = ".replaced";

pub fn restore(data_dir: &Path, input: &Path, force: bool) -> Result<()> {
    // The backup first: nothing in the data dir changes for a bad input.
    if !input.is_file() {
        anyhow::bail!("{} is not a readable file", input.display());
    }
    require_sqlite(input, "restore it")?;
    let src = open_read_only(input)?;
    let from = user_version(&src)?;
    require_known_schema(from)?;
    if from < 1 {
        return Err(DomainError::new(
            ErrorCode::FailedPrecondition,
            format!(
                "{} is a SQLite database but not a Portunus state database (schema version {from})",
                input.display()
            ),
        )
        .into());
    }

    datadir::ensure_dir(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let _lock = DirLock::acquire(data_dir)?;
    let db = datadir::db_path(data_dir);
    let empty = std::fs::metadata(&db).is_ok_and(|m| m.len() == 0);
    if db.exists() && !empty {
        if !force {
            return Err(DomainError::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "{} already holds a database; pass --force to replace it (back it up first)",
                    data_dir.display()
                ),
            )
            .into());
        }
        if super::is_unreadable(&db)? {
            super::move_aside_unreadable(&db)?;
        }
    }
    let old_aside = with_suffix(&db, ASIDE_SUFFIX);
    if !db.exists() && old_aside.exists() {
        anyhow::bail!(
            "{} is left from an interrupted restore and there is no state.db; rename it (and its sidecars) back or remove it, then retry",
            old_aside.display()
        );
    }
    // Leftovers of a restore that was killed after the swap.
    for p in std::iter::once(db.clone()).chain(sidecars(&db)) {
        let _ = std::fs::remove_file(with_suffix(&p, ASIDE_SUFFIX));
    }

    let staged = Staged::new(with_suffix(&db, STAGED_SUFFIX))
        .with_context(|| format!("cannot write in {}", data_dir.display()))?;
    {
        let mut dst = Connection::open(staged.path())
            .with_context(|| format!("cannot create {}", staged.path().display()))?;
        copy_database(&src, &mut dst)?;
        dst.close().map_err(|(_, e)| e)?;
    }
    drop(src);
    prepare(staged.path())?;
    swap_in(&db, staged.path()).with_context(|| {
        format!(
            "cannot put the restored database in place at {}; the data dir is unchanged",
            db.display()
        )
    })?;
    drop(staged);

    eprintln!(
        "Restored {} into {} (schema version {from}{}).",
        input.display(),
        db.display(),
        if from < LATEST_VERSION {
            format!(", migrated to {LATEST_VERSION}")
        } else {
            String::new()
        }
    );
    if !data_dir.join("server.key").exists() {
        eprintln!("Note: the data dir has no server.key; serve generates a new certificate, so clients enrolled against the old one must re-enroll unless you restore server.crt and server.key too.");
    }
    Ok(())
}

/// Migrates the staged copy, checks it, and folds its WAL back into the
/// main file so the swap moves a single file.
fn prepare(staged: &Path) -> Result<()> {
    let store = Store::open(staged)
        .map_err(|e| anyhow::anyhow!("the backup cannot be opened and migrated: {e}"))?;
    let sqlite = |f: &dyn Fn(&rusqlite::Connection) -> Result<()>| -> Result<()> {
        store.sqlite(f).expect("a staged restore is a SQLite file")
    };
    sqlite(&|c| integrity_check(c).context("the restored database is not sound"))?;
    sqlite(&|c| Ok(c.pragma_update(None, "journal_mode", "DELETE")?))?;
    drop(store);
    if sidecars(staged).iter().any(|p| p.exists()) {
        anyhow::bail!(
            "SQLite left files beside {}; not restoring",
            staged.display()
        );
    }
    std::fs::File::open(staged)?.sync_all()?;
    Ok(())
}

/// A file moved out of the way, with the name it had.
struct Aside {
    original: PathBuf,
    aside: PathBuf,
}

/// Puts `staged` in place of `db`. The old database is hard-linked aside
/// (so `state.db` names a whole database at every instant) and its sidecars
/// renamed aside; on failure every one of them goes back under its name.
fn swap_in(db: &Path, staged: &Path) -> io::Result<()> {
    checkpoint_best_effort(db);
    let mut moved: Vec<Aside> = Vec::new();
    let result = move_aside_and_replace(db, staged, &mut moved);
    let dir = db.parent().unwrap_or(Path::new("."));
    match result {
        Ok(()) => {
            for m in &moved {
                let _ = std::fs::remove_file(&m.aside);
            }
            sync_dir(dir)
        }
        Err(e) => {
            for m in moved.iter().rev() {
                match std::fs::rename(&m.aside, &m.original) {
                    // Renaming a hard link onto its twin succeeds and keeps
                    // both names; the original name is the old file again.
                    Ok(()) if m.aside.exists() => {
                        let _ = std::fs::remove_file(&m.aside);
                    }
                    Ok(()) => {}
                    Err(back) => {
                        tracing::error!(file = %m.original.display(), error = %back, "cannot put a file back")
                    }
                }
            }
            let _ = sync_dir(dir);
            Err(e)
        }
    }
}

fn move_aside_and_replace(db: &Path, staged: &Path, moved: &mut Vec<Aside>) -> io::Result<()> {
    if db.exists() {
        let aside = with_suffix(db, ASIDE_SUFFIX);
        if std::fs::hard_link(db, &aside).is_err() {
            std::fs::rename(db, &aside)?;
        }
        moved.push(Aside {
            original: db.to_path_buf(),
            aside,
        });
    }
    for s in sidecars(db) {
        if s.exists() {
            let aside = with_suffix(&s, ASIDE_SUFFIX);
            std::fs::rename(&s, &aside)?;
            moved.push(Aside { original: s, aside });
        }
    }
    std::fs::rename(staged, db)?;
    sync_dir(db.parent().unwrap_or(Path::new(".")))
}

/// Folds the old database's WAL into its main file, so that it is whole by
/// itself while it waits aside. A database that will not open is replaced
/// as it is.
fn checkpoint_best_effort(db: &Path) {
    if !crate::store::has_sqlite_header(db).unwrap_or(false) {
        return;
    }
    if let Ok(conn) = Connection::open(db) {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = conn.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_swap_puts_the_old_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        std::fs::write(&db, b"old database").unwrap();
        std::fs::write(with_suffix(&db, "-wal"), b"old wal").unwrap();
        // A staged file that does not exist makes the final rename fail.
        let missing = dir.path().join("state.db.restoring");
        swap_in(&db, &missing).unwrap_err();
        assert_eq!(std::fs::read(&db).unwrap(), b"old database");
        assert_eq!(std::fs::read(with_suffix(&db, "-wal")).unwrap(), b"old wal");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["state.db", "state.db-wal"]);
    }

    #[test]
    fn a_swap_replaces_the_database_and_drops_old_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        std::fs::write(&db, b"old database").unwrap();
        std::fs::write(with_suffix(&db, "-shm"), b"old shm").unwrap();
        let staged = dir.path().join("state.db.restoring");
        std::fs::write(&staged, b"new database").unwrap();
        swap_in(&db, &staged).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"new database");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["state.db"]);
    }
}
