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
    busy_middle_port_binds_nothing::<std::net::TcpListener>(&engine, |start| {
        rule(start, vec![target(backend, 1)])
    })
    .await;
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
