//! Job endpoints (reference §6.2–§6.5).

use super::NomadState;
use super::canon::{CanonOptions, canonicalize, spec_changed};
use super::diff::{annotate, job_diff};
use super::http::{
    Query, block, error, json_body, plain_ok, read_err, read_ok, require_ns, write_ok,
};
use super::json::{arr, b, s, u};
use super::store::{JobKey, failed_tg_allocs};
use super::validate::{multierror, validate, warnings_text};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, put};
use http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<NomadState>>;

pub(crate) fn routes() -> Router<Arc<NomadState>> {
    Router::new()
        .route("/v1/jobs", get(list).put(register).post(register))
        .route(
            "/v1/job/{id}",
            get(get_job)
                .put(register_id)
                .post(register_id)
                .delete(deregister),
        )
        .route("/v1/job/{id}/versions", get(versions))
        .route("/v1/job/{id}/plan", put(plan).post(plan))
        .route("/v1/job/{id}/summary", get(summary))
        .route("/v1/job/{id}/evaluations", get(evaluations))
        .route("/v1/job/{id}/allocations", get(allocations))
        .route("/v1/job/{id}/deployment", get(latest_deployment))
        .route("/v1/job/{id}/deployments", get(deployments))
        .route("/v1/validate/job", put(validate_job).post(validate_job))
        .route("/v1/jobs/parse", put(parse).post(parse))
}

/// Namespace precedence: query > request body > job > default.
fn resolve_namespace(q: &Query, args: &Value, job: &Value) -> String {
    if let Some(ns) = q.get("namespace").filter(|n| !n.is_empty()) {
        return ns.to_string();
    }
    if let Some(ns) = args
        .get("Namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return ns.to_string();
    }
    if let Some(ns) = job
        .get("Namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return ns.to_string();
    }
    "default".to_string()
}

fn canon_opts(state: &NomadState, namespace: String) -> CanonOptions {
    CanonOptions {
        namespace,
        region: state.cfg.region.clone(),
        vault_identity: state.cfg.vault_default_identity,
        consul_service_identity: state.cfg.consul_service_identity,
        consul_task_identity: state.cfg.consul_task_identity,
        api_form: false,
    }
}

async fn register(
    State(st): St,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    do_register(&st, None, &Query::parse(raw.as_deref()), &headers, &body)
}

async fn register_id(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    do_register(
        &st,
        Some(&id),
        &Query::parse(raw.as_deref()),
        &headers,
        &body,
    )
}

fn do_register(
    st: &NomadState,
    path_id: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let args = match json_body(body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(api_job) = args.get("Job").filter(|j| j.is_object()) else {
        return error(400, "Job must be specified");
    };
    if let Some(id) = path_id {
        match api_job.get("ID").and_then(Value::as_str) {
            None => return error(400, "Job ID hasn't been provided"),
            Some(jid) if jid != id => return error(400, "Job ID does not match name"),
            _ => {}
        }
    }
    let ns = resolve_namespace(q, &args, api_job);
    if let Err(r) = require_ns(st, headers, q, &ns, "submit-job") {
        return r;
    }
    let job = match canonicalize(api_job, &canon_opts(st, ns)) {
        Ok(j) => j,
        Err(e) => return error(400, &e),
    };
    let (errs, warnings) = validate(&job, st.cfg.memory_oversubscription);
    if !errs.is_empty() {
        return error(500, &multierror(&errs));
    }
    let enforce = if b(&args, "EnforceIndex") {
        Some(u(&args, "JobModifyIndex"))
    } else {
        None
    };
    let preserve = b(&args, "PreserveCounts");
    let out =
        st.write(|inner, cx| inner.register(cx, job, enforce, preserve, "job-register", false));
    match out {
        Err(e) => error(500, &e),
        Ok(o) => write_ok(
            q,
            o.index,
            &json!({
                "EvalCreateIndex": o.eval_create_index,
                "EvalID": o.eval_id,
                "Index": o.index,
                "JobModifyIndex": o.job_modify_index,
                "KnownLeader": false,
                "LastContact": 0,
                "NextToken": "",
                "Warnings": warnings_text(&warnings),
            }),
        ),
    }
}

async fn get_job(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index_of = || {
        st.read(|i| match i.job(&key) {
            Some(j) => u(j, "ModifyIndex"),
            None => i.tables.jobs,
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !q.has("pretty") {
        // The job's cached serialisation (the same bytes `read_ok` would write).
        return match st.read(|i| i.jobs.get(&key).map(|e| e.job_json())) {
            Some(body) => super::http::read_ok_raw(&st, index, body),
            None => read_err(&st, index, 404, "job not found"),
        };
    }
    match st.read(|i| i.job_arc(&key)) {
        Some(job) => read_ok(&st, &q, index, &job),
        None => read_err(&st, index, 404, "job not found"),
    }
}

/// `JobListStub`.
fn stub(inner: &super::store::Inner, key: &JobKey, job: &Value, with_meta: bool) -> Value {
    stub_value(job, inner.summary(key).unwrap_or(Value::Null), with_meta)
}

/// `JobListStub` of `job` with the given `JobSummary`.
pub(crate) fn stub_value(job: &Value, summary: Value, with_meta: bool) -> Value {
    let mut v = json!({
        "CreateIndex": job["CreateIndex"],
        "Datacenters": job["Datacenters"],
        "ID": job["ID"],
        "JobModifyIndex": job["JobModifyIndex"],
        "JobSummary": summary,
        "ModifyIndex": job["ModifyIndex"],
        "Multiregion": job["Multiregion"],
        "Name": job["Name"],
        "Namespace": job["Namespace"],
        "NodePool": job["NodePool"],
        "ParameterizedJob": job["ParameterizedJob"].is_object(),
        "ParentID": job["ParentID"],
        "Periodic": job["Periodic"].is_object(),
        "Priority": job["Priority"],
        "Status": job["Status"],
        "StatusDescription": job["StatusDescription"],
        "Stop": job["Stop"],
        "SubmitTime": job["SubmitTime"],
        "Type": job["Type"],
        "Version": job["Version"],
    });
    if with_meta {
        v["Meta"] = job["Meta"].clone();
    }
    v
}

async fn list(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    let authz = match super::http::authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if ns != "*" && !authz.allow_ns(&ns, "list-jobs") {
        return super::http::denied();
    }
    let filter = match q.get("filter").filter(|f| !f.is_empty()) {
        Some(f) => match super::misc::Filter::parse(f) {
            Ok(f) => Some(f),
            Err(e) => return error(400, &format!("failed to read filter expression: {e}")),
        },
        None => None,
    };
    let index = match block(&st, &q, || {
        st.read(|i| i.tables.jobs.max(i.tables.job_summary))
    })
    .await
    {
        Ok(i) => i,
        Err(r) => return r,
    };
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let with_meta = q.flag("meta") && st.cfg.job_list_meta;
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let next_token = q.get("next_token").unwrap_or("").to_string();
    let reverse = q.flag("reverse");
    // Without a filter or pretty-printing, stubs are written from each job's cached
    // serialised parts (the summary is computed afresh): the same bytes, without
    // building a JSON tree per job on every listing.
    let raw = filter.is_none() && !q.has("pretty");
    let mut raw_body: Vec<u8> = Vec::new();
    let (items, next) = st.read(|inner| {
        let mut jobs: Vec<(&JobKey, &super::store::JobEntry)> = if ns == "*" {
            inner.jobs.iter().collect()
        } else {
            inner
                .jobs
                .range((ns.clone(), prefix.clone())..)
                .take_while(|(k, _)| k.0 == ns)
                .collect()
        };
        if reverse {
            jobs.reverse();
        }
        let mut out = Vec::new();
        let mut next = String::new();
        let mut count = 0usize;
        for (k, entry) in jobs {
            if !k.1.starts_with(&prefix) {
                continue;
            }
            if ns == "*" && !authz.allow_ns(&k.0, "list-jobs") {
                continue;
            }
            if !next_token.is_empty()
                && ((!reverse && k.1 < next_token) || (reverse && k.1 > next_token))
            {
                continue;
            }
            if raw {
                if per_page > 0 && count == per_page {
                    next = k.1.clone();
                    break;
                }
                raw_body.push(if count == 0 { b'[' } else { b',' });
                let summary = inner.entry_summary_json(k, entry);
                entry.stub_parts().write(summary, with_meta, &mut raw_body);
                count += 1;
                continue;
            }
            let item = stub(inner, k, entry.job(), with_meta);
            if let Some(f) = &filter
                && !f.matches(&item)
            {
                continue;
            }
            if per_page > 0 && out.len() == per_page {
                next = k.1.clone();
                break;
            }
            out.push(item);
        }
        if raw {
            if count == 0 {
                raw_body.push(b'[');
            }
            raw_body.push(b']');
        }
        (out, next)
    });
    let mut resp = if raw {
        super::http::read_ok_raw(&st, index, raw_body)
    } else {
        read_ok(&st, &q, index, &Value::Array(items))
    };
    if !next.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(&next)
    {
        resp.headers_mut().insert("X-Nomad-NextToken", v);
    }
    resp
}

async fn versions(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index_of = || {
        st.read(|i| match i.jobs.get(&key) {
            Some(e) => e.versions().map(|(_, mi)| mi).max().unwrap_or(0),
            None => i.tables.job_version,
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let versions = st.read(|i| {
        i.jobs.get(&key).map(|e| {
            e.versions()
                .map(|(v, mi)| super::store::version_json(v, mi))
                .collect::<Vec<Value>>()
        })
    });
    let Some(versions) = versions else {
        return read_err(&st, index, 404, "job versions not found");
    };
    let diffs = if q.flag("diffs") {
        let mut out = Vec::new();
        for w in versions.windows(2) {
            out.push(job_diff(Some(&w[1]), Some(&w[0]), true).to_json());
        }
        if out.is_empty() {
            Value::Null
        } else {
            Value::Array(out)
        }
    } else {
        Value::Null
    };
    let body = json!({
        "Diffs": diffs,
        "Index": index,
        "KnownLeader": st.leader_known(),
        "LastContact": 0,
        "NextToken": "",
        "Versions": versions,
    });
    read_ok(&st, &q, index, &body)
}

async fn plan(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let args = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(api_job) = args.get("Job").filter(|j| j.is_object()) else {
        return error(400, "Job must be specified");
    };
    match api_job.get("ID").and_then(Value::as_str) {
        None => return error(400, "Job must have a valid ID"),
        Some(jid) if jid != id => return error(400, "Job ID does not match"),
        _ => {}
    }
    let ns = resolve_namespace(&q, &args, api_job);
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "submit-job") {
        return r;
    }
    let mut job = match canonicalize(api_job, &canon_opts(&st, ns.clone())) {
        Ok(j) => j,
        Err(e) => return error(400, &e),
    };
    let (errs, warnings) = validate(&job, st.cfg.memory_oversubscription);
    if !errs.is_empty() {
        return error(500, &multierror(&errs));
    }
    let want_diff = b(&args, "Diff");
    let key: JobKey = (ns.clone(), id);
    let response = st.read(|inner| {
        if !inner.namespaces.contains_key(&ns) {
            return Err(format!(
                "job {:?} is in nonexistent namespace {:?}",
                key.1, ns
            ));
        }
        let existing = inner.job(&key).cloned();
        if let Some(old) = &existing
            && b(&args, "PreserveCounts")
            && let Some(groups) = job.get_mut("TaskGroups").and_then(Value::as_array_mut)
        {
            for g in groups {
                if let Some(og) = arr(old, "TaskGroups")
                    .iter()
                    .find(|x| s(x, "Name") == s(g, "Name"))
                {
                    g["Count"] = og["Count"].clone();
                }
            }
        }
        let changed = existing.as_ref().is_none_or(|o| spec_changed(o, &job));
        let (desired, failed) = inner.plan_updates(&st.cfg, &key, &job, changed);
        let diff = if want_diff {
            let mut d = job_diff(existing.as_ref(), Some(&job), true);
            annotate(&mut d, &desired);
            d.to_json()
        } else {
            Value::Null
        };
        let desired_json: serde_json::Map<String, Value> = desired
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let next_launch = job
            .get("Periodic")
            .filter(|p| p.is_object())
            .and_then(super::periodic::next_launch);
        let index = existing
            .as_ref()
            .map(|j| u(j, "ModifyIndex"))
            .unwrap_or(inner.tables.jobs);
        let failed_json = if failed.is_empty() {
            Value::Null
        } else {
            failed_tg_allocs(&st.cfg, &failed)
        };
        // What the scheduler's dry run created: the blocked evaluation that would wait
        // for the allocations it cannot place, as a real plan answers (fixture
        // `job-plan-order-api-count-3`). `ClassEligibility` (node class hashes) is not
        // modelled and left out.
        let created_evals = if failed.is_empty() {
            Value::Null
        } else {
            let now = super::store::now_ns();
            let mut eval = json!({
                "CreateTime": now,
                "FailedTGAllocs": failed_json.clone(),
                "ID": uuid::Uuid::new_v4().to_string(),
                "JobID": key.1,
                "ModifyTime": now,
                "Namespace": key.0,
                "PreviousEval": uuid::Uuid::new_v4().to_string(),
                "Priority": job.get("Priority").and_then(Value::as_i64).unwrap_or(50),
                "Status": "blocked",
                "StatusDescription": "created to place remaining allocations",
                "TriggeredBy": "queued-allocs",
                "Type": s(&job, "Type"),
            });
            // The index the plan's job would be registered at; absent (zero, omitted
            // on the wire) when the job would not change.
            if changed {
                eval["JobModifyIndex"] = json!(index + 1);
            }
            json!([eval])
        };
        Ok((
            index,
            json!({
                "Annotations": { "DesiredTGUpdates": desired_json, "PreemptedAllocs": null },
                "CreatedEvals": created_evals,
                "Diff": diff,
                "FailedTGAllocs": failed_json,
                "Index": index,
                "JobModifyIndex": existing.as_ref().map(|j| u(j, "JobModifyIndex")).unwrap_or(0),
                "NextPeriodicLaunch": next_launch,
                "Warnings": warnings_text(&warnings),
            }),
        ))
    });
    match response {
        Ok((index, body)) => write_ok(&q, index, &body),
        Err(e) => error(500, &e),
    }
}

async fn deregister(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "submit-job") {
        return r;
    }
    let purge = q.flag("purge");
    let key: JobKey = (ns, id);
    let o = st.write(|inner, cx| inner.deregister(cx, &key, purge));
    write_ok(
        &q,
        o.index,
        &json!({
            "EvalCreateIndex": o.eval_create_index,
            "EvalID": o.eval_id,
            "Index": o.index,
            "JobModifyIndex": o.job_modify_index,
            "KnownLeader": false,
            "LastContact": 0,
            "NextToken": "",
            "VolumeEvalID": "",
            "VolumeEvalIndex": 0,
        }),
    )
}

async fn summary(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index_of = || {
        st.read(|i| match i.jobs.get(&key) {
            Some(e) => e.summary_modify_index,
            None => i.tables.job_summary,
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match st.read(|i| i.summary(&key)) {
        Some(s) => read_ok(&st, &q, index, &s),
        None => read_err(&st, index, 404, "job not found"),
    }
}

async fn evaluations(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index = match block(&st, &q, || st.read(|i| i.tables.evals)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let evals = st.read(|i| {
        let mut v: Vec<_> = i.job_evals(&key).into_iter().cloned().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.create_index));
        serde_json::to_value(v).unwrap_or(Value::Null)
    });
    read_ok(&st, &q, index, &evals)
}

async fn allocations(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index = match block(&st, &q, || st.read(|i| i.tables.allocs)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let all = q.flag("all");
    let allocs = st.read(|i| {
        let create_index = i.job(&key).map(|j| u(j, "CreateIndex"));
        let mut v: Vec<_> = i
            .job_allocs(&key)
            .into_iter()
            .filter(|a| all || create_index.is_none_or(|ci| a.create_index >= ci))
            .collect();
        v.sort_by(|a, b| {
            b.create_index
                .cmp(&a.create_index)
                .then_with(|| a.name.cmp(&b.name))
        });
        Value::Array(
            v.into_iter()
                .map(|a| a.stub(&st.cfg.node_id, &st.cfg.node_name))
                .collect(),
        )
    });
    read_ok(&st, &q, index, &allocs)
}

async fn latest_deployment(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index = match block(&st, &q, || st.read(|i| i.tables.deployment)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let d = st.read(|i| {
        i.job_deployments(&key)
            .first()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    });
    read_ok(&st, &q, index, &d)
}

async fn deployments(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let key: JobKey = (ns, id);
    let index = match block(&st, &q, || st.read(|i| i.tables.deployment)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let all = q.flag("all");
    let d = st.read(|i| {
        let create_index = i.job(&key).map(|j| u(j, "CreateIndex"));
        Value::Array(
            i.job_deployments(&key)
                .into_iter()
                .filter(|d| all || create_index.is_none_or(|ci| d.job_create_index == ci))
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                .collect(),
        )
    });
    read_ok(&st, &q, index, &d)
}

async fn validate_job(
    State(st): St,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let args = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(api_job) = args.get("Job").filter(|j| j.is_object()) else {
        return error(400, "Job must be specified");
    };
    let ns = resolve_namespace(&q, &args, api_job);
    if let Err(r) = require_ns(&st, &headers, &q, &ns, "read-job") {
        return r;
    }
    let job = match canonicalize(api_job, &canon_opts(&st, ns)) {
        Ok(j) => j,
        Err(e) => return error(400, &e),
    };
    let (errs, warnings) = validate(&job, st.cfg.memory_oversubscription);
    plain_ok(
        &q,
        &json!({
            "DriverConfigValidated": true,
            "Error": if errs.is_empty() { String::new() } else { multierror(&errs) },
            "ValidationErrors": if errs.is_empty() { Value::Null } else { json!(errs) },
            "Warnings": warnings_text(&warnings),
        }),
    )
}

async fn parse(
    State(st): St,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let args = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ns = q.namespace();
    let a = match super::http::authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !a.allow_ns(&ns, "parse-job") && !a.allow_ns(&ns, "submit-job") {
        return super::http::denied();
    }
    let text = s(&args, "JobHCL");
    if text.trim().is_empty() {
        return error(400, "Job spec is empty");
    }
    let job = match super::parse::parse_job(text) {
        Ok(j) => j,
        Err(e) => return error(400, &e),
    };
    if !b(&args, "Canonicalize") {
        return plain_ok(&q, &job);
    }
    let mut opts = canon_opts(&st, s(&job, "Namespace").to_string());
    if opts.namespace.is_empty() {
        opts.namespace = "default".into();
    }
    opts.api_form = true;
    match canonicalize(&job, &opts) {
        Ok(c) => plain_ok(&q, &c),
        Err(e) => error(400, &e),
    }
}
