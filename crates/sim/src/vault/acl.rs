//! Path capability evaluation, as `vault/acl.go` (`NewACL`, `AllowOperation`,
//! `CheckAllowedFromNonExactPaths`) does it:
//!
//! - identical patterns from several policies are merged: capabilities are unioned,
//!   and a `deny` anywhere leaves only `deny` for that pattern;
//! - an exact pattern wins outright; LIST also tries the path without its trailing
//!   slash; otherwise the longest `*` prefix and every matching `+` pattern compete
//!   and the most specific wins (first `+`/`*` later, not a prefix, fewer `+`
//!   segments, longer, lexicographically greater);
//! - `deny` on the winning pattern refuses everything, sudo included; a `deny` on a
//!   less specific pattern does not override a more specific grant.

use super::api::Op;
use super::policy::{Policy, cap};
use std::collections::HashMap;

/// The merged rules of a token's policies.
#[derive(Debug, Default, Clone)]
pub(crate) struct Acl {
    root: bool,
    exact: HashMap<String, u32>,
    prefix: HashMap<String, u32>,
    segment: HashMap<String, u32>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The operation is permitted.
    pub allowed: bool,
    /// The matching rule carries `sudo` (or the token is root).
    pub sudo: bool,
}

impl Acl {
    /// The ACL of the `root` policy: everything.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Merges the rules of `policies`.
    pub fn build<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Acl {
        let mut acl = Acl::default();
        for policy in policies {
            for rule in &policy.paths {
                let table = if rule.has_segment_wildcards {
                    &mut acl.segment
                } else if rule.is_prefix {
                    &mut acl.prefix
                } else {
                    &mut acl.exact
                };
                // Segment-wildcard rules keep their trailing `*` in the key.
                let entry = table.entry(rule.path.clone()).or_insert(0);
                if *entry & cap::DENY != 0 {
                    continue;
                }
                if rule.caps & cap::DENY != 0 {
                    *entry = cap::DENY;
                } else {
                    *entry |= rule.caps;
                }
            }
        }
        acl
    }

    /// `AllowOperation` for one request path (without a leading `/`; LIST paths end
    /// with `/`).
    pub fn check(&self, op: Op, path: &str) -> Decision {
        if self.root {
            return Decision {
                allowed: true,
                sudo: true,
            };
        }
        let path = path.trim_start_matches('/');
        let caps = self.matching_caps(op, path);
        let Some(caps) = caps else {
            return Decision {
                allowed: false,
                sudo: false,
            };
        };
        let needed = match op {
            Op::Read => cap::READ,
            Op::List => cap::LIST,
            Op::Update => cap::UPDATE,
            Op::Create => cap::CREATE,
            Op::Delete => cap::DELETE,
            Op::Patch => cap::PATCH,
            Op::Header => 0,
        };
        Decision {
            allowed: needed != 0 && caps & needed != 0,
            sudo: caps & cap::SUDO != 0,
        }
    }

    /// The capability names for `path` (as `sys/capabilities-self` would list them).
    pub fn capabilities(&self, path: &str) -> Vec<&'static str> {
        if self.root {
            return vec!["root"];
        }
        let caps = self.matching_caps(Op::List, path).unwrap_or(0);
        let names = [
            (cap::SUDO, "sudo"),
            (cap::READ, "read"),
            (cap::LIST, "list"),
            (cap::UPDATE, "update"),
            (cap::DELETE, "delete"),
            (cap::CREATE, "create"),
            (cap::PATCH, "patch"),
            (cap::SUBSCRIBE, "subscribe"),
            (cap::RECOVER, "recover"),
        ];
        let out: Vec<&'static str> = names
            .iter()
            .filter(|(bit, _)| caps & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if caps & cap::DENY != 0 || out.is_empty() {
            return vec!["deny"];
        }
        out
    }

    fn matching_caps(&self, op: Op, path: &str) -> Option<u32> {
        if let Some(c) = self.exact.get(path) {
            return Some(*c);
        }
        if op == Op::List {
            let trimmed = path.strip_suffix('/').unwrap_or(path);
            if let Some(c) = self.exact.get(trimmed) {
                return Some(*c);
            }
            if path.ends_with('/')
                && let Some(c) = self.non_exact(trimmed)
            {
                return Some(c);
            }
        }
        self.non_exact(path)
    }

    /// `CheckAllowedFromNonExactPaths` (not in bare-mount mode).
    fn non_exact(&self, path: &str) -> Option<u32> {
        struct Candidate<'a> {
            first_wildcard: usize,
            wildcards: usize,
            is_prefix: bool,
            pattern: &'a str,
            caps: u32,
        }
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        let longest_prefix = self
            .prefix
            .iter()
            .filter(|(p, _)| path.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len());
        if let Some((p, caps)) = longest_prefix {
            if self.segment.is_empty() {
                return Some(*caps);
            }
            candidates.push(Candidate {
                first_wildcard: p.len(),
                wildcards: 0,
                is_prefix: true,
                pattern: p,
                caps: *caps,
            });
        }
        if self.segment.is_empty() {
            return None;
        }
        let parts: Vec<&str> = path.split('/').collect();
        'patterns: for (full, caps) in &self.segment {
            if full.is_empty() {
                continue;
            }
            let first_wildcard = full.find('+').unwrap_or(0);
            let (pattern, is_prefix) = match full.strip_suffix('*') {
                Some(p) => (p, true),
                None => (full.as_str(), false),
            };
            let acl_parts: Vec<&str> = pattern.split('/').collect();
            if parts.len() < acl_parts.len() {
                continue;
            }
            if !is_prefix && acl_parts.len() != parts.len() {
                continue;
            }
            let mut wildcards = 0;
            for (i, acl_part) in acl_parts.iter().enumerate() {
                if *acl_part == "+" {
                    wildcards += 1;
                } else if *acl_part == parts[i]
                    || (is_prefix && i == acl_parts.len() - 1 && parts[i].starts_with(acl_part))
                {
                } else {
                    continue 'patterns;
                }
            }
            candidates.push(Candidate {
                first_wildcard,
                wildcards,
                is_prefix,
                pattern,
                caps: *caps,
            });
        }
        candidates
            .into_iter()
            .max_by(|a, b| {
                a.first_wildcard
                    .cmp(&b.first_wildcard)
                    .then_with(|| b.is_prefix.cmp(&a.is_prefix))
                    .then_with(|| b.wildcards.cmp(&a.wildcards))
                    .then_with(|| a.pattern.len().cmp(&b.pattern.len()))
                    .then_with(|| a.pattern.cmp(b.pattern))
            })
            .map(|c| c.caps)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::policy::parse;

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts.iter().map(|t| parse(t).unwrap()).collect();
        Acl::build(&policies)
    }

    #[test]
    fn exact_beats_glob_and_longer_prefix_wins() {
        let a = acl(&[r#"
            path "secret/*" { capabilities = ["read"] }
            path "secret/data/*" { capabilities = ["deny"] }
            path "secret/data/open" { capabilities = ["update"] }
        "#]);
        assert!(a.check(Op::Read, "secret/other").allowed);
        assert!(!a.check(Op::Read, "secret/data/x").allowed);
        assert!(a.check(Op::Update, "secret/data/open").allowed);
        assert!(!a.check(Op::Read, "secret/data/open").allowed);
    }

    #[test]
    fn plus_matches_one_segment_and_specificity_orders_candidates() {
        let a = acl(&[r#"
            path "secret/+/teamb" { capabilities = ["read"] }
            path "secret/*" { capabilities = ["list"] }
            path "secret/a/+" { capabilities = ["update"] }
        "#]);
        assert!(a.check(Op::Read, "secret/x/teamb").allowed);
        assert!(!a.check(Op::Read, "secret/x/y/teamb").allowed);
        // secret/a/+ (first wildcard later) beats secret/+/teamb.
        assert!(a.check(Op::Update, "secret/a/teamb").allowed);
        assert!(!a.check(Op::Read, "secret/a/teamb").allowed);
        // Only the prefix rule matches a two-segment path.
        assert!(a.check(Op::List, "secret/z").allowed);
    }

    #[test]
    fn identical_patterns_union_and_deny_wins_among_them() {
        let a = acl(&[
            r#"path "kv/x" { capabilities = ["read"] }"#,
            r#"path "kv/x" { capabilities = ["update"] }"#,
            r#"path "kv/y" { capabilities = ["read", "sudo"] }"#,
            r#"path "kv/y" { capabilities = ["deny"] }"#,
        ]);
        assert!(a.check(Op::Read, "kv/x").allowed && a.check(Op::Update, "kv/x").allowed);
        let d = a.check(Op::Read, "kv/y");
        assert!(!d.allowed && !d.sudo);
    }

    #[test]
    fn list_falls_back_to_the_path_without_slash() {
        let a = acl(&[r#"path "sys/policies/acl" { capabilities = ["list"] }"#]);
        assert!(a.check(Op::List, "sys/policies/acl/").allowed);
        assert!(!a.check(Op::Read, "sys/policies/acl").allowed);
    }

    #[test]
    fn a_star_inside_a_path_is_literal() {
        let a = acl(&[r#"path "secret/a*b" { capabilities = ["read"] }"#]);
        assert!(a.check(Op::Read, "secret/a*b").allowed);
        assert!(!a.check(Op::Read, "secret/axb").allowed);
    }
}
