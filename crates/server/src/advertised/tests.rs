use super::*;

fn sans() -> SanSet {
    SanSet::new(
        vec!["localhost".into(), "*.example.com".into()],
        vec!["127.0.0.1".parse().unwrap(), "203.0.113.7".parse().unwrap()],
    )
}

enum Want {
    Ok(&'static str, Source),
    Err(ErrorCode),
}

/// Override, seed, request `Host`, expected outcome.
type Row = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Want,
);

#[test]
fn tiers_table() {
    use ErrorCode::{EndpointInvalid as Invalid, EndpointNotInCertSan as NotInSan};
    use Source::*;
    let rows: Vec<Row> = vec![
        // Nothing configured, no request: loopback on the control port.
        (None, None, None, Want::Ok("127.0.0.1:7443", Loopback)),
        // Each tier beats the ones after it.
        (
            Some("a.example.com:1"),
            Some("b.example.com:2"),
            Some("localhost:9"),
            Want::Ok("a.example.com:1", Override),
        ),
        (
            None,
            Some("b.example.com:2"),
            Some("localhost:9"),
            Want::Ok("b.example.com:2", Seed),
        ),
        (
            None,
            None,
            Some("localhost:9999"),
            Want::Ok("localhost:7443", Derived),
        ),
        (
            None,
            None,
            Some("LOCALHOST"),
            Want::Ok("LOCALHOST:7443", Derived),
        ),
        (
            None,
            None,
            Some("x.example.com:80"),
            Want::Ok("x.example.com:7443", Derived),
        ),
        (
            None,
            None,
            Some("203.0.113.7:8080"),
            Want::Ok("203.0.113.7:7443", Derived),
        ),
        // Empty explicit values count as unset.
        (
            Some(""),
            Some(""),
            None,
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            Some(""),
            Some("localhost:5"),
            None,
            Want::Ok("localhost:5", Seed),
        ),
        // Explicit tiers fail closed and never fall through.
        (
            Some("https://a.example.com:1"),
            Some("localhost:5"),
            None,
            Want::Err(Invalid),
        ),
        (
            Some("evil.test:1"),
            Some("localhost:5"),
            None,
            Want::Err(NotInSan),
        ),
        (Some("example.com:1"), None, None, Want::Err(NotInSan)),
        (Some("a.b.example.com:1"), None, None, Want::Err(NotInSan)),
        (Some("198.51.100.1:1"), None, None, Want::Err(NotInSan)),
        (
            None,
            Some("localhost"),
            Some("localhost:1"),
            Want::Err(Invalid),
        ),
        (None, Some("[::1]:7443"), None, Want::Err(Invalid)),
        (None, Some("localhost:0"), None, Want::Err(Invalid)),
        (None, Some(" localhost:1"), None, Want::Err(Invalid)),
        (
            None,
            Some("evil.test:7443"),
            Some("localhost"),
            Want::Err(NotInSan),
        ),
        // The derived tier falls through to loopback.
        (
            None,
            None,
            Some("evil.test:80"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            None,
            None,
            Some("[::1]:7080"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            None,
            None,
            Some("::1"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            None,
            None,
            Some("localhost:"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            None,
            None,
            Some("localhost:http"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (
            None,
            None,
            Some("user@localhost"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
        (None, None, Some(""), Want::Ok("127.0.0.1:7443", Loopback)),
        (
            None,
            None,
            Some("198.51.100.1"),
            Want::Ok("127.0.0.1:7443", Loopback),
        ),
    ];
    let sans = sans();
    for (override_value, seed, host_header, want) in rows {
        let got = resolve(&Inputs {
            override_value,
            seed,
            host_header,
            sans: &sans,
            control_port: 7443,
        });
        let row = format!("override={override_value:?} seed={seed:?} host={host_header:?}");
        match (want, got) {
            (Want::Ok(endpoint, source), Ok(r)) => {
                assert_eq!((r.endpoint.as_str(), r.source), (endpoint, source), "{row}")
            }
            (Want::Err(code), Err(e)) => assert_eq!(e.code, code, "{row}: {e}"),
            (Want::Ok(..), Err(e)) => panic!("{row}: unexpected error {e}"),
            (Want::Err(code), Ok(r)) => panic!("{row}: expected {code}, got {r:?}"),
        }
    }
}

#[test]
fn messages_name_the_tier_and_the_sans() {
    let sans = sans();
    let resolver = EndpointResolver::new(Some("evil.test:1".into()), sans.clone(), 7443);
    let e = resolver.resolve(None).unwrap_err();
    assert!(e.message.starts_with("advertised endpoint seed"), "{e}");
    assert!(e.message.contains("DNS:localhost"), "{e}");
    let e = resolver.resolve(Some("a:b:c")).unwrap_err();
    assert!(
        e.message.starts_with("advertised endpoint override:"),
        "{e}"
    );
    let e = resolver.check_override("nope").unwrap_err();
    assert!(
        e.message.starts_with("advertised_endpoint: \"nope\""),
        "{e}"
    );
}

#[test]
fn report_without_request_host() {
    let ok = EndpointResolver::new(Some("localhost:5".into()), sans(), 7443);
    assert_eq!(
        ok.report(None),
        Report {
            r#override: None,
            effective: Some("localhost:5".into()),
            source: Some(Source::Seed),
            diagnostic: None,
        }
    );
    let r = ok.report(Some("x.example.com:9".into()));
    assert_eq!(r.effective.as_deref(), Some("x.example.com:9"));
    assert_eq!(r.source, Some(Source::Override));

    let broken = EndpointResolver::new(Some("evil.test:5".into()), sans(), 7443);
    let r = broken.report(None);
    assert_eq!((r.effective, r.source), (None, None));
    assert!(r.diagnostic.unwrap().contains("endpoint_not_in_cert_san"));
    // A valid override hides a broken seed.
    let r = broken.report(Some("localhost:1".into()));
    assert_eq!(r.source, Some(Source::Override));

    let json = serde_json::to_value(EndpointResolver::new(None, sans(), 7).report(None)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "override": null,
            "effective": "127.0.0.1:7",
            "source": "loopback",
            "diagnostic": null,
        })
    );
}
