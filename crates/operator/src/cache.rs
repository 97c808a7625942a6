//! The watch caches: the operator's view of the live state, kept current by blocking
//! queries (Consul KV and config entries, the Nomad job list), the Nomad event stream
//! (job bodies and deployments) and polling (Vault, which has no watch).
//!
//! Every cache reports its [`Health`]: *synced* once it has held one complete listing,
//! *fresh* while no read failed since the last successful one. Reconciles read live
//! objects from fresh caches and fall back to a direct read otherwise; garbage collection
//! runs only when every cache is synced and fresh (positive knowledge only).
//!
//! Every change maps back to the spec keys it concerns (through ownership metadata, the
//! policy marker, or the names a key gives its objects) and those keys are queued through
//! [`Triggers`].

pub mod entries;
pub mod nomad;
pub mod specs;
pub mod statuses;
pub mod vault;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use steward_render::names::{self, SpecKey};
use steward_runtime::Leadership;
use steward_runtime::watcher::{ListSource, Listing};
use tokio::sync::{Notify, mpsc, watch};

pub use entries::EntryCache;
pub use nomad::NomadCache;
pub use specs::{SpecCache, SpecEntry};
pub use statuses::{StatusCache, StoredStatus};
pub use vault::VaultCache;

/// Sync and freshness of one cache.
#[derive(Debug)]
pub struct Health {
    name: &'static str,
    synced: watch::Sender<bool>,
    fresh: AtomicBool,
    failures: AtomicU64,
}

impl Health {
    /// A cache that has not listed yet.
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        let (synced, _) = watch::channel(false);
        Self {
            name,
            synced,
            fresh: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }

    /// The cache's name (for logs, metrics and `/readyz`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A successful read.
    pub fn succeeded(&self) {
        self.fresh.store(true, Ordering::SeqCst);
    }

    /// The cache now holds one complete listing.
    pub fn mark_synced(&self) {
        self.fresh.store(true, Ordering::SeqCst);
        self.synced.send_replace(true);
    }

    /// A failed read: the cache may be stale until the next success.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.fresh.store(false, Ordering::SeqCst);
    }

    /// Has held one complete listing.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Synced, and no read failed since the last success.
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.is_synced() && self.fresh.load(Ordering::SeqCst)
    }

    /// Failed reads so far.
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Waits until synced.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        // The sender lives in `self`, so it cannot close while we borrow it.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A [`ListSource`] that reports each list call's outcome to a [`Health`] (a failed
/// read, or one served without a known leader, makes the cache stale until the next
/// successful read) and spaces list calls by the size of the last answer.
///
/// Every answer of a list watch is the whole list, so under churn (10,000 specs being
/// applied) a watch that relists on every change spends its time decoding megabytes.
/// After an answer of `n` entries the next call waits `n × per_entry` (e.g. 1 s for
/// 10,000 entries at 100 µs): changes arriving meanwhile are picked up together. A
/// watch that is idle is already parked in a blocking query when a change comes, so
/// the spacing adds no latency to an isolated change.
#[derive(Debug)]
pub struct Observed<S> {
    inner: S,
    health: Arc<Health>,
    per_entry: Duration,
    next_call: Option<tokio::time::Instant>,
    hold: Option<(watch::Receiver<Leadership>, Duration)>,
}

impl<S> Observed<S> {
    /// Wraps `inner`, spacing calls by `per_entry` per entry of the last answer.
    pub fn new(inner: S, health: Arc<Health>, per_entry: Duration) -> Self {
        Self {
            inner,
            health,
            per_entry,
            next_call: None,
            hold: None,
        }
    }

    /// While this instance leads, waits up to `hold` before each call after the first
    /// (ending early when leadership changes): for the status watch, whose changes are
    /// the leader's own writes (it keeps what it wrote), so relisting them after every
    /// write would only cost the leader time.
    #[must_use]
    pub fn hold_while_leader(
        mut self,
        leadership: watch::Receiver<Leadership>,
        hold: Duration,
    ) -> Self {
        self.hold = Some((leadership, hold));
        self
    }
}

impl<S: ListSource> ListSource for Observed<S> {
    type Key = S::Key;
    type Item = S::Item;
    type Error = S::Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<S::Key, S::Item>, S::Error> {
        if let Some(at) = self.next_call.take() {
            tokio::time::sleep_until(at).await;
            if let Some((leadership, hold)) = &mut self.hold {
                let leading = leadership.borrow_and_update().is_leader();
                if leading {
                    tokio::select! {
                        () = tokio::time::sleep(*hold) => {}
                        _ = leadership.changed() => {}
                    }
                }
            }
        }
        let result = self.inner.list(min_index).await;
        match &result {
            Ok(listing) if listing.known_leader => {
                self.health.succeeded();
                let n = u32::try_from(listing.entries.len()).unwrap_or(u32::MAX);
                self.next_call = Some(tokio::time::Instant::now() + self.per_entry * n);
            }
            _ => self.health.failed(),
        }
        result
    }
}

/// Queues spec keys for reconciliation (cheap to clone).
#[derive(Debug, Clone)]
pub struct Triggers {
    tx: mpsc::UnboundedSender<String>,
    gc: Arc<Notify>,
}

impl Triggers {
    /// A trigger channel and its receiving end (fed to the controller).
    #[must_use]
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                gc: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    /// Queues one key.
    pub fn key(&self, key: impl Into<String>) {
        // The receiver lives as long as the controller; after shutdown nothing matters.
        let _ = self.tx.send(key.into());
    }

    /// Queues several keys.
    pub fn keys<I: IntoIterator<Item = String>>(&self, keys: I) {
        for k in keys {
            self.key(k);
        }
    }

    /// Asks for a garbage-collection pass (debounced by the collector).
    pub fn gc(&self) {
        self.gc.notify_one();
    }

    /// What the collector waits on.
    #[must_use]
    pub fn gc_notify(&self) -> Arc<Notify> {
        self.gc.clone()
    }
}

/// Object names → the spec keys that would give their objects those names, so that a
/// change of an object nobody owns (a hand-made clash) still reaches the spec it blocks.
#[derive(Debug, Default)]
pub struct NameIndex {
    map: RwLock<HashMap<String, BTreeSet<String>>>,
}

impl NameIndex {
    fn names_of(key: &SpecKey) -> [String; 3] {
        [
            names::consul_service(key),
            names::http_route(key),
            names::vault_policy(key),
        ]
    }

    /// Registers the names of `key`.
    pub fn insert(&self, key: &str) {
        let Some(k) = SpecKey::parse(key) else { return };
        let mut map = self.map.write();
        for n in Self::names_of(&k) {
            map.entry(n).or_default().insert(key.to_owned());
        }
    }

    /// Forgets the names of `key`.
    pub fn remove(&self, key: &str) {
        let Some(k) = SpecKey::parse(key) else { return };
        let mut map = self.map.write();
        for n in Self::names_of(&k) {
            if let Some(set) = map.get_mut(&n) {
                set.remove(key);
                if set.is_empty() {
                    map.remove(&n);
                }
            }
        }
    }

    /// The keys whose objects are (or would be) named `name` (Vault names compare
    /// case-insensitively).
    #[must_use]
    pub fn keys_for(&self, name: &str) -> Vec<String> {
        let map = self.map.read();
        map.get(name)
            .or_else(|| map.get(&name.to_ascii_lowercase()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Every cache of one operator instance.
#[derive(Debug)]
pub struct Caches {
    /// Specs.
    pub specs: Arc<SpecCache>,
    /// Statuses.
    pub statuses: Arc<StatusCache>,
    /// `service-defaults` entries.
    pub service_defaults: Arc<EntryCache>,
    /// `service-intentions` entries.
    pub service_intentions: Arc<EntryCache>,
    /// `http-route` entries.
    pub http_routes: Arc<EntryCache>,
    /// Nomad jobs and deployments.
    pub nomad: Arc<NomadCache>,
    /// Vault policies and roles.
    pub vault: Arc<VaultCache>,
    /// Names → keys.
    pub names: Arc<NameIndex>,
}

impl Caches {
    /// Empty caches.
    #[must_use]
    pub fn new() -> Self {
        Self {
            specs: Arc::new(SpecCache::new()),
            statuses: Arc::new(StatusCache::new()),
            service_defaults: Arc::new(EntryCache::new("service-defaults")),
            service_intentions: Arc::new(EntryCache::new("service-intentions")),
            http_routes: Arc::new(EntryCache::new("http-route")),
            nomad: Arc::new(NomadCache::new()),
            vault: Arc::new(VaultCache::new()),
            names: Arc::new(NameIndex::default()),
        }
    }

    /// The config entry cache of `kind`.
    #[must_use]
    pub fn entries(&self, kind: &str) -> Option<&Arc<EntryCache>> {
        match kind {
            "service-defaults" => Some(&self.service_defaults),
            "service-intentions" => Some(&self.service_intentions),
            "http-route" => Some(&self.http_routes),
            _ => None,
        }
    }

    /// Every cache's health, in a fixed order.
    #[must_use]
    pub fn health(&self) -> Vec<&Health> {
        vec![
            self.specs.health(),
            self.statuses.health(),
            self.service_defaults.health(),
            self.service_intentions.health(),
            self.http_routes.health(),
            self.nomad.jobs_health(),
            self.nomad.deployments_health(),
            self.vault.policies_health(),
            self.vault.roles_health(),
        ]
    }

    /// Every cache has listed once (`/readyz`).
    #[must_use]
    pub fn all_synced(&self) -> bool {
        self.health().iter().all(|h| h.is_synced())
    }

    /// Every cache is synced and fresh.
    #[must_use]
    pub fn all_fresh(&self) -> bool {
        self.health().iter().all(|h| h.is_fresh())
    }

    /// Every cache garbage collection decides from is synced and fresh: specs, config
    /// entries, the Nomad job list and the Vault lists (not deployments or statuses).
    #[must_use]
    pub fn gc_fresh(&self) -> bool {
        [
            self.specs.health(),
            self.service_defaults.health(),
            self.service_intentions.health(),
            self.http_routes.health(),
            self.nomad.jobs_health(),
            self.vault.policies_health(),
            self.vault.roles_health(),
        ]
        .iter()
        .all(|h| h.is_fresh())
    }
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn health_is_fresh_only_between_a_success_and_the_next_failure() {
        let h = Health::new("x");
        assert!(!h.is_synced() && !h.is_fresh());
        h.failed();
        h.succeeded();
        assert!(!h.is_synced() && !h.is_fresh(), "fresh needs synced");
        h.mark_synced();
        assert!(h.is_synced() && h.is_fresh());
        h.failed();
        assert!(h.is_synced() && !h.is_fresh());
        assert_eq!(h.failures(), 2);
        h.succeeded();
        assert!(h.is_fresh());
    }

    #[test]
    fn the_name_index_finds_the_specs_a_name_would_belong_to() {
        let idx = NameIndex::default();
        idx.insert("a/web");
        idx.insert("b/web");
        idx.insert("not a key");
        assert_eq!(idx.keys_for("web"), vec!["a/web", "b/web"]);
        assert_eq!(idx.keys_for("a-web"), vec!["a/web"]);
        assert_eq!(idx.keys_for("STEWARD-b-web"), vec!["b/web"]);
        idx.remove("a/web");
        assert_eq!(idx.keys_for("web"), vec!["b/web"]);
        assert!(idx.keys_for("a-web").is_empty());
    }
}
