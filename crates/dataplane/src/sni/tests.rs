//! ClientHello parser tests over real rustls hellos (TLS 1.2 and 1.3),
//! hand-made TLS 1.0 and 1.1 hellos, every fragmentation and truncation,
//! and random input.

use super::client_hello::{parse_client_hello, ClientHello, HelloError, MAX_HELLO_BYTES};
use std::sync::Arc;

/// The first flight of a rustls client for `server_name`, limited to
/// `versions`: the ClientHello record(s) exactly as sent on the wire.
pub(crate) fn rustls_hello(
    server_name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write hello");
    }
    out
}

fn tls12_hello(name: &str) -> Vec<u8> {
    rustls_hello(name, &[&rustls::version::TLS12])
}

fn tls13_hello(name: &str) -> Vec<u8> {
    rustls_hello(name, &[&rustls::version::TLS13])
}

fn u16be(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap().to_be_bytes()
}

/// A ClientHello handshake message (header included) as TLS 1.0 and 1.1
/// clients send it: `version`, a zero random, no session id, two suites,
/// null compression, and the SNI extension when `sni` is given.
fn classic_message(version: u16, sni: Option<&str>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0x00, 0x35]);
    body.extend_from_slice(&[1, 0]);
    if let Some(name) = sni {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&u16be(name.len()));
        entry.extend_from_slice(name.as_bytes());
        let mut list = u16be(entry.len()).to_vec();
        list.extend_from_slice(&entry);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&u16be(list.len()));
        ext.extend_from_slice(&list);
        body.extend_from_slice(&u16be(ext.len()));
        body.extend_from_slice(&ext);
    }
    let mut msg = vec![1, 0];
    msg.extend_from_slice(&u16be(body.len()));
    msg.extend_from_slice(&body);
    msg
}

/// `message` split into handshake records of at most `size` bytes.
fn records(message: &[u8], size: usize, version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(size) {
        out.push(22);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&u16be(chunk.len()));
        out.extend_from_slice(chunk);
    }
    out
}

/// The handshake message carried by the records of `wire`.
fn message_of(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = wire;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        out.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    out
}

fn hello(version: u16, name: Option<&str>) -> ClientHello {
    ClientHello {
        legacy_version: version,
        server_name: name.map(str::to_string),
    }
}

#[test]
fn real_and_classic_hellos_name_their_server() {
    let cases: [(&str, Vec<u8>, ClientHello); 6] = [
        (
            "rustls TLS 1.2",
            tls12_hello("api.example.com"),
            hello(0x0303, Some("api.example.com")),
        ),
        (
            "rustls TLS 1.3",
            tls13_hello("www.example.org"),
            hello(0x0303, Some("www.example.org")),
        ),
        (
            "TLS 1.0 with SNI",
            records(
                &classic_message(0x0301, Some("old.example.com")),
                16384,
                0x0301,
            ),
            hello(0x0301, Some("old.example.com")),
        ),
        (
            "TLS 1.0 without extensions",
            records(&classic_message(0x0301, None), 16384, 0x0301),
            hello(0x0301, None),
        ),
        (
            "TLS 1.1, upper case and a trailing dot",
            records(
                &classic_message(0x0302, Some("Mixed.Example.COM.")),
                16384,
                0x0301,
            ),
            hello(0x0302, Some("mixed.example.com")),
        ),
        (
            "SSL 3.0 record layer",
            records(&classic_message(0x0300, Some("a.b")), 16384, 0x0300),
            hello(0x0300, Some("a.b")),
        ),
    ];
    for (what, wire, want) in cases {
        assert_eq!(parse_client_hello(&wire), Ok(want), "{what}");
    }
}

#[test]
fn a_rustls_hello_without_sni_has_no_server_name() {
    // rustls sends no SNI for an IP address.
    let wire = rustls_hello("192.0.2.1", &[&rustls::version::TLS13]);
    assert_eq!(parse_client_hello(&wire).unwrap().server_name, None);
}

#[test]
fn hellos_fragmented_into_records_of_every_size_parse_the_same() {
    for wire in [
        tls12_hello("frag.example.com"),
        tls13_hello("frag.example.com"),
        records(
            &classic_message(0x0301, Some("frag.example.com")),
            16384,
            0x0301,
        ),
    ] {
        let want = parse_client_hello(&wire).unwrap();
        let message = message_of(&wire);
        for size in 1..=message.len() {
            let fragmented = records(&message, size, 0x0301);
            assert_eq!(
                parse_client_hello(&fragmented).as_ref(),
                Ok(&want),
                "records of {size} bytes"
            );
        }
    }
}

#[test]
fn every_truncation_asks_for_more() {
    for wire in [
        tls12_hello("cut.example.com"),
        tls13_hello("cut.example.com"),
        records(&classic_message(0x0301, Some("cut.example.com")), 7, 0x0301),
    ] {
        for len in 0..wire.len() {
            assert_eq!(
                parse_client_hello(&wire[..len]),
                Err(HelloError::Incomplete),
                "first {len} of {} bytes",
                wire.len()
            );
        }
        assert!(parse_client_hello(&wire).is_ok());
    }
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut wire = tls13_hello("more.example.com");
    wire.extend_from_slice(&[23, 3, 3, 0, 5, 1, 2, 3, 4, 5]);
    assert_eq!(
        parse_client_hello(&wire).unwrap().server_name.as_deref(),
        Some("more.example.com")
    );
}

#[test]
fn garbage_is_refused_early() {
    let huge_message = {
        let mut m = vec![1];
        m.extend_from_slice(&[0x01, 0x00, 0x00]);
        records(&m, 16384, 0x0301)
    };
    let cases: [(&str, Vec<u8>, HelloError); 9] = [
        (
            "http",
            b"GET / HTTP/1.1\r\n".to_vec(),
            HelloError::NotHandshake,
        ),
        ("one byte of ssh", b"S".to_vec(), HelloError::NotHandshake),
        (
            "alert record",
            vec![21, 3, 3, 0, 2, 2, 40],
            HelloError::NotHandshake,
        ),
        (
            "version 2.0",
            vec![22, 2, 0],
            HelloError::RecordVersion(0x0200),
        ),
        (
            "version 3.9",
            vec![22, 3, 9, 0],
            HelloError::RecordVersion(0x0309),
        ),
        (
            "record too long",
            vec![22, 3, 1, 0x40, 0x01],
            HelloError::RecordTooLong,
        ),
        (
            "empty record",
            vec![22, 3, 1, 0, 0],
            HelloError::EmptyRecord,
        ),
        (
            "server hello",
            vec![22, 3, 3, 0, 4, 2],
            HelloError::NotClientHello,
        ),
        ("hello over 16 KiB", huge_message, HelloError::TooLarge),
    ];
    for (what, input, want) in cases {
        assert_eq!(parse_client_hello(&input), Err(want), "{what}");
    }
    for name in ["bad name!", "a..b", "a..", ".a", "", ".", &"x".repeat(64)] {
        let wire = records(&classic_message(0x0301, Some(name)), 16384, 0x0301);
        assert_eq!(
            parse_client_hello(&wire),
            Err(HelloError::Malformed("host name")),
            "{name:?}"
        );
    }
}

#[test]
fn lying_inner_lengths_are_malformed() {
    let good = classic_message(0x0301, Some("x.example.com"));
    // Byte 4 starts the body: version (2), random (32), session id length.
    let mut long_session = good.clone();
    long_session[4 + 34] = 33;
    let mut odd_suites = good.clone();
    odd_suites[4 + 36] = 3;
    let mut short_body = good.clone();
    short_body.truncate(good.len() - 3);
    let len = short_body.len() - 4;
    short_body[1..4].copy_from_slice(&[0, (len >> 8) as u8, len as u8]);
    for (what, message) in [
        ("session id", long_session),
        ("cipher suites", odd_suites),
        ("cut extensions", short_body),
    ] {
        assert!(
            matches!(
                parse_client_hello(&records(&message, 16384, 0x0301)),
                Err(HelloError::Malformed(_))
            ),
            "{what}"
        );
    }
}

/// xorshift64: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(600);
        let mut input = rng.bytes(len);
        // Half the time, look like a handshake record so the parser gets
        // past the first checks.
        if len >= 6 && rng.next() & 1 == 0 {
            input[..3].copy_from_slice(&[22, 3, 1]);
            input[5] = 1;
        }
        let _ = parse_client_hello(&input);
    }
    let seeds = [tls12_hello("m.example.com"), tls13_hello("m.example.com")];
    for i in 0..20_000 {
        let mut input = seeds[i % 2].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len());
            input[at] = rng.next() as u8;
        }
        let cut = rng.below(input.len() + 1);
        let _ = parse_client_hello(&input[..cut]);
        let _ = parse_client_hello(&input);
    }
}

#[test]
fn a_hello_of_many_tiny_records_stays_within_the_bound() {
    let message = classic_message(0x0301, Some("tiny.example.com"));
    let wire = records(&message, 1, 0x0301);
    assert!(wire.len() < MAX_HELLO_BYTES);
    assert!(parse_client_hello(&wire).is_ok());
}
