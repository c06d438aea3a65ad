//! Timestamps on the wire are RFC 3339 UTC; in the store, Unix seconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
