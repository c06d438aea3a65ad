//! Turns a target host into the addresses to dial. This is the seam where
//! a caching resolver plugs in: callers only see `Resolver::resolve`.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// Engine-wide, so a cache added here is shared by all rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolver {}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("lookup of {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
}

impl Resolver {
    /// Every address of `host`, in the order to try them: one family first
    /// (IPv6 when `prefer_ipv6`, else IPv4), each family in resolver order.
    /// IP literals are returned as they are, without a lookup.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
        prefer_ipv6: bool,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?;
        let addrs = family_order(found.collect(), prefer_ipv6);
        if addrs.is_empty() {
            return Err(ResolveError::NoAddresses {
                host: host.to_string(),
            });
        }
        Ok(addrs)
    }
}

/// Stable partition: the preferred family first, order kept within each.
fn family_order(mut addrs: Vec<SocketAddr>, prefer_ipv6: bool) -> Vec<SocketAddr> {
    addrs.sort_by_key(|a| a.is_ipv6() != prefer_ipv6);
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_order_table() {
        let a1: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let a2: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let b1: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        let b2: SocketAddr = "[2001:db8::2]:80".parse().unwrap();
        let cases: [(Vec<SocketAddr>, bool, Vec<SocketAddr>); 5] = [
            (vec![b1, a1, b2, a2], false, vec![a1, a2, b1, b2]),
            (vec![b1, a1, b2, a2], true, vec![b1, b2, a1, a2]),
            (vec![a2, a1], true, vec![a2, a1]),
            (vec![b2, b1], false, vec![b2, b1]),
            (vec![], true, vec![]),
        ];
        for (input, prefer_ipv6, want) in cases {
            assert_eq!(
                family_order(input.clone(), prefer_ipv6),
                want,
                "{input:?} v6={prefer_ipv6}"
            );
        }
    }

    #[tokio::test]
    async fn literals_skip_the_lookup() {
        let r = Resolver::default();
        assert_eq!(
            r.resolve("127.0.0.1", 7, false).await.unwrap(),
            vec!["127.0.0.1:7".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            r.resolve("::1", 7, false).await.unwrap(),
            vec!["[::1]:7".parse::<SocketAddr>().unwrap()]
        );
    }
}
