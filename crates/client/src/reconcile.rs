//! The rules this edge runs, kept in step with what the server wants.
//!
//! The reconciler outlives control sessions: losing the stream changes
//! nothing here, so every rule keeps forwarding until the server says
//! otherwise (fail-static).

mod plan;
#[cfg(test)]
mod tests;

pub use plan::plan;

use portunus_dataplane::{ActivationError, Engine, RuleHandle, RuleStats};
use portunus_domain::rule::RuleSpec;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Activated,
    Failed(ActivationError),
    Removed,
}

/// A rule the server wants here, with the owner whose envelope it obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub owner: String,
    pub spec: RuleSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule_id: String,
    pub outcome: Outcome,
}

pub struct Reconciler {
    engine: Engine,
    running: BTreeMap<String, RuleHandle>,
    /// Rules the server wants but that could not start; the next full set
    /// retries them.
    failed: BTreeMap<String, ActivationError>,
    /// Stopped rules whose connections are still draining.
    draining: JoinSet<()>,
    drain: Duration,
}

impl Reconciler {
    pub fn new(engine: Engine, drain: Duration) -> Reconciler {
        Reconciler {
            engine,
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
            draining: JoinSet::new(),
            drain,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn running_ids(&self) -> impl Iterator<Item = &str> {
        self.running.keys().map(String::as_str)
    }

    pub fn failed_ids(&self) -> impl Iterator<Item = &str> {
        self.failed.keys().map(String::as_str)
    }

    /// Makes the running set equal to `desired` and returns one outcome per
    /// desired rule, in rule-id order.
    pub async fn apply_set(&mut self, desired: BTreeMap<String, Desired>) -> Vec<RuleOutcome> {
        let plan = plan(
            self.running.iter().map(|(id, h)| (id.as_str(), h.spec())),
            desired.iter().map(|(id, d)| (id.as_str(), &d.spec)),
        );
        tracing::info!(
            keep = plan.keep.len(),
            start = plan.start.len(),
            update = plan.update.len(),
            restart = plan.restart.len(),
            stop = plan.stop.len(),
            "reconciling full rule set"
        );
        self.failed.retain(|id, _| desired.contains_key(id));
        for id in &plan.stop {
            if let Some(handle) = self.running.remove(id) {
                tracing::info!(rule_id = %id, "rule no longer desired; stopping");
                self.stop_in_background(handle).await;
            }
        }
        let mut failed_updates = BTreeMap::new();
        for id in &plan.update {
            if let (Some(handle), Some(want)) = (self.running.get_mut(id), desired.get(id)) {
                if let Err(e) = update_caps(id, handle, &want.spec) {
                    failed_updates.insert(id.clone(), e);
                }
            }
        }
        for id in &plan.restart {
            if let Some(handle) = self.running.remove(id) {
                tracing::info!(rule_id = %id, "rule spec changed; restarting");
                // The old listeners must be gone before the new spec binds,
                // possibly on the same ports, so this stop is awaited.
                handle.stop(Duration::ZERO).await;
            }
        }
        // Rules that route by SNI start first: they open their port in SNI
        // mode, so that a rule without a pattern on the same port joins it
        // as the fallback instead of taking the port as a plain listener.
        let (sni, plain): (Vec<_>, Vec<_>) = desired
            .into_iter()
            .partition(|(_, d)| d.spec.sni_pattern.is_some());
        let mut outcomes = BTreeMap::new();
        for (id, Desired { owner, spec }) in sni.into_iter().chain(plain) {
            let outcome = if let Some(error) = failed_updates.remove(&id) {
                RuleOutcome {
                    rule_id: id.clone(),
                    outcome: Outcome::Failed(error),
                }
            } else if self.running.contains_key(&id) {
                RuleOutcome {
                    rule_id: id.clone(),
                    outcome: Outcome::Activated,
                }
            } else {
                self.start(id.clone(), &owner, spec).await
            };
            outcomes.insert(id, outcome);
        }
        outcomes.into_values().collect()
    }

    /// One pushed rule: unchanged is re-acknowledged, changed only in its
    /// caps is updated in place, otherwise changed is restarted, new (or
    /// previously failed) is started.
    pub async fn apply_one(&mut self, id: String, owner: &str, spec: RuleSpec) -> RuleOutcome {
        match self.running.get_mut(&id) {
            Some(handle) if *handle.spec() == spec => RuleOutcome {
                rule_id: id,
                outcome: Outcome::Activated,
            },
            Some(handle) if plan::only_caps_differ(handle.spec(), &spec) => {
                let outcome = match update_caps(&id, handle, &spec) {
                    Ok(()) => Outcome::Activated,
                    Err(e) => Outcome::Failed(e),
                };
                RuleOutcome {
                    rule_id: id,
                    outcome,
                }
            }
            Some(_) => {
                if let Some(handle) = self.running.remove(&id) {
                    tracing::info!(rule_id = %id, "rule spec changed; restarting");
                    handle.stop(Duration::ZERO).await;
                }
                self.start(id, owner, spec).await
            }
            None => self.start(id, owner, spec).await,
        }
    }

    /// Closes the rule's listeners now and drains its connections in the
    /// background. Removing an unknown rule is not an error: the server's
    /// intent (the rule does not run here) already holds.
    pub async fn remove(&mut self, id: &str) -> RuleOutcome {
        self.failed.remove(id);
        if let Some(handle) = self.running.remove(id) {
            tracing::info!(rule_id = %id, drain_secs = self.drain.as_secs(), "removing rule");
            self.stop_in_background(handle).await;
        }
        RuleOutcome {
            rule_id: id.to_string(),
            outcome: Outcome::Removed,
        }
    }

    /// A desired rule that cannot run at all (e.g. it did not decode): what
    /// runs under that id is stopped so that the edge matches the failure
    /// it reports.
    pub async fn reject(&mut self, id: String, error: ActivationError) -> RuleOutcome {
        if let Some(handle) = self.running.remove(&id) {
            self.stop_in_background(handle).await;
        }
        tracing::warn!(rule_id = %id, reason = error.reason.code(), detail = %error.detail, "rule rejected");
        self.failed.insert(id.clone(), error.clone());
        RuleOutcome {
            rule_id: id,
            outcome: Outcome::Failed(error),
        }
    }

    /// Each running rule's counters with the instance they belong to.
    pub fn report(&self) -> Vec<(String, u64, RuleStats)> {
        self.running
            .iter()
            .map(|(id, h)| (id.clone(), h.instance(), h.stats()))
            .collect()
    }

    #[cfg(test)]
    pub fn stats(&self) -> Vec<(String, RuleStats)> {
        self.running
            .iter()
            .map(|(id, h)| (id.clone(), h.stats()))
            .collect()
    }

    /// Closes every listener at once, then waits for all connections
    /// (including those of rules removed earlier) to finish or to reach
    /// the drain timeout.
    pub async fn shutdown(mut self) {
        let running = std::mem::take(&mut self.running);
        tracing::info!(
            rules = running.len(),
            drain_secs = self.drain.as_secs(),
            "stopping all rules"
        );
        for (_, handle) in running {
            self.stop_in_background(handle).await;
        }
        while self.draining.join_next().await.is_some() {}
    }

    async fn start(&mut self, id: String, owner: &str, spec: RuleSpec) -> RuleOutcome {
        match self.engine.start_owned_rule(&id, owner, spec.clone()).await {
            Ok(handle) => {
                tracing::info!(rule_id = %id, "rule activated");
                self.failed.remove(&id);
                self.running.insert(id.clone(), handle);
                RuleOutcome {
                    rule_id: id,
                    outcome: Outcome::Activated,
                }
            }
            Err(error) => {
                tracing::warn!(rule_id = %id, reason = error.reason.code(), detail = %error.detail, "rule failed to activate");
                self.failed.insert(id.clone(), error.clone());
                RuleOutcome {
                    rule_id: id,
                    outcome: Outcome::Failed(error),
                }
            }
        }
    }

    /// Frees the rule's ports before returning, so a rule started next may
    /// take them over; its live connections drain in a task of their own.
    async fn stop_in_background(&mut self, mut handle: RuleHandle) {
        while self.draining.try_join_next().is_some() {}
        handle.close_listeners().await;
        self.draining.spawn(handle.stop(self.drain));
    }
}

/// Applies a spec that differs from the running one only in its caps; the
/// rule keeps running under its old caps when the new ones are refused.
fn update_caps(id: &str, handle: &mut RuleHandle, spec: &RuleSpec) -> Result<(), ActivationError> {
    match handle.set_rate_limit(spec.rate_limit) {
        Ok(()) => {
            tracing::info!(rule_id = %id, "rule caps changed in place");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(rule_id = %id, detail = %error.detail, "rule caps refused");
            Err(error)
        }
    }
}
