//! Source filters: which peer addresses a rule serves.
//!
//! A rule carries two lists of CIDR blocks. A source matching any `deny`
//! block is refused, whatever the allow list says; with a non-empty
//! `allow` list, a source must also match one of its blocks. Both lists
//! empty means every source is served. IPv4 peers that reach a dual-stack
//! socket as IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are matched
//! as the IPv4 addresses they are, so one `192.0.2.0/24` block covers
//! them on every socket.

use crate::codes::ErrorCode;
use crate::error::DomainError;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Entries one list may hold: enough for an office or a CDN's published
/// ranges, few enough that a linear match costs nothing next to a connect.
pub const MAX_SOURCE_FILTERS: usize = 64;

/// One CIDR block, its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a string is not a CIDR block; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The mask of the top `prefix` bits of a `width`-bit address.
fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(prefix))) >> (128 - u32::from(width))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    /// Host bits must be zero: `10.0.0.1/8` is more likely a typo than a
    /// wish for all of `10.0.0.0/8`.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let bad = |why: &str| CidrError(format!("{s:?} {why}"));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| bad("is not an IPv4 or IPv6 CIDR block (10.0.0.0/8, 2001:db8::/32)"))?;
        let (value, width) = bits(network);
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= width && !p.starts_with('+') && p.len() <= 3 => n,
                _ => return Err(bad(&format!("has a prefix length outside 0-{width}"))),
            },
        };
        if value & !mask(prefix, width) != 0 {
            let base = from_bits(value & mask(prefix, width), network);
            return Err(bad(&format!(
                "has host bits set; did you mean {base}/{prefix}?"
            )));
        }
        Ok(Cidr { network, prefix })
    }
}

fn from_bits(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::from(u32::try_from(value).unwrap_or(0).to_be_bytes()),
        IpAddr::V6(_) => IpAddr::from(value.to_be_bytes()),
    }
}

impl Cidr {
    /// Whether `ip` lies in the block; IPv4-mapped IPv6 addresses count as
    /// IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (want, width) = bits(self.network);
        let (have, have_width) = bits(ip);
        width == have_width && have & mask(self.prefix, width) == want
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The parsed filter of one rule, as the data plane consults it for every
/// new connection or flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFilter {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

impl SourceFilter {
    /// Parses both lists; the error names the list and the entry.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<SourceFilter, DomainError> {
        Ok(SourceFilter {
            allow: parse_list("allow_sources", allow)?,
            deny: parse_list("deny_sources", deny)?,
        })
    }

    /// Whether the filter lets every source through, so callers can skip it.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Deny wins; a non-empty allow list refuses everything outside it.
    pub fn admits(&self, source: IpAddr) -> bool {
        if self.deny.iter().any(|c| c.contains(source)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(source))
    }
}

fn parse_list(field: &str, entries: &[String]) -> Result<Vec<Cidr>, DomainError> {
    if entries.len() > MAX_SOURCE_FILTERS {
        return Err(DomainError::field(
            ErrorCode::SourceFilterInvalid,
            field,
            format!(
                "{} entries given, at most {MAX_SOURCE_FILTERS} allowed",
                entries.len()
            ),
        ));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Cidr>().map_err(|e| {
                DomainError::field(ErrorCode::SourceFilterInvalid, &format!("{field}[{i}]"), e)
            })
        })
        .collect()
}

/// Rewrites each entry that parses in its canonical spelling (`10.0.0.5`
/// becomes `10.0.0.5/32`, IPv6 lowercased and compressed), so equal
/// filters compare equal; entries that do not parse are left for
/// validation to report.
pub fn normalize_list(entries: &mut [String]) {
    for entry in entries {
        if let Ok(cidr) = entry.parse::<Cidr>() {
            *entry = cidr.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_spells_canonically() {
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.5", "10.0.0.5/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:DB8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            ("192.0.2.128/25", "192.0.2.128/25"),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<Cidr>().unwrap().to_string(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_block() {
        let cases = [
            ("", "is not an IPv4"),
            ("10.0.0/8", "is not an IPv4"),
            ("example.com/8", "is not an IPv4"),
            ("10.0.0.0/33", "outside 0-32"),
            ("2001:db8::/129", "outside 0-128"),
            ("10.0.0.0/", "outside 0-32"),
            ("10.0.0.0/+8", "outside 0-32"),
            ("10.0.0.0/x", "outside 0-32"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
            ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
            ("[::1]/128", "is not an IPv4"),
        ];
        for (raw, why) in cases {
            let e = raw.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(why), "{raw}: {e}");
        }
    }

    #[test]
    fn contains_table() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.2/32", "127.0.0.2", true),
            ("127.0.0.2/32", "127.0.0.1", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "192.0.2.1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::1/128", "::1", true),
            // A dual-stack socket reports IPv4 peers as mapped addresses.
            ("192.0.2.0/24", "::ffff:192.0.2.7", true),
            ("::ffff:0:0/96", "::ffff:192.0.2.7", false),
            ("192.0.2.0/25", "192.0.2.128", false),
        ];
        for (cidr, addr, want) in cases {
            let c: Cidr = cidr.parse().unwrap();
            assert_eq!(c.contains(ip(addr)), want, "{cidr} ∋ {addr}");
        }
    }

    #[test]
    fn deny_wins_and_a_non_empty_allow_list_refuses_the_rest() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&[&str], &[&str], &str, bool); 7] = [
            (&[], &[], "198.51.100.1", true),
            (&[], &["198.51.100.0/24"], "198.51.100.1", false),
            (&[], &["198.51.100.0/24"], "198.51.101.1", true),
            (&["10.0.0.0/8"], &[], "10.1.1.1", true),
            (&["10.0.0.0/8"], &[], "192.0.2.1", false),
            (&["10.0.0.0/8"], &["10.9.0.0/16"], "10.9.1.1", false),
            (&["10.0.0.0/8", "::1"], &[], "::1", true),
        ];
        for (allow, deny, source, want) in cases {
            let f = SourceFilter::parse(&list(allow), &list(deny)).unwrap();
            assert_eq!(f.admits(ip(source)), want, "{allow:?} {deny:?} {source}");
            assert_eq!(f.is_open(), allow.is_empty() && deny.is_empty());
        }
    }

    #[test]
    fn errors_name_the_list_and_the_entry() {
        let e = SourceFilter::parse(&["10.0.0.0/8".into(), "nope".into()], &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::SourceFilterInvalid);
        assert!(e.message.starts_with("allow_sources[1]: "), "{}", e.message);
        let many = vec!["10.0.0.0/8".to_string(); MAX_SOURCE_FILTERS + 1];
        let e = SourceFilter::parse(&[], &many).unwrap_err();
        assert!(e.message.starts_with("deny_sources: "), "{}", e.message);
    }

    #[test]
    fn normalize_leaves_bad_entries_for_validation() {
        let mut v = vec!["10.0.0.5".to_string(), "bad".to_string()];
        normalize_list(&mut v);
        assert_eq!(v, ["10.0.0.5/32", "bad"]);
    }
}
