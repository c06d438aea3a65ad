//! What this engine can do for a rule: which features it refuses and which
//! copy path a connection may take. Pure decisions, tested with tables.

use crate::engine::CopyMode;
use portunus_domain::rule::{Protocol, RateLimit, RuleSpec};

/// The first feature of `spec` this engine cannot forward yet, named as
/// the operator knows it. A rule is refused as a whole rather than run
/// without a feature it asked for.
pub(crate) fn missing_capability(spec: &RuleSpec) -> Option<&'static str> {
    if spec.protocol == Protocol::Udp {
        return Some("udp forwarding");
    }
    if spec.sni_pattern.is_some() {
        return Some("sni routing");
    }
    if spec.targets.iter().any(|t| t.proxy_protocol.is_some()) {
        return Some("proxy protocol");
    }
    if spec.rate_limit.is_some_and(|r| !r.is_empty()) {
        return Some("rate limits");
    }
    None
}

/// May a connection of this rule move its bytes with `splice(2)`? Only
/// where the kernel has it, unless the operator forced the userspace copy,
/// and never under a bandwidth cap: throttling needs to see every chunk.
pub(crate) fn may_splice(
    splice_built: bool,
    mode: CopyMode,
    rate_limit: Option<&RateLimit>,
) -> bool {
    let bandwidth_capped =
        rate_limit.is_some_and(|r| r.bandwidth_in_bps.is_some() || r.bandwidth_out_bps.is_some());
    splice_built && mode == CopyMode::Auto && !bandwidth_capped
}

/// Whether this build has the splice pump at all.
pub(crate) const SPLICE_BUILT: bool = cfg!(target_os = "linux");

#[cfg(test)]
mod tests {
    use super::*;
    use portunus_domain::rule::{ProxyProtocol, Target};

    fn tcp_rule() -> RuleSpec {
        RuleSpec {
            listen_port: 8080,
            listen_port_end: None,
            protocol: Protocol::Tcp,
            targets: vec![Target {
                host: "127.0.0.1".into(),
                port: 80,
                priority: 1,
                proxy_protocol: None,
            }],
            sni_pattern: None,
            prefer_ipv6: false,
            health_check_interval_secs: None,
            rate_limit: None,
        }
    }

    #[test]
    fn missing_capability_table() {
        let plain = tcp_rule();
        let udp = RuleSpec {
            protocol: Protocol::Udp,
            ..tcp_rule()
        };
        let sni = RuleSpec {
            sni_pattern: Some("example.com".into()),
            ..tcp_rule()
        };
        let mut proxy = tcp_rule();
        proxy.targets[0].proxy_protocol = Some(ProxyProtocol::V2);
        let capped = RuleSpec {
            rate_limit: Some(RateLimit {
                concurrent_connections: Some(10),
                ..RateLimit::default()
            }),
            ..tcp_rule()
        };
        let empty_cap = RuleSpec {
            rate_limit: Some(RateLimit::default()),
            ..tcp_rule()
        };
        let range = RuleSpec {
            listen_port_end: Some(8090),
            prefer_ipv6: true,
            health_check_interval_secs: Some(5),
            ..tcp_rule()
        };
        let cases = [
            (plain, None),
            (udp, Some("udp forwarding")),
            (sni, Some("sni routing")),
            (proxy, Some("proxy protocol")),
            (capped, Some("rate limits")),
            (empty_cap, None),
            (range, None),
        ];
        for (spec, want) in cases {
            assert_eq!(missing_capability(&spec), want, "{spec:?}");
        }
    }

    #[test]
    fn may_splice_table() {
        let bw_in = RateLimit {
            bandwidth_in_bps: Some(1_000),
            ..RateLimit::default()
        };
        let bw_out = RateLimit {
            bandwidth_out_bps: Some(1_000),
            ..RateLimit::default()
        };
        let conns_only = RateLimit {
            new_connections_per_sec: Some(5),
            concurrent_connections: Some(5),
            ..RateLimit::default()
        };
        let cases = [
            (true, CopyMode::Auto, None, true),
            (false, CopyMode::Auto, None, false),
            (true, CopyMode::Userspace, None, false),
            (true, CopyMode::Auto, Some(&bw_in), false),
            (true, CopyMode::Auto, Some(&bw_out), false),
            (true, CopyMode::Auto, Some(&conns_only), true),
            (false, CopyMode::Userspace, Some(&bw_in), false),
        ];
        for (built, mode, limit, want) in cases {
            assert_eq!(
                may_splice(built, mode, limit),
                want,
                "built={built} mode={mode:?} limit={limit:?}"
            );
        }
    }
}
