//! The data directory: its location, its files and the exclusive lock that
//! makes one process its only writer.

use portunus_domain::{DomainError, ErrorCode};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "state.db";
pub const LOCK_FILE: &str = "state.lock";

/// `$XDG_STATE_HOME/portunus`, else `~/.local/state/portunus`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("portunus");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/state/portunus")
}

pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Held for the life of the process that owns the data dir. The OS drops
/// the lock when the process dies, even on `kill -9`.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, DomainError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                DomainError::new(
                    ErrorCode::Internal,
                    format!("cannot open {}: {e}", path.display()),
                )
            })?;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DomainError::new(
                ErrorCode::StoreInUse,
                format!(
                    "the data dir {} is in use by another portunus-server process; stop it first",
                    dir.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(DomainError::new(
                ErrorCode::Internal,
                format!("cannot lock {}: {e}", path.display()),
            )),
        }
    }
}
