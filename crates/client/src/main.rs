#![forbid(unsafe_code)]
//! `portunus-client`: the Portunus edge. `enroll` redeems a one-time URI
//! into a credential bundle; without a subcommand the binary holds the
//! control stream to the server and runs the rules it is given.

use clap::Parser;
use portunus_client::{cli, daemon, enroll, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::Enroll { uri, out }) => {
            logging::init(logging::LogFormat::Compact, "warn");
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return no_runtime(&e),
            };
            match runtime.block_on(enroll::run(&uri, out, |k| std::env::var_os(k))) {
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
        Some(cli::Command::Docs(command)) => {
            use clap::CommandFactory;
            match command.run(cli::Cli::command()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("portunus-client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            logging::init(cli.daemon.log_format, "info");
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = cli.daemon.threads(cpus);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("portunus-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return no_runtime(&e),
            };
            tracing::info!(threads, cpus, "forwarding threads");
            runtime.block_on(daemon::run(cli.daemon))
        }
    }
}

fn no_runtime(error: &std::io::Error) -> ExitCode {
    eprintln!("portunus-client: cannot start the async runtime: {error}");
    ExitCode::FAILURE
}
