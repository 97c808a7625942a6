//! A concurrent read cache: one writer (the reflector), many cheap [`Reader`]s.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::watcher::Event;

struct Shared<K, V> {
    map: RwLock<BTreeMap<K, Arc<V>>>,
    synced: watch::Sender<bool>,
}

/// The writing half of a cache, owned by one reflector. Reading goes through
/// [`Store::reader`] handles, which see every write at once.
pub struct Store<K, V> {
    shared: Arc<Shared<K, V>>,
}

/// A cheap, cloneable read handle on a [`Store`]. Values are shared (`Arc`), so reads
/// never copy objects and never block the writer for long.
pub struct Reader<K, V> {
    shared: Arc<Shared<K, V>>,
}

impl<K, V> Clone for Reader<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.shared.map.read().len())
            .field("synced", &*self.shared.synced.borrow())
            .finish()
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Reader<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("len", &self.shared.map.read().len())
            .field("synced", &*self.shared.synced.borrow())
            .finish()
    }
}

impl<K: Ord + Clone, V> Default for Store<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone, V> Store<K, V> {
    /// An empty, not yet synced store.
    pub fn new() -> Self {
        let (synced, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                map: RwLock::new(BTreeMap::new()),
                synced,
            }),
        }
    }

    /// A read handle.
    pub fn reader(&self) -> Reader<K, V> {
        Reader {
            shared: self.shared.clone(),
        }
    }

    /// Inserts or replaces one object.
    pub fn insert(&self, key: K, value: V) {
        self.shared.map.write().insert(key, Arc::new(value));
    }

    /// Removes one object.
    pub fn remove(&self, key: &K) -> Option<Arc<V>> {
        self.shared.map.write().remove(key)
    }

    /// Replaces the whole content at once (readers never see a half-written list).
    pub fn replace(&self, entries: impl IntoIterator<Item = (K, V)>) {
        let map: BTreeMap<K, Arc<V>> = entries.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        *self.shared.map.write() = map;
    }

    /// Marks the store as holding one complete listing (wakes [`Reader::wait_synced`]).
    pub fn set_synced(&self) {
        self.shared.synced.send_replace(true);
    }

    /// Applies one watcher event: a restart replaces everything and marks the store
    /// synced; `Applied` inserts; `Deleted` removes; errors change nothing.
    pub fn apply(&self, event: &Event<K, V>)
    where
        V: Clone,
    {
        match event {
            Event::Restarted(entries) => {
                self.replace(entries.iter().cloned());
                self.set_synced();
            }
            Event::Applied(key, value) => self.insert(key.clone(), value.clone()),
            Event::Deleted(key) => {
                self.remove(key);
            }
            Event::Error(_) => {}
        }
    }
}

impl<K: Ord + Clone, V> Reader<K, V> {
    /// The object under `key`.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.shared.map.read().get(key).cloned()
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &K) -> bool {
        self.shared.map.read().contains_key(key)
    }

    /// Every object, in key order.
    pub fn list(&self) -> Vec<Arc<V>> {
        self.shared.map.read().values().cloned().collect()
    }

    /// Every key and object, in key order.
    pub fn entries(&self) -> Vec<(K, Arc<V>)> {
        self.shared
            .map
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every key, in key order.
    pub fn keys(&self) -> Vec<K> {
        self.shared.map.read().keys().cloned().collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.shared.map.read().len()
    }

    /// True when the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.shared.map.read().is_empty()
    }

    /// True once the store has held one complete listing. Before that, absence from
    /// the store means nothing (never garbage-collect on an unsynced store).
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until the store is synced. Returns at once if it already is; pends forever
    /// if the writer is gone before syncing (bound it with a timeout).
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        if rx.wait_for(|synced| *synced).await.is_err() {
            // The sender lives inside `shared`, which we hold: it cannot close.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn readers_see_writes_and_wait_for_sync() {
        let store: Store<String, u32> = Store::new();
        let reader = store.reader();
        let r2 = reader.clone();
        assert!(!reader.is_synced());
        let waiter = tokio::spawn(async move {
            r2.wait_synced().await;
            r2.len()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        store.apply(&Event::Restarted(vec![("a".into(), 1), ("b".into(), 2)]));
        let n = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 2);
        store.apply(&Event::Applied("c".into(), 3));
        store.apply(&Event::Deleted("a".into()));
        assert_eq!(reader.keys(), vec!["b".to_string(), "c".to_string()]);
        assert_eq!(reader.get(&"c".to_string()).as_deref(), Some(&3));
        assert_eq!(
            reader.list().iter().map(|v| **v).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(reader.contains(&"b".to_string()) && !reader.is_empty());
        // synced stays set, and a late waiter returns at once
        tokio::time::timeout(Duration::from_millis(1), reader.wait_synced())
            .await
            .unwrap();
    }
}
