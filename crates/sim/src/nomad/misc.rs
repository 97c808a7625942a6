//! Namespaces, evaluations/allocations/deployments by ID, deployment promotion and
//! failure, status, agent, regions and nodes; and the `filter` expression subset.

use super::NomadState;
use super::http::{
    Query, authz, block, denied, error, json_body, read_err, read_ok, require_ns, write_ok,
};
use super::json::s;
use super::model::Namespace;
use super::store::JobKey;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<NomadState>>;

pub(crate) fn routes() -> Router<Arc<NomadState>> {
    Router::new()
        .route("/v1/namespaces", get(list_namespaces))
        .route(
            "/v1/namespace/{name}",
            get(get_namespace)
                .put(put_namespace)
                .post(put_namespace)
                .delete(delete_namespace),
        )
        .route("/v1/evaluations", get(list_evals))
        .route("/v1/evaluation/{id}", get(get_eval))
        .route("/v1/evaluation/{id}/allocations", get(eval_allocs))
        .route("/v1/allocations", get(list_allocs))
        .route("/v1/allocation/{id}", get(get_alloc))
        .route("/v1/deployments", get(list_deployments))
        .route("/v1/deployment/{id}", get(get_deployment))
        .route("/v1/deployment/allocations/{id}", get(deployment_allocs))
        .route("/v1/deployment/promote/{id}", put(promote).post(promote))
        .route("/v1/deployment/fail/{id}", put(fail).post(fail))
        .route("/v1/status/leader", get(leader))
        .route("/v1/status/peers", get(peers))
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/agent/members", get(agent_members))
        .route("/v1/regions", get(regions))
        .route("/v1/nodes", get(nodes))
        .route("/v1/acl/token/self", get(acl_token_self))
        .route("/.well-known/jwks.json", get(jwks))
}

// ----- ACL token and workload identity keys -----

async fn acl_token_self(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let token = crate::acl::request_token(crate::Product::Nomad, &headers, q.map());
    match st.acl.token_self(token.as_deref()) {
        Ok(v) => super::http::plain_ok(&q, &v),
        Err((status, msg)) => error(status, msg),
    }
}

/// `GET /.well-known/jwks.json`: the public keys of the keyring that signs workload
/// identities, unauthenticated, with Nomad's `Cache-Control` (Vault's JWT auth method
/// reads it through its `jwks_url`). The simulator signs nothing, so the one Ed25519
/// key is a fixed value derived from the node ID; its shape is the real one.
async fn jwks(State(st): St) -> Response {
    use base64::Engine as _;
    let seed = st.cfg.node_id.replace('-', "");
    let mut x = [0u8; 32];
    for (i, b) in seed.bytes().cycle().take(32).enumerate() {
        x[i] = b;
    }
    let body = json!({
        "keys": [{
            "use": "sig",
            "kty": "OKP",
            "kid": st.cfg.node_id,
            "crv": "Ed25519",
            "alg": "EdDSA",
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x),
        }]
    });
    (
        http::StatusCode::OK,
        [
            (http::header::CONTENT_TYPE, "application/json"),
            (http::header::CACHE_CONTROL, "max-age=3600"),
        ],
        body.to_string(),
    )
        .into_response()
}

// ----- namespaces -----

fn valid_namespace_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 128 && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

async fn list_namespaces(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.namespaces)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let list = st.read(|i| {
        Value::Array(
            i.namespaces
                .values()
                .filter(|n| n.name.starts_with(&prefix) && a.any_ns(&n.name))
                .map(Namespace::to_json)
                .collect(),
        )
    });
    read_ok(&st, &q, index, &list)
}

async fn get_namespace(
    State(st): St,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !a.any_ns(&name) {
        return denied();
    }
    let index_of = || {
        st.read(|i| match i.namespaces.get(&name) {
            Some(n) => n.modify_index,
            None => i.tables.namespaces,
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match st.read(|i| i.namespaces.get(&name).map(Namespace::to_json)) {
        Some(n) => read_ok(&st, &q, index, &n),
        None => read_err(&st, index, 404, "Namespace not found"),
    }
}

async fn put_namespace(
    State(st): St,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    match authz(&st, &headers, &q) {
        Ok(a) if a.management() => {}
        Ok(_) => return denied(),
        Err(r) => return r,
    }
    let args = if body.is_empty() {
        json!({})
    } else {
        match json_body(&body) {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
    let body_name = s(&args, "Name");
    let name = if body_name.is_empty() {
        name
    } else if body_name != name {
        return error(400, "Namespace name does not match request path");
    } else {
        name
    };
    if !valid_namespace_name(&name) {
        return error(
            500,
            &format!(
                "1 error occurred:\n\t* invalid name {name:?}. Must match regex ^[a-zA-Z0-9-]{{1,128}}$\n\n"
            ),
        );
    }
    let description = s(&args, "Description").to_string();
    let meta = args.get("Meta").and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect()
    });
    let index = st.write(|inner, cx| {
        if let Some(n) = inner.namespaces.get(&name)
            && n.description == description
            && n.meta == meta
        {
            return n.modify_index;
        }
        let idx = cx.clock.next();
        let create_index = inner
            .namespaces
            .get(&name)
            .map(|n| n.create_index)
            .unwrap_or(idx);
        inner.namespaces.insert(
            name.clone(),
            Namespace {
                name: name.clone(),
                description,
                meta,
                quota: String::new(),
                create_index,
                modify_index: idx,
            },
        );
        inner.tables.namespaces = idx;
        idx
    });
    let mut resp = (http::StatusCode::OK, "").into_response();
    if let Ok(v) = http::HeaderValue::from_str(&index.to_string()) {
        resp.headers_mut().insert("X-Nomad-Index", v);
    }
    resp
}

async fn delete_namespace(
    State(st): St,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    match authz(&st, &headers, &q) {
        Ok(a) if a.management() => {}
        Ok(_) => return denied(),
        Err(r) => return r,
    }
    if name == "default" {
        return error(500, "default namespace can not be deleted");
    }
    let region = st.cfg.region.clone();
    let out = st.write(|inner, cx| {
        if !inner.namespaces.contains_key(&name) {
            return Ok(inner.tables.namespaces);
        }
        let busy = inner
            .jobs
            .iter()
            .any(|((ns, _), e)| ns == &name && e.job()["Status"] != "dead");
        if busy {
            return Err(format!(
                "namespace {name:?} has non-terminal jobs in regions: [{region}]"
            ));
        }
        let idx = cx.clock.next();
        inner.namespaces.remove(&name);
        inner.tables.namespaces = idx;
        Ok(idx)
    });
    match out {
        Ok(index) => {
            let mut resp = (http::StatusCode::OK, "").into_response();
            if let Ok(v) = http::HeaderValue::from_str(&index.to_string()) {
                resp.headers_mut().insert("X-Nomad-Index", v);
            }
            resp
        }
        Err(e) => error(500, &e),
    }
}

// ----- evaluations, allocations, deployments -----

async fn list_evals(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.evals)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.read(|i| {
        let mut list: Vec<_> = i
            .evals
            .values()
            .filter(|e| (ns == "*" || e.namespace == ns) && a.allow_ns(&e.namespace, "read-job"))
            .cloned()
            .collect();
        list.sort_by_key(|x| std::cmp::Reverse(x.create_index));
        serde_json::to_value(list).unwrap_or(Value::Null)
    });
    read_ok(&st, &q, index, &v)
}

async fn get_eval(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index_of = || {
        st.read(|i| {
            i.evals
                .get(&id)
                .map(|e| e.modify_index)
                .unwrap_or(i.tables.evals)
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match st.read(|i| i.evals.get(&id).cloned()) {
        Some(e) if a.allow_ns(&e.namespace, "read-job") => read_ok(
            &st,
            &q,
            index,
            &serde_json::to_value(e).unwrap_or(Value::Null),
        ),
        Some(_) => denied(),
        None => read_err(&st, index, 404, "eval not found"),
    }
}

async fn eval_allocs(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.allocs)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.read(|i| {
        Value::Array(
            i.allocs
                .values()
                .filter(|x| x.eval_id == id && a.allow_ns(&x.namespace, "read-job"))
                .map(|x| x.stub(&st.cfg.node_id, &st.cfg.node_name))
                .collect(),
        )
    });
    read_ok(&st, &q, index, &v)
}

async fn list_allocs(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.allocs)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.read(|i| {
        let mut list: Vec<_> = i
            .allocs
            .values()
            .filter(|x| (ns == "*" || x.namespace == ns) && a.allow_ns(&x.namespace, "read-job"))
            .collect();
        list.sort_by_key(|x| std::cmp::Reverse(x.create_index));
        Value::Array(
            list.into_iter()
                .map(|x| x.stub(&st.cfg.node_id, &st.cfg.node_name))
                .collect(),
        )
    });
    read_ok(&st, &q, index, &v)
}

async fn get_alloc(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index_of = || {
        st.read(|i| {
            i.allocs
                .get(&id)
                .map(|x| x.modify_index)
                .unwrap_or(i.tables.allocs)
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let found = st.read(|i| {
        i.allocs.get(&id).map(|x| {
            let job = i.alloc_job_json(x).unwrap_or(Value::Null);
            let group = super::json::arr(&job, "TaskGroups")
                .iter()
                .find(|g| s(g, "Name") == x.task_group)
                .cloned()
                .unwrap_or(Value::Null);
            (
                x.namespace.clone(),
                x.full(
                    &st.cfg.node_id,
                    &st.cfg.node_name,
                    &st.cfg.service_address,
                    job,
                    &group,
                ),
            )
        })
    });
    match found {
        Some((ns, v)) if a.allow_ns(&ns, "read-job") => read_ok(&st, &q, index, &v),
        Some(_) => denied(),
        None => read_err(&st, index, 404, "alloc not found"),
    }
}

async fn list_deployments(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    let ns = q.namespace();
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.deployment)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.read(|i| {
        let mut list: Vec<_> = i
            .deployments
            .values()
            .filter(|d| {
                let any = ns == "*" && st.cfg.namespace_wildcard;
                (any || d.namespace == ns) && a.allow_ns(&d.namespace, "read-job")
            })
            .cloned()
            .collect();
        list.sort_by_key(|x| std::cmp::Reverse(x.create_index));
        serde_json::to_value(list).unwrap_or(Value::Null)
    });
    read_ok(&st, &q, index, &v)
}

async fn get_deployment(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index_of = || {
        st.read(|i| {
            i.deployments
                .get(&id)
                .map(|d| d.modify_index)
                .unwrap_or(i.tables.deployment)
        })
    };
    let index = match block(&st, &q, index_of).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match st.read(|i| i.deployments.get(&id).cloned()) {
        Some(d) if a.allow_ns(&d.namespace, "read-job") => read_ok(
            &st,
            &q,
            index,
            &serde_json::to_value(d).unwrap_or(Value::Null),
        ),
        Some(_) => denied(),
        None => read_err(&st, index, 404, "deployment not found"),
    }
}

async fn deployment_allocs(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let index = match block(&st, &q, || st.read(|i| i.tables.allocs)).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = st.read(|i| {
        Value::Array(
            i.allocs
                .values()
                .filter(|x| x.deployment_id == id && a.allow_ns(&x.namespace, "read-job"))
                .map(|x| x.stub(&st.cfg.node_id, &st.cfg.node_name))
                .collect(),
        )
    });
    read_ok(&st, &q, index, &v)
}

fn deployment_key(st: &NomadState, id: &str) -> Option<(JobKey, bool, bool)> {
    st.read(|i| {
        i.deployments.get(id).map(|d| {
            let has_canaries = d.task_groups.values().any(|g| g.desired_canaries > 0);
            (
                (d.namespace.clone(), d.job_id.clone()),
                d.active(),
                has_canaries,
            )
        })
    })
}

async fn promote(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    if !body.is_empty()
        && let Err(r) = json_body(&body)
    {
        return r;
    }
    let Some((key, active, has_canaries)) = deployment_key(&st, &id) else {
        return error(500, &format!("deployment not found: {id}"));
    };
    if let Err(r) = require_ns(&st, &headers, &q, &key.0, "submit-job") {
        return r;
    }
    if !active {
        return error(500, "can't promote terminal deployment");
    }
    if !has_canaries {
        return error(500, "deployment has no canaries to promote");
    }
    let index = st.write(|inner, cx| {
        let idx = cx.clock.next();
        inner.promote(cx, &key, &id, idx);
        idx
    });
    write_ok(
        &q,
        index,
        &json!({
            "DeploymentModifyIndex": index,
            "EvalCreateIndex": index,
            "EvalID": uuid::Uuid::new_v4().to_string(),
            "Index": index,
            "KnownLeader": false,
            "LastContact": 0,
            "NextToken": "",
            "RevertedJobVersion": null,
        }),
    )
}

async fn fail(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let Some((key, active, _)) = deployment_key(&st, &id) else {
        return error(500, &format!("deployment not found: {id}"));
    };
    if let Err(r) = require_ns(&st, &headers, &q, &key.0, "submit-job") {
        return r;
    }
    if !active {
        return error(500, "can't fail terminal deployment");
    }
    let index = st.write(|inner, cx| {
        let idx = cx.clock.next();
        inner.fail_deployment(cx, &key, &id, idx, "Deployment marked as failed");
        idx
    });
    write_ok(
        &q,
        index,
        &json!({
            "DeploymentModifyIndex": index,
            "EvalCreateIndex": index,
            "EvalID": uuid::Uuid::new_v4().to_string(),
            "Index": index,
            "KnownLeader": false,
            "LastContact": 0,
            "NextToken": "",
            "RevertedJobVersion": null,
        }),
    )
}

// ----- status, agent, regions, nodes -----

async fn leader(State(st): St, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let v = if st.leader_known() {
        json!("127.0.0.1:4647")
    } else {
        json!("")
    };
    super::http::plain_ok(&q, &v)
}

async fn peers(RawQuery(raw): RawQuery) -> Response {
    super::http::plain_ok(&Query::parse(raw.as_deref()), &json!(["127.0.0.1:4647"]))
}

async fn agent_self(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    match authz(&st, &headers, &q) {
        Ok(a) if a.agent("read") => {}
        Ok(_) => return denied(),
        Err(r) => return r,
    }
    let c = &st.cfg;
    let v = json!({
        "config": {
            "Datacenter": c.datacenter,
            "NodeName": c.node_name,
            "Region": c.region,
            "Version": { "Version": c.version, "VersionPrerelease": "", "VersionMetadata": "", "Revision": "sim" },
            "ACL": { "Enabled": st.acl.enabled() },
            "Server": { "Enabled": true, "BootstrapExpect": 1 },
            "Client": { "Enabled": true },
        },
        "member": {
            "Name": format!("{}.{}", c.node_name, c.region),
            "Addr": "127.0.0.1",
            "Port": 4648,
            "Status": "alive",
            "Tags": { "region": c.region, "dc": c.datacenter, "role": "nomad", "build": c.version, "id": c.node_id },
        },
        "stats": {
            "nomad": { "leader": st.leader_known().to_string(), "known_regions": "1", "server": "true" },
            "client": { "node_id": c.node_id },
        },
    });
    super::http::plain_ok(&q, &v)
}

async fn agent_members(State(st): St, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let c = &st.cfg;
    super::http::plain_ok(
        &q,
        &json!({
            "ServerName": c.node_name,
            "ServerRegion": c.region,
            "ServerDC": c.datacenter,
            "Members": [{
                "Name": format!("{}.{}", c.node_name, c.region), "Addr": "127.0.0.1", "Port": 4648,
                "Status": "alive", "Tags": { "region": c.region, "dc": c.datacenter, "build": c.version },
            }],
        }),
    )
}

async fn regions(State(st): St, RawQuery(raw): RawQuery) -> Response {
    super::http::plain_ok(&Query::parse(raw.as_deref()), &json!([st.cfg.region]))
}

async fn nodes(State(st): St, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let q = Query::parse(raw.as_deref());
    match authz(&st, &headers, &q) {
        Ok(a) if a.node("read") => {}
        Ok(_) => return denied(),
        Err(r) => return r,
    }
    let c = &st.cfg;
    let v = json!([{
        "Address": "127.0.0.1",
        "CreateIndex": 1,
        "Datacenter": c.datacenter,
        "Drain": false,
        "Drivers": c.drivers.iter().map(|d| (d.clone(), json!({"Detected": true, "Healthy": true}))).collect::<serde_json::Map<String, Value>>(),
        "ID": c.node_id,
        "ModifyIndex": 1,
        "Name": c.node_name,
        "NodeClass": "",
        "NodePool": "default",
        "SchedulingEligibility": "eligible",
        "Status": "ready",
        "StatusDescription": "",
        "Version": c.version,
    }]);
    read_ok(&st, &q, 1, &v)
}

// ----- filter expressions (a subset of go-bexpr) -----

/// A parsed `filter` expression: clauses joined by `and` / `or` (left to right,
/// `and` binding tighter), each `<selector> ==|!= "<value>"`,
/// `<selector> is empty|is not empty`, `"<value>" in|not in <selector>`,
/// `<selector> contains|matches "<value>"`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    any_of: Vec<Vec<Clause>>,
}

#[derive(Debug, Clone)]
enum Clause {
    Eq(Vec<String>, String, bool),
    Empty(Vec<String>, bool),
    In(String, Vec<String>, bool),
    Contains(Vec<String>, String),
    Matches(Vec<String>, String),
}

fn tokens(expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::from("\"");
            let mut closed = false;
            while let Some(ch) = chars.next() {
                if ch == '\\' && c == '"' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else if ch == c {
                    closed = true;
                    break;
                } else {
                    s.push(ch);
                }
            }
            if !closed {
                return Err("unterminated string".into());
            }
            out.push(s);
        } else if c == '=' || c == '!' {
            chars.next();
            if chars.peek() == Some(&'=') {
                chars.next();
                out.push(format!("{c}="));
            } else {
                return Err(format!("unexpected {c:?}"));
            }
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '=' || ch == '!' {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn selector(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    parts.push(std::mem::take(&mut cur));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    parts.push(std::mem::take(&mut cur));
                }
                let mut key = String::new();
                for ch in chars.by_ref() {
                    if ch == ']' {
                        break;
                    }
                    key.push(ch);
                }
                parts.push(key.trim_matches('"').to_string());
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    if parts.is_empty() {
        return Err(format!("invalid selector {s:?}"));
    }
    Ok(parts)
}

fn lit(t: &str) -> Option<String> {
    t.strip_prefix('"').map(String::from)
}

impl Filter {
    /// Parses an expression.
    ///
    /// # Errors
    /// A description of the syntax error.
    pub(crate) fn parse(expr: &str) -> Result<Filter, String> {
        let toks = tokens(expr)?;
        let mut any_of = vec![Vec::new()];
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let clause;
            if let Some(v) = lit(t) {
                let (neg, sel_at) = match toks.get(i + 1).map(String::as_str) {
                    Some("in") => (false, i + 2),
                    Some("not") if toks.get(i + 2).map(String::as_str) == Some("in") => {
                        (true, i + 3)
                    }
                    _ => return Err(format!("expected 'in' after {t}")),
                };
                let sel = toks.get(sel_at).ok_or("missing selector")?;
                clause = Clause::In(v, selector(sel)?, neg);
                i = sel_at + 1;
            } else {
                let sel = selector(t)?;
                match toks.get(i + 1).map(String::as_str) {
                    Some("==") | Some("!=") => {
                        let neg = toks[i + 1] == "!=";
                        let v = toks
                            .get(i + 2)
                            .and_then(|x| lit(x).or_else(|| Some(x.clone())))
                            .ok_or("missing value")?;
                        clause = Clause::Eq(sel, v, neg);
                        i += 3;
                    }
                    Some("is") => {
                        let neg = toks.get(i + 2).map(String::as_str) == Some("not");
                        let at = if neg { i + 3 } else { i + 2 };
                        if toks.get(at).map(String::as_str) != Some("empty") {
                            return Err("expected 'empty'".into());
                        }
                        clause = Clause::Empty(sel, neg);
                        i = at + 1;
                    }
                    Some("contains") => {
                        let v = toks
                            .get(i + 2)
                            .and_then(|x| lit(x))
                            .ok_or("missing value")?;
                        clause = Clause::Contains(sel, v);
                        i += 3;
                    }
                    Some("matches") => {
                        let v = toks
                            .get(i + 2)
                            .and_then(|x| lit(x))
                            .ok_or("missing value")?;
                        clause = Clause::Matches(sel, v);
                        i += 3;
                    }
                    other => return Err(format!("unexpected token {other:?}")),
                }
            }
            if let Some(last) = any_of.last_mut() {
                last.push(clause);
            }
            match toks.get(i).map(String::as_str) {
                None => break,
                Some("and") => i += 1,
                Some("or") => {
                    any_of.push(Vec::new());
                    i += 1;
                }
                Some(other) => return Err(format!("unexpected token {other:?}")),
            }
        }
        Ok(Filter { any_of })
    }

    /// Whether an object matches.
    pub(crate) fn matches(&self, v: &Value) -> bool {
        self.any_of
            .iter()
            .any(|all| all.iter().all(|c| clause(c, v)))
    }
}

fn lookup<'a>(v: &'a Value, sel: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in sel {
        cur = match cur {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn clause(c: &Clause, v: &Value) -> bool {
    match c {
        Clause::Eq(sel, want, neg) => {
            let got = lookup(v, sel).map(as_text).unwrap_or_default();
            (got == *want) != *neg
        }
        Clause::Empty(sel, neg) => {
            let empty = match lookup(v, sel) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(m)) => m.is_empty(),
                Some(_) => false,
            };
            empty != *neg
        }
        Clause::In(want, sel, neg) => {
            let found = match lookup(v, sel) {
                Some(Value::Array(a)) => a.iter().any(|x| as_text(x) == *want),
                Some(Value::Object(m)) => m.contains_key(want),
                Some(Value::String(s)) => s.contains(want.as_str()),
                _ => false,
            };
            found != *neg
        }
        Clause::Contains(sel, want) => match lookup(v, sel) {
            Some(Value::Array(a)) => a.iter().any(|x| as_text(x) == *want),
            Some(Value::Object(m)) => m.contains_key(want),
            Some(Value::String(s)) => s.contains(want.as_str()),
            _ => false,
        },
        Clause::Matches(sel, want) => {
            let got = lookup(v, sel).map(as_text).unwrap_or_default();
            let pat = want.trim_start_matches('^').trim_end_matches('$');
            if want.starts_with('^') && want.ends_with('$') {
                got == pat
            } else if want.starts_with('^') {
                got.starts_with(pat)
            } else {
                got.contains(pat)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filters_select_on_meta_and_fields() {
        let v = json!({"Meta": {"steward.managed-by": "steward"}, "Status": "running", "Datacenters": ["dc1"]});
        assert!(
            Filter::parse(r#"Meta["steward.managed-by"] == "steward""#)
                .unwrap()
                .matches(&v)
        );
        assert!(
            Filter::parse(r#"Status == "running" and "dc1" in Datacenters"#)
                .unwrap()
                .matches(&v)
        );
        assert!(!Filter::parse(r#"Status != "running""#).unwrap().matches(&v));
        assert!(Filter::parse(r#"Meta is not empty"#).unwrap().matches(&v));
        assert!(
            Filter::parse(r#"Status == "dead" or Status == "running""#)
                .unwrap()
                .matches(&v)
        );
        assert!(Filter::parse(r#"Status =="#).is_err());
    }
}
