use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const DER: &[u8] = b"not really a certificate, but the pin only hashes bytes";

fn pin_hex() -> String {
    CertPin::of_der(DER).to_string()
}

#[test]
fn accepts_well_formed_uris() {
    let pin = pin_hex();
    let cert = URL_SAFE_NO_PAD.encode(DER);
    for (uri, endpoint, code) in [
        (
            format!("portunus://edge.example.com:7443/enroll?pin=sha256:{pin}&code=abc"),
            "edge.example.com:7443",
            "abc",
        ),
        (
            format!("portunus://127.0.0.1:7443/enroll?code=c0de&pin=sha256:{pin}"),
            "127.0.0.1:7443",
            "c0de",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x&cert={cert}"),
            "h:1",
            "x",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=a%2Bb&future=1"),
            "h:1",
            "a+b",
        ),
        (
            format!("  portunus://h:1/enroll?pin=sha256:{pin}&code=x\n"),
            "h:1",
            "x",
        ),
    ] {
        let parsed = EnrollUri::parse(&uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(parsed.endpoint.to_string(), endpoint, "{uri}");
        assert_eq!(parsed.code, code, "{uri}");
        assert_eq!(parsed.pin.to_string(), pin, "{uri}");
    }
}

#[test]
fn rejects_malformed_uris_naming_the_fault() {
    let pin = pin_hex();
    let other_cert = URL_SAFE_NO_PAD.encode(b"another certificate");
    let padded_cert = base64::engine::general_purpose::URL_SAFE.encode(b"x");
    let upper = pin.to_uppercase();
    let short = &pin[..63];
    let long = format!("{pin}0");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("https://h:1/enroll?pin=sha256:{pin}&code=x"),
            "scheme must be portunus://",
        ),
        (format!("h:1/enroll?pin=sha256:{pin}&code=x"), "scheme"),
        (
            format!("portunus://h/enroll?pin=sha256:{pin}&code=x"),
            "missing port",
        ),
        (
            format!("portunus://h:0/enroll?pin=sha256:{pin}&code=x"),
            "bad server address",
        ),
        (
            format!("portunus://[::1]:7443/enroll?pin=sha256:{pin}&code=x"),
            "IPv6",
        ),
        (
            format!("portunus://u@h:1/enroll?pin=sha256:{pin}&code=x"),
            "user info",
        ),
        (
            format!("portunus://h:1/join?pin=sha256:{pin}&code=x"),
            "path must be /enroll",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x#frag"),
            "fragment",
        ),
        ("portunus://h:1/enroll?code=x".to_string(), "missing pin="),
        (
            format!("portunus://h:1/enroll?pin={pin}&code=x"),
            "pin must start with sha256:",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{short}&code=x"),
            "63 characters",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{long}&code=x"),
            "65 characters",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{upper}&code=x"),
            "uppercase",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{}g&code=x", &pin[..63]),
            "non-hex",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}"),
            "missing code=",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code="),
            "code= is empty",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x&code=y"),
            "more than once",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x&cert={other_cert}"),
            "does not match the pin",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x&cert={padded_cert}"),
            "unpadded base64url",
        ),
        (
            format!("portunus://h:1/enroll?pin=sha256:{pin}&code=x&cert=a/b"),
            "unpadded base64url",
        ),
    ];
    for (uri, expected) in cases {
        let err = EnrollUri::parse(&uri).expect_err(&uri).to_string();
        assert!(err.contains(expected), "{uri}: {err:?} lacks {expected:?}");
    }
}

#[test]
fn errors_and_debug_never_show_the_code() {
    let pin = pin_hex();
    let secret = "s3cr3t-code";
    let err = EnrollUri::parse(&format!(
        "portunus://h:1/join?pin=sha256:{pin}&code={secret}"
    ))
    .unwrap_err();
    assert!(!err.to_string().contains(secret));
    let ok = EnrollUri::parse(&format!(
        "portunus://h:1/enroll?pin=sha256:{pin}&code={secret}"
    ))
    .unwrap();
    assert!(!format!("{ok:?}").contains(secret));
}
