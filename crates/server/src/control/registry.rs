//! Live control streams, one per client, and the waiters for rule outcomes.

use portunus_proto::pb;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// A message queued for a client's stream. Both sides are boxed because
/// a channel allocates its first block of slots when it is created: with
/// a rule message and a `Status` inline, every connected client's channel
/// held kilobytes of empty slots.
type Queued = Result<Box<pb::ServerMessage>, Box<Status>>;

type Outbound = mpsc::Sender<Queued>;

/// The server side of a client's stream, as tonic sends it.
pub struct SessionStream {
    queued: mpsc::Receiver<Queued>,
}

impl tokio_stream::Stream for SessionStream {
    type Item = Result<pb::ServerMessage, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.queued
            .poll_recv(cx)
            .map(|next| next.map(|q| q.map(|m| *m).map_err(|s| *s)))
    }
}

/// What a client reported for one pushed or removed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Activated,
    Failed { reason: String, detail: String },
    Removed,
}

struct Session {
    generation: u64,
    tx: Outbound,
    remote: Option<SocketAddr>,
    since: i64,
    /// Messages queued after the opening ones; the session's view of its
    /// rules is current while this has not moved.
    sent: Arc<AtomicU64>,
    /// Dropping this ends the session's inbound task.
    _stop: oneshot::Sender<()>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub remote: Option<SocketAddr>,
    pub since: i64,
}

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Session>>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    next_generation: AtomicU64,
    /// Set by `kick_all`, under the sessions lock: a stream that opens
    /// during shutdown ends at once instead of holding the drain up.
    closing: std::sync::atomic::AtomicBool,
}

pub struct Registration {
    pub generation: u64,
    pub sent: Arc<AtomicU64>,
    pub outbound: SessionStream,
    pub stop: oneshot::Receiver<()>,
}

impl Registry {
    /// Registers a new stream for `client_id`, replacing (and ending) any
    /// older one: a client has at most one live stream.
    ///
    /// `opening` (welcome, envelopes, full rule set) is queued before the
    /// session becomes visible, so no push can overtake it, and the channel
    /// is sized to hold it whatever its length.
    pub fn register(
        &self,
        client_id: &str,
        remote: Option<SocketAddr>,
        now: i64,
        opening: Vec<pb::ServerMessage>,
    ) -> Registration {
        let (tx, outbound) = mpsc::channel(256 + opening.len());
        for msg in opening {
            // Capacity covers every opening message, so this cannot fail.
            let _ = tx.try_send(Ok(Box::new(msg)));
        }
        let (stop_tx, stop) = oneshot::channel();
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let sent = Arc::new(AtomicU64::new(0));
        let mut sessions = self.lock_sessions();
        if self.closing.load(Ordering::Relaxed) {
            // Not registered: `stop_tx` is dropped, so the inbound task ends too.
            let _ = tx.try_send(Err(Box::new(Status::unavailable("server shutting down"))));
        } else {
            let old = sessions.insert(
                client_id.to_string(),
                Session {
                    generation,
                    tx: tx.clone(),
                    remote,
                    since: now,
                    sent: sent.clone(),
                    _stop: stop_tx,
                },
            );
            if let Some(old) = old {
                let _ = old.tx.try_send(Err(Box::new(Status::aborted(
                    "replaced by a newer connection of this client",
                ))));
            }
        }
        drop(sessions);
        Registration {
            generation,
            sent,
            outbound: SessionStream { queued: outbound },
            stop,
        }
    }

    /// Forgets the stream if it is still the current one. Returns whether
    /// it was.
    pub fn unregister(&self, client_id: &str, generation: u64) -> bool {
        let mut sessions = self.lock_sessions();
        if sessions
            .get(client_id)
            .is_some_and(|s| s.generation == generation)
        {
            sessions.remove(client_id);
            true
        } else {
            false
        }
    }

    /// Ends a client's stream now with `status` (revocation, shutdown).
    pub fn kick(&self, client_id: &str, status: Status) -> bool {
        let session = self.lock_sessions().remove(client_id);
        match session {
            Some(s) => {
                let _ = s.tx.try_send(Err(Box::new(status)));
                true
            }
            None => false,
        }
    }

    /// Ends every stream with `status`, and every stream opened from now
    /// on (shutdown).
    pub fn kick_all(&self, status: Status) {
        let sessions: Vec<Session> = {
            let mut live = self.lock_sessions();
            self.closing.store(true, Ordering::Relaxed);
            live.drain().map(|(_, s)| s).collect()
        };
        for s in sessions {
            let _ = s.tx.try_send(Err(Box::new(status.clone())));
        }
    }

    pub fn info(&self, client_id: &str) -> Option<SessionInfo> {
        self.lock_sessions().get(client_id).map(|s| SessionInfo {
            remote: s.remote,
            since: s.since,
        })
    }

    pub fn connected_count(&self) -> usize {
        self.lock_sessions().len()
    }

    /// Queues a message for a client. False when it is not connected.
    pub async fn send(&self, client_id: &str, msg: pb::ServerMessage) -> bool {
        let session = self
            .lock_sessions()
            .get(client_id)
            .map(|s| (s.tx.clone(), s.sent.clone()));
        match session {
            Some((tx, sent)) => {
                sent.fetch_add(1, Ordering::Release);
                tx.send(Ok(Box::new(msg))).await.is_ok()
            }
            None => false,
        }
    }

    /// Arms a waiter for the next outcome of `rule_id`. Arm it before the
    /// push goes out, so a fast answer is not lost.
    pub fn expect_outcome(&self, rule_id: &str) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.lock_waiters().insert(rule_id.to_string(), tx);
        rx
    }

    pub fn forget_outcome(&self, rule_id: &str) {
        self.lock_waiters().remove(rule_id);
    }

    pub fn deliver_outcome(&self, rule_id: &str, outcome: Outcome) {
        if let Some(tx) = self.lock_waiters().remove(rule_id) {
            let _ = tx.send(outcome);
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Outcome>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[test]
    fn a_queue_slot_is_two_pointers() {
        assert_eq!(std::mem::size_of::<Queued>(), 16);
    }

    #[tokio::test]
    async fn newer_stream_replaces_older() {
        let reg = Registry::default();
        let mut a = reg.register("c1", None, 1, vec![]);
        let b = reg.register("c1", None, 2, vec![pb::ServerMessage::default()]);
        assert_eq!(reg.connected_count(), 1);
        assert!(
            matches!(a.outbound.next().await, Some(Err(s)) if s.code() == tonic::Code::Aborted)
        );
        assert!(
            a.stop.await.is_err(),
            "old session's inbound task is told to stop"
        );
        assert!(
            !reg.unregister("c1", a.generation),
            "stale generation is ignored"
        );
        assert_eq!(reg.info("c1").map(|i| i.since), Some(2));
        assert!(reg.unregister("c1", b.generation));
        assert!(!reg.send("c1", pb::ServerMessage::default()).await);
    }

    #[tokio::test]
    async fn a_stream_opened_during_shutdown_ends_at_once() {
        let reg = Registry::default();
        let mut live = reg.register("c1", None, 1, vec![]);
        reg.kick_all(Status::unavailable("server shutting down"));
        assert!(matches!(live.outbound.next().await, Some(Err(_))));
        let mut late = reg.register("c2", None, 2, vec![pb::ServerMessage::default()]);
        assert_eq!(reg.connected_count(), 0);
        assert!(matches!(late.outbound.next().await, Some(Ok(_))));
        assert!(
            matches!(late.outbound.next().await, Some(Err(s)) if s.code() == tonic::Code::Unavailable)
        );
        assert!(late.outbound.next().await.is_none());
    }

    #[tokio::test]
    async fn outcomes_reach_their_waiter() {
        let reg = Registry::default();
        let rx = reg.expect_outcome("r1");
        reg.deliver_outcome("r2", Outcome::Activated);
        reg.deliver_outcome("r1", Outcome::Removed);
        assert_eq!(rx.await.unwrap(), Outcome::Removed);
    }
}
