//! The latest cumulative stats each edge reported, per rule, and their
//! projection onto Prometheus series.

use crate::metrics::{Metrics, RuleLabels};
use portunus_proto::pb;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub struct Reported {
    pub stats: pb::RuleStats,
    pub at: i64,
    pub labels: RuleLabels,
}

#[derive(Default)]
struct Board {
    latest: HashMap<String, Reported>,
    /// What a rule had counted when it was switched back on. An edge starts
    /// a re-enabled rule from zero; its reports are shown on top of this,
    /// so an operator's counters do not fall back when a rule was off.
    carried: HashMap<String, pb::RuleStats>,
}

#[derive(Default)]
pub struct StatsBoard {
    board: Mutex<Board>,
}

impl StatsBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one rule's report.
    pub fn record(&self, metrics: &Metrics, labels: RuleLabels, stats: pb::RuleStats, at: i64) {
        let mut board = self.lock();
        let stats = match board.carried.get(&labels.rule) {
            Some(base) => continued(base, &stats),
            None => stats,
        };
        if let Some(last) = board.latest.get_mut(&labels.rule) {
            // An idle rule repeats its report every interval: the series
            // already say it, and a fleet's worth of label lookups is most
            // of an idle server's CPU.
            if last.stats == stats && last.labels == labels {
                last.at = at;
                return;
            }
        }
        let previous = board.latest.get(&labels.rule).map(|r| &r.stats);
        metrics.apply_rule_report(&labels, previous, &stats);
        board
            .latest
            .insert(labels.rule.clone(), Reported { stats, at, labels });
    }

    pub fn get(&self, rule_id: &str) -> Option<Reported> {
        self.lock().latest.get(rule_id).cloned()
    }

    /// Called as a rule is switched back on: its next reports continue
    /// from what it had counted so far.
    pub fn carry_over(&self, rule_id: &str) {
        let mut board = self.lock();
        if let Some(last) = board.latest.get(rule_id).map(|r| r.stats.clone()) {
            board.carried.insert(rule_id.to_string(), last);
        }
    }

    pub fn forget(&self, metrics: &Metrics, rule_id: &str) {
        let removed = {
            let mut board = self.lock();
            board.carried.remove(rule_id);
            board.latest.remove(rule_id)
        };
        if let Some(r) = removed {
            metrics.remove_rule(&r.labels);
        }
    }
}

/// `report` shown on top of `base`: counters add up, gauges (open
/// connections and flows, health) are the report's alone. Ports and targets
/// are the report's; each adds what the base had counted for it.
fn continued(base: &pb::RuleStats, report: &pb::RuleStats) -> pb::RuleStats {
    let mut out = report.clone();
    out.bytes_in += base.bytes_in;
    out.bytes_out += base.bytes_out;
    out.connections_total += base.connections_total;
    out.connect_failures += base.connect_failures;
    out.dns_failures += base.dns_failures;
    out.target_failovers += base.target_failovers;
    out.udp_datagrams_in += base.udp_datagrams_in;
    out.udp_datagrams_out += base.udp_datagrams_out;
    out.flows_dropped_overflow += base.flows_dropped_overflow;
    out.rate_limit_rejects += base.rate_limit_rejects;
    out.rate_limit_rejects_new_connections += base.rate_limit_rejects_new_connections;
    out.rate_limit_rejects_concurrency += base.rate_limit_rejects_concurrency;
    out.rate_limit_rejects_bandwidth += base.rate_limit_rejects_bandwidth;
    out.sni_routed += base.sni_routed;
    out.sni_unmatched += base.sni_unmatched;
    for p in &mut out.ports {
        if let Some(b) = base.ports.iter().find(|b| b.port == p.port) {
            p.bytes_in += b.bytes_in;
            p.bytes_out += b.bytes_out;
            p.connections_total += b.connections_total;
        }
    }
    for t in &mut out.targets {
        if let Some(b) = base
            .targets
            .iter()
            .find(|b| b.host == t.host && b.port == t.port)
        {
            t.connects_ok += b.connects_ok;
            t.connects_failed += b.connects_failed;
            t.bytes_in += b.bytes_in;
            t.bytes_out += b.bytes_out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(bytes: u64, active: u64) -> pb::RuleStats {
        pb::RuleStats {
            rule_id: "r".into(),
            bytes_in: bytes,
            bytes_out: 2 * bytes,
            connections_total: 3,
            active_connections: active,
            ports: vec![pb::PortStats {
                port: 80,
                bytes_in: bytes,
                active_connections: active,
                ..Default::default()
            }],
            targets: vec![pb::TargetStats {
                host: "10.0.0.5".into(),
                port: 80,
                connects_ok: 3,
                healthy: active > 0,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn labels() -> RuleLabels {
        RuleLabels {
            client: "edge".into(),
            rule: "r".into(),
            owner: "admin".into(),
        }
    }

    #[test]
    fn counters_add_and_gauges_do_not() {
        let c = continued(&report(100, 7), &report(5, 1));
        assert_eq!(
            (c.bytes_in, c.bytes_out, c.connections_total),
            (105, 210, 6)
        );
        assert_eq!(c.active_connections, 1);
        assert_eq!(
            (c.ports[0].bytes_in, c.ports[0].active_connections),
            (105, 1)
        );
        assert_eq!((c.targets[0].connects_ok, c.targets[0].healthy), (6, true));
    }

    #[test]
    fn a_re_enabled_rule_continues_from_its_last_report() {
        let metrics = Metrics::new();
        let board = StatsBoard::default();
        let labels = labels();
        board.record(&metrics, labels.clone(), report(100, 2), 1);
        board.carry_over("r");
        board.record(&metrics, labels.clone(), report(5, 0), 2);
        assert_eq!(board.get("r").unwrap().stats.bytes_in, 105);
        // Switched off and on again: the carry holds both earlier runs.
        board.carry_over("r");
        board.record(&metrics, labels, report(1, 0), 3);
        assert_eq!(board.get("r").unwrap().stats.bytes_in, 106);
        board.forget(&metrics, "r");
        assert!(board.get("r").is_none());
    }

    #[test]
    fn a_repeated_report_moves_only_its_time() {
        let metrics = Metrics::new();
        let board = StatsBoard::default();
        let labels = labels();
        board.record(&metrics, labels.clone(), report(100, 2), 1);
        let series = metrics.encode();
        assert!(series.contains("portunus_rule_bytes_in_total"), "{series}");
        board.record(&metrics, labels.clone(), report(100, 2), 7);
        assert_eq!(board.get("r").unwrap().at, 7);
        assert_eq!(metrics.encode(), series);
        board.record(&metrics, labels, report(150, 2), 8);
        assert_ne!(metrics.encode(), series, "a moving report still counts");
    }
}
