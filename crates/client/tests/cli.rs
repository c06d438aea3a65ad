//! The binary as an operator runs it: exit codes, stderr, signals.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);
const TOKEN: &str = "tok-SECRET-never-logged";

fn client() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portunus-client"));
    cmd.env_clear().env("RUST_LOG", "info");
    cmd
}

/// Kills the child if a test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_bundle(path: &Path, endpoint: &str, mode: u32) {
    let bundle = serde_json::json!({
        "version": 1,
        "client_id": "01J8XTEST",
        "client_name": "edge-test",
        "server_endpoint": endpoint,
        "server_cert_sha256": "ab".repeat(32),
        "token": TOKEN,
    });
    std::fs::write(path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn without_a_bundle_the_daemon_exits_1_listing_every_path_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let out = client()
        .env("HOME", tmp.path().join("home"))
        .env("XDG_CONFIG_HOME", tmp.path().join("xdg"))
        .env("PORTUNUS_CLIENT_BUNDLE", tmp.path().join("explicit.json"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for tried in [
        tmp.path().join("explicit.json"),
        tmp.path().join("xdg/portunus/client.bundle.json"),
        tmp.path().join("home/.config/portunus/client.bundle.json"),
        "./client.bundle.json".into(),
    ] {
        assert!(
            stderr.contains(&tried.display().to_string()),
            "{tried:?} missing from {stderr}"
        );
    }
}

#[test]
fn a_bundle_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b.json");
    write_bundle(&bundle, "127.0.0.1:7443", 0o644);
    let out = client().arg("--bundle").arg(&bundle).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn enroll_with_a_bad_uri_exits_1_without_echoing_the_code() {
    let out = client()
        .args([
            "enroll",
            "portunus://h:1/enroll?pin=sha256:abc&code=SECRETCODE",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pin") && !stderr.contains("SECRETCODE"),
        "{stderr}"
    );
}

#[test]
fn sigterm_while_the_server_is_unreachable_exits_0_and_the_token_is_never_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = closed.local_addr().unwrap().to_string();
    drop(closed);
    let bundle = tmp.path().join("b.json");
    write_bundle(&bundle, &endpoint, 0o600);

    let child = client()
        .args([
            "--bundle",
            bundle.to_str().unwrap(),
            "--reconnect-initial-delay-ms",
            "10",
        ])
        .args(["--reconnect-max-delay-secs", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = running.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let mut seen = Vec::new();
    let wait_for = |seen: &mut Vec<String>, needle: &str| loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:#?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            break;
        }
    };
    // Two reconnect attempts prove the loop survives failures.
    wait_for(&mut seen, "cannot reach the control plane");
    wait_for(&mut seen, "cannot reach the control plane");

    let pid = running.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    wait_for(&mut seen, "portunus-client stopped");
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    seen.extend(lines.try_iter());
    for line in &seen {
        assert!(!line.contains(TOKEN), "token logged: {line}");
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}
