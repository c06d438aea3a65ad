//! The command line. Without a subcommand the binary runs the daemon.

use crate::logging::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "portunus-client",
    version = portunus_about::LONG,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Redeem a one-time enrollment URI and write the credential bundle.
    Enroll {
        /// portunus://<host>:<port>/enroll?pin=sha256:<hex>&code=<code>[&cert=<base64url DER>]
        uri: String,
        /// Where to write the bundle [default: $XDG_CONFIG_HOME/portunus/client.bundle.json,
        /// else $HOME/.config/portunus/client.bundle.json]
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    // completions, man: generated from these definitions.
    #[command(flatten)]
    Docs(portunus_about::DocsCommand),
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Credential bundle [default: $PORTUNUS_CLIENT_BUNDLE, then
    /// $XDG_CONFIG_HOME/portunus/client.bundle.json, then
    /// $HOME/.config/portunus/client.bundle.json, then ./client.bundle.json]
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
    /// A one-time enrollment URI, redeemed into the bundle path when no
    /// bundle exists yet (containers set PORTUNUS_ENROLL_URI). An existing
    /// bundle wins, so a restart never spends the code again.
    #[arg(
        long,
        value_name = "URI",
        env = "PORTUNUS_ENROLL_URI",
        hide_env_values = true
    )]
    pub enroll_uri: Option<String>,
    /// Upper bound of the first reconnect delay; it doubles per failed attempt.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub reconnect_initial_delay_ms: u64,
    /// Cap of the reconnect delay.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub reconnect_max_delay_secs: u64,
    /// How long live connections may finish after a rule is removed or the
    /// client is asked to stop.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub shutdown_drain_timeout_secs: u64,
    /// How often cumulative counters are sent to the server.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_report_interval_secs: u64,
    /// Format of the log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Threads that forward traffic [default: half the CPUs, at least 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

impl DaemonArgs {
    /// The forwarding threads to run on a host with `cpus` CPUs.
    pub fn threads(&self, cpus: usize) -> usize {
        self.threads
            .map_or_else(|| default_threads(cpus), usize::from)
    }
}

/// Half the CPUs, at least one. A forwarder's work is mostly the kernel's
/// (splice, TCP, softirq for both of its sockets), and that work runs on
/// the same CPUs: measured on a 2-core host, one event-loop thread
/// forwards 8% more new connections per second and 10-30% more bulk
/// throughput than two, because a thread per CPU leaves the kernel no CPU
/// of its own and the event loops park and wake instead of batching.
fn default_threads(cpus: usize) -> usize {
    (cpus / 2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_subcommand() {
        let cli = Cli::try_parse_from(["portunus-client"]).unwrap();
        assert!(cli.command.is_none());
        let d = cli.daemon;
        assert_eq!(
            (
                d.reconnect_initial_delay_ms,
                d.reconnect_max_delay_secs,
                d.shutdown_drain_timeout_secs,
                d.stats_report_interval_secs
            ),
            (500, 30, 30, 5)
        );
        assert_eq!(d.log_format, LogFormat::Json);
        assert_eq!(d.threads(2), 1);

        let cli = Cli::try_parse_from([
            "portunus-client",
            "enroll",
            "portunus://h:1/enroll",
            "--out",
            "/tmp/b.json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Enroll { out: Some(_), .. })
        ));

        assert!(
            Cli::try_parse_from(["portunus-client", "--stats-report-interval-secs", "0"]).is_err()
        );
        assert!(Cli::try_parse_from(["portunus-client", "--bundle", "x", "enroll", "u"]).is_err());
        assert!(Cli::try_parse_from(["portunus-client", "--threads", "0"]).is_err());
        let d = Cli::try_parse_from(["portunus-client", "--threads", "3"])
            .unwrap()
            .daemon;
        assert_eq!(d.threads(64), 3);
    }

    #[test]
    fn default_threads_table() {
        for (cpus, want) in [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (64, 32)] {
            assert_eq!(default_threads(cpus), want, "{cpus} CPUs");
        }
    }
}
