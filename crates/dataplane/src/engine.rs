//! The engine: settings shared by all rules, and rule activation.

use crate::capability;
use crate::error::{ActivationError, ActivationReason};
use crate::gate::Gate;
use crate::handle::{Connections, RuleHandle};
use crate::limit::{LimitCell, RuleLimits};
use crate::resolve::Resolver;
use crate::sni::SniPorts;
use crate::stats::RuleCounters;
use crate::target::Dialer;
use crate::tcp;
use crate::udp::{self, DrainingPorts, FlowBudget};
use portunus_domain::rule::{Limits, Protocol, RateLimit, RuleSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

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
    sni_ports: SniPorts,
    /// Per-owner envelopes on this edge, read by every connection of the
    /// owner's rules. An owner keeps its cell once seen, so a deleted and
    /// re-set envelope still counts the connections that are open.
    owners: Mutex<HashMap<String, Arc<LimitCell>>>,
    /// Per-owner quota gates, kept once seen like the envelopes, so a
    /// gate the server closes before the owner's rules start holds them.
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    /// Caps the UDP flows (each holds a socket) of all rules together.
    flow_budget: FlowBudget,
    /// Stopped UDP rules whose flows still answer from their ports.
    draining_udp: DrainingPorts,
}

/// The engine enforces no range cap of its own: the server already checked
/// the rule against its configured one.
const ENGINE_LIMITS: Limits = Limits {
    range_rule_max_ports: 65535,
};

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine::with_resolver(config, Resolver::default())
    }

    /// An engine whose DNS answers come from `resolver`: tests give names
    /// that no real resolver knows.
    pub(crate) fn with_resolver(config: EngineConfig, resolver: Resolver) -> Engine {
        Engine {
            shared: Arc::new(Shared {
                config: RwLock::new(config),
                resolver,
                sni_ports: SniPorts::default(),
                owners: Mutex::default(),
                gates: Mutex::default(),
                flow_budget: FlowBudget::unlimited(),
                draining_udp: DrainingPorts::default(),
            }),
            copy_mode: CopyMode::Auto,
        }
    }

    /// An engine whose UDP flows, all rules together, stay within `budget`.
    /// Call before any rule starts.
    pub fn with_flow_budget(self, budget: FlowBudget) -> Engine {
        let shared = Arc::try_unwrap(self.shared)
            .unwrap_or_else(|_| panic!("with_flow_budget on an engine already shared"));
        Engine {
            shared: Arc::new(Shared {
                flow_budget: budget,
                ..shared
            }),
            copy_mode: self.copy_mode,
        }
    }

    pub fn flow_budget(&self) -> FlowBudget {
        self.shared.flow_budget.clone()
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

    /// Sets (`Some`) or lifts (`None`) the envelope that caps the sum of
    /// `owner`'s rules on this edge. Running rules obey it from their next
    /// connection and their next charge; what is banked carries over.
    pub fn set_owner_limit(&self, owner: &str, limit: Option<RateLimit>) {
        self.owner_cell(owner).set(limit.as_ref(), Instant::now());
    }

    /// Closes the quota gates of `exhausted` and opens every other one:
    /// the server sends the complete list, so an owner it no longer names
    /// forwards again. Closing ends the owner's open connections and
    /// flows; the rules stay bound.
    pub fn set_exhausted_owners(&self, exhausted: &[String]) {
        let mut gates = self
            .shared
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for owner in exhausted {
            gates.entry(owner.clone()).or_default();
        }
        for (owner, gate) in gates.iter() {
            let closed = exhausted.contains(owner);
            if gate.set_closed(closed) {
                tracing::info!(owner = %owner, closed, "owner quota gate");
            }
        }
    }

    /// Whether `owner`'s quota gate is closed on this edge.
    pub fn owner_exhausted(&self, owner: &str) -> bool {
        self.owner_gate(owner).is_closed()
    }

    fn owner_gate(&self, owner: &str) -> Arc<Gate> {
        let mut gates = self
            .shared
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        gates.entry(owner.to_string()).or_default().clone()
    }

    fn owner_cell(&self, owner: &str) -> Arc<LimitCell> {
        let mut owners = self
            .shared
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        owners.entry(owner.to_string()).or_default().clone()
    }

    /// Starts a rule under no owner envelope; see `start_owned_rule`.
    pub async fn start_rule(
        &self,
        id: &str,
        spec: RuleSpec,
    ) -> Result<RuleHandle, ActivationError> {
        self.start_with(id, Arc::default(), Arc::default(), spec)
            .await
    }

    /// Binds every listen port of the rule atomically (all or none) and
    /// starts forwarding under `owner`'s envelope and the rule's own caps.
    /// Must be called inside a Tokio runtime.
    pub async fn start_owned_rule(
        &self,
        id: &str,
        owner: &str,
        spec: RuleSpec,
    ) -> Result<RuleHandle, ActivationError> {
        self.start_with(id, self.owner_cell(owner), self.owner_gate(owner), spec)
            .await
    }

    async fn start_with(
        &self,
        id: &str,
        owner: Arc<LimitCell>,
        gate: Arc<Gate>,
        spec: RuleSpec,
    ) -> Result<RuleHandle, ActivationError> {
        spec.validate(&ENGINE_LIMITS)
            .map_err(|e| ActivationError::new(ActivationReason::InvalidRule, e.to_string()))?;
        let limits = RuleLimits {
            owner,
            rule: Arc::new(LimitCell::new(spec.rate_limit.as_ref(), Instant::now())),
        };
        let filter = spec
            .source_filter()
            .map_err(|e| ActivationError::new(ActivationReason::InvalidRule, e.to_string()))?;
        let counters = Arc::new(RuleCounters::new(&spec));
        let connections = Connections::default();
        let mut sni = None;
        let mut udp_drain = None;
        let listeners = match spec.protocol {
            Protocol::Tcp => {
                let rule = tcp::TcpRule {
                    counters: counters.clone(),
                    dialer: Dialer::new(&spec, self.shared.resolver.clone()),
                    splice: capability::may_splice(
                        capability::SPLICE_BUILT,
                        self.copy_mode,
                        spec.rate_limit.as_ref(),
                    ),
                    limits: limits.clone(),
                    connections: connections.clone(),
                    filter,
                    gate,
                };
                let started = tcp::start(id, &spec, rule, &self.shared.sni_ports)?;
                sni = started.sni;
                started.tasks
            }
            Protocol::Udp => {
                let registry = self.shared.draining_udp.clone();
                registry
                    .take_over(&(spec.listen_start()..=spec.listen_end()))
                    .await;
                let rule = udp::UdpRule::new(
                    &spec,
                    counters.clone(),
                    self.shared.resolver.clone(),
                    limits.clone(),
                    self.clone(),
                    filter,
                    gate,
                );
                udp_drain = Some(udp::start(id, &spec, rule, &connections, registry)?);
                Vec::new()
            }
        };
        tracing::debug!(rule = id, ports = spec.width(), "rule started");
        let handle = RuleHandle::new(id, spec, counters, listeners, connections)
            .with_sni(sni)
            .with_limits(limits.rule);
        Ok(match udp_drain {
            Some(drain) => handle.with_udp_drain(drain),
            None => handle,
        })
    }
}
