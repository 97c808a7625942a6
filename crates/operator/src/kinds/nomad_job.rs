//! The Nomad job: one per spec, in the spec's Nomad namespace. Its list watch keeps
//! stubs (indexes, stop, `Meta`), never bodies; a job whose `JobModifyIndex` is the one
//! the last status of the same rendering recorded as matching is in sync without a
//! read. Registered with `EnforceIndex` (0 to create); only garbage collection stops or
//! purges it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use steward_hashi::nomad::{Job, RegisterOptions};
use steward_hashi::{Idempotency, QueryOptions, RequestSpec, WriteOptions};
use steward_render::names::{self, SpecKey};
use steward_render::{Desired, FieldChange, ObjectKind, ObjectRef, diff_job};

use super::{
    Applied, Kind, Looked, Lookup, WaitForWatch, Watch, created_or_updated, foreign_op, list_rate,
};
use crate::cache::nomad::{CachedJob, JobListSource, WrittenJob, job_key, stub_owner};
use crate::cache::{Caches, Health};
use crate::context::OperatorContext;
use crate::guard::GcObject;
use crate::kinds::describe;
use crate::objects::{Live, LiveObject, Step, WriteOp, material, owner_of_body, upsert_step};
use crate::objects::{owner_string, summarise};
use crate::reconcile_error::{ReconcileError, api};
use crate::rollout::JobState;
use crate::status::ObjectState;

/// The kind's module.
pub(super) static KIND: NomadJob = NomadJob;

/// The Nomad job kind.
pub(crate) struct NomadJob;

/// The changes that make the live job differ from the desired one: the owned-field
/// diff plus `Stop` (a stopped job has to run again).
#[must_use]
pub(crate) fn job_changes(desired: &Value, live: &Job) -> Vec<FieldChange> {
    let mut changes = material(diff_job(desired, &live.raw));
    if live.view.stop {
        changes.push(FieldChange {
            path: "Stop".to_owned(),
            desired: Some(Value::Bool(false)),
            live: Some(Value::Bool(true)),
        });
    }
    changes
}

async fn gather_job(cx: Lookup<'_>, live: &mut Live, pending: &mut BTreeSet<ObjectRef>) -> Looked {
    let (shared, key) = (cx.shared, cx.key);
    let c = &shared.caches;
    let ns = names::nomad_namespace(key);
    let id = names::job_id(key);
    let jkey = job_key(&ns, &id);
    let object = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: id.clone(),
    };
    let cached = if c.nomad.jobs_health().is_fresh() && !cx.read_directly(object.kind, &id) {
        c.nomad.job(&jkey)
    } else {
        CachedJob::Listed(Arc::default())
    };
    match cached {
        CachedJob::Absent => {}
        CachedJob::Written(w) => {
            pending.insert(object.clone());
            if steward_render::value_digest(&cx.desired.nomad_job.job) != w.digest {
                return Ok(Err(WaitForWatch));
            }
            // What we registered is what the spec wants.
            live.insert(object, LiveObject::JobVerified(w.state.job_modify_index));
        }
        CachedJob::Listed(stub)
            if !stub.stop
                && stub.job_modify_index != 0
                && stub_owner(&stub).as_deref() == Some(key.to_string().as_str())
                && cx.trust.and_then(|t| t.job_modify_index()) == Some(stub.job_modify_index) =>
        {
            live.insert(object, LiveObject::JobVerified(stub.job_modify_index));
        }
        // The cache keeps no bodies: the diff needs this one.
        CachedJob::Listed(_) => {
            let r = shared
                .clients
                .nomad
                .get_job(&id, &QueryOptions::new().namespace(ns.clone()))
                .await
                .map_err(api(format!("nomad-job {jkey}")))?;
            if let Some(j) = r.value {
                c.nomad.store_body(&j);
                live.insert(object, LiveObject::Job(Arc::new(j)));
            }
        }
    }
    Ok(Ok(()))
}

async fn execute_job(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
    live: &Live,
) -> Result<Applied, ReconcileError> {
    let object = describe(&step.object, key);
    let c = &shared.caches;
    match &step.op {
        WriteOp::RegisterJob {
            namespace,
            id,
            job,
            create,
        } => {
            let jkey = job_key(namespace, id);
            let nomad = &shared.clients.nomad;
            let (enforce, base) = if *create {
                ensure_namespace(shared, namespace).await?;
                (0, None)
            } else {
                // The job whose ownership was checked (read, or vouched for by the list).
                // The register is enforced against its index, never a newer one: a job
                // registered by someone else since the check must not be overwritten.
                let Some(checked) = live
                    .job()
                    .map(|j| j.view.job_modify_index)
                    .or_else(|| live.job_verified())
                else {
                    return Err(ReconcileError::CasLost { object });
                };
                let plan = nomad
                    .plan_job(job, Some(namespace))
                    .await
                    .map_err(api(object.clone()))?;
                if plan.job_modify_index != checked {
                    // Changed since the check: look at it again before any write.
                    return Err(ReconcileError::CasLost { object });
                }
                if plan.diff.as_ref().is_some_and(|d| d.is_unchanged()) {
                    tracing::warn!(
                        job = %jkey,
                        changes = %summarise(&step.changes),
                        "Nomad's plan shows no change although Steward's diff does; not registering"
                    );
                    return Ok(ObjectState::Synced.into());
                }
                (checked, Some(checked))
            };
            let opts = RegisterOptions {
                enforce_index: Some(enforce),
                namespace: Some(namespace.clone()),
                ..RegisterOptions::default()
            };
            let response = match nomad.register_job(job, &opts).await {
                Ok(r) => r,
                Err(steward_hashi::Error::CasConflict { .. }) => {
                    return Err(ReconcileError::CasLost { object });
                }
                Err(e) => {
                    if *create {
                        // Maybe the namespace went away: list them again next time.
                        c.nomad.set_namespaces(BTreeSet::new());
                    }
                    return Err(ReconcileError::Api { object, source: e });
                }
            };
            let written = WrittenJob {
                state: JobState {
                    job_modify_index: response.job_modify_index,
                    version: None,
                    stable: false,
                    stop: false,
                },
                digest: steward_render::value_digest(job),
            };
            c.nomad.record_write(&jkey, base, Some(written));
            Ok(Applied {
                state: created_or_updated(!*create),
                job_modify_index: Some(response.job_modify_index),
                warnings: response.warnings,
            })
        }
        WriteOp::DeregisterJob {
            namespace,
            id,
            purge,
        } => {
            shared
                .clients
                .nomad
                .deregister_job(
                    id,
                    *purge,
                    &WriteOptions::new().namespace(namespace.clone()),
                )
                .await
                .map_err(api(object))?;
            Ok(ObjectState::Deleted.into())
        }
        other => Err(foreign_op(object, other)),
    }
}

/// Makes sure the Nomad namespace exists (creating it when configured to).
async fn ensure_namespace(shared: &OperatorContext, namespace: &str) -> Result<(), ReconcileError> {
    let cache = &shared.caches.nomad;
    let known = |ns: &str| cache.namespaces().is_some_and(|s| s.contains(ns));
    if known(namespace) {
        return Ok(());
    }
    // One listing at a time: the others find the namespace known when they get the turn.
    let _turn = shared.first_checks.lock().await;
    if known(namespace) {
        return Ok(());
    }
    let transport = shared.clients.nomad.transport();
    let listed = transport
        .call(RequestSpec::get("/v1/namespaces"), |raw| {
            raw.json::<Option<Vec<Value>>>()
        })
        .await
        .map_err(api(format!("nomad namespace {namespace}")))?
        .unwrap_or_default();
    cache.set_namespaces(
        listed
            .iter()
            .filter_map(|n| n.get("Name").and_then(Value::as_str).map(str::to_owned))
            .collect(),
    );
    if known(namespace) {
        return Ok(());
    }
    if !shared.config.create_nomad_namespaces {
        return Err(ReconcileError::NamespaceMissing {
            namespace: namespace.to_owned(),
        });
    }
    let spec = RequestSpec::put(format!("/v1/namespace/{namespace}"))
        .json(json!({"Name": namespace, "Description": "created by Steward"}))
        .idempotency(Idempotency::CasGuarded);
    transport
        .call(spec, |_| Ok(()))
        .await
        .map_err(api(format!("nomad namespace {namespace}")))?;
    cache.add_namespace(namespace);
    Ok(())
}

async fn preflight_job(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
) -> Result<Option<Option<SpecKey>>, ReconcileError> {
    let WriteOp::RegisterJob { namespace, id, .. } = &step.op else {
        return Ok(None);
    };
    Ok(shared
        .clients
        .nomad
        .get_job(id, &QueryOptions::new().namespace(namespace.clone()))
        .await
        .map_err(api(describe(&step.object, key)))?
        .value
        .map(|job| {
            let owner = owner_of_body(&job.raw);
            shared.caches.nomad.store_body(&job);
            owner
        }))
}

async fn gc_delete_job(
    shared: &OperatorContext,
    o: &GcObject,
    owner: &SpecKey,
) -> Result<Option<WriteOp>, ReconcileError> {
    let namespace = names::nomad_namespace(owner);
    let live = shared
        .clients
        .nomad
        .get_job(&o.name, &QueryOptions::new().namespace(namespace.clone()))
        .await
        .map_err(api(format!("{} {}", o.kind, o.name)))?;
    let Some(job) = live.value else {
        return Ok(None);
    };
    let purge = shared.config.purge_on_delete;
    if owner_string(&job.raw).as_deref() != Some(o.owner.as_str()) || (job.view.stop && !purge) {
        return Ok(None);
    }
    Ok(Some(WriteOp::DeregisterJob {
        namespace,
        id: o.name.clone(),
        purge,
    }))
}

/// The owned jobs the list shows: `(owner, namespace/id)`, a stopped one only when
/// garbage collection purges (a stopped job is already what a delete would leave).
fn owned_jobs(shared: &OperatorContext) -> impl Iterator<Item = (String, String)> {
    let purge = shared.config.purge_on_delete;
    shared
        .caches
        .nomad
        .owned()
        .into_iter()
        .filter(move |(_, _, stopped)| !stopped || purge)
        .map(|(owner, jkey, _)| (owner, jkey))
}

impl Kind for NomadJob {
    fn kind(&self) -> ObjectKind {
        ObjectKind::NomadJob
    }

    fn health<'c>(&self, caches: &'c Caches) -> &'c Health {
        caches.nomad.jobs_health()
    }

    fn describe(&self, key: &SpecKey, name: &str) -> String {
        format!("{} {}/{name}", self.kind(), names::nomad_namespace(key))
    }

    fn removal(&self, purge: bool) -> &'static str {
        if purge { "purged" } else { "stopped" }
    }

    fn watches(&self, ctx: &Arc<OperatorContext>) -> Vec<Watch> {
        let wait = ctx.config.watch_wait.min(Duration::from_secs(300));
        let source = JobListSource::new(ctx.clients.nomad.clone(), wait)
            .reading_owners(!ctx.config.server_features.nomad_job_list_meta);
        let (list, events) = (ctx.caches.nomad.clone(), ctx.caches.nomad.clone());
        let (changes, more) = (ctx.changes.clone(), ctx.changes.clone());
        let client = ctx.clients.nomad.clone();
        // Up to 20 lists a second: hand edits of jobs (drift) are seen through this
        // list, and at 2 a second every repair waited ~0.5 s for a token; the cost at
        // scale is bounded by `Observed`'s spacing per listed job.
        let list = async move { list.run_list(source, list_rate(20.0, 5), changes).await };
        // Job bodies and deployments: the rollout.
        let wildcard = ctx.config.server_features.nomad_namespace_wildcard;
        let events = async move { events.run_events(client, more, wildcard).await };
        vec![
            Watch::new("nomad-job-watch", list),
            Watch::new("nomad-event-stream", events),
        ]
    }

    fn caches<'c>(&self, caches: &'c Caches) -> Vec<&'c Health> {
        // The event stream's deployments: the rollout of a job, not its existence.
        vec![
            caches.nomad.jobs_health(),
            caches.nomad.deployments_health(),
        ]
    }

    fn desired(&self, desired: &Desired) -> Vec<String> {
        vec![desired.nomad_job.id.clone()]
    }

    fn owner(&self, key: &SpecKey, _name: &str, live: &LiveObject) -> Option<SpecKey> {
        match live {
            LiveObject::Job(job) => owner_of_body(&job.raw),
            // Vouched for by the list: the stub's owner was `key`, or the write was ours.
            LiveObject::JobVerified(_) => Some(key.clone()),
            _ => None,
        }
    }

    fn compare(&self, desired: &Desired, _name: &str, live: Option<&LiveObject>) -> Option<Step> {
        let j = &desired.nomad_job;
        let object = ObjectRef {
            kind: ObjectKind::NomadJob,
            name: j.id.clone(),
        };
        let register = |create| WriteOp::RegisterJob {
            namespace: j.namespace.clone(),
            id: j.id.clone(),
            job: j.job.clone(),
            create,
        };
        let changes = match live {
            Some(LiveObject::JobVerified(_)) => return None,
            Some(LiveObject::Job(l)) => Some(job_changes(&j.job, l)),
            _ => None,
        };
        upsert_step(object, changes, |exists| register(!exists))
    }

    fn delete(&self, _name: &str, _live: &LiveObject, _jwt_mount: &str) -> Option<Step> {
        // Every spec renders its job: it goes only with the spec (garbage collection).
        None
    }

    fn gather<'a>(
        &'a self,
        cx: Lookup<'a>,
        live: &'a mut Live,
        pending: &'a mut BTreeSet<ObjectRef>,
    ) -> BoxFuture<'a, Looked> {
        gather_job(cx, live, pending).boxed()
    }

    fn preflight<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Option<Option<SpecKey>>, ReconcileError>> {
        preflight_job(shared, key, step).boxed()
    }

    fn execute<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
        live: &'a Live,
    ) -> BoxFuture<'a, Result<Applied, ReconcileError>> {
        execute_job(shared, key, step, live).boxed()
    }

    fn inventory<'a>(
        &'a self,
        shared: &'a OperatorContext,
    ) -> BoxFuture<'a, Option<Vec<GcObject>>> {
        let owned = owned_jobs(shared)
            .map(|(owner, jkey)| GcObject {
                owner,
                kind: ObjectKind::NomadJob,
                name: jkey
                    .split_once('/')
                    .map_or(jkey.clone(), |(_, id)| id.to_owned()),
            })
            .collect();
        futures::future::ready(Some(owned)).boxed()
    }

    fn listed_owners(&self, shared: &OperatorContext) -> Vec<String> {
        owned_jobs(shared).map(|(owner, _)| owner).collect()
    }

    fn gc_delete<'a>(
        &'a self,
        shared: &'a OperatorContext,
        o: &'a GcObject,
        owner: &'a SpecKey,
    ) -> BoxFuture<'a, Result<Option<WriteOp>, ReconcileError>> {
        gc_delete_job(shared, o, owner).boxed()
    }
}
