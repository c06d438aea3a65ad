//! The reconciliation diff, as a pure function over rule ids and specs.

use portunus_domain::rule::RuleSpec;
use std::collections::BTreeMap;

/// What to do to go from the running rules to the desired set. Every list
/// is sorted by rule id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Same id, same spec: left alone so their connections live on.
    pub keep: Vec<String>,
    /// Desired but not running (new, or failed earlier and retried now).
    pub start: Vec<String>,
    /// Running with a spec that differs only in its caps: changed in place,
    /// live connections untouched.
    pub update: Vec<String>,
    /// Running with a different spec.
    pub restart: Vec<String>,
    /// Running but no longer desired.
    pub stop: Vec<String>,
}

pub fn plan<'a>(
    current: impl IntoIterator<Item = (&'a str, &'a RuleSpec)>,
    desired: impl IntoIterator<Item = (&'a str, &'a RuleSpec)>,
) -> Plan {
    let current: BTreeMap<&str, &RuleSpec> = current.into_iter().collect();
    let desired: BTreeMap<&str, &RuleSpec> = desired.into_iter().collect();
    let mut plan = Plan::default();
    for (id, want) in &desired {
        let list = match current.get(id) {
            None => &mut plan.start,
            Some(have) if have == want => &mut plan.keep,
            Some(have) if only_caps_differ(have, want) => &mut plan.update,
            Some(_) => &mut plan.restart,
        };
        list.push(id.to_string());
    }
    plan.stop = current
        .keys()
        .filter(|id| !desired.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    plan
}

/// True when `a` and `b` are the same rule but for `rate_limit`.
pub fn only_caps_differ(a: &RuleSpec, b: &RuleSpec) -> bool {
    let uncapped = |s: &RuleSpec| RuleSpec {
        rate_limit: None,
        ..s.clone()
    };
    a.rate_limit != b.rate_limit && uncapped(a) == uncapped(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portunus_domain::rule::{Protocol, RateLimit};

    fn spec(port: u32) -> RuleSpec {
        RuleSpec::single(Protocol::Tcp, port, "127.0.0.1", 9000)
    }

    #[test]
    fn plan_table() {
        let s1 = spec(1001);
        let s2 = spec(1002);
        let s3 = spec(1003);
        let mut s1_udp = s1.clone();
        s1_udp.protocol = Protocol::Udp;
        let capped = |n| RuleSpec {
            rate_limit: Some(RateLimit {
                concurrent_connections: Some(n),
                ..RateLimit::default()
            }),
            ..s1.clone()
        };
        let (s1_cap2, s1_cap3) = (capped(2), capped(3));
        let s2_cap2 = RuleSpec {
            listen_port: 1002,
            ..s1_cap2.clone()
        };

        type Rules<'a> = Vec<(&'a str, &'a RuleSpec)>;
        #[rustfmt::skip]
        let table: Vec<(&str, Rules, Rules, [&[&str]; 5])> = vec![
            //                                  keep    start   update  restart stop
            ("nothing", vec![], vec![], [&[], &[], &[], &[], &[]]),
            ("unchanged", vec![("a", &s1)], vec![("a", &s1)], [&["a"], &[], &[], &[], &[]]),
            ("new", vec![], vec![("a", &s1)], [&[], &["a"], &[], &[], &[]]),
            ("absent", vec![("a", &s1)], vec![], [&[], &[], &[], &[], &["a"]]),
            ("port changed", vec![("a", &s1)], vec![("a", &s2)], [&[], &[], &[], &["a"], &[]]),
            ("protocol changed", vec![("a", &s1)], vec![("a", &s1_udp)], [&[], &[], &[], &["a"], &[]]),
            ("same spec, new id", vec![("a", &s1)], vec![("b", &s1)], [&[], &["b"], &[], &[], &["a"]]),
            ("caps added", vec![("a", &s1)], vec![("a", &s1_cap2)], [&[], &[], &["a"], &[], &[]]),
            ("caps changed", vec![("a", &s1_cap2)], vec![("a", &s1_cap3)], [&[], &[], &["a"], &[], &[]]),
            ("caps removed", vec![("a", &s1_cap2)], vec![("a", &s1)], [&[], &[], &["a"], &[], &[]]),
            ("caps and port changed", vec![("a", &s1_cap3)], vec![("a", &s2_cap2)], [&[], &[], &[], &["a"], &[]]),
            ("mixed",
                vec![("c", &s2), ("a", &s1), ("b", &s1), ("e", &s3), ("f", &s1)],
                vec![("d", &s3), ("b", &s2), ("a", &s1), ("e", &s3), ("f", &s1_cap3)],
                [&["a", "e"], &["d"], &["f"], &["b"], &["c"]]),
        ];
        for (name, current, desired, [keep, start, update, restart, stop]) in table {
            let got = plan(current, desired);
            let want = Plan {
                keep: keep.iter().map(|s| s.to_string()).collect(),
                start: start.iter().map(|s| s.to_string()).collect(),
                update: update.iter().map(|s| s.to_string()).collect(),
                restart: restart.iter().map(|s| s.to_string()).collect(),
                stop: stop.iter().map(|s| s.to_string()).collect(),
            };
            assert_eq!(got, want, "{name}");
        }
    }
}
