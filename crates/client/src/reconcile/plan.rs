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

#[cfg(test)]
mod tests {
    use super::*;
    use portunus_domain::rule::Protocol;

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

        type Rules<'a> = Vec<(&'a str, &'a RuleSpec)>;
        #[rustfmt::skip]
        let table: Vec<(&str, Rules, Rules, [&[&str]; 4])> = vec![
            //                                  keep    start   restart stop
            ("nothing", vec![], vec![], [&[], &[], &[], &[]]),
            ("unchanged", vec![("a", &s1)], vec![("a", &s1)], [&["a"], &[], &[], &[]]),
            ("new", vec![], vec![("a", &s1)], [&[], &["a"], &[], &[]]),
            ("absent", vec![("a", &s1)], vec![], [&[], &[], &[], &["a"]]),
            ("port changed", vec![("a", &s1)], vec![("a", &s2)], [&[], &[], &["a"], &[]]),
            ("protocol changed", vec![("a", &s1)], vec![("a", &s1_udp)], [&[], &[], &["a"], &[]]),
            ("same spec, new id", vec![("a", &s1)], vec![("b", &s1)], [&[], &["b"], &[], &["a"]]),
            ("mixed",
                vec![("c", &s2), ("a", &s1), ("b", &s1), ("e", &s3)],
                vec![("d", &s3), ("b", &s2), ("a", &s1), ("e", &s3)],
                [&["a", "e"], &["d"], &["b"], &["c"]]),
        ];
        for (name, current, desired, [keep, start, restart, stop]) in table {
            let got = plan(current, desired);
            let want = Plan {
                keep: keep.iter().map(|s| s.to_string()).collect(),
                start: start.iter().map(|s| s.to_string()).collect(),
                restart: restart.iter().map(|s| s.to_string()).collect(),
                stop: stop.iter().map(|s| s.to_string()).collect(),
            };
            assert_eq!(got, want, "{name}");
        }
    }
}
