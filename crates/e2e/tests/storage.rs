//! Store maintenance and crash safety of the SQLite file: backup, restore,
//! reset, the schema guard and the data-dir file-system check, against the
//! real binary. They run on SQLite on the PostgreSQL pass too (what those
//! commands do on PostgreSQL is in `postgres.rs`).
use portunus_e2e::exit_code as code;
use portunus_e2e::expect_fail;
use portunus_e2e::stderr_text as stderr;

use portunus_e2e::{run_server_cli, wait_for, Server, ServerOptions, DEADLINE, SERVER_TOML};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A temp dir whose data dirs are SQLite files on either pass.
fn sqlite_tmp() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    portunus_e2e::pg::sqlite_under(tmp.path());
    tmp
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A store-maintenance command on `dir`, with no server URL or token.
fn offline(dir: &Path, args: &[&str]) -> Output {
    run_server_cli(dir, None, None, args)
}

fn ok(out: Output, what: &str) -> Output {
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
    out
}

/// Runs a Python sqlite3 snippet against `db` (bound to `c`, read-only
/// unless `write`) and returns what it prints. Python keeps this test
/// crate free of a SQLite dependency of its own.
fn py(db: &Path, write: bool, body: &str) -> String {
    let open = if write {
        "c=sqlite3.connect(sys.argv[1])"
    } else {
        "c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True)"
    };
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import sqlite3,sys\n{open}\n{body}\n"))
        .arg(db)
        .output()
        .expect("python3 with sqlite3");
    assert!(out.status.success(), "python: {}", stderr(&out));
    stdout(&out)
}

fn integrity(db: &Path) -> String {
    py(
        db,
        false,
        "print('\\n'.join(r[0] for r in c.execute('PRAGMA integrity_check')))",
    )
}

fn user_version(db: &Path) -> i64 {
    py(
        db,
        false,
        "print(c.execute('PRAGMA user_version').fetchone()[0])",
    )
    .parse()
    .unwrap()
}

fn set_user_version(db: &Path, v: i64) {
    py(
        db,
        true,
        &format!("c.execute('PRAGMA user_version={v}'); c.commit()"),
    );
}

fn client_names(db: &Path) -> BTreeSet<String> {
    py(
        db,
        false,
        "print('\\n'.join(r[0] for r in c.execute('SELECT name FROM clients')))",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn count(db: &Path, table: &str) -> usize {
    py(
        db,
        false,
        &format!("print(c.execute('SELECT count(*) FROM {table}').fetchone()[0])"),
    )
    .parse()
    .unwrap()
}

/// Every file in `dir` with its bytes: "nothing changed" is equality.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Asserts two snapshots are equal, naming the files that differ.
#[track_caller]
fn assert_same(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>, what: &str) {
    let differ: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(differ.is_empty(), "{what}: these files changed: {differ:?}");
}

fn names(dir: &Path) -> BTreeSet<String> {
    snapshot(dir).into_keys().collect()
}

/// Ephemeral loopback listeners, as the harness writes them.
fn write_config(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("server.toml"), SERVER_TOML).unwrap();
}

/// A bootstrapped data dir with one enrolled client, not served.
fn offline_store(dir: &Path) -> String {
    write_config(dir);
    // The control port is ephemeral, so a server-less enrollment needs the
    // endpoint it advertises spelled out.
    let toml = dir.join("server.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("advertised_endpoint = \"127.0.0.1:7443\"\n");
    std::fs::write(&toml, config).unwrap();
    let out = ok(
        offline(dir, &["bootstrap-superadmin", "--name", "Admin"]),
        "bootstrap",
    );
    ok(offline(dir, &["enroll-client", "edge-1"]), "offline enroll");
    stdout(&out)
}

/// `backup --out <dir>`, returning the new file.
fn backup_into(data_dir: &Path, out_dir: &Path) -> PathBuf {
    let out = ok(
        offline(data_dir, &["backup", "--out", out_dir.to_str().unwrap()]),
        "backup",
    );
    PathBuf::from(stdout(&out))
}

fn list_client_names(server: &Server) -> BTreeSet<String> {
    let v = server.api_get("/v1/clients");
    v.as_array()
        .unwrap_or_else(|| panic!("list clients: {v}"))
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn backup_during_writes_restores_consistently() {
    let tmp = sqlite_tmp();
    let (data, backups, restored) = (
        tmp.path().join("data"),
        tmp.path().join("backups"),
        tmp.path().join("restored"),
    );
    std::fs::create_dir_all(&backups).unwrap();
    let server = Server::bootstrapped(&data);
    let (url, token) = (server.url(), server.token.clone().unwrap());
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acked, stop, data) = (acked.clone(), stop.clone(), data.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            for i in 0..150 {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || start.elapsed() > Duration::from_secs(10)
                {
                    break;
                }
                let name = format!("edge-{i}");
                let out =
                    run_server_cli(&data, Some(&url), Some(&token), &["enroll-client", &name]);
                if out.status.success() {
                    acked.lock().unwrap().push(name);
                }
            }
        })
    };
    wait_for("some acknowledged enrollments", DEADLINE, || {
        (acked.lock().unwrap().len() >= 10).then_some(())
    });
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = backup_into(&data, &backups);
    // Let the load run past the backup, then stop it.
    wait_for("writes after the backup", DEADLINE, || {
        (acked.lock().unwrap().len() >= before.len() + 5).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();

    eprintln!(
        "{} enrollments acknowledged before the backup, {} in all",
        before.len(),
        acked.lock().unwrap().len()
    );
    assert_eq!(
        names(&backups).len(),
        1,
        "only the backup: {:?}",
        names(&backups)
    );
    assert_eq!(integrity(&file), "ok");
    ok(
        offline(&restored, &["restore", "--in", file.to_str().unwrap()]),
        "restore",
    );
    let db = restored.join("state.db");
    assert_eq!(integrity(&db), "ok");
    let restored_names = client_names(&db);
    for name in &before {
        assert!(
            restored_names.contains(name),
            "{name} acknowledged before the backup is missing"
        );
    }
    assert_eq!(count(&db, "clients"), restored_names.len());
    assert!(count(&db, "enrollments") >= before.len());
    // Every enrollment row belongs to a client row.
    assert_eq!(
        py(&db, false, "print(c.execute('SELECT count(*) FROM enrollments e LEFT JOIN clients c ON c.id = e.client_id WHERE c.id IS NULL').fetchone()[0])"),
        "0"
    );
}

#[test]
fn backup_refuses_overwrite_and_names_directory_targets() {
    let tmp = sqlite_tmp();
    let data = tmp.path().join("data");
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();

    // No database yet: nothing to back up.
    std::fs::create_dir_all(&data).unwrap();
    let out = offline(&data, &["backup", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(names(&out_dir).is_empty());

    offline_store(&data);
    let file = out_dir.join("named.db");
    let out = ok(
        offline(&data, &["backup", "--out", file.to_str().unwrap()]),
        "backup to a file",
    );
    assert_eq!(stdout(&out), file.display().to_string());
    assert_eq!(integrity(&file), "ok");
    assert!(client_names(&file).contains("edge-1"));
    let before = std::fs::read(&file).unwrap();

    let out = offline(&data, &["backup", "--out", file.to_str().unwrap()]);
    expect_fail(&out, 1, "already exists");
    assert_eq!(std::fs::read(&file).unwrap(), before, "untouched");

    let stamped = backup_into(&data, &out_dir);
    let name = stamped.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(stamped.parent().unwrap(), out_dir);
    let stamp = name
        .strip_prefix("portunus-state-")
        .and_then(|s| s.strip_suffix(".db"))
        .unwrap_or_else(|| panic!("{name}"));
    let b = stamp.as_bytes();
    assert!(
        b.len() == 16
            && b[8] == b'T'
            && b[15] == b'Z'
            && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit),
        "{name}"
    );
    assert_eq!(integrity(&stamped), "ok");
    // No temporary files were left beside the backups.
    assert_eq!(
        names(&out_dir),
        BTreeSet::from(["named.db".to_string(), name])
    );
}

#[test]
fn restore_into_an_empty_dir_serves_with_the_old_token() {
    let tmp = sqlite_tmp();
    let (data, fresh) = (tmp.path().join("data"), tmp.path().join("fresh"));
    let mut server = Server::bootstrapped(&data);
    server.cli_ok(&["enroll-client", "edge-a"]);
    let file = backup_into(&data, tmp.path());
    server.terminate();

    ok(
        offline(&fresh, &["restore", "--in", file.to_str().unwrap()]),
        "restore",
    );
    assert_eq!(integrity(&fresh.join("state.db")), "ok");
    write_config(&fresh);
    let mut restored = Server::start(&fresh);
    restored.token = server.token.clone();
    let listed = restored.cli_ok(&["list-clients", "--format", "json"]);
    let v: Value = serde_json::from_str(&listed).unwrap();
    assert!(
        v.as_array().unwrap().iter().any(|c| c["name"] == "edge-a"),
        "{listed}"
    );
}

#[test]
fn restore_refuses_a_non_empty_dir_without_force() {
    let tmp = sqlite_tmp();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let token_a = offline_store(&a);
    let file = backup_into(&a, tmp.path());
    let token_b = offline_store(&b);
    ok(offline(&b, &["enroll-client", "only-in-b"]), "enroll in b");
    let before = snapshot(&b);

    let out = offline(&b, &["restore", "--in", file.to_str().unwrap()]);
    expect_fail(&out, 1, "--force");
    assert_same(&before, &snapshot(&b), "the data dir is unchanged");

    ok(
        offline(&b, &["restore", "--in", file.to_str().unwrap(), "--force"]),
        "restore --force",
    );
    let db = b.join("state.db");
    assert_eq!(integrity(&db), "ok");
    assert_eq!(client_names(&db), BTreeSet::from(["edge-1".to_string()]));
    let left: BTreeSet<String> = names(&b)
        .into_iter()
        .filter(|n| n.contains("restoring") || n.contains("replaced"))
        .collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
    // A's token works on B now; B's own does not.
    let mut server = Server::start(&b);
    server.token = Some(token_a);
    assert!(list_client_names(&server).contains("edge-1"));
    server.token = Some(token_b);
    assert_eq!(server.cli(&["list-clients"]).status.code(), Some(1));
}

#[test]
fn restore_checks_the_header_and_rolls_back_a_bad_backup() {
    let tmp = sqlite_tmp();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    offline_store(&a);
    let good = backup_into(&a, tmp.path());
    offline_store(&b);
    let before = snapshot(&b);

    let foreign = tmp.path().join("notes.txt");
    std::fs::write(&foreign, "these are not the droids\n".repeat(100)).unwrap();
    let out = offline(
        &b,
        &["restore", "--in", foreign.to_str().unwrap(), "--force"],
    );
    expect_fail(&out, 1, "not a SQLite database");
    assert_same(&before, &snapshot(&b), "the data dir is unchanged");

    // A SQLite file that is not a Portunus store.
    let other = tmp.path().join("other.db");
    py(&other, true, "c.execute('CREATE TABLE t (x)'); c.commit()");
    let out = offline(&b, &["restore", "--in", other.to_str().unwrap(), "--force"]);
    expect_fail(&out, 1, "not a Portunus");
    assert_same(&before, &snapshot(&b), "the data dir is unchanged");

    // A damaged backup: the file header is fine, page 2 (the root of the
    // first table, always in use) is not.
    let damaged = tmp.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    bytes[page..2 * page].fill(0xa5);
    std::fs::write(&damaged, bytes).unwrap();
    let out = offline(
        &b,
        &["restore", "--in", damaged.to_str().unwrap(), "--force"],
    );
    assert_ne!(code(&out), 0, "a damaged backup must not restore");
    eprintln!("damaged backup refused: {}", stderr(&out).trim());
    assert_same(
        &before,
        &snapshot(&b),
        &format!("rolled back: {}", stderr(&out)),
    );
}

#[test]
fn reset_dry_run_then_confirm() {
    let tmp = sqlite_tmp();
    let data = tmp.path().join("data");
    let mut server = Server::bootstrapped(&data);
    server.cli_ok(&["enroll-client", "edge-1"]);
    // A killed server leaves the WAL sidecars for reset to clean up.
    server.kill9();
    for f in [
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "state.lock",
        "server.crt",
        "server.key",
        "server.toml",
    ] {
        assert!(data.join(f).exists(), "{f}");
    }
    let before = snapshot(&data);

    let out = ok(offline(&data, &["reset"]), "dry run");
    for f in ["state.db", "state.db-wal", "state.db-shm", "state.lock"] {
        let line = format!("would remove {}", data.join(f).display());
        assert!(
            stdout(&out).lines().any(|l| l == line),
            "{f}: {}",
            stdout(&out)
        );
    }
    assert!(stderr(&out).contains("--confirm"), "{}", stderr(&out));
    assert_same(&before, &snapshot(&data), "a dry run changes nothing");

    let out = ok(offline(&data, &["reset", "--confirm"]), "reset");
    assert!(stdout(&out).contains("removed"), "{}", stdout(&out));
    assert_eq!(
        names(&data),
        BTreeSet::from(["server.crt", "server.key", "server.toml"].map(String::from))
    );
    for f in ["server.crt", "server.key", "server.toml"] {
        assert_eq!(
            std::fs::read(data.join(f)).unwrap(),
            before[f],
            "{f} kept as it was"
        );
    }
    // Nothing left to remove, and no data dir at all: both no-ops.
    let out = ok(offline(&data, &["reset", "--confirm"]), "second reset");
    assert!(
        stderr(&out).contains("Nothing to remove"),
        "{}",
        stderr(&out)
    );
    let gone = tmp.path().join("never-created");
    ok(
        offline(&gone, &["reset", "--confirm"]),
        "reset of a missing dir",
    );
    assert!(!gone.exists());
    // The same certificate serves again over a fresh store.
    let again = Server::bootstrapped(&data);
    assert_eq!(again.pin, server.pin);
}

#[test]
fn reset_refuses_a_foreign_state_db() {
    let tmp = sqlite_tmp();
    write_config(tmp.path());
    std::fs::write(
        tmp.path().join("state.db"),
        "my precious notes\n".repeat(10),
    )
    .unwrap();
    let before = snapshot(tmp.path());
    for args in [&["reset"][..], &["reset", "--confirm"][..]] {
        let out = offline(tmp.path(), args);
        expect_fail(&out, 1, "not a SQLite database");
    }
    let after = snapshot(tmp.path());
    // The lock file is the only addition; the foreign file is untouched.
    assert_eq!(after.get("state.db"), before.get("state.db"));
    assert!(
        after
            .keys()
            .all(|k| before.contains_key(k) || k == "state.lock"),
        "{:?}",
        after.keys()
    );
}

#[test]
fn newer_schema_exits_78_everywhere() {
    let tmp = sqlite_tmp();
    let data = tmp.path().join("data");
    offline_store(&data);
    let db = data.join("state.db");
    let latest = user_version(&db);
    set_user_version(&db, latest + 998);
    let found = (latest + 998).to_string();
    let names_both = |out: &Output| {
        let e = stderr(out);
        assert!(
            e.contains(&found) && e.contains(&format!("({latest})")),
            "{e}"
        );
        assert!(e.contains("schema_too_new"), "{e}");
    };
    let before = snapshot(&data);
    let out_file = tmp.path().join("b.db");
    for args in [
        vec!["serve"],
        vec!["backup", "--out", out_file.to_str().unwrap()],
        vec!["reset"],
        vec!["reset", "--confirm"],
        vec!["bootstrap-superadmin", "--name", "X"],
        vec!["enroll-client", "edge-2"],
    ] {
        let out = offline(&data, &args);
        assert_eq!(code(&out), 78, "{args:?}: {}", stderr(&out));
        names_both(&out);
    }
    assert!(!out_file.exists());
    assert_eq!(snapshot(&data).get("state.db"), before.get("state.db"));

    // A backup from a newer binary is refused before the data dir changes.
    let newer = tmp.path().join("newer.db");
    std::fs::copy(&db, &newer).unwrap();
    let fresh = tmp.path().join("fresh");
    let out = offline(&fresh, &["restore", "--in", newer.to_str().unwrap()]);
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    names_both(&out);
    assert!(!fresh.join("state.db").exists());
}

#[test]
fn restore_and_reset_refuse_while_serving() {
    let tmp = sqlite_tmp();
    let data = tmp.path().join("data");
    let server = Server::bootstrapped(&data);
    let file = backup_into(&data, tmp.path());
    for args in [
        vec!["restore", "--in", file.to_str().unwrap(), "--force"],
        vec!["reset", "--confirm"],
        vec!["reset"],
    ] {
        let out = offline(&data, &args);
        expect_fail(&out, 75, "store_in_use");
    }
    assert!(list_client_names(&server).is_empty());
    assert_eq!(integrity(&data.join("state.db")), "ok");
}

#[test]
fn serve_refuses_a_tmpfs_data_dir_unless_allowed() {
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", "/dev/shm"])
        .output();
    if !fs.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs") {
        eprintln!("skipped: /dev/shm is not tmpfs here");
        return;
    }
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    write_config(dir.path());
    let out = offline(dir.path(), &["serve"]);
    expect_fail(&out, 1, "tmpfs");
    assert!(
        stderr(&out).contains("--allow-unsafe-data-dir"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("state.db").exists());

    let mut s = Server::start_with(
        dir.path(),
        ServerOptions {
            extra_args: vec!["--allow-unsafe-data-dir".into()],
            env: vec![],
        },
    );
    s.terminate();
    let _s = Server::start_with(
        dir.path(),
        ServerOptions {
            extra_args: vec![],
            env: vec![("PORTUNUS_ALLOW_UNSAFE_DATA_DIR".into(), "1".into())],
        },
    );
}

/// Kills the server with SIGKILL, sometimes mid-request, and restarts it:
/// every enrollment the API acknowledged must survive, and the database
/// must check out.
#[test]
fn kill9_loses_no_acknowledged_write() {
    let tmp = sqlite_tmp();
    let data = tmp.path().join("data");
    let mut server = Server::bootstrapped(&data);
    let token = server.token.clone().unwrap();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let start = Instant::now();
    let (mut rounds, mut in_flight_acked) = (0, 0);
    while rounds < 30 && start.elapsed() < Duration::from_secs(45) {
        for j in 0..2 {
            let name = format!("c{rounds}-{j}");
            if server.cli(&["enroll-client", &name]).status.success() {
                acked.insert(name);
            }
        }
        // One request straight to the API, so the kill can land inside it;
        // a 201 is an acknowledgement.
        let in_flight = {
            let (url, token) = (server.url(), token.clone());
            let name = format!("c{rounds}-x");
            std::thread::spawn(move || {
                let resp = reqwest::blocking::Client::new()
                    .post(format!("{url}/v1/client-enrollments"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "name": name }))
                    .send();
                resp.is_ok_and(|r| r.status().as_u16() == 201)
                    .then_some(name)
            })
        };
        // Vary where the kill lands relative to the in-flight request.
        std::thread::sleep(Duration::from_millis((rounds % 4) * 2));
        server.kill9();
        if let Some(name) = in_flight.join().unwrap() {
            acked.insert(name);
            in_flight_acked += 1;
        }
        server = Server::start(&data);
        server.token = Some(token.clone());
        let listed = list_client_names(&server);
        let lost: Vec<_> = acked.difference(&listed).collect();
        assert!(lost.is_empty(), "round {rounds}: lost {lost:?}");
        assert_eq!(integrity(&data.join("state.db")), "ok", "round {rounds}");
        rounds += 1;
    }
    eprintln!(
        "{rounds} rounds, {} acknowledged enrollments, {in_flight_acked} acknowledged while the kill was coming, {:?}",
        acked.len(),
        start.elapsed()
    );
    assert!(rounds >= 10, "only {rounds} rounds ran");
    assert!(
        acked.len() >= rounds as usize * 2,
        "{} acknowledged",
        acked.len()
    );
}

/// The unreadable files a data dir holds, moved aside by a recovery.
fn moved_aside(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".unreadable-"))
        .collect()
}

#[test]
fn a_destroyed_store_is_recovered_without_deleting_it() {
    let tmp = sqlite_tmp();
    let good = tmp.path().join("good");
    portunus_e2e::bootstrap_superadmin(&good);
    let backup = backup_into(&good, tmp.path());
    let dir = tmp.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.toml"), SERVER_TOML).unwrap();
    let db = dir.join("state.db");
    let garbage = b"this was a database before the disk went bad".repeat(100);

    // serve says what is wrong and what to run.
    std::fs::write(&db, &garbage).unwrap();
    let out = offline(&dir, &["serve"]);
    expect_fail(&out, 1, "cannot be read as a Portunus database");
    let err = stderr(&out);
    assert!(
        err.contains("restore --in") && err.contains("reset --confirm --force"),
        "{err}"
    );

    // Without --force both recoveries refuse; with it they move the file
    // aside, never deleting it.
    expect_fail(
        &offline(&dir, &["reset", "--confirm"]),
        1,
        "no SQLite header",
    );
    let input = backup.to_str().unwrap();
    expect_fail(
        &offline(&dir, &["restore", "--in", input]),
        1,
        "pass --force",
    );
    ok(
        offline(&dir, &["reset", "--confirm", "--force"]),
        "reset --force",
    );
    assert!(!db.exists());
    let aside = moved_aside(&dir);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);

    std::fs::write(&db, &garbage).unwrap();
    ok(
        offline(&dir, &["restore", "--in", input, "--force"]),
        "restore --force",
    );
    let aside = moved_aside(&dir);
    assert_eq!(aside.len(), 2, "both broken files kept: {aside:?}");
    for p in &aside {
        assert_eq!(std::fs::read(p).unwrap(), garbage);
    }
    assert_eq!(integrity(&db), "ok");
    // An empty file is nothing to protect: restored over without --force.
    std::fs::remove_file(&db).unwrap();
    std::fs::write(&db, b"").unwrap();
    ok(
        offline(&dir, &["restore", "--in", input]),
        "restore over empty",
    );
    assert_eq!(integrity(&db), "ok");
}
