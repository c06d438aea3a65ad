//! PROXY protocol headers (v1 text, v2 binary) that tell a target who the
//! original client was. Pure encoders; `tcp.rs` writes the header before
//! any payload.

use portunus_domain::rule::ProxyProtocol;
use std::net::{IpAddr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2, command PROXY.
const V2_PROXY: u8 = 0x21;
const V2_TCP4: u8 = 0x11;
const V2_TCP6: u8 = 0x21;

/// The header for a connection from `client` that arrived at `local`.
pub(crate) fn header(version: ProxyProtocol, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    match version {
        ProxyProtocol::V1 => v1(client, local),
        ProxyProtocol::V2 => v2(client, local),
    }
}

/// Both addresses in one family: IPv4 when both are IPv4 (or IPv4-mapped),
/// otherwise IPv6 with any IPv4 address mapped into it.
fn same_family(client: SocketAddr, local: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (c, l) = (canonical(client), canonical(local));
    if c.is_ipv4() == l.is_ipv4() {
        return (c, l);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(c), v6(l))
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, at most 107 bytes.
fn v1(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let (c, l) = same_family(client, local);
    let family = if c.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        c.ip(),
        l.ip(),
        c.port(),
        l.port()
    )
    .into_bytes()
}

/// Signature, version and command, family, length, then source address,
/// destination address, source port and destination port.
fn v2(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let (c, l) = same_family(client, local);
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(V2_PROXY);
    match (c.ip(), l.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.push(V2_TCP4);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            out.push(V2_TCP6);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(src));
            out.extend_from_slice(&v6(dst));
        }
    }
    out.extend_from_slice(&c.port().to_be_bytes());
    out.extend_from_slice(&l.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_bytes() {
        let cases = [
            (
                "192.0.2.1:56324",
                "198.51.100.7:443",
                "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n",
            ),
            (
                "[2001:db8::1]:1",
                "[2001:db8::2]:65535",
                "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
            ),
            (
                "[::ffff:10.1.2.3]:5000",
                "10.0.0.1:80",
                "PROXY TCP4 10.1.2.3 10.0.0.1 5000 80\r\n",
            ),
            (
                "10.1.2.3:5000",
                "[2001:db8::2]:80",
                "PROXY TCP6 ::ffff:10.1.2.3 2001:db8::2 5000 80\r\n",
            ),
        ];
        for (client, local, want) in cases {
            let got = header(ProxyProtocol::V1, addr(client), addr(local));
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
        let longest = header(
            ProxyProtocol::V1,
            addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        );
        assert_eq!(longest.len(), 104, "within the 107-byte limit");
    }

    #[test]
    fn v2_ipv4_bytes() {
        let got = header(
            ProxyProtocol::V2,
            addr("192.0.2.1:56324"),
            addr("198.51.100.7:443"),
        );
        let want: Vec<u8> = [
            &b"\r\n\r\n\0\r\nQUIT\n"[..],
            &[0x21, 0x11, 0x00, 0x0c],
            &[192, 0, 2, 1],
            &[198, 51, 100, 7],
            &[0xdc, 0x04],
            &[0x01, 0xbb],
        ]
        .concat();
        assert_eq!(got, want);
        assert_eq!(got.len(), 28);
    }

    #[test]
    fn v2_ipv6_bytes() {
        let got = header(
            ProxyProtocol::V2,
            addr("[2001:db8::1]:1"),
            addr("[::1]:8443"),
        );
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        src[15] = 1;
        let mut dst = [0u8; 16];
        dst[15] = 1;
        let want: Vec<u8> = [
            &b"\r\n\r\n\0\r\nQUIT\n"[..],
            &[0x21, 0x21, 0x00, 0x24],
            &src,
            &dst,
            &[0x00, 0x01],
            &[0x20, 0xfb],
        ]
        .concat();
        assert_eq!(got, want);
        assert_eq!(got.len(), 52);
    }

    #[test]
    fn v2_mixed_families_map_ipv4_into_ipv6() {
        let got = header(
            ProxyProtocol::V2,
            addr("10.1.2.3:5000"),
            addr("[2001:db8::2]:80"),
        );
        assert_eq!(got[13], 0x21);
        assert_eq!(
            &got[16..32],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]
        );
    }
}
