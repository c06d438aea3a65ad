//! Rate limits: token buckets for bandwidth and new connections, and a
//! gauge for concurrent connections. One `Limits` set exists per rule and
//! one per owner envelope on this edge; a connection obeys both, the owner's
//! first. Everything here is arithmetic over an injected clock.

use portunus_domain::rule::RateLimit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// `rate` tokens per second, at most `burst` banked. Taking more than is
/// banked leaves a debt that later takers wait out, so one large read
/// throttles its own connection instead of being refused.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a new cap starts with its burst available.
    pub fn new(rate: u64, burst: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` tokens if banked; otherwise takes none.
    pub fn try_take(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, going into debt if needed, and returns how long the
    /// taker must wait before the debt is paid.
    pub fn take(&mut self, n: u64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Gives back `n` tokens taken by a step that was then undone.
    pub fn refund(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }

    /// New rate and burst for the connections that come next. What is
    /// banked carries over (clamped to the new burst): a cap change never
    /// mints a free burst.
    pub fn reconfigure(&mut self, rate: u64, burst: u64, now: Instant) {
        self.refill(now);
        self.rate = rate as f64;
        self.burst = burst as f64;
        self.tokens = self.tokens.min(self.burst);
    }
}

/// A shared bucket, or none when the cap is absent.
type Bucket = Option<Arc<Mutex<TokenBucket>>>;

/// The live limiters of one rule or one owner envelope.
#[derive(Debug, Default)]
pub struct Limits {
    bandwidth_in: Bucket,
    bandwidth_out: Bucket,
    new_connections: Bucket,
    concurrent_max: Option<u64>,
    /// Shared with the `Limits` this one replaces or is replaced by, so
    /// connections admitted under an older cap release the same gauge.
    concurrent: Arc<AtomicU64>,
}

/// Why a new connection (or UDP flow) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    NewConnectionRate,
    Concurrency,
}

impl Reject {
    /// Label value of `portunus_rate_limit_reject_total{reason}`.
    pub fn reason(self) -> &'static str {
        match self {
            Reject::NewConnectionRate => "new_connections_per_sec",
            Reject::Concurrency => "concurrent_connections",
        }
    }
}

/// Direction of payload: `In` flows from the peer towards the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

fn bucket(rate: Option<u64>, burst: Option<u64>, now: Instant) -> Bucket {
    rate.map(|r| Arc::new(Mutex::new(TokenBucket::new(r, burst.unwrap_or(r), now))))
}

/// The bucket of a changed cap: the old one reconfigured in place when the
/// cap stays, so what is banked (or owed) carries over.
fn rebucket(old: &Bucket, rate: Option<u64>, burst: Option<u64>, now: Instant) -> Bucket {
    match (old, rate) {
        (Some(b), Some(r)) => {
            lock(b).reconfigure(r, burst.unwrap_or(r), now);
            Some(b.clone())
        }
        _ => bucket(rate, burst, now),
    }
}

fn lock(b: &Mutex<TokenBucket>) -> std::sync::MutexGuard<'_, TokenBucket> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

impl Limits {
    pub fn new(cap: &RateLimit, now: Instant) -> Limits {
        Limits {
            bandwidth_in: bucket(cap.bandwidth_in_bps, cap.bandwidth_in_burst, now),
            bandwidth_out: bucket(cap.bandwidth_out_bps, cap.bandwidth_out_burst, now),
            new_connections: bucket(cap.new_connections_per_sec, cap.new_connections_burst, now),
            concurrent_max: cap.concurrent_connections,
            concurrent: Arc::default(),
        }
    }

    /// The limits under `cap` that follow these: buckets that stay are
    /// reconfigured in place (no free burst), the concurrency gauge is
    /// shared.
    pub fn reconfigured(&self, cap: &RateLimit, now: Instant) -> Limits {
        Limits {
            bandwidth_in: rebucket(
                &self.bandwidth_in,
                cap.bandwidth_in_bps,
                cap.bandwidth_in_burst,
                now,
            ),
            bandwidth_out: rebucket(
                &self.bandwidth_out,
                cap.bandwidth_out_bps,
                cap.bandwidth_out_burst,
                now,
            ),
            new_connections: rebucket(
                &self.new_connections,
                cap.new_connections_per_sec,
                cap.new_connections_burst,
                now,
            ),
            concurrent_max: cap.concurrent_connections,
            concurrent: self.concurrent.clone(),
        }
    }

    /// True when payload must pass through a bucket, which rules out the
    /// zero-copy path.
    pub fn shapes_bandwidth(&self) -> bool {
        self.bandwidth_in.is_some() || self.bandwidth_out.is_some()
    }

    /// Admits a new connection or says why not. An admitted connection
    /// holds a concurrency slot until `release`.
    pub fn admit(&self, now: Instant) -> Result<(), Reject> {
        if let Some(max) = self.concurrent_max {
            let prev = self.concurrent.fetch_add(1, Ordering::AcqRel);
            if prev >= max {
                self.concurrent.fetch_sub(1, Ordering::AcqRel);
                return Err(Reject::Concurrency);
            }
        } else {
            self.concurrent.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(b) = &self.new_connections {
            if !lock(b).try_take(1, now) {
                self.concurrent.fetch_sub(1, Ordering::AcqRel);
                return Err(Reject::NewConnectionRate);
            }
        }
        Ok(())
    }

    pub fn release(&self) {
        self.concurrent.fetch_sub(1, Ordering::AcqRel);
    }

    /// Undoes an `admit` that a later check refused: the slot and the
    /// new-connection token go back.
    fn unadmit(&self) {
        self.release();
        if let Some(b) = &self.new_connections {
            lock(b).refund(1);
        }
    }

    fn bucket(&self, dir: Direction) -> &Bucket {
        match dir {
            Direction::In => &self.bandwidth_in,
            Direction::Out => &self.bandwidth_out,
        }
    }

    /// Charges `bytes` moved in `dir`; returns how long the mover waits.
    pub fn charge(&self, dir: Direction, bytes: u64, now: Instant) -> Duration {
        self.bucket(dir)
            .as_ref()
            .map_or(Duration::ZERO, |b| lock(b).take(bytes, now))
    }

    /// Charges `bytes` only if they fit now (UDP drops what does not).
    pub fn try_charge(&self, dir: Direction, bytes: u64, now: Instant) -> bool {
        self.bucket(dir)
            .as_ref()
            .is_none_or(|b| lock(b).try_take(bytes, now))
    }

    fn refund(&self, dir: Direction, bytes: u64) {
        if let Some(b) = self.bucket(dir) {
            lock(b).refund(bytes);
        }
    }

    pub fn concurrent(&self) -> u64 {
        self.concurrent.load(Ordering::Acquire)
    }
}

/// The limits of one rule or envelope as they are now; a cap change swaps
/// in the `reconfigured` set, which new connections and new charges see.
#[derive(Debug, Default)]
pub struct LimitCell(RwLock<Arc<Limits>>);

impl LimitCell {
    pub fn new(cap: Option<&RateLimit>, now: Instant) -> LimitCell {
        LimitCell(RwLock::new(Arc::new(
            cap.map_or_else(Limits::default, |c| Limits::new(c, now)),
        )))
    }

    pub fn get(&self) -> Arc<Limits> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a new cap (`None`: no cap) without minting a free burst.
    pub fn set(&self, cap: Option<&RateLimit>, now: Instant) {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let next = current.reconfigured(&cap.copied().unwrap_or_default(), now);
        *current = Arc::new(next);
    }
}

/// A connection's (or flow's) place under its owner's and its rule's
/// concurrency caps, released on drop.
#[derive(Debug, Default)]
pub struct Admission {
    held: Vec<Arc<Limits>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        for limits in &self.held {
            limits.release();
        }
    }
}

/// The limits a rule's connections obey: the owner's envelope on this
/// edge, then the rule's own caps.
#[derive(Debug, Clone, Default)]
pub struct RuleLimits {
    pub owner: Arc<LimitCell>,
    pub rule: Arc<LimitCell>,
}

impl RuleLimits {
    fn both(&self) -> [Arc<Limits>; 2] {
        [self.owner.get(), self.rule.get()]
    }

    /// Admits through the owner's envelope first, then the rule's caps; a
    /// refusal by the rule gives back what the owner granted.
    pub fn admit(&self, now: Instant) -> Result<Admission, Reject> {
        let mut admission = Admission::default();
        for limits in self.both() {
            if let Err(reject) = limits.admit(now) {
                for granted in admission.held.drain(..) {
                    granted.unadmit();
                }
                return Err(reject);
            }
            admission.held.push(limits);
        }
        Ok(admission)
    }

    /// True when either set shapes bandwidth (no zero-copy path).
    pub fn shapes_bandwidth(&self) -> bool {
        self.both().iter().any(|l| l.shapes_bandwidth())
    }

    /// Charges both sets for `bytes` moved in `dir`; the mover waits out
    /// the longer debt.
    pub fn charge(&self, dir: Direction, bytes: u64, now: Instant) -> Duration {
        self.both()
            .iter()
            .map(|l| l.charge(dir, bytes, now))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Charges both sets only if `bytes` fit in both now.
    pub fn try_charge(&self, dir: Direction, bytes: u64, now: Instant) -> bool {
        let [owner, rule] = self.both();
        if !owner.try_charge(dir, bytes, now) {
            return false;
        }
        if !rule.try_charge(dir, bytes, now) {
            owner.refund(dir, bytes);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 10, t0);
        assert!(b.try_take(10, t0));
        assert!(!b.try_take(1, t0));
        assert!(b.try_take(5, t0 + ms(50)), "50 ms at 100/s refills 5");
        assert!(!b.try_take(1, t0 + ms(50)));
        assert!(b.try_take(10, t0 + ms(10_000)));
        assert!(!b.try_take(1, t0 + ms(10_000)), "never more than the burst");
    }

    #[test]
    fn debt_is_waited_out() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1000, t0);
        assert_eq!(b.take(1000, t0), Duration::ZERO);
        assert_eq!(b.take(500, t0), ms(500));
        // The next taker waits behind the debt too.
        assert_eq!(b.take(500, t0 + ms(500)), ms(500));
    }

    #[test]
    fn reconfigure_mints_no_free_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 10, t0);
        assert!(b.try_take(10, t0));
        b.reconfigure(1000, 1000, t0);
        assert!(!b.try_take(1, t0), "raising the cap does not refill");
        assert!(
            b.try_take(100, t0 + ms(100)),
            "the new rate applies from now"
        );
        let mut full = TokenBucket::new(1000, 1000, t0);
        full.reconfigure(10, 5, t0);
        assert!(full.try_take(5, t0));
        assert!(!full.try_take(1, t0), "lowering the burst clamps the bank");
    }

    #[test]
    fn admission_table() {
        let t0 = Instant::now();
        let cap = RateLimit {
            concurrent_connections: Some(2),
            new_connections_per_sec: Some(10),
            new_connections_burst: Some(3),
            ..Default::default()
        };
        let l = Limits::new(&cap, t0);
        assert_eq!(l.admit(t0), Ok(()));
        assert_eq!(l.admit(t0), Ok(()));
        assert_eq!(l.admit(t0), Err(Reject::Concurrency));
        l.release();
        assert_eq!(l.admit(t0), Ok(()), "third of the burst of 3");
        l.release();
        assert_eq!(l.admit(t0), Err(Reject::NewConnectionRate));
        assert_eq!(l.concurrent(), 1, "a refused connection holds no slot");
        assert_eq!(l.admit(t0 + ms(100)), Ok(()), "100 ms at 10/s is one more");
        let open = Limits::new(&RateLimit::default(), t0);
        assert!(!open.shapes_bandwidth());
        assert_eq!(open.admit(t0), Ok(()));
        assert_eq!(open.charge(Direction::In, 1 << 30, t0), Duration::ZERO);
    }

    #[test]
    fn bandwidth_charges_by_direction() {
        let t0 = Instant::now();
        let cap = RateLimit {
            bandwidth_in_bps: Some(1000),
            ..Default::default()
        };
        let l = Limits::new(&cap, t0);
        assert!(l.shapes_bandwidth());
        assert_eq!(l.charge(Direction::Out, 10_000, t0), Duration::ZERO);
        assert_eq!(l.charge(Direction::In, 2000, t0), ms(1000));
        assert!(!l.try_charge(Direction::In, 1, t0));
        assert!(l.try_charge(Direction::Out, 1, t0));
    }

    fn cell(cap: RateLimit, t0: Instant) -> Arc<LimitCell> {
        Arc::new(LimitCell::new(Some(&cap), t0))
    }

    #[test]
    fn admission_asks_the_owner_first_and_undoes_it_when_the_rule_refuses() {
        let t0 = Instant::now();
        let one_at_a_time = RateLimit {
            concurrent_connections: Some(1),
            ..Default::default()
        };
        let rated = RateLimit {
            new_connections_per_sec: Some(1),
            new_connections_burst: Some(1),
            ..Default::default()
        };
        // The owner refuses: the rule is not asked, so its token stays.
        let limits = RuleLimits {
            owner: cell(one_at_a_time, t0),
            rule: cell(rated, t0),
        };
        let first = limits.admit(t0).expect("first");
        assert_eq!(limits.admit(t0).unwrap_err(), Reject::Concurrency);
        drop(first);
        assert_eq!(
            limits.owner.get().concurrent(),
            0,
            "the guard released the owner"
        );
        assert_eq!(limits.admit(t0).unwrap_err(), Reject::NewConnectionRate);
        // The rule refuses: the owner's slot and token go back.
        let limits = RuleLimits {
            owner: cell(rated, t0),
            rule: cell(one_at_a_time, t0),
        };
        let held = limits.admit(t0).expect("first");
        assert_eq!(limits.owner.get().concurrent(), 1);
        let other_rule = RuleLimits {
            owner: limits.owner.clone(),
            rule: cell(one_at_a_time, t0),
        };
        assert_eq!(
            limits.admit(t0 + ms(1000)).unwrap_err(),
            Reject::Concurrency
        );
        assert_eq!(limits.owner.get().concurrent(), 1);
        assert!(
            other_rule.admit(t0 + ms(1000)).is_ok(),
            "the owner's token was refunded"
        );
        drop(held);
        assert_eq!(limits.rule.get().concurrent(), 0);
    }

    #[test]
    fn a_cell_change_keeps_the_bank_and_the_gauge() {
        let t0 = Instant::now();
        let cap = |rate| RateLimit {
            new_connections_per_sec: Some(rate),
            bandwidth_in_bps: Some(rate),
            concurrent_connections: Some(5),
            ..Default::default()
        };
        let limits = RuleLimits {
            owner: Arc::default(),
            rule: cell(cap(1), t0),
        };
        let held = limits.admit(t0).expect("the burst of 1");
        assert_eq!(limits.charge(Direction::In, 1, t0), Duration::ZERO);
        limits.rule.set(Some(&cap(100)), t0);
        assert!(limits.admit(t0).is_err(), "a raised cap mints no burst");
        assert!(!limits.try_charge(Direction::In, 1, t0));
        assert_eq!(limits.rule.get().concurrent(), 1, "the gauge carries over");
        drop(held);
        assert_eq!(limits.rule.get().concurrent(), 0);
        limits.rule.set(None, t0);
        assert!(!limits.shapes_bandwidth());
        assert!(limits.admit(t0).is_ok());
    }

    #[test]
    fn try_charge_takes_from_both_or_neither() {
        let t0 = Instant::now();
        let bw = |rate| RateLimit {
            bandwidth_out_bps: Some(rate),
            ..Default::default()
        };
        let limits = RuleLimits {
            owner: cell(bw(1000), t0),
            rule: cell(bw(100), t0),
        };
        assert!(limits.shapes_bandwidth());
        assert!(
            !limits.try_charge(Direction::Out, 500, t0),
            "the rule's 100 do not fit"
        );
        assert!(
            limits.owner.get().try_charge(Direction::Out, 1000, t0),
            "the owner was refunded"
        );
        assert_eq!(
            limits.charge(Direction::Out, 100, t0),
            ms(100),
            "the owner owes 100 at 1000/s"
        );
    }
}
