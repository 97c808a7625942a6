//! The spec cache: every document under `<prefix>/specs/`, by spec key `<ns>/<name>`.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::RwLock;
use steward_hashi::consul::KvPair;
use steward_runtime::watcher::{Event, ListSource, WatcherConfig, watcher};

use super::{Health, NameIndex, Observed, Triggers};

/// One spec document as stored in KV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecEntry {
    /// The key below the prefix (`<ns>/<name>` for a well-formed key).
    pub key: String,
    /// The KV `ModifyIndex`: the spec's generation.
    pub generation: u64,
    /// The document text (YAML or JSON).
    pub text: Arc<str>,
}

/// Specs by key.
#[derive(Debug)]
pub struct SpecCache {
    map: RwLock<BTreeMap<String, Arc<SpecEntry>>>,
    health: Arc<Health>,
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
        Self {
            map: RwLock::new(BTreeMap::new()),
            health: Arc::new(Health::new("specs")),
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
            text: Arc::from(String::from_utf8_lossy(&pair.value).as_ref()),
        })
    }

    /// Applies one watcher event; queues the keys it concerns and asks for a GC pass
    /// when specs disappeared.
    pub fn apply(
        &self,
        prefix: &str,
        event: &Event<String, KvPair>,
        triggers: &Triggers,
        names: &NameIndex,
    ) {
        match event {
            Event::Restarted(all) => {
                let fresh: BTreeMap<String, Arc<SpecEntry>> = all
                    .iter()
                    .filter_map(|(_, pair)| Self::entry(prefix, pair))
                    .map(|e| (e.key.clone(), Arc::new(e)))
                    .collect();
                let removed: Vec<String> = {
                    let mut map = self.map.write();
                    let removed = map
                        .keys()
                        .filter(|k| !fresh.contains_key(*k))
                        .cloned()
                        .collect();
                    *map = fresh;
                    removed
                };
                for k in &removed {
                    names.remove(k);
                }
                let keys = self.keys();
                for k in &keys {
                    names.insert(k);
                }
                self.health.mark_synced();
                let any_removed = !removed.is_empty();
                triggers.keys(keys);
                triggers.keys(removed);
                if any_removed {
                    triggers.gc();
                }
            }
            Event::Applied(_, pair) => {
                if let Some(e) = Self::entry(prefix, pair) {
                    let key = e.key.clone();
                    self.map.write().insert(key.clone(), Arc::new(e));
                    names.insert(&key);
                    triggers.key(key);
                }
            }
            Event::Deleted(kv_key) => {
                if let Some(key) = kv_key.strip_prefix(prefix) {
                    self.map.write().remove(key);
                    names.remove(key);
                    triggers.key(key);
                    triggers.gc();
                }
            }
            // The source wrapper already marked the cache stale.
            Event::Error(_) => {}
        }
    }

    /// Watches `source` (a KV prefix source on `prefix`) until the task is dropped.
    pub async fn run<S>(
        self: Arc<Self>,
        prefix: String,
        source: S,
        config: WatcherConfig,
        triggers: Triggers,
        names: Arc<NameIndex>,
    ) where
        S: ListSource<Key = String, Item = KvPair> + 'static,
    {
        let mut events = pin!(watcher(
            Observed::new(source, self.health.clone(), Duration::from_micros(20)),
            config
        ));
        while let Some(event) = events.next().await {
            self.apply(&prefix, &event, &triggers, &names);
        }
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

    #[tokio::test]
    async fn events_fill_the_cache_and_queue_their_keys() {
        let cache = SpecCache::new();
        let (triggers, mut rx) = Triggers::new();
        let names = NameIndex::default();
        let p = "steward/specs/";
        cache.apply(
            p,
            &Event::Restarted(vec![
                (
                    "steward/specs/a/web".into(),
                    pair("steward/specs/a/web", 5, "x"),
                ),
                ("steward/specs/a/".into(), pair("steward/specs/a/", 6, "")),
            ]),
            &triggers,
            &names,
        );
        assert!(cache.health().is_synced());
        assert_eq!(cache.keys(), vec!["a/web"]);
        assert_eq!(cache.get("a/web").unwrap().generation, 5);
        assert_eq!(rx.try_recv().unwrap(), "a/web");
        assert_eq!(names.keys_for("web"), vec!["a/web"]);

        cache.apply(
            p,
            &Event::Applied(
                "steward/specs/b/api".into(),
                pair("steward/specs/b/api", 9, "y"),
            ),
            &triggers,
            &names,
        );
        assert_eq!(rx.try_recv().unwrap(), "b/api");
        cache.apply(
            p,
            &Event::Deleted("steward/specs/a/web".into()),
            &triggers,
            &names,
        );
        assert_eq!(rx.try_recv().unwrap(), "a/web");
        assert_eq!(cache.keys(), vec!["b/api"]);
        assert!(names.keys_for("web").is_empty());
    }
}
