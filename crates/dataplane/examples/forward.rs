//! Forwards one TCP port to one target until Ctrl-C; a fixture for
//! throughput benchmarks.
//!
//! ```text
//! cargo run --release -p portunus-dataplane --example forward -- <listen_port> <target_host:port> [--userspace]
//! ```
//!
//! A listen port of 0 takes a free port from the kernel. The first line on
//! stdout is `listening on <port>`; `RUST_LOG=debug` shows each connection.

use portunus_dataplane::{ActivationReason, CopyMode, Engine, EngineConfig, RuleHandle};
use portunus_domain::rule::{Protocol, RuleSpec};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: forward <listen_port> <target_host:port> [--userspace]";

struct Args {
    listen_port: u16,
    target_host: String,
    target_port: u32,
    mode: CopyMode,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut mode = CopyMode::Auto;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--userspace" => mode = CopyMode::Userspace,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ if arg.starts_with("--") => return Err(format!("unknown flag {arg}\n{USAGE}")),
            _ => positional.push(arg),
        }
    }
    let [listen, target] = positional.as_slice() else {
        return Err(USAGE.to_string());
    };
    let listen_port = listen
        .parse()
        .map_err(|e| format!("listen port {listen:?}: {e}"))?;
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("target {target:?} is not host:port"))?;
    let target_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let target_port = port
        .parse()
        .map_err(|e| format!("target port {port:?}: {e}"))?;
    Ok(Args {
        listen_port,
        target_host,
        target_port,
        mode,
    })
}

fn spec(listen_port: u16, args: &Args) -> RuleSpec {
    RuleSpec::single(
        Protocol::Tcp,
        u32::from(listen_port),
        &args.target_host,
        args.target_port,
    )
}

/// A port the kernel considers free right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("probing a free port: {e}"))
}

async fn start(engine: &Engine, args: &Args) -> Result<RuleHandle, String> {
    if args.listen_port != 0 {
        return engine
            .start_rule("forward", spec(args.listen_port, args))
            .await
            .map_err(|e| e.to_string());
    }
    // Another process may take the probed port before the bind; try again.
    for _ in 0..10 {
        match engine.start_rule("forward", spec(free_port()?, args)).await {
            Err(e) if e.reason == ActivationReason::PortInUse => continue,
            other => return other.map_err(|e| e.to_string()),
        }
    }
    Err("no free port found".to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let engine = Engine::new(EngineConfig::default()).with_copy_mode(args.mode);
    let handle = match start(&engine, &args).await {
        Ok(handle) => handle,
        Err(message) => {
            eprintln!("forward: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", handle.spec().listen_start());
    let _ = std::io::stdout().flush();
    eprintln!(
        "forwarding to {}:{} ({:?} copy), Ctrl-C to stop",
        args.target_host, args.target_port, args.mode
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("forward: waiting for Ctrl-C: {e}");
    }
    let stats = handle.stats();
    handle.stop(Duration::ZERO).await;
    eprintln!(
        "connections {} bytes_in {} bytes_out {} connect_failures {}",
        stats.connections_total, stats.bytes_in, stats.bytes_out, stats.connect_failures
    );
    ExitCode::SUCCESS
}
