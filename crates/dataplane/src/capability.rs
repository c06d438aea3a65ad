//! What this engine can do for a rule: which copy path a connection may
//! take. Pure decisions, tested with tables.

use crate::engine::CopyMode;
use portunus_domain::rule::RateLimit;

/// May a connection of this rule move its bytes with `splice(2)`? Only
/// where the kernel has it, unless the operator forced the userspace copy,
/// and never under a bandwidth cap: throttling needs to see every chunk.
pub(crate) fn may_splice(
    splice_built: bool,
    mode: CopyMode,
    rate_limit: Option<&RateLimit>,
) -> bool {
    let bandwidth_capped =
        rate_limit.is_some_and(|r| r.bandwidth_in_bps.is_some() || r.bandwidth_out_bps.is_some());
    splice_built && mode == CopyMode::Auto && !bandwidth_capped
}

/// Whether this build has the splice pump at all.
pub(crate) const SPLICE_BUILT: bool = cfg!(target_os = "linux");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_splice_table() {
        let bw_in = RateLimit {
            bandwidth_in_bps: Some(1_000),
            ..RateLimit::default()
        };
        let bw_out = RateLimit {
            bandwidth_out_bps: Some(1_000),
            ..RateLimit::default()
        };
        let conns_only = RateLimit {
            new_connections_per_sec: Some(5),
            concurrent_connections: Some(5),
            ..RateLimit::default()
        };
        let cases = [
            (true, CopyMode::Auto, None, true),
            (false, CopyMode::Auto, None, false),
            (true, CopyMode::Userspace, None, false),
            (true, CopyMode::Auto, Some(&bw_in), false),
            (true, CopyMode::Auto, Some(&bw_out), false),
            (true, CopyMode::Auto, Some(&conns_only), true),
            (false, CopyMode::Userspace, Some(&bw_in), false),
        ];
        for (built, mode, limit, want) in cases {
            assert_eq!(
                may_splice(built, mode, limit),
                want,
                "built={built} mode={mode:?} limit={limit:?}"
            );
        }
    }
}
