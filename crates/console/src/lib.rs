//! The operator console: a single-page Web UI whose files are compiled into
//! the binary and served at `/` of the operator HTTP listener.
//!
//! **Architecture invariant: the console has no private API.** This crate
//! depends on nothing of the server; the pages it serves read and write
//! only through the public `/v1` API, with the same session cookie, CSRF
//! header and error codes as any other client.

#![forbid(unsafe_code)]

mod assets;
mod headers;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use assets::{Asset, ASSETS};

/// The console's routes: the HTML shell at `/` and the assets under
/// `/assets/<content hash>/`, every answer with the security headers.
pub fn router() -> Router {
    Router::new()
        .route("/", get(shell))
        .route("/index.html", get(shell))
        .route("/assets/{version}/{*path}", get(asset))
        .layer(axum::middleware::map_response(headers::secure))
}

async fn shell() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        assets::shell(),
    )
        .into_response()
}

async fn asset(Path((version, path)): Path<(String, String)>) -> Response {
    match assets::find(&version, &path) {
        Some(a) => (
            [
                (CONTENT_TYPE, a.mime),
                (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (CACHE_CONTROL, "no-store"),
            ],
            "no such console asset\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
