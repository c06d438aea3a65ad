//! Activation: busy ports, all-or-nothing ranges, refused specs.

use super::support::*;
use crate::{ActivationReason, Engine, EngineConfig};
use portunus_domain::rule::{Protocol, ProxyProtocol, RateLimit};
use std::net::{Ipv4Addr, SocketAddr};

#[tokio::test]
async fn busy_port_is_port_in_use() {
    let busy = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = port_of(&busy);
    let engine = Engine::new(EngineConfig::default());
    let backend: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
    let err = engine
        .start_rule("busy", rule(port, vec![target(backend, 1)]))
        .await
        .err()
        .expect("a busy port must fail");
    assert_eq!(err.reason, ActivationReason::PortInUse);
    assert!(err.detail.contains(&port.to_string()), "{}", err.detail);
    assert_eq!(err.to_string().split(':').next(), Some("port_in_use"));
}

#[tokio::test]
async fn range_with_a_busy_middle_port_binds_nothing() {
    let engine = Engine::new(EngineConfig::default());
    let backend: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
    for _ in 0..20 {
        let mut holders = consecutive_listeners(Ipv4Addr::UNSPECIFIED, 3);
        let start = port_of(&holders[0]);
        let middle = holders.swap_remove(1);
        drop(holders);
        let mut spec = rule(start, vec![target(backend, 1)]);
        spec.listen_port_end = Some(u32::from(start) + 2);
        let err = engine
            .start_rule("range", spec)
            .await
            .err()
            .expect("a range with a busy port must fail");
        assert_eq!(err.reason, ActivationReason::PortInUse);
        if !err.detail.contains(&format!("tcp port {}:", start + 1)) {
            // Something else took an outer port meanwhile; try another range.
            continue;
        }
        // Nothing of the rule stayed bound: both outer ports are free.
        for port in [start, start + 2] {
            std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
                .unwrap_or_else(|e| panic!("port {port} still bound: {e}"));
        }
        drop(middle);
        return;
    }
    panic!("could not isolate a busy middle port in 20 tries");
}

#[tokio::test]
async fn invalid_and_unbuilt_rules_are_refused() {
    let engine = Engine::new(EngineConfig::default());
    let port = free_port();
    let backend: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
    let base = rule(port, vec![target(backend, 1)]);

    let mut no_targets = base.clone();
    no_targets.targets.clear();
    let mut udp_proxy = base.clone();
    udp_proxy.protocol = Protocol::Udp;
    udp_proxy.targets[0].proxy_protocol = Some(ProxyProtocol::V2);
    let mut capped = base.clone();
    capped.rate_limit = Some(RateLimit {
        bandwidth_in_bps: Some(0),
        ..RateLimit::default()
    });
    let mut zero_port = base.clone();
    zero_port.listen_port = 0;

    let cases = [
        (no_targets, ActivationReason::InvalidRule),
        (zero_port, ActivationReason::InvalidRule),
        (udp_proxy, ActivationReason::InvalidRule),
        (capped, ActivationReason::InvalidRule),
    ];
    for (spec, want) in cases {
        let err = engine
            .start_rule("refused", spec.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{spec:?} must be refused"));
        assert_eq!(err.reason, want, "{spec:?}: {}", err.detail);
    }
}
