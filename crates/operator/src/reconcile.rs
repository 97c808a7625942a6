//! `reconcile(key)`: level-triggered, reads the whole truth for the key each time and
//! moves it one idempotent step toward the spec.
//!
//! `run` is four stages: **gather** (`observe`: caches, rendering, live objects; I/O),
//! **decide** (`decide::decide`: pure, from the facts and the clock to an
//! `decide::Outcome`: the ordered writes, the status, the requeue; it may name a rare
//! read it needs first, which `perform` does), **execute** (`apply_writes`, through the
//! one executor `execute`; I/O) and **summarise** (`outcome::summarise_applied`:
//! pure, the writes' results into the status, which `write_status` writes when it
//! changed).
//!
//! What a pass does, in order:
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
mod decide;
mod describe;
mod gather;
mod outcome;
mod render;

use std::collections::BTreeSet;
use std::sync::Arc;

use steward_hashi::QueryOptions;
use steward_render::names::{self};
use steward_runtime::{Action, Context, EventType, Lease};
use tokio::time::Instant;

use crate::cache::nomad::{CachedJob, job_key};
use crate::context::OperatorContext;
use crate::kinds;
use crate::plan::{self, Step, StepKind};
use crate::rollout::JobState;
use crate::status::{self, EventDoc, ObjectState, Phase, StatusDoc, StatusInput};
use crate::waits::{self, WaitKind};
use crate::writer::StatusOp;

pub(crate) use apply::execute;
use apply::preflight;
use decide::{
    Apply, Checked, Decision, Facts, Outcome, Read, RenderedFacts, SYNC_REQUEUE, SpecFacts, Write,
    decide,
};
pub(crate) use describe::describe_spec;
pub(crate) use gather::Trust;
use gather::{Gathered, gather};
use outcome::{
    Executed, JobAfter, applied_event, next_action, repeated_failure, summarise_applied,
    warnings_event,
};
use render::{Rendered, render_spec};

pub use crate::error::chain;
pub use crate::reconcile_error::ReconcileError;
pub(crate) use crate::reconcile_error::api;

pub(crate) use crate::kinds::describe;

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
    // Gather: the caches, the spec's rendering, the live objects.
    let mut facts = match observe(shared, key).await? {
        Observed::Facts(facts) => facts,
        Observed::Done(action) => return Ok(action),
    };
    // Decide (pure), reading the rare facts it asks for.
    let outcome = loop {
        match decide(&facts) {
            Decision::Read(read) => perform(shared, &mut facts, read).await?,
            Decision::Outcome(outcome) => break outcome,
        }
    };
    let stored = facts.stored.as_deref();
    let mut events = Events {
        key,
        shared,
        docs: Vec::new(),
    };
    let generation = facts.generation;
    match (outcome, &facts.spec) {
        (Outcome::Requeue(after), SpecFacts::Rendered(r)) => {
            let action = Action::requeue(after);
            // Only a cache's first listing is a wait; the other requeues are moments.
            Ok(match &r.gathered {
                Gathered::Waiting(_) => track_wait(
                    shared,
                    key,
                    generation,
                    Some(WaitKind::Cache),
                    false,
                    action,
                ),
                _ => action,
            })
        }
        (Outcome::Requeue(after), SpecFacts::Invalid(..)) => Ok(Action::requeue(after)),
        (Outcome::Status(input, action), _) => {
            let waiting = waits::waiting_for(&input.verdict);
            write_status(shared, key, lease, &input, stored, &mut events).await?;
            Ok(track_wait(shared, key, generation, waiting, false, action))
        }
        (Outcome::Apply(apply), SpecFacts::Rendered(r)) => {
            // Execute, then summarise what happened into the status.
            let (executed, error) = apply_writes(shared, r, &apply, stored, &mut events).await;
            let previous = stored.filter(|s| s.observed_generation == facts.generation);
            let job = job_after(shared, r);
            let registered = executed.job_written;
            let input = summarise_applied(&apply, executed, &job, previous);
            let doc = write_status(shared, key, lease, &input, stored, &mut events).await?;
            let waiting = waits::waiting_for(&input.verdict);
            match error {
                Some(error) => {
                    // A failed write is loud already (phase `Error`); it is no wait.
                    shared
                        .waits
                        .record(key, generation, None, false, Instant::now());
                    Err(error)
                }
                None => {
                    let action = next_action(apply.scaling, doc.phase);
                    Ok(track_wait(
                        shared, key, generation, waiting, registered, action,
                    ))
                }
            }
        }
        // `decide` applies writes only for a rendered spec.
        (Outcome::Apply(_), SpecFacts::Invalid(..)) => Ok(Action::await_change()),
    }
}

/// Remembers what `key` waits for after this pass (see [`crate::waits`]) and, while
/// the wait is not overdue, brings `action` forward to its deadline, so that the status
/// says what it waits for on time.
fn track_wait(
    shared: &OperatorContext,
    key: &str,
    generation: u64,
    waiting: Option<WaitKind>,
    restart: bool,
    action: Action,
) -> Action {
    let now = Instant::now();
    shared.waits.record(key, generation, waiting, restart, now);
    match shared.waits.start(key, generation) {
        Some(start) => start.until_deadline(action, now),
        None => action,
    }
}

/// What [`observe`] found.
enum Observed {
    /// The facts to decide on.
    Facts(Facts),
    /// Nothing to decide: the caches are not ready, or the spec is gone.
    Done(Action),
}

/// Gathers the facts of one key: its spec (rendered once per generation), its last
/// status, and the live objects it renders.
async fn observe(shared: &OperatorContext, key: &str) -> Result<Observed, ReconcileError> {
    let caches = &shared.caches;
    if !caches.specs.health().is_synced() || !caches.statuses.health().is_synced() {
        return Ok(Observed::Done(Action::requeue(SYNC_REQUEUE)));
    }
    let Some(entry) = caches.specs.get(key) else {
        // Gone: garbage collection takes its objects; forget what was remembered of it.
        render::forget(shared, key);
        if let Some(edge) = &shared.edge {
            edge.remove_spec(key);
        }
        return Ok(Observed::Done(Action::await_change()));
    };
    let generation = entry.generation;
    let stored = caches.statuses.current(key);
    let now = jiff::Timestamp::now();
    let rendered = render_spec(
        shared,
        key,
        generation,
        entry.create_index,
        &entry.value,
        now,
    );
    feed_edge(shared, key, &rendered);
    let spec = match rendered {
        Rendered::Invalid(message, diagnostics) => SpecFacts::Invalid(message, diagnostics),
        Rendered::Ok {
            key,
            desired,
            replicas,
            next_change,
            batch,
            edge: _,
        } => {
            let trust = Trust::of(stored.as_deref(), generation, &desired.hash, replicas);
            let gathered = gather(shared, &key, &desired, trust).await?;
            let jkey = job_key(&names::nomad_namespace(&key), &names::job_id(&key));
            let read_first = kinds::KINDS
                .iter()
                .filter(|kind| kind.reads_before_create(caches))
                .map(|kind| kind.kind())
                .collect();
            SpecFacts::Rendered(Box::new(RenderedFacts {
                deployments: caches.nomad.deployments(&jkey),
                version_hashes: caches.nomad.version_hashes(&jkey),
                key,
                desired,
                replicas,
                next_change,
                batch,
                gathered,
                read_first,
                jwt_mount: shared.config.jwt_auth_mount.clone(),
                checked: Checked::default(),
            }))
        }
    };
    Ok(Observed::Facts(Facts {
        generation,
        stored,
        now,
        wait: shared.waits.start(key, generation),
        clock: Instant::now(),
        spec,
    }))
}

/// Gives the edge control plane the routes of a spec that passed validation and the
/// guardrails (an invalid spec's routes never reach Envoy), or takes them away.
fn feed_edge(shared: &OperatorContext, key: &str, rendered: &Rendered) {
    let Some(edge) = &shared.edge else {
        return;
    };
    match rendered {
        Rendered::Ok {
            edge: Some(spec), ..
        } => edge.upsert_spec((**spec).clone()),
        Rendered::Ok { edge: None, .. } | Rendered::Invalid(..) => edge.remove_spec(key),
    }
}

/// Performs a read [`decide`] asked for and records its answer in `facts` (also in the
/// caches, so later passes need not ask again).
async fn perform(
    shared: &OperatorContext,
    facts: &mut Facts,
    read: Read,
) -> Result<(), ReconcileError> {
    let SpecFacts::Rendered(r) = &mut facts.spec else {
        return Ok(());
    };
    let (namespace, id) = (names::nomad_namespace(&r.key), names::job_id(&r.key));
    let jkey = job_key(&namespace, &id);
    let cache = &shared.caches.nomad;
    let options = QueryOptions::new().namespace(namespace);
    match read {
        Read::Absent(steps) => {
            let steps: Vec<&Step> = steps.iter().collect();
            r.checked.found = Some(preflight(shared, &r.key, &steps).await?);
        }
        Read::LatestDeployment => {
            r.checked.latest_deployment = true;
            let nomad = &shared.clients.nomad;
            let latest = nomad.latest_deployment(&id, &options).await;
            if let Some(d) = latest.map_err(api(format!("nomad-job {jkey}")))?.value {
                cache.upsert_deployment(&jkey, d);
                r.deployments = cache.deployments(&jkey);
            }
        }
        Read::JobVersions => {
            r.checked.versions = true;
            let answer = shared
                .clients
                .nomad
                .job_versions(&id, false, &options)
                .await;
            let answer = answer.map_err(api(format!("nomad-job {jkey}")))?;
            let versions = answer.value.map(|v| v.versions).unwrap_or_default();
            cache.store_version_hashes(&jkey, &versions);
            // Versions Nomad no longer keeps have no hash we could compare.
            let known: BTreeSet<u64> = versions.iter().map(|v| v.view.version).collect();
            for d in &r.deployments {
                if !known.contains(&d.job_version) {
                    cache.store_version_hash(&jkey, d.job_version, None);
                }
            }
            r.version_hashes = cache.version_hashes(&jkey);
        }
    }
    Ok(())
}

/// Runs the writes in order, recording their events; a failed one stops the rest (the
/// objects after it stay pending). Returns what happened and the failure.
async fn apply_writes(
    shared: &OperatorContext,
    r: &RenderedFacts,
    apply: &Apply,
    stored: Option<&StatusDoc>,
    events: &mut Events<'_>,
) -> (Executed, Option<ReconcileError>) {
    let empty = plan::Live::default();
    let live = match &r.gathered {
        Gathered::Live(live, _) => live,
        _ => &empty,
    };
    let mut done = Executed::default();
    let mut failure: Option<ReconcileError> = None;
    for Write {
        step,
        object,
        drift,
    } in &apply.writes
    {
        if failure.is_some() {
            if step.kind != StepKind::Delete {
                done.results
                    .push((step.object.clone(), ObjectState::Pending, None));
            }
            continue;
        }
        if let Some((type_, reason, message)) = drift {
            events.record(*type_, reason, message.clone(), Some(object.clone()));
        }
        match execute(shared, &r.key, step, live).await {
            Ok(applied) => {
                if step.object == apply.job {
                    done.job_index = Some(applied.job_modify_index);
                    done.job_written |= applied.state != ObjectState::Synced;
                }
                if let Some((type_, reason, message)) = applied_event(step, object, applied.state) {
                    events.record(type_, reason, message, Some(object.clone()));
                }
                if let Some((type_, reason, message)) = warnings_event(object, &applied.warnings) {
                    events.record(type_, reason, message, Some(object.clone()));
                }
                if applied.state != ObjectState::Deleted {
                    done.results
                        .push((step.object.clone(), applied.state, None));
                }
            }
            Err(error) => {
                if error.may_have_landed() {
                    // Look before writing it again (see `crate::uncertain`).
                    shared.uncertain.record(&r.key, &step.object);
                }
                let text = chain(&error);
                if !repeated_failure(stored, &text) {
                    let o = Some(object.clone());
                    events.record(EventType::Warning, "ApplyFailed", text.clone(), o);
                }
                let state = if matches!(error, ReconcileError::Conflict { .. }) {
                    ObjectState::Conflict
                } else {
                    ObjectState::Error
                };
                if step.kind != StepKind::Delete {
                    done.results
                        .push((step.object.clone(), state, Some(text.clone())));
                }
                done.failure = Some(text);
                failure = Some(error);
            }
        }
    }
    (done, failure)
}

/// The job as the caches show it after the writes (its rollout is read from this).
fn job_after(shared: &OperatorContext, r: &RenderedFacts) -> JobAfter {
    let cache = &shared.caches.nomad;
    let jkey = job_key(&names::nomad_namespace(&r.key), &names::job_id(&r.key));
    let live = match &r.gathered {
        Gathered::Live(live, _) => Some(live),
        _ => None,
    };
    let cached = cache.job(&jkey);
    let unseen_write = matches!(cached, CachedJob::Written(_));
    let state = match cached {
        CachedJob::Written(w) => Some(w.state),
        _ => cache.job_state(&jkey).or_else(|| {
            let live = live?;
            live.job()
                .map(|j| JobState::of(j))
                .or(live.job_verified().map(|index| JobState {
                    job_modify_index: index,
                    version: None,
                    stable: false,
                    stop: false,
                }))
        }),
    };
    JobAfter {
        unseen_write,
        state,
        deployments: cache.deployments(&jkey),
    }
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
    let mut computed = status::compute(input);
    // What the servers lack that touches this spec (start-up detection).
    if let Some(cluster) = &*shared.cluster.read() {
        let degradations =
            cluster.degradations_for(computed.objects.iter().map(|o| o.kind.as_str()));
        computed
            .conditions
            .extend(status::server_support(&degradations));
    }
    // What the edge control plane made of its routes, and whether the Envoys have them.
    if let Some(edge) = &shared.edge
        && let Some(verdict) = edge.verdict(key)
    {
        computed.conditions.push(status::edge_routes(
            &verdict,
            &edge.ack_state(key),
            shared.config.edge.degraded.as_deref(),
        ));
    }
    // Waited too long for something that does not come: say it once per wait, loudly
    // (the recorder logs a Warning event at WARN).
    let timed_out = computed
        .wait_timeout()
        .filter(|_| shared.waits.warn_once(key))
        .map(|c| c.message.clone());
    if let Some(message) = &timed_out {
        events.record(
            EventType::Warning,
            status::REASON_WAIT_TIMEOUT,
            message.clone(),
            None,
        );
    }
    let stored_phase = stored.map(|s| (s.phase, s.observed_generation, s.message.as_str()));
    let changed_phase = stored_phase.is_none_or(|(p, g, m)| {
        p != computed.phase
            || (matches!(p, Phase::Invalid | Phase::Conflict)
                && (g != computed.observed_generation || m != computed.message))
    });
    // The wait's own event already says why the phase is what it is.
    if changed_phase && timed_out.is_none() {
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
            Phase::Deleting => (EventType::Normal, "Deleting"),
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

pub use crate::objects::owner_string;

#[cfg(test)]
mod tests;
