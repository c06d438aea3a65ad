#![forbid(unsafe_code)]
//! `portunus-client`: the Portunus edge. `enroll` redeems a one-time URI
//! into a credential bundle; without a subcommand the binary holds the
//! control stream to the server and runs the rules it is given.
//!
//! Start reading at `daemon.rs` (the process) and `control.rs` (the
//! stream); `reconcile.rs` owns what runs, `tls.rs` whom we trust.

mod backoff;
mod bundle;
mod cli;
mod control;
mod daemon;
mod enroll;
mod enroll_uri;
mod logging;
mod pin;
mod reconcile;
mod tls;
mod wire;

#[cfg(test)]
mod testing;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::Enroll { uri, out }) => {
            logging::init(logging::LogFormat::Compact, "warn");
            match enroll::run(&uri, out, |k| std::env::var_os(k)).await {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("portunus-client enroll: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            logging::init(cli.daemon.log_format, "info");
            daemon::run(cli.daemon).await
        }
    }
}
