//! The Vault ACL policy (reference §7.4, §7.5) granting the spec's `secrets`.
//!
//! One `path` block per distinct path, in first appearance order, capabilities in
//! Vault's canonical order (create, read, update, patch, delete, list, sudo, deny) without
//! duplicates; secrets naming the same path are merged. KV v2: a secret path
//! `<mount>/data/<p>` whose capabilities include `read` also gets a block for
//! `<mount>/metadata/<p>` with `read` and `list` (placed right after it, merged with any
//! explicit block for that path), so the service can list keys and read versions; no
//! other path is ever added. The text starts with the ownership marker line.

use std::collections::BTreeSet;

use steward_spec::{Capability, ServiceSpec};

use crate::desired::VaultPolicy;
use crate::hcl;
use crate::names::{self, SpecKey};

/// One `path` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPath {
    /// The path pattern.
    pub path: String,
    /// Capabilities, sorted and unique.
    pub capabilities: BTreeSet<Capability>,
}

/// The path blocks for the spec's secrets (see the module docs for the KV v2 rule).
#[must_use]
pub fn policy_paths(spec: &ServiceSpec) -> Vec<PolicyPath> {
    let mut out: Vec<PolicyPath> = Vec::new();
    let mut grant = |path: &str, caps: &[Capability]| match out.iter_mut().find(|p| p.path == path)
    {
        Some(existing) => existing.capabilities.extend(caps.iter().copied()),
        None => out.push(PolicyPath {
            path: path.to_owned(),
            capabilities: caps.iter().copied().collect(),
        }),
    };
    for secret in &spec.spec.secrets {
        grant(&secret.path, &secret.capabilities);
        let metadata = kv2_metadata_path(&secret.path);
        if let (true, Some(metadata)) = (secret.capabilities.contains(&Capability::Read), metadata)
        {
            grant(&metadata, &[Capability::Read, Capability::List]);
        }
    }
    out
}

/// `<mount>/metadata/<p>` for a KV v2 data path `<mount>/data/<p>`.
fn kv2_metadata_path(path: &str) -> Option<String> {
    let (mount, rest) = path.split_once('/')?;
    let p = rest.strip_prefix("data/")?;
    (!mount.is_empty() && !p.is_empty()).then(|| format!("{mount}/metadata/{p}"))
}

/// The policy for `spec`, or `None` without secrets.
pub(crate) fn render_policy(spec: &ServiceSpec) -> Option<VaultPolicy> {
    if spec.spec.secrets.is_empty() {
        return None;
    }
    let key = SpecKey::of(spec);
    Some(VaultPolicy {
        name: names::vault_policy(&key),
        hcl: hcl::policy_hcl(&key, &policy_paths(spec)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kv2_data_paths_get_a_metadata_path() {
        assert_eq!(
            kv2_metadata_path("secret/data/trading/order-api/*").as_deref(),
            Some("secret/metadata/trading/order-api/*")
        );
        assert_eq!(
            kv2_metadata_path("kv/data/x").as_deref(),
            Some("kv/metadata/x")
        );
        assert_eq!(kv2_metadata_path("secret/trading/data/x"), None);
        assert_eq!(kv2_metadata_path("database/creds/order-api"), None);
        assert_eq!(kv2_metadata_path("secret/data/"), None);
    }
}
