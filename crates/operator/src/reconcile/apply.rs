//! Executing one step of a plan (CAS writes, Vault re-reads, namespaces, gateway): the
//! one executor of every object write, the reconciles' and garbage collection's alike,
//! with typed errors ([`ReconcileError::is_retryable`]).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use steward_hashi::nomad::RegisterOptions;
use steward_hashi::vault::jwt::JwtRole;
use steward_hashi::{Idempotency, QueryOptions, RequestSpec, WriteOptions};
use steward_render::ObjectRef;
use steward_render::names::{self, SpecKey};
use tokio::time::Instant;

use super::{ReconcileError, api, describe, summarise};
use crate::cache::nomad::{WrittenJob, job_key};
use crate::cache::vault::read_role;
use crate::context::OperatorContext;
use crate::plan::{Live, Step, StepKind, WriteOp, owner_of_body};
use crate::rollout::JobState;
use crate::status::ObjectState;

/// How long a confirmed edge gateway is trusted before it is read again.
const GATEWAY_TTL: Duration = Duration::from_secs(30);

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The state of the object afterwards.
    pub(crate) state: ObjectState,
    /// For a job registration: the new `JobModifyIndex`.
    pub(crate) job_modify_index: Option<u64>,
}

impl From<ObjectState> for Applied {
    fn from(state: ObjectState) -> Self {
        Self {
            state,
            job_modify_index: None,
        }
    }
}

/// Applies one step.
pub(crate) async fn execute(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
    live: &Live,
) -> Result<Applied, ReconcileError> {
    let object = describe(&step.object, key);
    let created_or_updated = |existed: bool| {
        if existed {
            ObjectState::Updated
        } else {
            ObjectState::Created
        }
    };
    let consul = &shared.clients.consul;
    let vault = &shared.clients.vault;
    let c = &shared.caches;
    match &step.op {
        WriteOp::PutEntry {
            kind,
            name,
            body,
            cas,
        } => {
            if kind == steward_render::http_route::KIND {
                ensure_gateway(shared).await?;
            }
            let ok = consul
                .config_put(body, &WriteOptions::cas(*cas))
                .await
                .map_err(api(object.clone()))?;
            if !ok {
                return Err(ReconcileError::CasLost { object });
            }
            if let Some(cache) = c.entries(kind) {
                cache.record_write(name, *cas, Some(body));
            }
            Ok(created_or_updated(*cas != 0).into())
        }
        WriteOp::DeleteEntry { kind, name, cas } => {
            let ok = consul
                .config_delete(kind, name, &WriteOptions::cas(*cas))
                .await
                .map_err(api(object.clone()))?;
            if !ok {
                return Err(ReconcileError::CasLost { object });
            }
            if let Some(cache) = c.entries(kind) {
                cache.record_write(name, *cas, None);
            }
            Ok(ObjectState::Deleted.into())
        }
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
                let plan = nomad
                    .plan_job(job, Some(namespace))
                    .await
                    .map_err(api(object.clone()))?;
                if plan.diff.as_ref().is_some_and(|d| d.is_unchanged()) {
                    tracing::warn!(
                        job = %jkey,
                        changes = %summarise(&step.changes),
                        "Nomad's plan shows no change although Steward's diff does; not registering"
                    );
                    return Ok(ObjectState::Synced.into());
                }
                let base = live.job.as_ref().map(|j| j.view.job_modify_index);
                (plan.job_modify_index, base)
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
            })
        }
        WriteOp::PutPolicy { name, hcl } => {
            // No CAS in Vault: confirm on a fresh read that the write is still needed and
            // that we own what we would overwrite (a creation was confirmed absent by the
            // pre-flight read just before).
            let fresh = if step.kind == StepKind::Create {
                None
            } else {
                vault
                    .get_policy(name)
                    .await
                    .map_err(api(object.clone()))?
                    .map(|p| p.policy)
            };
            if let Some(text) = &fresh {
                if names::owner_of_policy(name, text).as_ref() != Some(key) {
                    c.vault.set_policy(name, fresh.clone());
                    return Err(ReconcileError::Conflict {
                        object,
                        message: "exists and is not owned by this spec (no matching marker)"
                            .to_owned(),
                    });
                }
                if steward_render::diff_policy(hcl, text).is_empty() {
                    c.vault.set_policy(name, fresh.clone());
                    return Ok(ObjectState::Synced.into());
                }
            }
            vault
                .put_policy(name, hcl)
                .await
                .map_err(api(object.clone()))?;
            c.vault.set_policy(name, Some(hcl.clone()));
            Ok(created_or_updated(fresh.is_some()).into())
        }
        WriteOp::PutRole { mount, name, body } => {
            let fresh = if step.kind == StepKind::Create {
                None
            } else {
                read_role(vault, mount, name)
                    .await
                    .map_err(api(object.clone()))?
            };
            if let Some(current) = &fresh {
                if names::owner_of_role(name, current).as_ref() != Some(key) {
                    c.vault.set_role(name, fresh.clone());
                    return Err(ReconcileError::Conflict {
                        object,
                        message: "exists and is not bound to this spec's job".to_owned(),
                    });
                }
                if steward_render::diff_role(body, current).is_empty() {
                    c.vault.set_role(name, fresh.clone());
                    return Ok(ObjectState::Synced.into());
                }
            }
            let role: JwtRole =
                serde_json::from_value(body.clone()).map_err(|e| ReconcileError::Api {
                    object: object.clone(),
                    source: steward_hashi::Error::InvalidArgument {
                        message: format!("role body: {e}"),
                    },
                })?;
            vault
                .put_jwt_role(mount, name, &role)
                .await
                .map_err(api(object.clone()))?;
            c.vault.set_role(name, Some(body.clone()));
            Ok(created_or_updated(fresh.is_some()).into())
        }
        WriteOp::DeletePolicy { name } => {
            let fresh = vault
                .get_policy(name)
                .await
                .map_err(api(object.clone()))?
                .map(|p| p.policy);
            match fresh {
                Some(text) if names::owner_of_policy(name, &text).as_ref() == Some(key) => {
                    vault
                        .delete_policy(name)
                        .await
                        .map_err(api(object.clone()))?;
                }
                // Gone already, or no longer ours: nothing to delete.
                _ => {}
            }
            c.vault.set_policy(name, None);
            Ok(ObjectState::Deleted.into())
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
        WriteOp::DeleteRole { mount, name } => {
            let fresh = read_role(vault, mount, name)
                .await
                .map_err(api(object.clone()))?;
            if fresh
                .as_ref()
                .is_some_and(|b| names::owner_of_role(name, b).as_ref() == Some(key))
            {
                vault
                    .delete_jwt_role(mount, name)
                    .await
                    .map_err(api(object.clone()))?;
            }
            c.vault.set_role(name, None);
            Ok(ObjectState::Deleted.into())
        }
    }
}

/// Makes sure the Nomad namespace exists (creating it when configured to).
pub(crate) async fn ensure_namespace(
    shared: &OperatorContext,
    namespace: &str,
) -> Result<(), ReconcileError> {
    let cache = &shared.caches.nomad;
    let known = |ns: &str| cache.namespaces().is_some_and(|s| s.contains(ns));
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

/// Makes sure the edge gateway routes attach to exists.
async fn ensure_gateway(shared: &OperatorContext) -> Result<(), ReconcileError> {
    if shared
        .gateway_seen
        .lock()
        .is_some_and(|t| t.elapsed() < GATEWAY_TTL)
    {
        return Ok(());
    }
    let gw = &shared.config.edge_gateway;
    let found = shared
        .clients
        .consul
        .config_get_raw(&gw.kind, &gw.name, &QueryOptions::new())
        .await
        .map_err(api(format!("{} {}", gw.kind, gw.name)))?;
    if found.value.is_none() {
        return Err(ReconcileError::GatewayMissing {
            kind: gw.kind.clone(),
            name: gw.name.clone(),
        });
    }
    *shared.gateway_seen.lock() = Some(Instant::now());
    Ok(())
}

/// Reads every object a plan would create, all at once: `Create` steps come from caches
/// that may lag, and an object that exists after all must not be written over (and, when
/// someone else owns it, nothing at all may be written for the key). Returns the objects
/// that exist, with their owners.
pub(crate) async fn preflight(
    shared: &OperatorContext,
    key: &SpecKey,
    creates: &[&Step],
) -> Result<Vec<(ObjectRef, Option<SpecKey>)>, ReconcileError> {
    let reads = creates.iter().map(|step| async move {
        let object = describe(&step.object, key);
        let c = &shared.caches;
        let owner: Option<Option<SpecKey>> = match &step.op {
            WriteOp::PutEntry { kind, name, .. } => shared
                .clients
                .consul
                .config_get_raw(kind, name, &QueryOptions::new())
                .await
                .map_err(api(object))?
                .value
                .map(|body| owner_of_body(&body)),
            WriteOp::RegisterJob { namespace, id, .. } => shared
                .clients
                .nomad
                .get_job(id, &QueryOptions::new().namespace(namespace.clone()))
                .await
                .map_err(api(object))?
                .value
                .map(|job| {
                    let owner = owner_of_body(&job.raw);
                    c.nomad.store_body(&job);
                    owner
                }),
            WriteOp::PutPolicy { name, .. } => {
                let text = shared
                    .clients
                    .vault
                    .get_policy(name)
                    .await
                    .map_err(api(object))?
                    .map(|p| p.policy);
                c.vault.set_policy(name, text.clone());
                text.map(|t| names::owner_of_policy(name, &t))
            }
            WriteOp::PutRole { mount, name, .. } => {
                let body = read_role(&shared.clients.vault, mount, name)
                    .await
                    .map_err(api(object))?;
                c.vault.set_role(name, body.clone());
                body.map(|b| names::owner_of_role(name, &b))
            }
            _ => None,
        };
        Ok::<_, ReconcileError>(owner.map(|o| (step.object.clone(), o)))
    });
    let found = futures::future::join_all(reads).await;
    let mut out = Vec::new();
    for r in found {
        if let Some(hit) = r? {
            out.push(hit);
        }
    }
    Ok(out)
}
