//! State shared by the operator API and the control-stream service.

use crate::advertised::EndpointResolver;
use crate::config::Config;
use crate::control::registry::Registry;
use crate::metrics::Metrics;
use crate::stats::StatsBoard;
use crate::store::Store;
use portunus_domain::rule::Limits;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct ServerState {
    pub store: Store,
    pub registry: Registry,
    pub stats: StatsBoard,
    /// Reports waiting to be folded into the traffic history.
    pub traffic: crate::traffic::Recorder,
    /// The quota gates each connected client was last told.
    pub quota_gates: crate::quota::Gates,
    pub metrics: Metrics,
    pub config: Config,
    /// SHA-256 of the served leaf certificate, as clients pin it.
    pub tls_pin: String,
    pub endpoints: EndpointResolver,
    /// Queue of audit rows towards their writer task.
    pub audit: crate::audit::AuditSink,
    /// Failure counts of the password-guessing routes.
    pub throttle: crate::throttle::Throttle,
    /// Latches once a superadmin exists; the last one cannot be removed.
    bootstrapped: AtomicBool,
}

pub type Shared = Arc<ServerState>;

impl ServerState {
    pub fn new(
        store: Store,
        config: Config,
        tls_pin: String,
        endpoints: EndpointResolver,
        bootstrapped: bool,
    ) -> ServerState {
        let metrics = Metrics::new();
        let audit = crate::audit::AuditSink::start(store.clone(), metrics.audit_dropped.clone());
        ServerState {
            store,
            registry: Registry::default(),
            stats: StatsBoard::default(),
            traffic: Default::default(),
            quota_gates: Default::default(),
            metrics,
            audit,
            throttle: Default::default(),
            config,
            tls_pin,
            endpoints,
            bootstrapped: AtomicBool::new(bootstrapped),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            range_rule_max_ports: self.config.range_rule_max_ports,
        }
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped.load(Ordering::Acquire)
    }

    pub fn mark_bootstrapped(&self) {
        self.bootstrapped.store(true, Ordering::Release);
    }
}

/// Server state over a fresh store with the default configuration, for
/// tests that drive the API or the control service in process.
#[cfg(test)]
pub fn test_state() -> (tempfile::TempDir, Shared) {
    let (dir, store) = crate::store::test_store();
    let config = crate::config::FileConfig::default()
        .resolve(std::path::Path::new("/nonexistent"))
        .expect("default config");
    let resolver =
        crate::advertised::EndpointResolver::new(None, crate::san::SanSet::default(), 7443);
    let state = ServerState::new(store, config, "pin".into(), resolver, false);
    (dir, Arc::new(state))
}
