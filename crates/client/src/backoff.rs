//! Full-jitter exponential backoff for reconnecting to the control plane:
//! sleep uniformly in `[0, min(max, initial * 2^attempt)]`, so a fleet that
//! lost its server at the same moment does not return in lockstep.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The upper bound of the sleep before reconnect attempt `attempt`
    /// (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max)
    }

    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let b = Backoff {
            initial: 500 * MS,
            max: Duration::from_secs(30),
        };
        for (attempt, ceiling_ms) in [
            (0, 500),
            (1, 1_000),
            (2, 2_000),
            (5, 16_000),
            (6, 30_000),
            (7, 30_000),
            (31, 30_000),
            (32, 30_000),
            (u32::MAX, 30_000),
        ] {
            assert_eq!(b.ceiling(attempt), ceiling_ms * MS, "attempt {attempt}");
        }
        let capped_low = Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(capped_low.ceiling(0), Duration::from_secs(1));
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.ceiling(3), Duration::MAX);
    }

    #[test]
    fn delays_stay_within_zero_and_the_ceiling() {
        let b = Backoff {
            initial: 500 * MS,
            max: Duration::from_secs(30),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..40 {
            let ceiling = b.ceiling(attempt);
            let samples: Vec<Duration> = (0..200).map(|_| b.delay(attempt, &mut rng)).collect();
            assert!(samples.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // Full jitter spreads over the whole window, not just its top.
            assert!(
                samples.iter().any(|d| *d < ceiling / 4),
                "attempt {attempt}"
            );
            assert!(
                samples.iter().any(|d| *d > ceiling * 3 / 4),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn zero_ceiling_means_no_sleep() {
        let b = Backoff {
            initial: Duration::ZERO,
            max: Duration::from_secs(30),
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(b.delay(10, &mut rng), Duration::ZERO);
    }
}
