//! The `portunus-server` command line. Operator commands talk to the
//! running server's HTTP API; store-maintenance commands open the data dir.

mod access;
mod clients;
pub mod fleet;
mod http;
mod maintenance_auth;
mod offline;
mod operator;
pub mod output;
mod owner_cap;
pub mod push;
mod quota;
mod rules;
mod traffic;
mod users;

use crate::serve::ServeArgs;
use clap::{Parser, Subcommand};
use output::Format;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "portunus-server",
    version = portunus_about::LONG,
    about = "Portunus control plane",
    propagate_version = true
)]
pub struct Cli {
    /// Data directory [default: $XDG_STATE_HOME/portunus or ~/.local/state/portunus]
    #[arg(long, global = true, env = "PORTUNUS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Operator API base URL [default: from server.toml, else http://127.0.0.1:7080]
    #[arg(long, global = true, env = "PORTUNUS_SERVER_URL")]
    pub server_url: Option<String>,
    /// PostgreSQL store URL (`postgres://…`) instead of the data dir's
    /// SQLite file [default: `database_url` of server.toml]
    #[arg(
        long,
        global = true,
        env = "PORTUNUS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the control plane (gRPC + operator HTTP + metrics).
    Serve(ServeArgs),
    /// Print a fresh URL-safe-base64 token to stdout.
    GenToken,
    /// Print the operator API's OpenAPI 3.1 document (offline: no server,
    /// no data dir), the same one `GET /v1/openapi.json` serves.
    Openapi,
    /// Mint the `_superadmin` user and print its API token once (fresh store only).
    BootstrapSuperadmin {
        #[arg(long)]
        name: String,
    },
    /// Print a short-lived `portunus-client enroll ...` command.
    EnrollClient {
        name: String,
        /// Public host consumers of this client's ports reach (no port).
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
    /// Revoke a client's bearer; its stream drops at once.
    Revoke { client: String },
    /// Show every provisioned client and whether it is connected.
    ListClients {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Push a rule to a client; prints the bare rule id.
    PushRule(Box<push::PushArgs>),
    /// Drain and remove a rule.
    RemoveRule {
        #[command(flatten)]
        rule: rules::RuleRef,
        #[arg(long, default_value = "2s", value_parser = push::parse_duration)]
        ack_timeout: std::time::Duration,
    },
    /// List rules, optionally of one client.
    ListRules {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Aggregate per-rule counters.
    RuleStats {
        #[command(flatten)]
        rule: rules::RuleRef,
        /// Per-port detail (range rules).
        #[arg(long)]
        per_port: bool,
        /// Per-target detail (multi-target rules).
        #[arg(long)]
        per_target: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print the rules (and, for a superadmin, owner caps and grants) as a
    /// fleet file.
    Export(fleet::ExportArgs),
    /// Show what `apply` would change; exit 0 when nothing, 1 when
    /// something, 2 when the file is invalid.
    Diff(fleet::DiffArgs),
    /// Converge the server to a fleet file.
    Apply(fleet::ApplyArgs),
    // get-client, re-enroll, rename-client, delete-client, set-client-address.
    #[command(flatten)]
    Clients(clients::ClientCommand),
    // get-rule, update-rule, disable-rule, enable-rule.
    #[command(flatten)]
    Rules(rules::RuleCommand),
    /// Per-owner rate-limit envelopes on a client.
    OwnerCap {
        #[command(subcommand)]
        command: owner_cap::OwnerCapCommand,
    },
    /// Traffic history of a rule, a client or an owner, per bucket.
    Traffic(traffic::TrafficArgs),
    /// Monthly byte quotas per owner and client.
    Quota {
        #[command(subcommand)]
        command: quota::QuotaCommand,
    },
    // backup, restore, reset: store maintenance on the data dir's files.
    #[command(flatten)]
    Storage(crate::maintenance::StorageCommand),
    /// Users, credentials, grants, password recovery, the setup token, audit.
    #[command(flatten)]
    Access(access::AccessCommand),
    // completions, man: generated from these definitions.
    #[command(flatten)]
    Docs(portunus_about::DocsCommand),
}

/// The command line as clap sees it, with the settings table in `serve`'s
/// long help, so that `serve --help` and its man page list every key.
pub fn command_definition() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommand("serve", |serve| {
        serve.after_long_help(crate::config::help_text())
    })
}

/// Parses the process's arguments; exits with clap's message on an error.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = command_definition().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(crate::datadir::default_data_dir);
    crate::serve::set_database_url_flag(cli.database_url.clone());
    let url = || http::server_url(cli.server_url.as_deref(), &data_dir);
    let api = || -> anyhow::Result<http::ApiClient> {
        Ok(http::ApiClient::new(url(), http::operator_token()?))
    };
    match cli.command {
        Command::Serve(args) => crate::serve::run(&data_dir, args).await,
        Command::GenToken => {
            println!("{}", crate::secrets::new_token());
            Ok(())
        }
        Command::Openapi => {
            use std::io::Write;
            // A reader that stops early (`| head`) is not a failure.
            match std::io::stdout().write_all(crate::api::openapi::pretty().as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::BootstrapSuperadmin { name } => offline::bootstrap_superadmin(&data_dir, &name),
        Command::EnrollClient {
            name,
            address,
            ttl_secs,
        } => operator::enroll_client(&data_dir, api, name, address, ttl_secs).await,
        Command::Revoke { client } => operator::revoke(&api()?, &client).await,
        Command::ListClients { format } => operator::list_clients(&api()?, format).await,
        Command::PushRule(args) => operator::push_rule(&api()?, &args).await,
        Command::RemoveRule { rule, ack_timeout } => {
            operator::remove_rule(&api()?, &rule, ack_timeout).await
        }
        Command::ListRules {
            client,
            owner,
            format,
        } => operator::list_rules(&api()?, client.as_deref(), owner.as_deref(), format).await,
        Command::RuleStats {
            rule,
            per_port,
            per_target,
            format,
        } => operator::rule_stats(&api()?, &rule, per_port, per_target, format).await,
        Command::Clients(command) => command.run(&api()?).await,
        Command::Rules(command) => command.run(&api()?).await,
        Command::Export(args) => fleet::export(&api()?, &args).await,
        Command::Diff(args) => fleet::diff(&api()?, &args).await,
        Command::Apply(args) => fleet::apply(&api()?, &args).await,
        Command::OwnerCap { command } => {
            command.preflight()?;
            command.run(&api()?).await
        }
        Command::Traffic(args) => traffic::run(&api()?, args).await,
        Command::Quota { command } => command.run(&api()?).await,
        Command::Storage(command) => command.run(&data_dir),
        Command::Access(command) => command.run(&data_dir, cli.server_url.as_deref()).await,
        Command::Docs(command) => Ok(command.run(command_definition())?),
    }
}
