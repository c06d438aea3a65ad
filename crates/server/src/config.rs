//! `server.toml`: every key optional, unknown keys rejected by name. Each
//! key also has a `PORTUNUS_*` environment variable (`keys.rs`); the
//! variable beats the file and a `serve` flag beats both.

mod keys;

#[cfg(test)]
pub use keys::markdown_table;
pub use keys::{env_var, help_text, KEYS};

use crate::retention::Retention;
use crate::store::sessions::Lifetime;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub control_listen: Option<SocketAddr>,
    pub operator_http_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub operator_http_public_origin: Option<String>,
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    pub operator_token: Option<String>,
    pub shutdown_drain_timeout_secs: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub range_rule_max_ports: Option<u32>,
    pub udp_flow_idle_secs: Option<u32>,
    pub udp_max_flows_per_rule: Option<u32>,
    pub advertised_endpoint: Option<String>,
    pub session_idle_timeout_secs: Option<i64>,
    pub session_max_lifetime_secs: Option<i64>,
    pub audit_retention_days: Option<u32>,
    pub audit_max_rows: Option<u64>,
    pub traffic_minute_retention_days: Option<u32>,
    pub traffic_hour_retention_days: Option<u32>,
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Compact,
}

/// The effective configuration of `serve`, after defaults and flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub control_listen: SocketAddr,
    pub operator_http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// Origin for CSRF checks and the session cookie's `Secure` flag.
    pub operator_http_public_origin: Option<String>,
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
    /// The paths were set by the operator: a missing file there is an
    /// error, never a reason to mint a new identity.
    pub tls_configured: bool,
    pub operator_token: Option<String>,
    pub shutdown_drain_timeout_secs: u64,
    pub log_format: LogFormat,
    pub range_rule_max_ports: u32,
    pub udp_flow_idle_secs: u32,
    pub udp_max_flows_per_rule: u32,
    pub advertised_endpoint: Option<String>,
    pub sessions: Lifetime,
    pub audit_retention: Retention,
    pub traffic_retention: crate::traffic::Retention,
}

pub const DEFAULT_CONTROL_LISTEN: &str = "0.0.0.0:7443";
pub const DEFAULT_OPERATOR_HTTP_LISTEN: &str = "127.0.0.1:7080";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:7081";

impl FileConfig {
    /// `<data_dir>/server.toml` (a missing file is an empty one) overlaid
    /// by the process's `PORTUNUS_*` variables.
    pub fn load(data_dir: &Path) -> Result<FileConfig> {
        Self::load_with(data_dir, |var| std::env::var(var).ok())
    }

    /// Like `load`, reading variables through `env`.
    pub fn load_with(data_dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<FileConfig> {
        let path = data_dir.join("server.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // Parsed typed first, for errors that name the key and the line.
        Self::parse(&text).with_context(|| format!("invalid {}", path.display()))?;
        let mut table: toml::Table = toml::from_str(&text)?;
        for key in KEYS {
            let var = env_var(key.name);
            // An empty variable counts as unset, as clap treats its own.
            if let Some(raw) = env(&var).filter(|v| !v.is_empty()) {
                table.insert(
                    key.name.to_string(),
                    keys::env_value(key.name, &raw).with_context(|| format!("invalid {var}"))?,
                );
            }
        }
        Ok(toml::Value::Table(table).try_into()?)
    }

    pub fn parse(text: &str) -> Result<FileConfig> {
        Ok(toml::from_str(text)?)
    }

    pub fn resolve(self, data_dir: &Path) -> Result<Config> {
        let udp_flow_idle_secs = self.udp_flow_idle_secs.unwrap_or(60);
        anyhow::ensure!(
            (30..=300).contains(&udp_flow_idle_secs),
            "udp_flow_idle_secs must be in 30..=300, got {udp_flow_idle_secs}"
        );
        let udp_max_flows_per_rule = self.udp_max_flows_per_rule.unwrap_or(1024);
        anyhow::ensure!(
            (1..=65535).contains(&udp_max_flows_per_rule),
            "udp_max_flows_per_rule must be in 1..=65535, got {udp_max_flows_per_rule}"
        );
        let range_rule_max_ports = self.range_rule_max_ports.unwrap_or(1024);
        anyhow::ensure!(
            (1..=65535).contains(&range_rule_max_ports),
            "range_rule_max_ports must be in 1..=65535, got {range_rule_max_ports}"
        );
        let default = Lifetime::default();
        let sessions = Lifetime {
            idle_secs: self.session_idle_timeout_secs.unwrap_or(default.idle_secs),
            max_secs: self.session_max_lifetime_secs.unwrap_or(default.max_secs),
        };
        anyhow::ensure!(
            (60..=2_592_000).contains(&sessions.idle_secs),
            "session_idle_timeout_secs must be in 60..=2592000, got {}",
            sessions.idle_secs
        );
        anyhow::ensure!(
            (sessions.idle_secs..=31_536_000).contains(&sessions.max_secs),
            "session_max_lifetime_secs must be in session_idle_timeout_secs..=31536000, got {}",
            sessions.max_secs
        );
        let tls_configured = self.tls_cert_path.is_some() || self.tls_key_path.is_some();
        let audit_retention = Retention {
            max_age_days: self.audit_retention_days,
            max_rows: self.audit_max_rows,
        };
        if let Some(days) = audit_retention.max_age_days {
            anyhow::ensure!(
                (1..=36_500).contains(&days),
                "audit_retention_days must be in 1..=36500, got {days}"
            );
        }
        if let Some(rows) = audit_retention.max_rows {
            anyhow::ensure!(rows >= 1, "audit_max_rows must be at least 1, got {rows}");
        }
        let traffic_retention = crate::traffic::Retention {
            minute_days: self.traffic_minute_retention_days.unwrap_or(7),
            hour_days: self.traffic_hour_retention_days.unwrap_or(90),
        };
        anyhow::ensure!(
            (1..=90).contains(&traffic_retention.minute_days),
            "traffic_minute_retention_days must be in 1..=90, got {}",
            traffic_retention.minute_days
        );
        anyhow::ensure!(
            (1..=3660).contains(&traffic_retention.hour_days),
            "traffic_hour_retention_days must be in 1..=3660, got {}",
            traffic_retention.hour_days
        );
        Ok(Config {
            tls_configured,
            traffic_retention,
            control_listen: self
                .control_listen
                .unwrap_or_else(|| DEFAULT_CONTROL_LISTEN.parse().expect("valid default")),
            operator_http_listen: self
                .operator_http_listen
                .unwrap_or_else(|| DEFAULT_OPERATOR_HTTP_LISTEN.parse().expect("valid default")),
            metrics_listen: self
                .metrics_listen
                .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.parse().expect("valid default")),
            operator_http_public_origin: self.operator_http_public_origin,
            tls_cert_path: self
                .tls_cert_path
                .unwrap_or_else(|| data_dir.join("server.crt")),
            tls_key_path: self
                .tls_key_path
                .unwrap_or_else(|| data_dir.join("server.key")),
            operator_token: self.operator_token,
            shutdown_drain_timeout_secs: self.shutdown_drain_timeout_secs.unwrap_or(30),
            log_format: self.log_format.unwrap_or_default(),
            range_rule_max_ports,
            udp_flow_idle_secs,
            udp_max_flows_per_rule,
            advertised_endpoint: self.advertised_endpoint,
            sessions,
            audit_retention,
        })
    }
}

#[cfg(test)]
mod tests;
