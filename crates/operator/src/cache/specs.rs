//! The spec cache: every document under `<prefix>/specs/`, by spec key `<ns>/<name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::RwLock;
use steward_hashi::ConsulClient;
use steward_hashi::consul::KvPair;

use super::kv_shards::{ShardSink, ShardedKv, ShardedKvConfig, in_shard};
use super::{Change, Changes, Health, NameIndex};
use crate::key::SpecKey;

/// One spec document as stored in KV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecEntry {
    /// The key below the prefix (`<ns>/<name>` for a well-formed key).
    pub key: String,
    /// The KV `ModifyIndex`: the spec's generation.
    pub generation: u64,
    /// The KV `CreateIndex`: the older spec wins an edge route conflict.
    pub create_index: u64,
    /// The document (YAML or JSON) as stored: bytes, because anyone may write a KV value
    /// that is not UTF-8, and loading reports that rather than replacing them.
    pub value: SpecText,
}

/// A spec document's bytes, kept compressed ([`crate::packed`]): it is read once per
/// generation (the validated spec is remembered, `crate::memo`) and when a user asks
/// for it, and at 10,000 specs the plain texts were ~7 MiB of the operator's peak.
pub type SpecText = crate::packed::Packed;

/// Specs by key.
#[derive(Debug)]
pub struct SpecCache {
    map: RwLock<BTreeMap<String, Arc<SpecEntry>>>,
    health: Arc<Health>,
    shards: Arc<ShardedKv>,
}

impl Default for SpecCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SpecCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        let health = Arc::new(Health::new("specs"));
        Self {
            map: RwLock::new(BTreeMap::new()),
            shards: Arc::new(ShardedKv::new(health.clone())),
            health,
        }
    }

    /// Sync and freshness.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The spec under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Arc<SpecEntry>> {
        self.map.read().get(key).cloned()
    }

    /// Whether `key` exists.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.map.read().contains_key(key)
    }

    /// Every key, sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.map.read().keys().cloned().collect()
    }

    /// Every key as a queue key, sorted (one allocation per key: a first sync or a new
    /// leader queues all 10,000).
    #[must_use]
    pub fn spec_keys(&self) -> Vec<SpecKey> {
        self.map
            .read()
            .keys()
            .map(|k| SpecKey::from(k.as_str()))
            .collect()
    }

    /// Every spec, sorted by key.
    #[must_use]
    pub fn list(&self) -> Vec<Arc<SpecEntry>> {
        self.map.read().values().cloned().collect()
    }

    /// Number of specs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True when there is no spec.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(prefix: &str, pair: &KvPair) -> Option<SpecEntry> {
        let key = pair.key.strip_prefix(prefix)?;
        if key.is_empty() || key.ends_with('/') {
            return None; // a "folder" key
        }
        Some(SpecEntry {
            key: key.to_owned(),
            generation: pair.modify_index,
            create_index: pair.create_index,
            value: SpecText::pack(&pair.value),
        })
    }

    /// One shard's complete listing (see [`super::kv_shards`]): replaces the specs of that
    /// shard and publishes the keys that are new, changed or gone.
    pub fn listed(
        &self,
        prefix: &str,
        shard: &str,
        pairs: &[KvPair],
        changes: &Changes,
        names: &NameIndex,
    ) {
        // A relisted shard is mostly unchanged: entries are built (and their text kept)
        // only for keys that are new or at another generation.
        let listed: Vec<&KvPair> = pairs
            .iter()
            .filter(|pair| in_shard(shard, &pair.key))
            .collect();
        let fresh: BTreeSet<&str> = listed
            .iter()
            .filter_map(|pair| pair.key.strip_prefix(prefix))
            .collect();
        let (changed, removed) = {
            let mut map = self.map.write();
            let removed: Vec<String> = map
                .keys()
                .filter(|k| in_shard(shard, &format!("{prefix}{k}")) && !fresh.contains(k.as_str()))
                .cloned()
                .collect();
            for k in &removed {
                map.remove(k);
            }
            let mut changed = Vec::new();
            for pair in listed {
                let Some(key) = pair.key.strip_prefix(prefix) else {
                    continue;
                };
                if map
                    .get(key)
                    .is_some_and(|old| old.generation == pair.modify_index)
                {
                    continue;
                }
                if let Some(e) = Self::entry(prefix, pair) {
                    changed.push(e.key.clone());
                    map.insert(e.key.clone(), Arc::new(e));
                }
            }
            (changed, removed)
        };
        for k in &removed {
            names.remove(k);
        }
        for k in &changed {
            names.insert(k);
        }
        changes.publish(Change::Specs {
            applied: changed.into_iter().map(SpecKey::from).collect(),
            deleted: removed.into_iter().map(SpecKey::from).collect(),
        });
    }

    /// One spec created or changed.
    pub fn applied(&self, prefix: &str, pair: &KvPair, changes: &Changes, names: &NameIndex) {
        if let Some(e) = Self::entry(prefix, pair) {
            let key = e.key.clone();
            self.map.write().insert(key.clone(), Arc::new(e));
            names.insert(&key);
            changes.publish(Change::Specs {
                applied: vec![SpecKey::from(key)],
                deleted: Vec::new(),
            });
        }
    }

    /// One spec deleted.
    pub fn deleted(&self, prefix: &str, kv_key: &str, changes: &Changes, names: &NameIndex) {
        if let Some(key) = kv_key.strip_prefix(prefix) {
            self.map.write().remove(key);
            names.remove(key);
            changes.publish(Change::Specs {
                applied: Vec::new(),
                deleted: vec![SpecKey::from(key)],
            });
        }
    }

    /// Synced, and no read of the prefix or of any of its shards failed since its last
    /// success (what garbage collection needs).
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.shards.is_fresh()
    }

    /// Watches `prefix` in shards (one per namespace; see [`super::kv_shards`]) until the task
    /// is dropped.
    pub async fn run(
        self: Arc<Self>,
        client: ConsulClient,
        prefix: String,
        config: ShardedKvConfig,
        changes: Changes,
        names: Arc<NameIndex>,
    ) {
        let sink = Arc::new(Sink {
            cache: self.clone(),
            prefix: prefix.clone(),
            changes,
            names,
        });
        self.shards.clone().run(client, prefix, config, sink).await;
    }
}

/// The spec cache as the sharded watch's sink.
struct Sink {
    cache: Arc<SpecCache>,
    prefix: String,
    changes: Changes,
    names: Arc<NameIndex>,
}

impl ShardSink for Sink {
    fn listed(&self, shard: &str, pairs: Vec<KvPair>) {
        self.cache
            .listed(&self.prefix, shard, &pairs, &self.changes, &self.names);
    }

    fn applied(&self, pair: KvPair) {
        self.cache
            .applied(&self.prefix, &pair, &self.changes, &self.names);
    }

    fn deleted(&self, kv_key: &str) {
        self.cache
            .deleted(&self.prefix, kv_key, &self.changes, &self.names);
    }

    fn synced(&self) {
        // Every key was published as its shard listed.
        self.changes.publish(Change::SpecsSynced);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair(key: &str, index: u64, value: &str) -> KvPair {
        KvPair {
            key: key.into(),
            modify_index: index,
            value: value.as_bytes().to_vec(),
            ..KvPair::default()
        }
    }

    fn specs(applied: &[&str], deleted: &[&str]) -> Change {
        Change::Specs {
            applied: applied.iter().map(|k| SpecKey::from(*k)).collect(),
            deleted: deleted.iter().map(|k| SpecKey::from(*k)).collect(),
        }
    }

    #[tokio::test]
    async fn shard_listings_fill_the_cache_and_publish_only_what_changed() {
        let cache = SpecCache::new();
        let (changes, mut rx) = Changes::channel();
        let names = NameIndex::default();
        let p = "steward/specs/";
        cache.listed(
            p,
            "steward/specs/a/",
            &[
                pair("steward/specs/a/web", 5, "x"),
                pair("steward/specs/a/", 6, ""),
            ],
            &changes,
            &names,
        );
        cache.listed(
            p,
            "steward/specs/b/",
            &[pair("steward/specs/b/api", 7, "y")],
            &changes,
            &names,
        );
        assert_eq!(cache.keys(), vec!["a/web", "b/api"]);
        assert_eq!(cache.get("a/web").unwrap().generation, 5);
        assert_eq!(rx.try_recv(), Some(specs(&["a/web"], &[])));
        assert_eq!(rx.try_recv(), Some(specs(&["b/api"], &[])));
        assert_eq!(names.keys_for("web"), vec!["a/web"]);

        cache.applied(p, &pair("steward/specs/b/api", 9, "y2"), &changes, &names);
        assert_eq!(rx.try_recv(), Some(specs(&["b/api"], &[])));
        // A shard relisted with nothing new queues nothing and leaves other shards be.
        cache.listed(
            p,
            "steward/specs/a/",
            &[pair("steward/specs/a/web", 5, "x")],
            &changes,
            &names,
        );
        assert_eq!(rx.try_recv(), None);
        assert_eq!(cache.get("b/api").unwrap().generation, 9);
        // A shard that is gone takes its specs with it, and only its own.
        cache.listed(p, "steward/specs/a/", &[], &changes, &names);
        assert_eq!(rx.try_recv(), Some(specs(&[], &["a/web"])));
        assert_eq!(cache.keys(), vec!["b/api"]);
        assert!(names.keys_for("web").is_empty());
        cache.deleted(p, "steward/specs/b/api", &changes, &names);
        assert_eq!(rx.try_recv(), Some(specs(&[], &["b/api"])));
        assert!(cache.is_empty());
    }
}
