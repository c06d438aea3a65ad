//! The latest cumulative stats each edge reported, per rule, and their
//! projection onto Prometheus series.

use crate::metrics::{Metrics, RuleLabels};
use portunus_proto::pb;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct Reported {
    pub stats: pb::RuleStats,
    pub at: i64,
    pub labels: RuleLabels,
}

#[derive(Default)]
pub struct StatsBoard {
    rules: Mutex<HashMap<String, Reported>>,
}

impl StatsBoard {
    /// Records one rule's report; `labels` is None for a rule the server
    /// no longer knows, whose report is dropped.
    pub fn record(&self, metrics: &Metrics, labels: RuleLabels, stats: pb::RuleStats, at: i64) {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let previous = rules.get(&labels.rule).map(|r| &r.stats);
        metrics.apply_rule_report(&labels, previous, &stats);
        rules.insert(labels.rule.clone(), Reported { stats, at, labels });
    }

    pub fn get(&self, rule_id: &str) -> Option<Reported> {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rule_id)
            .cloned()
    }

    pub fn forget(&self, metrics: &Metrics, rule_id: &str) {
        let removed = self
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(rule_id);
        if let Some(r) = removed {
            metrics.remove_rule(&r.labels);
        }
    }
}
