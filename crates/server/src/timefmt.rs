//! Timestamps on the wire are RFC 3339 UTC; in the store, Unix seconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// RFC 3339 UTC of Unix milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Unix milliseconds of an RFC 3339 time; `invalid_time` names the field.
pub fn parse_rfc3339_ms(field: &str, s: &str) -> Result<i64, portunus_domain::DomainError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            portunus_domain::DomainError::field(
                portunus_domain::ErrorCode::InvalidTime,
                field,
                format!("{s:?} is not an RFC 3339 time such as 2024-05-01T00:00:00Z"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_times() {
        assert_eq!(rfc3339_ms(1_714_521_601_500), "2024-05-01T00:00:01.5Z");
        assert_eq!(
            parse_rfc3339_ms("t", "2024-05-01T02:00:01.5+02:00").unwrap(),
            1_714_521_601_500
        );
        for bad in ["", "2024-05-01", "yesterday", "2024-05-01T00:00:00"] {
            let e = parse_rfc3339_ms("before", bad).unwrap_err();
            assert_eq!(e.code, portunus_domain::ErrorCode::InvalidTime, "{bad}");
            assert!(e.message.starts_with("before"));
        }
    }
}
