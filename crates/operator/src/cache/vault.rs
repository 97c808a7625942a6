//! Vault policies and JWT roles in Steward's name prefix (`steward-`).
//!
//! Vault has no watch, so this cache polls: every `vault_poll_interval` it lists the
//! policy names or the role names (alternating, so an idle operator makes two lists a
//! minute with the default 30 s), and re-reads the content of `vault_checks_per_poll`
//! owned objects in turn (a rolling check). Content is otherwise read on demand by the
//! reconcile of the owning key and kept.
//!
//! Trade-off: a hand edit of a policy or role is noticed only when the rolling check
//! reaches it (or its owner is reconciled for another reason), i.e. after up to
//! `objects / checks_per_poll × interval`; a deleted or added name after up to two
//! intervals. Before writing, the reconcile always re-reads the object, so a stale cache
//! never makes Steward overwrite something it does not own.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use steward_hashi::VaultClient;
use steward_render::names;

use super::{Change, Changes, Health, ObjectChange, Source};

/// The kind of a Vault object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VaultKind {
    /// ACL policy.
    Policy,
    /// JWT auth role.
    Role,
}

/// A role read from Vault as JSON (the read form of `data`).
///
/// # Errors
/// The hashi error of the read.
pub async fn read_role(
    client: &VaultClient,
    mount: &str,
    name: &str,
) -> steward_hashi::Result<Option<Value>> {
    let role = client.get_jwt_role(mount, name).await?;
    Ok(role.and_then(|r| serde_json::to_value(r).ok()))
}

/// Vault policies and roles.
#[derive(Debug)]
pub struct VaultCache {
    policies: RwLock<BTreeSet<String>>,
    roles: RwLock<BTreeSet<String>>,
    policy_content: Mutex<HashMap<String, Arc<String>>>,
    /// Role bodies as compact JSON text, parsed on demand: a parsed body (an ordered
    /// map of small strings) is several times the size of its text, and a body is read
    /// only by the reconcile of its owner, the rolling check and garbage collection.
    role_content: Mutex<HashMap<String, Arc<str>>>,
    cursor: Mutex<usize>,
    policies_health: Arc<Health>,
    roles_health: Arc<Health>,
}

impl Default for VaultCache {
    fn default() -> Self {
        Self::new()
    }
}

fn policy_owner(name: &str, hcl: &str) -> Option<String> {
    names::owner_of_policy(name, hcl).map(|k| k.to_string())
}

fn role_owner(name: &str, body: &Value) -> Option<String> {
    names::owner_of_role(name, body).map(|k| k.to_string())
}

impl VaultCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self {
            policies: RwLock::new(BTreeSet::new()),
            roles: RwLock::new(BTreeSet::new()),
            policy_content: Mutex::new(HashMap::new()),
            role_content: Mutex::new(HashMap::new()),
            cursor: Mutex::new(0),
            policies_health: Arc::new(Health::new("vault-policies")),
            roles_health: Arc::new(Health::new("vault-roles")),
        }
    }

    /// Health of the policy list.
    #[must_use]
    pub fn policies_health(&self) -> &Health {
        &self.policies_health
    }

    /// Health of the role list.
    #[must_use]
    pub fn roles_health(&self) -> &Health {
        &self.roles_health
    }

    /// Whether the last list had a policy of this name.
    #[must_use]
    pub fn has_policy(&self, name: &str) -> bool {
        self.policies.read().contains(&name.to_ascii_lowercase())
    }

    /// Whether the last list had a role of this name.
    #[must_use]
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.read().contains(&name.to_ascii_lowercase())
    }

    /// Listed policy names in the prefix.
    #[must_use]
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.read().iter().cloned().collect()
    }

    /// Listed role names in the prefix.
    #[must_use]
    pub fn role_names(&self) -> Vec<String> {
        self.roles.read().iter().cloned().collect()
    }

    /// Cached policy text.
    #[must_use]
    pub fn policy(&self, name: &str) -> Option<Arc<String>> {
        self.policy_content
            .lock()
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// Cached role body.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<Arc<Value>> {
        let text = self
            .role_content
            .lock()
            .get(&name.to_ascii_lowercase())
            .cloned()?;
        // The text is our own serialisation of a `Value`: it parses. Were it not to, the
        // body counts as not cached (the reconcile then reads it from Vault).
        serde_json::from_str(&text).ok().map(Arc::new)
    }

    /// Stores (or, with `None`, forgets) a policy's content; true when it changed.
    pub fn set_policy(&self, name: &str, hcl: Option<String>) -> bool {
        let name = name.to_ascii_lowercase();
        let mut content = self.policy_content.lock();
        let old = match hcl {
            Some(h) => {
                self.policies.write().insert(name.clone());
                let changed = content.get(&name).map(|o| o.as_str()) != Some(h.as_str());
                content.insert(name, Arc::new(h));
                return changed;
            }
            None => {
                self.policies.write().remove(&name);
                content.remove(&name)
            }
        };
        old.is_some()
    }

    /// Stores (or, with `None`, forgets) a role's body; true when it changed.
    pub fn set_role(&self, name: &str, body: Option<Value>) -> bool {
        let name = name.to_ascii_lowercase();
        let mut content = self.role_content.lock();
        match body {
            Some(b) => {
                self.roles.write().insert(name.clone());
                // Compared as values, not as text: key order is not content.
                let changed = content
                    .get(&name)
                    .and_then(|old| serde_json::from_str::<Value>(old).ok())
                    .as_ref()
                    != Some(&b);
                match serde_json::to_string(&b) {
                    Ok(text) => {
                        content.insert(name, Arc::from(text));
                    }
                    // Cannot happen for a `Value`; keeping nothing only costs a read.
                    Err(_) => {
                        content.remove(&name);
                    }
                }
                changed
            }
            None => {
                self.roles.write().remove(&name);
                content.remove(&name).is_some()
            }
        }
    }

    /// The owner of a listed policy, when its content is cached.
    #[must_use]
    pub fn policy_owner(&self, name: &str) -> Option<String> {
        self.policy(name).and_then(|h| policy_owner(name, &h))
    }

    /// The owner of a listed role, when its content is cached.
    #[must_use]
    pub fn role_owner(&self, name: &str) -> Option<String> {
        self.role(name).and_then(|b| role_owner(name, &b))
    }

    /// Applies a list of names of `kind`; publishes the names that came or went (with
    /// the owner of one that went, when its content was known).
    pub fn apply_list(&self, kind: VaultKind, listed: Vec<String>, changes: &Changes) {
        let listed: BTreeSet<String> = listed
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .filter(|n| names::has_vault_prefix(n))
            .collect();
        let (set, health) = match kind {
            VaultKind::Policy => (&self.policies, &self.policies_health),
            VaultKind::Role => (&self.roles, &self.roles_health),
        };
        let (added, removed): (Vec<String>, Vec<String>) = {
            let old = set.read();
            (
                listed.difference(&old).cloned().collect(),
                old.difference(&listed).cloned().collect(),
            )
        };
        let mut objects = Vec::with_capacity(added.len() + removed.len());
        for n in &removed {
            let owner = match kind {
                VaultKind::Policy => self.policy_owner(n),
                VaultKind::Role => self.role_owner(n),
            };
            objects.push(ObjectChange::new(n, owner.as_deref(), None));
            match kind {
                VaultKind::Policy => {
                    self.policy_content.lock().remove(n);
                }
                VaultKind::Role => {
                    self.role_content.lock().remove(n);
                }
            }
        }
        for n in &added {
            objects.push(ObjectChange::new(n, None, None));
        }
        *set.write() = listed;
        health.mark_synced();
        changes.publish(Change::Objects {
            source: Source::VaultNames,
            objects,
        });
    }

    /// The next `n` names for the rolling content check (policies then roles, in turn).
    fn next_checks(&self, n: usize) -> Vec<(VaultKind, String)> {
        let all: Vec<(VaultKind, String)> = self
            .policies
            .read()
            .iter()
            .map(|p| (VaultKind::Policy, p.clone()))
            .chain(
                self.roles
                    .read()
                    .iter()
                    .map(|r| (VaultKind::Role, r.clone())),
            )
            .collect();
        if all.is_empty() {
            return Vec::new();
        }
        let mut cursor = self.cursor.lock();
        let mut out = Vec::with_capacity(n.min(all.len()));
        for _ in 0..n.min(all.len()) {
            *cursor %= all.len();
            out.push(all[*cursor].clone());
            *cursor += 1;
        }
        out
    }

    /// Re-reads one object; publishes it with its owners when the content changed.
    async fn check(
        &self,
        client: &VaultClient,
        mount: &str,
        kind: VaultKind,
        name: &str,
        changes: &Changes,
    ) -> steward_hashi::Result<()> {
        match kind {
            VaultKind::Policy => {
                let before = self.policy_owner(name);
                let text = client.get_policy(name).await?.map(|p| p.policy);
                let after = text.as_deref().and_then(|t| policy_owner(name, t));
                if self.set_policy(name, text) {
                    let change = ObjectChange::new(name, before.as_deref(), after.as_deref());
                    changes.publish(Change::object(Source::VaultContent, change));
                }
            }
            VaultKind::Role => {
                let before = self.role_owner(name);
                let body = read_role(client, mount, name).await?;
                let after = body.as_ref().and_then(|b| role_owner(name, b));
                if self.set_role(name, body) {
                    let change = ObjectChange::new(name, before.as_deref(), after.as_deref());
                    changes.publish(Change::object(Source::VaultContent, change));
                }
            }
        }
        Ok(())
    }

    /// Polls Vault until dropped (see the module docs).
    pub async fn run(
        self: Arc<Self>,
        client: VaultClient,
        mount: String,
        interval: Duration,
        checks_per_poll: usize,
        changes: Changes,
    ) {
        let mut tick: u64 = 0;
        loop {
            let kinds: &[VaultKind] =
                if tick == 0 || !self.policies_health.is_synced() || !self.roles_health.is_synced()
                {
                    &[VaultKind::Policy, VaultKind::Role]
                } else if tick % 2 == 1 {
                    &[VaultKind::Policy]
                } else {
                    &[VaultKind::Role]
                };
            for kind in kinds {
                let listed = match kind {
                    VaultKind::Policy => client.list_policies().await,
                    VaultKind::Role => client.list_jwt_roles(&mount).await,
                };
                let health = match kind {
                    VaultKind::Policy => &self.policies_health,
                    VaultKind::Role => &self.roles_health,
                };
                match listed {
                    Ok(names) => {
                        health.succeeded();
                        self.apply_list(*kind, names, &changes);
                    }
                    // `Health` logs it at WARN (rate-limited) with Vault's answer.
                    Err(error) => health.failed(&crate::error::chain(&error)),
                }
            }
            if tick > 0 {
                for (kind, name) in self.next_checks(checks_per_poll) {
                    if let Err(error) = self.check(&client, &mount, kind, &name, &changes).await {
                        // A failed read: the cache may be stale until the next success
                        // (`Health` logs it at WARN, rate-limited, and `/readyz` shows it).
                        let health = match kind {
                            VaultKind::Policy => &self.policies_health,
                            VaultKind::Role => &self.roles_health,
                        };
                        health.failed(&format!("{name}: {error}"));
                    }
                }
            }
            tick = tick.wrapping_add(1);
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_publish_the_names_that_come_and_go_with_known_owners() {
        let cache = VaultCache::new();
        let (changes, mut rx) = Changes::channel();
        let names = |objects: Vec<ObjectChange>| {
            Some(Change::Objects {
                source: Source::VaultNames,
                objects,
            })
        };
        cache.apply_list(
            VaultKind::Policy,
            vec!["default".into(), "steward-shop-web".into()],
            &changes,
        );
        assert!(cache.policies_health().is_synced());
        assert_eq!(
            rx.try_recv(),
            names(vec![ObjectChange::new("steward-shop-web", None, None)])
        );
        assert_eq!(cache.policy_names(), vec!["steward-shop-web"]);
        assert!(cache.set_policy(
            "steward-shop-web",
            Some("# managed-by: steward; spec: shop/web\n".into())
        ));
        assert!(!cache.set_policy(
            "steward-shop-web",
            Some("# managed-by: steward; spec: shop/web\n".into())
        ));
        assert_eq!(cache.policy_owner("steward-shop-web").unwrap(), "shop/web");
        cache.apply_list(VaultKind::Policy, vec![], &changes);
        assert_eq!(
            rx.try_recv(),
            names(vec![ObjectChange::new(
                "steward-shop-web",
                Some("shop/web"),
                None
            )])
        );
        assert!(cache.policy("steward-shop-web").is_none());
    }

    #[test]
    fn the_rolling_check_visits_every_object_in_turn() {
        let cache = VaultCache::new();
        let (changes, _rx) = Changes::channel();
        cache.apply_list(
            VaultKind::Policy,
            vec!["steward-a-x".into(), "steward-a-y".into()],
            &changes,
        );
        cache.apply_list(VaultKind::Role, vec!["steward-a-x".into()], &changes);
        let seen: Vec<_> = (0..3).flat_map(|_| cache.next_checks(1)).collect();
        assert_eq!(
            seen,
            vec![
                (VaultKind::Policy, "steward-a-x".to_owned()),
                (VaultKind::Policy, "steward-a-y".to_owned()),
                (VaultKind::Role, "steward-a-x".to_owned()),
            ]
        );
        assert!(cache.set_role("steward-a-x", Some(json!({"bound_claims": {}}))));
        assert!(cache.has_role("STEWARD-a-x"));
    }
}
