//! The lookup the engine uses outside tests: hickory with the system's
//! `/etc/resolv.conf` and `/etc/hosts`, built on first use; getaddrinfo
//! when no resolver configuration can be read.

use super::{Answer, Lookup, LookupFuture};
use hickory_resolver::config::{LookupIpStrategy, ResolveHosts};
use hickory_resolver::TokioResolver;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// getaddrinfo reports no TTL; its answers are kept this long.
const GETADDRINFO_TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct SystemLookup {
    backend: OnceLock<Backend>,
}

enum Backend {
    Hickory(Box<TokioResolver>),
    Getaddrinfo,
}

impl Backend {
    fn from_system() -> Backend {
        let builder = match TokioResolver::builder_tokio() {
            Ok(builder) => builder,
            Err(e) => {
                tracing::warn!(error = %e, "no usable /etc/resolv.conf, resolving names with getaddrinfo");
                return Backend::Getaddrinfo;
            }
        };
        let mut builder = builder;
        let opts = builder.options_mut();
        // Both families, so `prefer_ipv6` can order them per rule.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = ResolveHosts::Always;
        match builder.build() {
            Ok(resolver) => Backend::Hickory(Box::new(resolver)),
            Err(e) => {
                tracing::warn!(error = %e, "DNS resolver not built, resolving names with getaddrinfo");
                Backend::Getaddrinfo
            }
        }
    }
}

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        let backend = self.backend.get_or_init(Backend::from_system);
        match backend {
            Backend::Hickory(resolver) => {
                let resolver = TokioResolver::clone(resolver);
                Box::pin(async move {
                    let found = resolver
                        .lookup_ip(host.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Answer {
                        addrs: found.iter().collect(),
                        ttl: found
                            .valid_until()
                            .saturating_duration_since(Instant::now()),
                    })
                })
            }
            Backend::Getaddrinfo => Box::pin(async move {
                let found = tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| e.to_string())?;
                let mut addrs = Vec::new();
                for a in found {
                    if !addrs.contains(&a.ip()) {
                        addrs.push(a.ip());
                    }
                }
                Ok(Answer {
                    addrs,
                    ttl: GETADDRINFO_TTL,
                })
            }),
        }
    }
}
