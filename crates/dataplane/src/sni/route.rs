//! Which rule of an SNI port takes a connection: an exact pattern beats a
//! single-label wildcard, which beats the port's fallback rule.

use std::collections::HashMap;

/// The routes of one port, keyed by pattern. `M` names a member rule.
#[derive(Debug, Clone)]
pub(crate) struct RouteTable<M> {
    exact: HashMap<String, M>,
    /// `*.example.com` is stored as `example.com`.
    wildcard: HashMap<String, M>,
    fallback: Option<M>,
}

impl<M> Default for RouteTable<M> {
    fn default() -> Self {
        RouteTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            fallback: None,
        }
    }
}

/// Why a member cannot join a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Taken {
    Pattern(String),
    Fallback,
}

impl<M: Copy> RouteTable<M> {
    /// Adds `member` for `pattern` (`None` for the fallback). Patterns are
    /// compared as given: the domain lowercases them before they get here.
    pub(crate) fn insert(&mut self, pattern: Option<&str>, member: M) -> Result<(), Taken> {
        let slot = match pattern {
            None => &mut self.fallback,
            Some(p) => {
                let (map, key) = match p.strip_prefix("*.") {
                    Some(suffix) => (&mut self.wildcard, suffix),
                    None => (&mut self.exact, p),
                };
                if map.contains_key(key) {
                    return Err(Taken::Pattern(p.to_string()));
                }
                map.insert(key.to_string(), member);
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(Taken::Fallback);
        }
        *slot = Some(member);
        Ok(())
    }

    /// True when some member routes by pattern, so connections must be
    /// peeked; a port with only a fallback forwards without looking.
    pub(crate) fn has_patterns(&self) -> bool {
        !self.exact.is_empty() || !self.wildcard.is_empty()
    }

    pub(crate) fn fallback(&self) -> Option<M> {
        self.fallback
    }

    /// The member for a connection whose ClientHello named `server_name`
    /// (already lowercased); `None` when no pattern matches and the port
    /// has no fallback.
    pub(crate) fn route(&self, server_name: Option<&str>) -> Option<M> {
        let Some(name) = server_name else {
            return self.fallback;
        };
        if let Some(&m) = self.exact.get(name) {
            return Some(m);
        }
        // A wildcard covers exactly one label: `a.example.com` matches
        // `*.example.com`, `a.b.example.com` and `example.com` do not.
        let parent = name.split_once('.').map(|(_, parent)| parent);
        parent
            .and_then(|p| self.wildcard.get(p).copied())
            .or(self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[Option<&str>]) -> RouteTable<usize> {
        let mut t = RouteTable::default();
        for (i, p) in patterns.iter().enumerate() {
            t.insert(*p, i).unwrap();
        }
        t
    }

    #[test]
    fn route_table() {
        let full = table(&[
            Some("api.example.com"),
            Some("*.example.com"),
            None,
            Some("*.b.example.com"),
        ]);
        let no_fallback = table(&[Some("api.example.com"), Some("*.example.com")]);
        let fallback_only = table(&[None]);
        let cases: [(&RouteTable<usize>, Option<&str>, Option<usize>); 15] = [
            (&full, Some("api.example.com"), Some(0)),
            (&full, Some("www.example.com"), Some(1)),
            (&full, Some("x.b.example.com"), Some(3)),
            (&full, Some("a.x.example.com"), Some(2)),
            (&full, Some("example.com"), Some(2)),
            (&full, Some("other.org"), Some(2)),
            (&full, Some("localhost"), Some(2)),
            (&full, None, Some(2)),
            (&no_fallback, Some("api.example.com"), Some(0)),
            (&no_fallback, Some("b.example.com"), Some(1)),
            (&no_fallback, Some("a.b.example.com"), None),
            (&no_fallback, Some("example.com"), None),
            (&no_fallback, None, None),
            (&fallback_only, Some("api.example.com"), Some(0)),
            (&fallback_only, None, Some(0)),
        ];
        for (t, name, want) in cases {
            assert_eq!(t.route(name), want, "{name:?}");
        }
        assert!(full.has_patterns() && no_fallback.has_patterns());
        assert!(!fallback_only.has_patterns());
    }

    #[test]
    fn a_pattern_or_the_fallback_is_taken_once() {
        let mut t = table(&[Some("a.example.com"), Some("*.example.com"), None]);
        assert_eq!(
            t.insert(Some("a.example.com"), 9),
            Err(Taken::Pattern("a.example.com".into()))
        );
        assert_eq!(
            t.insert(Some("*.example.com"), 9),
            Err(Taken::Pattern("*.example.com".into()))
        );
        assert_eq!(t.insert(None, 9), Err(Taken::Fallback));
        // The exact name and the wildcard over its parent are different keys.
        assert_eq!(t.insert(Some("example.com"), 9), Ok(()));
        assert_eq!(t.route(Some("example.com")), Some(9));
    }
}
