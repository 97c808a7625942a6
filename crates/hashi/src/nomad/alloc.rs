//! Nomad deployments, allocations and evaluations of a job (reference §6.5).

use std::collections::BTreeMap;

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
    pub task_groups: BTreeMap<String, DeploymentState>,
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
