//! The `Idempotency-Key` of a rule push: a client that lost the answer
//! (a dropped connection, a server crash) sends the push again with the
//! same key and gets the rule the first attempt stored.

use crate::secrets::hash_token;
use axum::http::HeaderMap;
use portunus_domain::rule::RuleSpec;
use portunus_domain::{DomainError, ErrorCode};

pub const HEADER: &str = "idempotency-key";
const MAX_LEN: usize = 128;

/// The key, if one was sent.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, DomainError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_LEN).contains(&k.len()))
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()));
    match key {
        Some(k) => Ok(Some(k.to_string())),
        None => Err(DomainError::new(
            ErrorCode::InvalidIdempotencyKey,
            format!("Idempotency-Key: expected 1-{MAX_LEN} visible ASCII characters"),
        )),
    }
}

/// What a retry must repeat exactly: the client as given and the
/// normalised spec.
pub fn request_hash(client: &str, spec: &RuleSpec) -> String {
    let spec = serde_json::to_string(spec).unwrap_or_default();
    hash_token(&format!("{client}\n{spec}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h).unwrap(), None);
        h.insert(HEADER, "0f8c-2a".parse().unwrap());
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("0f8c-2a"));
        for bad in ["", "has space", &"k".repeat(MAX_LEN + 1)] {
            h.insert(HEADER, bad.parse().unwrap());
            let e = from_headers(&h).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidIdempotencyKey, "{bad:?}");
        }
    }
}
