//! PostgreSQL for the process-level tests. With `PORTUNUS_TEST_ENGINE=postgres`
//! every data dir the harness serves gets a fresh database of its own in the
//! cluster `PORTUNUS_TEST_POSTGRES_URL` names (`scripts/pg-cluster.sh`
//! starts one), handed to each server process as `PORTUNUS_DATABASE_URL`.
//! Tests about PostgreSQL itself use [`fresh_database`] or a private
//! [`Cluster`] they can stop and start. Without a cluster those tests fail;
//! they never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// True when the suite runs on PostgreSQL.
pub fn engine_is_postgres() -> bool {
    std::env::var("PORTUNUS_TEST_ENGINE").as_deref() == Ok("postgres")
}

/// The URL of the shared test cluster's administrative database.
pub fn admin_url() -> String {
    std::env::var("PORTUNUS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "PORTUNUS_TEST_POSTGRES_URL is not set: start a throwaway cluster with \
             `eval \"$(bash scripts/pg-cluster.sh start /tmp/portunus-pg)\"` (or run `bash .ci/run`)"
        )
    })
}

fn bindir() -> PathBuf {
    if let Ok(d) = std::env::var("PORTUNUS_PG_BINDIR") {
        return PathBuf::from(d);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (Debian's postgresql package)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
}

/// Debian's psql of the newest installed version.
/// psql running `sql` against `url`: no psqlrc, bare unaligned rows, and
/// the first error fails it.
pub fn psql_command(url: &str, sql: &str) -> Command {
    let mut cmd = Command::new(bindir().join("psql"));
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]);
    cmd
}

/// Runs `sql` with psql against `url`; panics with psql's words on failure.
pub fn psql(url: &str, sql: &str) -> String {
    let out = psql_command(url, sql).output().expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let server = &base[..base.rfind('/').expect("a database in the URL")];
    format!("{server}/{name}{query}")
}

fn unique_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "e2e_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new, empty database in the shared cluster; returns its URL.
pub fn fresh_database() -> String {
    let admin = admin_url();
    let name = unique_name();
    psql(&admin, &format!("CREATE DATABASE {name}"));
    database_url(&admin, &name)
}

/// Data dirs and the database each serves from (`None`: its SQLite file).
static DATABASES: Mutex<Option<HashMap<PathBuf, Option<String>>>> = Mutex::new(None);
/// Dirs whose data dirs stay on SQLite whatever the pass.
static SQLITE_ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The database URL server processes on `dir` get, if any: on the
/// PostgreSQL pass, one fresh database per data dir, made on first use.
pub fn database_for(dir: &Path) -> Option<String> {
    let pinned = SQLITE_ROOTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|root| dir.starts_with(root));
    let mut map = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    map.entry(dir.to_path_buf())
        .or_insert_with(|| (engine_is_postgres() && !pinned).then(fresh_database))
        .clone()
}

/// Serves data dir `dir` from database `url` from now on, whatever the pass.
pub fn serve_from(dir: &Path, url: &str) {
    let mut map = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    map.get_or_insert_with(HashMap::new)
        .insert(dir.to_path_buf(), Some(url.to_string()));
}

/// Keeps every data dir under `root` on its SQLite file whatever the pass:
/// for tests about the file itself (backup, restore, reset, crash safety).
pub fn sqlite_under(root: &Path) {
    SQLITE_ROOTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(root.to_path_buf());
}

/// Whether the tests run as root, asked once through id(1) (this crate
/// has no unsafe for geteuid).
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap_or(false)
    })
}

/// A PostgreSQL cluster of one test's own, on a loopback port, in a temp
/// dir; run as the `postgres` user when the tests run as root (initdb
/// refuses root). Stopped on drop.
pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    options: String,
}

fn server_options(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c fsync=off {extra}",
        dir.display()
    )
}

impl Cluster {
    fn pg(&self, program: &str) -> Command {
        Self::as_pg(&bindir().join(program))
    }

    fn as_pg(program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn check(what: &str, out: std::io::Result<Output>) {
        let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates and starts a cluster.
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("portunus-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            Self::check(
                "chown",
                Command::new("chown")
                    .arg("postgres:")
                    .arg(dir.path())
                    .output(),
            );
        }
        let data = dir.path().join("data");
        let port = crate::net::free_port();
        let cluster = Cluster {
            data: data.clone(),
            port,
            options: server_options(dir.path(), port, ""),
            _dir: dir,
        };
        Self::check(
            "initdb",
            cluster
                .pg("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "portunus", "--auth=trust", "--no-sync"])
                .output(),
        );
        cluster.resume();
        cluster
    }

    /// A file inside the cluster's dir, readable by the server.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data.parent().unwrap().join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            Self::check(
                "chown",
                Command::new("chown").arg("postgres:").arg(&path).output(),
            );
        }
        path
    }

    pub fn dir(&self) -> &Path {
        self.data.parent().unwrap()
    }

    /// The administrative database's URL.
    pub fn admin_url(&self) -> String {
        format!("postgres://portunus@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database in this cluster; returns its URL.
    pub fn database(&self) -> String {
        let name = unique_name();
        psql(&self.admin_url(), &format!("CREATE DATABASE {name}"));
        format!("postgres://portunus@127.0.0.1:{}/{name}", self.port)
    }

    /// Replaces the extra `-c` settings the next [`Cluster::resume`] uses.
    pub fn set_extra(&mut self, extra: &str) {
        self.options = server_options(self.dir(), self.port, extra);
    }

    /// Stops the server process (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        Self::check(
            "pg_ctl stop",
            self.pg("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "stop"])
                .output(),
        );
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        let log = self.data.parent().unwrap().join("server.log");
        Self::check(
            "pg_ctl start",
            self.pg("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &self.options, "start"])
                .output(),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
