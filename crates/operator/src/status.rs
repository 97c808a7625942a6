//! The status document written at `<prefix>/status/<ns>/<name>`, and the pure functions
//! that compute it from a reconcile's outcome and decide whether it changed.
//!
//! JSON shape (camelCase):
//!
//! ```json
//! {"observedGeneration": 42, "phase": "Synced", "message": "all objects converged",
//!  "specHash": "…", "replicas": 3,
//!  "conditions": [{"type": "Accepted", "status": "True", "reason": "Valid",
//!                  "message": "…", "lastTransitionTime": "2026-…Z"}],
//!  "objects": [{"kind": "nomad-job", "name": "web", "state": "Synced"}],
//!  "diagnostics": [{"line": 3, "column": 5, "path": "spec.image", "message": "…", …}],
//!  "events": [{"time": "…", "type": "Warning", "reason": "Drift", "message": "…"}]}
//! ```
//!
//! A document is rewritten only when its content changed: a condition keeps its
//! `lastTransitionTime` while its status stays the same, object states of the same
//! generation stay as they were (`Created` stays `Created` until the spec changes), and the
//! event list only changes when a reconcile records an event.

use serde::{Deserialize, Serialize};
use steward_render::ObjectRef;

/// How many events a status document keeps.
pub const STATUS_EVENTS: usize = 10;

/// The phase of one spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Accepted, nothing decided yet (caches syncing, first pass pending).
    Pending,
    /// Writes done, the deployment is running.
    Progressing,
    /// Every object converged and the workload is available.
    Synced,
    /// The deployment failed (or Nomad reverted it).
    Degraded,
    /// The document is invalid or violates the guardrails: nothing is written.
    Invalid,
    /// An object the spec needs exists and is not owned by it: nothing is written.
    Conflict,
    /// Waiting for an explicit approval (the GC guard).
    Blocked,
    /// The spec's key is gone and garbage collection is deleting its objects.
    Deleting,
    /// A write failed; retried with backoff.
    Error,
}

impl Phase {
    /// Every phase, in declaration order.
    pub const ALL: [Phase; 9] = [
        Phase::Pending,
        Phase::Progressing,
        Phase::Synced,
        Phase::Degraded,
        Phase::Invalid,
        Phase::Conflict,
        Phase::Blocked,
        Phase::Deleting,
        Phase::Error,
    ];

    /// The phase name (`Synced`...).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Synced => "Synced",
            Phase::Degraded => "Degraded",
            Phase::Invalid => "Invalid",
            Phase::Conflict => "Conflict",
            Phase::Blocked => "Blocked",
            Phase::Deleting => "Deleting",
            Phase::Error => "Error",
        }
    }
}

/// The status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Not known (an earlier step did not get that far).
    Unknown,
}

/// One condition (`Accepted`, `ResourcesSynced`, `Available`, `Degraded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A CamelCase reason.
    pub reason: String,
    /// A message for people.
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<jiff::Timestamp>,
}

/// What happened to one object in the current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectState {
    /// Matches the spec; nothing was written for this generation.
    Synced,
    /// Created for this generation.
    Created,
    /// Updated for this generation (or repaired after drift).
    Updated,
    /// Deleted (no longer part of the spec).
    Deleted,
    /// Exists and is owned by someone else.
    Conflict,
    /// Not reached (an earlier step failed, or the spec is not applied).
    Pending,
    /// The write failed.
    Error,
}

/// One owned object in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStatus {
    /// Kind (`nomad-job`, `service-defaults`, `vault-policy`...).
    pub kind: String,
    /// Name (job ID, entry name, policy or role name).
    pub name: String,
    /// State.
    pub state: ObjectState,
    /// Details (conflicting owner, error text, changed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A spec diagnostic as stored in the status (phase `Invalid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticDoc {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// JSON path of the offending value (`spec.image`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// `error` or `warning`.
    pub severity: String,
    /// Stable id (`unknown-field`).
    pub code: String,
}

impl From<&steward_spec::Diagnostic> for DiagnosticDoc {
    fn from(d: &steward_spec::Diagnostic) -> Self {
        Self {
            line: d.line,
            column: d.column,
            path: d.path.clone(),
            message: d.message.clone(),
            severity: d.severity.as_str().to_owned(),
            code: d.code.clone(),
        }
    }
}

/// An event as stored in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDoc {
    /// When.
    pub time: jiff::Timestamp,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// CamelCase reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// The object involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

impl From<&steward_runtime::events::Event> for EventDoc {
    fn from(e: &steward_runtime::events::Event) -> Self {
        Self {
            time: e.time,
            type_: match e.type_ {
                steward_runtime::EventType::Normal => "Normal",
                steward_runtime::EventType::Warning => "Warning",
            }
            .to_owned(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            object: e.object.clone(),
        }
    }
}

/// The status document of one spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc {
    /// The spec generation (KV `ModifyIndex`) this status describes.
    pub observed_generation: u64,
    /// Phase.
    pub phase: Phase,
    /// One line for people.
    #[serde(default)]
    pub message: String,
    /// The spec hash (absent when invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Replicas wanted now (scaling windows applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// When the replica count can next change (scaling window boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scaling_change: Option<jiff::Timestamp>,
    /// The `JobModifyIndex` of the Nomad job as last checked (or written) to match this
    /// generation: while the job list shows the same index, the job has not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_modify_index: Option<u64>,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Owned objects.
    #[serde(default)]
    pub objects: Vec<ObjectStatus>,
    /// Diagnostics (phase `Invalid` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<DiagnosticDoc>,
    /// The last events (at most [`STATUS_EVENTS`]).
    #[serde(default)]
    pub events: Vec<EventDoc>,
}

impl StatusDoc {
    /// Held because a cache it needs cannot sync, or has not listed for
    /// [`WAIT_TIMEOUT`] ([`Verdict::Waiting`]).
    #[must_use]
    pub fn waiting_for_cache(&self) -> bool {
        self.condition(RESOURCES_SYNCED).is_some_and(|c| {
            c.reason == REASON_CACHE_UNAVAILABLE || c.reason == REASON_WAIT_TIMEOUT
        })
    }

    /// The condition saying the spec waited [`WAIT_TIMEOUT`] for something that does not
    /// come, if any.
    #[must_use]
    pub fn wait_timeout(&self) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|c| c.reason == REASON_WAIT_TIMEOUT && c.status != ConditionStatus::True)
    }

    /// The condition of `type_`, if present.
    #[must_use]
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The state of one object, if listed.
    #[must_use]
    pub fn object_state(&self, kind: &str, name: &str) -> Option<ObjectState> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .map(|o| o.state)
    }
}

/// Condition type: the document is valid and passes the guardrails.
pub const ACCEPTED: &str = "Accepted";
/// Condition type: every owned object matches the spec.
pub const RESOURCES_SYNCED: &str = "ResourcesSynced";
/// Condition type: the latest deployment is successful and healthy (batch: registered).
pub const AVAILABLE: &str = "Available";
/// Condition type: the deployment failed or was reverted.
pub const DEGRADED: &str = "Degraded";
/// Condition type: the spec's key is gone and its objects are (being) deleted, or held
/// by the mass-deletion guard (see [`Removal`]).
pub const REMOVED: &str = "Removed";

/// Condition type: the servers lack something the spec relies on, and Steward takes a
/// slower way or turns something off (found at start-up, see [`crate::detect`]).
pub const SERVER_SUPPORT: &str = "ServerSupport";

/// The [`SERVER_SUPPORT`] condition for these degradations (`None` when there are none).
#[must_use]
pub fn server_support(degradations: &[String]) -> Option<Condition> {
    (!degradations.is_empty()).then(|| {
        condition(
            SERVER_SUPPORT,
            ConditionStatus::False,
            "Degraded",
            &degradations.join("; "),
        )
    })
}

/// Condition type: what the edge control plane (xDS) made of the spec's edge routes and
/// whether every connected Envoy acked them.
pub const EDGE_ROUTES: &str = "EdgeRoutes";
/// Reason of [`EDGE_ROUTES`] when an older spec holds one of the routes.
pub const REASON_EDGE_CONFLICT: &str = "EdgeConflict";

/// The [`EDGE_ROUTES`] condition: `False` with `EdgeConflict` naming the winner, or
/// `EdgeRouteRejected` with the reason; `Unknown` (`Pushing`) while a connected Envoy
/// has not acked the current routes; else `True` (`Serving`).
#[must_use]
pub fn edge_routes(
    verdict: &steward_edge::SpecVerdict,
    acks: &steward_edge::AckState,
    degraded: Option<&str>,
) -> Condition {
    let mut notes: Vec<String> = Vec::new();
    notes.extend(verdict.endpoint_problems.iter().cloned());
    if let Some(d) = degraded {
        notes.push(d.to_owned());
    }
    let with_notes = |message: String| {
        if notes.is_empty() {
            message
        } else {
            format!("{message}; {}", notes.join("; "))
        }
    };
    if !verdict.conflicts.is_empty() {
        let lost: Vec<String> = verdict
            .conflicts
            .iter()
            .map(|c| {
                format!(
                    "edge.routes[{}] ({} {}) is held by {} (the older spec)",
                    c.route.index, c.route.host, c.route.path, c.winner
                )
            })
            .collect();
        return condition(
            EDGE_ROUTES,
            ConditionStatus::False,
            REASON_EDGE_CONFLICT,
            &with_notes(lost.join("; ")),
        );
    }
    if !verdict.rejected.is_empty() {
        let why: Vec<String> = verdict
            .rejected
            .iter()
            .map(|r| {
                format!(
                    "edge.routes[{}] ({} {}) not sent: {}",
                    r.route.index, r.route.host, r.route.path, r.reason
                )
            })
            .collect();
        return condition(
            EDGE_ROUTES,
            ConditionStatus::False,
            "EdgeRouteRejected",
            &with_notes(why.join("; ")),
        );
    }
    // The routes themselves, so `steward status ns/name` (which shows conditions) says
    // which host and path each Envoy serves for the spec.
    let served = match verdict.serving.len() {
        0 => "0 routes".to_owned(),
        n => {
            let routes: Vec<String> = verdict
                .serving
                .iter()
                .map(|r| format!("{} {}", r.host, r.path))
                .collect();
            format!("{n} route(s) ({})", routes.join(", "))
        }
    };
    if !acks.all_acked() {
        return condition(
            EDGE_ROUTES,
            ConditionStatus::Unknown,
            "Pushing",
            &with_notes(format!(
                "{served} sent; {} of {} connected Envoy(s) acked them (waiting for {})",
                acks.acked,
                acks.proxies,
                acks.pending.join(", ")
            )),
        );
    }
    let who = if acks.proxies == 0 {
        "no Envoy is connected".to_owned()
    } else {
        format!("acked by every connected Envoy ({})", acks.proxies)
    };
    condition(
        EDGE_ROUTES,
        ConditionStatus::True,
        "Serving",
        &with_notes(format!("{served} served; {who}")),
    )
}

/// A condition without a transition time (set by [`finalize`]).
#[must_use]
pub fn condition(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: None,
    }
}

/// Where the rollout of the job stands (decided from the job and its deployments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// A periodic/batch job: registered is all there is.
    Batch,
    /// The job is not there (yet).
    NoJob,
    /// Registered, no deployment for this version yet.
    Pending,
    /// The deployment of the current version is running.
    Running(String),
    /// The current version is deployed and healthy.
    Available(String),
    /// The deployment of the current version failed.
    Failed(String),
    /// The deployment of the spec's version failed and Nomad reverted to an earlier
    /// version; Steward holds off until the spec changes.
    Reverted(String),
    /// Registered, and no deployment of it seen for [`WAIT_TIMEOUT`] (the message names
    /// the job version waited for).
    NotSeen(String),
}

/// A cache a spec waits for (see [`Verdict::Waiting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingFor {
    /// The object kind the spec renders (`http-route`).
    pub kind: String,
    /// The cache that holds that kind.
    pub cache: String,
    /// The server's last answer while the cache's reads keep failing.
    pub error: Option<String>,
}

/// Reason of the `ResourcesSynced` condition (and of the Warning event) while a spec
/// waits for a cache that cannot sync.
pub const REASON_CACHE_UNAVAILABLE: &str = "CacheUnavailable";

/// Reason of the condition (`ResourcesSynced` for a cache that has not listed,
/// `Available` for a deployment not seen) and of the Warning event once a spec has
/// waited [`WAIT_TIMEOUT`] for something that does not come.
pub const REASON_WAIT_TIMEOUT: &str = "WaitTimeout";

/// How long a spec waits quietly (a cache's first listing, the deployment of its job)
/// before its status says what it waits for: far longer than either takes when the
/// servers answer as expected, short enough for a person watching a rollout.
pub const WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What garbage collection does with a removed spec's objects (its key is gone, its
/// status stays until they are): see [`removed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Deleting them; `failure`: the deletion that failed (retried by the next pass).
    Deleting {
        /// How many objects are left to delete.
        objects: usize,
        /// The failed deletion, as one line.
        failure: Option<String>,
    },
    /// The mass-deletion guard holds them (the message names the approval command).
    Blocked {
        /// The guard's message.
        message: String,
    },
}

/// Everything a reconcile decided, as input to [`compute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The spec is invalid: nothing written.
    Invalid {
        /// One line.
        message: String,
        /// Every diagnostic.
        diagnostics: Vec<DiagnosticDoc>,
    },
    /// Some objects are owned by someone else: nothing written.
    Conflict {
        /// Each conflicting object with a message naming its owner.
        conflicts: Vec<(ObjectRef, String)>,
        /// Every object of the spec.
        objects: Vec<ObjectRef>,
    },
    /// A cache of a kind the spec renders cannot sync: nothing decided, nothing
    /// written (other specs go on).
    Waiting {
        /// The caches, with the server's answers.
        caches: Vec<WaitingFor>,
        /// Every object of the spec.
        objects: Vec<ObjectRef>,
        /// The spec has waited [`WAIT_TIMEOUT`] for caches that have not listed (and
        /// report no failure either).
        timed_out: bool,
    },
    /// The write plan ran (fully, or up to a failed step).
    Applied {
        /// Every object with what happened to it in this pass.
        objects: Vec<(ObjectRef, ObjectState, Option<String>)>,
        /// The failed step's error, if one failed.
        failure: Option<String>,
        /// The rollout.
        rollout: Rollout,
    },
}

/// Inputs of [`compute`] besides the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInput {
    /// The spec generation.
    pub generation: u64,
    /// The spec hash, when it rendered.
    pub spec_hash: Option<String>,
    /// Replicas wanted now.
    pub replicas: Option<u32>,
    /// Next scaling boundary.
    pub next_scaling_change: Option<jiff::Timestamp>,
    /// `JobModifyIndex` of the job known to match (see [`StatusDoc::job_modify_index`]).
    pub job_modify_index: Option<u64>,
    /// The verdict.
    pub verdict: Verdict,
}

mod compute;

pub use compute::{compute, finalize, needs_write, removed};

#[cfg(test)]
mod tests;
