//! The engine: settings shared by all rules, and rule activation.

use crate::capability::{self, missing_capability};
use crate::error::{ActivationError, ActivationReason};
use crate::handle::{Connections, RuleHandle};
use crate::resolve::Resolver;
use crate::stats::RuleCounters;
use crate::target::Dialer;
use crate::tcp;
use portunus_domain::rule::{Limits, Protocol, RuleSpec};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Engine-wide settings, pushed by the server in its welcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub udp_flow_idle: Duration,
    pub udp_max_flows_per_rule: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            udp_flow_idle: Duration::from_secs(60),
            udp_max_flows_per_rule: 1024,
        }
    }
}

/// How TCP connections move their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// Zero-copy `splice(2)` where the platform and the rule allow it,
    /// the userspace copy otherwise.
    #[default]
    Auto,
    /// Always the userspace copy; for benchmarks and diagnosis.
    Userspace,
}

/// Shared state of all rules on one edge.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    copy_mode: CopyMode,
}

struct Shared {
    config: RwLock<EngineConfig>,
    resolver: Resolver,
}

/// The engine enforces no range cap of its own: the server already checked
/// the rule against its configured one.
const ENGINE_LIMITS: Limits = Limits {
    range_rule_max_ports: 65535,
};

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            shared: Arc::new(Shared {
                config: RwLock::new(config),
                resolver: Resolver::default(),
            }),
            copy_mode: CopyMode::Auto,
        }
    }

    /// Chooses how rules started from this engine value copy TCP bytes.
    pub fn with_copy_mode(mut self, mode: CopyMode) -> Engine {
        self.copy_mode = mode;
        self
    }

    /// The settings in force now.
    pub fn config(&self) -> EngineConfig {
        *self
            .shared
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies new engine-wide settings to rules started afterwards and to
    /// new flows of running rules.
    pub fn set_config(&self, config: EngineConfig) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// Binds every listen port of the rule atomically (all or none) and
    /// starts forwarding. Must be called inside a Tokio runtime.
    pub async fn start_rule(
        &self,
        id: &str,
        spec: RuleSpec,
    ) -> Result<RuleHandle, ActivationError> {
        spec.validate(&ENGINE_LIMITS)
            .map_err(|e| ActivationError::new(ActivationReason::InvalidRule, e.to_string()))?;
        if let Some(feature) = missing_capability(&spec) {
            return Err(unsupported(feature));
        }
        let counters = Arc::new(RuleCounters::new(&spec));
        let connections = Connections::default();
        let listeners = match spec.protocol {
            Protocol::Tcp => tcp::start(
                id,
                &spec,
                tcp::TcpRule {
                    counters: counters.clone(),
                    dialer: Dialer::new(&spec, self.shared.resolver.clone()),
                    splice: capability::may_splice(
                        capability::SPLICE_BUILT,
                        self.copy_mode,
                        spec.rate_limit.as_ref(),
                    ),
                    connections: connections.clone(),
                },
            )?,
            // `missing_capability` refuses UDP before this point; the UDP
            // engine starts here once it exists.
            Protocol::Udp => return Err(unsupported("udp forwarding")),
        };
        tracing::debug!(rule = id, ports = spec.width(), "rule started");
        Ok(RuleHandle::new(id, spec, counters, listeners, connections))
    }
}

fn unsupported(feature: &str) -> ActivationError {
    ActivationError::new(
        ActivationReason::Unsupported,
        format!("{feature} is not supported by this client"),
    )
}
