//! Holds the router to `ROUTES`: every listed route is routed with its
//! method and behind authentication unless public, and every path the
//! router registers is listed.

use super::router;
use crate::state::Shared;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use portunus_domain::routes::ROUTES;
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

#[tokio::test]
async fn every_listed_route_is_routed_and_guarded() {
    let (_d, state) = crate::state::test_state();
    let store = state.store.clone();
    for (method, path, public) in ROUTES {
        let (status, code) = call(&state, method, path).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path} is not routed"
        );
        if !public {
            assert_eq!(code, "bootstrap_required", "{method} {path}");
        }
    }
    store
        .blocking(|c| crate::bootstrap::bootstrap_superadmin(c, "Admin"))
        .unwrap();
    for (method, path, public) in ROUTES.iter().filter(|r| !r.2) {
        let (status, code) = call(&state, method, path).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{method} {path} (public: {public})"
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
