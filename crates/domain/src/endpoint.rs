//! The advertised-endpoint grammar: a bare `host:port` that clients dial.

use crate::codes::ErrorCode;
use crate::error::DomainError;
use crate::names::is_dns_name;
use std::fmt;
use std::net::Ipv4Addr;

/// The host of an endpoint: a DNS name (kept as typed) or an IPv4 literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointHost {
    Dns(String),
    Ipv4(Ipv4Addr),
}

/// A validated `host:port` with no scheme, path, userinfo or IPv6 literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: EndpointHost,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(input: &str) -> Result<Endpoint, DomainError> {
        let invalid = |why: &str| {
            DomainError::field(
                ErrorCode::EndpointInvalid,
                "advertised_endpoint",
                format!("{input:?} is not a bare host:port ({why})"),
            )
        };
        if input.is_empty() {
            return Err(invalid("empty"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        if input.contains("://") || input.contains('/') {
            return Err(invalid("scheme or path"));
        }
        if input.contains('@') {
            return Err(invalid("userinfo"));
        }
        if input.contains('[') || input.matches(':').count() > 1 {
            return Err(invalid("IPv6 literals are not supported"));
        }
        let (host, port) = input
            .rsplit_once(':')
            .ok_or_else(|| invalid("missing port"))?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && !port.starts_with('+') => p,
            _ => return Err(invalid("port must be 1-65535")),
        };
        let host = if let Ok(ip) = host.parse::<Ipv4Addr>() {
            EndpointHost::Ipv4(ip)
        } else if is_dns_name(host) {
            EndpointHost::Dns(host.to_string())
        } else {
            return Err(invalid("host is not a DNS name or IPv4 address"));
        };
        Ok(Endpoint { host, port })
    }

    pub fn host_str(&self) -> String {
        match &self.host {
            EndpointHost::Dns(d) => d.clone(),
            EndpointHost::Ipv4(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host_str(), self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bare_host_port() {
        for (input, host, port) in [
            ("proxy.example.com:34567", "proxy.example.com", 34567),
            ("127.0.0.1:7443", "127.0.0.1", 7443),
            ("Edge.Example.COM:1", "Edge.Example.COM", 1),
            ("localhost:65535", "localhost", 65535),
        ] {
            let e = Endpoint::parse(input).unwrap();
            assert_eq!(e.host_str(), host);
            assert_eq!(e.port, port);
            assert_eq!(e.to_string(), input);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:65536",
            "host:+1",
            "host:abc",
            "https://host:443",
            "host:443/path",
            "user@host:443",
            "[::1]:443",
            "::1:443",
            " host:443",
            "ho st:443",
            "-bad.com:443",
            "a..b:443",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::EndpointInvalid, "{bad}");
        }
    }
}
