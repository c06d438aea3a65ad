//! The audit trail of the operator API: one layer on the router records
//! every `/v1` write, every denial and every authentication event (time,
//! actor, method, path, allow/deny, reason) and hands it to a bounded
//! queue; successful reads are only counted in metrics, because a console
//! that polls would otherwise bury the writes. One writer task stores
//! queued rows in batches, one transaction per batch. When the queue is full the row is
//! dropped and counted rather than slowing the request down.
//!
//! **Invariant:** a row holds no secret. The path is recorded without its
//! query string, bodies and headers are never read, and the reason is an
//! error code from the code table.

use crate::state::Shared;
use crate::store::audit::{NewEntry, Outcome};
use crate::store::Store;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use portunus_domain::ErrorCode;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

/// Rows that may wait for the writer before new ones are dropped.
pub const QUEUE: usize = 4096;
/// Most rows the writer stores in one transaction.
const BATCH: usize = 256;

/// Who made a request, as handlers and the authentication layer report it
/// in the response extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorTag(pub String);

enum Msg {
    Entry(NewEntry),
    Flush(oneshot::Sender<()>),
}

pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
    dropped: Counter,
}

impl AuditSink {
    /// Starts the writer task on the current runtime. Without a runtime
    /// (some unit tests) rows queue up and are dropped once it is full.
    pub fn start(store: Store, dropped: Counter) -> AuditSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(writer(store, rx, dropped.clone()));
        }
        AuditSink { tx, dropped }
    }

    /// Queues a row without waiting.
    pub fn record(&self, entry: NewEntry) {
        if self.tx.try_send(Msg::Entry(entry)).is_err() {
            self.dropped.inc();
        }
    }

    /// Waits until every row queued before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Msg>, dropped: Counter) {
    let mut msgs = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut msgs, BATCH).await > 0 {
        let mut entries = Vec::with_capacity(msgs.len());
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Entry(e) => entries.push(e),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        if !entries.is_empty() {
            let n = entries.len() as u64;
            let stored = store
                .write(move |tx| crate::store::audit::insert_batch(tx, &entries))
                .await;
            if let Err(e) = stored {
                dropped.inc_by(n);
                tracing::warn!(error = %e, rows = n, "cannot store audit rows");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Allow or deny, and why: the error code a failure carries, `ok` for a
/// success, or the bare status for a failure the code table did not make
/// (such as the router's 405).
pub fn classify(status: StatusCode, code: Option<ErrorCode>) -> (Outcome, String) {
    match code {
        Some(c) => (Outcome::Deny, c.as_str().to_string()),
        None if status.is_client_error() || status.is_server_error() => {
            (Outcome::Deny, format!("http_{}", status.as_u16()))
        }
        None => (Outcome::Allow, "ok".to_string()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether an answered request earns an audit row: everything but a
/// successful read. Authentication events are writes (login, logout,
/// onboarding) or denials, so they are always recorded.
pub fn recorded(method: &str, outcome: Outcome) -> bool {
    outcome == Outcome::Deny || !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The router layer: records each `/v1` request once it is answered.
pub async fn layer(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != "/v1" && !path.starts_with("/v1/") {
        return next.run(req).await;
    }
    let at_ms = now_ms();
    let method = req.method().as_str().to_string();
    let path = path.to_string();
    let resp = next.run(req).await;
    let (outcome, reason) = classify(resp.status(), resp.extensions().get::<ErrorCode>().copied());
    state.metrics.operator_request(outcome.as_str(), &reason);
    if !recorded(&method, outcome) {
        return resp;
    }
    state.audit.record(NewEntry {
        at_ms,
        actor: resp.extensions().get::<ActorTag>().map(|a| a.0.clone()),
        method,
        path,
        outcome,
        reason,
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn classification() {
        let cases = [
            (StatusCode::OK, None, Outcome::Allow, "ok"),
            (StatusCode::CREATED, None, Outcome::Allow, "ok"),
            (StatusCode::NO_CONTENT, None, Outcome::Allow, "ok"),
            (
                StatusCode::FORBIDDEN,
                Some(ErrorCode::NotOwner),
                Outcome::Deny,
                "not_owner",
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorCode::BootstrapRequired),
                Outcome::Deny,
                "bootstrap_required",
            ),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                Outcome::Deny,
                "http_405",
            ),
        ];
        for (status, code, outcome, reason) in cases {
            assert_eq!(
                classify(status, code),
                (outcome, reason.to_string()),
                "{status}"
            );
        }
    }

    #[test]
    fn reads_are_recorded_only_when_denied() {
        let cases = [
            ("GET", Outcome::Allow, false),
            ("HEAD", Outcome::Allow, false),
            ("GET", Outcome::Deny, true),
            ("POST", Outcome::Allow, true),
            ("PUT", Outcome::Allow, true),
            ("PATCH", Outcome::Deny, true),
            ("DELETE", Outcome::Allow, true),
        ];
        for (method, outcome, want) in cases {
            assert_eq!(recorded(method, outcome), want, "{method} {outcome:?}");
        }
    }

    #[tokio::test]
    async fn queued_rows_are_stored_and_overflow_is_counted() {
        let (_d, store) = test_store();
        let dropped = Counter::default();
        let sink = AuditSink::start(store.clone(), dropped.clone());
        for i in 0..10 {
            sink.record(NewEntry {
                at_ms: i,
                actor: None,
                method: "GET".into(),
                path: "/v1/x".into(),
                outcome: Outcome::Allow,
                reason: "ok".into(),
            });
        }
        sink.flush().await;
        let q = crate::store::audit::Query {
            limit: 100,
            ..Default::default()
        };
        let (rows, _) = store
            .call(move |c| crate::store::audit::query(c, &q))
            .await
            .unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(dropped.get(), 0);

        // Without a writer the queue fills and the rest is counted.
        let (tx, _rx) = mpsc::channel(2);
        let stuck = AuditSink {
            tx,
            dropped: dropped.clone(),
        };
        for _ in 0..5 {
            stuck.record(NewEntry {
                at_ms: 0,
                actor: None,
                method: "GET".into(),
                path: "/v1/x".into(),
                outcome: Outcome::Allow,
                reason: "ok".into(),
            });
        }
        assert_eq!(dropped.get(), 3);
    }
}
