//! `reconcile(key)`: level-triggered, reads the whole truth for the key each time and
//! moves it one idempotent step toward the spec.
//!
//! 1. The spec cache must be synced; a missing key is left to garbage collection.
//! 2. Load and validate (guardrails included); the KV key must equal
//!    `metadata.namespace/metadata.name`. Invalid → status `Invalid`, no writes.
//! 3. Replicas from the scaling windows at "now"; render; requeue at the next boundary.
//! 4. Live objects from the caches (direct reads when a cache is stale). A key whose
//!    last status describes this very rendering is trusted where the caches say nothing
//!    changed (the job's `JobModifyIndex`, listed Vault names), so a converged key costs
//!    no read at all.
//! 5. Any desired object owned by someone else → `Conflict`, no writes.
//! 6. The plan (see [`crate::plan`]) is applied in order with CAS; a failed step stops
//!    the rest. Vault objects to create, and objects of a kind whose cache is not fresh,
//!    are first read directly, all at once (caches lag): one that exists is a conflict,
//!    or our own write the watch has not shown; either way nothing is written. Consul
//!    entries and Nomad jobs a fresh cache says are absent are created with CAS 0
//!    without a read (a lagging cache makes the write fail and retry, never overwrite).
//!    Vault objects are re-read right before an update (no CAS there).
//! 7. A converged key writes nothing, not even its status.
//! 8. Drift (an object that matched this generation now differs) is reported as a
//!    `Drift` event naming the fields, then repaired.
//! 9. The status is written through the batching, fenced status writer when it changed.

mod apply;
mod describe;
mod gather;
mod outcome;
mod render;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use steward_hashi::QueryOptions;
use steward_hashi::nomad::Job;
use steward_render::names::{self, SpecKey};
use steward_render::{ObjectKind, ObjectRef};
use steward_runtime::{Action, Context, EventType, Lease};
use tokio::time::Instant;

use crate::cache::nomad::{CachedJob, job_key};
use crate::context::OperatorContext;
use crate::plan::{self, Step, StepKind, owner_of_body};
use crate::rollout::{JobState, RevertCheck, reverted};
use crate::status::{self, EventDoc, ObjectState, Phase, StatusDoc, StatusInput, Verdict};
use crate::writer::{StatusOp, WriteError};

pub(crate) use apply::execute;
use apply::preflight;
pub(crate) use describe::describe_spec;
use gather::{Gathered, Trust, gather};
pub(crate) use outcome::summarise;
use outcome::{
    applied_event, drift_event, next_action, repeated_failure, rollout_after, scaling_requeue,
};
use render::{Rendered, render_spec};

/// How long to wait for the watch to show our own write before looking again.
const SHORT_REQUEUE: Duration = Duration::from_millis(100);
/// How long to wait for a cache that has not synced yet (a server may be down at start:
/// do not spin).
const SYNC_REQUEUE: Duration = Duration::from_secs(1);
/// How often a spec held by a cache that cannot sync looks again (the cache's first
/// sync queues every spec at once; this is the safety net).
const UNSYNCED_REQUEUE: Duration = Duration::from_secs(30);
/// When a pre-flight read found a clash the watches have not shown yet, look again once
/// they had time to (the watch event then triggers anyway).
const PREFLIGHT_REQUEUE: Duration = Duration::from_secs(1);
/// Why a reconcile failed (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A request to Consul, Nomad or Vault failed.
    #[error("{object}: request failed")]
    Api {
        /// The object (`nomad-job shop/web`).
        object: String,
        /// The cause.
        #[source]
        source: steward_hashi::Error,
    },
    /// A check-and-set write lost a race (someone changed the object meanwhile).
    #[error("{object}: changed concurrently (check-and-set lost); retrying")]
    CasLost {
        /// The object.
        object: String,
    },
    /// The Nomad namespace of the job does not exist and may not be created.
    #[error(
        "Nomad namespace {namespace:?} does not exist: create it (`nomad namespace apply {namespace}`) or enable create_nomad_namespaces"
    )]
    NamespaceMissing {
        /// The namespace.
        namespace: String,
    },
    /// The edge gateway routes attach to does not exist.
    #[error(
        "edge gateway {kind} {name:?} does not exist: create it (Steward attaches routes to it but does not own it)"
    )]
    GatewayMissing {
        /// Gateway kind.
        kind: String,
        /// Gateway name.
        name: String,
    },
    /// Right before writing, the object turned out to be owned by someone else.
    #[error("{object}: {message}")]
    Conflict {
        /// The object.
        object: String,
        /// Who owns it.
        message: String,
    },
    /// The status could not be written.
    #[error("status of {key}")]
    Status {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: WriteError,
    },
}

impl ReconcileError {
    /// Whether trying again may help: a lost check-and-set race or a request that
    /// failed in a retryable way does; a missing namespace or gateway, a foreign owner or
    /// a request the server rejected does not until something else changes.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Api { source, .. } => source.is_retryable(),
            ReconcileError::CasLost { .. } => true,
            ReconcileError::Status { .. } => true,
            ReconcileError::NamespaceMissing { .. }
            | ReconcileError::GatewayMissing { .. }
            | ReconcileError::Conflict { .. } => false,
        }
    }
}

pub use crate::error::chain;

fn describe(o: &ObjectRef, key: &SpecKey) -> String {
    match o.kind {
        ObjectKind::NomadJob => format!("{} {}/{}", o.kind, names::nomad_namespace(key), o.name),
        _ => format!("{} {}", o.kind, o.name),
    }
}

fn api(object: String) -> impl FnOnce(steward_hashi::Error) -> ReconcileError {
    move |source| ReconcileError::Api { object, source }
}

/// Events recorded during one reconcile, also kept for the status document.
struct Events<'a> {
    key: &'a str,
    shared: &'a OperatorContext,
    docs: Vec<EventDoc>,
}

impl Events<'_> {
    fn record(&mut self, type_: EventType, reason: &str, message: String, object: Option<String>) {
        let e = self
            .shared
            .recorder
            .record(self.key, type_, reason, message, object);
        self.docs.push(EventDoc::from(&e));
    }
}

/// The reconcile entry point given to the controller.
///
/// # Errors
/// [`ReconcileError`] when a step or the status write failed (retried with backoff).
pub(crate) async fn reconcile(
    key: crate::key::SpecKey,
    ctx: Arc<Context<Arc<OperatorContext>>>,
    lease: Lease,
) -> Result<Action, ReconcileError> {
    let shared = ctx.data().clone();
    let started = Instant::now();
    // `run` takes the key as written in KV: one that is not `<ns>/<name>` still runs,
    // to report it as an Invalid status.
    let result = run(&shared, key.as_str(), &lease).await;
    shared
        .reconciles
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let label = match &result {
        Ok(_) => "ok",
        Err(ReconcileError::CasLost { .. }) => "conflict_retry",
        Err(_) => "error",
    };
    shared
        .metrics
        .reconciled(label, started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        tracing::debug!(%key, error = %chain(error), "reconcile failed");
    }
    result
}

async fn run(
    shared: &Arc<OperatorContext>,
    key: &str,
    lease: &Lease,
) -> Result<Action, ReconcileError> {
    let caches = &shared.caches;
    if !caches.specs.health().is_synced() || !caches.statuses.health().is_synced() {
        return Ok(Action::requeue(SYNC_REQUEUE));
    }
    let Some(entry) = caches.specs.get(key) else {
        // Gone: garbage collection takes its objects; forget what was remembered of it.
        render::forget(shared, key);
        return Ok(Action::await_change());
    };
    let generation = entry.generation;
    let stored = caches.statuses.current(key);
    let mut events = Events {
        key,
        shared,
        docs: Vec::new(),
    };
    let now = jiff::Timestamp::now();
    let rendered = render_spec(shared, key, generation, &entry.text, now);
    let (spec_key, desired, replicas, next_change, batch) = match rendered {
        Rendered::Invalid(message, diagnostics) => {
            let input = StatusInput {
                generation,
                spec_hash: None,
                replicas: None,
                next_scaling_change: None,
                job_modify_index: None,
                verdict: Verdict::Invalid {
                    message,
                    diagnostics,
                },
            };
            write_status(shared, key, lease, &input, stored.as_deref(), &mut events).await?;
            return Ok(Action::await_change());
        }
        Rendered::Ok {
            key,
            desired,
            replicas,
            next_change,
            batch,
        } => (key, desired, replicas, next_change, batch),
    };
    let trust = Trust::of(stored.as_deref(), generation, &desired.hash, replicas);
    let base = |verdict, job_modify_index| StatusInput {
        generation,
        spec_hash: Some(desired.hash.clone()),
        replicas: Some(replicas),
        next_scaling_change: next_change,
        job_modify_index,
        verdict,
    };
    let (live, pending) = match gather(shared, &spec_key, &desired, trust).await? {
        Gathered::Live(live, pending) => (live, pending),
        Gathered::WaitForWatch => return Ok(Action::requeue(SHORT_REQUEUE)),
        // A cache still on its first listing: look again shortly, quietly (its sync
        // queues every spec anyway).
        Gathered::Waiting(waiting) if waiting.iter().all(|w| w.error.is_none()) => {
            return Ok(Action::requeue(SYNC_REQUEUE));
        }
        // A cache that cannot sync: say so in the spec's status, and look again now
        // and then (the cache's first sync queues every spec).
        Gathered::Waiting(waiting) => {
            let input = base(
                Verdict::Waiting {
                    caches: waiting
                        .into_iter()
                        .map(|w| status::WaitingFor {
                            kind: w.kind.as_str().to_owned(),
                            cache: w.cache.to_owned(),
                            error: w.error,
                        })
                        .collect(),
                    objects: desired.objects(),
                },
                None,
            );
            write_status(shared, key, lease, &input, stored.as_deref(), &mut events).await?;
            return Ok(Action::requeue(UNSYNCED_REQUEUE));
        }
    };
    let requeue = scaling_requeue(next_change, now);

    let conflicts = plan::conflicts(&spec_key, &desired, &live);
    if !conflicts.is_empty() {
        let input = base(
            Verdict::Conflict {
                conflicts,
                objects: desired.objects(),
            },
            None,
        );
        write_status(shared, key, lease, &input, stored.as_deref(), &mut events).await?;
        return Ok(requeue.unwrap_or_else(Action::await_change));
    }

    let mut plan = plan::plan(&spec_key, &desired, &live, &shared.config.jwt_auth_mount);
    let jkey = job_key(
        &names::nomad_namespace(&spec_key),
        &names::job_id(&spec_key),
    );
    let job_ref = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: desired.nomad_job.id.clone(),
    };
    // What the status will record as the job's verified `JobModifyIndex`.
    let mut job_index = match (&live.job, live.job_verified) {
        (_, Some(index)) => Some(index),
        (Some(j), None) if plan.in_sync.contains(&job_ref) => Some(j.view.job_modify_index),
        _ => None,
    };
    let mut held: Option<String> = None;
    if let (Some(pos), Some(live_job)) = (
        plan.steps
            .iter()
            .position(|s| s.object == job_ref && s.kind == StepKind::Update),
        live.job.as_deref(),
    ) && let Some(message) = revert_hold(
        shared,
        &jkey,
        &desired.hash,
        live_job,
        written_by_others(stored.as_deref(), generation, live_job),
    )
    .await?
    {
        plan.steps.remove(pos);
        held = Some(message);
    }
    if plan.steps.iter().any(|s| pending.contains(&s.object)) {
        // The watch has not shown our last write of an object that needs another one:
        // its index is unknown, so wait for it.
        return Ok(Action::requeue(SHORT_REQUEUE));
    }
    // Creations of Consul entries and Nomad jobs are check-and-set (`cas=0`,
    // `EnforceIndex` 0): over an object a fresh cache has not shown yet they fail and
    // are retried, never overwrite. So only creations the caches cannot vouch for are
    // read first: a stale cache's kinds, and Vault's (no check-and-set there, and its
    // names are polled).
    let creates: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Create)
        .filter(|s| {
            matches!(
                s.object.kind,
                ObjectKind::VaultPolicy | ObjectKind::VaultRole
            ) || !caches.kind_health(s.object.kind).is_fresh()
        })
        .collect();
    if !creates.is_empty() {
        let found = preflight(shared, &spec_key, &creates).await?;
        let foreign: Vec<(ObjectRef, String)> = found
            .iter()
            .filter(|(_, owner)| owner.as_ref() != Some(&spec_key))
            .map(|(o, owner)| (o.clone(), plan::owner_message(owner.as_ref())))
            .collect();
        if !foreign.is_empty() {
            let input = base(
                Verdict::Conflict {
                    conflicts: foreign,
                    objects: desired.objects(),
                },
                None,
            );
            write_status(shared, key, lease, &input, stored.as_deref(), &mut events).await?;
            return Ok(Action::requeue(PREFLIGHT_REQUEUE));
        }
        if !found.is_empty() {
            // Ours after all (a write the watch has not shown yet): look again shortly.
            return Ok(Action::requeue(SHORT_REQUEUE));
        }
    }

    let previous = stored
        .as_deref()
        .filter(|s| s.observed_generation == generation);
    let mut results: Vec<(ObjectRef, ObjectState, Option<String>)> = plan
        .in_sync
        .iter()
        .map(|o| (o.clone(), ObjectState::Synced, None))
        .collect();
    if let Some(message) = &held {
        results.push((job_ref.clone(), ObjectState::Pending, Some(message.clone())));
    }
    let mut failure: Option<ReconcileError> = None;
    let mut job_written = false;
    for step in &plan.steps {
        if failure.is_some() {
            let state = if step.kind == StepKind::Delete {
                continue;
            } else {
                ObjectState::Pending
            };
            results.push((step.object.clone(), state, None));
            continue;
        }
        let object = describe(&step.object, &spec_key);
        if let Some((type_, reason, message)) = drift_event(step, &object, previous, replicas) {
            events.record(type_, reason, message, Some(object.clone()));
        }
        match execute(shared, &spec_key, step, &live).await {
            Ok(applied) => {
                let state = applied.state;
                if step.object == job_ref {
                    job_index = applied.job_modify_index;
                    job_written |= state != ObjectState::Synced;
                }
                if let Some((type_, reason, message)) = applied_event(step, &object, state) {
                    events.record(type_, reason, message, Some(object));
                }
                if state != ObjectState::Deleted {
                    results.push((step.object.clone(), state, None));
                }
            }
            Err(error) => {
                let text = chain(&error);
                if !repeated_failure(stored.as_deref(), &text) {
                    events.record(
                        EventType::Warning,
                        "ApplyFailed",
                        text.clone(),
                        Some(object),
                    );
                }
                let state = if matches!(error, ReconcileError::Conflict { .. }) {
                    ObjectState::Conflict
                } else {
                    ObjectState::Error
                };
                if step.kind != StepKind::Delete {
                    results.push((step.object.clone(), state, Some(text)));
                }
                failure = Some(error);
            }
        }
    }
    // Objects in apply order, as the spec lists them.
    let order = desired.objects();
    results.sort_by_key(|(o, _, _)| order.iter().position(|x| x == o).unwrap_or(usize::MAX));

    // Right after our own registration nothing is known of its rollout yet: the last
    // status's availability does not carry over to it.
    let cached_job = caches.nomad.job(&jkey);
    let unseen_write = matches!(cached_job, CachedJob::Written(_));
    let job_state = match cached_job {
        CachedJob::Written(w) => Some(w.state),
        _ => caches.nomad.job_state(&jkey).or_else(|| {
            live.job
                .as_deref()
                .map(JobState::of)
                .or(live.job_verified.map(|index| JobState {
                    job_modify_index: index,
                    version: None,
                    stable: false,
                    stop: false,
                }))
        }),
    };
    let rollout_state = rollout_after(
        held.as_deref(),
        job_written,
        job_state,
        &caches.nomad.deployments(&jkey),
        batch,
        previous.filter(|_| !unseen_write),
    );
    let input = base(
        Verdict::Applied {
            objects: results,
            failure: failure.as_ref().map(|e| chain(e)),
            rollout: rollout_state,
        },
        job_index,
    );
    let doc = write_status(shared, key, lease, &input, stored.as_deref(), &mut events).await?;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(next_action(requeue, doc.phase))
}

/// Whether the job update must be held because Nomad reverted the spec's version.
/// Whether the live job was registered by someone else after this generation's own
/// registration (the status records that one's `JobModifyIndex`): Nomad's auto-revert,
/// or a hand edit.
fn written_by_others(stored: Option<&StatusDoc>, generation: u64, live: &Job) -> bool {
    stored.is_some_and(|s| {
        s.observed_generation == generation
            && s.job_modify_index
                .is_some_and(|ours| ours != live.view.job_modify_index)
    })
}

async fn revert_hold(
    shared: &OperatorContext,
    jkey: &str,
    desired_hash: &str,
    live: &Job,
    written_by_others: bool,
) -> Result<Option<String>, ReconcileError> {
    let cache = &shared.caches.nomad;
    let mut deployments = cache.deployments(jkey);
    if written_by_others && !deployments.iter().any(|d| d.status == "failed") {
        // The job list can show Nomad's revert before the event stream has shown the
        // failed deployment that caused it: ask Nomad, rather than fight the revert.
        let latest = shared
            .clients
            .nomad
            .latest_deployment(
                &live.view.id,
                &QueryOptions::new().namespace(live.view.namespace.clone()),
            )
            .await
            .map_err(api(format!("nomad-job {jkey}")))?;
        if let Some(d) = latest.value {
            cache.upsert_deployment(jkey, d);
            deployments = cache.deployments(jkey);
        }
    }
    if !deployments.iter().any(|d| d.status == "failed") {
        return Ok(None);
    }
    for _ in 0..2 {
        match reverted(desired_hash, live, &deployments, |v| {
            cache.version_hash(jkey, v)
        }) {
            RevertCheck::NotReverted => return Ok(None),
            RevertCheck::Reverted(m) => return Ok(Some(m)),
            RevertCheck::NeedVersion(_) => {
                let r = shared
                    .clients
                    .nomad
                    .job_versions(
                        &live.view.id,
                        false,
                        &QueryOptions::new().namespace(live.view.namespace.clone()),
                    )
                    .await
                    .map_err(api(format!("nomad-job {jkey}")))?;
                let versions = r.value.map(|v| v.versions).unwrap_or_default();
                cache.store_version_hashes(jkey, &versions);
                // Versions Nomad no longer keeps have no hash we could compare.
                let known: BTreeSet<u64> = versions.iter().map(|v| v.view.version).collect();
                for d in &deployments {
                    if !known.contains(&d.job_version) {
                        cache.store_version_hash(jkey, d.job_version, None);
                    }
                }
            }
        }
    }
    Ok(None)
}

/// Computes, completes and (when changed) writes the status; returns the document.
async fn write_status(
    shared: &OperatorContext,
    key: &str,
    lease: &Lease,
    input: &StatusInput,
    stored: Option<&StatusDoc>,
    events: &mut Events<'_>,
) -> Result<Arc<StatusDoc>, ReconcileError> {
    let computed = status::compute(input);
    let stored_phase = stored.map(|s| (s.phase, s.observed_generation, s.message.as_str()));
    let changed_phase = stored_phase.is_none_or(|(p, g, m)| {
        p != computed.phase
            || (matches!(p, Phase::Invalid | Phase::Conflict)
                && (g != computed.observed_generation || m != computed.message))
    });
    if changed_phase {
        let (type_, reason) = match computed.phase {
            Phase::Synced => (EventType::Normal, "Synced"),
            Phase::Progressing => (EventType::Normal, "Progressing"),
            Phase::Pending if computed.waiting_for_cache() => {
                (EventType::Warning, status::REASON_CACHE_UNAVAILABLE)
            }
            Phase::Pending => (EventType::Normal, "Pending"),
            Phase::Degraded => (EventType::Warning, "Degraded"),
            Phase::Invalid => (EventType::Warning, "InvalidSpec"),
            Phase::Conflict => (EventType::Warning, "Conflict"),
            Phase::Blocked => (EventType::Warning, "Blocked"),
            Phase::Error => (EventType::Warning, "Error"),
        };
        events.record(type_, reason, computed.message.clone(), None);
    }
    let doc = status::finalize(computed, stored, &events.docs, jiff::Timestamp::now());
    let doc = Arc::new(doc);
    shared
        .verified
        .lock()
        .insert(key.to_owned(), input.generation);
    if !status::needs_write(&doc, stored) {
        return Ok(doc);
    }
    let value = serde_json::to_vec(&*doc).unwrap_or_default();
    let full_key = format!("{}{key}", shared.config.status_prefix());
    let index = shared
        .writer
        .write(
            StatusOp::Set {
                key: full_key,
                value,
            },
            lease.fence(),
        )
        .await
        .map_err(|source| ReconcileError::Status {
            key: key.to_owned(),
            source,
        })?;
    shared
        .caches
        .statuses
        .record_written(key, index, Some(doc.clone()));
    Ok(doc)
}

/// The owner of a config entry or job body as a string (for the API and GC).
#[must_use]
pub fn owner_string(body: &Value) -> Option<String> {
    owner_of_body(body).map(|k| k.to_string())
}

#[cfg(test)]
mod tests;
