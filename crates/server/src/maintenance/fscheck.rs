//! The data dir must be on a local, persistent file system: SQLite's
//! locks and WAL shared memory are unreliable over NFS, and tmpfs or ramfs
//! lose the store on reboot. `serve` refuses those unless told otherwise.

use anyhow::{Context, Result};
use std::path::Path;

/// `statfs(2)` `f_type` values, from `linux/magic.h`.
const NFS_SUPER_MAGIC: u64 = 0x6969;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// Why a file system is unfit for the data dir, or `None` when it is fine.
pub fn unfit_reason(f_type: u64) -> Option<&'static str> {
    match f_type {
        NFS_SUPER_MAGIC => {
            Some("NFS, where SQLite's file locks and WAL shared memory are not reliable")
        }
        TMPFS_MAGIC => Some("tmpfs, which loses the store on reboot"),
        RAMFS_MAGIC => Some("ramfs, which loses the store on reboot"),
        _ => None,
    }
}

/// What `serve` does about the file system of `dir`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Fit,
    /// Unfit, but the operator allowed it; worth a warning.
    Allowed(&'static str),
}

/// Refuses an unfit file system unless `allow` is set.
pub fn check(dir: &Path, allow: bool) -> Result<Verdict> {
    let st = nix::sys::statfs::statfs(dir)
        .with_context(|| format!("cannot statfs the data dir {}", dir.display()))?;
    // The field is signed on some targets; the magic numbers are 32-bit.
    let f_type = (st.filesystem_type().0 as u64) & 0xffff_ffff;
    match unfit_reason(f_type) {
        None => Ok(Verdict::Fit),
        Some(reason) if allow => Ok(Verdict::Allowed(reason)),
        Some(reason) => anyhow::bail!(
            "the data dir {} is on {reason}; put it on a local disk, or pass --allow-unsafe-data-dir (PORTUNUS_ALLOW_UNSAFE_DATA_DIR=1) to serve from it anyway",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfit_file_systems() {
        let cases: [(u64, bool); 6] = [
            (0x6969, false),
            (0x0102_1994, false),
            (0x8584_58f6, false),
            (0xef53, true),      // ext2/3/4
            (0x5846_5342, true), // xfs
            (0x9123_683e, true), // btrfs
        ];
        for (f_type, fit) in cases {
            assert_eq!(unfit_reason(f_type).is_none(), fit, "{f_type:#x}");
        }
    }

    #[test]
    fn tmpfs_is_refused_unless_allowed() {
        let shm = Path::new("/dev/shm");
        let Ok(st) = nix::sys::statfs::statfs(shm) else {
            return;
        };
        if (st.filesystem_type().0 as u64) & 0xffff_ffff != TMPFS_MAGIC {
            return;
        }
        let err = check(shm, false).unwrap_err().to_string();
        assert!(err.contains("tmpfs"), "{err}");
        assert!(err.contains("--allow-unsafe-data-dir"), "{err}");
        assert!(matches!(check(shm, true), Ok(Verdict::Allowed(_))));
    }
}
