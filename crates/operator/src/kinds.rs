//! One module per object kind, behind one trait ([`Kind`]), and the registry of them
//! ([`KINDS`], in apply order).
//!
//! A kind's module owns every per-kind decision and read: which of its objects a
//! rendered spec wants, who owns a live one, how desired and live compare, how the live
//! objects are found (cache facts first, a point read only where the facts cannot
//! vouch), the pre-flight read of a creation, the write and delete (check-and-set where
//! the server has it), the garbage collection inventory and re-read before a delete,
//! and the cache whose health says whether the kind can be reconciled at all.
//!
//! What stays outside: the order across kinds and its one exception (`crate::plan`),
//! the sequencing of a reconcile (`crate::reconcile`) and of a collection pass
//! (`crate::gc`), the caches' watch loops themselves (`crate::cache`: each kind's
//! [`Kind::watches`] says which of them keep its cache, and `operator.rs` spawns them),
//! and the rendering of each kind (`steward_render`, which also defines [`ObjectKind`]).
//!
//! Adding a kind is one module plus one registration line in [`KINDS`] (and, on the
//! render side, the `ObjectKind` variant and its rendering).

mod config_entry;
mod http_route;
mod nomad_job;
mod service_defaults;
mod service_intentions;
mod trust;
mod vault_policy;
mod vault_role;

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use steward_render::names::SpecKey;
use steward_render::{Desired, ObjectKind, ObjectRef};
use steward_runtime::watcher::WatcherConfig;

use crate::cache::{Caches, Health};
use crate::context::OperatorContext;
use crate::guard::GcObject;
use crate::objects::{Live, LiveObject, Step, WriteOp};
use crate::reconcile_error::ReconcileError;
use crate::status::ObjectState;

pub(crate) use trust::Trust;

/// One watch loop that keeps a cache, named for the task list and the logs.
pub(crate) struct Watch {
    /// The task's name (`config-entry-watch`).
    pub(crate) name: &'static str,
    /// The loop; it runs until the operator stops.
    pub(crate) task: BoxFuture<'static, ()>,
}

impl Watch {
    pub(crate) fn new(
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            name,
            task: Box::pin(task),
        }
    }
}

/// A list watch's settings at most `rate` lists a second (bursts of `burst`). Every
/// answer of a list watch is the whole list, so lists of live objects are rate-limited;
/// our own writes are overlaid until the list shows them, so a little lag costs nothing.
pub(crate) fn list_rate(rate: f64, burst: u32) -> WatcherConfig {
    WatcherConfig {
        max_list_rate: rate,
        list_burst: burst,
        ..WatcherConfig::default()
    }
}

/// Every kind, in apply order: the one list the operator goes through.
pub(crate) static KINDS: [&dyn Kind; 6] = [
    &vault_policy::KIND,
    &vault_role::KIND,
    &service_defaults::KIND,
    &service_intentions::KIND,
    &nomad_job::KIND,
    &http_route::KIND,
];

/// How messages and events name `o` of `key` (its kind says).
pub(crate) fn describe(o: &ObjectRef, key: &SpecKey) -> String {
    of(o.kind).describe(key, &o.name)
}

/// The module of `kind`.
pub(crate) fn of(kind: ObjectKind) -> &'static dyn Kind {
    KINDS
        .iter()
        .copied()
        .find(|k| k.kind() == kind)
        .expect("every ObjectKind is registered in KINDS (checked by the registry tests)")
}

/// The object kinds whose cache is synced and fresh (garbage collection deletes only
/// objects of these kinds), and the others, each in apply order.
pub(crate) fn gc_kinds(caches: &Caches) -> (Vec<ObjectKind>, Vec<ObjectKind>) {
    KINDS
        .iter()
        .map(|k| k.kind())
        .partition(|k| of(*k).health(caches).is_fresh())
}

/// Every cache's health, in a fixed order: the specs', the statuses', then each kind's
/// caches in apply order (`/readyz`, the `steward_cache_*` metrics).
pub(crate) fn cache_health(caches: &Caches) -> Vec<&Health> {
    let mut out = vec![caches.specs.health(), caches.statuses.health()];
    out.extend(KINDS.iter().flat_map(|k| k.caches(caches)));
    out
}

/// Ready to serve (`/readyz`): the specs and statuses have listed, and every other
/// cache has either listed or is failing with a known reason (reported as degraded:
/// the specs that need it are held, the others reconcile). Not ready while a cache is
/// still on its first listing without trouble.
pub(crate) fn ready(caches: &Caches) -> bool {
    caches.specs.health().is_synced()
        && caches.statuses.health().is_synced()
        && cache_health(caches)
            .iter()
            .all(|h| h.is_synced() || h.error().is_some())
}

/// The key whose current spec gives an object this name, if any (garbage collection's
/// inventory takes such a Vault object as that spec's without reading it).
fn spec_using(caches: &Caches, name: &str) -> Option<String> {
    caches
        .names
        .keys_for(name)
        .into_iter()
        .find(|k| caches.specs.contains(k))
}

/// What a kind's live lookup works from.
#[derive(Clone, Copy)]
pub(crate) struct Lookup<'a> {
    /// Clients, caches, configuration.
    pub(crate) shared: &'a OperatorContext,
    /// The spec key.
    pub(crate) key: &'a SpecKey,
    /// Its rendering.
    pub(crate) desired: &'a Desired,
    /// What its last status of the same rendering vouches for.
    pub(crate) trust: Option<Trust<'a>>,
    /// Objects whose last write had an unknown outcome ([`crate::uncertain`]): read
    /// from their server, never taken from a cache or vouched for.
    pub(crate) uncertain: &'a BTreeSet<ObjectRef>,
}

impl Lookup<'_> {
    /// Whether `name` of `kind` must be read from its server now.
    pub(crate) fn read_directly(&self, kind: ObjectKind, name: &str) -> bool {
        self.uncertain
            .iter()
            .any(|o| o.kind == kind && o.name == name)
    }
}

/// One of our writes is not shown by the watch yet and differs from the spec now: its
/// index is unknown, so no check-and-set write can follow it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitForWatch;

/// What a kind's live lookup gives: `Err(WaitForWatch)` inside when the key has to wait
/// for a watch, the outer error when a read failed.
pub(crate) type Looked = Result<Result<(), WaitForWatch>, ReconcileError>;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The state of the object afterwards.
    pub(crate) state: ObjectState,
    /// For a job registration: the new `JobModifyIndex`.
    pub(crate) job_modify_index: Option<u64>,
    /// For a job registration: Nomad's `Warnings` text (empty when none).
    pub(crate) warnings: String,
}

impl From<ObjectState> for Applied {
    fn from(state: ObjectState) -> Self {
        Self {
            state,
            job_modify_index: None,
            warnings: String::new(),
        }
    }
}

/// `Updated` over an existing object, else `Created`.
fn created_or_updated(existed: bool) -> ObjectState {
    if existed {
        ObjectState::Updated
    } else {
        ObjectState::Created
    }
}

/// The error of a step handed to a kind that does not write it: the plan and garbage
/// collection build steps through the kind's own module, so this means a bug.
fn foreign_op(object: String, op: &WriteOp) -> ReconcileError {
    ReconcileError::Api {
        object,
        source: steward_hashi::Error::InvalidArgument {
            message: format!("this kind does not perform {op:?}"),
        },
    }
}

/// One kind of object Steward owns: everything the operator does that depends on the
/// kind. Object-safe: the registry holds `&dyn Kind`.
pub(crate) trait Kind: Sync {
    /// Which kind this is.
    fn kind(&self) -> ObjectKind;

    /// Readiness: the health of the cache that holds this kind's live objects. A spec
    /// that renders the kind waits for it to sync; garbage collection needs it fresh.
    fn health<'c>(&self, caches: &'c Caches) -> &'c Health;

    /// How messages and events name one object of this kind of `key` (`nomad-job
    /// shop/web`: a job's namespace is its spec's).
    fn describe(&self, _key: &SpecKey, name: &str) -> String {
        format!("{} {name}", self.kind())
    }

    /// What a garbage collection delete does to the object, for its event (`deleted`;
    /// a job is `stopped`, or `purged` when `purge` is set).
    fn removal(&self, _purge: bool) -> &'static str {
        "deleted"
    }

    /// Every cache this kind's watches keep (what `/readyz` and the metrics show, and
    /// what a spec rendering the kind waits for before its first reconcile): by default
    /// the one of [`Kind::health`].
    fn caches<'c>(&self, caches: &'c Caches) -> Vec<&'c Health> {
        vec![self.health(caches)]
    }

    /// Cache source: the watch loops that keep this kind's cache (and publish its
    /// changes), for `operator.rs` to spawn. A source shared by two kinds is started by
    /// one of them: the Vault poll lists policies and roles in turn, and `vault-policy`
    /// starts it.
    fn watches(&self, ctx: &Arc<OperatorContext>) -> Vec<Watch>;

    /// Whether a creation must be read first even though the plan says the object is
    /// absent: the cache may lag, and only check-and-set creations from a fresh cache
    /// can do without.
    fn reads_before_create(&self, caches: &Caches) -> bool {
        !self.health(caches).is_fresh()
    }

    /// The names of the objects of this kind `desired` renders, in its order.
    fn desired(&self, desired: &Desired) -> Vec<String>;

    /// The spec key owning a live object of this kind (`None`: not managed by Steward).
    /// `key` is the key the object was gathered for (what the watch vouched for).
    fn owner(&self, key: &SpecKey, name: &str, live: &LiveObject) -> Option<SpecKey>;

    /// Normalise and compare the desired object `name` with its live form: the write
    /// that brings it to the desired form (`Create` when absent), `None` when in sync.
    fn compare(&self, desired: &Desired, name: &str, live: Option<&LiveObject>) -> Option<Step>;

    /// The deletion of an owned live object the spec no longer renders (`None`: this
    /// kind is never deleted by a reconcile). `jwt_mount` is the Vault auth mount.
    fn delete(&self, name: &str, live: &LiveObject, jwt_mount: &str) -> Option<Step>;

    /// Adds to `live` the objects of this kind `cx.key` may own, from the cache's facts
    /// where they vouch for them and point reads elsewhere; notes in `pending` our own
    /// writes the watch has not shown yet.
    ///
    /// # Errors
    ///
    /// A failed read; `Ok(Err(WaitForWatch))` when an unseen write of ours differs from
    /// what the spec wants now.
    fn gather<'a>(
        &'a self,
        cx: Lookup<'a>,
        live: &'a mut Live,
        pending: &'a mut BTreeSet<ObjectRef>,
    ) -> BoxFuture<'a, Looked>;

    /// Reads the object a `Create` step would write: `Some(owner)` when it exists after
    /// all, `None` when it is absent.
    ///
    /// # Errors
    ///
    /// A failed read.
    fn preflight<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Option<Option<SpecKey>>, ReconcileError>>;

    /// Performs one step (a write or a delete), check-and-set where the server has it,
    /// and records it in the cache.
    ///
    /// # Errors
    ///
    /// The typed [`ReconcileError`] of the request, a lost check-and-set race, or a
    /// foreign owner found on the re-read of a server without check-and-set.
    fn execute<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
        live: &'a Live,
    ) -> BoxFuture<'a, Result<Applied, ReconcileError>>;

    /// Every owned object of this kind (garbage collection's inventory): `None` when a
    /// read needed to know an owner failed (no positive knowledge).
    fn inventory<'a>(&'a self, shared: &'a OperatorContext)
    -> BoxFuture<'a, Option<Vec<GcObject>>>;

    /// The owners of objects the cache lists without reading contents (garbage
    /// collection keeps their statuses while such objects remain).
    fn listed_owners(&self, _shared: &OperatorContext) -> Vec<String> {
        Vec::new()
    }

    /// Re-reads an orphan for garbage collection: the delete to perform when it still
    /// exists and is still owned by `owner` (`o.owner`), `None` otherwise.
    ///
    /// # Errors
    ///
    /// A failed read.
    fn gc_delete<'a>(
        &'a self,
        shared: &'a OperatorContext,
        o: &'a GcObject,
        owner: &'a SpecKey,
    ) -> BoxFuture<'a, Result<Option<WriteOp>, ReconcileError>>;
}

#[cfg(test)]
mod tests;
