//! The daemon: load the bundle, run the control loop, and on SIGTERM or
//! SIGINT close every listener and drain before exiting.

use crate::backoff::Backoff;
use crate::bundle;
use crate::cli::DaemonArgs;
use crate::control::{Control, ControlConfig};
use crate::enroll::CLIENT_VERSION;
use crate::reconcile::Reconciler;
use portunus_dataplane::{flows_for_descriptors, Engine, EngineConfig, FlowBudget};
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Extra time past the drain timeout before exiting regardless, in case a
/// rule's stop does not honour its own deadline.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(args: DaemonArgs) -> ExitCode {
    // Handlers first, so that a signal during start-up is a clean stop
    // rather than the default abrupt exit.
    let (mut sigterm, mut sigint) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };

    let path = match crate::first_run::bundle_path(
        args.bundle.clone(),
        args.enroll_uri.as_deref(),
        |k| std::env::var_os(k),
    )
    .await
    {
        Ok(path) => path,
        Err(e) => {
            tracing::error!(error = %e, "no credential bundle; run `portunus-client enroll <URI>` first, or set PORTUNUS_ENROLL_URI");
            return ExitCode::FAILURE;
        }
    };
    let creds = match bundle::load(&path) {
        Ok(creds) => creds,
        Err(e) => {
            tracing::error!(error = %e, "cannot use the credential bundle");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        bundle = %path.display(),
        client_id = %creds.client_id,
        client_name = %creds.client_name,
        server = %creds.endpoint,
        version = CLIENT_VERSION,
        "portunus-client starting"
    );

    let drain = Duration::from_secs(args.shutdown_drain_timeout_secs);
    let config = ControlConfig {
        endpoint: creds.endpoint,
        pin: creds.pin,
        client_id: creds.client_id,
        client_version: CLIENT_VERSION.to_string(),
        hostname: hostname(),
        backoff: Backoff {
            initial: Duration::from_millis(args.reconnect_initial_delay_ms),
            max: Duration::from_secs(args.reconnect_max_delay_secs),
        },
        stats_interval: Duration::from_secs(args.stats_report_interval_secs),
    };
    let mut control = match Control::new(config, &creds.token) {
        Ok(control) => control,
        Err(e) => {
            tracing::error!(error = %e, bundle = %path.display(), "cannot use the credential bundle");
            return ExitCode::FAILURE;
        }
    };
    let budget = FlowBudget::new(flows_for_descriptors(raise_nofile()));
    tracing::info!(
        udp_flow_budget = budget.limit(),
        "UDP flows of all rules together"
    );
    let engine = Engine::new(EngineConfig::default()).with_flow_budget(budget);
    let mut reconciler = Reconciler::new(engine, drain);

    let signal_name = tokio::select! {
        never = control.run(&mut reconciler) => match never {},
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    tracing::info!(
        signal = signal_name,
        drain_secs = drain.as_secs(),
        "shutting down: closing listeners and draining"
    );
    if tokio::time::timeout(drain + SHUTDOWN_GRACE, reconciler.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain did not finish in time; exiting anyway");
    }
    tracing::info!("portunus-client stopped");
    ExitCode::SUCCESS
}

/// Reported in the hello so operators can tell edges apart; best effort.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Raises the soft descriptor limit to the hard one (an edge's work is
/// descriptors) and returns the limit in force.
fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::info!(nofile = n, "descriptor limit");
            n
        }
        Err(e) => {
            let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
            tracing::warn!(error = %e, nofile = soft, "cannot raise the descriptor limit");
            soft
        }
    }
}
