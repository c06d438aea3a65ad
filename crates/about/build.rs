//! Stamps the build with the git commit and the build date, so that a
//! running binary can say which source it came from. Outside a git checkout
//! (a source tarball) the commit is "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The paths whose change means another commit is checked out: HEAD, the
/// branch it names and packed-refs. Asking git for their paths keeps this
/// right in linked worktrees, whose HEAD and refs live in different places.
/// A branch that is only packed (as in a fresh clone) has no file yet: its
/// nearest existing directory is watched instead, which changes when the
/// next commit writes the file. A missing path would make Cargo rerun the
/// script, and so rebuild both binaries, on every build.
fn watched_git_paths() -> Vec<PathBuf> {
    let mut names = vec!["HEAD".to_string(), "packed-refs".to_string()];
    names.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    names
        .iter()
        .filter_map(|name| git(&["rev-parse", "--git-path", name]))
        .filter_map(|path| {
            PathBuf::from(path)
                .ancestors()
                .find(|p| p.exists() && !p.as_os_str().is_empty())
                .map(PathBuf::from)
        })
        .collect()
}

/// `SOURCE_DATE_EPOCH` when set, for reproducible builds; otherwise today.
fn build_date() -> String {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map_or_else(|_| "unknown".to_string(), |t| t.date().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PORTUNUS_COMMIT={commit}");
    println!("cargo:rustc-env=PORTUNUS_BUILD_DATE={}", build_date());
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    for path in watched_git_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
