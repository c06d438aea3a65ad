//! How the first superadmin comes to exist: the setup token that opens
//! Web onboarding, `bootstrap-superadmin`, and the legacy `operator_token`
//! config key.

use crate::secrets::{hash_token, new_token};
use crate::store::Connection;
use crate::store::{now, onboarding, users, write_tx, StoreResult};
use portunus_domain::names::{RESERVED_LEGACY, RESERVED_SUPERADMIN};

/// How long a setup token lives, in seconds.
pub const SETUP_TOKEN_TTL_SECS: i64 = 30 * 60;

/// What precedes the setup token on `serve`'s stderr; tests look for it.
pub const SETUP_TOKEN_BANNER: &str = "First-run setup token (valid 30 minutes):";

/// Replaces the setup token with a fresh one and returns it; only its hash
/// is stored. Refuses once an active superadmin exists.
pub fn rotate_setup_token(conn: &mut Connection) -> StoreResult<String> {
    let token = new_token();
    let hash = hash_token(&token);
    write_tx(conn, |tx| {
        users::refuse_if_superadmin(tx, "a superadmin exists; onboarding is closed")?;
        onboarding::set(tx, &hash, now() + SETUP_TOKEN_TTL_SECS)
    })?;
    Ok(token)
}

/// Prints the setup token on stderr, outside the structured log, so it
/// reaches the operator without entering log pipelines.
pub fn announce_setup_token(token: &str, http: std::net::SocketAddr) {
    eprintln!("{SETUP_TOKEN_BANNER} {token}");
    eprintln!(
        "Open the console at {} and create the first superadmin with it.",
        console_url(http)
    );
}

/// Where an operator on this host opens the console: the operator
/// listener, with a wildcard bind address replaced by loopback.
pub fn console_url(http: std::net::SocketAddr) -> String {
    let ip = match http.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}/", std::net::SocketAddr::new(ip, http.port()))
}

/// Mints `_superadmin` and returns its API token (shown once). Refuses when
/// any active superadmin exists.
pub fn bootstrap_superadmin(conn: &mut Connection, display_name: &str) -> StoreResult<String> {
    let token = new_token();
    let hash = hash_token(&token);
    write_tx(conn, |tx| {
        users::refuse_if_superadmin(
            tx,
            "a superadmin already exists; bootstrap-superadmin only runs on a fresh store",
        )?;
        users::create(
            tx,
            RESERVED_SUPERADMIN,
            display_name,
            users::Role::Superadmin,
        )?;
        users::issue_token(tx, RESERVED_SUPERADMIN, "bootstrap", &hash)?;
        Ok(())
    })?;
    Ok(token)
}

/// On a start with no superadmin, keys the reserved `_legacy` superadmin to
/// the configured `operator_token`. Returns whether it did.
pub fn legacy_operator_token(conn: &mut Connection, token: &str) -> StoreResult<bool> {
    let hash = hash_token(token);
    write_tx(conn, |tx| {
        if users::has_active_superadmin(tx)? {
            return Ok(false);
        }
        if !users::exists(tx, RESERVED_LEGACY)? {
            users::create(
                tx,
                RESERVED_LEGACY,
                "Legacy operator token",
                users::Role::Superadmin,
            )?;
        }
        users::issue_token(tx, RESERVED_LEGACY, "operator_token", &hash)?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;
    use portunus_domain::{DomainError, ErrorCode};

    #[test]
    fn bootstrap_once() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let t = bootstrap_superadmin(c, "Admin")?;
                assert_eq!(t.len(), 43);
                assert!(users::actor_for_token(c, &hash_token(&t))?.is_some());
                let again = bootstrap_superadmin(c, "Admin").unwrap_err();
                assert_eq!(DomainError::from(again).code, ErrorCode::SuperadminExists);
                assert!(!legacy_operator_token(c, "whatever")?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn setup_token_rotates_until_a_superadmin_exists() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                let a = rotate_setup_token(c)?;
                let b = rotate_setup_token(c)?;
                assert_ne!(a, b);
                assert!(!onboarding::matches(c, &hash_token(&a), now())?);
                assert!(onboarding::matches(c, &hash_token(&b), now())?);
                assert!(!onboarding::matches(
                    c,
                    &hash_token(&b),
                    now() + SETUP_TOKEN_TTL_SECS
                )?);
                bootstrap_superadmin(c, "Admin")?;
                let e = rotate_setup_token(c).unwrap_err();
                assert_eq!(DomainError::from(e).code, ErrorCode::SuperadminExists);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn legacy_token_on_fresh_store() {
        let (_d, store) = test_store();
        store
            .blocking(|c| {
                assert!(legacy_operator_token(c, "configured-token")?);
                let a = users::actor_for_token(c, &hash_token("configured-token"))?.unwrap();
                assert_eq!(a.user_id, RESERVED_LEGACY);
                Ok(())
            })
            .unwrap();
    }
}
