//! The flows of one listen port, keyed by source address, under the
//! rule-wide flow cap. Pure bookkeeping: no sockets, the clock passed in.

use super::budget::{BudgetPlace, FlowBudget};
use crate::limit::{Admission, Reject};
use crate::stats::{FlowGuard, RuleCounters};
use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Tells apart successive flows of one source, so a late message about an
/// old flow cannot remove its successor.
pub(crate) type FlowId = u64;

/// Milliseconds on one port's clock.
pub(crate) type Millis = u64;

/// A port's monotonic clock in milliseconds, cheap to copy into flows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Has a flow last active at `last` been idle for `idle` at `now`?
pub(crate) fn is_idle(last: Millis, now: Millis, idle: Millis) -> bool {
    now.saturating_sub(last) >= idle
}

/// What a datagram from a source finds in the table.
#[derive(Debug)]
pub(crate) enum Admit<'a, F> {
    /// The source's live flow.
    Existing(FlowId, &'a mut F),
    /// A flow admitted just now under the cap.
    New(FlowId, &'a mut F),
    /// The rule is at its cap, or the engine's flow budget is spent: the
    /// datagram is to be dropped and counted. No flow is evicted to make
    /// room.
    Overflow,
    /// A rate limit refused the new flow: the datagram is to be dropped.
    Refused(Reject),
}

struct Entry<F> {
    id: FlowId,
    /// When the source last sent a datagram.
    last_inbound: Millis,
    value: F,
    _place: FlowGuard,
    _budget: BudgetPlace,
    _admission: Admission,
}

pub(crate) struct FlowTable<F> {
    counters: Arc<RuleCounters>,
    budget: FlowBudget,
    port_index: usize,
    flows: HashMap<SocketAddr, Entry<F>>,
    next_id: FlowId,
}

impl<F> FlowTable<F> {
    pub(crate) fn new(counters: Arc<RuleCounters>, budget: FlowBudget, port_index: usize) -> Self {
        FlowTable {
            counters,
            budget,
            port_index,
            flows: HashMap::new(),
            next_id: 0,
        }
    }

    /// The flow of `source`, marked active at `now`; or a new one made by
    /// `make` when the rule has fewer than `cap` live flows.
    #[cfg(test)]
    pub(crate) fn admit(
        &mut self,
        source: SocketAddr,
        now: Millis,
        cap: u64,
        make: impl FnOnce() -> F,
    ) -> Admit<'_, F> {
        self.try_admit(source, now, cap, || Ok(Admission::default()), make)
    }

    /// Like `admit`, and a new flow must also pass `gate` (the rate
    /// limits), asked only once it fits under the flow cap. The admission
    /// is held until the flow leaves the table.
    pub(crate) fn try_admit(
        &mut self,
        source: SocketAddr,
        now: Millis,
        cap: u64,
        gate: impl FnOnce() -> Result<Admission, Reject>,
        make: impl FnOnce() -> F,
    ) -> Admit<'_, F> {
        match self.flows.entry(source) {
            Slot::Occupied(slot) => {
                let entry = slot.into_mut();
                entry.last_inbound = entry.last_inbound.max(now);
                Admit::Existing(entry.id, &mut entry.value)
            }
            Slot::Vacant(slot) => {
                let Some(place) = FlowGuard::try_open(self.counters.clone(), self.port_index, cap)
                else {
                    return Admit::Overflow;
                };
                let Some(budget) = self.budget.try_take() else {
                    return Admit::Overflow;
                };
                let admission = match gate() {
                    Ok(admission) => admission,
                    Err(reject) => return Admit::Refused(reject),
                };
                place.count();
                let id = self.next_id;
                self.next_id += 1;
                let entry = slot.insert(Entry {
                    id,
                    last_inbound: now,
                    value: make(),
                    _place: place,
                    _budget: budget,
                    _admission: admission,
                });
                Admit::New(id, &mut entry.value)
            }
        }
    }

    /// The flow `id` of `source`, if it is still the one in the table.
    pub(crate) fn get_mut(&mut self, source: SocketAddr, id: FlowId) -> Option<&mut F> {
        self.flows
            .get_mut(&source)
            .filter(|e| e.id == id)
            .map(|e| &mut e.value)
    }

    /// The flow `id` of `source`, if it is still the one in the table.
    pub(crate) fn get(&self, source: SocketAddr, id: FlowId) -> Option<&F> {
        self.flows
            .get(&source)
            .filter(|e| e.id == id)
            .map(|e| &e.value)
    }

    /// Removes flow `id` of `source` and frees its place under the cap.
    /// A newer flow of the same source stays.
    pub(crate) fn remove(&mut self, source: SocketAddr, id: FlowId) -> Option<F> {
        match self.flows.entry(source) {
            Slot::Occupied(slot) if slot.get().id == id => Some(slot.remove().value),
            _ => None,
        }
    }

    /// Flows that moved nothing either way for `idle` by `now`; `replied`
    /// tells when a flow last carried a reply.
    pub(crate) fn idle(
        &self,
        now: Millis,
        idle: Millis,
        replied: impl Fn(&F) -> Millis,
    ) -> Vec<(SocketAddr, FlowId)> {
        self.flows
            .iter()
            .filter(|(_, e)| is_idle(e.last_inbound.max(replied(&e.value)), now, idle))
            .map(|(source, e)| (*source, e.id))
            .collect()
    }

    /// Every flow in the table.
    pub(crate) fn all(&self) -> Vec<(SocketAddr, FlowId)> {
        self.flows
            .iter()
            .map(|(source, e)| (*source, e.id))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub(crate) fn contains(&self, source: SocketAddr) -> bool {
        self.flows.contains_key(&source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::support::{rule, target};
    use std::net::Ipv4Addr;

    fn src(port: u16) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, port).into()
    }

    fn counters(ports: u16) -> Arc<RuleCounters> {
        let mut spec = rule(4000, vec![target(src(9), 1)]);
        spec.listen_port_end = Some(4000 + u32::from(ports) - 1);
        Arc::new(RuleCounters::new(&spec))
    }

    fn admitted<F>(a: Admit<'_, F>) -> Option<FlowId> {
        match a {
            Admit::Existing(id, _) | Admit::New(id, _) => Some(id),
            Admit::Overflow | Admit::Refused(_) => None,
        }
    }

    #[test]
    fn cap_admits_then_overflows_without_evicting() {
        let c = counters(1);
        let mut t = FlowTable::new(c.clone(), FlowBudget::unlimited(), 0);
        let mut ids = Vec::new();
        for p in 1..=3 {
            match t.admit(src(p), 0, 3, || p) {
                Admit::New(id, value) => {
                    assert_eq!(*value, p);
                    ids.push(id);
                }
                other => panic!("source {p}: {other:?}"),
            }
        }
        assert!(matches!(t.admit(src(4), 1, 3, || 4), Admit::Overflow));
        assert!(matches!(t.admit(src(5), 1, 3, || 5), Admit::Overflow));
        // The three flows are all still there and keep their ids.
        assert_eq!(t.len(), 3);
        for (p, id) in (1..=3).zip(&ids) {
            match t.admit(src(p), 2, 3, || unreachable!("exists")) {
                Admit::Existing(got, value) => assert_eq!((got, *value), (*id, p)),
                other => panic!("source {p}: {other:?}"),
            }
        }
        assert_eq!(c.snapshot().active_flows, 3);
        assert_eq!(c.snapshot().connections_total, 3);
    }

    #[test]
    fn the_engine_budget_binds_across_rules_and_keeps_existing_flows() {
        let budget = FlowBudget::new(2);
        let (a, b) = (counters(1), counters(1));
        let mut ta = FlowTable::new(a.clone(), budget.clone(), 0);
        let mut tb = FlowTable::new(b.clone(), budget.clone(), 0);
        let first = admitted(ta.admit(src(1), 0, 100, || ())).unwrap();
        assert!(admitted(tb.admit(src(2), 0, 100, || ())).is_some());
        // Both rules are far below their own caps; the budget is spent.
        assert!(matches!(ta.admit(src(3), 0, 100, || ()), Admit::Overflow));
        assert!(matches!(tb.admit(src(4), 0, 100, || ()), Admit::Overflow));
        assert_eq!(
            a.snapshot().active_flows,
            1,
            "a refused flow holds no place"
        );
        // The flows already there keep working.
        assert!(matches!(ta.admit(src(1), 1, 100, || ()), Admit::Existing(id, _) if id == first));
        assert_eq!(budget.used(), 2);
        ta.remove(src(1), first);
        assert_eq!(budget.used(), 1);
        assert!(admitted(tb.admit(src(4), 2, 100, || ())).is_some());
    }

    #[test]
    fn removing_a_flow_frees_its_place() {
        let c = counters(1);
        let mut t = FlowTable::new(c.clone(), FlowBudget::unlimited(), 0);
        let id = admitted(t.admit(src(1), 0, 1, || ())).unwrap();
        assert!(admitted(t.admit(src(2), 0, 1, || ())).is_none());
        assert_eq!(t.remove(src(1), id), Some(()));
        assert_eq!(c.snapshot().active_flows, 0);
        assert!(admitted(t.admit(src(2), 0, 1, || ())).is_some());
        assert_eq!(c.snapshot().active_flows, 1);
        drop(t);
        assert_eq!(c.snapshot().active_flows, 0, "dropping the table frees all");
    }

    #[test]
    fn a_stale_id_cannot_remove_the_next_flow_of_a_source() {
        let mut t = FlowTable::new(counters(1), FlowBudget::unlimited(), 0);
        let old = admitted(t.admit(src(1), 0, 8, || "old")).unwrap();
        assert_eq!(t.remove(src(1), old), Some("old"));
        let new = admitted(t.admit(src(1), 0, 8, || "new")).unwrap();
        assert_ne!(old, new);
        assert_eq!(t.remove(src(1), old), None);
        assert_eq!(t.get_mut(src(1), old), None);
        assert_eq!(t.get_mut(src(1), new).map(|v| *v), Some("new"));
    }

    #[test]
    fn the_cap_is_shared_by_the_ports_of_a_range() {
        let c = counters(3);
        let mut tables: Vec<FlowTable<()>> = (0..3)
            .map(|i| FlowTable::new(c.clone(), FlowBudget::unlimited(), i))
            .collect();
        for (i, t) in tables.iter_mut().enumerate() {
            assert!(admitted(t.admit(src(1), 0, 3, || ())).is_some(), "port {i}");
        }
        for t in &mut tables {
            assert!(admitted(t.admit(src(2), 0, 3, || ())).is_none());
        }
        let stats = c.snapshot();
        assert_eq!(stats.active_flows, 3);
        let per_port: Vec<u64> = stats.ports.iter().map(|p| p.active_connections).collect();
        assert_eq!(per_port, [1, 1, 1]);
    }

    #[test]
    fn is_idle_table() {
        let cases = [
            (0, 0, 100, false),
            (0, 99, 100, false),
            (0, 100, 100, true),
            (50, 149, 100, false),
            (50, 150, 100, true),
            // A touch racing ahead of the reaper's clock is not idle.
            (200, 150, 100, false),
            (0, 0, 0, true),
        ];
        for (last, now, idle, want) in cases {
            assert_eq!(
                is_idle(last, now, idle),
                want,
                "last={last} now={now} idle={idle}"
            );
        }
    }

    #[test]
    fn idle_lists_only_flows_quiet_for_the_whole_timeout() {
        // The value is when the flow last carried a reply.
        let mut t = FlowTable::new(counters(1), FlowBudget::unlimited(), 0);
        let a = admitted(t.admit(src(1), 0, 8, || 0)).unwrap();
        let b = admitted(t.admit(src(2), 0, 8, || 0)).unwrap();
        let c = admitted(t.admit(src(3), 0, 8, || 0)).unwrap();
        let _ = t.admit(src(2), 900, 8, || unreachable!());
        *t.get_mut(src(3), c).unwrap() = 950;
        let replied = |last: &Millis| *last;
        let mut idle = t.idle(1000, 1000, replied);
        idle.sort();
        assert_eq!(idle, vec![(src(1), a)]);
        let mut idle = t.idle(1950, 1000, replied);
        idle.sort();
        assert_eq!(idle, vec![(src(1), a), (src(2), b), (src(3), c)]);
        for (source, id) in idle {
            t.remove(source, id);
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_refused_flow_takes_no_place_and_a_reaped_one_frees_its_slot() {
        use crate::limit::{LimitCell, RuleLimits};
        use portunus_domain::rule::RateLimit;
        use std::time::Instant;
        let t0 = Instant::now();
        let cap = RateLimit {
            concurrent_connections: Some(1),
            ..Default::default()
        };
        let limits = RuleLimits {
            owner: Arc::default(),
            rule: Arc::new(LimitCell::new(Some(&cap), t0)),
        };
        let c = counters(1);
        let mut t = FlowTable::new(c.clone(), FlowBudget::unlimited(), 0);
        let gate = || limits.admit(t0);
        let a = admitted(t.try_admit(src(1), 0, 8, gate, || ())).unwrap();
        assert!(matches!(
            t.try_admit(src(2), 0, 8, gate, || ()),
            Admit::Refused(Reject::Concurrency)
        ));
        assert!(
            admitted(t.try_admit(src(1), 1, 8, gate, || ())).is_some(),
            "a live flow is not asked again"
        );
        let stats = c.snapshot();
        assert_eq!((stats.active_flows, stats.connections_total), (1, 1));
        t.remove(src(1), a);
        assert_eq!(limits.rule.get().concurrent(), 0);
        assert!(admitted(t.try_admit(src(2), 2, 8, gate, || ())).is_some());
    }
}
