//! The repository's shipped files and the outside tools that check them
//! (systemd-analyze, promtool, bash).

use crate::bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Both binaries, by name.
pub const BINARIES: [&str; 2] = ["portunus-server", "portunus-client"];

/// The repository's root, where `deploy/` and `docs/` live.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository, as text.
pub fn repo_file(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `cmd` to completion; a tool that cannot start fails the test with
/// what to install, never skips it.
pub fn run_tool(cmd: &mut Command, package: &str) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}); install the Debian package {package} (.ci/run does)",
            cmd.get_program()
        )
    })
}

/// Runs SQL statements with Python's sqlite3 (the tests do not link
/// SQLite). Values are formatted in by the caller: ids and numbers only.
pub fn sql_exec(db: &Path, script: &str) {
    let status = run_tool(
        Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
            .arg(db)
            .arg(script),
        "python3",
    )
    .status;
    assert!(status.success(), "sqlite script failed: {script}");
}

/// The series docs/metrics.md lists (as exposed: counters with `_total`)
/// and the label names of each.
pub fn documented_series() -> std::collections::BTreeMap<String, Vec<String>> {
    repo_file("docs/metrics.md")
        .lines()
        .filter(|l| l.starts_with("| `portunus_"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let labels = cells[3]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            (cells[1].trim_matches('`').to_string(), labels)
        })
        .collect()
}

/// Stdout of a command that must have succeeded.
pub fn success_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

/// Writes every man page of both binaries into `<dir>/man1`, so that
/// `MANPATH=<dir>` finds them.
pub fn install_man_pages(dir: &Path) {
    for name in BINARIES {
        let out = Command::new(bin(name))
            .args(["man", "--out-dir"])
            .arg(dir.join("man1"))
            .output()
            .expect("run man --out-dir");
        success_stdout(&out);
    }
}
