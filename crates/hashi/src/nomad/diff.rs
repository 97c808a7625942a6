//! Nomad plan answers and their structured diff (reference §6.3).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::util::null_default;

/// `Type` of a diff node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DiffType {
    /// Added.
    Added,
    /// Deleted.
    Deleted,
    /// Edited.
    Edited,
    /// Unchanged.
    #[default]
    None,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// A changed scalar field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FieldDiff {
    /// Change type.
    #[serde(rename = "Type", default)]
    pub diff_type: DiffType,
    /// Field name (`Count`, `image`, `ports[0]`).
    #[serde(default)]
    pub name: String,
    /// Old value as text.
    #[serde(default)]
    pub old: String,
    /// New value as text.
    #[serde(default)]
    pub new: String,
    /// Annotations (`forces create`, `forces destroy`, `forces in-place update`...).
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: Vec<String>,
}

/// A changed nested object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectDiff {
    /// Change type.
    #[serde(rename = "Type", default)]
    pub diff_type: DiffType,
    /// Object name (`Config`, `Update`...).
    #[serde(default)]
    pub name: String,
    /// Field changes.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<FieldDiff>,
    /// Nested object changes.
    #[serde(default, deserialize_with = "null_default")]
    pub objects: Vec<ObjectDiff>,
}

/// A task's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDiff {
    /// Change type.
    #[serde(rename = "Type", default)]
    pub diff_type: DiffType,
    /// Task name.
    #[serde(default)]
    pub name: String,
    /// Field changes.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<FieldDiff>,
    /// Object changes.
    #[serde(default, deserialize_with = "null_default")]
    pub objects: Vec<ObjectDiff>,
    /// Annotations (`forces create/destroy update`...).
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: Vec<String>,
}

/// A task group's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupDiff {
    /// Change type.
    #[serde(rename = "Type", default)]
    pub diff_type: DiffType,
    /// Group name.
    #[serde(default)]
    pub name: String,
    /// Field changes.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<FieldDiff>,
    /// Object changes.
    #[serde(default, deserialize_with = "null_default")]
    pub objects: Vec<ObjectDiff>,
    /// Task changes.
    #[serde(default, deserialize_with = "null_default")]
    pub tasks: Vec<TaskDiff>,
    /// Scheduler updates by kind (`create`, `destroy`, `in-place update`...).
    #[serde(default, deserialize_with = "null_default")]
    pub updates: BTreeMap<String, u64>,
}

/// The job diff of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobDiff {
    /// Change type: `None` means the submitted job equals the stored one.
    #[serde(rename = "Type", default)]
    pub diff_type: DiffType,
    /// Job ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Job-level field changes.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<FieldDiff>,
    /// Job-level object changes.
    #[serde(default, deserialize_with = "null_default")]
    pub objects: Vec<ObjectDiff>,
    /// Group changes.
    #[serde(default, deserialize_with = "null_default")]
    pub task_groups: Vec<TaskGroupDiff>,
}

impl JobDiff {
    /// True when nothing in the job would change.
    pub fn is_unchanged(&self) -> bool {
        self.diff_type == DiffType::None
    }
}

/// What the scheduler would do to one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DesiredUpdates {
    /// Allocations left alone.
    #[serde(default)]
    pub ignore: u64,
    /// Allocations placed.
    #[serde(default)]
    pub place: u64,
    /// Allocations migrated.
    #[serde(default)]
    pub migrate: u64,
    /// Allocations stopped.
    #[serde(default)]
    pub stop: u64,
    /// In-place updates.
    #[serde(default)]
    pub in_place_update: u64,
    /// Destructive updates.
    #[serde(default)]
    pub destructive_update: u64,
    /// Canaries.
    #[serde(default)]
    pub canary: u64,
    /// Preemptions.
    #[serde(default)]
    pub preemptions: u64,
    /// Other counters of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Plan annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlanAnnotations {
    /// Per-group scheduler decisions.
    #[serde(
        rename = "DesiredTGUpdates",
        default,
        deserialize_with = "null_default"
    )]
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
    /// Allocations that would be preempted.
    #[serde(default, deserialize_with = "null_default")]
    pub preempted_allocs: Vec<Value>,
}

/// Answer of `PUT /v1/job/<id>/plan`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlanResponse {
    /// The stored job's `JobModifyIndex` (0 if new): pass it as `EnforceIndex`.
    #[serde(default)]
    pub job_modify_index: u64,
    /// The diff (present when requested).
    #[serde(default)]
    pub diff: Option<JobDiff>,
    /// Scheduler annotations.
    #[serde(default)]
    pub annotations: Option<PlanAnnotations>,
    /// Placement failures by group.
    #[serde(rename = "FailedTGAllocs", default, deserialize_with = "null_default")]
    pub failed_tg_allocs: BTreeMap<String, Value>,
    /// Evaluations the plan would create.
    #[serde(default, deserialize_with = "null_default")]
    pub created_evals: Vec<Value>,
    /// Warnings text.
    #[serde(default)]
    pub warnings: String,
    /// Next launch of a periodic job.
    #[serde(default)]
    pub next_periodic_launch: Option<Value>,
    /// Raft index the plan was made at.
    #[serde(default)]
    pub index: u64,
}
