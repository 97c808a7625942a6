//! Sessions (reference §3): create, renew, destroy, info, list, node; TTL expiry
//! and invalidation (releases or deletes held keys, opens lock-delay windows).
//!
//! TTL model: like the real server's timer, a session expires `TTL × 2` after its
//! creation or last renewal (`SessionTTLMultiplier`); a new leader (here: a restore
//! from the state file) restarts every timer from scratch.

use super::ConsulState;
use super::acl::{Access, Res};
use super::catalog::{field, field_str, json_kind};
use super::store::{Change, ServiceCheckRef, Session, Watch};
use super::web::{self, ApiError, ApiResult, Meta, Req};
use crate::blocking::{format_go_duration, parse_go_duration};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Consul's `SessionTTLMax`.
const SESSION_TTL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Consul's `SessionTTLMultiplier`.
const TTL_MULTIPLIER: u32 = 2;
/// Bare `LockDelay` numbers below this are seconds (`lockDelayMinThreshold`).
const LOCK_DELAY_MIN_THRESHOLD: f64 = 1000.0;

/// When a session with this TTL string expires, counted from `now`.
pub(crate) fn ttl_deadline(ttl: &str, now: Instant) -> Option<Instant> {
    let d = parse_go_duration(ttl)?;
    if d.is_zero() {
        return None;
    }
    Some(now + d * TTL_MULTIPLIER)
}

/// Runs until cancelled: invalidates sessions whose TTL timer fired.
pub(crate) async fn run_ttl_timers(state: Arc<ConsulState>) {
    loop {
        let next = {
            let store = state.store.lock();
            store
                .data
                .sessions
                .values()
                .filter_map(|s| s.deadline)
                .min()
        };
        let notified = state.timers.notified();
        match next {
            Some(at) if at <= Instant::now() => {
                expire_due(&state);
                continue;
            }
            Some(at) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(at) => expire_due(&state),
                }
            }
            None => notified.await,
        }
    }
}

fn expire_due(state: &ConsulState) {
    let now = Instant::now();
    let mut store = state.store.lock();
    let due: Vec<String> = store
        .data
        .sessions
        .values()
        .filter(|s| s.deadline.is_some_and(|d| d <= now))
        .map(|s| s.id.clone())
        .collect();
    for id in due {
        let mut tx = store.begin(&state.clock);
        store.invalidate_session(&mut tx, &id);
        store.commit(&state.clock, tx);
    }
}

/// Invalidates one session now. `false` when it does not exist.
pub(crate) fn invalidate(state: &ConsulState, id: &str) -> bool {
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    let found = store.invalidate_session(&mut tx, id);
    store.commit(&state.clock, tx);
    found
}

/// What the create body says, after Consul's defaults and fix-ups.
struct CreateArgs {
    name: String,
    node: String,
    lock_delay: Duration,
    behavior: String,
    ttl: String,
    node_checks: Option<Vec<String>>,
    service_checks: Option<Vec<ServiceCheckRef>>,
    checks: Option<Vec<String>>,
}

fn decode_err(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Request decode failed: {msg}"))
}

fn string_list(v: Option<&Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(decode_err(format!(
                    "json: cannot unmarshal {} into Go struct field Alias.{name} of type string",
                    json_kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(decode_err(format!(
            "json: cannot unmarshal {} into Go struct field Alias.{name} of type []string",
            json_kind(other)
        ))),
    }
}

fn parse_create(state: &ConsulState, body: &[u8]) -> Result<CreateArgs, ApiError> {
    let mut args = CreateArgs {
        name: String::new(),
        node: state.cfg.node_name.clone(),
        lock_delay: Duration::from_secs(15),
        behavior: "release".into(),
        ttl: String::new(),
        node_checks: Some(vec!["serfHealth".into()]),
        service_checks: None,
        checks: Some(vec!["serfHealth".into()]),
    };
    if body.is_empty() {
        fixup_checks(&mut args);
        return Ok(args);
    }
    let value: Value = serde_json::from_slice(body).map_err(decode_err)?;
    let obj: Map<String, Value> = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(decode_err(format!(
                "json: cannot unmarshal {} into Go value of type structs.Session",
                json_kind(&other)
            )));
        }
    };
    let s = |name: &str| field_str(&obj, name).map_err(decode_err);
    if field(&obj, "Name").is_some() {
        args.name = s("Name")?;
    }
    if field(&obj, "Node").is_some() {
        args.node = s("Node")?;
    }
    if field(&obj, "Behavior").is_some() {
        args.behavior = s("Behavior")?;
    }
    if field(&obj, "TTL").is_some() {
        args.ttl = s("TTL")?;
    }
    match field(&obj, "LockDelay") {
        None | Some(Value::Null) => {}
        Some(Value::String(raw)) => {
            let d =
                parse_go_duration(raw).ok_or_else(|| decode_err(web::go_duration_error(raw)))?;
            args.lock_delay = if (d.as_nanos() as f64) < LOCK_DELAY_MIN_THRESHOLD {
                d * 1_000_000_000
            } else {
                d
            };
        }
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(0.0).max(0.0);
            args.lock_delay = if v < LOCK_DELAY_MIN_THRESHOLD {
                Duration::from_secs_f64(v.trunc())
            } else {
                Duration::from_nanos(v as u64)
            };
        }
        Some(other) => {
            return Err(decode_err(format!(
                "json: cannot unmarshal {} into Go struct field .LockDelay",
                json_kind(other)
            )));
        }
    }
    if let Some(v) = field(&obj, "NodeChecks") {
        args.node_checks = string_list(Some(v), "NodeChecks")?;
    }
    if let Some(v) = field(&obj, "Checks") {
        args.checks = string_list(Some(v), "Checks")?;
    }
    match field(&obj, "ServiceChecks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for c in a {
                let c = c.as_object().ok_or_else(|| {
                    decode_err("json: cannot unmarshal into structs.ServiceCheck")
                })?;
                out.push(ServiceCheckRef {
                    id: field_str(c, "ID").map_err(decode_err)?,
                    namespace: field_str(c, "Namespace").map_err(decode_err)?,
                });
            }
            args.service_checks = Some(out);
        }
        Some(other) => {
            return Err(decode_err(format!(
                "json: cannot unmarshal {} into Go struct field Alias.ServiceChecks",
                json_kind(other)
            )));
        }
    }
    fixup_checks(&mut args);
    Ok(args)
}

/// Consul's `fixupEmptySessionChecks` (pre-1.7 `Checks` versus `NodeChecks`).
fn fixup_checks(args: &mut CreateArgs) {
    let checks_len = args.checks.as_ref().map_or(0, Vec::len);
    if checks_len == 0 {
        args.node_checks = Some(Vec::new());
        return;
    }
    if args
        .checks
        .as_ref()
        .is_some_and(|c| c.len() == 1 && c[0] == "serfHealth")
    {
        args.checks = None;
        return;
    }
    if args.node_checks.as_ref().is_none_or(Vec::is_empty) {
        args.checks = None;
    }
}

/// `PUT /v1/session/create`.
pub(crate) fn create(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    let args = parse_create(state, body)?;
    if args.node.is_empty() {
        return Err(ApiError::internal("Must provide Node"));
    }
    authz.check(Res::Session, Access::Write, &args.node)?;
    match args.behavior.as_str() {
        "release" | "delete" => {}
        "" => {}
        other => {
            return Err(ApiError::internal(format!(
                "Invalid Behavior setting '{other}'"
            )));
        }
    }
    let behavior = if args.behavior.is_empty() {
        "release".to_string()
    } else {
        args.behavior.clone()
    };
    if !args.ttl.is_empty() {
        let ttl = parse_go_duration(&args.ttl).ok_or_else(|| {
            ApiError::internal(format!(
                "Session TTL '{}' invalid: {}",
                args.ttl,
                web::go_duration_error(&args.ttl)
            ))
        })?;
        let min = state.cfg.session_ttl_min;
        if !ttl.is_zero() && (ttl < min || ttl > SESSION_TTL_MAX) {
            return Err(ApiError::internal(format!(
                "Invalid Session TTL '{}', must be between [{}={}]",
                ttl.as_nanos(),
                format_go_duration(min),
                format_go_duration(SESSION_TTL_MAX)
            )));
        }
    }
    let mut store = state.store.lock();
    if !store.data.nodes.contains_key(&args.node) {
        return Err(ApiError::internal("Missing node registration"));
    }
    let check_ids: Vec<String> = args
        .node_checks
        .iter()
        .flatten()
        .chain(args.checks.iter().flatten())
        .cloned()
        .chain(args.service_checks.iter().flatten().map(|c| c.id.clone()))
        .collect();
    for id in &check_ids {
        match store.data.checks.get(&args.node).and_then(|m| m.get(id)) {
            None => {
                return Err(ApiError::internal(format!(
                    "Missing check '{id}' registration"
                )));
            }
            Some(c) if c.status == "critical" => {
                return Err(ApiError::internal(format!(
                    "Check '{id}' is in critical state"
                )));
            }
            Some(_) => {}
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = store.begin(&state.clock);
    let idx = tx.index();
    let session = Session {
        id: id.clone(),
        name: args.name,
        node: args.node.clone(),
        lock_delay_ns: u64::try_from(args.lock_delay.as_nanos()).unwrap_or(u64::MAX),
        behavior,
        ttl: args.ttl.clone(),
        node_checks: args.node_checks,
        service_checks: args.service_checks,
        checks: args.checks,
        create_index: idx,
        modify_index: idx,
        deadline: ttl_deadline(&args.ttl, Instant::now()),
    };
    store.data.sessions.insert(id.clone(), session);
    store.data.indexes.sessions = idx;
    tx.changed(Change::Session {
        id: id.clone(),
        node: args.node,
    });
    store.commit(&state.clock, tx);
    drop(store);
    state.timers.notify_one();
    Ok(web::json(state, req, &json!({ "ID": id })))
}

/// `PUT /v1/session/renew/<id>`: the session (404 when unknown); restarts its timer.
pub(crate) fn renew(state: &ConsulState, req: &Req, id: &str) -> ApiResult {
    web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    let mut store = state.store.lock();
    let not_found = || ApiError::new(404, format!("Session id '{id}' not found"));
    let node = store
        .data
        .sessions
        .get(id)
        .map(|s| s.node.clone())
        .ok_or_else(not_found)?;
    authz.check(Res::Session, Access::Write, &node)?;
    let session = store.data.sessions.get_mut(id).ok_or_else(not_found)?;
    session.deadline = ttl_deadline(&session.ttl, Instant::now());
    let body = Value::Array(vec![session.to_json()]);
    drop(store);
    state.timers.notify_one();
    Ok(web::json(state, req, &body))
}

/// `PUT /v1/session/destroy/<id>`: `true`, also when the session is already gone.
pub(crate) fn destroy(state: &ConsulState, req: &Req, id: &str) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    let mut store = state.store.lock();
    if let Some(node) = store.data.sessions.get(id).map(|s| s.node.clone()) {
        authz.check(Res::Session, Access::Write, &node)?;
        let mut tx = store.begin(&state.clock);
        store.invalidate_session(&mut tx, id);
        store.commit(&state.clock, tx);
    }
    drop(store);
    state.timers.notify_one();
    Ok(web::json(state, req, &Value::Bool(true)))
}

async fn read_sessions(
    state: &ConsulState,
    req: &Req,
    watch: Watch,
    pick: impl Fn(&Session) -> bool,
) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(state, &opts, &watch, |s| s.data.indexes.sessions).await;
    let store = state.store.lock();
    let mut filtered = false;
    let list: Vec<Value> = store
        .data
        .sessions
        .values()
        .filter(|s| pick(s))
        .filter(|s| {
            let ok = authz.allows(Res::Session, Access::Read, &s.node);
            filtered |= !ok;
            ok
        })
        .map(Session::to_json)
        .collect();
    let meta = Meta {
        index: store.data.indexes.sessions.max(1),
        filtered,
        consistency: None,
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(list), &meta))
}

/// `GET /v1/session/info/<id>`: `[]` when unknown.
pub(crate) async fn info(state: &ConsulState, req: &Req, id: &str) -> ApiResult {
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    read_sessions(state, req, Watch::Session(id.to_string()), |s| s.id == id).await
}

/// `GET /v1/session/node/<node>`.
pub(crate) async fn node(state: &ConsulState, req: &Req, node: &str) -> ApiResult {
    if node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    read_sessions(state, req, Watch::NodeSessions(node.to_string()), |s| {
        s.node == node
    })
    .await
}

/// `GET /v1/session/list`.
pub(crate) async fn list(state: &ConsulState, req: &Req) -> ApiResult {
    read_sessions(state, req, Watch::Sessions, |_| true).await
}
