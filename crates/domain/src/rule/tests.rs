use super::*;

fn tcp(port: u32) -> RuleSpec {
    RuleSpec::single(Protocol::Tcp, port, "127.0.0.1", 80)
}

fn code(spec: &RuleSpec) -> Option<ErrorCode> {
    spec.validate(&Limits::default()).err().map(|e| e.code)
}

/// A named change to a valid spec, and the code validation must answer.
type Case = (&'static str, Box<dyn Fn(&mut RuleSpec)>, Option<ErrorCode>);

#[test]
fn validation_table() {
    let cases: Vec<Case> = vec![
        ("plain", Box::new(|_| {}), None),
        (
            "port 0",
            Box::new(|s| s.listen_port = 0),
            Some(ErrorCode::InvalidPort),
        ),
        (
            "port high",
            Box::new(|s| s.listen_port = 65536),
            Some(ErrorCode::InvalidPort),
        ),
        (
            "range ok",
            Box::new(|s| s.listen_port_end = Some(8100)),
            None,
        ),
        (
            "range reversed",
            Box::new(|s| s.listen_port_end = Some(10)),
            Some(ErrorCode::RangeInvalid),
        ),
        (
            "range too wide",
            Box::new(|s| {
                s.listen_port = 1000;
                s.listen_port_end = Some(3000)
            }),
            Some(ErrorCode::ExceedsCap),
        ),
        (
            "target window passes 65535",
            Box::new(|s| {
                s.listen_port_end = Some(8090);
                s.targets[0].port = 65530
            }),
            Some(ErrorCode::RangeInvalid),
        ),
        (
            "no targets",
            Box::new(|s| s.targets.clear()),
            Some(ErrorCode::TargetCount),
        ),
        (
            "nine targets",
            Box::new(|s| {
                let t = s.targets[0].clone();
                s.targets = vec![t; 9]
            }),
            Some(ErrorCode::TargetCount),
        ),
        (
            "bad host",
            Box::new(|s| s.targets[0].host = "bad host".into()),
            Some(ErrorCode::InvalidTarget),
        ),
        (
            "dns host",
            Box::new(|s| s.targets[0].host = "localhost".into()),
            None,
        ),
        (
            "ipv6 host",
            Box::new(|s| s.targets[0].host = "::1".into()),
            None,
        ),
        (
            "target port 0",
            Box::new(|s| s.targets[0].port = 0),
            Some(ErrorCode::InvalidPort),
        ),
        (
            "priority",
            Box::new(|s| s.targets[0].priority = 70000),
            Some(ErrorCode::InvalidPriority),
        ),
        (
            "proxy on udp",
            Box::new(|s| {
                s.protocol = Protocol::Udp;
                s.targets[0].proxy_protocol = Some(ProxyProtocol::V2)
            }),
            Some(ErrorCode::ProxyProtocolInvalid),
        ),
        (
            "proxy on tcp",
            Box::new(|s| s.targets[0].proxy_protocol = Some(ProxyProtocol::V1)),
            None,
        ),
        (
            "sni ok",
            Box::new(|s| s.sni_pattern = Some("*.example.com".into())),
            None,
        ),
        (
            "sni on udp",
            Box::new(|s| {
                s.protocol = Protocol::Udp;
                s.sni_pattern = Some("a.example.com".into())
            }),
            Some(ErrorCode::SniOnUnsupportedRule),
        ),
        (
            "sni on range",
            Box::new(|s| {
                s.listen_port_end = Some(8081);
                s.sni_pattern = Some("a.example.com".into())
            }),
            Some(ErrorCode::SniOnUnsupportedRule),
        ),
        (
            "sni double wildcard",
            Box::new(|s| s.sni_pattern = Some("*.*.example.com".into())),
            Some(ErrorCode::SniPatternInvalid),
        ),
        (
            "sni bare wildcard",
            Box::new(|s| s.sni_pattern = Some("*.com".into())),
            Some(ErrorCode::SniPatternInvalid),
        ),
        (
            "sni upper",
            Box::new(|s| s.sni_pattern = Some("A.example.com".into())),
            Some(ErrorCode::SniPatternInvalid),
        ),
        (
            "health 0",
            Box::new(|s| s.health_check_interval_secs = Some(0)),
            Some(ErrorCode::HealthCheckInvalid),
        ),
        (
            "health 3600",
            Box::new(|s| s.health_check_interval_secs = Some(3600)),
            None,
        ),
        (
            "rate zero",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    bandwidth_in_bps: Some(0),
                    ..Default::default()
                })
            }),
            Some(ErrorCode::RateLimitCapZero),
        ),
        (
            "burst low",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    bandwidth_in_bps: Some(1000),
                    bandwidth_in_burst: Some(9),
                    ..Default::default()
                })
            }),
            Some(ErrorCode::RateLimitBurstOutOfRange),
        ),
        (
            "burst edge low",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    bandwidth_in_bps: Some(1000),
                    bandwidth_in_burst: Some(10),
                    ..Default::default()
                })
            }),
            None,
        ),
        (
            "burst edge high",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    bandwidth_in_bps: Some(1000),
                    bandwidth_in_burst: Some(60_000),
                    ..Default::default()
                })
            }),
            None,
        ),
        (
            "burst high",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    new_connections_per_sec: Some(10),
                    new_connections_burst: Some(601),
                    ..Default::default()
                })
            }),
            Some(ErrorCode::RateLimitBurstOutOfRange),
        ),
        (
            "burst alone",
            Box::new(|s| {
                s.rate_limit = Some(RateLimit {
                    bandwidth_out_burst: Some(5),
                    ..Default::default()
                })
            }),
            Some(ErrorCode::RateLimitBurstWithoutRate),
        ),
    ];
    for (name, change, want) in cases {
        let mut spec = tcp(8080);
        change(&mut spec);
        assert_eq!(code(&spec), want, "{name}");
    }
}

#[test]
fn validation_message_names_field() {
    let mut spec = tcp(8080);
    spec.targets[0].port = 0;
    let e = spec.validate(&Limits::default()).unwrap_err();
    assert!(e.message.starts_with("targets[0].port"), "{}", e.message);
}

#[test]
fn json_body_shape() {
    let spec: RuleSpec = serde_json::from_str(
        r#"{"listen_port":8443,"protocol":"tcp","targets":[{"host":"10.0.0.5","port":443,"priority":1,"proxy_protocol":"v2"}],"sni_pattern":"a.example.com"}"#,
    )
    .unwrap();
    assert_eq!(spec.targets[0].proxy_protocol, Some(ProxyProtocol::V2));
    assert!(
        serde_json::from_str::<RuleSpec>(r#"{"listen_port":1,"targets":[],"bogus":1}"#).is_err()
    );
    let round: RuleSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(round, spec);
}

fn with_sni(port: u32, sni: Option<&str>) -> RuleSpec {
    let mut s = tcp(port);
    s.sni_pattern = sni.map(str::to_string);
    s
}

#[test]
fn listen_conflicts() {
    let udp = |port| {
        let mut s = tcp(port);
        s.protocol = Protocol::Udp;
        s
    };
    let range = |a, b| {
        let mut s = tcp(a);
        s.listen_port_end = Some(b);
        s
    };
    let cases: Vec<(&str, Vec<RuleSpec>, RuleSpec, Option<ErrorCode>)> = vec![
        ("empty", vec![], tcp(80), None),
        ("other port", vec![tcp(81)], tcp(80), None),
        (
            "same port",
            vec![tcp(80)],
            tcp(80),
            Some(ErrorCode::ListenPortConflict),
        ),
        ("tcp and udp share", vec![udp(80)], tcp(80), None),
        (
            "udp twice",
            vec![udp(80)],
            udp(80),
            Some(ErrorCode::ListenPortConflict),
        ),
        (
            "range overlap",
            vec![range(100, 110)],
            tcp(105),
            Some(ErrorCode::ListenPortConflict),
        ),
        (
            "range adjacent",
            vec![range(100, 110)],
            range(111, 120),
            None,
        ),
        (
            "sni after plain",
            vec![tcp(443)],
            with_sni(443, Some("a.com")),
            Some(ErrorCode::LegacyToSniUnsupported),
        ),
        (
            "two sni",
            vec![with_sni(443, Some("a.com"))],
            with_sni(443, Some("*.b.com")),
            None,
        ),
        (
            "same sni",
            vec![with_sni(443, Some("a.com"))],
            with_sni(443, Some("a.com")),
            Some(ErrorCode::ListenPortConflict),
        ),
        (
            "fallback after sni",
            vec![with_sni(443, Some("a.com"))],
            tcp(443),
            None,
        ),
        (
            "second fallback",
            vec![with_sni(443, Some("a.com")), tcp(443)],
            tcp(443),
            Some(ErrorCode::ListenPortConflict),
        ),
        (
            "sni with fallback present",
            vec![with_sni(443, Some("a.com")), tcp(443)],
            with_sni(443, Some("b.com")),
            None,
        ),
    ];
    for (name, existing, new, want) in cases {
        let got = check_listen_conflict(&existing, &new).err().map(|e| e.code);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_listen_address_is_one_ip_and_not_on_an_sni_rule() {
    let base = RuleSpec::single(Protocol::Tcp, 443, "10.0.0.7", 443);
    let with = |address: &str| RuleSpec {
        listen_address: Some(address.into()),
        ..base.clone()
    };
    for ok in ["203.0.113.7", "::1", "0.0.0.0", "::"] {
        assert!(with(ok).validate(&Limits::default()).is_ok(), "{ok}");
    }
    for bad in ["", "example.com", "[::1]", "10.0.0.1:80", "10.0.0.0/8"] {
        let e = with(bad).validate(&Limits::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::ListenAddressInvalid, "{bad}");
    }
    let sni = RuleSpec {
        sni_pattern: Some("a.example.com".into()),
        ..with("::1")
    };
    let e = sni.validate(&Limits::default()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ListenAddressInvalid);
    let mut bracketed = with("[2001:DB8::7]");
    bracketed.normalize();
    assert_eq!(bracketed.listen_address.as_deref(), Some("2001:db8::7"));
    assert_eq!(bracketed.listen_ip(), "2001:db8::7".parse().ok());
}
