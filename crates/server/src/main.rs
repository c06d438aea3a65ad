#![forbid(unsafe_code)]
//! `portunus-server`: the control plane binary.

mod advertised;
mod api;
mod audit;
mod authz;
mod bootstrap;
mod cli;
mod config;
mod control;
mod datadir;
mod enrollment;
mod http_listener;
mod logging;
mod maintenance;
mod metrics;
mod passwords;
mod quota;
mod retention;
mod san;
mod secrets;
mod serve;
mod state;
mod stats;
mod store;
mod throttle;
mod timefmt;
mod tls;
mod traffic;

use portunus_domain::DomainError;
use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(store::BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> ExitCode {
    let cli = cli::parse();
    if !matches!(cli.command, cli::Command::Serve(_)) {
        logging::init(config::LogFormat::Compact, "warn");
    }
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(cli::fleet::Exit(code)) = e.downcast_ref::<cli::fleet::Exit>() {
                return ExitCode::from(*code);
            }
            // The one place a failure becomes an exit code: domain errors by
            // the code table, everything else (config, I/O) is 1.
            let (code, text) = if let Some(d) = e.downcast_ref::<DomainError>() {
                (d.code.exit_code(), format!("{} ({})", d.message, d.code))
            } else if let Some(s) = e.downcast_ref::<store::StoreError>() {
                let message = match s {
                    store::StoreError::Domain(d) => d.message.clone(),
                    other => other.to_string(),
                };
                (s.code().exit_code(), format!("{message} ({})", s.code()))
            } else {
                (1, format!("{e:#}"))
            };
            eprintln!("error: {text}");
            ExitCode::from(code as u8)
        }
    }
}
