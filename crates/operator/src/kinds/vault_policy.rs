//! The Vault ACL policy of a spec with secrets. Vault keeps no metadata and has no
//! check-and-set: the owner is a marker in the policy text, names are polled, contents
//! are read once and then by a rolling check, and every update or delete re-reads the
//! policy right before writing.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use steward_render::names::{self, SpecKey};
use steward_render::{Desired, ObjectKind, ObjectRef, diff_policy};

use super::{Applied, Kind, Looked, Lookup, Watch, created_or_updated, foreign_op, spec_using};
use crate::cache::{Caches, Health};
use crate::context::OperatorContext;
use crate::guard::GcObject;
use crate::kinds::describe;
use crate::objects::{Live, LiveObject, Step, StepKind, WriteOp, upsert_step};
use crate::reconcile_error::{ReconcileError, api};
use crate::status::ObjectState;

/// The kind's module.
pub(super) static KIND: VaultPolicy = VaultPolicy;

/// The Vault policy kind.
pub(crate) struct VaultPolicy;

async fn gather_policy(cx: Lookup<'_>, live: &mut Live) -> Looked {
    let c = &cx.shared.caches;
    let vault = &cx.shared.clients.vault;
    let policy = names::vault_policy(cx.key);
    let wanted = cx.desired.vault_policy.as_ref();
    // An uncertain write is read back from Vault, as a stale cache would be.
    let fresh =
        c.vault.policies_health().is_fresh() && !cx.read_directly(ObjectKind::VaultPolicy, &policy);
    // A policy the spec does not render is read only from a synced cache (to find what
    // it owned before).
    let usable = wanted.is_some() || c.vault.policies_health().is_synced();
    let text = if !usable || (fresh && !c.vault.has_policy(&policy)) {
        None
    } else if let Some(text) = c.vault.policy(&policy).filter(|_| fresh) {
        Some(text)
    } else if let Some(p) = wanted.filter(|p| {
        fresh
            && cx
                .trust
                .is_some_and(|t| t.in_sync(ObjectKind::VaultPolicy, &p.name))
    }) {
        Some(Arc::new(p.hcl.clone()))
    } else {
        let text = vault
            .get_policy(&policy)
            .await
            .map_err(api(format!("vault-policy {policy}")))?
            .map(|p| p.policy);
        c.vault.set_policy(&policy, text.clone());
        text.map(Arc::new)
    };
    if let Some(text) = text {
        let object = ObjectRef {
            kind: ObjectKind::VaultPolicy,
            name: policy,
        };
        live.insert(object, LiveObject::Policy(text));
    }
    Ok(Ok(()))
}

async fn execute_policy(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
) -> Result<Applied, ReconcileError> {
    let object = describe(&step.object, key);
    let vault = &shared.clients.vault;
    let c = &shared.caches;
    match &step.op {
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
                if diff_policy(hcl, text).is_empty() {
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
        other => Err(foreign_op(object, other)),
    }
}

async fn preflight_policy(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
) -> Result<Option<Option<SpecKey>>, ReconcileError> {
    let WriteOp::PutPolicy { name, .. } = &step.op else {
        return Ok(None);
    };
    let text = shared
        .clients
        .vault
        .get_policy(name)
        .await
        .map_err(api(describe(&step.object, key)))?
        .map(|p| p.policy);
    shared.caches.vault.set_policy(name, text.clone());
    Ok(text.map(|t| names::owner_of_policy(name, &t)))
}

/// Vault has no metadata: the owner is in the content. A name that a current spec
/// would use is that spec's (reading 20,000 contents to learn what the names already
/// say would make every new leader's first pass a storm); only other names are read to
/// find out whether, and by whom, they are owned.
async fn inventory_policies(shared: &OperatorContext) -> Option<Vec<GcObject>> {
    let c = &shared.caches;
    let mut out = Vec::new();
    for name in c.vault.policy_names() {
        let owner = match (c.vault.policy(&name), spec_using(c, &name)) {
            (Some(_), _) => c.vault.policy_owner(&name),
            (None, Some(key)) => Some(key),
            (None, None) => {
                let text = shared
                    .clients
                    .vault
                    .get_policy(&name)
                    .await
                    .ok()?
                    .map(|p| p.policy);
                c.vault.set_policy(&name, text);
                c.vault.policy_owner(&name)
            }
        };
        if let Some(owner) = owner {
            out.push(GcObject {
                owner,
                kind: ObjectKind::VaultPolicy,
                name,
            });
        }
    }
    Some(out)
}

/// Vault has no CAS: the executor reads the policy again right before deleting it and
/// deletes only what the owner owns; this read says whether there is anything to
/// delete at all.
async fn gc_delete_policy(
    shared: &OperatorContext,
    o: &GcObject,
    owner: &SpecKey,
) -> Result<Option<WriteOp>, ReconcileError> {
    let live = shared
        .clients
        .vault
        .get_policy(&o.name)
        .await
        .map_err(api(format!("{} {}", o.kind, o.name)))?
        .map(|p| p.policy);
    let owned = live
        .as_deref()
        .and_then(|t| names::owner_of_policy(&o.name, t))
        .as_ref()
        == Some(owner);
    if !owned {
        shared.caches.vault.set_policy(&o.name, live);
        return Ok(None);
    }
    Ok(Some(WriteOp::DeletePolicy {
        name: o.name.clone(),
    }))
}

impl Kind for VaultPolicy {
    fn kind(&self) -> ObjectKind {
        ObjectKind::VaultPolicy
    }

    fn health<'c>(&self, caches: &'c Caches) -> &'c Health {
        caches.vault.policies_health()
    }

    fn watches(&self, ctx: &Arc<OperatorContext>) -> Vec<Watch> {
        // Vault has no watch: one poll lists policy names and role names in turn (so an
        // idle operator makes two lists a minute at the default 30 s), for both Vault
        // kinds; it is started here, and `vault-role` starts none.
        let cache = ctx.caches.vault.clone();
        let client = ctx.clients.vault.clone();
        let config = &ctx.config;
        let (mount, interval) = (config.jwt_auth_mount.clone(), config.vault_poll_interval);
        let (checks, changes) = (config.vault_checks_per_poll, ctx.changes.clone());
        let task = async move { cache.run(client, mount, interval, checks, changes).await };
        vec![Watch::new("vault-poll", task)]
    }

    fn reads_before_create(&self, _caches: &Caches) -> bool {
        // No check-and-set in Vault, and its names are polled.
        true
    }

    fn desired(&self, desired: &Desired) -> Vec<String> {
        desired
            .vault_policy
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    fn owner(&self, _key: &SpecKey, name: &str, live: &LiveObject) -> Option<SpecKey> {
        match live {
            LiveObject::Policy(text) => names::owner_of_policy(name, text),
            _ => None,
        }
    }

    fn compare(&self, desired: &Desired, _name: &str, live: Option<&LiveObject>) -> Option<Step> {
        let p = desired.vault_policy.as_ref()?;
        let object = ObjectRef {
            kind: ObjectKind::VaultPolicy,
            name: p.name.clone(),
        };
        let op = WriteOp::PutPolicy {
            name: p.name.clone(),
            hcl: p.hcl.clone(),
        };
        let changes = live.map(|l| match l {
            // Identical text needs no parsing (the usual case).
            LiveObject::Policy(text) if text.as_str() == p.hcl => Vec::new(),
            LiveObject::Policy(text) => diff_policy(&p.hcl, text),
            _ => diff_policy(&p.hcl, ""),
        });
        upsert_step(object, changes, |_| op)
    }

    fn delete(&self, name: &str, _live: &LiveObject, _jwt_mount: &str) -> Option<Step> {
        Some(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultPolicy,
                name: name.to_owned(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeletePolicy {
                name: name.to_owned(),
            },
        })
    }

    fn gather<'a>(
        &'a self,
        cx: Lookup<'a>,
        live: &'a mut Live,
        _pending: &'a mut BTreeSet<ObjectRef>,
    ) -> BoxFuture<'a, Looked> {
        gather_policy(cx, live).boxed()
    }

    fn preflight<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Option<Option<SpecKey>>, ReconcileError>> {
        preflight_policy(shared, key, step).boxed()
    }

    fn execute<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
        _live: &'a Live,
    ) -> BoxFuture<'a, Result<Applied, ReconcileError>> {
        execute_policy(shared, key, step).boxed()
    }

    fn inventory<'a>(
        &'a self,
        shared: &'a OperatorContext,
    ) -> BoxFuture<'a, Option<Vec<GcObject>>> {
        inventory_policies(shared).boxed()
    }

    fn gc_delete<'a>(
        &'a self,
        shared: &'a OperatorContext,
        o: &'a GcObject,
        owner: &'a SpecKey,
    ) -> BoxFuture<'a, Result<Option<WriteOp>, ReconcileError>> {
        gc_delete_policy(shared, o, owner).boxed()
    }
}
