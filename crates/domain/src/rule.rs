//! Rule specifications and their validation.
//!
//! A rule is "on this client, listen on these ports, forward to these
//! targets". The same `RuleSpec` is the HTTP body (minus `client`), the
//! stored form and, converted, the wire form.

use crate::codes::ErrorCode;
use crate::error::DomainError;
use crate::names::is_dns_name;
use crate::source_filter::{normalize_list, SourceFilter};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const MAX_TARGETS: usize = 8;
pub const MAX_PRIORITY: u32 = 65_535;
pub const DEFAULT_RANGE_RULE_MAX_PORTS: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Result<Protocol, DomainError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(DomainError::field(
                ErrorCode::InvalidProtocol,
                "protocol",
                format!("{s:?} is not tcp or udp"),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    V1,
    V2,
}

fn default_priority() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// An IP address (IPv6 without brackets) or a DNS name.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 253, example = "10.0.0.5")
    )]
    pub host: String,
    /// For a range rule, the first port of the target window.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 65535, example = 443)
    )]
    pub port: u32,
    /// Lower is preferred.
    #[serde(default = "default_priority")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 65535, default = 1))]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
}

impl Target {
    /// The host as an IP literal, when it is one (IPv6 without brackets).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Per-rule caps. Absent fields mean "no cap"; a burst defaults to one
/// second of its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub bandwidth_in_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub bandwidth_out_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub new_connections_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub concurrent_connections: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub bandwidth_in_burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub bandwidth_out_burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub new_connections_burst: Option<u64>,
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        *self == RateLimit::default()
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let caps = [
            ("bandwidth_in_bps", self.bandwidth_in_bps),
            ("bandwidth_out_bps", self.bandwidth_out_bps),
            ("new_connections_per_sec", self.new_connections_per_sec),
            ("concurrent_connections", self.concurrent_connections),
            ("bandwidth_in_burst", self.bandwidth_in_burst),
            ("bandwidth_out_burst", self.bandwidth_out_burst),
            ("new_connections_burst", self.new_connections_burst),
        ];
        for (field, value) in caps {
            if value == Some(0) {
                return Err(DomainError::field(
                    ErrorCode::RateLimitCapZero,
                    &format!("rate_limit.{field}"),
                    "must be greater than zero (omit it for no cap)",
                ));
            }
        }
        let pairs = [
            (
                "bandwidth_in",
                self.bandwidth_in_bps,
                self.bandwidth_in_burst,
            ),
            (
                "bandwidth_out",
                self.bandwidth_out_bps,
                self.bandwidth_out_burst,
            ),
            (
                "new_connections",
                self.new_connections_per_sec,
                self.new_connections_burst,
            ),
        ];
        for (name, rate, burst) in pairs {
            match (rate, burst) {
                (None, Some(_)) => {
                    return Err(DomainError::field(
                        ErrorCode::RateLimitBurstWithoutRate,
                        &format!("rate_limit.{name}_burst"),
                        "a burst needs its rate",
                    ))
                }
                (Some(rate), Some(burst)) => {
                    let low = rate.div_ceil(100);
                    let high = rate.saturating_mul(60);
                    if burst < low || burst > high {
                        return Err(DomainError::field(
                            ErrorCode::RateLimitBurstOutOfRange,
                            &format!("rate_limit.{name}_burst"),
                            format!("{burst} must lie in [{low}, {high}] (rate/100 to rate*60)"),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a rule does, independent of which client it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 65535, example = 8443)
    )]
    pub listen_port: u32,
    /// Last port of a range rule, inclusive; absent for a single port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    pub listen_port_end: Option<u32>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Tried in priority order, lowest first.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 8))]
    pub targets: Vec<Target>,
    /// TLS SNI routing on a shared single-port TCP listener: a lowercase
    /// host name or a single-label wildcard such as `*.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "*.example.com"))]
    pub sni_pattern: Option<String>,
    /// For DNS targets: AAAA records first, then A.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prefer_ipv6: bool,
    /// Active TCP-connect probes of every target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub health_check_interval_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Sources served, as CIDR blocks (IPv4 or IPv6; a bare address is one
    /// host). When non-empty, every other source is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 64, example = json!(["10.0.0.0/8", "2001:db8::/32"])))]
    pub allow_sources: Vec<String>,
    /// Sources refused, as CIDR blocks; a source in both lists is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 64, example = json!(["192.0.2.0/24"])))]
    pub deny_sources: Vec<String>,
    /// The one local address the rule listens on (IPv4 or IPv6, without
    /// brackets). Absent, it listens on every address of both families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "203.0.113.7"))]
    pub listen_address: Option<String>,
}

/// Limits that come from server configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub range_rule_max_ports: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            range_rule_max_ports: DEFAULT_RANGE_RULE_MAX_PORTS,
        }
    }
}

fn check_port(field: &str, port: u32) -> Result<(), DomainError> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidPort,
            field,
            format!("{port} is not a port in 1-65535"),
        ))
    }
}

/// A target host: an IP literal or a DNS name.
pub fn validate_target_host(field: &str, host: &str) -> Result<(), DomainError> {
    if host.parse::<IpAddr>().is_ok() || is_dns_name(host) {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidTarget,
            field,
            format!("{host:?} is not an IP address or DNS name"),
        ))
    }
}

/// `example.com` or `*.example.com` (one wildcard label, left-most only).
pub fn validate_sni_pattern(pattern: &str) -> Result<(), DomainError> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let wildcard = name.len() != pattern.len();
    let ok = is_dns_name(name) && !name.ends_with('.') && (!wildcard || name.contains('.'));
    if ok && pattern == pattern.to_ascii_lowercase() {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::SniPatternInvalid,
            "sni_pattern",
            format!("{pattern:?} must be a lowercase host name or a single-label wildcard like *.example.com"),
        ))
    }
}

impl RuleSpec {
    /// A single-port rule with one target and nothing else set.
    pub fn single(protocol: Protocol, listen_port: u32, host: &str, target_port: u32) -> RuleSpec {
        RuleSpec {
            listen_port,
            listen_port_end: None,
            protocol,
            targets: vec![Target {
                host: host.to_string(),
                port: target_port,
                priority: 1,
                proxy_protocol: None,
            }],
            sni_pattern: None,
            prefer_ipv6: false,
            health_check_interval_secs: None,
            rate_limit: None,
            allow_sources: Vec::new(),
            deny_sources: Vec::new(),
            listen_address: None,
        }
    }

    /// The listen address, when one is set and valid.
    pub fn listen_ip(&self) -> Option<IpAddr> {
        self.listen_address.as_deref()?.parse().ok()
    }

    /// The parsed source filter; a validated spec always has one.
    pub fn source_filter(&self) -> Result<SourceFilter, DomainError> {
        SourceFilter::parse(&self.allow_sources, &self.deny_sources)
    }

    pub fn listen_start(&self) -> u16 {
        self.listen_port as u16
    }

    pub fn listen_end(&self) -> u16 {
        self.listen_port_end.unwrap_or(self.listen_port) as u16
    }

    /// Number of listen ports; 1 for a single-port rule.
    pub fn width(&self) -> u32 {
        self.listen_port_end
            .unwrap_or(self.listen_port)
            .saturating_sub(self.listen_port)
            + 1
    }

    pub fn is_range(&self) -> bool {
        self.width() > 1
    }

    /// Lowercases the parts whose case carries no meaning, so equal rules
    /// compare equal.
    pub fn normalize(&mut self) {
        if let Some(p) = &mut self.sni_pattern {
            *p = p.to_ascii_lowercase();
        }
        if self.listen_port_end == Some(self.listen_port) {
            self.listen_port_end = None;
        }
        if self.rate_limit.is_some_and(|r| r.is_empty()) {
            self.rate_limit = None;
        }
        for t in &mut self.targets {
            t.host = t.host.to_ascii_lowercase();
        }
        normalize_list(&mut self.allow_sources);
        normalize_list(&mut self.deny_sources);
        if let Some(a) = &mut self.listen_address {
            let bare = a.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                *a = ip.to_string();
            }
        }
    }

    /// Checks every field; the first failure names its field.
    pub fn validate(&self, limits: &Limits) -> Result<(), DomainError> {
        check_port("listen_port", self.listen_port)?;
        if let Some(end) = self.listen_port_end {
            check_port("listen_port_end", end)?;
            if end < self.listen_port {
                return Err(DomainError::field(
                    ErrorCode::RangeInvalid,
                    "listen_port_end",
                    format!("{end} is below listen_port {}", self.listen_port),
                ));
            }
        }
        let width = self.width();
        if width > limits.range_rule_max_ports {
            return Err(DomainError::field(
                ErrorCode::ExceedsCap,
                "listen_port_end",
                format!(
                    "range of {width} ports exceeds range_rule_max_ports ({})",
                    limits.range_rule_max_ports
                ),
            ));
        }
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(DomainError::field(
                ErrorCode::TargetCount,
                "targets",
                format!(
                    "{} targets given, 1-{MAX_TARGETS} allowed",
                    self.targets.len()
                ),
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            validate_target_host(&format!("targets[{i}].host"), &t.host)?;
            check_port(&format!("targets[{i}].port"), t.port)?;
            if t.port + width - 1 > 65535 {
                return Err(DomainError::field(
                    ErrorCode::RangeInvalid,
                    &format!("targets[{i}].port"),
                    format!(
                        "target window {}-{} passes 65535",
                        t.port,
                        t.port + width - 1
                    ),
                ));
            }
            if t.priority > MAX_PRIORITY {
                return Err(DomainError::field(
                    ErrorCode::InvalidPriority,
                    &format!("targets[{i}].priority"),
                    format!("{} is not in 0-{MAX_PRIORITY}", t.priority),
                ));
            }
            if t.proxy_protocol.is_some() && self.protocol == Protocol::Udp {
                return Err(DomainError::field(
                    ErrorCode::ProxyProtocolInvalid,
                    &format!("targets[{i}].proxy_protocol"),
                    "PROXY protocol is TCP only",
                ));
            }
        }
        if let Some(pattern) = &self.sni_pattern {
            if self.protocol != Protocol::Tcp || self.is_range() {
                return Err(DomainError::field(
                    ErrorCode::SniOnUnsupportedRule,
                    "sni_pattern",
                    "SNI routing needs a single-port TCP rule",
                ));
            }
            validate_sni_pattern(pattern)?;
        }
        if let Some(secs) = self.health_check_interval_secs {
            if !(1..=3600).contains(&secs) {
                return Err(DomainError::field(
                    ErrorCode::HealthCheckInvalid,
                    "health_check_interval_secs",
                    format!("{secs} is not in 1-3600"),
                ));
            }
        }
        if let Some(rl) = &self.rate_limit {
            rl.validate()?;
        }
        self.source_filter()?;
        if let Some(address) = &self.listen_address {
            let problem = if address.parse::<IpAddr>().is_err() {
                format!("{address:?} is not an IPv4 or IPv6 address")
            } else if self.sni_pattern.is_some() {
                "an SNI port listens on every address; drop the listen address or the pattern"
                    .to_string()
            } else {
                String::new()
            };
            if !problem.is_empty() {
                return Err(DomainError::field(
                    ErrorCode::ListenAddressInvalid,
                    "listen_address",
                    problem,
                ));
            }
        }
        Ok(())
    }

    fn overlaps(&self, other: &RuleSpec) -> bool {
        self.protocol == other.protocol
            && self.listen_port <= other.listen_port_end.unwrap_or(other.listen_port)
            && other.listen_port <= self.listen_port_end.unwrap_or(self.listen_port)
    }
}

/// May `new` join a client that already runs `existing`? TCP and UDP never
/// clash. A TCP port is either plain (one rule) or SNI-routed (any number of
/// distinct patterns plus at most one fallback rule without a pattern); the
/// first rule on a port fixes its mode.
pub fn check_listen_conflict<'a>(
    existing: impl IntoIterator<Item = &'a RuleSpec>,
    new: &RuleSpec,
) -> Result<(), DomainError> {
    let clash = |port: u32| {
        DomainError::field(
            ErrorCode::ListenPortConflict,
            "listen_port",
            format!(
                "{} port {port} is already used by another rule on this client",
                new.protocol.as_str()
            ),
        )
    };
    let mut plain_present = false;
    let mut sni_present = false;
    for rule in existing {
        if !rule.overlaps(new) {
            continue;
        }
        let shared_single_tcp =
            new.protocol == Protocol::Tcp && !new.is_range() && !rule.is_range();
        if !shared_single_tcp {
            return Err(clash(new.listen_port.max(rule.listen_port)));
        }
        match (&rule.sni_pattern, &new.sni_pattern) {
            (Some(a), Some(b)) if a == b => {
                return Err(DomainError::field(
                    ErrorCode::ListenPortConflict,
                    "sni_pattern",
                    format!("port {} already routes {a:?}", new.listen_port),
                ))
            }
            (Some(_), _) => sni_present = true,
            (None, _) => plain_present = true,
        }
    }
    match (plain_present, sni_present, new.sni_pattern.is_some()) {
        (true, false, true) => Err(DomainError::field(
            ErrorCode::LegacyToSniUnsupported,
            "sni_pattern",
            format!(
                "port {} already forwards plain TCP; remove that rule before routing by SNI",
                new.listen_port
            ),
        )),
        (true, _, false) => Err(clash(new.listen_port)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
