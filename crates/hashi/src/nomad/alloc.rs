//! Nomad deployments, allocations and evaluations of a job (reference §6.5).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Product, Result};
use crate::request::{QueryOptions, RequestSpec};
use crate::response::{RawResponse, Response};
use crate::util::{encode_segment, null_default};

/// Deployment progress of one group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentState {
    /// Desired allocations.
    #[serde(default)]
    pub desired_total: u64,
    /// Desired canaries.
    #[serde(default)]
    pub desired_canaries: u64,
    /// Placed allocations.
    #[serde(default)]
    pub placed_allocs: u64,
    /// Healthy allocations.
    #[serde(default)]
    pub healthy_allocs: u64,
    /// Unhealthy allocations.
    #[serde(default)]
    pub unhealthy_allocs: u64,
    /// Canaries promoted.
    #[serde(default)]
    pub promoted: bool,
    /// Auto revert.
    #[serde(default)]
    pub auto_revert: bool,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The per-group states of a deployment (the JSON object `TaskGroups`), sorted by group
/// name. A list rather than a `BTreeMap`: a deployment has one group or a few, and a
/// `BTreeMap` allocates a node sized for eleven entries (~1.6 KiB here) even for one;
/// the operator caches every owned job's recent deployments, and at 10,000 specs those
/// nodes alone were ~15 MiB (heaptrack, BENCHMARKS.md).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskGroups(Vec<(String, DeploymentState)>);

impl TaskGroups {
    /// The state of group `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&DeploymentState> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Every group's name and state, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DeploymentState)> {
        self.0.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// Every group's state, by group name.
    pub fn values(&self) -> impl Iterator<Item = &DeploymentState> {
        self.0.iter().map(|(_, s)| s)
    }

    /// Every group's state, mutable, by group name.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut DeploymentState> {
        self.0.iter_mut().map(|(_, s)| s)
    }

    /// How many groups.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No group.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, DeploymentState)> for TaskGroups {
    /// Sorted by name; of two entries with one name the later wins (as in a JSON object
    /// read into a map).
    fn from_iter<I: IntoIterator<Item = (String, DeploymentState)>>(iter: I) -> Self {
        let mut groups: Vec<(String, DeploymentState)> = Vec::new();
        for (name, state) in iter {
            match groups.binary_search_by(|(n, _)| n.cmp(&name)) {
                Ok(i) => groups[i].1 = state,
                Err(i) => groups.insert(i, (name, state)),
            }
        }
        groups.shrink_to_fit();
        Self(groups)
    }
}

impl<const N: usize> From<[(String, DeploymentState); N]> for TaskGroups {
    fn from(groups: [(String, DeploymentState); N]) -> Self {
        groups.into_iter().collect()
    }
}

impl std::ops::Index<&str> for TaskGroups {
    type Output = DeploymentState;

    /// # Panics
    /// When there is no group `name` (as a map's index does).
    fn index(&self, name: &str) -> &DeploymentState {
        self.get(name)
            .unwrap_or_else(|| panic!("no task group {name:?} in the deployment"))
    }
}

impl<'de> Deserialize<'de> for TaskGroups {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Groups;
        impl<'de> serde::de::Visitor<'de> for Groups {
            type Value = TaskGroups;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of task group states by name")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<TaskGroups, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(1).min(64));
                while let Some(entry) = map.next_entry::<String, DeploymentState>()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }
        d.deserialize_map(Groups)
    }
}

/// A deployment.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deployment {
    /// ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// Job version deployed.
    #[serde(default)]
    pub job_version: u64,
    /// Job modify index.
    #[serde(default)]
    pub job_modify_index: u64,
    /// Job spec modify index: correlates with a registration.
    #[serde(default)]
    pub job_spec_modify_index: u64,
    /// Job create index.
    #[serde(default)]
    pub job_create_index: u64,
    /// `running`, `successful`, `failed`, `cancelled`, `paused`...
    #[serde(default)]
    pub status: String,
    /// Description.
    #[serde(default)]
    pub status_description: String,
    /// Per-group state.
    #[serde(default, deserialize_with = "null_default")]
    pub task_groups: TaskGroups,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Modify index.
    #[serde(default)]
    pub modify_index: u64,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An allocation list entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocationStub {
    /// ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Evaluation ID.
    #[serde(rename = "EvalID", default)]
    pub eval_id: String,
    /// Name (`job.group[i]`).
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Node ID.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// Node name.
    #[serde(default)]
    pub node_name: String,
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// Job version.
    #[serde(default)]
    pub job_version: u64,
    /// Task group.
    #[serde(default)]
    pub task_group: String,
    /// `run`, `stop`, `evict`.
    #[serde(default)]
    pub desired_status: String,
    /// `pending`, `running`, `complete`, `failed`, `lost`, `unknown`.
    #[serde(default)]
    pub client_status: String,
    /// Client description.
    #[serde(default)]
    pub client_description: String,
    /// Deployment health (`Healthy` may be null).
    #[serde(default)]
    pub deployment_status: Option<Value>,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Modify index.
    #[serde(default)]
    pub modify_index: u64,
    /// Other fields (TaskStates...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An evaluation.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Evaluation {
    /// ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Status (`pending`, `complete`, `blocked`, `failed`, `canceled`).
    #[serde(default)]
    pub status: String,
    /// Description.
    #[serde(default)]
    pub status_description: String,
    /// What triggered it.
    #[serde(default)]
    pub triggered_by: String,
    /// Job ID.
    #[serde(rename = "JobID", default)]
    pub job_id: String,
    /// Job modify index.
    #[serde(default)]
    pub job_modify_index: u64,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Modify index.
    #[serde(default)]
    pub modify_index: u64,
    /// Other fields (FailedTGAllocs...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn job_sub(id: &str, sub: &str) -> Result<RequestSpec> {
    if id.is_empty() {
        return Err(Error::invalid_argument("nomad job id is empty"));
    }
    Ok(RequestSpec::get(format!(
        "/v1/job/{}/{sub}",
        encode_segment(id)
    )))
}

/// `GET /v1/job/<id>/deployment` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn latest_deployment(id: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    opts.apply(Product::Nomad, job_sub(id, "deployment")?)
}

/// Decodes the latest deployment: `200 null` is `None`.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_latest_deployment(raw: &RawResponse) -> Result<Response<Option<Deployment>>> {
    raw.json_with_meta()
}

/// `GET /v1/job/<id>/allocations[?all=true]` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn allocations(id: &str, all: bool, opts: &QueryOptions) -> Result<RequestSpec> {
    let mut spec = job_sub(id, "allocations")?;
    if all {
        spec = spec.query("all", "true");
    }
    opts.apply(Product::Nomad, spec)
}

/// Decodes an allocation list.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_allocations(raw: &RawResponse) -> Result<Response<Vec<AllocationStub>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<AllocationStub>>>()?
        .map(Option::unwrap_or_default))
}

/// `GET /v1/job/<id>/evaluations` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn evaluations(id: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    opts.apply(Product::Nomad, job_sub(id, "evaluations")?)
}

/// Decodes an evaluation list.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_evaluations(raw: &RawResponse) -> Result<Response<Vec<Evaluation>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<Evaluation>>>()?
        .map(Option::unwrap_or_default))
}
