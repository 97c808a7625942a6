//! The operator's explicit context: what reconciles, garbage collection and the API
//! share. It sits below them in the module graph (they import it; it imports none of
//! them), and `operator.rs` only builds and wires it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use steward_hashi::{ConsulClient, NomadClient, VaultClient};
use steward_runtime::{Leadership, Recorder, WorkQueue};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::cache::{Caches, Changes};
use crate::config::OperatorConfig;
use crate::guard::GcState;
use crate::key::SpecKey;
use crate::memo::{ParsedMemo, RenderMemo};
use crate::metrics::Metrics;
use crate::writer::StatusWriter;

/// The Consul, Nomad and Vault clients the operator talks through (from
/// `steward-hashi`; build them from the standard environment variables with
/// `ConsulClient::from_env()` etc.).
#[derive(Debug, Clone)]
pub struct Clients {
    /// Consul: KV (specs, statuses, leader lock) and config entries.
    pub consul: ConsulClient,
    /// Nomad: jobs and deployments.
    pub nomad: NomadClient,
    /// Vault: ACL policies and JWT auth roles.
    pub vault: VaultClient,
}

/// Everything reconciles, the collector and the API share: the configuration, the
/// clients, the caches, the status writer, the work queue, the metrics and events, and
/// the bounded memos. Below reconcile, gc and the API in the module graph; built by
/// [`crate::Operator::new`].
pub(crate) struct OperatorContext {
    pub(crate) config: OperatorConfig,
    pub(crate) clients: Clients,
    pub(crate) caches: Caches,
    pub(crate) metrics: Metrics,
    pub(crate) registry: Arc<Registry>,
    pub(crate) recorder: Recorder,
    pub(crate) writer: StatusWriter,
    /// Where the caches publish their changes (mapped to keys for the controller).
    pub(crate) changes: Changes,
    /// The controller's work queue (the API queues keys on it directly).
    pub(crate) queue: WorkQueue<SpecKey>,
    /// Asks the collector for a pass (it debounces).
    pub(crate) gc_kick: Arc<Notify>,
    pub(crate) gc: GcState,
    pub(crate) leadership: watch::Receiver<Leadership>,
    /// Rendered specs by key (bounded; see `reconcile::render`).
    pub(crate) renders: Mutex<RenderMemo>,
    /// Validated specs by key, at their generation (see `crate::memo`).
    pub(crate) parsed: Mutex<ParsedMemo>,
    /// When the edge gateway was last seen.
    pub(crate) gateway_seen: Mutex<Option<Instant>>,
    /// Held while one reconcile checks the edge gateway or the Nomad namespaces, so
    /// that 64 reconciles starting at once make one such read, not 64.
    pub(crate) first_checks: tokio::sync::Mutex<()>,
    /// Reconciles run so far (any result).
    pub(crate) reconciles: AtomicU64,
    /// Specs rendered so far (the renderings the memo did not hold).
    pub(crate) renderings: AtomicU64,
    /// Spec documents parsed and validated so far.
    pub(crate) parses: AtomicU64,
    /// Keys whose spec this process has fully checked against the live objects, with
    /// the generation checked.
    pub(crate) verified: Mutex<HashMap<String, u64>>,
    /// Objects whose last write had an unknown outcome: read directly for a while.
    pub(crate) uncertain: crate::uncertain::UncertainWrites,
    /// What start-up detection found (`None`: not run, e.g. `steward dev`).
    pub(crate) cluster: parking_lot::RwLock<Option<crate::detect::Detected>>,
    /// The edge control plane, when the edge mode includes xDS.
    pub(crate) edge: Option<steward_edge::Edge>,
    /// When each waiting key began to wait (bounded), so that its status says what it
    /// waits for after `status::WAIT_TIMEOUT`.
    pub(crate) waits: crate::waits::Waits,
}

impl fmt::Debug for OperatorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorContext")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}
