//! Throttling of password-guessing routes (login, onboarding, password
//! change): failures are counted per source address and per user id in
//! fixed windows; a key over its limit is refused until its window ends.
//! In memory only: a restart forgets the counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one user id may collect per window.
pub const PER_USER: u32 = 10;
/// Failures one source address may collect per window; higher than the
/// per-user limit so one user's typos do not lock out their neighbours.
pub const PER_SOURCE: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Above this many tracked keys, expired windows are swept on insert.
const SWEEP_ABOVE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Source(IpAddr),
    User(String),
}

impl Key {
    fn limit(&self) -> u32 {
        match self {
            Key::Source(_) => PER_SOURCE,
            Key::User(_) => PER_USER,
        }
    }

    /// User ids are bounded so arbitrary input cannot grow the keys.
    pub fn user(id: &str) -> Key {
        Key::User(id.chars().take(64).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    /// The window that is current at `now`: the same one, or a fresh one
    /// once `WINDOW` has passed since it started.
    fn at(self, now: Instant) -> Window {
        if now.saturating_duration_since(self.start) >= WINDOW {
            Window {
                start: now,
                failures: 0,
            }
        } else {
            self
        }
    }
}

#[derive(Default)]
pub struct Throttle {
    windows: Mutex<HashMap<Key, Window>>,
}

impl Throttle {
    /// Whether any of `keys` is over its limit at `now`. Returns how long
    /// until the longest-blocked key is let through again.
    pub fn blocked(&self, keys: &[Key], now: Instant) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| {
                let w = windows.get(k)?.at(now);
                (w.failures >= k.limit()).then(|| WINDOW - now.saturating_duration_since(w.start))
            })
            .max()
    }

    /// Counts one failure against every key.
    pub fn failed(&self, keys: &[Key], now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.saturating_duration_since(w.start) < WINDOW);
        }
        for k in keys {
            let w = windows.entry(k.clone()).or_insert(Window {
                start: now,
                failures: 0,
            });
            *w = w.at(now);
            w.failures = w.failures.saturating_add(1);
        }
    }

    /// Forgets a key's failures (a user who finally got it right).
    pub fn succeeded(&self, key: &Key) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Key {
        Key::Source(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn window_math() {
        let t0 = Instant::now();
        let w = Window {
            start: t0,
            failures: 3,
        };
        let cases = [
            (Duration::ZERO, 3),
            (WINDOW - Duration::from_millis(1), 3),
            (WINDOW, 0),
            (WINDOW * 3, 0),
        ];
        for (later, failures) in cases {
            assert_eq!(w.at(t0 + later).failures, failures, "{later:?}");
        }
        // A clock reading before the start is treated as the start.
        assert_eq!(
            Window {
                start: t0 + WINDOW,
                failures: 2
            }
            .at(t0)
            .failures,
            2
        );
    }

    #[test]
    fn per_user_limit_then_reset_after_window() {
        let th = Throttle::default();
        let t0 = Instant::now();
        let keys = [ip(1), Key::user("alice")];
        for i in 0..PER_USER {
            assert_eq!(th.blocked(&keys, t0), None, "attempt {i}");
            th.failed(&keys, t0 + Duration::from_secs(i as u64));
        }
        let left = th.blocked(&keys, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(left, WINDOW - Duration::from_secs(60));
        // Another user from the same source is still let through.
        assert_eq!(th.blocked(&[ip(1), Key::user("bob")], t0), None);
        assert_eq!(th.blocked(&keys, t0 + WINDOW), None);
        th.failed(&keys, t0 + WINDOW);
        assert_eq!(th.blocked(&keys, t0 + WINDOW), None, "fresh window");
    }

    #[test]
    fn per_source_limit_and_success_reset() {
        let th = Throttle::default();
        let t0 = Instant::now();
        for i in 0..PER_SOURCE {
            th.failed(&[ip(2), Key::user(&format!("u{i}"))], t0);
        }
        assert!(th.blocked(&[ip(2), Key::user("fresh")], t0).is_some());
        assert_eq!(th.blocked(&[ip(3), Key::user("fresh")], t0), None);
        th.succeeded(&ip(2));
        assert_eq!(th.blocked(&[ip(2)], t0), None);
        assert_eq!(Key::user(&"x".repeat(500)), Key::User("x".repeat(64)));
    }
}
