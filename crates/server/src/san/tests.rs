use super::*;
use portunus_domain::endpoint::Endpoint;
use rcgen::SanType;

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("IA5 name"))
}

fn ip(addr: &str) -> SanType {
    SanType::IpAddress(addr.parse().expect("IP"))
}

/// A self-signed certificate with exactly these SANs. Its common name is a
/// host no row expects to be covered, to show the CN is never consulted.
fn cert_with(sans: Vec<SanType>) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = sans;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cn-only.example.com");
    let key = rcgen::KeyPair::generate().expect("key");
    params.self_signed(&key).expect("cert").der().to_vec()
}

/// The verdict of webpki itself, through rustls.
fn webpki_accepts(der: &[u8], host: &str) -> bool {
    let der = rustls::pki_types::CertificateDer::from(der.to_vec());
    let parsed = rustls::server::ParsedCertificate::try_from(&der).expect("webpki parses");
    let name = rustls::pki_types::ServerName::try_from(host).expect("server name");
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

fn host(h: &str) -> EndpointHost {
    Endpoint::parse(&format!("{h}:443")).expect("grammar").host
}

#[test]
fn coverage_matches_webpki() {
    let wildcard = || vec![dns("*.example.com")];
    let cases: Vec<(&str, Vec<SanType>, &str, bool)> = vec![
        (
            "exact",
            vec![dns("proxy.example.com")],
            "proxy.example.com",
            true,
        ),
        (
            "other name",
            vec![dns("proxy.example.com")],
            "edge.example.com",
            false,
        ),
        (
            "upper-case SAN",
            vec![dns("PROXY.Example.COM")],
            "proxy.example.com",
            true,
        ),
        (
            "upper-case host",
            vec![dns("proxy.example.com")],
            "Proxy.EXAMPLE.com",
            true,
        ),
        (
            "absolute host",
            vec![dns("proxy.example.com")],
            "proxy.example.com.",
            true,
        ),
        ("wildcard, one label", wildcard(), "a.example.com", true),
        (
            "wildcard, upper case",
            vec![dns("*.EXAMPLE.com")],
            "A.example.COM",
            true,
        ),
        ("wildcard, not the apex", wildcard(), "example.com", false),
        (
            "wildcard, not two labels",
            wildcard(),
            "a.b.example.com",
            false,
        ),
        ("wildcard, other suffix", wildcard(), "a.example.org", false),
        (
            "wildcard over one label is invalid",
            vec![dns("*.com")],
            "example.com",
            false,
        ),
        (
            "partial wildcard is invalid",
            vec![dns("a*.example.com")],
            "ab.example.com",
            false,
        ),
        (
            "IP host, IP SAN",
            vec![ip("203.0.113.7")],
            "203.0.113.7",
            true,
        ),
        (
            "IP host, other IP",
            vec![ip("203.0.113.7")],
            "203.0.113.8",
            false,
        ),
        (
            "IP host, DNS SAN of the same text",
            vec![dns("203.0.113.7")],
            "203.0.113.7",
            false,
        ),
        (
            "IP host, mapped IPv6 SAN",
            vec![ip("::ffff:203.0.113.7")],
            "203.0.113.7",
            false,
        ),
        (
            "DNS host, IP SAN",
            vec![ip("127.0.0.1")],
            "localhost",
            false,
        ),
        ("no SAN at all", vec![], "cn-only.example.com", false),
        ("no SAN, IP host", vec![], "127.0.0.1", false),
        (
            "generated shape",
            vec![dns("myhost"), dns("localhost"), ip("127.0.0.1")],
            "127.0.0.1",
            true,
        ),
    ];
    for (what, sans, h, want) in cases {
        let der = cert_with(sans);
        let set = SanSet::from_cert_der(&der).unwrap();
        assert_eq!(set.covers(&host(h)), want, "{what}: {h} against {set}");
        assert_eq!(
            webpki_accepts(&der, h),
            want,
            "{what}: webpki disagrees on {h}"
        );
    }
}

#[test]
fn reads_sans_and_describes_them() {
    let der = cert_with(vec![dns("localhost"), ip("127.0.0.1"), ip("::1")]);
    let set = SanSet::from_cert_der(&der).unwrap();
    assert_eq!(set.to_string(), "DNS:localhost, IP:127.0.0.1, IP:::1");
    let none = SanSet::from_cert_der(&cert_with(vec![])).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.to_string(), "none");
}

#[test]
fn refuses_what_is_not_a_certificate() {
    assert!(matches!(
        SanSet::from_cert_der(b"not DER"),
        Err(SanError::Certificate(_))
    ));
}

#[test]
fn dns_matching_table() {
    for (presented, reference, want) in [
        ("example.com", "example.com", true),
        ("example.com", "EXAMPLE.COM.", true),
        ("*.example.com", "x.example.com", true),
        ("*.example.com", "x.example.com.", true),
        ("*.example.com", ".example.com", false),
        ("*.example.com", "example.com", false),
        ("*.example.com", "x.y.example.com", false),
        ("*.a.b", "x.a.b", true),
        ("*.b", "a.b", false),
        ("*", "a", false),
        ("x*.example.com", "xy.example.com", false),
        ("example.com.", "example.com", false),
        ("a..com", "a..com", false),
        ("-a.com", "-a.com", false),
        ("a.123", "a.123", false),
        ("under_score.com", "under_score.com", true),
        ("example.com", "*.com", false),
        ("", "", false),
        (&"a".repeat(64), &"a".repeat(64), false),
    ] {
        assert_eq!(
            dns_covers(presented, reference),
            want,
            "{presented:?} vs {reference:?}"
        );
    }
}
