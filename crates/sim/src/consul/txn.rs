//! `PUT /v1/txn` (reference §2.7): up to 64 KV operations applied all-or-nothing.
//!
//! Like Consul, every operation runs (later ones see earlier ones' effects) and every
//! failure is reported with its `OpIndex`; any failure rolls the whole transaction
//! back (409). Transactions with only reads take the read path: they honour
//! `?stale`/`?consistent` and carry `Index`, `LastContact`, `KnownLeader` in the body.

use super::ConsulState;
use super::acl::{Access, AclError, Authz, Res};
use super::catalog::{field, json_kind};
use super::store::{Store, Tx, kv_json};
use super::web::{self, ApiError, ApiResult, Req};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

/// Consul's `maxTxnOps`.
const MAX_TXN_OPS: usize = 64;

/// One KV operation of the body.
#[derive(Debug, Clone)]
struct KvOp {
    verb: String,
    key: String,
    value: Vec<u8>,
    flags: u64,
    index: u64,
    session: String,
}

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "set" | "delete" | "delete-cas" | "delete-tree" | "cas" | "lock" | "unlock"
    )
}

fn parse_err(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Failed to parse body: {msg}"))
}

/// Where Go's base64 decoder reports a corrupt input.
fn b64_error_offset(e: &base64::DecodeError, len: usize) -> usize {
    match e {
        base64::DecodeError::InvalidByte(o, _) | base64::DecodeError::InvalidLastSymbol(o, _) => *o,
        base64::DecodeError::InvalidLength(l) => (l / 4) * 4,
        base64::DecodeError::InvalidPadding => (len / 4) * 4,
    }
}

fn u64_field(obj: &Map<String, Value>, name: &str) -> Result<u64, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            parse_err(format!(
                "json: cannot unmarshal number {n} into Go struct field KVTxnOp.KV.{name} of type uint64"
            ))
        }),
        Some(other) => Err(parse_err(format!(
            "json: cannot unmarshal {} into Go struct field KVTxnOp.KV.{name} of type uint64",
            json_kind(other)
        ))),
    }
}

fn str_field(obj: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(parse_err(format!(
            "json: cannot unmarshal {} into Go struct field KVTxnOp.KV.{name} of type string",
            json_kind(other)
        ))),
    }
}

/// Decodes the body: `[{"KV": {...}}, ...]`.
fn parse_ops(body: &[u8]) -> Result<Vec<Option<KvOp>>, ApiError> {
    use base64::Engine;
    let value: Value = serde_json::from_slice(body).map_err(parse_err)?;
    let list = match value {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => {
            return Err(parse_err(format!(
                "json: cannot unmarshal {} into Go value of type api.TxnOps",
                json_kind(&other)
            )));
        }
    };
    let mut ops = Vec::with_capacity(list.len());
    for item in list {
        let Value::Object(obj) = item else {
            return Err(parse_err(format!(
                "json: cannot unmarshal {} into Go value of type api.TxnOp",
                json_kind(&item)
            )));
        };
        let Some(kv) = field(&obj, "KV") else {
            // Node, Service and Check operations are not simulated.
            ops.push(None);
            continue;
        };
        let Value::Object(kv) = kv else {
            return Err(parse_err(format!(
                "json: cannot unmarshal {} into Go struct field TxnOp.KV of type api.KVTxnOp",
                json_kind(kv)
            )));
        };
        let value = match field(kv, "Value") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| {
                    parse_err(format!(
                        "illegal base64 data at input byte {}",
                        b64_error_offset(&e, s.len())
                    ))
                })?,
            Some(other) => {
                return Err(parse_err(format!(
                    "json: cannot unmarshal {} into Go struct field KVTxnOp.KV.Value of type []uint8",
                    json_kind(other)
                )));
            }
        };
        ops.push(Some(KvOp {
            verb: str_field(kv, "Verb")?,
            key: str_field(kv, "Key")?,
            value,
            flags: u64_field(kv, "Flags")?,
            index: u64_field(kv, "Index")?,
            session: str_field(kv, "Session")?,
        }));
    }
    Ok(ops)
}

/// Consul's `kvsPreApply` for one operation: ACLs, then the lock-delay of `lock`.
fn pre_check(store: &Store, authz: &Authz, op: &KvOp) -> Result<(), String> {
    let acl = |r: Result<(), AclError>| r.map_err(|e| e.to_string());
    if op.key.is_empty() && op.verb != "delete-tree" {
        return Err("Must provide key".into());
    }
    match op.verb.as_str() {
        "delete-tree" => acl(authz.check_key_write_prefix(&op.key))?,
        "get" | "get-tree" | "get-or-empty" => {}
        "check-session" | "check-index" | "check-not-exists" => {
            acl(authz.check(Res::Key, Access::Read, &op.key))?
        }
        _ => acl(authz.check(Res::Key, Access::Write, &op.key))?,
    }
    if op.verb == "lock" && store.lock_delay_active(&op.key) {
        return Err(format!("failed to lock key {:?} due to lock delay", op.key));
    }
    Ok(())
}

/// Consul's `txnKVS`: runs one operation, returning its results.
fn run_op(store: &mut Store, tx: &mut Tx, op: &KvOp) -> Result<Vec<Value>, String> {
    let key = op.key.as_str();
    let blank = |e: &super::store::KvEntry| vec![json!({"KV": kv_json(key, e, false)})];
    match op.verb.as_str() {
        "set" => {
            let e = store.kv_set(tx, key, op.value.clone(), op.flags, None, false, 0);
            Ok(blank(&e))
        }
        "cas" => match store.kv_cas(tx, key, op.value.clone(), op.flags, op.index) {
            Some(e) => Ok(blank(&e)),
            None => Err(format!("failed to set key {key:?}, index is stale")),
        },
        "lock" => match store.kv_lock(tx, key, op.value.clone(), op.flags, &op.session)? {
            Some(e) => Ok(blank(&e)),
            None => Err(format!("failed to lock key {key:?}, lock is already held")),
        },
        "unlock" => match store.kv_unlock(tx, key, op.value.clone(), op.flags, &op.session)? {
            Some(e) => Ok(blank(&e)),
            None => Err(format!(
                "failed to unlock key {key:?}, lock isn't held, or is held by another session"
            )),
        },
        "get" => match store.data.kv.get(key) {
            Some(e) => Ok(vec![json!({"KV": kv_json(key, e, true)})]),
            None => Err(format!("key {key:?} doesn't exist")),
        },
        "get-or-empty" => match store.data.kv.get(key) {
            Some(e) => Ok(vec![json!({"KV": kv_json(key, e, true)})]),
            None => Ok(vec![json!({"KV": {
                "LockIndex": 0, "Key": key, "Flags": op.flags, "Value": null,
                "CreateIndex": 0, "ModifyIndex": 0
            }})]),
        },
        "get-tree" => Ok(store
            .entries_under(key)
            .map(|(k, e)| json!({"KV": kv_json(k, e, true)}))
            .collect()),
        "check-index" => match store.data.kv.get(key) {
            None => Err(format!("failed to check index, key {key:?} doesn't exist")),
            Some(e) if e.modify_index != op.index => Err(format!(
                "failed index check for key {key:?}, current modify index {} != {}",
                e.modify_index, op.index
            )),
            Some(e) => Ok(blank(e)),
        },
        "check-session" => match store.data.kv.get(key) {
            None => Err(format!(
                "failed to check session, key {key:?} doesn't exist"
            )),
            Some(e) if e.session.as_deref().unwrap_or_default() != op.session => Err(format!(
                "failed session check for key {key:?}, current session {:?} != {:?}",
                e.session.as_deref().unwrap_or_default(),
                op.session
            )),
            Some(e) => Ok(blank(e)),
        },
        "check-not-exists" => match store.data.kv.get(key) {
            Some(_) => Err(format!("key {key:?} exists")),
            None => Ok(Vec::new()),
        },
        "delete" => {
            store.kv_delete(tx, key);
            Ok(Vec::new())
        }
        "delete-cas" => {
            if store.kv_delete_cas(tx, key, op.index) {
                Ok(Vec::new())
            } else {
                Err(format!("failed to delete key {key:?}, index is stale"))
            }
        }
        "delete-tree" => {
            store.kv_delete_tree(tx, key);
            Ok(Vec::new())
        }
        other => Err(format!("unknown KV verb {other:?}")),
    }
}

fn error_json(i: usize, what: &str) -> Value {
    json!({"OpIndex": i, "What": what})
}

/// `PUT /v1/txn`.
pub(crate) fn txn(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    let max_len = state.cfg.txn_max_req_len.max(state.cfg.kv_max_value_size);
    if body.len() > max_len {
        return Err(ApiError::new(
            413,
            format!("Request body too large, max size: {max_len} bytes"),
        ));
    }
    let ops = parse_ops(body)?;
    if ops.len() > MAX_TXN_OPS {
        return Err(ApiError::new(
            413,
            format!(
                "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
                ops.len()
            ),
        ));
    }
    for op in ops.iter().flatten() {
        if op.value.len() > state.cfg.kv_max_value_size {
            return Err(ApiError::new(
                413,
                format!(
                    "Value for key {:?} is too large ({} > {} bytes)",
                    op.key,
                    op.value.len(),
                    state.cfg.kv_max_value_size
                ),
            ));
        }
    }
    let writes = ops
        .iter()
        .any(|o| o.as_ref().is_some_and(|o| is_write(&o.verb)));
    let read_only = !writes;
    if read_only {
        web::read_opts(state, req)?;
    } else {
        web::check_dc(state, req)?;
    }
    let authz = web::authz(state, req)?;

    let mut store = state.store.lock();
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Some(op) => {
                if let Err(e) = pre_check(&store, &authz, op) {
                    errors.push(error_json(i, &e));
                }
            }
            None => errors.push(error_json(
                i,
                "Node, Service and Check operations are not supported by the simulator",
            )),
        }
    }
    let mut results = Vec::new();
    if errors.is_empty() {
        let mut tx = store.begin(&state.clock);
        for (i, op) in ops.iter().enumerate() {
            let Some(op) = op else { continue };
            match run_op(&mut store, &mut tx, op) {
                Ok(r) => results.extend(r),
                Err(e) => errors.push(error_json(i, &e)),
            }
        }
        if errors.is_empty() && !read_only {
            store.commit(&state.clock, tx);
        } else {
            store.rollback(tx);
        }
    }
    drop(store);

    // Results the token may not read are dropped (FilterTxnResults).
    results.retain(|r| {
        r["KV"]["Key"]
            .as_str()
            .is_none_or(|k| authz.allows(Res::Key, Access::Read, k))
    });
    let conflict = !errors.is_empty();
    let mut out = Map::new();
    out.insert(
        "Results".into(),
        if conflict {
            Value::Null
        } else {
            Value::Array(results)
        },
    );
    out.insert(
        "Errors".into(),
        if conflict {
            Value::Array(errors)
        } else {
            Value::Null
        },
    );
    let known = web::known_leader(state);
    if read_only {
        out.insert("Index".into(), 0.into());
        out.insert("LastContact".into(), 0.into());
        out.insert("KnownLeader".into(), known.into());
        out.insert("ConsistencyLevel".into(), "".into());
        out.insert("NotModified".into(), false.into());
        out.insert("Backend".into(), 0.into());
        out.insert("ResultsFilteredByACLs".into(), false.into());
    }
    let value = Value::Object(out);
    let mut resp = web::json(state, req, &value);
    if conflict {
        *resp.status_mut() = http::StatusCode::CONFLICT;
    }
    if read_only {
        let h = resp.headers_mut();
        h.insert(
            "x-consul-knownleader",
            http::HeaderValue::from_static(if known { "true" } else { "false" }),
        );
        h.insert("x-consul-lastcontact", http::HeaderValue::from_static("0"));
    }
    Ok(resp.into_response())
}
