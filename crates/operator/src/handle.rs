//! [`OperatorHandle`]: the cheap handle the CLI, the tests and the HTTP API use on a
//! running (or not yet running) operator.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::registry::Registry;
use steward_runtime::{Leadership, Recorder};
use tokio::sync::watch;

use crate::config::OperatorConfig;
use crate::context::OperatorContext;
use crate::gc::{self, ApproveError, BlockedSet};
use crate::key::SpecKey;
use crate::metrics;
use crate::status::StatusDoc;

/// A cheap, cloneable handle on a running (or not yet running) operator: statuses,
/// events, metrics, leadership and GC approval. Shared with the HTTP API.
#[derive(Clone)]
pub struct OperatorHandle {
    shared: Arc<OperatorContext>,
}

impl fmt::Debug for OperatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorHandle")
            .field("prefix", &self.shared.config.prefix)
            .finish_non_exhaustive()
    }
}

impl OperatorHandle {
    pub(crate) fn new(shared: Arc<OperatorContext>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<OperatorContext> {
        &self.shared
    }

    /// The edge control plane (its connected proxies, verdicts and snapshot), when the
    /// edge mode includes xDS.
    #[must_use]
    pub fn edge(&self) -> Option<steward_edge::Edge> {
        self.shared.edge.clone()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &OperatorConfig {
        &self.shared.config
    }

    /// The current status document of a spec key (`<ns>/<name>`), as written (or as
    /// this leader last wrote it).
    #[must_use]
    pub fn status(&self, key: &str) -> Option<StatusDoc> {
        self.shared
            .caches
            .statuses
            .current(key)
            .map(|d| (*d).clone())
    }

    /// The phase and observed generation of a spec key's current status, without
    /// copying the document (cheap enough to poll thousands of keys, as `steward bench`
    /// does).
    #[must_use]
    pub fn phase(&self, key: &str) -> Option<(crate::status::Phase, u64)> {
        self.shared
            .caches
            .statuses
            .current(key)
            .map(|d| (d.phase, d.observed_generation))
    }

    /// Every spec status document, by key (the GC document excluded): those stored and
    /// those this leader wrote since.
    #[must_use]
    pub fn statuses(&self) -> Vec<(String, StatusDoc)> {
        let statuses = &self.shared.caches.statuses;
        let mut keys: std::collections::BTreeSet<String> = statuses.keys().into_iter().collect();
        keys.extend(self.shared.caches.specs.keys());
        keys.remove(gc::GC_STATUS_KEY);
        keys.into_iter()
            .filter_map(|k| {
                let doc = statuses.current(&k)?;
                Some((k, (*doc).clone()))
            })
            .collect()
    }

    /// The generation (KV `ModifyIndex`) of a spec key in the spec cache.
    #[must_use]
    pub fn spec_generation(&self, key: &str) -> Option<u64> {
        self.shared.caches.specs.get(key).map(|e| e.generation)
    }

    /// The stored document of a spec key as text, with its generation (KV
    /// `ModifyIndex`); `None` when the spec cache has no such key. For reading only: a
    /// document that is not UTF-8 is shown lossily (its status says it is Invalid).
    #[must_use]
    pub fn spec_document(&self, key: &str) -> Option<(u64, String)> {
        self.shared.caches.specs.get(key).map(|e| {
            (
                e.generation,
                String::from_utf8_lossy(&e.value.bytes()).into_owned(),
            )
        })
    }

    /// The rendered desired objects of a spec key and what a reconcile would do now
    /// (conflicts, planned writes with the differing owned fields, objects in sync), as
    /// `GET /api/v1/specs/{ns}/{name}` shows them; reads like a reconcile and writes
    /// nothing. `None` when there is no such spec.
    pub async fn describe(&self, key: &str) -> Option<(serde_json::Value, serde_json::Value)> {
        crate::reconcile::describe_spec(&self.shared, key).await
    }

    /// Every spec key in the spec cache.
    #[must_use]
    pub fn spec_keys(&self) -> Vec<String> {
        self.shared.caches.specs.keys()
    }

    /// The event recorder (ring buffer + live followers).
    #[must_use]
    pub fn recorder(&self) -> Recorder {
        self.shared.recorder.clone()
    }

    /// This instance's metrics registry.
    #[must_use]
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry.clone()
    }

    /// The metrics as Prometheus text (gauges refreshed first).
    #[must_use]
    pub fn metrics_text(&self) -> String {
        self.refresh_gauges();
        metrics::encode(&self.shared.registry)
    }

    fn refresh_gauges(&self) {
        for state in self.cache_health() {
            self.shared.metrics.observe_cache(&state);
        }
        let mut by_phase: HashMap<&'static str, i64> = crate::status::Phase::ALL
            .iter()
            .map(|p| (p.as_str(), 0))
            .collect();
        for (_, doc) in self.statuses() {
            *by_phase.entry(doc.phase.as_str()).or_default() += 1;
        }
        for (phase, n) in by_phase {
            self.shared
                .metrics
                .specs
                .get_or_create(&metrics::PhaseLabel {
                    phase: phase.to_owned(),
                })
                .set(n);
        }
    }

    /// Follows leadership changes.
    #[must_use]
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.shared.leadership.clone()
    }

    /// Whether this instance leads now.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.shared.leadership.borrow().is_leader()
    }

    /// Records what start-up detection found: shown in `/readyz` (`cluster`) and the
    /// metrics (`steward_server_supported`, `steward_server_feature`).
    pub fn set_cluster(&self, detected: crate::detect::Detected) {
        self.shared.metrics.observe_cluster(&detected);
        *self.shared.cluster.write() = Some(detected);
    }

    /// What start-up detection found, if it ran.
    #[must_use]
    pub fn cluster(&self) -> Option<crate::detect::Detected> {
        self.shared.cluster.read().clone()
    }

    /// Ready (`/readyz`): the specs and statuses have listed, and every other cache has
    /// listed or is failing with a known reason (see `kinds::ready`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        crate::kinds::ready(&self.shared.caches)
    }

    /// Each cache's sync, freshness and trouble (the server's last answer while its
    /// reads keep failing).
    #[must_use]
    pub fn cache_health(&self) -> Vec<crate::cache::CacheState> {
        crate::kinds::cache_health(&self.shared.caches)
            .into_iter()
            .map(crate::cache::Health::state)
            .collect()
    }

    /// The deletion set garbage collection is blocked on, if any.
    #[must_use]
    pub fn gc_blocked(&self) -> Option<BlockedSet> {
        self.shared.gc.blocked()
    }

    /// Approves the blocked deletion set with this digest and runs a pass.
    ///
    /// # Errors
    /// [`ApproveError`] when this instance does not lead, nothing is blocked, or the
    /// digest is another set's.
    pub fn approve_gc(&self, digest: &str) -> Result<(), ApproveError> {
        if !self.is_leader() {
            return Err(ApproveError::NotLeader);
        }
        self.shared.gc.approve(digest)?;
        self.shared.gc_kick.notify_one();
        Ok(())
    }

    /// Reconciles run so far by this instance (any result).
    #[must_use]
    pub fn reconciles(&self) -> u64 {
        self.shared.reconciles.load(Ordering::Relaxed)
    }

    /// Specs rendered so far by this instance: a reconcile whose key's rendering the
    /// memo held does not count.
    #[must_use]
    pub fn renderings(&self) -> u64 {
        self.shared.renderings.load(Ordering::Relaxed)
    }

    /// Spec documents parsed and validated so far by this instance (once per key and
    /// generation while the key's spec exists).
    #[must_use]
    pub fn parses(&self) -> u64 {
        self.shared.parses.load(Ordering::Relaxed)
    }

    /// How many spec keys this process has fully checked against the live objects at
    /// their current generation (every key counts once the operator has caught up).
    #[must_use]
    pub fn verified(&self) -> usize {
        let specs = &self.shared.caches.specs;
        self.shared
            .verified
            .lock()
            .iter()
            .filter(|(k, g)| specs.get(k).is_some_and(|e| e.generation == **g))
            .count()
    }

    /// Queues a spec key for reconciliation now.
    pub fn enqueue(&self, key: impl Into<SpecKey>) {
        self.shared.queue.add(key.into());
    }
}
