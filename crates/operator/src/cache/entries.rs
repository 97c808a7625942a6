//! Config entries of one kind (`service-defaults`, `service-intentions`, `http-route`),
//! by name, with an index from owning spec key to names, and an overlay of our own
//! recent writes (a write returns no index, and the watch may not have seen it yet).
//!
//! Of each entry only its [`EntryFacts`] are kept (modify index, owner, a digest of the
//! owned content), never the body: a reconcile whose desired entry has the same digest
//! knows it is in sync; any other reads the body.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use steward_hashi::{ConsulClient, QueryOptions};
use steward_runtime::watcher::{Event, ListSource, Listing, ListingEntry, WatcherConfig, watcher};

use super::{Change, Changes, Health, ObjectChange, Observed, SmallSet, Source};
use crate::key::SpecKey;
use crate::objects::owner_of_body;

/// What we wrote and the `ModifyIndex` the write was based on.
#[derive(Debug, Clone)]
struct Overlay {
    /// `ModifyIndex` of the entry we replaced (0 = it did not exist).
    base: u64,
    /// The digest of what we wrote (`None` = we deleted it).
    body: Option<u64>,
}

/// What the cache keeps of a live entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    /// `ModifyIndex`: the CAS value of the next write.
    pub modify_index: u64,
    /// The owning spec key, from the ownership `Meta`.
    pub owner: Option<String>,
    /// [`steward_render::config_entry_digest`] of the body.
    pub digest: u64,
}

impl EntryFacts {
    /// The facts of an entry body.
    #[must_use]
    pub fn of(entry: &Value) -> Self {
        Self {
            modify_index: modify_index(entry),
            owner: owner_of_body(entry).map(|k| k.to_string()),
            digest: steward_render::config_entry_digest(entry),
        }
    }
}

/// A live entry as the cache knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The watch's facts of it.
    Entry(EntryFacts),
    /// We wrote it and the watch has not caught up: the
    /// [`steward_render::config_entry_digest`] of the body we wrote (its index is not
    /// known yet, so no CAS write can be based on it).
    Written(u64),
    /// Absent.
    Absent,
}

/// `GET /v1/config/<kind>`, blocking, decoded straight into [`EntryFacts`]: each entry
/// of the answer is kept as raw text until its name and `ModifyIndex` are read; one the
/// cache already holds at that index keeps its facts (no decoding, no digest), any other
/// is decoded, reduced to its facts and dropped before the next. A relist of 10,000
/// entries thus never holds 10,000 decoded bodies, and costs digests only for what
/// changed.
#[derive(Clone, Debug)]
pub struct EntryFactsSource {
    client: ConsulClient,
    cache: Arc<EntryCache>,
    wait: Duration,
}

impl EntryFactsSource {
    /// Lists every entry of the cache's kind, blocking for at most `wait`.
    #[must_use]
    pub fn new(client: ConsulClient, cache: Arc<EntryCache>, wait: Duration) -> Self {
        Self {
            client,
            cache,
            wait,
        }
    }
}

/// The two fields read from an entry before deciding whether to decode it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryHead {
    #[serde(default)]
    name: String,
    #[serde(default)]
    modify_index: u64,
}

/// A list of entries as `(name, facts)`, decoded one entry at a time; `known` gives the
/// facts already held for a name at a `ModifyIndex`.
struct FactsSeed<'a> {
    known: &'a (dyn Fn(&str, u64) -> Option<EntryFacts> + Sync),
}

impl<'de> DeserializeSeed<'de> for FactsSeed<'_> {
    type Value = Vec<(String, EntryFacts)>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FactsSeed<'_> {
    type Value = Vec<(String, EntryFacts)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of config entries or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            let head: EntryHead = serde_json::from_str(raw.get()).map_err(A::Error::custom)?;
            let facts = match (self.known)(&head.name, head.modify_index) {
                Some(facts) => facts,
                None => {
                    let entry: Value = serde_json::from_str(raw.get()).map_err(A::Error::custom)?;
                    EntryFacts::of(&entry)
                }
            };
            out.push((head.name, facts));
        }
        Ok(out)
    }
}

/// Decodes a list answer into facts (see [`FactsSeed`]).
fn decode_facts(
    body: &[u8],
    known: &(dyn Fn(&str, u64) -> Option<EntryFacts> + Sync),
) -> Result<Vec<(String, EntryFacts)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let out = FactsSeed { known }.deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

impl ListSource for EntryFactsSource {
    type Key = String;
    type Item = EntryFacts;
    type Error = steward_hashi::Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, EntryFacts>, Self::Error> {
        let opts = QueryOptions::blocking(min_index, self.wait);
        let spec = steward_hashi::consul::config_entry::list(self.cache.kind(), &opts)?;
        let cache = self.cache.clone();
        let known = move |name: &str, index: u64| cache.facts_at(name, index);
        let r = self
            .client
            .transport()
            .call(spec, |raw| {
                let meta = raw.meta()?;
                // Consul answers an empty list as 404 or `[]`/`null`.
                let entries = if raw.status == 404 {
                    Vec::new()
                } else {
                    decode_facts(&raw.body, &known).map_err(|e| raw.decode_error(e.to_string()))?
                };
                Ok(steward_hashi::Response {
                    value: entries,
                    meta,
                })
            })
            .await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: r
                .value
                .into_iter()
                .map(|(name, facts)| ListingEntry::new(name, facts.modify_index, facts))
                .collect(),
        })
    }
}

fn modify_index(entry: &Value) -> u64 {
    entry
        .get("ModifyIndex")
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

/// Config entries of one kind.
#[derive(Debug)]
pub struct EntryCache {
    kind: &'static str,
    map: RwLock<HashMap<String, EntryFacts>>,
    owners: RwLock<HashMap<String, SmallSet>>,
    overlay: Mutex<HashMap<String, Overlay>>,
    health: Arc<Health>,
}

impl EntryCache {
    /// An empty cache of `kind`.
    #[must_use]
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            map: RwLock::new(HashMap::new()),
            owners: RwLock::new(HashMap::new()),
            overlay: Mutex::new(HashMap::new()),
            health: Arc::new(Health::new(kind)),
        }
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Sync and freshness.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The entry `name` (our unseen writes included).
    #[must_use]
    pub fn get(&self, name: &str) -> Cached {
        let cached = self.map.read().get(name).cloned();
        let mut overlay = self.overlay.lock();
        if let Some(o) = overlay.get(name) {
            let seen_index = cached.as_ref().map_or(0, |f| f.modify_index);
            if seen_index == o.base {
                return match &o.body {
                    Some(digest) => Cached::Written(*digest),
                    None => Cached::Absent,
                };
            }
            overlay.remove(name);
        }
        match cached {
            Some(facts) => Cached::Entry(facts),
            None => Cached::Absent,
        }
    }

    /// The facts held for `name`, when they are of `modify_index`.
    #[must_use]
    pub fn facts_at(&self, name: &str, modify_index: u64) -> Option<EntryFacts> {
        self.map
            .read()
            .get(name)
            .filter(|f| f.modify_index == modify_index)
            .cloned()
    }

    /// The names of the entries owned by `key` (as the watch saw them).
    #[must_use]
    pub fn owned_by(&self, key: &str) -> Vec<String> {
        self.owners
            .read()
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every owned entry as `(owner key, name)`.
    #[must_use]
    pub fn owned(&self) -> Vec<(String, String)> {
        let owners = self.owners.read();
        owners
            .iter()
            .flat_map(|(k, names)| names.iter().map(move |n| (k.clone(), n.clone())))
            .collect()
    }

    /// Records our successful write of `name` (`body`; `None` = deleted), based on
    /// `base` (0 = created). Only its digest is kept.
    pub fn record_write(&self, name: &str, base: u64, body: Option<&Value>) {
        self.overlay.lock().insert(
            name.to_owned(),
            Overlay {
                base,
                body: body.map(steward_render::config_entry_digest),
            },
        );
    }

    /// Drops our write of `name` once the watch shows something other than what it
    /// replaced (`seen`: the `ModifyIndex` now listed, 0 = absent): the watch has
    /// caught up, and the body we wrote need not be kept.
    fn forget_seen_write(&self, name: &str, seen: u64) {
        let mut overlay = self.overlay.lock();
        if overlay.get(name).is_some_and(|o| o.base != seen) {
            overlay.remove(name);
        }
    }

    /// Forgets our unseen writes (a new leadership term reads the watch only).
    pub fn clear_overlay(&self) {
        self.overlay.lock().clear();
    }

    /// Moves `name` from its old owner's names to its new owner's, and says what changed.
    fn index_owner(
        &self,
        name: &str,
        old: Option<&EntryFacts>,
        new: Option<&EntryFacts>,
    ) -> ObjectChange {
        let old_owner = old.and_then(|f| f.owner.clone());
        let new_owner = new.and_then(|f| f.owner.clone());
        if old_owner != new_owner {
            let mut owners = self.owners.write();
            if let Some(o) = &old_owner
                && let Some(set) = owners.get_mut(o)
            {
                set.remove(name);
                if set.is_empty() {
                    owners.remove(o);
                }
            }
            if let Some(n) = &new_owner {
                owners.entry(n.clone()).or_default().insert(name.to_owned());
            }
        }
        ObjectChange {
            name: Box::from(name),
            old_owner: old_owner.map(SpecKey::from),
            new_owner: new_owner.map(SpecKey::from),
        }
    }

    /// Applies one watcher event and publishes what changed: the entry and its old and
    /// new owners (a first listing: every owner before and after).
    pub fn apply(&self, event: &Event<String, EntryFacts>, changes: &Changes) {
        let source = Source::ConfigEntries(self.kind);
        match event {
            Event::Restarted(all) => {
                let map: HashMap<String, EntryFacts> = all.iter().cloned().collect();
                let mut owners: HashMap<String, SmallSet> = HashMap::new();
                for (n, f) in &map {
                    if let Some(k) = &f.owner {
                        owners.entry(k.clone()).or_default().insert(n.clone());
                    }
                }
                let mut keys: Vec<SpecKey> = owners.keys().map(SpecKey::from).collect();
                keys.extend(self.owners.read().keys().map(SpecKey::from));
                self.overlay
                    .lock()
                    .retain(|n, o| o.base == map.get(n).map_or(0, |f| f.modify_index));
                *self.map.write() = map;
                *self.owners.write() = owners;
                self.health.mark_synced();
                changes.publish(Change::Replaced {
                    source,
                    owners: keys,
                });
            }
            Event::Applied(name, facts) => {
                self.forget_seen_write(name, facts.modify_index);
                let old = self.map.write().insert(name.clone(), facts.clone());
                let change = self.index_owner(name, old.as_ref(), Some(facts));
                changes.publish(Change::object(source, change));
            }
            Event::Deleted(name) => {
                self.forget_seen_write(name, 0);
                let old = self.map.write().remove(name);
                let change = self.index_owner(name, old.as_ref(), None);
                changes.publish(Change::object(source, change));
            }
            Event::Error(_) => {}
        }
    }

    /// Watches `source` (a config entry list source of this kind) until dropped.
    pub async fn run<S>(self: Arc<Self>, source: S, config: WatcherConfig, changes: Changes)
    where
        S: ListSource<Key = String, Item = EntryFacts> + 'static,
    {
        let mut events = pin!(watcher(
            Observed::new(source, self.health.clone(), Duration::from_micros(100)),
            config
        ));
        while let Some(event) = events.next().await {
            self.apply(&event, &changes);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(name: &str, owner: Option<&str>, index: u64) -> Value {
        let meta = owner.map_or(
            json!({}),
            |o| json!({"steward.managed-by": "steward", "steward.spec": o}),
        );
        json!({"Kind": "service-defaults", "Name": name, "Meta": meta, "ModifyIndex": index})
    }

    fn facts(entry: &Value) -> EntryFacts {
        EntryFacts::of(entry)
    }

    #[test]
    fn a_list_answer_decodes_into_facts_one_entry_at_a_time() {
        let body = serde_json::to_vec(&json!([
            entry("web", Some("shop/web"), 5),
            entry("api", None, 6),
        ]))
        .unwrap();
        let none = |_: &str, _: u64| None;
        let list = decode_facts(&body, &none).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].0, "web");
        assert_eq!(list[0].1, facts(&entry("web", Some("shop/web"), 5)));
        assert_eq!(list[1].1.owner, None);
        assert_eq!(list[1].1.modify_index, 6);
        // Facts already held at the same index are reused as they are.
        let marker = EntryFacts {
            modify_index: 5,
            owner: Some("kept/as-is".into()),
            digest: 7,
        };
        let held = |name: &str, index: u64| (name == "web" && index == 5).then(|| marker.clone());
        let list = decode_facts(&body, &held).unwrap();
        assert_eq!(list[0].1, marker);
        assert_eq!(list[1].1.owner, None, "decoded: not held");
        assert!(decode_facts(b"null", &none).unwrap().is_empty());
        assert!(decode_facts(b"[{]", &none).is_err());
    }

    #[test]
    fn owners_are_indexed_and_every_change_is_published_with_its_owners() {
        let cache = EntryCache::new("service-defaults");
        let (changes, mut rx) = Changes::channel();
        let source = Source::ConfigEntries("service-defaults");
        let change = |name: &str, old: Option<&str>, new: Option<&str>| {
            Some(Change::object(source, ObjectChange::new(name, old, new)))
        };
        cache.apply(
            &Event::Restarted(vec![(
                "web".into(),
                facts(&entry("web", Some("shop/web"), 5)),
            )]),
            &changes,
        );
        assert_eq!(
            rx.try_recv(),
            Some(Change::Replaced {
                source,
                owners: vec!["shop/web".into()]
            })
        );
        assert_eq!(cache.owned_by("shop/web"), vec!["web"]);
        assert_eq!(
            cache.owned(),
            vec![("shop/web".to_owned(), "web".to_owned())]
        );
        // Someone strips the ownership: the old owner is named.
        cache.apply(
            &Event::Applied("web".into(), facts(&entry("web", None, 6))),
            &changes,
        );
        assert_eq!(rx.try_recv(), change("web", Some("shop/web"), None));
        assert!(cache.owned_by("shop/web").is_empty());
        // A hand-made entry nobody owns is published by name (the mappers find the
        // spec that uses the name).
        cache.apply(
            &Event::Applied("web".into(), facts(&entry("web", None, 7))),
            &changes,
        );
        assert_eq!(rx.try_recv(), change("web", None, None));
        cache.apply(&Event::Deleted("web".into()), &changes);
        assert_eq!(rx.try_recv(), change("web", None, None));
        assert_eq!(cache.get("web"), Cached::Absent);
    }

    #[test]
    fn our_writes_show_until_the_watch_moves_past_their_base() {
        let cache = EntryCache::new("service-defaults");
        let (changes, _rx) = Changes::channel();
        cache.apply(&Event::Restarted(vec![]), &changes);
        cache.record_write("web", 0, Some(&entry("web", Some("a/web"), 0)));
        assert!(matches!(cache.get("web"), Cached::Written(_)));
        cache.apply(
            &Event::Applied("web".into(), facts(&entry("web", Some("a/web"), 9))),
            &changes,
        );
        match cache.get("web") {
            Cached::Entry(e) => {
                assert_eq!(e.modify_index, 9);
                assert_eq!(e.owner.as_deref(), Some("a/web"));
                assert_eq!(
                    e.digest,
                    steward_render::config_entry_digest(&entry("web", Some("a/web"), 0)),
                    "the digest ignores the indexes"
                );
            }
            other => panic!("{other:?}"),
        }
        cache.record_write("web", 9, None);
        assert_eq!(cache.get("web"), Cached::Absent);
    }
}
