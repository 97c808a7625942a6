//! The object model the kinds and the plan share: a live object as a kind reads it, one
//! write, one step of a plan, and who owns a body. Pure, and below everything that
//! decides (`kinds`, `plan`, `reconcile`, `gc`), so that none of them imports another
//! for its types.
//!
//! A difference in `Meta["steward.hash"]` alone is not a reason to write: that key
//! records the spec hash of the last write to the object, and a spec change that leaves
//! an object's content unchanged (a new image changes the job only) must not rewrite the
//! other objects ([`material`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use steward_hashi::nomad::Job;
use steward_render::names::{self, META_HASH, SpecKey};
use steward_render::{FieldChange, ObjectKind, ObjectRef};

/// A live config entry: its body as the server returns it and its `ModifyIndex`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    /// The entry.
    pub body: Arc<Value>,
    /// `ModifyIndex`, the CAS value of the next write.
    pub modify_index: u64,
    /// The cache's digest of the live entry equals the desired body's, and `body` is
    /// that desired body: comparing them again field by field would find no change.
    pub same_as_desired: bool,
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

/// The owner of a config entry or job body as a string (for the API and GC).
#[must_use]
pub fn owner_string(body: &Value) -> Option<String> {
    owner_of_body(body).map(|k| k.to_string())
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

/// At most five changes, then "and N more".
pub(crate) fn summarise(changes: &[FieldChange]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect();
    if changes.len() > SHOWN {
        parts.push(format!("and {} more", changes.len() - SHOWN));
    }
    parts.join("; ")
}

#[cfg(test)]
pub(crate) mod test_support;
