//! The Vault JWT auth role of a spec with secrets, on the configured auth mount. Like
//! the policy it has no metadata and no check-and-set: the owner is the job its bound
//! claims name, names are polled, and every update or delete re-reads the role right
//! before writing.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use steward_hashi::vault::jwt::JwtRole;
use steward_render::names::{self, SpecKey};
use steward_render::{Desired, ObjectKind, ObjectRef, diff_role};

use super::{Applied, Kind, Looked, Lookup, Watch, created_or_updated, foreign_op, spec_using};
use crate::cache::vault::read_role;
use crate::cache::{Caches, Health};
use crate::context::OperatorContext;
use crate::guard::GcObject;
use crate::kinds::describe;
use crate::objects::{Live, LiveObject, Step, StepKind, WriteOp, upsert_step};
use crate::reconcile_error::{ReconcileError, api};
use crate::status::ObjectState;

/// The kind's module.
pub(super) static KIND: VaultRole = VaultRole;

/// The Vault JWT role kind.
pub(crate) struct VaultRole;

async fn gather_role(cx: Lookup<'_>, live: &mut Live) -> Looked {
    let c = &cx.shared.caches;
    let role = names::jwt_role(cx.key);
    let mount = &cx.shared.config.jwt_auth_mount;
    let wanted = cx.desired.vault_role.as_ref();
    // An uncertain write is read back from Vault, as a stale cache would be.
    let fresh =
        c.vault.roles_health().is_fresh() && !cx.read_directly(ObjectKind::VaultRole, &role);
    // A role the spec does not render is read only from a synced cache (to find what it
    // owned before).
    let usable = wanted.is_some() || c.vault.roles_health().is_synced();
    let body = if !usable || (fresh && !c.vault.has_role(&role)) {
        None
    } else if let Some(body) = c.vault.role(&role).filter(|_| fresh) {
        Some(body)
    } else if let Some(r) = wanted.filter(|r| {
        fresh
            && cx
                .trust
                .is_some_and(|t| t.in_sync(ObjectKind::VaultRole, &r.name))
    }) {
        Some(Arc::new(r.body.clone()))
    } else {
        let body = read_role(&cx.shared.clients.vault, mount, &role)
            .await
            .map_err(api(format!("vault-role {role}")))?;
        c.vault.set_role(&role, body.clone());
        body.map(Arc::new)
    };
    if let Some(body) = body {
        let object = ObjectRef {
            kind: ObjectKind::VaultRole,
            name: role,
        };
        live.insert(object, LiveObject::Role(body));
    }
    Ok(Ok(()))
}

async fn execute_role(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
) -> Result<Applied, ReconcileError> {
    let object = describe(&step.object, key);
    let vault = &shared.clients.vault;
    let c = &shared.caches;
    match &step.op {
        WriteOp::PutRole { mount, name, body } => {
            // No CAS in Vault: confirm on a fresh read that the write is still needed and
            // that we own what we would overwrite.
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
                if diff_role(body, current).is_empty() {
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
        other => Err(foreign_op(object, other)),
    }
}

async fn preflight_role(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
) -> Result<Option<Option<SpecKey>>, ReconcileError> {
    let WriteOp::PutRole { mount, name, .. } = &step.op else {
        return Ok(None);
    };
    let body = read_role(&shared.clients.vault, mount, name)
        .await
        .map_err(api(describe(&step.object, key)))?;
    shared.caches.vault.set_role(name, body.clone());
    Ok(body.map(|b| names::owner_of_role(name, &b)))
}

/// Like the policies' inventory: names a current spec would use are that spec's; other
/// names are read to learn their owner.
async fn inventory_roles(shared: &OperatorContext) -> Option<Vec<GcObject>> {
    let c = &shared.caches;
    let mount = &shared.config.jwt_auth_mount;
    let mut out = Vec::new();
    for name in c.vault.role_names() {
        let owner = match (c.vault.role(&name), spec_using(c, &name)) {
            (Some(_), _) => c.vault.role_owner(&name),
            (None, Some(key)) => Some(key),
            (None, None) => {
                let body = read_role(&shared.clients.vault, mount, &name).await.ok()?;
                c.vault.set_role(&name, body);
                c.vault.role_owner(&name)
            }
        };
        if let Some(owner) = owner {
            out.push(GcObject {
                owner,
                kind: ObjectKind::VaultRole,
                name,
            });
        }
    }
    Some(out)
}

/// Vault has no CAS: the executor reads the role again right before deleting it and
/// deletes only what the owner owns; this read says whether there is anything to
/// delete at all.
async fn gc_delete_role(
    shared: &OperatorContext,
    o: &GcObject,
    owner: &SpecKey,
) -> Result<Option<WriteOp>, ReconcileError> {
    let mount = shared.config.jwt_auth_mount.clone();
    let live = read_role(&shared.clients.vault, &mount, &o.name)
        .await
        .map_err(api(format!("{} {}", o.kind, o.name)))?;
    let owned = live
        .as_ref()
        .and_then(|b| names::owner_of_role(&o.name, b))
        .as_ref()
        == Some(owner);
    if !owned {
        shared.caches.vault.set_role(&o.name, live);
        return Ok(None);
    }
    Ok(Some(WriteOp::DeleteRole {
        mount,
        name: o.name.clone(),
    }))
}

impl Kind for VaultRole {
    fn kind(&self) -> ObjectKind {
        ObjectKind::VaultRole
    }

    fn health<'c>(&self, caches: &'c Caches) -> &'c Health {
        caches.vault.roles_health()
    }

    fn watches(&self, _ctx: &Arc<OperatorContext>) -> Vec<Watch> {
        // The Vault poll that `vault-policy` starts lists role names too.
        Vec::new()
    }

    fn reads_before_create(&self, _caches: &Caches) -> bool {
        // No check-and-set in Vault, and its names are polled.
        true
    }

    fn desired(&self, desired: &Desired) -> Vec<String> {
        desired.vault_role.iter().map(|r| r.name.clone()).collect()
    }

    fn owner(&self, _key: &SpecKey, name: &str, live: &LiveObject) -> Option<SpecKey> {
        match live {
            LiveObject::Role(body) => names::owner_of_role(name, body),
            _ => None,
        }
    }

    fn compare(&self, desired: &Desired, _name: &str, live: Option<&LiveObject>) -> Option<Step> {
        let r = desired.vault_role.as_ref()?;
        let object = ObjectRef {
            kind: ObjectKind::VaultRole,
            name: r.name.clone(),
        };
        let op = WriteOp::PutRole {
            mount: r.mount.clone(),
            name: r.name.clone(),
            body: r.body.clone(),
        };
        let changes = live.map(|l| match l {
            LiveObject::Role(body) if **body == r.body => Vec::new(),
            LiveObject::Role(body) => diff_role(&r.body, body),
            _ => diff_role(&r.body, &serde_json::Value::Null),
        });
        upsert_step(object, changes, |_| op)
    }

    fn delete(&self, name: &str, _live: &LiveObject, jwt_mount: &str) -> Option<Step> {
        Some(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultRole,
                name: name.to_owned(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeleteRole {
                mount: jwt_mount.to_owned(),
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
        gather_role(cx, live).boxed()
    }

    fn preflight<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Option<Option<SpecKey>>, ReconcileError>> {
        preflight_role(shared, key, step).boxed()
    }

    fn execute<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
        _live: &'a Live,
    ) -> BoxFuture<'a, Result<Applied, ReconcileError>> {
        execute_role(shared, key, step).boxed()
    }

    fn inventory<'a>(
        &'a self,
        shared: &'a OperatorContext,
    ) -> BoxFuture<'a, Option<Vec<GcObject>>> {
        inventory_roles(shared).boxed()
    }

    fn gc_delete<'a>(
        &'a self,
        shared: &'a OperatorContext,
        o: &'a GcObject,
        owner: &'a SpecKey,
    ) -> BoxFuture<'a, Result<Option<WriteOp>, ReconcileError>> {
        gc_delete_role(shared, o, owner).boxed()
    }
}
