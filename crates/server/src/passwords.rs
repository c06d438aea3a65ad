//! Local passwords: the policy, Argon2id PHC hashing and temporary
//! passwords. Hashing is CPU-bound, so async callers run it through
//! `hash_async`/`verify_async` on the blocking pool, never while holding the
//! store.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use portunus_domain::{DomainError, ErrorCode};
use rand::RngCore;
use std::sync::OnceLock;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in bytes; bounds the hashing work a request
/// can ask for.
pub const MAX_BYTES: usize = 1024;

/// Argon2id with 12 MiB, 2 passes, 1 lane: memory-hard like the OWASP
/// settings, with one pass fewer so a login costs about 40 ms even in an
/// unoptimised build. Stored PHC strings carry their own parameters, so
/// raising these later keeps old hashes verifiable.
fn hasher() -> Argon2<'static> {
    let params = Params::new(12 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy. The message never repeats it.
pub fn check_policy(field: &str, password: &str) -> Result<(), DomainError> {
    if password.len() > MAX_BYTES {
        return Err(DomainError::field(
            ErrorCode::InvalidRequest,
            field,
            format!("must be at most {MAX_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_LEN {
        return Err(DomainError::field(
            ErrorCode::PasswordTooWeak,
            field,
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if password.trim().is_empty() {
        return Err(DomainError::field(
            ErrorCode::PasswordTooWeak,
            field,
            "must not be only whitespace",
        ));
    }
    Ok(())
}

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, DomainError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(internal)?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(internal)
}

/// True when `password` matches the PHC string. A malformed stored hash
/// never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the user is unknown
/// or has no password, so a failed login costs the same either way.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash(&crate::secrets::new_token()).unwrap_or_default())
}

/// Verifies against `phc`, or against the decoy when there is none.
pub fn verify_or_decoy(password: &str, phc: Option<&str>) -> bool {
    match phc {
        Some(p) => verify(password, p),
        None => {
            let _ = verify(password, decoy());
            false
        }
    }
}

pub async fn hash_async(password: String) -> Result<String, DomainError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(internal)?
}

pub async fn verify_async(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_or_decoy(&password, phc.as_deref()))
        .await
        .unwrap_or(false)
}

/// A random temporary password: 20 URL-safe characters (120 bits).
pub fn temporary() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn internal(e: impl std::fmt::Display) -> DomainError {
    tracing::error!(error = %e, "password hashing failed");
    DomainError::new(ErrorCode::Internal, "password hashing failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let cases: &[(&str, Option<ErrorCode>)] = &[
            ("", Some(ErrorCode::PasswordTooWeak)),
            ("short", Some(ErrorCode::PasswordTooWeak)),
            ("elevenchars", Some(ErrorCode::PasswordTooWeak)),
            ("twelve chars", None),
            ("            ", Some(ErrorCode::PasswordTooWeak)),
            // Characters, not bytes: twelve two-byte characters pass.
            ("éééééééééééé", None),
            ("ééééééééééé", Some(ErrorCode::PasswordTooWeak)),
        ];
        for (pw, want) in cases {
            let got = check_policy("password", pw).err().map(|e| e.code);
            assert_eq!(got, *want, "{pw:?}");
        }
        let long = "x".repeat(MAX_BYTES + 1);
        let e = check_policy("password", &long).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(!e.message.contains("xxxx"));
        assert!(check_policy("new_password", "abc")
            .unwrap_err()
            .message
            .starts_with("new_password"));
    }

    #[test]
    fn hash_and_verify() {
        let start = std::time::Instant::now();
        let h = hash("correct horse battery").unwrap();
        let took = start.elapsed();
        assert!(h.starts_with("$argon2id$v=19$m=12288,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("anything", "not a phc string"));
        assert!(!verify_or_decoy("anything", None));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
        eprintln!("argon2id hash took {took:?}");
    }

    #[test]
    fn temporary_passwords_pass_the_policy() {
        let t = temporary();
        assert_eq!(t.len(), 20);
        assert!(check_policy("password", &t).is_ok());
        assert_ne!(t, temporary());
    }
}
