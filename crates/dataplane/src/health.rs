//! Client-side health of one target: a small state machine fed by
//! connection attempts (passive) and optional TCP-connect probes (active).
//! It lives as long as the rule and is never reported to the server as
//! anything but a `healthy` flag.

use std::sync::atomic::{AtomicU8, Ordering};

/// Consecutive failures that mark a healthy target failed.
pub(crate) const FAILURES_TO_FAIL: u8 = 3;
/// Consecutive successes that mark a failed target healthy again.
pub(crate) const SUCCESSES_TO_RECOVER: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Serving; `failures` counts the current run of failed attempts.
    Healthy { failures: u8 },
    /// Out of rotation; `successes` counts the current run of good ones.
    Failed { successes: u8 },
}

impl Health {
    pub(crate) const INITIAL: Health = Health::Healthy { failures: 0 };

    pub(crate) fn is_healthy(self) -> bool {
        matches!(self, Health::Healthy { .. })
    }
}

/// The state after one attempt that succeeded (`ok`) or failed.
pub(crate) fn next(state: Health, ok: bool) -> Health {
    match (state, ok) {
        (Health::Healthy { .. }, true) => Health::Healthy { failures: 0 },
        (Health::Healthy { failures }, false) if failures + 1 >= FAILURES_TO_FAIL => {
            Health::Failed { successes: 0 }
        }
        (Health::Healthy { failures }, false) => Health::Healthy {
            failures: failures + 1,
        },
        (Health::Failed { successes }, true) if successes + 1 >= SUCCESSES_TO_RECOVER => {
            Health::Healthy { failures: 0 }
        }
        (Health::Failed { successes }, true) => Health::Failed {
            successes: successes + 1,
        },
        (Health::Failed { .. }, false) => Health::Failed { successes: 0 },
    }
}

/// One target's health, shared by its connections and its prober.
#[derive(Debug)]
pub(crate) struct HealthCell(AtomicU8);

/// Bit 7 set means failed; the low bits hold the streak.
const FAILED_BIT: u8 = 0x80;

fn encode(h: Health) -> u8 {
    match h {
        Health::Healthy { failures } => failures,
        Health::Failed { successes } => FAILED_BIT | successes,
    }
}

fn decode(v: u8) -> Health {
    if v & FAILED_BIT == 0 {
        Health::Healthy { failures: v }
    } else {
        Health::Failed {
            successes: v & !FAILED_BIT,
        }
    }
}

impl Default for HealthCell {
    fn default() -> Self {
        HealthCell(AtomicU8::new(encode(Health::INITIAL)))
    }
}

impl HealthCell {
    pub(crate) fn get(&self) -> Health {
        decode(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.get().is_healthy()
    }

    /// Applies one outcome and returns the states before and after it.
    /// Concurrent outcomes are applied one after the other, none lost.
    pub(crate) fn record(&self, ok: bool) -> (Health, Health) {
        let step = |v| Some(encode(next(decode(v), ok)));
        // `step` always returns Some, so the update cannot fail.
        let before = match self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, step)
        {
            Ok(v) | Err(v) => decode(v),
        };
        (before, next(before, ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: fn(u8) -> Health = |failures| Health::Healthy { failures };
    const F: fn(u8) -> Health = |successes| Health::Failed { successes };

    #[test]
    fn next_table() {
        let cases = [
            (H(0), true, H(0)),
            (H(0), false, H(1)),
            (H(1), false, H(2)),
            (H(2), false, F(0)),
            (H(2), true, H(0)),
            (H(1), true, H(0)),
            (F(0), false, F(0)),
            (F(0), true, F(1)),
            (F(1), true, H(0)),
            (F(1), false, F(0)),
        ];
        for (state, ok, want) in cases {
            assert_eq!(next(state, ok), want, "{state:?} ok={ok}");
        }
    }

    #[test]
    fn sequences() {
        let run = |outcomes: &[bool]| {
            outcomes
                .iter()
                .fold(Health::INITIAL, |h, &ok| next(h, ok))
                .is_healthy()
        };
        let cases: [(&[bool], bool); 8] = [
            (&[], true),
            (&[false, false], true),
            (&[false, false, false], false),
            (&[false, false, true, false, false], true),
            (&[false, false, false, true], false),
            (&[false, false, false, true, true], true),
            (&[false, false, false, true, false, true], false),
            (&[false, false, false, true, false, true, true], true),
        ];
        for (outcomes, healthy) in cases {
            assert_eq!(run(outcomes), healthy, "{outcomes:?}");
        }
    }

    #[test]
    fn cell_round_trips_every_state() {
        let cell = HealthCell::default();
        assert!(cell.is_healthy());
        for _ in 0..3 {
            cell.record(false);
        }
        assert_eq!(cell.get(), F(0));
        assert_eq!(cell.record(true), (F(0), F(1)));
        assert_eq!(cell.record(true), (F(1), H(0)));
        for state in [H(0), H(1), H(2), F(0), F(1)] {
            assert_eq!(decode(encode(state)), state);
        }
    }
}
