//! Pure decisions of one reconcile: who owns each live object (conflict detection), and
//! the ordered list of writes that moves the live objects to the desired ones.
//!
//! Ordering (see the design): Vault policy → Vault role → service-defaults →
//! service-intentions → Nomad job → http-route(s); objects the spec no longer has are
//! deleted afterwards in the reverse order. One exception: when the service protocol goes
//! from an HTTP family to `tcp`, Consul rejects the `service-defaults` write while L7
//! intentions or routes still need HTTP, so the intentions are written and the routes
//! deleted first, and `service-defaults` follows.
//!
//! A difference in `Meta["steward.hash"]` alone is not a reason to write: that key
//! records the spec hash of the last write to the object, and a spec change that leaves
//! an object's content unchanged (a new image changes the job only) must not rewrite the
//! other objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use steward_hashi::nomad::Job;
use steward_render::names::{self, META_HASH, SpecKey};
use steward_render::{
    ConfigEntry, Desired, FieldChange, ObjectKind, ObjectRef, diff_config_entry, diff_job,
    diff_policy, diff_role,
};

/// A live config entry: its body as the server returns it and its `ModifyIndex`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    /// The entry.
    pub body: Arc<Value>,
    /// `ModifyIndex`, the CAS value of the next write.
    pub modify_index: u64,
}

/// Every live object one spec key may own, found by the names the key gives (and, for
/// routes, by ownership).
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// `service-defaults` named after the service.
    pub service_defaults: Option<LiveEntry>,
    /// `service-intentions` named after the service.
    pub service_intentions: Option<LiveEntry>,
    /// `http-route` entries: the desired names and every route owned by the key.
    pub http_routes: BTreeMap<String, LiveEntry>,
    /// The Nomad job.
    pub job: Option<Arc<Job>>,
    /// Set instead of `job` when the job list shows the job unchanged since it was last
    /// found to match this generation (its `JobModifyIndex`): no body was read and no
    /// write is needed.
    pub job_verified: Option<u64>,
    /// The Vault policy text.
    pub policy: Option<Arc<String>>,
    /// The Vault role (read form).
    pub role: Option<Arc<Value>>,
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// `PUT /v1/config?cas=<cas>` (0 = create only).
    PutEntry {
        /// Entry kind.
        kind: String,
        /// Entry name.
        name: String,
        /// The body.
        body: Value,
        /// CAS index.
        cas: u64,
    },
    /// `DELETE /v1/config/<kind>/<name>?cas=<cas>`.
    DeleteEntry {
        /// Entry kind.
        kind: String,
        /// Entry name.
        name: String,
        /// CAS index.
        cas: u64,
    },
    /// Register the job: with `EnforceIndex` 0 when `create`, else plan first and use
    /// the plan's `JobModifyIndex`.
    RegisterJob {
        /// Nomad namespace.
        namespace: String,
        /// Job ID.
        id: String,
        /// The `Job` object.
        job: Value,
        /// The job does not exist yet.
        create: bool,
    },
    /// `PUT /v1/sys/policies/acl/<name>`.
    PutPolicy {
        /// Policy name.
        name: String,
        /// Policy text.
        hcl: String,
    },
    /// `DELETE /v1/sys/policies/acl/<name>`.
    DeletePolicy {
        /// Policy name.
        name: String,
    },
    /// `POST /v1/auth/<mount>/role/<name>`.
    PutRole {
        /// Auth mount.
        mount: String,
        /// Role name.
        name: String,
        /// Role body.
        body: Value,
    },
    /// `DELETE /v1/auth/<mount>/role/<name>`.
    DeleteRole {
        /// Auth mount.
        mount: String,
        /// Role name.
        name: String,
    },
    /// `DELETE /v1/job/<id>[?purge=true]`: stop (or purge) a job (garbage collection;
    /// the caller has checked on a fresh read that the job is still owned).
    DeregisterJob {
        /// Nomad namespace.
        namespace: String,
        /// Job ID.
        id: String,
        /// Purge instead of stopping.
        purge: bool,
    },
}

/// Why a step is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The object does not exist.
    Create,
    /// The object differs from the spec.
    Update,
    /// The spec no longer has the object.
    Delete,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The object.
    pub object: ObjectRef,
    /// Why.
    pub kind: StepKind,
    /// The differing owned fields (updates only).
    pub changes: Vec<FieldChange>,
    /// The write.
    pub op: WriteOp,
}

/// The ordered writes of one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Writes, in the order to apply them.
    pub steps: Vec<Step>,
    /// Desired objects that already match.
    pub in_sync: Vec<ObjectRef>,
}

impl Plan {
    /// True when nothing needs writing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The owner recorded on an object, as text for messages.
#[must_use]
pub fn owner_message(owner: Option<&SpecKey>) -> String {
    match owner {
        Some(k) => format!("owned by spec {k}"),
        None => {
            "not managed by Steward (no ownership metadata): created by hand or by another tool"
                .to_owned()
        }
    }
}

/// The spec key owning a config entry or job body (through `Meta`).
#[must_use]
pub fn owner_of_body(body: &Value) -> Option<SpecKey> {
    names::owner_from_meta(body.get("Meta").unwrap_or(&Value::Null))
}

/// Every desired object that exists live without being owned by `key`, with a message
/// naming its owner. Any conflict means no write at all for the key.
#[must_use]
pub fn conflicts(key: &SpecKey, desired: &Desired, live: &Live) -> Vec<(ObjectRef, String)> {
    let mut out = Vec::new();
    let mut check = |kind: ObjectKind, name: &str, owner: Option<SpecKey>| {
        if owner.as_ref() != Some(key) {
            out.push((
                ObjectRef {
                    kind,
                    name: name.to_owned(),
                },
                owner_message(owner.as_ref()),
            ));
        }
    };
    if let (Some(d), Some(l)) = (&desired.vault_policy, &live.policy) {
        check(
            ObjectKind::VaultPolicy,
            &d.name,
            names::owner_of_policy(&d.name, l),
        );
    }
    if let (Some(d), Some(l)) = (&desired.vault_role, &live.role) {
        check(
            ObjectKind::VaultRole,
            &d.name,
            names::owner_of_role(&d.name, l),
        );
    }
    if let (Some(d), Some(l)) = (&desired.service_defaults, &live.service_defaults) {
        check(ObjectKind::ServiceDefaults, &d.name, owner_of_body(&l.body));
    }
    if let (Some(d), Some(l)) = (&desired.service_intentions, &live.service_intentions) {
        check(
            ObjectKind::ServiceIntentions,
            &d.name,
            owner_of_body(&l.body),
        );
    }
    if let Some(job) = &live.job {
        check(
            ObjectKind::NomadJob,
            &desired.nomad_job.id,
            owner_of_body(&job.raw),
        );
    }
    for route in &desired.http_routes {
        if let Some(l) = live.http_routes.get(&route.name) {
            check(ObjectKind::HttpRoute, &route.name, owner_of_body(&l.body));
        }
    }
    out
}

/// Drops a change set that only differs in `Meta["steward.hash"]` (see the module docs).
#[must_use]
pub fn material(changes: Vec<FieldChange>) -> Vec<FieldChange> {
    let hash_path = format!("Meta[{META_HASH:?}]");
    if changes.iter().all(|c| c.path == hash_path) {
        Vec::new()
    } else {
        changes
    }
}

/// The changes that make the live job differ from the desired one: the owned-field
/// diff plus `Stop` (a stopped job has to run again).
#[must_use]
pub fn job_changes(desired: &Value, live: &Job) -> Vec<FieldChange> {
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

/// The step that brings one object to its desired form: `Create` when it is absent
/// (`changes` is `None`), `Update` when it differs, nothing when the changes are empty.
/// `op(live)` builds the write; its argument says whether the object exists.
fn upsert_step(
    object: ObjectRef,
    changes: Option<Vec<FieldChange>>,
    op: impl FnOnce(bool) -> WriteOp,
) -> Option<Step> {
    match changes {
        None => Some(Step {
            object,
            kind: StepKind::Create,
            changes: Vec::new(),
            op: op(false),
        }),
        Some(changes) => (!changes.is_empty()).then(|| Step {
            object,
            kind: StepKind::Update,
            changes,
            op: op(true),
        }),
    }
}

fn entry_step(kind: ObjectKind, desired: &ConfigEntry, live: Option<&LiveEntry>) -> Option<Step> {
    let object = ObjectRef {
        kind,
        name: desired.name.clone(),
    };
    let put = |cas| WriteOp::PutEntry {
        kind: desired.kind.clone(),
        name: desired.name.clone(),
        body: desired.body.clone(),
        cas,
    };
    let changes = live.map(|l| material(diff_config_entry(&desired.body, &l.body)));
    upsert_step(object, changes, |_| put(live.map_or(0, |l| l.modify_index)))
}

fn delete_entry(kind: ObjectKind, name: &str, live: &LiveEntry) -> Step {
    Step {
        object: ObjectRef {
            kind,
            name: name.to_owned(),
        },
        kind: StepKind::Delete,
        changes: Vec::new(),
        op: WriteOp::DeleteEntry {
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
            cas: live.modify_index,
        },
    }
}

fn is_l7(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

fn protocol(body: &Value) -> String {
    body.get("Protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase()
}

/// The ordered writes that make `live` equal `desired` for `key` (see the module docs).
/// Call only when [`conflicts`] found none. `jwt_mount` is the auth mount of roles the
/// spec no longer wants.
#[must_use]
pub fn plan(key: &SpecKey, desired: &Desired, live: &Live, jwt_mount: &str) -> Plan {
    let mut in_sync = Vec::new();
    let mut note = |step: Option<Step>, object: ObjectRef, out: &mut Vec<Step>| match step {
        Some(s) => out.push(s),
        None => in_sync.push(object),
    };

    // Vault.
    let mut vault = Vec::new();
    if let Some(p) = &desired.vault_policy {
        let object = ObjectRef {
            kind: ObjectKind::VaultPolicy,
            name: p.name.clone(),
        };
        let op = WriteOp::PutPolicy {
            name: p.name.clone(),
            hcl: p.hcl.clone(),
        };
        // Identical text needs no parsing (the usual case).
        let changes = live.policy.as_ref().map(|l| {
            if l.as_str() == p.hcl {
                Vec::new()
            } else {
                diff_policy(&p.hcl, l)
            }
        });
        let step = upsert_step(object.clone(), changes, |_| op);
        note(step, object, &mut vault);
    }
    if let Some(r) = &desired.vault_role {
        let object = ObjectRef {
            kind: ObjectKind::VaultRole,
            name: r.name.clone(),
        };
        let op = WriteOp::PutRole {
            mount: r.mount.clone(),
            name: r.name.clone(),
            body: r.body.clone(),
        };
        let changes = live.role.as_ref().map(|l| {
            if **l == r.body {
                Vec::new()
            } else {
                diff_role(&r.body, l)
            }
        });
        let step = upsert_step(object.clone(), changes, |_| op);
        note(step, object, &mut vault);
    }

    // Consul service-defaults and intentions.
    let mut defaults = Vec::new();
    let mut downgrade = false;
    if let Some(d) = &desired.service_defaults {
        let object = ObjectRef {
            kind: ObjectKind::ServiceDefaults,
            name: d.name.clone(),
        };
        let live_sd = live.service_defaults.as_ref();
        downgrade =
            live_sd.is_some_and(|l| is_l7(&protocol(&l.body)) && !is_l7(&protocol(&d.body)));
        note(
            entry_step(ObjectKind::ServiceDefaults, d, live_sd),
            object,
            &mut defaults,
        );
    }
    let mut intentions = Vec::new();
    if let Some(d) = &desired.service_intentions {
        let object = ObjectRef {
            kind: ObjectKind::ServiceIntentions,
            name: d.name.clone(),
        };
        note(
            entry_step(
                ObjectKind::ServiceIntentions,
                d,
                live.service_intentions.as_ref(),
            ),
            object,
            &mut intentions,
        );
    }

    // Nomad job.
    let mut job = Vec::new();
    let j = &desired.nomad_job;
    let job_object = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: j.id.clone(),
    };
    let register = |create| WriteOp::RegisterJob {
        namespace: j.namespace.clone(),
        id: j.id.clone(),
        job: j.job.clone(),
        create,
    };
    let job_step = if live.job.is_none() && live.job_verified.is_some() {
        None
    } else {
        let changes = live.job.as_ref().map(|l| job_changes(&j.job, l));
        upsert_step(job_object.clone(), changes, |exists| register(!exists))
    };
    note(job_step, job_object, &mut job);

    // Routes.
    let mut routes = Vec::new();
    for r in &desired.http_routes {
        let object = ObjectRef {
            kind: ObjectKind::HttpRoute,
            name: r.name.clone(),
        };
        note(
            entry_step(ObjectKind::HttpRoute, r, live.http_routes.get(&r.name)),
            object,
            &mut routes,
        );
    }

    // Objects the spec no longer has (only those owned by this key), reverse order.
    let owned = |body: &Value| owner_of_body(body).as_ref() == Some(key);
    let mut route_deletes: Vec<Step> = live
        .http_routes
        .iter()
        .filter(|(name, l)| !desired.http_routes.iter().any(|r| &r.name == *name) && owned(&l.body))
        .map(|(name, l)| delete_entry(ObjectKind::HttpRoute, name, l))
        .collect();
    let mut deletes = Vec::new();
    if desired.service_intentions.is_none()
        && let Some(l) = live.service_intentions.as_ref().filter(|l| owned(&l.body))
    {
        deletes.push(delete_entry(
            ObjectKind::ServiceIntentions,
            &names::service_intentions(key),
            l,
        ));
    }
    if desired.service_defaults.is_none()
        && let Some(l) = live.service_defaults.as_ref().filter(|l| owned(&l.body))
    {
        deletes.push(delete_entry(
            ObjectKind::ServiceDefaults,
            &names::service_defaults(key),
            l,
        ));
    }
    let role_name = names::jwt_role(key);
    if desired.vault_role.is_none()
        && live
            .role
            .as_ref()
            .is_some_and(|l| names::owner_of_role(&role_name, l).as_ref() == Some(key))
    {
        deletes.push(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultRole,
                name: role_name.clone(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeleteRole {
                mount: jwt_mount.to_owned(),
                name: role_name,
            },
        });
    }
    let policy_name = names::vault_policy(key);
    if desired.vault_policy.is_none()
        && live
            .policy
            .as_ref()
            .is_some_and(|l| names::owner_of_policy(&policy_name, l).as_ref() == Some(key))
    {
        deletes.push(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultPolicy,
                name: policy_name.clone(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeletePolicy { name: policy_name },
        });
    }

    let mut steps = vault;
    if downgrade {
        // intentions (no more L7 permissions) and route deletions before the protocol
        // goes to tcp.
        steps.append(&mut intentions);
        steps.append(&mut route_deletes);
        steps.append(&mut defaults);
    } else {
        steps.append(&mut defaults);
        steps.append(&mut intentions);
    }
    steps.append(&mut job);
    steps.append(&mut routes);
    steps.append(&mut route_deletes);
    steps.append(&mut deletes);
    Plan { steps, in_sync }
}

#[cfg(test)]
mod tests;
