//! Which bundle the daemon runs with, enrolling first when it has none and
//! was given a one-time URI (`PORTUNUS_ENROLL_URI`, for containers whose
//! only configuration is their environment). An existing bundle always
//! wins, so a restarted container does not spend a used code again.

use crate::bundle::{self, BundleError};
use std::ffi::OsString;
use std::path::PathBuf;

/// What the daemon does before it starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// Run with this bundle.
    Use(PathBuf),
    /// Redeem the URI into this path, then run with it.
    Enroll(PathBuf),
    /// No bundle and no URI.
    Missing(Vec<PathBuf>),
}

/// Decides from `--bundle`, the search path and whether a URI was given.
/// `exists` is injected so the decision is tested without files.
pub fn plan(
    explicit: Option<PathBuf>,
    search: Vec<PathBuf>,
    has_uri: bool,
    exists: impl Fn(&PathBuf) -> bool,
) -> Start {
    if let Some(path) = explicit {
        // A named bundle that is not there is enrolled into when a URI is
        // given; otherwise loading it reports why it cannot be read.
        return if has_uri && !exists(&path) {
            Start::Enroll(path)
        } else {
            Start::Use(path)
        };
    }
    if let Some(found) = search.iter().find(|p| exists(p)) {
        return Start::Use(found.clone());
    }
    match (has_uri, search.first()) {
        // The first place the daemon looks is where it writes, so the next
        // start finds it: $PORTUNUS_CLIENT_BUNDLE when set (a volume in a
        // container), else the configuration directory.
        (true, Some(first)) => Start::Enroll(first.clone()),
        _ => Start::Missing(search),
    }
}

/// The bundle to run with, enrolling first when [`plan`] says so.
pub async fn bundle_path(
    explicit: Option<PathBuf>,
    uri: Option<&str>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, String> {
    let uri = uri.filter(|u| !u.trim().is_empty());
    let search = bundle::search_paths(&env);
    match plan(explicit, search, uri.is_some(), |p| p.is_file()) {
        Start::Use(path) => Ok(path),
        Start::Missing(tried) => Err(BundleError::NotFound { tried }.to_string()),
        Start::Enroll(path) => {
            let uri = uri.unwrap_or_default();
            tracing::info!(bundle = %path.display(), "no credential bundle; enrolling with the given URI");
            crate::enroll::run(uri, Some(path), env)
                .await
                .map_err(|e| format!("enrollment failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn an_existing_bundle_wins_and_a_uri_fills_the_gap() {
        let search = || vec![p("/env/b.json"), p("/home/b.json"), p("./b.json")];
        let given = || Some(p("/given.json"));
        // (--bundle, URI given, files that exist, what happens)
        let cases = [
            (
                None,
                true,
                vec!["/home/b.json"],
                Start::Use(p("/home/b.json")),
            ),
            (
                None,
                false,
                vec!["/home/b.json"],
                Start::Use(p("/home/b.json")),
            ),
            (None, true, vec![], Start::Enroll(p("/env/b.json"))),
            (None, false, vec![], Start::Missing(search())),
            (
                given(),
                true,
                vec!["/given.json"],
                Start::Use(p("/given.json")),
            ),
            (
                given(),
                true,
                vec!["/home/b.json"],
                Start::Enroll(p("/given.json")),
            ),
            (given(), false, vec![], Start::Use(p("/given.json"))),
        ];
        for (i, (explicit, uri, files, want)) in cases.into_iter().enumerate() {
            let exists = |q: &PathBuf| files.iter().any(|f| p(f) == *q);
            assert_eq!(plan(explicit, search(), uri, exists), want, "case {i}");
        }
    }
}
