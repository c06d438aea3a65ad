//! Authentication: the one layer every protected `/v1` route passes. It
//! turns a bearer token or a Web session cookie into an `Actor` in the
//! request extensions, holds cookie-authenticated writes to the CSRF rules,
//! and keeps a session with a temporary password to the routes that change
//! it.

use super::error::ApiError;
use crate::audit::ActorTag;
use crate::authz;
use crate::secrets::hash_token;
use crate::state::Shared;
use crate::store::sessions;
use crate::store::users::{self, Actor};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portunus_domain::routes::{access, Access};
use portunus_domain::ErrorCode;

pub const SESSION_COOKIE: &str = "portunus_session";
pub const CSRF_HEADER: &str = "x-portunus-csrf";

/// How the request authenticated; handlers that end or renew a session
/// need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Session { id_hash: String },
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The session cookie's value, from any `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://host[:port]` without a trailing slash, lowercased.
fn normalize_origin(o: &str) -> String {
    o.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The CSRF rules for a cookie-authenticated write: an `Origin` equal to
/// the configured public origin (else naming the `Host` the request was
/// sent to), `X-Portunus-CSRF: 1`, and a JSON body if there is a body.
/// Checked in that order; the first broken rule is the answer.
pub fn check_csrf(headers: &HeaderMap, public_origin: Option<&str>) -> Result<(), ErrorCode> {
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(normalize_origin);
    let same = match (origin, public_origin) {
        (None, _) => false,
        (Some(o), Some(public)) => o == normalize_origin(public),
        (Some(o), None) => {
            let host = headers
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(|h| h.trim().to_ascii_lowercase());
            let authority = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            matches!((authority, host), (Some(a), Some(h)) if a == h)
        }
    };
    if !same {
        return Err(ErrorCode::CsrfOriginMismatch);
    }
    if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(ErrorCode::CsrfHeaderMissing);
    }
    match headers.get(CONTENT_TYPE) {
        Some(ct) => {
            let media = ct
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media != "application/json" {
                return Err(ErrorCode::CsrfContentType);
            }
        }
        None => {
            let empty = headers
                .get(CONTENT_LENGTH)
                .is_none_or(|v| v.to_str().ok() == Some("0"))
                && !headers.contains_key(axum::http::header::TRANSFER_ENCODING);
            if !empty {
                return Err(ErrorCode::CsrfContentType);
            }
        }
    }
    Ok(())
}

fn csrf_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::CsrfOriginMismatch => {
            "cookie-authenticated writes need an Origin header naming this server"
        }
        ErrorCode::CsrfHeaderMissing => "cookie-authenticated writes need X-Portunus-CSRF: 1",
        _ => "cookie-authenticated writes need Content-Type: application/json",
    }
}

/// A refusal, counted by reason and tagged with the actor when known.
fn refuse(state: &Shared, err: ApiError, reason: &str, actor: Option<&Actor>) -> Response {
    state.metrics.auth_failure(reason);
    let mut resp = err.into_response();
    if let Some(a) = actor {
        resp.extensions_mut().insert(ActorTag(a.user_id.clone()));
    }
    resp
}

async fn identify(state: &Shared, headers: &HeaderMap) -> Result<(Actor, Via, bool), Response> {
    if let Some(token) = bearer(headers) {
        let hash = hash_token(token);
        return match state
            .store
            .call(move |c| users::actor_for_token(c, &hash))
            .await
        {
            Ok(Some(actor)) => Ok((actor, Via::Bearer, false)),
            Ok(None) => Err(refuse(
                state,
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "invalid or revoked bearer token",
                ),
                "invalid_token",
                None,
            )),
            Err(e) => Err(ApiError::from(e).into_response()),
        };
    }
    if let Some(cookie) = session_cookie(headers) {
        let id_hash = hash_token(cookie);
        let lookup = id_hash.clone();
        let now = crate::store::now();
        let idle = state.config.sessions.idle_secs;
        return match state
            .store
            .call(move |c| users::actor_for_session(c, &lookup, now, idle))
            .await
        {
            Ok(Some(s)) => {
                if now - s.last_seen_at >= sessions::TOUCH_EVERY_SECS {
                    let touch = id_hash.clone();
                    if let Err(e) = state
                        .store
                        .write(move |tx| sessions::touch(tx, &touch, now))
                        .await
                    {
                        return Err(ApiError::from(e).into_response());
                    }
                }
                Ok((s.actor, Via::Session { id_hash }, s.temporary))
            }
            Ok(None) => Err(refuse(
                state,
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the session has expired or was ended; log in again",
                ),
                "invalid_session",
                None,
            )),
            Err(e) => Err(ApiError::from(e).into_response()),
        };
    }
    Err(refuse(
        state,
        ApiError::new(
            ErrorCode::Unauthenticated,
            "log in or send Authorization: Bearer <token>",
        ),
        "missing_credentials",
        None,
    ))
}

/// The route-level decision, taken before any extractor reads the body or
/// the parameters: a plain user's refusal on a superadmin route never
/// depends on what was sent.
fn route_access(req: &Request, actor: &Actor) -> Result<(), portunus_domain::DomainError> {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_default();
    // axum answers HEAD with the GET handler.
    let method = match *req.method() {
        Method::HEAD => "GET",
        ref m => m.as_str(),
    };
    match access(method, path) {
        Some(Access::Superadmin) => authz::require_superadmin(actor),
        Some(Access::Signed | Access::Public) => Ok(()),
        // Every routed path is in the table (a test holds the router to
        // it); one that is not is refused rather than left open.
        None => authz::require_superadmin(actor),
    }
}

pub async fn authenticate(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    if !state.is_bootstrapped() {
        let has = state.store.call(|c| users::has_active_superadmin(c)).await;
        match has {
            Ok(true) => state.mark_bootstrapped(),
            Ok(false) => {
                return ApiError::new(
                    ErrorCode::BootstrapRequired,
                    "no superadmin exists yet; complete onboarding or run bootstrap-superadmin",
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let (actor, via, temporary) = match identify(&state, req.headers()).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if matches!(via, Via::Session { .. }) {
        if is_write(req.method()) {
            let public = state.config.operator_http_public_origin.as_deref();
            if let Err(code) = check_csrf(req.headers(), public) {
                let err = ApiError::new(code, csrf_message(code));
                return refuse(&state, err, code.as_str(), Some(&actor));
            }
        }
        if temporary
            && !authz::allowed_with_temporary_password(req.method().as_str(), req.uri().path())
        {
            let mut resp = ApiError::new(
                ErrorCode::PasswordChangeRequired,
                "change the temporary password first (POST /v1/users/me/password)",
            )
            .into_response();
            resp.extensions_mut().insert(ActorTag(actor.user_id));
            return resp;
        }
    }
    if let Err(e) = route_access(&req, &actor) {
        let mut resp = ApiError::from(e).into_response();
        resp.extensions_mut().insert(ActorTag(actor.user_id));
        return resp;
    }
    let tag = ActorTag(actor.user_id.clone());
    req.extensions_mut().insert(actor);
    req.extensions_mut().insert(via);
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(tag);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn csrf_table() {
        use ErrorCode::*;
        let good = [
            ("host", "127.0.0.1:7080"),
            ("origin", "http://127.0.0.1:7080"),
            ("x-portunus-csrf", "1"),
            ("content-type", "application/json"),
        ];
        type Case<'a> = (
            &'a [(&'static str, &'a str)],
            Option<&'a str>,
            Result<(), ErrorCode>,
        );
        let cases: &[Case] = &[
            (&good, None, Ok(())),
            (&good[..3], None, Ok(())),
            (
                &[
                    ("host", "127.0.0.1:7080"),
                    ("origin", "http://127.0.0.1:7080"),
                    ("x-portunus-csrf", "1"),
                    ("content-type", "application/json; charset=utf-8"),
                ],
                None,
                Ok(()),
            ),
            (&good[1..], None, Err(CsrfOriginMismatch)),
            (&[good[0], good[2], good[3]], None, Err(CsrfOriginMismatch)),
            (
                &[
                    ("host", "127.0.0.1:7080"),
                    ("origin", "http://evil.example"),
                    ("x-portunus-csrf", "1"),
                ],
                None,
                Err(CsrfOriginMismatch),
            ),
            (
                &[
                    ("host", "127.0.0.1:7080"),
                    ("origin", "null"),
                    ("x-portunus-csrf", "1"),
                ],
                None,
                Err(CsrfOriginMismatch),
            ),
            // A configured public origin wins over the Host header.
            (
                &good,
                Some("https://ops.example.com"),
                Err(CsrfOriginMismatch),
            ),
            (
                &[
                    ("host", "10.0.0.1:7080"),
                    ("origin", "https://OPS.example.com"),
                    ("x-portunus-csrf", "1"),
                ],
                Some("https://ops.example.com/"),
                Ok(()),
            ),
            (&[good[0], good[1], good[3]], None, Err(CsrfHeaderMissing)),
            (
                &[good[0], good[1], ("x-portunus-csrf", "yes"), good[3]],
                None,
                Err(CsrfHeaderMissing),
            ),
            (
                &[good[0], good[1], good[2], ("content-type", "text/plain")],
                None,
                Err(CsrfContentType),
            ),
            (
                &[
                    good[0],
                    good[1],
                    good[2],
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                None,
                Err(CsrfContentType),
            ),
            (
                &[good[0], good[1], good[2], ("content-length", "12")],
                None,
                Err(CsrfContentType),
            ),
            (
                &[good[0], good[1], good[2], ("content-length", "0")],
                None,
                Ok(()),
            ),
        ];
        for (i, (h, public, want)) in cases.iter().enumerate() {
            assert_eq!(check_csrf(&headers(h), *public), *want, "case {i}");
        }
    }

    #[test]
    fn cookie_and_bearer_parsing() {
        let h = headers(&[("cookie", "a=1; portunus_session=abc ; b=2")]);
        assert_eq!(session_cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "portunus_session=xyz")]);
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "portunus_session=")])),
            None
        );
        assert_eq!(
            session_cookie(&headers(&[("cookie", "xportunus_session=1")])),
            None
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer tok")])),
            Some("tok")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer  tok ")])),
            Some("tok")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic x")])), None);
    }
}
