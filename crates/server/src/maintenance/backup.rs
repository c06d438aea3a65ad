//! `backup --out P`: an online copy of `state.db`. It never takes the
//! data-dir lock, so it runs beside `serve`: the database is opened
//! read-only and copied with SQLite's backup API in one read transaction.

use super::{
    copy_database, integrity_check, open_read_only, require_known_schema, require_sqlite, sync_dir,
    user_version, Staged,
};
use crate::datadir;
use anyhow::{Context, Result};
use portunus_domain::{DomainError, ErrorCode};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// `portunus-state-20261122T183000Z.db`: the name a directory target gets.
pub fn file_name(at: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let utc = at.to_offset(time::UtcOffset::UTC);
    let stamp = utc
        .format(&fmt)
        .unwrap_or_else(|_| utc.unix_timestamp().to_string());
    format!("portunus-state-{stamp}.db")
}

/// Where the backup goes: inside `out` when it is a directory, else `out`.
fn target(out: &Path, at: OffsetDateTime) -> PathBuf {
    if out.is_dir() {
        out.join(file_name(at))
    } else {
        out.to_path_buf()
    }
}

fn already_exists(path: &Path) -> anyhow::Error {
    DomainError::new(
        ErrorCode::AlreadyExists,
        format!(
            "{} already exists; backup never overwrites a file",
            path.display()
        ),
    )
    .into()
}

/// Copies the data dir's database to `out`, verifies the copy, and prints
/// the path of the new file on stdout.
pub fn backup(data_dir: &Path, out: &Path) -> Result<()> {
    let db = datadir::db_path(data_dir);
    if !db.exists() {
        anyhow::bail!(
            "there is no database at {}; nothing to back up",
            db.display()
        );
    }
    require_sqlite(&db, "back it up")?;
    if !out.is_dir() && out.as_os_str().as_encoded_bytes().ends_with(b"/") {
        anyhow::bail!("the directory {} does not exist", out.display());
    }
    let target = target(out, OffsetDateTime::now_utc());
    if target.exists() {
        return Err(already_exists(&target));
    }
    let name = target
        .file_name()
        .with_context(|| format!("{} names no file", target.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!("the directory {} does not exist", parent.display());
    }

    let src = open_read_only(&db)?;
    let version = user_version(&src)?;
    require_known_schema(version)?;

    // Written under a temporary name in the target's directory and linked
    // into place at the end, so a failure leaves no half-written backup.
    let staged = Staged::new(parent.join(format!(".{name}.partial-{}", std::process::id())))
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let mut dst = Connection::open(staged.path())
        .with_context(|| format!("cannot create {}", staged.path().display()))?;
    copy_database(&src, &mut dst)?;
    drop(src);
    // A self-contained rollback-journal file: opening the backup later
    // creates no `-wal`/`-shm` beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    integrity_check(&dst).context("the copy is not sound; no backup was written")?;
    dst.close().map_err(|(_, e)| e)?;
    std::fs::File::open(staged.path())?.sync_all()?;

    publish(staged.path(), &target)?;
    // Dropping the staged name removes the temporary link, if one is left.
    drop(staged);
    sync_dir(&parent)?;
    eprintln!(
        "Backed up {} (schema version {version}) to {}",
        db.display(),
        target.display()
    );
    println!("{}", target.display());
    Ok(())
}

/// Gives `staged` the name `target` unless `target` exists. A hard link
/// fails atomically when the name is taken; file systems without hard
/// links fall back to a check and a rename.
fn publish(staged: &Path, target: &Path) -> Result<()> {
    match std::fs::hard_link(staged, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(already_exists(target)),
        Err(_) => {
            if target.exists() {
                return Err(already_exists(target));
            }
            std::fs::rename(staged, target)
                .with_context(|| format!("cannot create {}", target.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_targets_get_a_utc_timestamped_name() {
        let at = time::macros::datetime!(2026-11-22 18:30:00 UTC);
        assert_eq!(file_name(at), "portunus-state-20261122T183000Z.db");
        let local = time::macros::datetime!(2026-11-22 20:30:00 +02:00);
        assert_eq!(file_name(local), "portunus-state-20261122T183000Z.db");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            target(dir.path(), at),
            dir.path().join("portunus-state-20261122T183000Z.db")
        );
        let file = dir.path().join("b.db");
        assert_eq!(target(&file, at), file);
    }
}
