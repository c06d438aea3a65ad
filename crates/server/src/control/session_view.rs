//! What one control session remembers about its client's rules between
//! messages. A fleet sends a stats report per edge every few seconds and an
//! outcome per rule on every reconnect; answering those from memory keeps
//! the store for what changed.
//!
//! The view is only trusted while nothing was sent to the client since it
//! was read: every change to a client's rules goes out as a message on its
//! stream (push, remove, rule set), and the registry counts those.

use crate::store::rules::{RuleRow, RuleState};
use crate::traffic::{Counters, Cursor};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Known {
    owner: String,
    /// `None` for a disabled rule: outcomes do not change its state.
    state: Option<(RuleState, Option<String>)>,
}

/// Where a rule's counters stood in the last report this session queued.
#[derive(PartialEq, Eq)]
struct Reported {
    run_id: String,
    instance: u64,
    counters: Counters,
}

pub struct SessionView {
    /// Messages queued to the client so far (the registry's count).
    sent: Arc<AtomicU64>,
    /// `sent` when `rules` was read; `None` before the first read.
    read_at: Option<u64>,
    rules: HashMap<String, Known>,
    reported: HashMap<String, Reported>,
}

impl SessionView {
    pub fn new(sent: Arc<AtomicU64>) -> SessionView {
        SessionView {
            sent,
            read_at: None,
            rules: HashMap::new(),
            reported: HashMap::new(),
        }
    }

    /// The message count to pass to `refresh` when the rules read now are
    /// not current: read the count before the store, so a change that
    /// lands during the read makes the next message read again.
    pub fn stale(&self) -> Option<u64> {
        let now = self.sent.load(Ordering::Acquire);
        (self.read_at != Some(now)).then_some(now)
    }

    pub fn refresh(&mut self, read_at: u64, rows: Vec<RuleRow>) {
        self.read_at = Some(read_at);
        self.rules = rows
            .into_iter()
            .map(|r| {
                let state = r.enabled.then_some((r.state, r.reason));
                (
                    r.id,
                    Known {
                        owner: r.owner,
                        state,
                    },
                )
            })
            .collect();
        self.reported.retain(|id, _| self.rules.contains_key(id));
    }

    pub fn owner(&self, rule_id: &str) -> Option<&str> {
        self.rules.get(rule_id).map(|k| k.owner.as_str())
    }

    /// Whether the store already holds this outcome (or would ignore it,
    /// the rule being disabled), so writing it would change nothing.
    pub fn holds(&self, rule_id: &str, state: RuleState, reason: Option<&str>) -> bool {
        match self.rules.get(rule_id) {
            Some(Known { state: None, .. }) => true,
            Some(Known {
                state: Some((s, r)),
                ..
            }) => *s == state && r.as_deref() == reason,
            None => false,
        }
    }

    /// Called once the store recorded an outcome.
    pub fn recorded(&mut self, rule_id: &str, state: RuleState, reason: Option<String>) {
        if let Some(Known { state: Some(s), .. }) = self.rules.get_mut(rule_id) {
            *s = (state, reason);
        }
    }

    /// Whether `report` repeats the counters of the last one queued for the
    /// rule (same process, same rule start): folding it would add nothing,
    /// and the next report that moves is measured from the same cursor.
    pub fn repeats(&mut self, rule_id: &str, report: &Cursor) -> bool {
        let now = Reported {
            run_id: report.run_id.clone(),
            instance: report.instance,
            counters: report.counters,
        };
        match self.reported.get_mut(rule_id) {
            Some(last) if *last == now => true,
            Some(last) => {
                *last = now;
                false
            }
            None => {
                self.reported.insert(rule_id.to_string(), now);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(seq: u64, bytes: u64) -> Cursor {
        Cursor {
            run_id: "run".into(),
            instance: 1,
            seq,
            counters: Counters {
                bytes_in: bytes,
                bytes_out: bytes,
                connections: 1,
            },
        }
    }

    #[test]
    fn a_message_to_the_client_makes_the_view_stale() {
        let sent = Arc::new(AtomicU64::new(0));
        let mut view = SessionView::new(sent.clone());
        let at = view.stale().expect("never read");
        view.refresh(at, vec![]);
        assert_eq!(view.stale(), None);
        sent.fetch_add(1, Ordering::Release);
        assert_eq!(view.stale(), Some(1));
    }

    #[test]
    fn only_a_report_that_moves_is_queued() {
        let mut view = SessionView::new(Arc::default());
        assert!(!view.repeats("r1", &cursor(1, 10)));
        assert!(view.repeats("r1", &cursor(2, 10)), "same counters");
        assert!(!view.repeats("r1", &cursor(3, 11)));
        let mut restarted = cursor(4, 11);
        restarted.instance = 2;
        assert!(!view.repeats("r1", &restarted), "a new rule start counts");
        assert!(!view.repeats("r2", &cursor(1, 11)), "per rule");
    }

    #[test]
    fn unknown_rules_are_written_and_disabled_ones_are_not() {
        let mut view = SessionView::new(Arc::default());
        assert!(!view.holds("r1", RuleState::Active, None));
        view.rules.insert(
            "r1".into(),
            Known {
                owner: "alice".into(),
                state: Some((RuleState::Pending, None)),
            },
        );
        view.rules.insert(
            "off".into(),
            Known {
                owner: "alice".into(),
                state: None,
            },
        );
        assert!(!view.holds("r1", RuleState::Active, None));
        view.recorded("r1", RuleState::Active, None);
        assert!(view.holds("r1", RuleState::Active, None));
        assert!(!view.holds("r1", RuleState::Failed, Some("port_in_use")));
        assert!(view.holds("off", RuleState::Failed, Some("x")));
        assert_eq!(view.owner("r1"), Some("alice"));
    }
}
