//! `push-rule` arguments -> rule body. Pure, so its grammar is tested
//! without a server.

use crate::cli::output::Format;
use portunus_domain::rule::{Protocol, RateLimit, RuleSpec, Target};
use portunus_domain::target_syntax::{parse_ports, parse_target};
use portunus_domain::{DomainError, ErrorCode};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Client name (or id).
    pub client: String,
    /// Listen port, or a range `start-end`.
    pub listen: String,
    /// Target `host:port` (or `host:start-end` for a range rule).
    pub target: Option<String>,
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Failover target `host:port@priority`; repeat up to 8 times.
    #[arg(long = "target", value_name = "HOST:PORT@PRIO")]
    pub targets: Vec<String>,
    /// Targets as JSON: `[{"host","port","priority","proxy_protocol"}]`.
    #[arg(long)]
    pub targets_json: Option<String>,
    /// TLS SNI pattern: `host.example.com` or `*.example.com`.
    #[arg(long)]
    pub sni: Option<String>,
    /// Resolve DNS targets AAAA first.
    #[arg(long)]
    pub prefer_ipv6: bool,
    #[arg(long)]
    pub health_check_interval_secs: Option<u32>,
    #[command(flatten)]
    pub caps: CapArgs,
    /// A name for the rule, unique on its client; commands take it where
    /// they take a rule id. It never reaches the edge.
    #[arg(long)]
    pub name: Option<String>,
    /// A free note for operators (one line). It never reaches the edge.
    #[arg(long)]
    pub note: Option<String>,
    /// Serve only sources in this CIDR block (IPv4 or IPv6; a bare address
    /// is one host); repeatable. With any given, other sources are refused.
    #[arg(long = "allow-source", value_name = "CIDR")]
    pub allow_sources: Vec<String>,
    /// Refuse sources in this CIDR block; repeatable. Wins over
    /// --allow-source.
    #[arg(long = "deny-source", value_name = "CIDR")]
    pub deny_sources: Vec<String>,
    /// Listen on this one address of the edge (IPv4 or IPv6) instead of
    /// every address of both families.
    #[arg(long, value_name = "IP")]
    pub listen_address: Option<String>,
    /// How long to wait for the client's activation outcome (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub ack_timeout: Duration,
    /// Names this push so that sending it again stores it at most once
    /// (default: a new random key; an answer lost to a dropped connection
    /// is retried with it for 15 s).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Caps; each burst defaults to one second of its rate and must lie in
/// [rate/100, rate*60].
#[derive(Debug, Clone, clap::Args, Default)]
pub struct CapArgs {
    /// Bytes per second from peers towards targets (throttles, never closes).
    #[arg(long)]
    pub bandwidth_in_bps: Option<u64>,
    /// Bytes per second from targets back to peers.
    #[arg(long)]
    pub bandwidth_out_bps: Option<u64>,
    /// New connections (UDP: new flows) admitted per second.
    #[arg(long)]
    pub new_connections_per_sec: Option<u64>,
    /// Connections (UDP: flows) open at once.
    #[arg(long)]
    pub concurrent_connections: Option<u64>,
    /// Bytes that may pass at once above the inbound rate.
    #[arg(long)]
    pub bandwidth_in_burst: Option<u64>,
    /// Bytes that may pass at once above the outbound rate.
    #[arg(long)]
    pub bandwidth_out_burst: Option<u64>,
    /// Connections that may be admitted at once above the rate.
    #[arg(long)]
    pub new_connections_burst: Option<u64>,
}

impl CapArgs {
    pub fn to_rate_limit(&self) -> RateLimit {
        RateLimit {
            bandwidth_in_bps: self.bandwidth_in_bps,
            bandwidth_out_bps: self.bandwidth_out_bps,
            new_connections_per_sec: self.new_connections_per_sec,
            concurrent_connections: self.concurrent_connections,
            bandwidth_in_burst: self.bandwidth_in_burst,
            bandwidth_out_burst: self.bandwidth_out_burst,
            new_connections_burst: self.new_connections_burst,
        }
    }
}

/// `2s`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (s.strip_suffix('s').unwrap_or(s), 1000),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| Duration::from_millis(n * unit))
        .map_err(|_| format!("{s:?} is not a duration like 2s or 500ms"))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> DomainError {
    DomainError::field(ErrorCode::InvalidTarget, field, why)
}

/// Builds the rule spec the API receives. The server validates it again.
pub fn build_spec(a: &PushArgs) -> Result<RuleSpec, DomainError> {
    let (listen_port, listen_port_end) = parse_ports("listen_port", &a.listen)?;
    let width = listen_port_end.map_or(1, |e| e - listen_port + 1);
    let sources = [
        a.target.is_some(),
        !a.targets.is_empty(),
        a.targets_json.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(invalid(
            "target",
            "give exactly one of: a positional target, --target (repeatable), --targets-json",
        ));
    }
    let mut targets = Vec::new();
    if let Some(t) = &a.target {
        let t = parse_target(t)?;
        if let Some(end) = t.port_end {
            if end - t.port + 1 != width {
                return Err(DomainError::field(
                    ErrorCode::RangeInvalid,
                    "target",
                    format!(
                        "target range width {} differs from listen range width {width}",
                        end - t.port + 1
                    ),
                ));
            }
        }
        targets.push(Target {
            host: t.host,
            port: t.port,
            priority: t.priority.unwrap_or(1),
            proxy_protocol: None,
        });
    }
    for (i, raw) in a.targets.iter().enumerate() {
        let t = parse_target(raw)?;
        if t.port_end.is_some() {
            return Err(invalid(
                "target",
                "--target takes host:port@priority; use the positional target for a range",
            ));
        }
        targets.push(Target {
            host: t.host,
            port: t.port,
            priority: t.priority.unwrap_or(i as u32 + 1),
            proxy_protocol: None,
        });
    }
    if let Some(json) = &a.targets_json {
        targets = serde_json::from_str(json).map_err(|e| {
            let code =
                if e.to_string().contains("proxy_protocol") || e.to_string().contains("variant") {
                    ErrorCode::ProxyProtocolInvalid
                } else {
                    ErrorCode::InvalidTarget
                };
            DomainError::field(code, "targets_json", e)
        })?;
    }
    let rate_limit = a.caps.to_rate_limit();
    Ok(RuleSpec {
        listen_port,
        listen_port_end,
        protocol: Protocol::parse(&a.protocol)?,
        targets,
        sni_pattern: a.sni.clone(),
        prefer_ipv6: a.prefer_ipv6,
        health_check_interval_secs: a.health_check_interval_secs,
        rate_limit: (!rate_limit.is_empty()).then_some(rate_limit),
        allow_sources: a.allow_sources.clone(),
        deny_sources: a.deny_sources.clone(),
        listen_address: a.listen_address.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: PushArgs,
    }

    fn spec(args: &[&str]) -> Result<RuleSpec, DomainError> {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        build_spec(&T::try_parse_from(v).unwrap().a)
    }

    #[test]
    fn forms() {
        let s = spec(&["edge", "8080", "10.0.0.5:80"]).unwrap();
        assert_eq!(
            (s.listen_port, s.targets[0].port, s.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let s = spec(&["edge", "30000-30050", "h:30000-30050"]).unwrap();
        assert_eq!((s.listen_port_end, s.targets[0].port), (Some(30050), 30000));
        let s = spec(&[
            "edge",
            "53",
            "--protocol",
            "udp",
            "--target",
            "a:53@2",
            "--target",
            "b:53",
        ])
        .unwrap();
        assert_eq!(s.protocol, Protocol::Udp);
        assert_eq!((s.targets[0].priority, s.targets[1].priority), (2, 2));
        let s = spec(&[
            "edge",
            "443",
            "--targets-json",
            r#"[{"host":"b","port":443,"priority":1,"proxy_protocol":"v2"}]"#,
        ])
        .unwrap();
        assert!(s.targets[0].proxy_protocol.is_some());
        let s = spec(&["edge", "1", "h:1", "--bandwidth-in-bps", "100"]).unwrap();
        assert_eq!(s.rate_limit.unwrap().bandwidth_in_bps, Some(100));
        let s = spec(&[
            "edge",
            "1",
            "h:1",
            "--allow-source",
            "10.0.0.0/8",
            "--allow-source",
            "2001:db8::/32",
            "--deny-source",
            "10.9.0.0/16",
        ])
        .unwrap();
        assert_eq!(s.allow_sources, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(s.deny_sources, ["10.9.0.0/16"]);
    }

    #[test]
    fn errors() {
        let code = |a: &[&str]| spec(a).unwrap_err().code;
        assert_eq!(code(&["edge", "0", "h:1"]), ErrorCode::InvalidPort);
        assert_eq!(code(&["edge", "10-12", "h:10-11"]), ErrorCode::RangeInvalid);
        assert_eq!(code(&["edge", "10"]), ErrorCode::InvalidTarget);
        assert_eq!(
            code(&["edge", "10", "h:1", "--target", "h:2"]),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            code(&["edge", "10", "h:1", "--protocol", "sctp"]),
            ErrorCode::InvalidProtocol
        );
        assert_eq!(
            code(&[
                "edge",
                "10",
                "--targets-json",
                r#"[{"host":"b","port":1,"proxy_protocol":"v9"}]"#
            ]),
            ErrorCode::ProxyProtocolInvalid
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("x").is_err());
    }
}
