//! Harness for process-level tests: runs the real `portunus-server` and
//! `portunus-client` binaries on ephemeral loopback ports, in temp dirs,
//! and kills them on drop. Everything waits by polling with a deadline.

pub mod browser;
mod log;
pub mod net;
pub mod pg;
pub mod promql;
pub mod tools;

pub use log::Log;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// Path of a workspace binary next to the running test's directory.
/// Cargo builds the binaries because their packages have integration tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`",
        path.display()
    );
    path
}

/// Polls `f` until it yields `Some`, panicking with `what` at the deadline.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `f` with a growing pause until it yields `Some`, or returns `None`
/// once `timeout` has passed, for callers that report the failure.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn clean_env(cmd: &mut Command, home: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTUNUS_") || k.starts_with("XDG_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home);
    cmd.env("RUST_LOG", "info");
}

/// On the PostgreSQL pass, points a server process on `dir` at that data
/// dir's own database.
fn engine_env(cmd: &mut Command, dir: &Path) {
    if let Some(url) = pg::database_for(dir) {
        cmd.env("PORTUNUS_DATABASE_URL", url);
    }
}

/// Sends a signal through kill(1), which keeps this crate free of unsafe.
fn signal(child: &Child, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

/// A running `portunus-server serve`.
pub struct Server {
    pub dir: PathBuf,
    child: Option<Child>,
    pub log: Log,
    pub control: SocketAddr,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
    pub pin: String,
    pub token: Option<String>,
}

pub struct ServerOptions {
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Writes a server.toml with ephemeral loopback listeners (unless one
    /// exists) and starts the server.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(
            dir,
            ServerOptions {
                extra_args: vec![],
                env: vec![],
            },
        )
    }

    pub fn start_with(dir: &Path, opts: ServerOptions) -> Server {
        Self::launch(dir, opts, None)
    }

    /// A bootstrapped server under a descriptor limit of `nofile` (soft
    /// and hard), applied by prlimit(1) from util-linux.
    pub fn bootstrapped_with_nofile(dir: &Path, nofile: u64) -> Server {
        let token = bootstrap_superadmin(dir);
        let opts = ServerOptions {
            extra_args: vec![],
            env: vec![],
        };
        let mut s = Self::launch(dir, opts, Some(nofile));
        s.token = Some(token);
        s
    }

    fn launch(dir: &Path, opts: ServerOptions, nofile: Option<u64>) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let toml = dir.join("server.toml");
        let ours = !toml.exists();
        let mut attempt = 0;
        let (child, log, listening) = loop {
            attempt += 1;
            if ours {
                std::fs::write(&toml, pinnable_server_toml()).unwrap();
            }
            let mut child = Self::spawn(dir, &opts, nofile);
            let log = Log::default();
            log.follow(child.stderr.take().unwrap());
            let exited = wait_for("server to listen", DEADLINE, || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Err(status));
                }
                log.find_json("listening").map(Ok)
            });
            match exited {
                Ok(listening) => break (child, log, listening),
                // The probed ports can be taken before the server binds them.
                Err(_) if ours && attempt < 5 && log.text().contains("Address already in use") => {
                    continue
                }
                Err(status) => panic!("server exited with {status}:\n{}", log.text()),
            }
        };
        let addr = |k: &str| listening[k].as_str().unwrap().parse().unwrap();
        Server {
            dir: dir.to_path_buf(),
            control: addr("control"),
            http: addr("operator_http"),
            metrics: addr("metrics"),
            pin: listening["pin"].as_str().unwrap().to_string(),
            child: Some(child),
            log,
            token: None,
        }
    }

    fn spawn(dir: &Path, opts: &ServerOptions, nofile: Option<u64>) -> Child {
        let mut cmd = match nofile {
            None => Command::new(bin("portunus-server")),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(bin("portunus-server"));
                c
            }
        };
        clean_env(&mut cmd, dir);
        engine_env(&mut cmd, dir);
        cmd.arg("--data-dir")
            .arg(dir)
            .arg("serve")
            .args(&opts.extra_args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn portunus-server")
    }

    /// A fresh data dir bootstrapped with a superadmin, then served.
    pub fn bootstrapped(dir: &Path) -> Server {
        let token = bootstrap_superadmin(dir);
        let mut s = Server::start(dir);
        s.token = Some(token);
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Runs an operator command against this server with its token.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_server_cli(&self.dir, Some(&self.url()), self.token.as_deref(), args)
    }

    /// Like `cli`, asserting success and returning trimmed stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "portunus-server {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Pushes a rule on a free port of `client` (`args` follow the listen
    /// port), retrying when the probed port got taken in between (exit 6).
    /// The rule id and the port.
    pub fn push_on_free_port(&self, client: &str, args: &[&str]) -> (String, u16) {
        for _ in 0..5 {
            let port = net::free_port().to_string();
            let mut all = vec!["push-rule", client, &port];
            all.extend_from_slice(args);
            let out = self.cli(&all);
            if out.status.success() {
                let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
                return (id, port.parse().unwrap());
            }
            assert_eq!(exit_code(&out), 6, "push-rule: {}", stderr_text(&out));
        }
        panic!("no free port after 5 tries");
    }

    /// Enrolls `name` through the API and redeems it with the real client.
    pub fn enroll(&self, name: &str, bundle: &Path) {
        let command = self.cli_ok(&["enroll-client", name]);
        let uri = command
            .split('\'')
            .nth(1)
            .unwrap_or_else(|| panic!("no URI in {command:?}"))
            .to_string();
        let out = client_cmd(bundle.parent().unwrap())
            .args(["enroll", &uri, "--out"])
            .arg(bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server running");
        signal(&c, 15);
        wait_for("server to exit", DEADLINE, || c.try_wait().unwrap())
    }

    /// Pins this run's bound ports into server.toml so a restart listens
    /// where clients already dial.
    pub fn pin_ports(&self) {
        std::fs::write(
            self.dir.join("server.toml"),
            format!(
                "control_listen = \"{}\"\noperator_http_listen = \"{}\"\nmetrics_listen = \"{}\"\nshutdown_drain_timeout_secs = 5\n",
                self.control, self.http, self.metrics
            ),
        )
        .unwrap();
    }

    pub fn api_get(&self, path: &str) -> Value {
        self.get_as(path, Some(self.token.as_deref().unwrap_or("")))
            .1
    }

    /// `GET path` with `token` as the bearer (none: no Authorization
    /// header); the status and the JSON body.
    pub fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::blocking::Client::new().get(format!("{}{path}", self.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.json().unwrap())
    }

    /// The first-run setup token this server printed on stderr.
    pub fn setup_token(&self) -> String {
        wait_for("the setup token on stderr", DEADLINE, || {
            self.log.lines().iter().find_map(|l| {
                l.strip_prefix(SETUP_TOKEN_BANNER)
                    .map(|t| t.trim().to_string())
            })
        })
    }

    /// `rule-stats <id> --format json`, parsed.
    pub fn rule_stats(&self, id: &str) -> Value {
        serde_json::from_str(&self.cli_ok(&["rule-stats", id, "--format", "json"])).unwrap()
    }

    /// The value of the metric series `name` for rule `id` of the
    /// superadmin on `edge-01`, when present.
    pub fn rule_metric(&self, name: &str, id: &str) -> Option<f64> {
        let prefix = format!(r#"{name}{{client="edge-01",rule="{id}",owner="_superadmin"}} "#);
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
    }

    pub fn metrics_text(&self) -> String {
        reqwest::blocking::get(format!("http://{}/metrics", self.metrics))
            .unwrap()
            .text()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What precedes the setup token on `serve`'s stderr.
pub const SETUP_TOKEN_BANNER: &str = "First-run setup token (valid 30 minutes):";

/// Ephemeral loopback listeners and a short drain: what every test server
/// starts from unless its test wrote a server.toml first.
/// Like `SERVER_TOML`, but on ports below the ephemeral range, so
/// `pin_ports` and a restart find them free again.
fn pinnable_server_toml() -> String {
    format!(
        "control_listen = \"127.0.0.1:{}\"\noperator_http_listen = \"127.0.0.1:{}\"\nmetrics_listen = \"127.0.0.1:{}\"\nshutdown_drain_timeout_secs = 5\n",
        net::pinnable_port(),
        net::pinnable_port(),
        net::pinnable_port()
    )
}

pub const SERVER_TOML: &str = "control_listen = \"127.0.0.1:0\"\noperator_http_listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nshutdown_drain_timeout_secs = 5\n";

/// Runs `bootstrap-superadmin` on a fresh data dir and returns the token.
pub fn bootstrap_superadmin(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let out = run_server_cli(
        dir,
        None,
        None,
        &["bootstrap-superadmin", "--name", "Admin"],
    );
    assert!(
        out.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `portunus-server` with a clean environment, HOME in the data dir.
pub fn run_server_cli(dir: &Path, url: Option<&str>, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("portunus-server"));
    clean_env(&mut cmd, dir);
    engine_env(&mut cmd, dir);
    cmd.arg("--data-dir").arg(dir);
    if let Some(u) = url {
        cmd.arg("--server-url").arg(u);
    }
    if let Some(t) = token {
        cmd.env("PORTUNUS_OPERATOR_TOKEN", t);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portunus-server")
}

/// Like `run_server_cli` (no server URL, no token), with `input` on stdin.
pub fn run_server_cli_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(bin("portunus-server"));
    clean_env(&mut cmd, dir);
    engine_env(&mut cmd, dir);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run portunus-server");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().expect("wait for portunus-server")
}

/// `portunus-server` with a clean environment and HOME at `home`, the data
/// dir it serves from.
pub fn server_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(bin("portunus-server"));
    clean_env(&mut cmd, home);
    engine_env(&mut cmd, home);
    cmd.stdin(Stdio::null());
    cmd
}

/// `portunus-client` with a clean environment and HOME at `home`.
pub fn client_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(bin("portunus-client"));
    clean_env(&mut cmd, home);
    cmd.stdin(Stdio::null());
    cmd
}

/// A running `portunus-client` daemon.
pub struct Client {
    child: Option<Child>,
    pub log: Log,
    bundle: PathBuf,
}

impl Client {
    pub fn start(bundle: &Path) -> Client {
        Self::spawn(client_cmd(bundle.parent().unwrap()), bundle)
    }

    /// The client under a descriptor limit of `nofile` (soft and hard),
    /// applied by prlimit(1) from util-linux.
    pub fn start_with_nofile(bundle: &Path, nofile: u64) -> Client {
        let mut cmd = Command::new("prlimit");
        clean_env(&mut cmd, bundle.parent().unwrap());
        cmd.stdin(Stdio::null())
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(bin("portunus-client"));
        Self::spawn(cmd, bundle)
    }

    /// The daemon from a prepared command (its environment, its HOME)
    /// without `--bundle`: it finds its bundle, or enrolls one, itself.
    pub fn start_cmd(cmd: Command, home: &Path) -> Client {
        Self::spawn_with(cmd, None, &home.join("client.bundle.json"), 2)
    }

    /// A client that lets removed rules drain for `secs` (the default here
    /// is 2 s, which keeps shutdowns short).
    pub fn start_with_drain(bundle: &Path, secs: u64) -> Client {
        let cmd = client_cmd(bundle.parent().unwrap());
        Self::spawn_with(cmd, Some(bundle), bundle, secs)
    }

    fn spawn(cmd: Command, bundle: &Path) -> Client {
        Self::spawn_with(cmd, Some(bundle), bundle, 2)
    }

    fn spawn_with(mut cmd: Command, flag: Option<&Path>, bundle: &Path, drain_secs: u64) -> Client {
        if let Some(b) = flag {
            cmd.arg("--bundle").arg(b);
        }
        cmd.args([
            "--stats-report-interval-secs",
            "1",
            "--reconnect-initial-delay-ms",
            "50",
        ])
        .args([
            "--reconnect-max-delay-secs",
            "1",
            "--shutdown-drain-timeout-secs",
            &drain_secs.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn portunus-client");
        let log = Log::default();
        log.follow(child.stderr.take().unwrap());
        Client {
            child: Some(child),
            log,
            bundle: bundle.to_path_buf(),
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        *self = Client::start(&self.bundle.clone());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("client running");
        signal(&c, 15);
        wait_for("client to exit", DEADLINE, || c.try_wait().unwrap())
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// SIGSTOP: the process holds its sockets but answers nothing.
    pub fn freeze(&self) {
        signal(self.child.as_ref().expect("client running"), 19);
    }

    /// SIGCONT, after `freeze`.
    pub fn thaw(&self) {
        signal(self.child.as_ref().expect("client running"), 18);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A command's exit code; a death by signal fails the test.
pub fn exit_code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that a command exited with `exit` and that its stderr names
/// `text` (usually the stable error code).
pub fn expect_fail(out: &Output, exit: i32, text: &str) {
    assert_eq!(exit_code(out), exit, "{}", stderr_text(out));
    let err = stderr_text(out);
    assert!(err.contains(text), "{text} in {err}");
}

/// A bootstrapped server (data dir `<dir>/srv`) with one enrolled,
/// connected client `edge-01` (bundle under `<dir>/edge`).
pub fn fleet(dir: &Path) -> (Server, Client) {
    fleet_with_settings(dir, "")
}

/// `fleet`, with `settings` (server.toml lines) added to the default
/// server.toml before the server first starts.
pub fn fleet_with_settings(dir: &Path, settings: &str) -> (Server, Client) {
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("server.toml"), format!("{SERVER_TOML}{settings}")).unwrap();
    let server = Server::bootstrapped(&srv);
    let bundle = dir.join("edge").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    server.enroll("edge-01", &bundle);
    let client = Client::start(&bundle);
    wait_connected(&server, "edge-01", true);
    (server, client)
}

/// Waits until `list-clients` shows `name` connected (or not).
pub fn wait_connected(server: &Server, name: &str, connected: bool) {
    wait_for(&format!("{name} connected={connected}"), DEADLINE, || {
        let clients = server.api_get("/v1/clients");
        let c = clients
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?
            .clone();
        (c["connected"] == Value::Bool(connected)).then_some(())
    })
}
