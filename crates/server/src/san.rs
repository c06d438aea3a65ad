//! Which hosts the served certificate vouches for: the subject alternative
//! names of the leaf certificate, read with `x509-parser`, and host matching
//! with the semantics of webpki, the verifier rustls uses.
//!
//! Matching rules: DNS names compare ASCII case-insensitively; a wildcard
//! is allowed only as a whole left-most `*` label with at least two labels
//! after it, and stands for exactly one non-empty label; an IP host is
//! covered only by an IP SAN; the subject common name is never consulted,
//! so a certificate without SANs covers nothing.

use portunus_domain::endpoint::EndpointHost;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum SanError {
    #[error("the certificate cannot be parsed: {0}")]
    Certificate(String),
    #[error("the certificate's subjectAltName extension is unusable: {0}")]
    Extension(String),
}

/// The DNS names and IP addresses listed in a certificate's SAN extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanSet {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl SanSet {
    #[cfg(test)]
    pub fn new(dns: Vec<String>, ips: Vec<IpAddr>) -> SanSet {
        SanSet { dns, ips }
    }

    /// Reads the SANs of a DER certificate. A certificate without the
    /// extension yields the empty set. Entries of other kinds (e-mail, URI,
    /// directory names) never cover a host and are skipped.
    pub fn from_cert_der(der: &[u8]) -> Result<SanSet, SanError> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| SanError::Certificate(e.to_string()))?;
        let ext = cert
            .subject_alternative_name()
            .map_err(|e| SanError::Extension(e.to_string()))?;
        let mut set = SanSet::default();
        for name in ext.iter().flat_map(|e| e.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(d) => set.dns.push((*d).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        set.ips.push(ip);
                    }
                }
                _ => {}
            }
        }
        Ok(set)
    }

    /// The SANs of the certificate the server serves. One that cannot be
    /// read covers nothing: explicit endpoints then fail closed instead of
    /// advertising a host nobody checked.
    pub fn of_served(leaf_der: &[u8]) -> SanSet {
        SanSet::from_cert_der(leaf_der).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the server certificate's SANs; no advertised host is covered");
            SanSet::default()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty()
    }

    /// True when a TLS client verifying `host` against this certificate
    /// would accept the name.
    pub fn covers(&self, host: &EndpointHost) -> bool {
        match host {
            EndpointHost::Dns(name) => self.dns.iter().any(|p| dns_covers(p, name)),
            EndpointHost::Ipv4(ip) => ip_covers(&self.ips, IpAddr::V4(*ip)),
        }
    }
}

/// `DNS:localhost, IP:127.0.0.1`, or `none` for the empty set.
impl fmt::Display for SanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let entries = self
            .dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(self.ips.iter().map(|ip| format!("IP:{ip}")));
        let all: Vec<String> = entries.collect();
        f.write_str(&all.join(", "))
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

/// An IP host needs an IP SAN of the same family and value; an
/// IPv4-mapped IPv6 SAN does not cover the IPv4 address.
pub fn ip_covers(presented: &[IpAddr], reference: IpAddr) -> bool {
    presented.contains(&reference)
}

/// Whether the presented SAN `presented` (possibly a wildcard) covers the
/// reference DNS name `reference` (possibly absolute, with a trailing dot).
/// Malformed names on either side never match.
pub fn dns_covers(presented: &str, reference: &str) -> bool {
    if !is_valid_dns_id(presented, Role::Presented) || !is_valid_dns_id(reference, Role::Reference)
    {
        return false;
    }
    let reference = reference.strip_suffix('.').unwrap_or(reference);
    match presented.strip_prefix("*.") {
        Some(suffix) => match reference.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        },
        None => presented.eq_ignore_ascii_case(reference),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A SAN entry: may start with a `*` label, may not be absolute.
    Presented,
    /// The name being checked: no wildcard, may end with a dot.
    Reference,
}

/// webpki's syntax check: labels of letters, digits, `-` and `_`, 1 to 63
/// bytes, no hyphen at either end, the last label not all digits, at most
/// 253 bytes; a wildcard must be followed by at least two labels.
fn is_valid_dns_id(id: &str, role: Role) -> bool {
    if id.len() > 253 {
        return false;
    }
    let (wildcard, rest) = match (role, id.strip_prefix("*.")) {
        (Role::Presented, Some(rest)) => (true, rest),
        _ => (false, id),
    };
    let rest = match (role, rest.strip_suffix('.')) {
        (Role::Reference, Some(relative)) => relative,
        _ => rest,
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let labels_ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last_numeric = labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric && (!wildcard || labels.len() >= 2)
}
