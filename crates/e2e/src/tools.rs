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

/// Runs SQL statements on the store data dir `dir` serves from: its SQLite
/// file through Python's sqlite3 (the tests do not link SQLite), or on the
/// PostgreSQL pass its database through psql. Values are formatted in by
/// the caller (ids and numbers only), in SQL both engines read.
pub fn store_exec(dir: &Path, script: &str) {
    if let Some(url) = crate::pg::database_for(dir) {
        crate::pg::psql(&url, script);
        return;
    }
    let status = run_tool(
        Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
            .arg(dir.join("state.db"))
            .arg(script),
        "python3",
    )
    .status;
    assert!(status.success(), "sqlite script failed: {script}");
}

/// Sets the schema version the store of `dir` claims: SQLite's
/// `PRAGMA user_version`, or PostgreSQL's `portunus_schema` row.
pub fn set_schema_version(dir: &Path, v: i64) {
    match crate::pg::database_for(dir) {
        Some(url) => {
            crate::pg::psql(&url, &format!("UPDATE portunus_schema SET version = {v}"));
        }
        None => store_exec(dir, &format!("PRAGMA user_version = {v};")),
    }
}

/// One query's rows as JSON arrays, from the store `dir` serves from.
pub fn store_query(dir: &Path, query: &str) -> serde_json::Value {
    use serde_json::Value;
    if let Some(url) = crate::pg::database_for(dir) {
        const NULL: &str = "\u{1e}";
        let out = run_tool(
            crate::pg::psql_command(&url, query)
                .args(["-F", "\u{1f}"])
                .arg("-P")
                .arg(format!("null={NULL}")),
            "postgresql",
        );
        let text = success_stdout(&out);
        let rows = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                Value::Array(
                    line.split('\u{1f}')
                        .map(|v| match v {
                            NULL => Value::Null,
                            v => v
                                .parse::<i64>()
                                .map(Value::from)
                                .unwrap_or_else(|_| Value::from(v)),
                        })
                        .collect(),
                )
            })
            .collect();
        return Value::Array(rows);
    }
    let out = run_tool(
        Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); print(json.dumps(c.execute(sys.argv[2]).fetchall()))")
            .arg(dir.join("state.db"))
            .arg(query),
        "python3",
    );
    serde_json::from_slice(success_stdout(&out).as_bytes()).unwrap()
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
