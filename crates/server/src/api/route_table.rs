//! Holds the router to `ROUTES`: every listed route is routed with its
//! method and behind authentication unless public, and every path the
//! router registers is listed.

use super::router;
use crate::state::Shared;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use portunus_domain::routes::{Access, ROUTES};
use std::collections::BTreeSet;
use tower::ServiceExt;

fn concrete(path: &str) -> String {
    path.replace("{id}", "x").replace("{cid}", "y")
}

async fn call(state: &Shared, method: &str, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(concrete(path))
        .body(Body::empty())
        .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

fn fresh_state() -> (tempfile::TempDir, crate::store::Store, Shared) {
    let (dir, state) = crate::state::test_state();
    (dir, state.store.clone(), state)
}

#[tokio::test]
async fn every_listed_route_is_routed_and_guarded() {
    let (_d, store, state) = fresh_state();
    for (method, path, access) in ROUTES {
        let (status, code) = call(&state, method, path).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path} is not routed"
        );
        if *access != Access::Public {
            assert_eq!(code, "bootstrap_required", "{method} {path}");
        }
    }
    store
        .blocking(|c| crate::bootstrap::bootstrap_superadmin(c, "Admin"))
        .unwrap();
    for (method, path, access) in ROUTES.iter().filter(|r| r.2 != Access::Public) {
        let (status, code) = call(&state, method, path).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{method} {path} ({access:?})"
        );
    }
}

#[test]
fn every_registered_path_is_listed() {
    let source = include_str!("mod.rs");
    let start = source.find("pub fn router(").unwrap();
    let body = &source[start..start + source[start..].find("\n}\n").unwrap()];
    let registered: BTreeSet<&str> = body
        .match_indices("\"/v1/")
        .map(|(i, _)| {
            let rest = &body[i + 1..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    let listed: BTreeSet<&str> = ROUTES.iter().map(|r| r.1).collect();
    assert_eq!(registered, listed);
}

/// Failures the router or an extractor answers before a handler runs use
/// the same envelope and the code table, like every other failure.
#[tokio::test]
async fn router_and_extractor_failures_answer_the_envelope() {
    let (_d, store, state) = fresh_state();
    let token = store
        .blocking(|c| crate::bootstrap::bootstrap_superadmin(c, "Admin"))
        .unwrap();
    let big = format!(
        "{{\"pad\":\"{}\"}}",
        "x".repeat(super::extract::MAX_BODY_BYTES)
    );
    // Method, URI, content type and body, then the status and code.
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: &[Case] = &[
        ("DELETE", "/v1/rules", None, 405, "method_not_allowed"),
        ("PUT", "/v1/auth/login", None, 405, "method_not_allowed"),
        ("GET", "/v1/nope", None, 404, "not_found"),
        ("GET", "/v1/rules/%FF", None, 400, "invalid_request"),
        ("GET", "/v1/audit?limit=many", None, 400, "invalid_request"),
        (
            "GET",
            "/v1/rules/x/stats?per_port=maybe",
            None,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/rules",
            Some(("application/json", &big)),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/v1/auth/login",
            Some(("application/json", &big)),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/v1/clients/x/enrollment",
            Some(("application/json", &big)),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/v1/clients/x/enrollment",
            Some(("application/json", "{")),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/rules",
            Some(("text/plain", "{}")),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/users",
            Some(("application/json", "[]")),
            400,
            "invalid_request",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let mut req = Request::builder()
            .method(*method)
            .uri(*uri)
            .header("authorization", format!("Bearer {token}"));
        if let Some((ct, _)) = body {
            req = req.header("content-type", *ct);
        }
        let body = body.map_or(Body::empty(), |(_, b)| Body::from(b.to_string()));
        let resp = router(state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let got = resp.status().as_u16();
        let allow = resp.headers().get("allow").cloned();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {uri}: not JSON: {bytes:?}"));
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {uri}: {v}"
        );
        if *status == 405 {
            let allow = allow.expect("a 405 names the methods it takes");
            assert!(allow.to_str().unwrap().contains("POST"), "{allow:?}");
        }
    }
}

/// A plain user is refused every superadmin route with the same 403
/// whatever the request carries: a malformed body, an oversized one or
/// garbage parameters never turn the refusal into a 400 or a 404.
#[tokio::test]
async fn superadmin_routes_refuse_a_plain_user_before_reading_the_request() {
    let (_d, store, state) = fresh_state();
    store
        .blocking(|c| crate::bootstrap::bootstrap_superadmin(c, "Admin"))
        .unwrap();
    let token = "plain-user-token";
    store
        .blocking(|c| {
            crate::store::users::create(c, "alice", "Alice", crate::store::users::Role::User)?;
            crate::store::users::issue_token(c, "alice", "t", &crate::secrets::hash_token(token))
                .map(drop)
        })
        .unwrap();
    let big = "x".repeat(super::extract::MAX_BODY_BYTES + 1);
    for (method, path, access) in ROUTES {
        let uri = concrete(path).replace("{owner}", "%FF");
        for body in ["{", "[]", big.as_str()] {
            let req = Request::builder()
                .method(*method)
                .uri(&uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let resp = router(state.clone()).oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let code = v["error"]["code"].as_str().unwrap_or_default().to_string();
            let short = &body[..body.len().min(8)];
            match access {
                Access::Superadmin => assert_eq!(
                    (status, code.as_str()),
                    (StatusCode::FORBIDDEN, "forbidden"),
                    "{method} {path} with {short:?}"
                ),
                // Whatever they answer, it is the envelope.
                _ => assert!(
                    status.is_success() || !code.is_empty(),
                    "{method} {path} with {short:?}: {status}"
                ),
            }
        }
    }
}
