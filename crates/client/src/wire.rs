//! Client messages on the control stream, built from reconciler outcomes and
//! data-plane counters. The only place the client maps its types to `pb`.

use crate::reconcile::{Outcome, RuleOutcome};
use pb::client_message::Kind;
use pb::rule_outcome::Kind as OutcomeKind;
use portunus_dataplane::{ActivationError, ActivationReason, RuleStats};
use portunus_proto::pb;

pub fn hello(client_version: &str, hostname: &str) -> pb::ClientMessage {
    pb::ClientMessage {
        kind: Some(Kind::Hello(pb::Hello {
            client_version: client_version.to_string(),
            hostname: hostname.to_string(),
            wire_version: portunus_proto::WIRE_VERSION,
        })),
    }
}

pub fn outcome(o: RuleOutcome) -> pb::ClientMessage {
    let (kind, reason, detail) = match o.outcome {
        Outcome::Activated => (OutcomeKind::Activated, String::new(), String::new()),
        Outcome::Removed => (OutcomeKind::Removed, String::new(), String::new()),
        Outcome::Failed(e) => (OutcomeKind::Failed, e.reason.code().to_string(), e.detail),
    };
    pb::ClientMessage {
        kind: Some(Kind::Outcome(pb::RuleOutcome {
            rule_id: o.rule_id,
            kind: kind as i32,
            reason,
            detail,
        })),
    }
}

/// A rule the client could not decode fails like a rule the engine refused.
pub fn undecodable(err: portunus_proto::WireError) -> ActivationError {
    ActivationError {
        reason: ActivationReason::InvalidRule,
        detail: err.to_string(),
    }
}

/// Which process sent a report, and the how-manieth it is: the server
/// folds each report into its history once.
#[derive(Debug, Clone)]
pub struct ReportStamp {
    pub run_id: String,
    pub seq: u64,
}

impl ReportStamp {
    /// A stamp for a new process: a random run id, the first report next.
    pub fn new_run() -> ReportStamp {
        use rand::Rng;
        let bytes: [u8; 16] = rand::rng().random();
        ReportStamp {
            run_id: hex::encode(bytes),
            seq: 0,
        }
    }

    /// The stamp of the next report.
    pub fn next_report(&mut self) -> ReportStamp {
        self.seq += 1;
        self.clone()
    }
}

pub fn stats_report(stamp: ReportStamp, rules: Vec<(String, u64, RuleStats)>) -> pb::ClientMessage {
    let rules = rules
        .into_iter()
        .map(|(id, instance, s)| rule_stats(id, instance, s))
        .collect();
    pb::ClientMessage {
        kind: Some(Kind::Stats(pb::StatsReport {
            rules,
            run_id: stamp.run_id,
            seq: stamp.seq,
        })),
    }
}

fn rule_stats(rule_id: String, instance: u64, s: RuleStats) -> pb::RuleStats {
    pb::RuleStats {
        rule_id,
        instance,
        quota_refused: s.quota_refused,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        connections_total: s.connections_total,
        active_connections: s.active_connections,
        connect_failures: s.connect_failures,
        dns_failures: s.dns_failures,
        target_failovers: s.target_failovers,
        udp_datagrams_in: s.udp_datagrams_in,
        udp_datagrams_out: s.udp_datagrams_out,
        active_flows: s.active_flows,
        flows_dropped_overflow: s.flows_dropped_overflow,
        rate_limit_rejects: s.rate_limit_rejects,
        rate_limit_rejects_new_connections: s.rate_limit_rejects_new_connections,
        rate_limit_rejects_concurrency: s.rate_limit_rejects_concurrency,
        rate_limit_rejects_bandwidth: s.rate_limit_rejects_bandwidth,
        sni_routed: s.sni_routed,
        sni_unmatched: s.sni_unmatched,
        source_denied: s.source_denied,
        ports: s
            .ports
            .into_iter()
            .map(|p| pb::PortStats {
                port: p.port.into(),
                bytes_in: p.bytes_in,
                bytes_out: p.bytes_out,
                connections_total: p.connections_total,
                active_connections: p.active_connections,
            })
            .collect(),
        targets: s
            .targets
            .into_iter()
            .map(|t| pb::TargetStats {
                host: t.host,
                port: t.port.into(),
                connects_ok: t.connects_ok,
                connects_failed: t.connects_failed,
                healthy: t.healthy,
                bytes_in: t.bytes_in,
                bytes_out: t.bytes_out,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portunus_dataplane::{PortStats, TargetStats};

    #[test]
    fn outcomes_carry_reason_code_and_detail() {
        let failed = outcome(RuleOutcome {
            rule_id: "r1".into(),
            outcome: Outcome::Failed(ActivationError {
                reason: ActivationReason::PortInUse,
                detail: "port 8443: address in use".into(),
            }),
        });
        let Some(Kind::Outcome(o)) = failed.kind else {
            panic!("not an outcome")
        };
        assert_eq!(
            (o.rule_id.as_str(), o.kind),
            ("r1", OutcomeKind::Failed as i32)
        );
        assert_eq!(
            (o.reason.as_str(), o.detail.as_str()),
            ("port_in_use", "port 8443: address in use")
        );

        for (given, kind) in [
            (Outcome::Activated, OutcomeKind::Activated),
            (Outcome::Removed, OutcomeKind::Removed),
        ] {
            let Some(Kind::Outcome(o)) = outcome(RuleOutcome {
                rule_id: "r".into(),
                outcome: given,
            })
            .kind
            else {
                panic!("not an outcome")
            };
            assert_eq!(o.kind, kind as i32);
            assert!(o.reason.is_empty() && o.detail.is_empty());
        }
    }

    #[test]
    fn stats_keep_every_counter_port_and_target() {
        let stats = RuleStats {
            bytes_in: 1,
            bytes_out: 2,
            connections_total: 3,
            active_connections: 4,
            connect_failures: 5,
            dns_failures: 6,
            target_failovers: 7,
            udp_datagrams_in: 8,
            udp_datagrams_out: 9,
            active_flows: 10,
            flows_dropped_overflow: 11,
            rate_limit_rejects: 12,
            sni_routed: 13,
            sni_unmatched: 14,
            rate_limit_rejects_new_connections: 23,
            rate_limit_rejects_concurrency: 24,
            rate_limit_rejects_bandwidth: 25,
            source_denied: 26,
            quota_refused: 27,
            ports: vec![PortStats {
                port: 8443,
                bytes_in: 15,
                bytes_out: 16,
                connections_total: 17,
                active_connections: 18,
            }],
            targets: vec![TargetStats {
                host: "10.0.0.1".into(),
                port: 9000,
                connects_ok: 19,
                connects_failed: 20,
                healthy: true,
                bytes_in: 21,
                bytes_out: 22,
            }],
        };
        let Some(Kind::Stats(report)) = stats_report(
            ReportStamp::new_run().next_report(),
            vec![("r1".into(), 7, stats)],
        )
        .kind
        else {
            panic!("not stats")
        };
        let r = &report.rules[0];
        let counters = [
            r.bytes_in,
            r.bytes_out,
            r.connections_total,
            r.active_connections,
            r.connect_failures,
            r.dns_failures,
            r.target_failovers,
            r.udp_datagrams_in,
            r.udp_datagrams_out,
            r.active_flows,
            r.flows_dropped_overflow,
            r.rate_limit_rejects,
            r.sni_routed,
            r.sni_unmatched,
            r.rate_limit_rejects_new_connections,
            r.rate_limit_rejects_concurrency,
            r.rate_limit_rejects_bandwidth,
            r.source_denied,
            r.quota_refused,
        ];
        assert_eq!(
            counters,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 23, 24, 25, 26, 27]
        );
        assert_eq!((r.rule_id.as_str(), r.instance), ("r1", 7));
        assert_eq!((report.seq, report.run_id.len()), (1, 32));
        assert_eq!(
            r.ports,
            vec![pb::PortStats {
                port: 8443,
                bytes_in: 15,
                bytes_out: 16,
                connections_total: 17,
                active_connections: 18
            }]
        );
        assert_eq!(
            r.targets,
            vec![pb::TargetStats {
                host: "10.0.0.1".into(),
                port: 9000,
                connects_ok: 19,
                connects_failed: 20,
                healthy: true,
                bytes_in: 21,
                bytes_out: 22
            }]
        );
    }
}
