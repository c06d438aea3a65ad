#![forbid(unsafe_code)]
//! What a Portunus binary says about itself. The build stamp: the release,
//! the git commit it was built from and the day it was built; both
//! binaries print it on `--version`, the server answers it on
//! `/v1/auth/status`, and the two exchange it on the control stream. And
//! its documentation: shell completions and man pages, generated from the
//! binary's clap definitions (`docs`).

mod docs;

pub use docs::{completion_script, man_pages, DocsCommand};

/// The release, from the workspace's Cargo.toml.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

/// Short git commit of the build, or "unknown" when built outside git.
pub const COMMIT: &str = env!("PORTUNUS_COMMIT");

/// UTC day of the build (`YYYY-MM-DD`), or `SOURCE_DATE_EPOCH`'s day.
pub const BUILD_DATE: &str = env!("PORTUNUS_BUILD_DATE");

/// `0.1.0 (commit 1a2b3c4d5e, built 2026-12-02)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PORTUNUS_COMMIT"),
    ", built ",
    env!("PORTUNUS_BUILD_DATE"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_every_part() {
        assert!(LONG.starts_with(RELEASE), "{LONG}");
        assert!(LONG.contains(COMMIT) && LONG.contains(BUILD_DATE), "{LONG}");
        let date: Vec<&str> = BUILD_DATE.split('-').collect();
        assert_eq!(date.len(), 3, "{BUILD_DATE}");
        assert!(COMMIT == "unknown" || COMMIT.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
