//! Command-line grammar for listen ports and targets:
//! `8080`, `30000-30050`, `host:port`, `host:port@prio`, `host:30000-30050`,
//! `[::1]:80`.

use crate::codes::ErrorCode;
use crate::error::DomainError;

fn port(field: &str, s: &str) -> Result<u32, DomainError> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) && !s.starts_with('+') => Ok(p),
        _ => Err(DomainError::field(
            ErrorCode::InvalidPort,
            field,
            format!("{s:?} is not a port in 1-65535"),
        )),
    }
}

/// `start` or `start-end`.
pub fn parse_ports(field: &str, s: &str) -> Result<(u32, Option<u32>), DomainError> {
    match s.split_once('-') {
        None => Ok((port(field, s)?, None)),
        Some((a, b)) => {
            let (a, b) = (port(field, a)?, port(field, b)?);
            if b < a {
                return Err(DomainError::field(
                    ErrorCode::RangeInvalid,
                    field,
                    format!("{s:?}: the range end is below its start"),
                ));
            }
            Ok((a, Some(b)))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetArg {
    pub host: String,
    pub port: u32,
    pub port_end: Option<u32>,
    pub priority: Option<u32>,
}

/// `host:port[@prio]` or `host:start-end`; IPv6 hosts in brackets.
pub fn parse_target(s: &str) -> Result<TargetArg, DomainError> {
    let invalid =
        |why: &str| DomainError::field(ErrorCode::InvalidTarget, "target", format!("{s:?}: {why}"));
    let (addr, priority) = match s.rsplit_once('@') {
        Some((addr, prio)) => {
            let p = prio.parse::<u32>().map_err(|_| {
                DomainError::field(
                    ErrorCode::InvalidPriority,
                    "target",
                    format!("{s:?}: priority {prio:?} is not a number"),
                )
            })?;
            (addr, Some(p))
        }
        None => (s, None),
    };
    let (host, ports) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '['"))?;
        let ports = after
            .strip_prefix(':')
            .ok_or_else(|| invalid("missing :port"))?;
        (host, ports)
    } else {
        let (host, ports) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid("missing :port"))?;
        if host.contains(':') {
            return Err(invalid("write IPv6 hosts in brackets, e.g. [::1]:80"));
        }
        (host, ports)
    };
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    crate::rule::validate_target_host("target", host)?;
    let (port, port_end) = parse_ports("target", ports)?;
    Ok(TargetArg {
        host: host.to_string(),
        port,
        port_end,
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_ports("l", "8080").unwrap(), (8080, None));
        assert_eq!(
            parse_ports("l", "30000-30050").unwrap(),
            (30000, Some(30050))
        );
        assert_eq!(
            parse_ports("l", "0").unwrap_err().code,
            ErrorCode::InvalidPort
        );
        assert_eq!(
            parse_ports("l", "9-8").unwrap_err().code,
            ErrorCode::RangeInvalid
        );
        assert_eq!(
            parse_ports("l", "x").unwrap_err().code,
            ErrorCode::InvalidPort
        );
    }

    #[test]
    fn targets() {
        let t = parse_target("10.0.0.5:80").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.port_end, t.priority),
            ("10.0.0.5", 80, None, None)
        );
        let t = parse_target("backup.example.com:443@2").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.priority),
            ("backup.example.com", 443, Some(2))
        );
        let t = parse_target("host:30000-30050").unwrap();
        assert_eq!((t.port, t.port_end), (30000, Some(30050)));
        let t = parse_target("[::1]:8080@3").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.priority),
            ("::1", 8080, Some(3))
        );
        for (bad, code) in [
            ("host", ErrorCode::InvalidTarget),
            (":80", ErrorCode::InvalidTarget),
            ("::1:80", ErrorCode::InvalidTarget),
            ("[::1:80", ErrorCode::InvalidTarget),
            ("h:0", ErrorCode::InvalidPort),
            ("h:80@x", ErrorCode::InvalidPriority),
            ("bad host:80", ErrorCode::InvalidTarget),
        ] {
            assert_eq!(parse_target(bad).unwrap_err().code, code, "{bad}");
        }
    }
}
