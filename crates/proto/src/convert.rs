//! Domain `RuleSpec` <-> wire `pb::Rule`. The client validates what it
//! receives, so a malformed push fails that rule instead of the stream.

use crate::pb;
use portunus_domain::rule::{Protocol, ProxyProtocol, RateLimit, RuleSpec, Target};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed wire rule: {0}")]
pub struct WireError(pub String);

pub fn rule_to_pb(rule_id: &str, owner: &str, spec: &RuleSpec) -> pb::Rule {
    pb::Rule {
        rule_id: rule_id.to_string(),
        owner: owner.to_string(),
        protocol: match spec.protocol {
            Protocol::Tcp => pb::Protocol::Tcp,
            Protocol::Udp => pb::Protocol::Udp,
        } as i32,
        listen_port: spec.listen_port,
        listen_port_end: spec.listen_port_end.unwrap_or(spec.listen_port),
        targets: spec
            .targets
            .iter()
            .map(|t| pb::Target {
                host: t.host.clone(),
                port: t.port,
                priority: t.priority,
                proxy_protocol: match t.proxy_protocol {
                    None => pb::ProxyProtocol::None,
                    Some(ProxyProtocol::V1) => pb::ProxyProtocol::V1,
                    Some(ProxyProtocol::V2) => pb::ProxyProtocol::V2,
                } as i32,
            })
            .collect(),
        sni_pattern: spec.sni_pattern.clone().unwrap_or_default(),
        prefer_ipv6: spec.prefer_ipv6,
        health_check_interval_secs: spec.health_check_interval_secs.unwrap_or(0),
        rate_limit: spec.rate_limit.map(|r| rate_limit_to_pb(&r)),
        allow_sources: spec.allow_sources.clone(),
        deny_sources: spec.deny_sources.clone(),
        listen_address: spec.listen_address.clone().unwrap_or_default(),
    }
}

pub fn rate_limit_to_pb(r: &RateLimit) -> pb::RateLimit {
    pb::RateLimit {
        bandwidth_in_bps: r.bandwidth_in_bps,
        bandwidth_out_bps: r.bandwidth_out_bps,
        new_connections_per_sec: r.new_connections_per_sec,
        concurrent_connections: r.concurrent_connections,
        bandwidth_in_burst: r.bandwidth_in_burst,
        bandwidth_out_burst: r.bandwidth_out_burst,
        new_connections_burst: r.new_connections_burst,
    }
}

pub fn rate_limit_from_pb(r: &pb::RateLimit) -> RateLimit {
    RateLimit {
        bandwidth_in_bps: r.bandwidth_in_bps,
        bandwidth_out_bps: r.bandwidth_out_bps,
        new_connections_per_sec: r.new_connections_per_sec,
        concurrent_connections: r.concurrent_connections,
        bandwidth_in_burst: r.bandwidth_in_burst,
        bandwidth_out_burst: r.bandwidth_out_burst,
        new_connections_burst: r.new_connections_burst,
    }
}

/// Returns `(rule_id, owner, spec)`.
pub fn rule_from_pb(rule: &pb::Rule) -> Result<(String, String, RuleSpec), WireError> {
    let protocol = match pb::Protocol::try_from(rule.protocol) {
        Ok(pb::Protocol::Tcp) => Protocol::Tcp,
        Ok(pb::Protocol::Udp) => Protocol::Udp,
        _ => return Err(WireError(format!("unknown protocol {}", rule.protocol))),
    };
    let mut targets = Vec::with_capacity(rule.targets.len());
    for t in &rule.targets {
        let proxy_protocol = match pb::ProxyProtocol::try_from(t.proxy_protocol) {
            Ok(pb::ProxyProtocol::None) => None,
            Ok(pb::ProxyProtocol::V1) => Some(ProxyProtocol::V1),
            Ok(pb::ProxyProtocol::V2) => Some(ProxyProtocol::V2),
            Err(_) => {
                return Err(WireError(format!(
                    "unknown proxy protocol {}",
                    t.proxy_protocol
                )))
            }
        };
        targets.push(Target {
            host: t.host.clone(),
            port: t.port,
            priority: t.priority,
            proxy_protocol,
        });
    }
    let spec = RuleSpec {
        listen_port: rule.listen_port,
        listen_port_end: (rule.listen_port_end != rule.listen_port && rule.listen_port_end != 0)
            .then_some(rule.listen_port_end),
        protocol,
        targets,
        sni_pattern: (!rule.sni_pattern.is_empty()).then(|| rule.sni_pattern.clone()),
        prefer_ipv6: rule.prefer_ipv6,
        health_check_interval_secs: (rule.health_check_interval_secs != 0)
            .then_some(rule.health_check_interval_secs),
        rate_limit: rule.rate_limit.as_ref().map(rate_limit_from_pb),
        allow_sources: rule.allow_sources.clone(),
        deny_sources: rule.deny_sources.clone(),
        listen_address: (!rule.listen_address.is_empty()).then(|| rule.listen_address.clone()),
    };
    Ok((rule.rule_id.clone(), rule.owner.clone(), spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let spec = RuleSpec {
            listen_port: 30000,
            listen_port_end: Some(30050),
            protocol: Protocol::Tcp,
            targets: vec![
                Target {
                    host: "a.example".into(),
                    port: 40000,
                    priority: 1,
                    proxy_protocol: Some(ProxyProtocol::V2),
                },
                Target {
                    host: "::1".into(),
                    port: 40000,
                    priority: 2,
                    proxy_protocol: None,
                },
            ],
            sni_pattern: None,
            prefer_ipv6: true,
            health_check_interval_secs: Some(10),
            rate_limit: Some(RateLimit {
                bandwidth_in_bps: Some(1000),
                ..Default::default()
            }),
            allow_sources: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            deny_sources: vec!["10.9.0.0/16".into()],
            listen_address: Some("::1".into()),
        };
        let wire = rule_to_pb("r1", "alice", &spec);
        let (id, owner, back) = rule_from_pb(&wire).unwrap();
        assert_eq!((id.as_str(), owner.as_str()), ("r1", "alice"));
        assert_eq!(back, spec);
    }

    #[test]
    fn rejects_unknown_enum() {
        let mut wire = rule_to_pb("r", "o", &RuleSpec::single(Protocol::Udp, 1, "h", 1));
        wire.protocol = 99;
        assert!(rule_from_pb(&wire).is_err());
    }
}
