//! The `portunus-server` under test: a data dir of its own, pinned loopback
//! ports (so a restarted server listens where the edges dial), and its CPU
//! time and resident memory read from `/proc`.

use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    database_url: Option<String>,
    child: Option<Child>,
    pub control: SocketAddr,
    pub http: SocketAddr,
    log: PathBuf,
}

/// CPU time and memory of the server process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub cpu: Duration,
    pub rss_bytes: u64,
}

impl Sample {
    /// Share of one core used between `earlier` and `self`.
    pub fn core_share_since(&self, earlier: &Sample) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        (self.cpu.saturating_sub(earlier.cpu)).as_secs_f64() / wall
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Writes server.toml with three loopback ports and bootstraps a
    /// superadmin; the superadmin's API token.
    pub fn prepare(
        bin: PathBuf,
        dir: &Path,
        database_url: Option<String>,
    ) -> anyhow::Result<(Server, String)> {
        let control = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        std::fs::write(
            dir.join("server.toml"),
            format!(
                "control_listen = \"{control}\"\noperator_http_listen = \"{http}\"\n\
                 metrics_listen = \"{metrics}\"\nshutdown_drain_timeout_secs = 5\n"
            ),
        )?;
        let server = Server {
            bin,
            dir: dir.to_path_buf(),
            database_url,
            child: None,
            control,
            http,
            log: dir.join("server.log"),
        };
        let out = server
            .command()
            .args(["bootstrap-superadmin", "--name", "Fleet"])
            .output()
            .with_context(|| format!("cannot run {}", server.bin.display()))?;
        if !out.status.success() {
            bail!(
                "bootstrap-superadmin failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = String::from_utf8(out.stdout)?.trim().to_string();
        Ok((server, token))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir").arg(&self.dir);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env("RUST_LOG", "warn,portunus_server=info");
        cmd
    }

    /// Starts the server and waits until its control port accepts.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.control).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "the server exited with {status}; see {}",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not listen within 30 s; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            if !status.success() {
                child.kill()?;
            }
            child.wait()?;
        }
        Ok(())
    }

    pub fn log_contains(&self, needle: &str) -> anyhow::Result<bool> {
        Ok(std::fs::read_to_string(&self.log)?.contains(needle))
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.child.as_ref().context("server not running")?.id())
    }

    /// The server's CPU over the next `period`, as a share of one core.
    pub async fn core_share_over(&self, period: Duration) -> anyhow::Result<f64> {
        let before = self.sample()?;
        tokio::time::sleep(period).await;
        Ok(self.sample()?.core_share_since(&before))
    }

    pub fn sample(&self) -> anyhow::Result<Sample> {
        let pid = self.pid()?;
        let at = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may hold spaces; the fields we want follow ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("unexpected /proc stat")?
            .1
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13
        // after the name.
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        let cpu = Duration::from_secs_f64(ticks as f64 / clock_ticks()?);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(Sample {
            at,
            cpu,
            rss_bytes: rss_kib * 1024,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn clock_ticks() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
