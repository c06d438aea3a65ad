//! A fleet of simulated edges against one real `portunus-server`: N
//! identities enrolled through the operator API and redeemed over pinned
//! TLS, N control sessions held from this one process (each from a
//! loopback address of its own, each streaming stats like a real client),
//! then the figures a control plane is judged by: the server's memory and
//! idle CPU with every edge connected, push-rule → activated latency while
//! they all stream, and how long a server restart takes until every edge
//! is back and reconciled.
//!
//!   cargo run --release -p portunus-client --example fleet_sim -- --edges 5000
//!
//! `bench/fleet.sh` builds and runs it. Loopback only.

mod api;
mod edge;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use edge::{Fleet, Identity, Progress};
use portunus_client::backoff::Backoff;
use portunus_client::enroll_uri::EnrollUri;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Parser)]
struct Args {
    /// Edges to enroll and connect.
    #[arg(long, default_value_t = 5000)]
    edges: usize,
    /// Rules pushed to every edge before the measurements.
    #[arg(long, default_value_t = 1)]
    rules_per_edge: u16,
    /// Timed push-rule calls, one at a time, to edges picked across the fleet.
    #[arg(long, default_value_t = 200)]
    pushes: u16,
    /// How long the idle CPU share is measured.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// How often every edge sends its stats (the client's default).
    #[arg(long, default_value_t = 5)]
    stats_interval_secs: u64,
    /// The clients' reconnect backoff (their defaults).
    #[arg(long, default_value_t = 500)]
    reconnect_initial_delay_ms: u64,
    #[arg(long, default_value_t = 30)]
    reconnect_max_delay_secs: u64,
    /// API calls in flight while setting the fleet up.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// [default: portunus-server next to this example's directory]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Serve from this PostgreSQL database instead of a SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the server's data dir (and its log) and print where it is.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.edges == 0 || args.edges > 60_000 {
        bail!("--edges must be 1..=60000");
    }
    let nofile = rlimit::increase_nofile_limit(u64::MAX)?;
    let needed = args.edges as u64 + 256;
    if nofile < needed {
        bail!(
            "{} edges need {needed} descriptors; the limit is {nofile}",
            args.edges
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Edge `i` dials from 127.10.0.1, 127.10.0.2, …: one source address per
/// edge, as in a real fleet, so per-source limits see one edge each.
fn source(i: usize) -> IpAddr {
    let n = i as u32 + 1;
    IpAddr::V4(Ipv4Addr::new(
        127,
        10 + (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bin = match args.server_bin.clone() {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("no directory above the example")?
            .join("portunus-server"),
    };
    let dir = tempfile::tempdir()?;
    let engine = if args.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let (mut server, token) = server::Server::prepare(bin, dir.path(), args.database_url.clone())?;
    server.start()?;
    let api = api::Api::new(server.http, token);
    let n = args.edges;

    let t = Instant::now();
    let uris = in_parallel(n, args.concurrency, |i| {
        let api = api.clone();
        async move { api.enroll(&format!("sim-{i:05}")).await }
    })
    .await?;
    let enroll_took = t.elapsed();

    let t = Instant::now();
    let identities = in_parallel(n, args.concurrency, |i| {
        let uri = EnrollUri::parse(&uris[i]).map_err(anyhow::Error::msg);
        async move {
            let uri = uri?;
            let (name, token) = edge::redeem(&uri.endpoint, uri.pin, &uri.code, source(i)).await?;
            Ok(Identity {
                name,
                token,
                source: source(i),
            })
        }
    })
    .await?;
    let redeem_took = t.elapsed();
    let first = EnrollUri::parse(&uris[0]).map_err(anyhow::Error::msg)?;

    let fleet = Arc::new(Fleet {
        endpoint: first.endpoint,
        pin: first.pin,
        stats_interval: Duration::from_secs(args.stats_interval_secs),
        backoff: Backoff {
            initial: Duration::from_millis(args.reconnect_initial_delay_ms),
            max: Duration::from_secs(args.reconnect_max_delay_secs),
        },
        epoch: Instant::now(),
        traffic: AtomicBool::new(true),
    });
    let names: Vec<String> = identities.iter().map(|id| id.name.clone()).collect();
    let progress: Vec<Arc<Progress>> = (0..n).map(|_| Arc::default()).collect();
    let t = Instant::now();
    let mut edges = JoinSet::new();
    for (id, p) in identities.into_iter().zip(&progress) {
        edges.spawn(edge::run(fleet.clone(), id, p.clone()));
    }
    wait_until("every edge connected", Duration::from_secs(300), || {
        progress
            .iter()
            .all(|p| p.reconciled_at.load(Ordering::Relaxed) > 0)
    })
    .await?;
    let connect_took = t.elapsed();

    let t = Instant::now();
    for k in 0..args.rules_per_edge {
        in_parallel(n, args.concurrency, |i| {
            let (api, name) = (api.clone(), names[i].clone());
            async move { api.push(&name, 10_000 + k).await }
        })
        .await?;
    }
    let rules_took = t.elapsed();
    all_counted(&api, n, "the server to count every edge connected").await?;

    // Two report intervals so every edge streams stats before measuring.
    tokio::time::sleep(2 * fleet.stats_interval).await;
    let measure = Duration::from_secs(args.idle_secs);
    eprintln!(
        "fleet_sim: measuring the server (pid {}) with traffic on every rule",
        server.pid()?
    );
    let busy_share = server.core_share_over(measure).await?;
    fleet.traffic.store(false, Ordering::Relaxed);
    tokio::time::sleep(2 * fleet.stats_interval).await;
    eprintln!("fleet_sim: measuring the idle server");
    let idle_share = server.core_share_over(measure).await?;
    let idle = server.sample()?;
    fleet.traffic.store(true, Ordering::Relaxed);

    eprintln!("fleet_sim: timed pushes");
    let mut pushes = Vec::with_capacity(args.pushes.into());
    let mut pushed = Vec::with_capacity(args.pushes.into());
    for i in 0..usize::from(args.pushes) {
        let name = &names[(i * 7_919) % n];
        let (rule, took) = api.push(name, 20_000 + i as u16).await?;
        pushes.push(took);
        pushed.push(rule);
    }
    for rule in &pushed {
        api.remove(rule).await?;
    }
    pushes.sort();
    let after_pushes = server.sample()?;

    eprintln!("fleet_sim: restarting the server");
    let rules = u32::from(args.rules_per_edge);
    let down_at = fleet.millis();
    let t = Instant::now();
    server.stop()?;
    server.start()?;
    let server_back = t.elapsed();
    wait_until(
        "every edge reconnected and reconciled",
        Duration::from_secs(300),
        || {
            progress.iter().all(|p| {
                p.reconciled_at.load(Ordering::Relaxed) > down_at
                    && p.rules.load(Ordering::Relaxed) == rules
            })
        },
    )
    .await?;
    let storm = t.elapsed();
    all_counted(&api, n, "the restarted server to count every edge").await?;
    let after_storm = server.sample()?;
    let failed: u32 = progress
        .iter()
        .map(|p| p.failed_attempts.load(Ordering::Relaxed))
        .sum();
    edges.abort_all();
    let drain_timed_out = server.log_contains("drain timeout reached")?;
    if args.keep {
        eprintln!("fleet_sim: kept {}", dir.keep().display());
    }

    let mb = |b: u64| b as f64 / 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct =
        |q: f64| pushes[((pushes.len() as f64 * q).ceil() as usize).clamp(1, pushes.len()) - 1];
    println!(
        "fleet: {n} edges on one {engine} server, {} rule(s) each, stats every {} s",
        args.rules_per_edge, args.stats_interval_secs
    );
    println!(
        "setup: enroll {:.1} s, redeem {:.1} s, first connect {:.1} s, rules {:.1} s",
        enroll_took.as_secs_f64(),
        redeem_took.as_secs_f64(),
        connect_took.as_secs_f64(),
        rules_took.as_secs_f64()
    );
    println!("{:<52} {:>16}  target", "figure", "value");
    println!(
        "{:<52} {:>13.1} MB  ≤ 300 MB",
        "server RSS, every edge connected, idle",
        mb(idle.rss_bytes)
    );
    println!(
        "{:<52} {:>13.1} MB",
        "server RSS after the timed pushes",
        mb(after_pushes.rss_bytes)
    );
    println!(
        "{:<52} {:>13.1} MB",
        "server RSS after the reconnect storm",
        mb(after_storm.rss_bytes)
    );
    println!(
        "{:<52} {:>14.2} %  ≤ 5 % of a core",
        format!("server CPU, idle fleet reporting ({} s)", args.idle_secs),
        idle_share * 100.0
    );
    println!(
        "{:<52} {:>14.2} %",
        format!("server CPU, traffic on every rule ({} s)", args.idle_secs),
        busy_share * 100.0
    );
    println!(
        "{:<52} {:>13.2} ms  p99 ≤ 50 ms",
        format!("push-rule → activated p50 ({} pushes)", pushes.len()),
        ms(pct(0.50))
    );
    println!(
        "{:<52} {:>13.2} ms",
        "push-rule → activated p90",
        ms(pct(0.90))
    );
    println!(
        "{:<52} {:>13.2} ms",
        "push-rule → activated p99",
        ms(pct(0.99))
    );
    println!(
        "{:<52} {:>13.2} ms",
        "push-rule → activated max",
        ms(pct(1.0))
    );
    println!(
        "{:<52} {:>14.1} s  ≤ 30 s",
        "server restart → every edge reconnected, reconciled",
        storm.as_secs_f64()
    );
    println!(
        "{:<52} {:>14.2} s",
        "  of which the server was stopping/starting",
        server_back.as_secs_f64()
    );
    println!(
        "{:<52} {:>16}",
        "failed dial or stream attempts, whole run", failed
    );
    if drain_timed_out {
        println!("note: the server's shutdown waited out its drain timeout (5 s)");
    }
    Ok(())
}

/// Runs `f(0..n)` with at most `limit` in flight; the results in order.
async fn in_parallel<T, F, Fut>(n: usize, limit: usize, f: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let job = f(i);
        set.spawn(async move {
            let out = job.await;
            drop(permit);
            (i, out)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (i, result) = done?;
        out[i] = Some(result.with_context(|| format!("edge {i}"))?);
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every job reported"))
        .collect())
}

/// Waits until the server's API counts `n` clients connected.
async fn all_counted(api: &api::Api, n: usize, what: &str) -> anyhow::Result<()> {
    wait_until_async(what, Duration::from_secs(60), || {
        let api = api.clone();
        async move { api.connected().await.map(|c| c == n).unwrap_or(false) }
    })
    .await
}

async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> anyhow::Result<()> {
    wait_until_async(what, limit, || std::future::ready(done())).await
}

async fn wait_until_async<Fut: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    done: impl Fn() -> Fut,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done().await {
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
