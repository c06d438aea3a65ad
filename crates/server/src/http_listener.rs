//! The operator HTTP listener's connection handling. `axum::serve` has no
//! deadline for a request's headers and no connection cap, so a few slow
//! or idle peers could hold every descriptor: here each connection gets a
//! header-read deadline and their number is capped; over the cap a new
//! connection is closed at accept. Request heads are capped below the
//! parser's own limits so an oversized one still gets the JSON envelope.

use crate::api::error::ApiError;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use portunus_domain::ErrorCode;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The longest path and query answered; longer is 414 `uri_too_long`.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Header limits; over either is 431 `headers_too_large`.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The parser's own ceilings, set well above ours so that ours answer
/// first: past these hyper closes with a bare status.
const PARSER_MAX_HEADERS: usize = 4 * MAX_HEADERS;
const PARSER_MAX_BUF: usize = 1024 * 1024;

/// Refuses an oversized request head with the envelope, before routing.
async fn head_limits(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            ErrorCode::UriTooLong,
            format!("path and query: longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("headers: more than {MAX_HEADERS} or {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers.
    pub header_read: Duration,
    /// Connections open at once.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            connections: 512,
        }
    }
}

/// Tells handlers the peer's address, as `into_make_service_with_connect_info`
/// does under `axum::serve`.
fn with_peer<B>(peer: SocketAddr) -> impl Fn(http::Request<B>) -> http::Request<B> + Clone {
    move |mut req| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// requests finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::from_fn(head_limits));
    let places = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_headers(PARSER_MAX_HEADERS)
        .max_buf_size(PARSER_MAX_BUF);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or memory: wait rather than spin.
                    tracing::debug!(error = %e, "operator HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "operator HTTP connection cap reached; closed");
            continue;
        };
        let app = app.clone().map_request(with_peer(peer));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(app))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "operator HTTP connection ended");
            }
            drop(place);
        });
    }
    graceful.shutdown().await;
}
