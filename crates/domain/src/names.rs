//! Grammars for names and hosts.

use crate::codes::ErrorCode;
use crate::error::DomainError;
use std::net::IpAddr;

/// Users reserved for bootstrap paths; no operator can create them.
pub const RESERVED_SUPERADMIN: &str = "_superadmin";
pub const RESERVED_LEGACY: &str = "_legacy";

/// The most bytes a rule's note may hold.
pub const RULE_NOTE_MAX: usize = 1024;

/// 1..=63 of `[A-Za-z0-9._-]`, starting alphanumeric: the grammar of client
/// and rule names, which the command line takes where an id goes.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn name_error(code: ErrorCode, name: &str) -> DomainError {
    DomainError::field(
        code,
        "name",
        format!("{name:?} must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"),
    )
}

/// Client display names.
pub fn validate_client_name(name: &str) -> Result<(), DomainError> {
    if is_name(name) {
        Ok(())
    } else {
        Err(name_error(ErrorCode::InvalidClientName, name))
    }
}

/// Rule names, unique per client (the store checks that).
pub fn validate_rule_name(name: &str) -> Result<(), DomainError> {
    if is_name(name) {
        Ok(())
    } else {
        Err(name_error(ErrorCode::InvalidRuleName, name))
    }
}

/// Rule notes are free text for people: any printable text up to
/// [`RULE_NOTE_MAX`] bytes. Control characters are refused because notes
/// are printed in table cells and terminals.
pub fn validate_rule_note(note: &str) -> Result<(), DomainError> {
    if note.len() > RULE_NOTE_MAX {
        return Err(DomainError::field(
            ErrorCode::InvalidRuleNote,
            "note",
            format!("{} bytes; at most {RULE_NOTE_MAX}", note.len()),
        ));
    }
    if note.chars().any(char::is_control) {
        return Err(DomainError::field(
            ErrorCode::InvalidRuleNote,
            "note",
            "must not hold control characters (newlines, tabs, escapes)",
        ));
    }
    Ok(())
}

/// User ids: `[a-z][a-z0-9_-]{0,31}`. Ids starting with `_` are reserved
/// and only minted by the bootstrap paths, so they fail this check.
pub fn validate_user_id(id: &str) -> Result<(), DomainError> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidUserId,
            "id",
            format!("{id:?} must match [a-z][a-z0-9_-]{{0,31}}"),
        ))
    }
}

/// True for a syntactically valid DNS hostname (LDH labels, 1..=253 bytes).
pub fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    }) && !host
        .split('.')
        .all(|l| l.bytes().all(|c| c.is_ascii_digit()))
}

/// A bare host with no port: a DNS name or an IP literal (IPv6 without
/// brackets). Used for a client's public address.
pub fn validate_bare_host(field: &str, host: &str) -> Result<(), DomainError> {
    if host.parse::<IpAddr>().is_ok() || is_dns_name(host) {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidClientAddress,
            field,
            format!("{host:?} is not a bare host name or IP address (no scheme, port or path)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names() {
        for ok in ["edge-01", "a", "Edge.eu_1", &"x".repeat(63)] {
            assert!(validate_client_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-edge", "edge 01", "edge/1", &"x".repeat(64), "é"] {
            let e = validate_client_name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientName, "{bad}");
        }
    }

    #[test]
    fn rule_names_and_notes() {
        for ok in ["web-frontend", "a", "dns.v2_b", &"x".repeat(63)] {
            assert!(validate_rule_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-web", "web frontend", "web/1", &"x".repeat(64)] {
            assert_eq!(
                validate_rule_name(bad).unwrap_err().code,
                ErrorCode::InvalidRuleName,
                "{bad}"
            );
        }
        for ok in [
            "",
            "owned by team blue, ticket OPS-12",
            "caf\u{e9} \u{2013} ok",
            &"n".repeat(1024),
        ] {
            assert!(validate_rule_note(ok).is_ok(), "{ok}");
        }
        for bad in ["two\nlines", "tab\there", "\u{1b}[31m", &"n".repeat(1025)] {
            assert_eq!(
                validate_rule_note(bad).unwrap_err().code,
                ErrorCode::InvalidRuleNote,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_ids() {
        for ok in ["admin", "a", "ops_team-2", &format!("a{}", "b".repeat(31))] {
            assert!(validate_user_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_superadmin",
            "_legacy",
            "Admin",
            "1abc",
            "a.b",
            &"a".repeat(33),
        ] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_names_and_hosts() {
        for ok in ["localhost", "a.example.com", "x-1.y", "example.com."] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "", "-a.com", "a-.com", "a..b", "a_b.com", "1.2.3.4", "a b", "a:1",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(validate_bare_host("address", "203.0.113.9").is_ok());
        assert!(validate_bare_host("address", "2001:db8::1").is_ok());
        assert!(validate_bare_host("address", "edge.example.com").is_ok());
        for bad in ["edge.example.com:80", "http://x", "x/y", ""] {
            let e = validate_bare_host("address", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientAddress);
        }
    }
}
