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
use steward_render::{Desired, FieldChange, ObjectKind, ObjectRef};

use crate::kinds;

/// A live config entry: its body as the server returns it and its `ModifyIndex`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    /// The entry.
    pub body: Arc<Value>,
    /// `ModifyIndex`, the CAS value of the next write.
    pub modify_index: u64,
}

/// One live object, in the form its kind's module reads it (see `crate::kinds`).
#[derive(Debug, Clone)]
pub enum LiveObject {
    /// A Consul config entry.
    Entry(LiveEntry),
    /// A Nomad job body.
    Job(Arc<Job>),
    /// A Nomad job the job list shows unchanged since it was last found to match this
    /// generation (its `JobModifyIndex`): no body was read and no write is needed.
    JobVerified(u64),
    /// A Vault policy's text.
    Policy(Arc<String>),
    /// A Vault role (read form).
    Role(Arc<Value>),
}

/// Every live object one spec key may own, found by the names the key gives (and, for
/// routes, by ownership), keyed by object.
#[derive(Debug, Clone, Default)]
pub struct Live {
    objects: BTreeMap<ObjectRef, LiveObject>,
}

impl Live {
    /// Records `object` as found live.
    pub fn insert(&mut self, object: ObjectRef, live: LiveObject) {
        self.objects.insert(object, live);
    }

    /// The live form of `object`, when it exists.
    #[must_use]
    pub fn get(&self, object: &ObjectRef) -> Option<&LiveObject> {
        self.objects.get(object)
    }

    /// The live objects of `kind`, by name.
    pub fn of_kind(&self, kind: ObjectKind) -> impl Iterator<Item = (&str, &LiveObject)> {
        self.objects
            .iter()
            .filter(move |(o, _)| o.kind == kind)
            .map(|(o, l)| (o.name.as_str(), l))
    }

    /// The Nomad job's body, when it was read.
    #[must_use]
    pub fn job(&self) -> Option<&Arc<Job>> {
        self.of_kind(ObjectKind::NomadJob)
            .find_map(|(_, l)| match l {
                LiveObject::Job(job) => Some(job),
                _ => None,
            })
    }

    /// The Nomad job's `JobModifyIndex` when the list vouched for it instead of a read.
    #[must_use]
    pub fn job_verified(&self) -> Option<u64> {
        self.of_kind(ObjectKind::NomadJob)
            .find_map(|(_, l)| match l {
                LiveObject::JobVerified(index) => Some(*index),
                _ => None,
            })
    }
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
    for kind in kinds::KINDS {
        for name in kind.desired(desired) {
            let object = ObjectRef {
                kind: kind.kind(),
                name,
            };
            let Some(found) = live.get(&object) else {
                continue;
            };
            let owner = kind.owner(key, &object.name, found);
            if owner.as_ref() != Some(key) {
                out.push((object, owner_message(owner.as_ref())));
            }
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

/// The step that brings one object to its desired form: `Create` when it is absent
/// (`changes` is `None`), `Update` when it differs, nothing when the changes are empty.
/// `op(live)` builds the write; its argument says whether the object exists.
pub(crate) fn upsert_step(
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

fn is_l7(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

fn protocol(body: &Value) -> String {
    body.get("Protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase()
}

/// Whether the service protocol goes from an HTTP family to a non-HTTP one (see the
/// module docs): the one cross-kind rule of the order.
fn downgrade(desired: &Desired, live: &Live) -> bool {
    let Some(d) = &desired.service_defaults else {
        return false;
    };
    let object = ObjectRef {
        kind: ObjectKind::ServiceDefaults,
        name: d.name.clone(),
    };
    matches!(live.get(&object), Some(LiveObject::Entry(l))
        if is_l7(&protocol(&l.body)) && !is_l7(&protocol(&d.body)))
}

/// The ordered writes that make `live` equal `desired` for `key` (see the module docs).
/// Call only when [`conflicts`] found none. `jwt_mount` is the auth mount of roles the
/// spec no longer wants.
///
/// Each kind decides its own objects (`crate::kinds`); this orders them: the writes
/// in apply order, then the deletions of owned objects the spec no longer has in
/// reverse order.
#[must_use]
pub fn plan(key: &SpecKey, desired: &Desired, live: &Live, jwt_mount: &str) -> Plan {
    let mut in_sync = Vec::new();
    let mut writes: Vec<(ObjectKind, Vec<Step>)> = Vec::new();
    let mut deletes: Vec<(ObjectKind, Vec<Step>)> = Vec::new();
    for kind in kinds::KINDS {
        let wanted = kind.desired(desired);
        let mut steps = Vec::new();
        for name in &wanted {
            let object = ObjectRef {
                kind: kind.kind(),
                name: name.clone(),
            };
            match kind.compare(desired, name, live.get(&object)) {
                Some(step) => steps.push(step),
                None => in_sync.push(object),
            }
        }
        writes.push((kind.kind(), steps));
        // Objects the spec no longer has, only those owned by this key.
        let gone: Vec<Step> = live
            .of_kind(kind.kind())
            .filter(|(name, l)| {
                !wanted.iter().any(|w| w == name) && kind.owner(key, name, l).as_ref() == Some(key)
            })
            .filter_map(|(name, l)| kind.delete(name, l, jwt_mount))
            .collect();
        deletes.push((kind.kind(), gone));
    }
    deletes.reverse();

    let mut route_deletes = Vec::new();
    let downgrade = downgrade(desired, live);
    if downgrade {
        for (kind, steps) in &mut deletes {
            if *kind == ObjectKind::HttpRoute {
                route_deletes.append(steps);
            }
        }
    }
    let mut steps = Vec::new();
    let mut defaults = Vec::new();
    for (kind, mut kind_steps) in writes {
        if downgrade && kind == ObjectKind::ServiceDefaults {
            // Intentions (no more L7 permissions) and route deletions before the
            // protocol goes to tcp.
            defaults = kind_steps;
            continue;
        }
        steps.append(&mut kind_steps);
        if kind == ObjectKind::ServiceIntentions {
            steps.append(&mut route_deletes);
            steps.append(&mut defaults);
        }
    }
    for (_, mut kind_steps) in deletes {
        steps.append(&mut kind_steps);
    }
    Plan { steps, in_sync }
}

#[cfg(test)]
mod tests;
