//! `steward --version`: the crate version plus the git commit when the build had one.

use std::sync::LazyLock;

/// `0.1.0 (commit abc1234)` when `STEWARD_GIT_COMMIT` was set at build time (CI sets
/// it), else `0.1.0`.
pub static VERSION: LazyLock<String> =
    LazyLock::new(|| version_string(env!("CARGO_PKG_VERSION"), option_env!("STEWARD_GIT_COMMIT")));

/// The version text for a version and an optional commit.
pub fn version_string(version: &str, commit: Option<&str>) -> String {
    match commit.map(str::trim).filter(|c| !c.is_empty()) {
        Some(commit) => format!("{version} (commit {commit})"),
        None => version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_is_shown_only_when_known() {
        assert_eq!(version_string("0.1.0", None), "0.1.0");
        assert_eq!(version_string("0.1.0", Some("")), "0.1.0");
        assert_eq!(
            version_string("0.1.0", Some("abc1234")),
            "0.1.0 (commit abc1234)"
        );
    }
}
