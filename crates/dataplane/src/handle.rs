//! A running rule and how it ends: listeners close first, connections get
//! a grace period, then whatever is left is aborted.

use crate::error::{ActivationError, ActivationReason};
use crate::limit::LimitCell;
use crate::sni::SniMembership;
use crate::stats::{RuleCounters, RuleStats};
use crate::udp::UdpDrain;
use portunus_domain::rule::{RateLimit, RuleSpec};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::future::FutureExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// The live connections of one rule: tracked so `stop` can wait for them,
/// and abortable together without touching other rules.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    tracker: TaskTracker,
    abort: CancellationToken,
}

impl Connections {
    /// Runs one connection until it ends or the rule aborts it. Whatever
    /// the future owns (sockets, counter guards) is dropped either way.
    ///
    /// A combinator rather than an `async` wrapper: an `async` block keeps
    /// its captured future and the future it awaits side by side, which
    /// doubled the task (to 4 KB) and the bytes copied on every spawn.
    pub(crate) fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        self.tracker
            .spawn(connection.with_cancellation_token_owned(self.abort.clone()));
    }

    /// Whether nothing of the rule runs any more.
    pub(crate) fn finished(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Aborts every connection and returns once all have ended.
    pub(crate) async fn abort_and_wait(&self) {
        self.abort.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// A running rule. Dropping the handle without `stop` aborts it at once.
pub struct RuleHandle {
    id: String,
    /// Unique among the handles of this process, so a report consumer can
    /// tell a restarted rule (counters from zero) from the one before.
    instance: u64,
    spec: RuleSpec,
    counters: Arc<RuleCounters>,
    /// One accept loop per listen port; each owns its listener.
    listeners: Vec<JoinHandle<()>>,
    /// The rule's seat at a shared SNI port, whose socket the port owns.
    sni: Option<SniMembership>,
    connections: Connections,
    /// The rule's own caps, shared by all its connections and ports.
    limits: Arc<LimitCell>,
    /// A UDP rule's ports run as its connections, so they drain like
    /// TCP connections do; this tells them to stop taking new sources.
    udp: Option<UdpDrain>,
}

impl RuleHandle {
    pub(crate) fn new(
        id: &str,
        spec: RuleSpec,
        counters: Arc<RuleCounters>,
        listeners: Vec<JoinHandle<()>>,
        connections: Connections,
    ) -> Self {
        static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        RuleHandle {
            id: id.to_string(),
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            spec,
            counters,
            listeners,
            sni: None,
            connections,
            limits: Arc::default(),
            udp: None,
        }
    }

    pub(crate) fn with_udp_drain(mut self, udp: UdpDrain) -> Self {
        self.udp = Some(udp);
        self
    }

    pub(crate) fn with_limits(mut self, limits: Arc<LimitCell>) -> Self {
        self.limits = limits;
        self
    }

    /// Changes the rule's caps in place: new connections (UDP: new flows)
    /// and new charges obey them, live connections stay open, and a raised
    /// cap mints no free burst. A connection that started uncapped on the
    /// zero-copy path stays unthrottled.
    pub fn set_rate_limit(&mut self, limit: Option<RateLimit>) -> Result<(), ActivationError> {
        let limit = limit.filter(|l| !l.is_empty());
        if let Some(l) = &limit {
            l.validate()
                .map_err(|e| ActivationError::new(ActivationReason::InvalidRule, e.to_string()))?;
        }
        self.limits.set(limit.as_ref(), Instant::now());
        self.spec.rate_limit = limit;
        Ok(())
    }

    /// Attaches the rule's seat at a shared SNI port.
    pub(crate) fn with_sni(mut self, sni: Option<SniMembership>) -> Self {
        self.sni = sni;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which start of the rule this is, unique in the process.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    pub fn stats(&self) -> RuleStats {
        self.counters.snapshot()
    }

    /// Counters that outlive the handle, for tests that watch a stop.
    #[cfg(test)]
    pub(crate) fn counters(&self) -> Arc<RuleCounters> {
        self.counters.clone()
    }

    /// Closes every listener of the rule and returns once its ports are
    /// free to bind again. Live connections keep running. Idempotent.
    ///
    /// A UDP rule's listen sockets carry its flows' replies, so they stay
    /// open while the flows drain, taking no new source; a rule started on
    /// one of those ports later ends that drain and takes the port.
    pub async fn close_listeners(&mut self) {
        if let Some(udp) = &self.udp {
            udp.begin(&self.connections);
        }
        if let Some(sni) = self.sni.take() {
            sni.leave().await;
        }
        for listener in &self.listeners {
            listener.abort();
        }
        // A cancelled task's future, and so its listener, is dropped before
        // its join handle completes: once this loop ends the ports are free.
        for listener in self.listeners.drain(..) {
            if let Err(e) = listener.await {
                if e.is_panic() {
                    tracing::warn!(rule = %self.id, "accept loop panicked");
                }
            }
        }
    }

    /// Closes the listeners now, lets live connections finish for up to
    /// `drain`, then aborts what is left.
    pub async fn stop(mut self, drain: Duration) {
        self.close_listeners().await;
        let tracker = &self.connections.tracker;
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            debug!(rule = %self.id, left = tracker.len(), "drain over, aborting connections");
            self.connections.abort.cancel();
            tracker.wait().await;
        }
        debug!(rule = %self.id, "rule stopped");
    }
}

impl Drop for RuleHandle {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
        self.connections.abort.cancel();
    }
}
