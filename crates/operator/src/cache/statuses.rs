//! The status cache: the last written status document of every key (so "write only when
//! changed" survives restarts and failovers), plus what this leadership term wrote
//! itself (the watch may lag behind our own writes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use steward_hashi::ConsulClient;
use steward_hashi::consul::KvPair;

use super::kv_shards::{ShardSink, ShardedKv, ShardedKvConfig, in_shard};
use super::{Change, Changes, Health};
use crate::status::StatusDoc;

/// How long the leader may go without relisting the statuses. The leader keeps what it
/// writes, so a relist only catches changes made by someone else (a status deleted or
/// edited by hand: rewritten at most this long after). Each namespace's shard catches
/// up once after a burst of writes; with 60 s, those catch-ups alone (one per namespace)
/// doubled an idle operator's requests in the minute after a cold start (`steward
/// bench steady`: 18 requests a minute at 10 namespaces instead of 8).
pub const LEADER_HOLD: Duration = Duration::from_secs(300);

/// A spec status as the cache keeps it: its compact JSON, compressed
/// ([`crate::packed`]), parsed on demand. A parsed document (conditions, objects,
/// events: many small strings) is about twice the size of its text, and of 10,000
/// documents only the one being reconciled (or served) is needed parsed at a time. The
/// text (~2.5 KB, half of it the recent events, which repeat the object names)
/// compresses to about 40 %: at 10,000 specs the leader's copies of what it wrote were
/// ~23 MiB of the operator's peak as plain JSON.
pub type DocJson = crate::packed::Packed;

/// One stored status document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    /// KV `ModifyIndex` of the document.
    pub modify_index: u64,
    /// The raw JSON text, kept only for documents that are not spec statuses (the GC
    /// document): a spec status is kept once, as `doc_json`.
    pub raw: Option<Arc<str>>,
    /// The document's JSON when it parses as a spec status (`None` otherwise, e.g. the
    /// GC document).
    pub doc_json: Option<DocJson>,
}

impl StoredStatus {
    /// The parsed document, when it is a spec status.
    #[must_use]
    pub fn doc(&self) -> Option<Arc<StatusDoc>> {
        self.doc_json.as_ref().and_then(parse)
    }
}

/// A kept document parsed again (it parsed when it was kept, or is our own
/// serialisation).
fn parse(doc: &DocJson) -> Option<Arc<StatusDoc>> {
    let json = doc.unpack()?;
    serde_json::from_slice(&json).ok().map(Arc::new)
}

/// What this term wrote for a key: (`ModifyIndex` of the write, document's JSON; `None`
/// = deleted).
type Written = (u64, Option<DocJson>);

/// Statuses by key below `<prefix>/status/`.
#[derive(Debug)]
pub struct StatusCache {
    map: RwLock<BTreeMap<String, Arc<StoredStatus>>>,
    /// Written in this leadership term.
    written: Mutex<HashMap<String, Written>>,
    health: Arc<Health>,
    shards: Arc<ShardedKv>,
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
        let health = Arc::new(Health::new("statuses"));
        Self {
            map: RwLock::new(BTreeMap::new()),
            written: Mutex::new(HashMap::new()),
            shards: Arc::new(ShardedKv::new(health.clone())),
            health,
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
        self.current_json(key).as_ref().and_then(parse)
    }

    /// The JSON of [`Self::current`]'s document, unparsed.
    fn current_json(&self, key: &str) -> Option<DocJson> {
        let stored = self.stored(key);
        if let Some((index, doc)) = self.written.lock().get(key) {
            let caught_up = *index > 0 && stored.as_ref().is_some_and(|s| s.modify_index >= *index);
            if !caught_up {
                return doc.clone();
            }
        }
        stored.and_then(|s| s.doc_json.clone())
    }

    /// Records a document this term wrote at `modify_index` (`None` = deleted).
    pub fn record_written(&self, key: &str, modify_index: u64, doc: Option<Arc<StatusDoc>>) {
        // Kept as JSON (see [`DocJson`]). A document that cannot be serialised cannot
        // have been written either; keeping `None` for it would read as "deleted", so
        // such a record is dropped and the stored document stays current.
        let json = match doc.map(|d| serde_json::to_vec(&*d)) {
            Some(Ok(json)) => Some(DocJson::pack(&json)),
            Some(Err(_)) => return,
            None => None,
        };
        self.written
            .lock()
            .insert(key.to_owned(), (modify_index, json));
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
            .filter(|k| self.current_json(k).is_some())
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

    /// The stored form of `pair`, taking our own written document when the pair is that
    /// very write (no second parse, no second copy), and forgetting the written copy once
    /// the watch has caught up with it.
    fn seen(&self, key: &str, pair: &KvPair) -> StoredStatus {
        let mut written = self.written.lock();
        if let Some((index, doc)) = written.get(key)
            && *index > 0
            && pair.modify_index >= *index
        {
            let ours = (pair.modify_index == *index).then(|| doc.clone()).flatten();
            written.remove(key);
            if let Some(doc) = ours {
                return StoredStatus {
                    modify_index: pair.modify_index,
                    raw: None,
                    doc_json: Some(doc),
                };
            }
        }
        drop(written);
        Self::stored_status(pair)
    }

    fn stored_status(pair: &KvPair) -> StoredStatus {
        // Parsed once to know whether it is a spec status; kept as its text.
        let is_status = serde_json::from_slice::<StatusDoc>(&pair.value).is_ok();
        let gc_document = pair
            .key
            .rsplit('/')
            .next()
            .is_some_and(|k| k == crate::guard::GC_STATUS_KEY);
        let raw = (!is_status || gc_document)
            .then(|| Arc::from(String::from_utf8_lossy(&pair.value).as_ref()));
        StoredStatus {
            modify_index: pair.modify_index,
            raw,
            doc_json: is_status.then(|| DocJson::pack(&pair.value)),
        }
    }

    /// One shard's complete listing (see [`super::kv_shards`]): replaces the documents
    /// of that shard; a document that is gone counts as deleted.
    pub fn listed(&self, prefix: &str, shard: &str, pairs: &[KvPair], changes: &Changes) {
        let fresh: BTreeMap<String, Arc<StoredStatus>> = pairs
            .iter()
            .filter(|pair| in_shard(shard, &pair.key))
            .filter_map(|pair| {
                let key = pair.key.strip_prefix(prefix)?;
                Some((key.to_owned(), Arc::new(self.seen(key, pair))))
            })
            .collect();
        let gone: Vec<String> = {
            let mut map = self.map.write();
            let gone: Vec<String> = map
                .keys()
                .filter(|k| in_shard(shard, &format!("{prefix}{k}")) && !fresh.contains_key(*k))
                .cloned()
                .collect();
            for (k, v) in fresh {
                map.insert(k, v);
            }
            gone
        };
        for key in gone {
            self.deleted(prefix, &format!("{prefix}{key}"), changes);
        }
    }

    /// One document created or changed. It queues nothing: status changes are mostly our
    /// own writes, and they must not trigger reconciles (only deletions do).
    pub fn applied(&self, prefix: &str, pair: &KvPair) {
        if let Some(key) = pair.key.strip_prefix(prefix) {
            let stored = Arc::new(self.seen(key, pair));
            self.map.write().insert(key.to_owned(), stored);
        }
    }

    /// One document deleted.
    pub fn deleted(&self, prefix: &str, kv_key: &str, changes: &Changes) {
        if let Some(key) = kv_key.strip_prefix(prefix) {
            self.map.write().remove(key);
            let mut written = self.written.lock();
            let ours = matches!(written.get(key), Some((_, None)));
            if !ours {
                // Someone else removed it: forget our copy and write it again.
                written.remove(key);
                drop(written);
                changes.publish(Change::StatusDeleted(key.into()));
            }
        }
    }

    /// Watches `prefix` in shards (one per namespace; see [`super::kv_shards`]) until
    /// the task is dropped; while this instance leads, each shard relists at most every
    /// [`LEADER_HOLD`] (the leader keeps what it writes itself).
    pub async fn run(
        self: Arc<Self>,
        client: ConsulClient,
        prefix: String,
        config: ShardedKvConfig,
        changes: Changes,
    ) {
        let sink = Arc::new(Sink {
            cache: self.clone(),
            prefix: prefix.clone(),
            changes,
        });
        self.shards.clone().run(client, prefix, config, sink).await;
    }
}

/// The status cache as the sharded watch's sink.
struct Sink {
    cache: Arc<StatusCache>,
    prefix: String,
    changes: Changes,
}

impl ShardSink for Sink {
    fn listed(&self, shard: &str, pairs: Vec<KvPair>) {
        self.cache
            .listed(&self.prefix, shard, &pairs, &self.changes);
    }

    fn applied(&self, pair: KvPair) {
        self.cache.applied(&self.prefix, &pair);
    }

    fn deleted(&self, kv_key: &str) {
        self.cache.deleted(&self.prefix, kv_key, &self.changes);
    }

    fn synced(&self) {}
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
    fn a_kept_document_reads_back_unchanged_and_takes_less_than_its_json() {
        let mut d = doc(3);
        for i in 0..8 {
            d.events.push(crate::status::EventDoc {
                time: "2026-12-07T20:41:52.314196469Z".parse().unwrap(),
                type_: "Normal".into(),
                reason: "Created".into(),
                message: format!("vault-policy steward-team-0-svc-0000{i} created"),
                object: Some(format!("vault-policy steward-team-0-svc-0000{i}")),
            });
        }
        let json = serde_json::to_vec(&d).unwrap();
        let kept = DocJson::pack(&json);
        assert_eq!(kept.unpack().unwrap(), json);
        assert_eq!(*parse(&kept).unwrap(), d);
        assert!(
            kept.packed_len() * 10 < json.len() * 6,
            "{} bytes kept for {} bytes of JSON",
            kept.packed_len(),
            json.len()
        );
    }

    #[test]
    fn a_shard_listing_replaces_only_its_own_documents() {
        let cache = StatusCache::new();
        let (changes, mut rx) = Changes::channel();
        let p = "steward/status/";
        cache.listed(
            p,
            "steward/status/a/",
            &[pair("steward/status/a/b", 10, &doc(1))],
            &changes,
        );
        cache.listed(
            p,
            "steward/status/_gc",
            &[KvPair {
                key: "steward/status/_gc".into(),
                modify_index: 11,
                value: b"{\"phase\":\"Blocked\"}".to_vec(),
                ..KvPair::default()
            }],
            &changes,
        );
        assert!(
            cache.stored("_gc").unwrap().raw.is_some(),
            "the GC document keeps its text"
        );
        assert!(
            cache.stored("a/b").unwrap().raw.is_none(),
            "a status is kept once, as its JSON"
        );
        // Shard a/ is gone: its document counts as deleted by someone else; _gc stays.
        cache.listed(p, "steward/status/a/", &[], &changes);
        assert_eq!(rx.try_recv(), Some(Change::StatusDeleted("a/b".into())));
        assert!(cache.stored("a/b").is_none());
        assert!(cache.stored("_gc").is_some());
    }

    #[test]
    fn the_watch_showing_our_own_write_keeps_one_copy_of_it() {
        let cache = StatusCache::new();
        let (changes, _rx) = Changes::channel();
        let p = "steward/status/";
        cache.record_written("a/b", 40, Some(Arc::new(doc(2))));
        let ours = cache.written.lock().get("a/b").unwrap().1.clone().unwrap();
        cache.listed(
            p,
            "steward/status/a/",
            &[pair("steward/status/a/b", 40, &doc(2))],
            &changes,
        );
        let stored = cache.stored("a/b").unwrap();
        assert!(
            stored.doc_json.as_ref().unwrap().same(&ours),
            "no second copy"
        );
        assert!(
            cache.written.lock().is_empty(),
            "the written copy is forgotten"
        );
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 2);
    }

    #[test]
    fn our_writes_win_until_the_watch_catches_up() {
        let cache = StatusCache::new();
        let (changes, mut rx) = Changes::channel();
        let p = "steward/status/";
        cache.listed(
            p,
            "steward/status/a/",
            &[pair("steward/status/a/b", 10, &doc(1))],
            &changes,
        );
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 1);
        cache.record_written("a/b", 20, Some(Arc::new(doc(2))));
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 2);
        // The watch sees someone's newer write: it wins.
        cache.applied(p, &pair("steward/status/a/b", 25, &doc(3)));
        assert_eq!(cache.current("a/b").unwrap().observed_generation, 3);
        assert!(rx.try_recv().is_none(), "writes do not trigger reconciles");
        // A deletion by someone else queues the key and forgets our copy.
        cache.record_written("a/b", 30, Some(Arc::new(doc(4))));
        cache.deleted(p, "steward/status/a/b", &changes);
        assert_eq!(rx.try_recv(), Some(Change::StatusDeleted("a/b".into())));
        assert!(cache.current("a/b").is_none());
        // Our own deletion does not.
        cache.record_written("x/y", 0, None);
        cache.deleted(p, "steward/status/x/y", &changes);
        assert!(rx.try_recv().is_none());
    }
}
