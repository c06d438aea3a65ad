//! The engine-wide UDP flow budget. Every flow holds a connected upstream
//! socket, so flows from many (possibly spoofed) sources would otherwise
//! spend every descriptor of the process and starve its listeners, its TCP
//! connections and its control stream. The budget is derived from the
//! descriptor limit by whoever builds the engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct FlowBudget {
    used: Arc<AtomicU64>,
    limit: u64,
}

impl FlowBudget {
    pub fn new(limit: u64) -> FlowBudget {
        FlowBudget {
            used: Arc::default(),
            limit,
        }
    }

    /// No budget beyond the per-rule caps.
    pub fn unlimited() -> FlowBudget {
        FlowBudget::new(u64::MAX)
    }

    /// A place for one more flow, if the budget has one; released on drop.
    pub(crate) fn try_take(&self) -> Option<BudgetPlace> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()?;
        Some(BudgetPlace(self.used.clone()))
    }

    /// Flows holding a place now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// How many UDP flows a process with `nofile` descriptors may hold: what
/// is left after a reserve for listeners, TCP connections (two descriptors
/// each) and the control stream, a quarter of the limit and at least 256.
pub fn flows_for_descriptors(nofile: u64) -> u64 {
    let reserve = (nofile / 4).max(256);
    nofile.saturating_sub(reserve).max(1)
}

#[derive(Debug)]
pub(crate) struct BudgetPlace(Arc<AtomicU64>);

impl Drop for BudgetPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_up_to_the_limit_and_returned_on_drop() {
        let b = FlowBudget::new(2);
        let one = b.try_take().unwrap();
        let _two = b.try_take().unwrap();
        assert!(b.try_take().is_none());
        assert_eq!(b.used(), 2);
        drop(one);
        assert!(b.try_take().is_some());
    }

    #[test]
    fn descriptor_table() {
        for (nofile, flows) in [(1024, 768), (256, 1), (300, 44), (20_000, 15_000), (0, 1)] {
            assert_eq!(flows_for_descriptors(nofile), flows, "{nofile}");
        }
    }
}
