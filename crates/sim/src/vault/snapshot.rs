//! Persistence of the Vault state (`ProductState`).

use super::{Inner, StoredPolicy, VaultState, jwt, policy, sys, token};
use crate::Product;
use crate::index::IndexClock;
use crate::product::ProductState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    index: u64,
    cluster_name: String,
    cluster_id: String,
    created_unix: i64,
    created_issue_time: String,
    policies: BTreeMap<String, String>,
    mounts: Vec<sys::AuthMount>,
    jwt: BTreeMap<String, jwt::Backend>,
    tokens: Vec<token::TokenEntry>,
    revoked_accessors: BTreeSet<String>,
}

impl VaultState {
    /// What is persisted, copied under the state lock.
    fn snapshot_data(&self) -> Snapshot {
        let inner = self.inner.lock();
        Snapshot {
            index: self.clock.current(),
            cluster_name: inner.cluster_name.clone(),
            cluster_id: inner.cluster_id.clone(),
            created_unix: inner.created_unix,
            created_issue_time: inner.created_issue_time.clone(),
            policies: inner
                .policies
                .iter()
                .map(|(k, v)| (k.clone(), v.raw.clone()))
                .collect(),
            mounts: inner.mounts.values().cloned().collect(),
            jwt: inner.jwt.clone(),
            tokens: inner.tokens.values().cloned().collect(),
            revoked_accessors: inner.revoked_accessors.clone(),
        }
    }
}

impl ProductState for VaultState {
    fn product(&self) -> Product {
        Product::Vault
    }

    fn clock(&self) -> &IndexClock {
        &self.clock
    }

    fn snapshot(&self) -> Value {
        serde_json::to_value(self.snapshot_data()).unwrap_or(Value::Null)
    }

    fn snapshot_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.snapshot_data()).unwrap_or_default()
    }

    fn restore(&self, snapshot: Value) -> Result<(), String> {
        let snap: Snapshot = serde_json::from_value(snapshot).map_err(|e| e.to_string())?;
        let mut policies = BTreeMap::new();
        for (name, raw) in snap.policies {
            if name != name.trim().to_lowercase() || name.is_empty() || name == "root" {
                return Err(format!("invalid policy name {name:?}"));
            }
            let parsed = policy::parse(&raw).map_err(|e| format!("policy {name:?}: {e}"))?;
            policies.insert(name, StoredPolicy { raw, parsed });
        }
        // Vault recreates a missing `default` policy when it unseals.
        if !policies.contains_key("default")
            && let Ok(parsed) = policy::parse(policy::DEFAULT_POLICY)
        {
            policies.insert(
                "default".into(),
                StoredPolicy {
                    raw: policy::DEFAULT_POLICY.to_string(),
                    parsed,
                },
            );
        }
        let mut mounts = BTreeMap::new();
        for mount in snap.mounts {
            if !mount.path.ends_with('/') || mount.path.starts_with('/') {
                return Err(format!("invalid auth mount path {:?}", mount.path));
            }
            if mounts.insert(mount.path.clone(), mount).is_some() {
                return Err("duplicate auth mount".into());
            }
        }
        if mounts.get("token/").map(|m| m.kind.as_str()) != Some("token") {
            return Err("the token/ auth mount is missing".into());
        }
        for path in snap.jwt.keys() {
            let kind = mounts.get(path).map(|m| m.kind.as_str());
            if !matches!(kind, Some("jwt" | "oidc")) {
                return Err(format!("JWT backend {path:?} has no jwt/oidc mount"));
            }
        }
        let mut jwt = snap.jwt;
        for (path, mount) in &mounts {
            if matches!(mount.kind.as_str(), "jwt" | "oidc") {
                jwt.entry(path.clone()).or_default();
            }
        }
        let mut tokens = BTreeMap::new();
        for t in snap.tokens {
            if t.id.is_empty() {
                return Err("token with an empty id".into());
            }
            tokens.insert(t.id.clone(), t);
        }
        if snap.cluster_id.is_empty() || snap.cluster_name.is_empty() {
            return Err("missing cluster name or id".into());
        }
        let mut inner = self.inner.lock();
        *inner = Inner {
            policies,
            mounts,
            jwt,
            tokens,
            revoked_accessors: snap.revoked_accessors,
            cluster_name: snap.cluster_name,
            cluster_id: snap.cluster_id,
            created_unix: snap.created_unix,
            created_issue_time: snap.created_issue_time,
        };
        self.clock.set(snap.index);
        Ok(())
    }

    /// Vault exposes no index, so a snapshot restore has nothing to lower; the clock
    /// is only touched so watchers (the persistence writer) wake up.
    fn reset_indexes(&self) {
        self.clock.touch();
    }
}
