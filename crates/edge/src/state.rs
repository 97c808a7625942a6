//! [`Edge`]: the control plane's shared state. The operator feeds it specs, the health
//! watches feed it endpoints; a rebuild task translates (coalescing bursts) and
//! publishes a [`Snapshot`] that every ADS stream serves. It keeps the per-spec verdicts
//! and the per-proxy state the API shows, and tells its subscribers which spec keys'
//! verdicts changed (the operator re-queues them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, TypeLabel};
use crate::resources::{Snapshot, TypeKind};
use crate::session::{Nack, TypeStatus};
use crate::translate::{
    EdgeListener, EdgeSpec, Endpoint, Input, Quarantine, SpecVerdict, Translation, translate,
};

/// A connected proxy, as `/api/v1/edge` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyStatus {
    /// Stream id (unique in this process).
    pub stream: u64,
    /// Envoy's node id.
    pub node_id: String,
    /// Remote address.
    pub peer: Option<String>,
    /// Per type (`cds`, `eds`, `lds`, `rds`): sent and acked versions, last NACK.
    pub types: BTreeMap<&'static str, TypeStatus>,
}

impl ProxyStatus {
    /// The last NACK of any type, if there was one.
    #[must_use]
    pub fn last_nack(&self) -> Option<&Nack> {
        self.types.values().find_map(|t| t.last_nack.as_ref())
    }
}

/// Whether the connected proxies have the spec's current routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckState {
    /// Connected proxies.
    pub proxies: usize,
    /// Proxies whose acked route configuration includes the spec's current routes.
    pub acked: usize,
    /// Node ids of the proxies that have not acked them yet.
    pub pending: Vec<String>,
}

impl AckState {
    /// Every connected proxy acked (true with none connected).
    #[must_use]
    pub fn all_acked(&self) -> bool {
        self.acked == self.proxies
    }
}

/// Something an embedder records as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeEvent {
    /// A proxy refused a response.
    Nack {
        /// Node id.
        node_id: String,
        /// Type label.
        kind: &'static str,
        /// Refused version.
        version: String,
        /// Envoy's message.
        message: String,
        /// Specs whose routes were withdrawn because of it.
        specs: Vec<String>,
    },
}

#[derive(Debug, Default)]
struct State {
    specs: BTreeMap<String, EdgeSpec>,
    endpoints: BTreeMap<String, Vec<Endpoint>>,
    endpoint_errors: BTreeMap<String, String>,
    listeners: Vec<EdgeListener>,
    quarantine: BTreeMap<String, Quarantine>,
    translation: Translation,
    /// Per spec: the generation whose snapshot first carried its current routes.
    since: BTreeMap<String, u64>,
    generation: u64,
    built_at: Option<Instant>,
}

struct Inner {
    state: Mutex<State>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    services: watch::Sender<BTreeSet<String>>,
    verdicts_changed: broadcast::Sender<Vec<String>>,
    events: broadcast::Sender<EdgeEvent>,
    acks: broadcast::Sender<(TypeKind, u64)>,
    dirty: Notify,
    proxies: Mutex<BTreeMap<u64, ProxyStatus>>,
    next_stream: AtomicU64,
    metrics: Metrics,
}

/// The edge control plane's state; cheap to clone.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").finish_non_exhaustive()
    }
}

impl Edge {
    /// An edge serving `listeners` (the configured edge listeners), with empty routes.
    #[must_use]
    pub fn new(listeners: Vec<EdgeListener>, metrics: Metrics) -> Self {
        let state = State {
            listeners,
            ..State::default()
        };
        let edge = Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                snapshot: watch::channel(Arc::new(Snapshot::default())).0,
                services: watch::channel(BTreeSet::new()).0,
                verdicts_changed: broadcast::channel(256).0,
                events: broadcast::channel(256).0,
                acks: broadcast::channel(1024).0,
                dirty: Notify::new(),
                proxies: Mutex::new(BTreeMap::new()),
                next_stream: AtomicU64::new(1),
                metrics,
            }),
        };
        edge.rebuild();
        edge
    }

    /// Runs the rebuild loop until `shutdown`: every change marks the edge dirty; one
    /// translation covers every change made before it starts.
    pub async fn run_rebuilder(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.dirty.notified() => self.rebuild(),
            }
        }
    }

    /// Adds or replaces a spec's edge routes.
    pub fn upsert_spec(&self, spec: EdgeSpec) {
        let mut st = self.inner.state.lock();
        if st.specs.get(&spec.key) == Some(&spec) {
            return;
        }
        st.specs.insert(spec.key.clone(), spec);
        drop(st);
        self.inner.dirty.notify_one();
    }

    /// Removes a spec's routes (deleted, invalid, or no routes any more).
    pub fn remove_spec(&self, key: &str) {
        if self.inner.state.lock().specs.remove(key).is_some() {
            self.inner.dirty.notify_one();
        }
    }

    /// Keys of the specs the edge holds.
    #[must_use]
    pub fn spec_keys(&self) -> BTreeSet<String> {
        self.inner.state.lock().specs.keys().cloned().collect()
    }

    /// Replaces a service's passing instances and clears its endpoint error.
    pub fn set_endpoints(&self, service: &str, endpoints: Vec<Endpoint>) {
        let mut st = self.inner.state.lock();
        let cleared = st.endpoint_errors.remove(service).is_some();
        if st.endpoints.get(service) == Some(&endpoints) && !cleared {
            return;
        }
        st.endpoints.insert(service.to_owned(), endpoints);
        drop(st);
        self.inner.dirty.notify_one();
    }

    /// Records that a service's health read failed: its last good endpoints stay; the
    /// specs of the service show the error in their verdict.
    pub fn set_endpoint_error(&self, service: &str, error: String) {
        let mut st = self.inner.state.lock();
        if st.endpoint_errors.get(service) == Some(&error) {
            return;
        }
        st.endpoint_errors.insert(service.to_owned(), error);
        drop(st);
        self.inner.dirty.notify_one();
    }

    /// Forgets a service's endpoints (its watch stopped).
    pub fn forget_service(&self, service: &str) {
        let mut st = self.inner.state.lock();
        st.endpoints.remove(service);
        st.endpoint_errors.remove(service);
    }

    /// Translates now and publishes the snapshot if any type's version changed.
    pub fn rebuild(&self) {
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        let translation = translate(Input {
            specs: &st.specs,
            endpoints: &st.endpoints,
            listeners: &st.listeners,
            quarantine: &st.quarantine,
        });
        // A quarantine whose host is gone or changed has done its job.
        let live: BTreeMap<&str, &str> = translation
            .plan
            .route_config
            .virtual_hosts
            .iter()
            .map(|v| (v.name.as_str(), v.digest.as_str()))
            .collect();
        let rejected_hosts: BTreeSet<String> = translation
            .verdicts
            .values()
            .flat_map(|v| v.rejected.iter().map(|r| r.route.host.clone()))
            .collect();
        st.quarantine
            .retain(|host, _| rejected_hosts.contains(host) && !live.contains_key(host.as_str()));

        let previous = self.inner.snapshot.borrow().clone();
        let candidate = Snapshot::from_plan(&translation.plan, st.generation + 1);
        let changed = TypeKind::ALL
            .iter()
            .any(|k| candidate.get(*k).version != previous.get(*k).version)
            || st.generation == 0;
        if changed {
            st.generation += 1;
            st.built_at = Some(Instant::now());
            self.inner.metrics.snapshots.inc();
        }
        let generation = st.generation;

        let mut changed_keys = Vec::new();
        let errors = st.endpoint_errors.clone();
        let mut verdicts = translation.verdicts.clone();
        for (key, verdict) in &mut verdicts {
            if let Some(spec) = st.specs.get(key)
                && let Some(e) = errors.get(&spec.service)
            {
                verdict
                    .endpoint_problems
                    .push(format!("endpoints of `{}` may be stale: {e}", spec.service));
            }
        }
        for (key, verdict) in &verdicts {
            let old = st.translation.verdicts.get(key);
            if old != Some(verdict) {
                changed_keys.push(key.clone());
            }
            if old.map(|o| &o.digest) != Some(&verdict.digest) {
                st.since.insert(key.clone(), generation);
            }
        }
        for key in st.translation.verdicts.keys() {
            if !verdicts.contains_key(key) {
                changed_keys.push(key.clone());
                st.since.remove(key);
            }
        }
        let (serving, conflicting, rejected) = verdicts.values().fold((0, 0, 0), |acc, v| {
            (
                acc.0 + v.serving.len(),
                acc.1 + v.conflicts.len(),
                acc.2 + v.rejected.len(),
            )
        });
        let m = &self.inner.metrics;
        m.routes_serving
            .set(i64::try_from(serving).unwrap_or(i64::MAX));
        m.routes_conflicting
            .set(i64::try_from(conflicting).unwrap_or(i64::MAX));
        m.routes_rejected
            .set(i64::try_from(rejected).unwrap_or(i64::MAX));
        let services = translation.services();
        st.translation = Translation {
            plan: translation.plan,
            verdicts,
        };
        drop(guard);
        if changed {
            self.inner.snapshot.send_replace(Arc::new(candidate));
        }
        self.inner.services.send_if_modified(|s| {
            if *s == services {
                false
            } else {
                *s = services;
                true
            }
        });
        if !changed_keys.is_empty() {
            // Nobody listening is fine: verdicts are read on demand too.
            let _ = self.inner.verdicts_changed.send(changed_keys);
        }
    }

    /// The verdict of a spec the edge holds.
    #[must_use]
    pub fn verdict(&self, key: &str) -> Option<SpecVerdict> {
        self.inner
            .state
            .lock()
            .translation
            .verdicts
            .get(key)
            .cloned()
    }

    /// Whether the connected proxies acked the spec's current routes.
    #[must_use]
    pub fn ack_state(&self, key: &str) -> AckState {
        let since = self.inner.state.lock().since.get(key).copied().unwrap_or(0);
        let proxies = self.inner.proxies.lock();
        let mut pending = Vec::new();
        for p in proxies.values() {
            let route = p.types.get(TypeKind::Route.label());
            if route.is_none_or(|t| t.acked_generation < since) {
                pending.push(p.node_id.clone());
            }
        }
        AckState {
            proxies: proxies.len(),
            acked: proxies.len() - pending.len(),
            pending,
        }
    }

    /// The connected proxies.
    #[must_use]
    pub fn proxies(&self) -> Vec<ProxyStatus> {
        self.inner.proxies.lock().values().cloned().collect()
    }

    /// The current snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// When the current snapshot was built.
    #[must_use]
    pub fn built_at(&self) -> Option<Instant> {
        self.inner.state.lock().built_at
    }

    /// The current plan (for `steward status` and tests).
    #[must_use]
    pub fn plan(&self) -> crate::translate::Plan {
        self.inner.state.lock().translation.plan.clone()
    }

    /// Services in use: the health watches follow this.
    #[must_use]
    pub fn services(&self) -> watch::Receiver<BTreeSet<String>> {
        self.inner.services.subscribe()
    }

    /// Keys whose verdict changed, in batches.
    #[must_use]
    pub fn verdict_changes(&self) -> broadcast::Receiver<Vec<String>> {
        self.inner.verdicts_changed.subscribe()
    }

    /// NACKs and other things worth an event.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<EdgeEvent> {
        self.inner.events.subscribe()
    }

    /// The metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn subscribe_snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    pub(crate) fn open_stream(&self, peer: Option<String>) -> u64 {
        let stream = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        self.inner.proxies.lock().insert(
            stream,
            ProxyStatus {
                stream,
                node_id: String::new(),
                peer,
                types: BTreeMap::new(),
            },
        );
        self.inner.metrics.connected_proxies.inc();
        stream
    }

    pub(crate) fn close_stream(&self, stream: u64) {
        if self.inner.proxies.lock().remove(&stream).is_some() {
            self.inner.metrics.connected_proxies.dec();
        }
    }

    pub(crate) fn update_stream(&self, stream: u64, session: &crate::session::Session) {
        if let Some(p) = self.inner.proxies.lock().get_mut(&stream) {
            session.node_id().clone_into(&mut p.node_id);
            for kind in TypeKind::ALL {
                p.types.insert(kind.label(), session.status(kind).clone());
            }
        }
    }

    /// A proxy acked `kind` at `generation` (it had `previous` before): the latency
    /// metric, and for routes the specs whose routes this proxy now has (their
    /// "acked by every Envoy" may have changed).
    pub(crate) fn record_ack(&self, kind: TypeKind, previous: u64, generation: u64) {
        let st = self.inner.state.lock();
        if generation == st.generation
            && let Some(built) = st.built_at
        {
            self.inner
                .metrics
                .push_latency
                .get_or_create(&TypeLabel::of(kind))
                .observe(built.elapsed().as_secs_f64());
        }
        let keys: Vec<String> = if kind == TypeKind::Route && generation > previous {
            st.since
                .iter()
                .filter(|(_, g)| previous < **g && **g <= generation)
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            Vec::new()
        };
        drop(st);
        let _ = self.inner.acks.send((kind, generation));
        if !keys.is_empty() {
            let _ = self.inner.verdicts_changed.send(keys);
        }
    }

    /// Every ACK: its type and the snapshot generation acked (benchmarks wait on it).
    #[must_use]
    pub fn acks(&self) -> broadcast::Receiver<(TypeKind, u64)> {
        self.inner.acks.subscribe()
    }

    /// A proxy refused a response: WARN, metric, event; a refused route configuration
    /// loses the virtual hosts Envoy's message names (their specs are marked rejected
    /// until they change), so the other specs' routes still reach the proxy.
    pub(crate) fn record_nack(&self, node_id: &str, kind: TypeKind, nack: &Nack) {
        self.inner
            .metrics
            .nacks
            .get_or_create(&TypeLabel::of(kind))
            .inc();
        let mut specs = Vec::new();
        if kind == TypeKind::Route {
            let mut st = self.inner.state.lock();
            let named: Vec<(String, String, Vec<String>)> = st
                .translation
                .plan
                .route_config
                .virtual_hosts
                .iter()
                .filter(|vh| mentions(&nack.message, &vh.name))
                .map(|vh| {
                    let owners = vh
                        .routes
                        .iter()
                        .filter_map(|r| r.name.rsplit_once('#').map(|(k, _)| k.to_owned()))
                        .collect();
                    (vh.name.clone(), vh.digest.clone(), owners)
                })
                .collect();
            for (host, digest, owners) in named {
                st.quarantine.insert(
                    host,
                    Quarantine {
                        digest,
                        reason: format!("Envoy {node_id} refused the route: {}", nack.message),
                    },
                );
                specs.extend(owners);
            }
            specs.sort();
            specs.dedup();
        }
        tracing::warn!(
            node = node_id,
            r#type = kind.label(),
            version = nack.version,
            error_detail = nack.message,
            withdrawn = ?specs,
            "Envoy refused an xDS response; it keeps its last accepted config"
        );
        let _ = self.inner.events.send(EdgeEvent::Nack {
            node_id: node_id.to_owned(),
            kind: kind.label(),
            version: nack.version.clone(),
            message: nack.message.clone(),
            specs: specs.clone(),
        });
        if !specs.is_empty() {
            self.inner.dirty.notify_one();
        }
    }
}

/// Whether Envoy's message names this virtual host (as a whole word, so `a.com` does not
/// match inside `xa.com`).
fn mentions(message: &str, host: &str) -> bool {
    message.match_indices(host).any(|(i, _)| {
        let before = message[..i].chars().next_back();
        let after = message[i + host.len()..].chars().next();
        let boundary = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*'))
        };
        boundary(before) && boundary(after)
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_host_is_found_only_as_a_whole_name() {
        assert!(mentions(
            "virtual host 'a.example.com' is bad",
            "a.example.com"
        ));
        assert!(mentions("a.example.com", "a.example.com"));
        assert!(!mentions("virtual host xa.example.com", "a.example.com"));
        assert!(!mentions("a.example.com.au failed", "a.example.com"));
    }
}
