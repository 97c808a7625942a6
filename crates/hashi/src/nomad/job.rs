//! Nomad jobs: register, read, list, plan, deregister, versions (reference §6.2–6.5).
//!
//! Job bodies stay `serde_json::Value` (the renderer produces the exact JSON); small
//! typed views expose the fields the operator reads.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::diff::{JobDiff, PlanResponse};
use crate::error::{Error, Product, Result};
use crate::request::{Idempotency, QueryOptions, RequestSpec, WriteOptions};
use crate::response::{RawResponse, Response};
use crate::util::{encode_segment, null_default};

/// The fields of a full job the operator needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobView {
    /// Job ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// `service`, `batch`, `system`, `sysbatch`.
    #[serde(rename = "Type", default)]
    pub job_type: String,
    /// Job meta (ownership labels).
    #[serde(default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Version (bumps on spec changes).
    #[serde(default)]
    pub version: u64,
    /// Stopped.
    #[serde(default)]
    pub stop: bool,
    /// `pending`, `running`, `dead`.
    #[serde(default)]
    pub status: String,
    /// This version had a successful deployment.
    #[serde(default)]
    pub stable: bool,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Moves on any job write (also status changes).
    #[serde(default)]
    pub modify_index: u64,
    /// Moves only on spec changes: the value for `EnforceIndex`.
    #[serde(default)]
    pub job_modify_index: u64,
    /// Submit time (unix ns).
    #[serde(default)]
    pub submit_time: i64,
}

/// A full job: the JSON as returned plus the typed view.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Typed view of common fields.
    pub view: JobView,
    /// The job exactly as the server returned it.
    pub raw: Value,
}

impl Job {
    /// Builds the view from raw JSON.
    ///
    /// # Errors
    /// When the view fields have the wrong types.
    pub fn from_value(raw: Value) -> Result<Self, serde_json::Error> {
        Ok(Self {
            view: JobView::deserialize(&raw)?,
            raw,
        })
    }
}

/// An entry of `GET /v1/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListStub {
    /// Job ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Parent (periodic/dispatch children).
    #[serde(rename = "ParentID", default)]
    pub parent_id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Type.
    #[serde(rename = "Type", default)]
    pub job_type: String,
    /// Priority.
    #[serde(default)]
    pub priority: i64,
    /// Stopped.
    #[serde(default)]
    pub stop: bool,
    /// Status.
    #[serde(default)]
    pub status: String,
    /// Meta, present only with `meta=true`.
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Modify index.
    #[serde(default)]
    pub modify_index: u64,
    /// Job modify index.
    #[serde(default)]
    pub job_modify_index: u64,
    /// Submit time.
    #[serde(default)]
    pub submit_time: i64,
    /// Other fields (JobSummary, Datacenters...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Options of a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    /// `EnforceIndex`: `Some(0)` = create only, `Some(n)` = only if the stored
    /// `JobModifyIndex` is `n`. Violations are [`Error::CasConflict`].
    pub enforce_index: Option<u64>,
    /// Keep the existing group counts.
    pub preserve_counts: bool,
    /// Override soft Sentinel policies.
    pub policy_override: bool,
    /// Namespace; defaults to the job's `Namespace` (the query parameter wins over the
    /// body on the server, so it is always sent when known).
    pub namespace: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// Answer of register and deregister.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobWriteResponse {
    /// Evaluation created (empty when none).
    #[serde(rename = "EvalID", default)]
    pub eval_id: String,
    /// Index of the evaluation.
    #[serde(default)]
    pub eval_create_index: u64,
    /// Job modify index after the write. On an identical re-register this is the job's
    /// `ModifyIndex`; read the job before the next `EnforceIndex`.
    #[serde(default)]
    pub job_modify_index: u64,
    /// Warnings.
    #[serde(default)]
    pub warnings: String,
    /// Raft index of the write.
    #[serde(default)]
    pub index: u64,
}

fn job_id_and_ns(job: &Value) -> Result<(String, Option<String>)> {
    let id = job
        .get("ID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid_argument("nomad job needs a non-empty ID"))?;
    let ns = job
        .get("Namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok((id.to_owned(), ns))
}

fn scope(spec: RequestSpec, namespace: Option<&str>, region: Option<&str>) -> RequestSpec {
    let mut spec = spec;
    if let Some(r) = region {
        spec = spec.query("region", r);
    }
    if let Some(ns) = namespace {
        spec = spec.query("namespace", ns);
    }
    spec
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid_argument("nomad job id is empty"));
    }
    Ok(())
}

/// `PUT /v1/jobs` with `{"Job": job, "EnforceIndex", "JobModifyIndex", ...}`.
/// Guarded registrations are retried on retryable failures, blind ones are not.
///
/// # Errors
/// `InvalidArgument` when the job has no `ID`.
pub fn register(job: &Value, opts: &RegisterOptions) -> Result<RequestSpec> {
    let (_, job_ns) = job_id_and_ns(job)?;
    let mut body = Map::new();
    body.insert("Job".into(), job.clone());
    if let Some(idx) = opts.enforce_index {
        body.insert("EnforceIndex".into(), json!(true));
        body.insert("JobModifyIndex".into(), json!(idx));
    }
    if opts.preserve_counts {
        body.insert("PreserveCounts".into(), json!(true));
    }
    if opts.policy_override {
        body.insert("PolicyOverride".into(), json!(true));
    }
    let idempotency = if opts.enforce_index.is_some() {
        Idempotency::CasGuarded
    } else {
        Idempotency::Unguarded
    };
    let ns = opts.namespace.clone().or(job_ns);
    Ok(scope(
        RequestSpec::put("/v1/jobs")
            .json(Value::Object(body))
            .idempotency(idempotency),
        ns.as_deref(),
        opts.region.as_deref(),
    ))
}

/// Decodes a register/deregister answer (index from `X-Nomad-Index` when present).
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_write(raw: &RawResponse) -> Result<JobWriteResponse> {
    let meta = raw.meta()?;
    let mut r: JobWriteResponse = raw.json()?;
    if meta.index != 0 {
        r.index = meta.index;
    }
    Ok(r)
}

/// `PUT /v1/job/<id>/plan` with `{"Job": job, "Diff": diff}`: a dry run.
///
/// # Errors
/// `InvalidArgument` when the job has no `ID`.
pub fn plan(job: &Value, diff: bool, namespace: Option<&str>) -> Result<RequestSpec> {
    let (id, job_ns) = job_id_and_ns(job)?;
    let ns = namespace.map(str::to_owned).or(job_ns);
    Ok(scope(
        RequestSpec::put(format!("/v1/job/{}/plan", encode_segment(&id)))
            .json(json!({ "Job": job, "Diff": diff }))
            // Nothing is stored: a plan is as safe to repeat as a read.
            .idempotency(Idempotency::Read),
        ns.as_deref(),
        None,
    ))
}

/// Decodes a plan answer.
///
/// # Errors
/// `Decode` for a bad body.
pub fn parse_plan(raw: &RawResponse) -> Result<PlanResponse> {
    raw.json()
}

/// `GET /v1/job/<id>` (blocking-capable); 404 is `None`.
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn get(id: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_id(id)?;
    opts.apply(
        Product::Nomad,
        RequestSpec::get(format!("/v1/job/{}", encode_segment(id))).accept(&[404]),
    )
}

/// Decodes a job read.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_get(raw: &RawResponse) -> Result<Response<Option<Job>>> {
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response { value: None, meta });
    }
    let v: Value = raw.json()?;
    if v.is_null() {
        return Ok(Response { value: None, meta });
    }
    let job = Job::from_value(v).map_err(|e| raw.decode_error(e.to_string()))?;
    Ok(Response {
        value: Some(job),
        meta,
    })
}

/// `GET /v1/jobs[?prefix=][&meta=true]` (blocking-capable); namespace `*` lists all.
///
/// # Errors
/// `InvalidArgument` for bad options.
pub fn list(prefix: Option<&str>, with_meta: bool, opts: &QueryOptions) -> Result<RequestSpec> {
    let mut spec = RequestSpec::get("/v1/jobs");
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        spec = spec.query("prefix", p);
    }
    if with_meta {
        spec = spec.query("meta", "true");
    }
    opts.apply(Product::Nomad, spec)
}

/// Decodes a job list.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_list(raw: &RawResponse) -> Result<Response<Vec<JobListStub>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<JobListStub>>>()?
        .map(Option::unwrap_or_default))
}

/// `DELETE /v1/job/<id>[?purge=true]`: stop (a new version with `Stop: true`) or purge.
///
/// # Errors
/// `InvalidArgument` for an empty id.
pub fn deregister(id: &str, purge: bool, opts: &WriteOptions) -> Result<RequestSpec> {
    check_id(id)?;
    let mut spec = RequestSpec::delete(format!("/v1/job/{}", encode_segment(id)));
    if purge {
        spec = spec.query("purge", "true");
    }
    Ok(opts.apply_scope(Product::Nomad, spec))
}

/// `GET /v1/job/<id>/versions[?diffs=true]`; 404 is `None`.
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn versions(id: &str, diffs: bool, opts: &QueryOptions) -> Result<RequestSpec> {
    check_id(id)?;
    let mut spec =
        RequestSpec::get(format!("/v1/job/{}/versions", encode_segment(id))).accept(&[404]);
    if diffs {
        spec = spec.query("diffs", "true");
    }
    opts.apply(Product::Nomad, spec)
}

/// The versions of a job, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobVersions {
    /// Versions.
    pub versions: Vec<Job>,
    /// Diffs between consecutive versions (with `diffs=true`).
    pub diffs: Vec<JobDiff>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionsBody {
    #[serde(default, deserialize_with = "null_default")]
    versions: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    diffs: Vec<JobDiff>,
}

/// Decodes a versions answer.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_versions(raw: &RawResponse) -> Result<Response<Option<JobVersions>>> {
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response { value: None, meta });
    }
    let body: VersionsBody = raw.json()?;
    let versions = body
        .versions
        .into_iter()
        .map(Job::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| raw.decode_error(e.to_string()))?;
    Ok(Response {
        value: Some(JobVersions {
            versions,
            diffs: body.diffs,
        }),
        meta,
    })
}
