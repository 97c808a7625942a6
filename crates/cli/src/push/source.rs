//! The push source: who pushed a key, stored in the key's KV `Flags`.
//!
//! A source is a name (`--source`, or derived from git: `remote.origin.url` + `#` + the
//! directory relative to the repository root; outside git, the canonical directory
//! path). Its marker is a stable 64-bit hash: the first 8 bytes of
//! `SHA-256("steward-push-source/v1:" + name)`, big-endian, with 0 mapped to 1 (0 is
//! what keys written by anything else carry). `--prune` only deletes keys whose Flags
//! equal this marker, so two repositories (or two directories of one repository)
//! pushing under the same prefix never prune each other's specs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

/// Domain separator of the hash, versioned so the scheme can change explicitly.
const DOMAIN: &str = "steward-push-source/v1:";

/// The KV `Flags` marker of a source name. Never 0.
pub fn source_flags(name: &str) -> u64 {
    let digest = Sha256::digest(format!("{DOMAIN}{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    match u64::from_be_bytes(bytes) {
        0 => 1,
        n => n,
    }
}

/// The source name from git facts: `<origin>#<dir relative to the repo root>`; without
/// an origin the repository root path stands in for it; outside git, the canonical
/// directory. `.` is the repository root itself. Separators are always `/`.
pub fn source_name(
    canonical_dir: &Path,
    repo_root: Option<&Path>,
    origin_url: Option<&str>,
) -> String {
    let Some(root) = repo_root else {
        return canonical_dir.display().to_string();
    };
    let relative = canonical_dir
        .strip_prefix(root)
        .map(|r| {
            let parts: Vec<String> = r
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.is_empty() {
                ".".to_owned()
            } else {
                parts.join("/")
            }
        })
        .unwrap_or_else(|_| canonical_dir.display().to_string());
    let origin = origin_url
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map_or_else(|| root.display().to_string(), str::to_owned);
    format!("{origin}#{relative}")
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The default source name of `dir` (see the module docs).
///
/// # Errors
/// The directory cannot be canonicalised.
pub fn default_source(dir: &Path) -> anyhow::Result<String> {
    let canonical = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let root = git(&canonical, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .and_then(|r| r.canonicalize().ok());
    let origin = root
        .as_ref()
        .and_then(|r| git(r, &["config", "--get", "remote.origin.url"]));
    Ok(source_name(&canonical, root.as_deref(), origin.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_stable_and_distinct() {
        // Pinned: changing the scheme would orphan every pushed key's marker.
        assert_eq!(source_flags("ci"), source_flags("ci"));
        assert_eq!(source_flags("ci"), 0x973b460d10b7ba9b);
        assert_ne!(source_flags("repo-a#deploy"), source_flags("repo-b#deploy"));
        assert_ne!(source_flags("x"), 0);
    }

    #[test]
    fn names_combine_origin_and_relative_dir() {
        let root = Path::new("/src/platform");
        assert_eq!(
            source_name(
                Path::new("/src/platform/deploy/examples"),
                Some(root),
                Some("git@example:acme/platform.git")
            ),
            "git@example:acme/platform.git#deploy/examples"
        );
        assert_eq!(
            source_name(root, Some(root), Some("https://x/y.git")),
            "https://x/y.git#."
        );
        assert_eq!(
            source_name(Path::new("/src/platform/specs"), Some(root), None),
            "/src/platform#specs"
        );
        assert_eq!(
            source_name(Path::new("/tmp/specs"), None, None),
            "/tmp/specs"
        );
    }
}
