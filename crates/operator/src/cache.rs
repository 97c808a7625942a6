//! The watch caches: the operator's view of the live state, kept current by blocking
//! queries (Consul KV and config entries, the Nomad job list), the Nomad event stream
//! (job bodies and deployments) and polling (Vault, which has no watch).
//!
//! Every cache reports its [`Health`]: *synced* once it has held one complete listing,
//! *fresh* while no read failed since the last successful one. Reconciles read live
//! objects from fresh caches and fall back to a direct read otherwise; garbage collection
//! runs only when every cache is synced and fresh (positive knowledge only).
//!
//! Every cache publishes what it changed as a [`Change`] (the object and its owners
//! before and after); the trigger mappers of the wiring (`crate::triggers`) map each
//! change back to the spec keys it concerns (through ownership metadata, the policy
//! marker, or the names a key gives its objects) for the work queue.

pub mod changes;
pub mod entries;
pub mod kv_shards;
pub mod nomad;
pub mod specs;
pub mod statuses;
pub mod vault;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use steward_render::names::{self, SpecKey};
use steward_runtime::Leadership;
use steward_runtime::watcher::{ListSource, Listing};
use tokio::sync::watch;

pub use changes::{Change, ChangeReceiver, Changes, ObjectChange, Source};
pub use entries::EntryCache;
pub use nomad::NomadCache;
pub use specs::{SpecCache, SpecEntry, SpecText};
pub use statuses::{StatusCache, StoredStatus};
pub use vault::VaultCache;

/// How often a cache that keeps failing logs its failure at WARN (the first failure is
/// logged at once; repeats are counted and summarised at most this often).
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// What a failing cache last heard from its server.
#[derive(Debug, Default)]
struct Trouble {
    /// The last failed read's error (the server's answer), `None` while healthy.
    error: Option<String>,
    /// Reads failed in a row.
    consecutive: u64,
    /// Since the first of those failures.
    since: Option<tokio::time::Instant>,
    /// When the failure was last logged at WARN.
    warned: Option<tokio::time::Instant>,
    /// Failures not logged since then.
    unlogged: u64,
}

/// Sync, freshness and trouble of one cache, as `/readyz`, the metrics and the specs'
/// conditions show them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheState {
    /// The cache's name (`http-route`, `nomad-jobs`...).
    pub name: &'static str,
    /// Has held one complete listing.
    pub synced: bool,
    /// Synced, and no read failed since the last success.
    pub fresh: bool,
    /// Failed reads in all.
    pub failures: u64,
    /// Failed reads in a row (0 while healthy).
    pub consecutive_failures: u64,
    /// The last failed read's error while it keeps failing (the server's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it has been failing, in whole seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_for_seconds: Option<u64>,
}

/// Sync and freshness of one cache, and the trouble it is in.
///
/// A failed read is logged at WARN with the server's answer (never a token: errors of
/// `steward-hashi` do not carry them) the first time, then at most every
/// [`WARN_EVERY`] while the failures go on, and a recovery at INFO, so a watch that
/// keeps failing is never silent.
#[derive(Debug)]
pub struct Health {
    name: &'static str,
    synced: watch::Sender<bool>,
    fresh: AtomicBool,
    failures: AtomicU64,
    trouble: Mutex<Trouble>,
    /// Logs its trouble (a part of a larger cache that logs for it does not).
    log: bool,
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
            trouble: Mutex::new(Trouble::default()),
            log: true,
        }
    }

    /// The same, without logging: for a part of a cache whose whole logs its trouble.
    #[must_use]
    pub fn quiet(mut self) -> Self {
        self.log = false;
        self
    }

    /// The cache's name (for logs, metrics and `/readyz`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn recovered(&self) {
        let mut t = self.trouble.lock();
        if t.consecutive > 0 && self.log {
            tracing::info!(
                cache = self.name,
                failed_reads = t.consecutive,
                "cache reads succeed again"
            );
        }
        *t = Trouble::default();
    }

    /// A successful read.
    pub fn succeeded(&self) {
        self.fresh.store(true, Ordering::SeqCst);
        self.recovered();
    }

    /// The cache now holds one complete listing.
    pub fn mark_synced(&self) {
        self.fresh.store(true, Ordering::SeqCst);
        self.recovered();
        self.synced.send_replace(true);
    }

    /// A failed read: the cache may be stale until the next success. `error` is what
    /// the server answered (or why there was no answer).
    pub fn failed(&self, error: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.fresh.store(false, Ordering::SeqCst);
        let now = tokio::time::Instant::now();
        let mut t = self.trouble.lock();
        t.consecutive += 1;
        t.since.get_or_insert(now);
        t.error = Some(error.to_owned());
        let due = self.log
            && t.warned
                .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if due {
            let failing_for = t.since.map(|s| now.duration_since(s)).unwrap_or_default();
            let what = if self.is_synced() {
                "the cache may be stale; decisions that need it wait"
            } else {
                "the cache has never synced; specs that need it are held"
            };
            tracing::warn!(
                cache = self.name,
                failed_reads = t.consecutive,
                failing_for = ?Duration::from_secs(failing_for.as_secs()),
                not_logged = t.unlogged,
                error,
                "cannot read {}: {what}",
                self.name
            );
            t.warned = Some(now);
            t.unlogged = 0;
        } else {
            t.unlogged += 1;
        }
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

    /// The last failed read's error while reads keep failing.
    #[must_use]
    pub fn error(&self) -> Option<String> {
        self.trouble.lock().error.clone()
    }

    /// Everything `/readyz` and the metrics show of this cache.
    #[must_use]
    pub fn state(&self) -> CacheState {
        let t = self.trouble.lock();
        CacheState {
            name: self.name,
            synced: self.is_synced(),
            fresh: self.is_fresh(),
            failures: self.failures(),
            consecutive_failures: t.consecutive,
            error: t.error.clone(),
            failing_for_seconds: t.since.map(|s| s.elapsed().as_secs()),
        }
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
            Ok(_) => self
                .health
                .failed("the server answered without a known cluster leader"),
            Err(error) => self.health.failed(&crate::error::chain(error)),
        }
        result
    }
}

/// A set of names kept as a sorted `Vec`: the indexes below hold one or two names per
/// entry, and a `BTreeSet` node per entry costs ten times the names (10,000 specs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SmallSet(Vec<String>);

impl SmallSet {
    /// Adds `name`; false when it was there.
    pub fn insert(&mut self, name: String) -> bool {
        match self.0.binary_search(&name) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, name);
                true
            }
        }
    }

    /// Removes `name`; false when it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.0.binary_search_by(|n| n.as_str().cmp(name)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// No names.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

/// Object names → the spec keys that would give their objects those names, so that a
/// change of an object nobody owns (a hand-made clash) still reaches the spec it blocks.
#[derive(Debug, Default)]
pub struct NameIndex {
    map: RwLock<HashMap<String, SmallSet>>,
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
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
