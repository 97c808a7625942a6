//! `decide`: every decision of one reconcile, as a pure function of what was gathered.
//!
//! From the spec's rendering, the live objects, the last status and the clock,
//! [`decide`] returns an [`Outcome`]: the ordered writes, what the status will say, and
//! when to look again. A few facts cost a request and are needed only in rare cases (is a
//! Vault object the cache does not list really absent? did Nomad revert the job?), so
//! `decide` may instead name a [`Read`] it needs; `run` performs it, records it in
//! [`Facts`], and asks again. `decide` never asks for a read that `Facts` already holds,
//! so this ends after at most one round per kind of read.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use steward_hashi::nomad::Deployment;
use steward_render::names::SpecKey;
use steward_render::{Desired, ObjectKind, ObjectRef};
use steward_runtime::Action;

use super::gather::{Gathered, Unsynced};
use super::outcome::{EventText, drift_event, scaling_requeue};
use crate::plan::{self, Live, Step, StepKind};
use crate::rollout::{RevertCheck, reverted};
use crate::status::{self, DiagnosticDoc, StatusDoc, StatusInput, Verdict};
use crate::waits::{WaitKind, WaitStart};

/// How long to wait for the watch to show our own write before looking again.
pub(crate) const SHORT_REQUEUE: Duration = Duration::from_millis(100);
/// How long to wait for a cache that has not synced yet (a server may be down at start:
/// do not spin).
pub(crate) const SYNC_REQUEUE: Duration = Duration::from_secs(1);
/// How often a spec held by a cache that cannot sync looks again (the cache's first
/// sync queues every spec at once; this is the safety net).
pub(crate) const UNSYNCED_REQUEUE: Duration = Duration::from_secs(30);
/// When a check read found a clash the watches have not shown yet, look again once
/// they had time to (the watch event then triggers anyway).
pub(crate) const PREFLIGHT_REQUEUE: Duration = Duration::from_secs(1);

/// Everything `decide` knows of one key.
#[derive(Debug)]
pub(crate) struct Facts {
    /// The spec generation.
    pub(crate) generation: u64,
    /// The last status written for the key.
    pub(crate) stored: Option<Arc<StatusDoc>>,
    /// "Now", for the scaling windows.
    pub(crate) now: jiff::Timestamp,
    /// When the key began to wait, at this generation, for what it waits for (a cache,
    /// a deployment), if it waited at the end of an earlier pass.
    pub(crate) wait: Option<WaitStart>,
    /// "Now" on the monotonic clock the wait is measured with.
    pub(crate) clock: tokio::time::Instant,
    /// The spec, and what was gathered for it.
    pub(crate) spec: SpecFacts,
}

/// The spec as loaded, and (when it rendered) its live state.
#[derive(Debug)]
pub(crate) enum SpecFacts {
    /// Invalid: the message and diagnostics.
    Invalid(String, Vec<DiagnosticDoc>),
    /// Rendered.
    Rendered(Box<RenderedFacts>),
}

/// A rendered spec and what was gathered for it.
#[derive(Debug)]
pub(crate) struct RenderedFacts {
    /// The spec key.
    pub(crate) key: SpecKey,
    /// The desired objects.
    pub(crate) desired: Arc<Desired>,
    /// Replicas now.
    pub(crate) replicas: u32,
    /// The next scaling boundary.
    pub(crate) next_change: Option<jiff::Timestamp>,
    /// A batch job (no deployments).
    pub(crate) batch: bool,
    /// The live objects (or why they are not known).
    pub(crate) gathered: Gathered,
    /// Kinds whose creations are read first (their kind says so: Vault always, others
    /// while their cache is not fresh).
    pub(crate) read_first: BTreeSet<ObjectKind>,
    /// The Vault JWT auth mount.
    pub(crate) jwt_mount: String,
    /// The job's deployments, newest first (from the cache, plus a direct read).
    pub(crate) deployments: Vec<Arc<Deployment>>,
    /// `(version, steward.hash)` of the job's versions known so far (`None`: no hash,
    /// or Nomad no longer keeps the version).
    pub(crate) version_hashes: Vec<(u64, Option<String>)>,
    /// The reads performed so far (see [`Read`]).
    pub(crate) checked: Checked,
}

/// The answers of the reads `decide` asked for.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The objects to create that a check read found after all, with their owners.
    pub(crate) found: Option<Vec<(ObjectRef, Option<SpecKey>)>>,
    /// The job's latest deployment was read (and is in `deployments`).
    pub(crate) latest_deployment: bool,
    /// The job's versions were read (and are in `version_hashes`).
    pub(crate) versions: bool,
}

/// A read `decide` needs before it can decide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Read {
    /// These creations are not vouched for by a fresh cache (Vault's lists are polled,
    /// and it has no check-and-set): read each object; one that exists must not be
    /// written over.
    Absent(Vec<Step>),
    /// The job was registered by someone else after our registration and no failed
    /// deployment is known: ask Nomad for the latest one (the job list can show Nomad's
    /// revert before the event stream shows the failure that caused it).
    LatestDeployment,
    /// A deployment's job version has no known hash: read the job's versions.
    JobVersions,
}

/// One write and the event that comes before it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    /// The step.
    pub(crate) step: Step,
    /// The object, described for events and errors (`nomad-job shop/web`).
    pub(crate) object: String,
    /// `Drift`/`Scaled` when the object matched this generation before.
    pub(crate) drift: Option<EventText>,
}

/// The writes of one pass and what the status needs besides their results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Apply {
    /// The writes, in order; a failed one stops the rest.
    pub(crate) writes: Vec<Write>,
    /// The status without the writes' results (`verdict` is completed by
    /// [`super::outcome::summarise_applied`]).
    pub(crate) base: StatusInput,
    /// Objects already in sync.
    pub(crate) in_sync: Vec<ObjectRef>,
    /// The job update held back because Nomad reverted this version (the message).
    pub(crate) held: Option<String>,
    /// The job.
    pub(crate) job: ObjectRef,
    /// Every object of the spec, in apply order (the order of the status).
    pub(crate) order: Vec<ObjectRef>,
    /// A batch job.
    pub(crate) batch: bool,
    /// Requeue at the next scaling boundary.
    pub(crate) scaling: Option<Action>,
    /// The key has waited [`status::WAIT_TIMEOUT`] for a deployment of its job: a
    /// rollout still pending says so ([`super::outcome::summarise_applied`]).
    pub(crate) deployment_overdue: bool,
}

/// What to do for the key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Write nothing, not even the status; look again after this long.
    Requeue(Duration),
    /// No object writes: write this status, then act.
    Status(Box<StatusInput>, Action),
    /// Apply the writes, then write the status they lead to.
    Apply(Box<Apply>),
}

/// What `decide` returns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// A fact is missing: read it and decide again.
    Read(Read),
    /// The outcome.
    Outcome(Outcome),
}

impl From<Outcome> for Decision {
    fn from(o: Outcome) -> Self {
        Decision::Outcome(o)
    }
}

/// Decides what one reconcile does. Pure.
pub(crate) fn decide(facts: &Facts) -> Decision {
    let r = match &facts.spec {
        SpecFacts::Invalid(message, diagnostics) => {
            let input = StatusInput {
                generation: facts.generation,
                spec_hash: None,
                replicas: None,
                next_scaling_change: None,
                job_modify_index: None,
                verdict: Verdict::Invalid {
                    message: message.clone(),
                    diagnostics: diagnostics.clone(),
                },
            };
            return Outcome::Status(Box::new(input), Action::await_change()).into();
        }
        SpecFacts::Rendered(r) => r,
    };
    let base = |verdict, job_modify_index| StatusInput {
        generation: facts.generation,
        spec_hash: Some(r.desired.hash.clone()),
        replicas: Some(r.replicas),
        next_scaling_change: r.next_change,
        job_modify_index,
        verdict,
    };
    let overdue = |kind| facts.wait.is_some_and(|w| w.overdue(kind, facts.clock));
    let (live, pending) = match &r.gathered {
        Gathered::Live(live, pending) => (live, pending),
        Gathered::WaitForWatch => return Outcome::Requeue(SHORT_REQUEUE).into(),
        // A cache still on its first listing: look again shortly, quietly (its sync
        // queues every spec anyway), until the spec has waited too long for it.
        Gathered::Waiting(waiting)
            if waiting.iter().all(|w| w.error.is_none()) && !overdue(WaitKind::Cache) =>
        {
            return Outcome::Requeue(SYNC_REQUEUE).into();
        }
        // A cache that cannot sync, or has not listed for too long: say so in the
        // spec's status, and look again now and then (the cache's first sync queues
        // every spec).
        Gathered::Waiting(waiting) => {
            let verdict = Verdict::Waiting {
                caches: waiting.iter().map(waiting_for).collect(),
                objects: r.desired.objects(),
                timed_out: overdue(WaitKind::Cache),
            };
            let action = Action::requeue(UNSYNCED_REQUEUE);
            return Outcome::Status(Box::new(base(verdict, None)), action).into();
        }
    };
    let scaling = scaling_requeue(r.next_change, facts.now);
    let conflicts = plan::conflicts(&r.key, &r.desired, live);
    if !conflicts.is_empty() {
        let verdict = Verdict::Conflict {
            conflicts,
            objects: r.desired.objects(),
        };
        let action = scaling.unwrap_or_else(Action::await_change);
        return Outcome::Status(Box::new(base(verdict, None)), action).into();
    }

    let mut plan = plan::plan(&r.key, &r.desired, live, &r.jwt_mount);
    let job = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: r.desired.nomad_job.id.clone(),
    };
    let held = match revert_hold(facts, r, live, &plan.steps, &job) {
        Ok(held) => held,
        Err(read) => return Decision::Read(read),
    };
    if held.is_some() {
        plan.steps
            .retain(|s| !(s.object == job && s.kind == StepKind::Update));
    }
    if plan.steps.iter().any(|s| pending.contains(&s.object)) {
        // The watch has not shown our last write of an object that needs another one:
        // its index is unknown, so wait for it.
        return Outcome::Requeue(SHORT_REQUEUE).into();
    }
    if let Some(decision) = check_creations(r, &plan.steps, |verdict| Box::new(base(verdict, None)))
    {
        return decision;
    }

    // What the status will record as the job's verified `JobModifyIndex` (a write
    // replaces it with the register answer's).
    let job_index = match (live.job(), live.job_verified()) {
        (_, Some(index)) => Some(index),
        (Some(j), None) if plan.in_sync.contains(&job) => Some(j.view.job_modify_index),
        _ => None,
    };
    let previous = facts
        .stored
        .as_deref()
        .filter(|s| s.observed_generation == facts.generation);
    let writes = plan
        .steps
        .into_iter()
        .map(|step| {
            let object = super::describe(&step.object, &r.key);
            let drift = drift_event(&step, &object, previous, r.replicas);
            Write {
                step,
                object,
                drift,
            }
        })
        .collect();
    let placeholder = Verdict::Applied {
        objects: Vec::new(),
        failure: None,
        rollout: status::Rollout::Pending,
    };
    Outcome::Apply(Box::new(Apply {
        writes,
        base: base(placeholder, job_index),
        in_sync: plan.in_sync,
        held,
        job,
        order: r.desired.objects(),
        batch: r.batch,
        scaling,
        deployment_overdue: overdue(WaitKind::Deployment),
    }))
    .into()
}

fn waiting_for(w: &Unsynced) -> status::WaitingFor {
    status::WaitingFor {
        kind: w.kind.as_str().to_owned(),
        cache: w.cache.to_owned(),
        error: w.error.clone(),
    }
}

/// Whether the job update must be held because Nomad reverted the spec's version
/// (registering it again would fight the auto-revert forever): the message, or the
/// read needed to tell.
fn revert_hold(
    facts: &Facts,
    r: &RenderedFacts,
    live: &Live,
    steps: &[Step],
    job: &ObjectRef,
) -> Result<Option<String>, Read> {
    let updates_job = steps
        .iter()
        .any(|s| &s.object == job && s.kind == StepKind::Update);
    let Some(live_job) = live.job().map(|j| &**j).filter(|_| updates_job) else {
        return Ok(None);
    };
    let failed = r.deployments.iter().any(|d| d.status == "failed");
    // Registered by someone else after this generation's own registration (the status
    // records that one's `JobModifyIndex`): Nomad's auto-revert, or a hand edit.
    let written_by_others = facts.stored.as_deref().is_some_and(|s| {
        s.observed_generation == facts.generation
            && s.job_modify_index
                .is_some_and(|ours| ours != live_job.view.job_modify_index)
    });
    if written_by_others && !failed && !r.checked.latest_deployment {
        return Err(Read::LatestDeployment);
    }
    if !failed {
        return Ok(None);
    }
    let hash_of = |v: u64| {
        r.version_hashes
            .iter()
            .find(|(version, _)| *version == v)
            .map(|(_, hash)| hash.clone())
    };
    match reverted(&r.desired.hash, live_job, &r.deployments, hash_of) {
        RevertCheck::NotReverted => Ok(None),
        RevertCheck::Reverted(message) => Ok(Some(message)),
        RevertCheck::NeedVersion(_) if !r.checked.versions => Err(Read::JobVersions),
        // Read, and still unknown: nothing to compare, so nothing to hold.
        RevertCheck::NeedVersion(_) => Ok(None),
    }
}

/// Creations of Consul entries and Nomad jobs are check-and-set (`cas=0`,
/// `EnforceIndex` 0): over an object a fresh cache has not shown yet they fail and are
/// retried, never overwrite. So only creations the caches cannot vouch for are read
/// first: a stale cache's kinds, and Vault's (no check-and-set there, and its names are
/// polled). `None`: nothing stands in the way of the writes.
fn check_creations(
    r: &RenderedFacts,
    steps: &[Step],
    status: impl Fn(Verdict) -> Box<StatusInput>,
) -> Option<Decision> {
    let unvouched: Vec<Step> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Create)
        .filter(|s| r.read_first.contains(&s.object.kind))
        .cloned()
        .collect();
    if unvouched.is_empty() {
        return None;
    }
    let Some(found) = &r.checked.found else {
        return Some(Decision::Read(Read::Absent(unvouched)));
    };
    let foreign: Vec<(ObjectRef, String)> = found
        .iter()
        .filter(|(_, owner)| owner.as_ref() != Some(&r.key))
        .map(|(o, owner)| (o.clone(), plan::owner_message(owner.as_ref())))
        .collect();
    if !foreign.is_empty() {
        let verdict = Verdict::Conflict {
            conflicts: foreign,
            objects: r.desired.objects(),
        };
        let action = Action::requeue(PREFLIGHT_REQUEUE);
        return Some(Outcome::Status(status(verdict), action).into());
    }
    // Ours after all (a write the watch has not shown yet): look again shortly.
    (!found.is_empty()).then(|| Outcome::Requeue(SHORT_REQUEUE).into())
}

#[cfg(test)]
mod tests;
