//! The status cache: the last written status document of every key (so "write only when
//! changed" survives restarts and failovers), plus what this leadership term wrote
//! itself (the watch may lag behind our own writes).

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use steward_hashi::consul::KvPair;
use steward_runtime::watcher::{Event, ListSource, WatcherConfig, watcher};

use steward_runtime::Leadership;
use tokio::sync::watch;

use super::{Health, Observed, Triggers};

/// How long the leader may go without relisting the statuses.
pub const LEADER_HOLD: Duration = Duration::from_secs(60);
use crate::status::StatusDoc;

/// One stored status document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    /// KV `ModifyIndex` of the document.
    pub modify_index: u64,
    /// The raw JSON text, kept only for documents that are not spec statuses (the GC
    /// document): a parsed status needs no second copy.
    pub raw: Option<Arc<str>>,
    /// The parsed document (`None` when it does not parse as a spec status, e.g. the
    /// GC document).
    pub doc: Option<Arc<StatusDoc>>,
}

/// What this term wrote for a key: (`ModifyIndex` of the write, document; `None` =
/// deleted).
type Written = (u64, Option<Arc<StatusDoc>>);

/// Statuses by key below `<prefix>/status/`.
#[derive(Debug)]
pub struct StatusCache {
    map: RwLock<BTreeMap<String, Arc<StoredStatus>>>,
    /// Written in this leadership term.
    written: Mutex<HashMap<String, Written>>,
    health: Arc<Health>,
}

impl Default for StatusCache {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
            written: Mutex::new(HashMap::new()),
            health: Arc::new(Health::new("statuses")),
        }
    }

    /// Sync and freshness.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The stored document of `key` as the watch saw it.
    #[must_use]
    pub fn stored(&self, key: &str) -> Option<Arc<StoredStatus>> {
        self.map.read().get(key).cloned()
    }

    /// The current document of `key`: what this term wrote last, unless the watch has
    /// since seen that write or a newer one; else what is stored.
    #[must_use]
    pub fn current(&self, key: &str) -> Option<Arc<StatusDoc>> {
        let stored = self.stored(key);
        if let Some((index, doc)) = self.written.lock().get(key) {
            let caught_up = *index > 0 && stored.as_ref().is_some_and(|s| s.modify_index >= *index);
            if !caught_up {
                return doc.clone();
            }
        }
        stored.and_then(|s| s.doc.clone())
    }

    /// Records a document this term wrote at `modify_index` (`None` = deleted).
    pub fn record_written(&self, key: &str, modify_index: u64, doc: Option<Arc<StatusDoc>>) {
        self.written
            .lock()
            .insert(key.to_owned(), (modify_index, doc));
    }

    /// Forgets what this term wrote (a new term must trust the store again).
    pub fn clear_written(&self) {
        self.written.lock().clear();
    }

    /// Every key with a current document (stored, or written in this term), sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut keys: std::collections::BTreeSet<String> =
            self.map.read().keys().cloned().collect();
        for (k, (_, doc)) in self.written.lock().iter() {
            if doc.is_some() {
                keys.insert(k.clone());
            }
        }
        keys.into_iter()
            .filter(|k| self.current(k).is_some())
            .collect()
    }

    /// Every stored key with its document, sorted.
    #[must_use]
    pub fn entries(&self) -> Vec<(String, Arc<StoredStatus>)> {
        self.map
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn stored_status(pair: &KvPair) -> StoredStatus {
        let doc = serde_json::from_slice::<StatusDoc>(&pair.value)
            .ok()
            .map(Arc::new);
        let gc_document = pair
            .key
            .rsplit('/')
            .next()
            .is_some_and(|k| k == crate::gc::GC_STATUS_KEY);
        let raw = (doc.is_none() || gc_document)
            .then(|| Arc::from(String::from_utf8_lossy(&pair.value).as_ref()));
        StoredStatus {
            modify_index: pair.modify_index,
            raw,
            doc,
        }
    }

    /// Applies one watcher event. Only deletions queue the key (a status someone
    /// removed is written again); our own writes must not trigger reconciles.
    pub fn apply(&self, prefix: &str, event: &Event<String, KvPair>, triggers: &Triggers) {
        match event {
            Event::Restarted(all) => {
                let map = all
                    .iter()
                    .filter_map(|(k, pair)| {
                        let key = k.strip_prefix(prefix)?;
                        Some((key.to_owned(), Arc::new(Self::stored_status(pair))))
                    })
                    .collect();
                *self.map.write() = map;
                self.health.mark_synced();
            }
            Event::Applied(k, pair) => {
                if let Some(key) = k.strip_prefix(prefix) {
                    self.map
                        .write()
                        .insert(key.to_owned(), Arc::new(Self::stored_status(pair)));
                }
            }
            Event::Deleted(k) => {
                if let Some(key) = k.strip_prefix(prefix) {
                    self.map.write().remove(key);
                    let mut written = self.written.lock();
                    let ours = matches!(written.get(key), Some((_, None)));
                    if !ours {
                        // Someone else removed it: forget our copy and write it again.
                        written.remove(key);
                        drop(written);
                        triggers.key(key);
                    }
                }
            }
            Event::Error(_) => {}
        }
    }

    /// Watches `source` until the task is dropped; while this instance leads, relists
    /// at most every [`LEADER_HOLD`] (it keeps what it writes itself).
    pub async fn run<S>(
        self: Arc<Self>,
        prefix: String,
        source: S,
        config: WatcherConfig,
        triggers: Triggers,
        leadership: watch::Receiver<Leadership>,
    ) where
        S: ListSource<Key = String, Item = KvPair> + 'static,
    {
        let source = Observed::new(source, self.health.clone(), Duration::from_micros(200))
            .hold_while_leader(leadership, LEADER_HOLD);
        let mut events = pin!(watcher(source, config));
        while let Some(event) = events.next().await {
            self.apply(&prefix, &event, &triggers);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::status::Phase;

    fn doc(generation: u64) -> StatusDoc {
        StatusDoc {
            observed_generation: generation,
            phase: Phase::Synced,
            message: String::new(),
            spec_hash: None,
            replicas: None,
            next_scaling_change: None,
            job_modify_index: None,
            conditions: Vec::new(),
            objects: Vec::new(),
            diagnostics: Vec::new(),
            events: Vec::new(),
        }
    }

    fn pair(key: &str, index: u64, d: &StatusDoc) -> KvPair {
        KvPair {
            key: key.into(),
            modify_index: index,
            value: serde_json::to_vec(d).unwrap(),
            ..KvPair::default()
        }
    }

    #[test]
    fn our_writes_win_until_the_watch_catches_up() {
        let cache = StatusCache::new();
        let (triggers, mut rx) = Triggers::new();
        let p = "steward/status/";
        cache.apply(
            p,
            &Event::Restarted(vec![(
                "steward/status/a/b".into(),
                pair("steward/status/a/b", 10, &doc(1)),
            )]),
            &triggers,
        );
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 1);
        cache.record_written("a/b", 20, Some(Arc::new(doc(2))));
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 2);
        // The watch sees someone's newer write: it wins.
        cache.apply(
            p,
            &Event::Applied(
                "steward/status/a/b".into(),
                pair("steward/status/a/b", 25, &doc(3)),
            ),
            &triggers,
        );
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 3);
        assert!(rx.try_recv().is_err(), "writes do not trigger reconciles");
        // A deletion by someone else queues the key and forgets our copy.
        cache.record_written("a/b", 30, Some(Arc::new(doc(4))));
        cache.apply(p, &Event::Deleted("steward/status/a/b".into()), &triggers);
        assert_eq!(rx.try_recv().unwrap(), "a/b");
        assert!(cache.current("a/b").is_none());
        // Our own deletion does not.
        cache.record_written("x/y", 0, None);
        cache.apply(p, &Event::Deleted("steward/status/x/y".into()), &triggers);
        assert!(rx.try_recv().is_err());
    }
}
