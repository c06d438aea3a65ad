//! The answers the resolver keeps: bounded, with clamped TTLs and a grace
//! period in which an expired answer still serves when a fresh lookup
//! fails. Pure: callers pass the time in.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers are kept at least this long, so a zero-TTL name cannot turn
/// every connection into a query.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(5);
/// And at most this long, so a moved target is found within minutes.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(300);
/// How long after expiry an answer still serves while lookups fail.
pub(crate) const STALE_GRACE: Duration = Duration::from_secs(30);
/// Names kept at once; the oldest answer leaves first.
pub(crate) const CAPACITY: usize = 1024;

pub(crate) type Addrs = Arc<[IpAddr]>;

pub(crate) fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_TTL, MAX_TTL)
}

#[derive(Debug)]
struct Entry {
    addrs: Addrs,
    expires: Instant,
    /// Insertion order; the smallest is evicted first.
    seq: u64,
}

#[derive(Debug)]
pub(crate) struct DnsCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
    by_age: BTreeMap<u64, String>,
    next_seq: u64,
}

impl Default for DnsCache {
    fn default() -> Self {
        DnsCache::with_capacity(CAPACITY)
    }
}

impl DnsCache {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        DnsCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The answer for `host` while its TTL runs.
    pub(crate) fn fresh(&self, host: &str, now: Instant) -> Option<Addrs> {
        let e = self.entries.get(host)?;
        (now < e.expires).then(|| e.addrs.clone())
    }

    /// The answer for `host` while its TTL or the grace after it runs: what
    /// a failed lookup may still hand out.
    pub(crate) fn stale(&self, host: &str, now: Instant) -> Option<Addrs> {
        let e = self.entries.get(host)?;
        (now < e.expires + STALE_GRACE).then(|| e.addrs.clone())
    }

    /// Stores a new answer for `host`, replacing an old one, and evicts the
    /// oldest answers beyond the capacity.
    pub(crate) fn insert(
        &mut self,
        host: &str,
        addrs: Vec<IpAddr>,
        ttl: Duration,
        now: Instant,
    ) -> Addrs {
        let addrs: Addrs = addrs.into();
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            addrs: addrs.clone(),
            expires: now + clamp_ttl(ttl),
            seq,
        };
        if let Some(old) = self.entries.insert(host.to_string(), entry) {
            self.by_age.remove(&old.seq);
        }
        self.by_age.insert(seq, host.to_string());
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(last: u8) -> Vec<IpAddr> {
        vec![IpAddr::from([10, 0, 0, last])]
    }

    #[test]
    fn clamp_ttl_table() {
        let s = Duration::from_secs;
        let cases = [
            (s(0), s(5)),
            (s(1), s(5)),
            (s(5), s(5)),
            (s(60), s(60)),
            (s(300), s(300)),
            (s(301), s(300)),
            (s(86_400), s(300)),
        ];
        for (ttl, want) in cases {
            assert_eq!(clamp_ttl(ttl), want, "{ttl:?}");
        }
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = DnsCache::default();
        c.insert("a.test", ips(1), s(60), t0);
        let cases = [
            (s(0), true, true),
            (s(59), true, true),
            (s(60), false, true),
            (s(89), false, true),
            (s(90), false, false),
        ];
        for (after, fresh, stale) in cases {
            let now = t0 + after;
            assert_eq!(
                c.fresh("a.test", now).is_some(),
                fresh,
                "fresh at {after:?}"
            );
            assert_eq!(
                c.stale("a.test", now).is_some(),
                stale,
                "stale at {after:?}"
            );
        }
        assert!(c.fresh("b.test", t0).is_none() && c.stale("b.test", t0).is_none());
    }

    #[test]
    fn ttls_are_clamped_on_insert() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = DnsCache::default();
        c.insert("zero.test", ips(1), s(0), t0);
        c.insert("day.test", ips(2), s(86_400), t0);
        assert!(c.fresh("zero.test", t0 + s(4)).is_some());
        assert!(c.fresh("zero.test", t0 + s(5)).is_none());
        assert!(c.fresh("day.test", t0 + s(299)).is_some());
        assert!(c.fresh("day.test", t0 + s(300)).is_none());
    }

    #[test]
    fn oldest_answer_is_evicted_at_capacity() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut c = DnsCache::with_capacity(3);
        for (i, host) in ["a", "b", "c"].iter().enumerate() {
            c.insert(host, ips(i as u8), ttl, t0);
        }
        // Refreshing `a` makes `b` the oldest.
        c.insert("a", ips(9), ttl, t0);
        c.insert("d", ips(4), ttl, t0);
        assert_eq!(c.len(), 3);
        assert!(c.fresh("b", t0).is_none(), "b was the oldest");
        for host in ["a", "c", "d"] {
            assert!(c.fresh(host, t0).is_some(), "{host} kept");
        }
        assert_eq!(&*c.fresh("a", t0).unwrap(), &ips(9)[..]);
        for i in 0..100u8 {
            c.insert(&format!("n{i}"), ips(i), ttl, t0);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.by_age.len(), 3);
    }
}
