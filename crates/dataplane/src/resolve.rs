//! Turns a target host into the addresses to dial. IP literals and
//! `localhost` names never reach a resolver; other names go through one
//! engine-wide cache (`cache.rs`) in front of the system's DNS
//! (`system.rs`). Concurrent first lookups of one name share one query.

mod cache;
mod system;
#[cfg(test)]
mod tests;

use cache::{Addrs, DnsCache};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// One successful lookup: the addresses in resolver order, and how long
/// the answer says it stays valid.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) ttl: Duration,
}

pub(crate) type LookupFuture = Pin<Box<dyn Future<Output = Result<Answer, String>> + Send>>;

/// Where answers come from: the system resolver, or a fake in tests. An
/// error is the resolver's message.
pub(crate) trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> LookupFuture;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("lookup of {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
}

type Flight = Arc<OnceCell<Result<Addrs, ResolveError>>>;

/// Engine-wide, so every rule shares one cache.
#[derive(Clone)]
pub(crate) struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    lookup: Box<dyn Lookup>,
    clock: fn() -> Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cache: DnsCache,
    /// Lookups under way, by name; later askers wait on the same cell.
    in_flight: HashMap<String, Flight>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(Box::<system::SystemLookup>::default(), Instant::now)
    }
}

impl Resolver {
    pub(crate) fn new(lookup: Box<dyn Lookup>, clock: fn() -> Instant) -> Self {
        Resolver {
            inner: Arc::new(Inner {
                lookup,
                clock,
                state: Mutex::default(),
            }),
        }
    }

    /// Every address of `host`, in the order to try them: one family first
    /// (IPv6 when `prefer_ipv6`, else IPv4), each family in resolver order.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
        prefer_ipv6: bool,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let ips = match without_lookup(host) {
            Some(ips) => ips,
            None => self.cached(host).await?.to_vec(),
        };
        let addrs = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        Ok(family_order(addrs, prefer_ipv6))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh cached answer, or the answer of the one lookup under way for
    /// `host`, started here when there is none.
    async fn cached(&self, host: &str) -> Result<Addrs, ResolveError> {
        let flight = {
            let mut state = self.state();
            if let Some(addrs) = state.cache.fresh(host, (self.inner.clock)()) {
                return Ok(addrs);
            }
            state.in_flight.entry(host.to_string()).or_default().clone()
        };
        // If the task running the lookup is cancelled, the next waiter runs
        // it instead; everyone gets the one result.
        flight
            .get_or_init(|| self.fly(host, flight.clone()))
            .await
            .clone()
    }

    async fn fly(&self, host: &str, flight: Flight) -> Result<Addrs, ResolveError> {
        let answer = self.inner.lookup.lookup(host.to_string()).await;
        let now = (self.inner.clock)();
        let mut state = self.state();
        if state
            .in_flight
            .get(host)
            .is_some_and(|f| Arc::ptr_eq(f, &flight))
        {
            state.in_flight.remove(host);
        }
        let failure = match answer {
            Ok(a) if !a.addrs.is_empty() => {
                return Ok(state.cache.insert(host, a.addrs, a.ttl, now));
            }
            Ok(_) => ResolveError::NoAddresses {
                host: host.to_string(),
            },
            Err(reason) => ResolveError::Lookup {
                host: host.to_string(),
                reason,
            },
        };
        match state.cache.stale(host, now) {
            Some(stale) => {
                tracing::debug!(host, error = %failure, "lookup failed, serving the expired answer");
                Ok(stale)
            }
            None => Err(failure),
        }
    }
}

/// Addresses known without asking anyone: IP literals, and the loopback
/// addresses for `localhost` and names under it (RFC 6761), which must
/// work even where /etc/hosts or DNS do not say so.
pub(crate) fn without_lookup(host: &str) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let localhost = host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|i| host.get(i..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"));
    localhost.then(|| vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()])
}

/// Stable partition: the preferred family first, order kept within each.
fn family_order(mut addrs: Vec<SocketAddr>, prefer_ipv6: bool) -> Vec<SocketAddr> {
    addrs.sort_by_key(|a| a.is_ipv6() != prefer_ipv6);
    addrs
}
