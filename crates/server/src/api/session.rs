//! Web sign-in: first-run onboarding, login (which sets the session
//! cookie) and logout. Login and onboarding are public routes, throttled
//! per source address and per user id.

use super::auth::{Via, SESSION_COOKIE};
use super::error::{ApiError, ApiResult};
use super::extract::{SecretJson, SourceIp};
use crate::audit::ActorTag;
use crate::passwords;
use crate::secrets::{hash_token, new_token};
use crate::state::Shared;
use crate::store::users::{self, Role};
use crate::store::{now, onboarding, sessions, write_tx};
use crate::throttle::Key;
use axum::extract::State;
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use portunus_domain::names::validate_user_id;
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

/// A `Set-Cookie` value for the session cookie; `None` clears it.
pub fn cookie(state: &Shared, value: Option<&str>) -> HeaderValue {
    let secure = state
        .config
        .operator_http_public_origin
        .as_deref()
        .is_some_and(|o| o.trim().to_ascii_lowercase().starts_with("https://"));
    let (v, age) = match value {
        Some(v) => (v, state.config.sessions.max_secs),
        None => ("", 0),
    };
    let mut c = format!("{SESSION_COOKIE}={v}; HttpOnly; SameSite=Lax; Path=/; Max-Age={age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie is ASCII")
}

/// Starts a session for `user_id`; returns the cookie value.
pub async fn start_session(state: &Shared, user_id: String) -> ApiResult<String> {
    let id = new_token();
    let hash = hash_token(&id);
    let life = state.config.sessions;
    state
        .store
        .write(move |tx| sessions::create(tx, &hash, &user_id, now(), life))
        .await?;
    Ok(id)
}

/// The 429 (with `Retry-After`) to answer when any of `keys` is over its
/// limit.
pub fn throttled(state: &Shared, keys: &[Key]) -> Option<Response> {
    let wait = state.throttle.blocked(keys, Instant::now())?;
    state.metrics.auth_failure("rate_limited");
    let secs = wait.as_secs().max(1);
    let err = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed attempts; retry in {secs} s"),
    );
    Some(([(RETRY_AFTER, secs.to_string())], err).into_response())
}

/// Counts a failed attempt against `keys` and hands `err` back.
pub fn failed(state: &Shared, keys: &[Key], reason: &str, err: ApiError) -> ApiError {
    state.throttle.failed(keys, Instant::now());
    state.metrics.auth_failure(reason);
    err
}

/// Characters that reorder text when displayed (bidirectional controls):
/// in a name they can make a list lie about who is who.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Display names: 1..=128 characters, no control or bidi characters.
pub fn validate_display_name(name: &str) -> Result<(), DomainError> {
    let n = name.chars().count();
    let clean = !name.chars().any(|c| c.is_control() || is_bidi_control(c));
    if (1..=128).contains(&n) && clean && !name.trim().is_empty() {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidRequest,
            "display_name",
            "must be 1-128 characters without control or bidirectional-override characters",
        ))
    }
}

/// User ids an operator may create: the grammar, minus `me`, which names
/// the caller in `/v1/users/me`.
pub fn validate_new_user_id(id: &str) -> Result<(), DomainError> {
    validate_user_id(id)?;
    if id == "me" {
        return Err(DomainError::field(
            ErrorCode::InvalidUserId,
            "user_id",
            "\"me\" is reserved",
        ));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(example = "alice")]
    user_id: String,
    password: String,
}

/// Who signed in; the session itself travels in the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user_id: String,
    pub role: Role,
    /// The password is temporary: until it is changed the session may only
    /// read `/v1/users/me`, change the password and sign out.
    pub password_change_required: bool,
}

/// Sign in with a user id and password; sets the session cookie.
///
/// Failures are throttled per source address and per user id.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginBody,
    responses((status = 200, description = "Signed in.", body = SignedIn,
        headers(("Set-Cookie" = String, description = "`portunus_session=…; HttpOnly; SameSite=Lax; Path=/`")))))]
pub async fn login(
    State(state): State<Shared>,
    SourceIp(ip): SourceIp,
    SecretJson(body): SecretJson<LoginBody>,
) -> Response {
    let keys = [Key::Source(ip), Key::user(&body.user_id)];
    if let Some(resp) = throttled(&state, &keys) {
        return resp;
    }
    let uid = body.user_id.clone();
    let record = match state
        .store
        .call(move |c| users::login_record(c, &uid))
        .await
    {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let phc = record.as_ref().and_then(|r| r.password_hash.clone());
    let Some(record) = record.filter(|_| phc.is_some()) else {
        // Unknown users cost a decoy verification, like a wrong password.
        passwords::verify_async(body.password, None).await;
        return bad_login(&state, &keys);
    };
    if !passwords::verify_async(body.password, phc).await {
        return bad_login(&state, &keys);
    }
    state.throttle.succeeded(&keys[1]);
    let user_id = record.actor.user_id.clone();
    let session = match start_session(&state, user_id.clone()).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let mut resp = Json(SignedIn {
        user_id: user_id.clone(),
        role: record.actor.role,
        password_change_required: record.temporary,
    })
    .into_response();
    resp.headers_mut()
        .insert(SET_COOKIE, cookie(&state, Some(&session)));
    resp.extensions_mut().insert(ActorTag(user_id));
    resp
}

fn bad_login(state: &Shared, keys: &[Key]) -> Response {
    failed(
        state,
        keys,
        "invalid_password",
        ApiError::new(ErrorCode::Unauthenticated, "invalid user id or password"),
    )
    .into_response()
}

/// Sign out: ends the session (if the caller used one) and clears the
/// cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", operation_id = "logout",
    responses((status = 204, description = "Signed out.",
        headers(("Set-Cookie" = String, description = "Clears `portunus_session`.")))))]
pub async fn logout(State(state): State<Shared>, Extension(via): Extension<Via>) -> Response {
    if let Via::Session { id_hash } = via {
        if let Err(e) = state
            .store
            .write(move |tx| sessions::delete(tx, &id_hash))
            .await
        {
            return ApiError::from(e).into_response();
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(SET_COOKIE, cookie(&state, None));
    resp
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardingBody {
    /// The token `serve` printed on a store with no superadmin.
    setup_token: String,
    #[schema(schema_with = super::schemas::user_id)]
    user_id: String,
    #[schema(schema_with = super::schemas::display_name)]
    display_name: String,
    #[schema(schema_with = super::schemas::password)]
    password: String,
}

/// The first superadmin.
#[derive(Debug, Serialize, ToSchema)]
pub struct Onboarded {
    pub user_id: String,
    pub display_name: String,
    pub role: Role,
}

fn closed() -> ApiError {
    ApiError::new(
        ErrorCode::SuperadminExists,
        "onboarding is closed: a superadmin exists",
    )
}

/// Create the first superadmin with the setup token.
///
/// Open only while no active superadmin exists; attempts are throttled per
/// source address.
#[utoipa::path(post, path = "/v1/auth/onboarding", tag = "auth", operation_id = "onboard",
    request_body = OnboardingBody,
    responses((status = 201, description = "The first superadmin; sign in next.", body = Onboarded)))]
pub async fn onboarding(
    State(state): State<Shared>,
    SourceIp(ip): SourceIp,
    SecretJson(body): SecretJson<OnboardingBody>,
) -> Response {
    let keys = [Key::Source(ip)];
    if let Some(resp) = throttled(&state, &keys) {
        return resp;
    }
    match onboard(&state, &keys, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn onboard(state: &Shared, keys: &[Key], body: OnboardingBody) -> ApiResult<Response> {
    if state.is_bootstrapped() {
        return Err(closed());
    }
    let token_hash = hash_token(&body.setup_token);
    let check = token_hash.clone();
    let (exists, valid) = state
        .store
        .call(move |c| {
            Ok((
                users::has_active_superadmin(c)?,
                onboarding::matches(c, &check, now())?,
            ))
        })
        .await?;
    if exists {
        state.mark_bootstrapped();
        return Err(closed());
    }
    if !valid {
        return Err(failed(
            state,
            keys,
            "invalid_setup_token",
            ApiError::new(
                ErrorCode::SetupTokenInvalid,
                "invalid or expired setup token; restart serve or run onboarding-token for a new one",
            ),
        ));
    }
    validate_new_user_id(&body.user_id)?;
    validate_display_name(&body.display_name)?;
    passwords::check_policy("password", &body.password)?;
    let phc = passwords::hash_async(body.password).await?;
    let (user_id, display_name) = (body.user_id.clone(), body.display_name.clone());
    state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                if users::has_active_superadmin(tx)? {
                    return Err(closed().0.into());
                }
                // The token is checked again under the write lock, so two
                // racing requests cannot both use it.
                if !onboarding::matches(tx, &token_hash, now())? {
                    return Err(DomainError::new(
                        ErrorCode::SetupTokenInvalid,
                        "invalid or expired setup token",
                    )
                    .into());
                }
                users::create(tx, &user_id, &display_name, Role::Superadmin)?;
                users::set_password(tx, &user_id, &phc, false)?;
                onboarding::clear(tx)
            })
        })
        .await?;
    state.mark_bootstrapped();
    tracing::info!(user = %body.user_id, "onboarding created the first superadmin");
    let mut resp = (
        StatusCode::CREATED,
        Json(Onboarded {
            user_id: body.user_id.clone(),
            display_name: body.display_name,
            role: Role::Superadmin,
        }),
    )
        .into_response();
    resp.extensions_mut().insert(ActorTag(body.user_id));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_display_name("Alice Example").is_ok());
        for bad in [
            "",
            "   ",
            "a\nb",
            &"x".repeat(129),
            "adm\u{202E}nimda",
            "a\u{2066}b",
        ] {
            assert!(validate_display_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_new_user_id("alice").is_ok());
        for bad in ["me", "_superadmin", "Alice"] {
            assert_eq!(
                validate_new_user_id(bad).unwrap_err().code,
                ErrorCode::InvalidUserId,
                "{bad}"
            );
        }
    }
}
