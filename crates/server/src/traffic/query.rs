//! History answers: which step and window a query means, which rollup
//! serves it, and the dense series (one entry per bucket, zeros included)
//! that the API, the CLI and the console draw.

use super::{Counters, Grain};
use portunus_domain::{DomainError, ErrorCode};

/// The bucket widths a query may ask for, in seconds, by spelling.
pub const STEPS: &[(&str, i64)] = &[
    ("1m", 60),
    ("5m", 300),
    ("15m", 900),
    ("30m", 1800),
    ("1h", 3600),
    ("3h", 10_800),
    ("6h", 21_600),
    ("12h", 43_200),
    ("1d", 86_400),
];

/// The most buckets one answer holds.
pub const MAX_BUCKETS: i64 = 2000;
/// A default step gives at most this many buckets.
const DEFAULT_BUCKETS: i64 = 300;

pub fn parse_step(s: &str) -> Result<i64, DomainError> {
    STEPS
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, secs)| *secs)
        .ok_or_else(|| {
            DomainError::field(
                ErrorCode::InvalidTrafficStep,
                "step",
                format!(
                    "{s:?} is not a step; use one of {}",
                    STEPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

pub fn step_name(secs: i64) -> &'static str {
    STEPS
        .iter()
        .find(|(_, s)| *s == secs)
        .map_or("?", |(n, _)| n)
}

/// A query's buckets: `count` of `step` seconds from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub step: i64,
    pub count: i64,
}

impl Window {
    /// The buckets that cover `[since, until)`, aligned to `step` in UTC;
    /// without a step, the smallest that needs at most 300 buckets.
    pub fn new(since: i64, until: i64, step: Option<i64>) -> Result<Window, DomainError> {
        if until <= since {
            return Err(DomainError::field(
                ErrorCode::InvalidTrafficWindow,
                "until",
                "until must be later than since",
            ));
        }
        let step = match step {
            Some(s) => s,
            None => STEPS
                .iter()
                .map(|(_, s)| *s)
                .find(|s| (until - since) / s < DEFAULT_BUCKETS)
                .unwrap_or(86_400),
        };
        let start = since - since.rem_euclid(step);
        let count = (until - start + step - 1) / step;
        if count > MAX_BUCKETS {
            return Err(DomainError::field(
                ErrorCode::InvalidTrafficWindow,
                "since",
                format!(
                    "{count} buckets of {} asked for; one answer holds at most {MAX_BUCKETS}: use a larger step or a shorter window",
                    step_name(step)
                ),
            ));
        }
        Ok(Window { start, step, count })
    }

    pub fn end(&self) -> i64 {
        self.start + self.step * self.count
    }

    /// The rollup whose buckets divide this window's: minutes below an
    /// hour, hours from an hour up.
    pub fn grain(&self) -> Grain {
        if self.step < 3600 {
            Grain::Minute
        } else {
            Grain::Hour
        }
    }

    /// Sums rollup rows (bucket start, counters) into this window's
    /// buckets, every bucket present.
    pub fn dense(&self, rows: &[(i64, Counters)]) -> Vec<(i64, Counters)> {
        let mut out: Vec<(i64, Counters)> = (0..self.count)
            .map(|i| (self.start + i * self.step, Counters::default()))
            .collect();
        for (at, c) in rows {
            if *at < self.start {
                continue;
            }
            let i = usize::try_from((at - self.start) / self.step).unwrap_or(usize::MAX);
            if let Some((_, bucket)) = out.get_mut(i) {
                bucket.add(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(bytes: u64) -> Counters {
        Counters {
            bytes_in: bytes,
            bytes_out: 0,
            connections: 1,
        }
    }

    #[test]
    fn steps_parse_and_name() {
        assert_eq!(parse_step("5m").unwrap(), 300);
        assert_eq!(parse_step("1d").unwrap(), 86_400);
        for bad in ["", "2m", "60", "1H", "1 h", "-1m"] {
            assert_eq!(
                parse_step(bad).unwrap_err().code,
                ErrorCode::InvalidTrafficStep,
                "{bad}"
            );
        }
        assert_eq!(step_name(3600), "1h");
    }

    #[test]
    fn windows_align_to_utc_steps() {
        // 2026-03-01T10:07:30Z .. 12:00:00Z
        let since = 1_772_359_650;
        let w = Window::new(since, since + 6750, Some(3600)).unwrap();
        assert_eq!(w.start, 1_772_359_200, "10:00");
        assert_eq!(w.count, 2);
        assert_eq!(w.grain(), Grain::Hour);
        let w = Window::new(since, since + 60, Some(60)).unwrap();
        assert_eq!(
            (w.start, w.count, w.grain()),
            (since - 30, 2, Grain::Minute)
        );
        // A day step starts at 00:00 UTC.
        let w = Window::new(since, since + 1, Some(86_400)).unwrap();
        assert_eq!(w.start % 86_400, 0);
    }

    #[test]
    fn default_steps_and_limits() {
        let day = 86_400;
        assert_eq!(Window::new(0, day, None).unwrap().step, 300);
        assert_eq!(Window::new(0, 3600, None).unwrap().step, 60);
        assert_eq!(Window::new(0, 7 * day, None).unwrap().step, 3600);
        assert_eq!(Window::new(0, 90 * day, None).unwrap().step, 43_200);
        let err = Window::new(0, 3 * day, Some(60)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTrafficWindow);
        assert_eq!(
            Window::new(10, 10, None).unwrap_err().code,
            ErrorCode::InvalidTrafficWindow
        );
    }

    #[test]
    fn dense_series_sum_rollups_into_steps() {
        let w = Window::new(0, 900, Some(300)).unwrap();
        let rows = [
            (0, c(1)),
            (60, c(2)),
            (600, c(4)),
            (840, c(8)),
            (900, c(16)),
        ];
        let got: Vec<u64> = w.dense(&rows).iter().map(|(_, c)| c.bytes_in).collect();
        assert_eq!(got, vec![3, 0, 12]);
    }
}
