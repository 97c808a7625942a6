//! `/v1/kv/<key>`: reads (single, `recurse`, `keys`, `raw`), writes (`flags`, `cas`,
//! `acquire`, `release`) and deletes (`recurse`, `cas`), reference §2.

use super::ConsulState;
use super::acl::{Access, Res};
use super::store::{KvOut, Watch, kv_json};
use super::web::{self, ApiError, ApiResult, Meta, Req};
use axum::response::IntoResponse;
use serde_json::Value;

/// File-like suffixes the main-branch key validation refuses (cache deception).
const SUSPICIOUS_EXTENSIONS: &[&str] = &[
    ".js", ".css", ".html", ".htm", ".xml", ".json", ".txt", ".log", ".php", ".asp", ".jsp",
    ".cgi", ".pl", ".py", ".rb", ".sh", ".exe", ".dll", ".bat", ".cmd", ".com", ".scr", ".vbs",
    ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".zip", ".rar", ".tar", ".gz",
    ".7z", ".bz2", ".jpg", ".jpeg", ".png", ".gif", ".svg", ".ico", ".bmp", ".mp3", ".mp4", ".avi",
    ".mov", ".wmv", ".flv", ".swf", ".woff", ".woff2", ".ttf", ".eot", ".otf",
];

/// Key validation as on Consul's main branch (reference §2.4): 400 with a message that
/// quotes the allowed pattern. Keys with `//` were never usable (Go's mux rewrites the
/// path); they are refused here too.
pub(crate) fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.contains("../") || key.contains("..\\") {
        return Err(ApiError::bad_request(
            "URL path contains invalid traversal sequence",
        ));
    }
    if key.starts_with('/') {
        return Err(ApiError::bad_request("key must not begin with a '/'"));
    }
    for (i, c) in key.char_indices() {
        let ok = c.is_ascii_alphanumeric() || matches!(c, ',' | '-' | '_' | '.' | '/');
        if !ok {
            return Err(ApiError::bad_request(format!(
                "key contains invalid character '{c}' at position {i}. Only alphanumeric characters and ,-_./ are allowed"
            )));
        }
    }
    if key == ".." || key.ends_with("/..") {
        return Err(ApiError::bad_request(
            "key contains path traversal sequence",
        ));
    }
    if key.contains("//") {
        return Err(ApiError::bad_request(
            "key contains an empty path segment ('//')",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if let Some(ext) = SUSPICIOUS_EXTENSIONS.iter().find(|e| lower.ends_with(*e)) {
        return Err(ApiError::bad_request(format!(
            "key contains suspicious file extension '{ext}' that may be cached by proxies"
        )));
    }
    Ok(())
}

/// Refuses requests that combine flags which do not compose (400 `Conflicting flags`).
fn conflicting(req: &Req, flags: &[&str]) -> Result<(), ApiError> {
    if flags.iter().filter(|f| req.has(f)).count() > 1 {
        return Err(ApiError::bad_request(format!(
            "Conflicting flags: {}\n",
            req.encode_sorted()
        )));
    }
    Ok(())
}

/// Go's `strconv.ParseUint` error, which Consul answers with 500.
fn parse_u64(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        let reason = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        ApiError::internal(format!("strconv.ParseUint: parsing {raw:?}: {reason}"))
    })
}

/// `GET /v1/kv/<key>`.
pub(crate) async fn get(state: &ConsulState, req: &Req, key: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    if !key.is_empty() {
        validate_key(key)?;
    }
    let authz = web::authz(state, req)?;
    if req.has("keys") {
        return list_keys(state, req, &opts, &authz, key).await;
    }
    if req.has("recurse") {
        web::block(state, &opts, &Watch::Prefix(key.to_string()), |s| {
            s.kv_prefix_index(key)
        })
        .await;
        let store = state.store.lock();
        let index = store.kv_prefix_index(key);
        let mut filtered = false;
        let readable = store.entries_under(key).filter(|(k, _)| {
            let ok = authz.allows(Res::Key, Access::Read, k);
            filtered |= !ok;
            ok
        });
        // Compact listings are written straight from the entries (the same JSON).
        let pretty = req.has("pretty");
        let mut entries: Vec<Value> = Vec::new();
        let mut raw: Vec<u8> = Vec::new();
        for (k, e) in readable {
            if pretty {
                entries.push(kv_json(k, e, true));
            } else {
                raw.push(if raw.is_empty() { b'[' } else { b',' });
                let _ = serde_json::to_writer(&mut raw, &KvOut(k, e));
            }
        }
        drop(store);
        let meta = Meta {
            index,
            filtered,
            consistency: None,
        };
        if entries.is_empty() && raw.is_empty() {
            return Ok(web::not_found_meta(state, &meta));
        }
        if !pretty {
            raw.push(b']');
            return Ok(web::raw_json_meta(state, raw, &meta));
        }
        return Ok(web::json_meta(state, req, &Value::Array(entries), &meta));
    }
    if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    }
    authz.check(Res::Key, Access::Read, key)?;
    web::block(state, &opts, &Watch::Key(key.to_string()), |s| {
        s.kv_key_index(key)
    })
    .await;
    let store = state.store.lock();
    let index = store.kv_key_index(key);
    let entry = store.data.kv.get(key).cloned();
    drop(store);
    let meta = Meta::index(index);
    let Some(entry) = entry else {
        return Ok(web::not_found_meta(state, &meta));
    };
    if req.has("raw") {
        let mut resp = (
            http::StatusCode::OK,
            [
                (http::header::CONTENT_TYPE, "text/plain"),
                (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (http::header::CONTENT_SECURITY_POLICY, "sandbox"),
            ],
            entry.value,
        )
            .into_response();
        web::add_meta(state, &mut resp, &meta);
        web::add_acl_header(state, &mut resp);
        return Ok(resp);
    }
    Ok(web::json_meta(
        state,
        req,
        &Value::Array(vec![kv_json(key, &entry, true)]),
        &meta,
    ))
}

async fn list_keys(
    state: &ConsulState,
    req: &Req,
    opts: &web::ReadOpts,
    authz: &super::acl::Authz,
    prefix: &str,
) -> ApiResult {
    // The misspelling `seperator` is accepted; `separator` wins when both are given.
    let sep = req
        .get("separator")
        .or_else(|| req.get("seperator"))
        .unwrap_or_default()
        .to_string();
    web::block(state, opts, &Watch::Prefix(prefix.to_string()), |s| {
        s.kv_prefix_index(prefix)
    })
    .await;
    let store = state.store.lock();
    let index = store.kv_prefix_index(prefix);
    let mut keys: Vec<String> = Vec::new();
    let mut filtered = false;
    for (k, _) in store.entries_under(prefix) {
        if !authz.allows(Res::Key, Access::Read, k) {
            filtered = true;
            continue;
        }
        if sep.is_empty() {
            keys.push(k.clone());
            continue;
        }
        let after = &k[prefix.len()..];
        match after.find(sep.as_str()) {
            Some(i) => {
                let collapsed = &k[..prefix.len() + i + sep.len()];
                if keys.last().map(String::as_str) != Some(collapsed) {
                    keys.push(collapsed.to_string());
                }
            }
            None => keys.push(k.clone()),
        }
    }
    drop(store);
    let meta = Meta {
        index,
        filtered,
        consistency: None,
    };
    if keys.is_empty() && !prefix.is_empty() {
        return Ok(web::not_found_meta(state, &meta));
    }
    let body = Value::Array(keys.into_iter().map(Value::String).collect());
    Ok(web::json_meta(state, req, &body, &meta))
}

/// `PUT /v1/kv/<key>`.
pub(crate) fn put(state: &ConsulState, req: &Req, key: &str, body: &[u8]) -> ApiResult {
    web::check_dc(state, req)?;
    if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    }
    validate_key(key)?;
    conflicting(req, &["cas", "acquire", "release"])?;
    let authz = web::authz(state, req)?;
    let flags = match req.get("flags") {
        Some(raw) => parse_u64(raw)?,
        None => 0,
    };
    let cas = req.get("cas").map(parse_u64).transpose()?;
    let max = state.cfg.kv_max_value_size;
    if body.len() > max {
        return Err(ApiError::new(
            413,
            format!(
                "Request body({} bytes) too large, max size: {max} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
                body.len()
            ),
        ));
    }
    authz.check(Res::Key, Access::Write, key)?;
    let value = body.to_vec();
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    let outcome = if let Some(session) = req.get("acquire") {
        if store.lock_delay_active(key) {
            Ok(false)
        } else {
            store
                .kv_lock(&mut tx, key, value, flags, session)
                .map(|r| r.is_some())
        }
    } else if let Some(session) = req.get("release") {
        store
            .kv_unlock(&mut tx, key, value, flags, session)
            .map(|r| r.is_some())
    } else if let Some(cas) = cas {
        Ok(store.kv_cas(&mut tx, key, value, flags, cas).is_some())
    } else {
        store.kv_set(&mut tx, key, value, flags, None, false, 0);
        Ok(true)
    };
    match outcome {
        Ok(ok) => {
            store.commit(&state.clock, tx);
            drop(store);
            Ok(web::json(state, req, &Value::Bool(ok)))
        }
        Err(msg) => {
            store.rollback(tx);
            Err(ApiError::internal(msg))
        }
    }
}

/// `DELETE /v1/kv/<key>`.
pub(crate) fn delete(state: &ConsulState, req: &Req, key: &str) -> ApiResult {
    web::check_dc(state, req)?;
    if !key.is_empty() {
        validate_key(key)?;
    }
    conflicting(req, &["recurse", "cas"])?;
    let authz = web::authz(state, req)?;
    let recurse = req.has("recurse");
    if !recurse && key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    }
    let cas = req.get("cas").map(parse_u64).transpose()?;
    if recurse {
        authz.check_key_write_prefix(key)?;
    } else {
        authz.check(Res::Key, Access::Write, key)?;
    }
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    let result = if recurse {
        store.kv_delete_tree(&mut tx, key);
        true
    } else if let Some(cas) = cas {
        store.kv_delete_cas(&mut tx, key, cas)
    } else {
        store.kv_delete(&mut tx, key);
        true
    };
    store.commit(&state.clock, tx);
    drop(store);
    Ok(web::json(state, req, &Value::Bool(result)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn steward_keys_are_valid() {
        for k in [
            "steward/specs/trading/order-api",
            "steward/status/trading/order-api",
            "steward/leader",
            "a,b-c_d.e/f",
        ] {
            assert!(validate_key(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn invalid_keys_get_the_main_branch_messages() {
        let msg = |k: &str| validate_key(k).unwrap_err().msg;
        assert_eq!(
            msg("a b"),
            "key contains invalid character ' ' at position 1. Only alphanumeric characters and ,-_./ are allowed"
        );
        assert!(msg("50%").contains("'%' at position 2"));
        assert_eq!(msg("/lead"), "key must not begin with a '/'");
        assert_eq!(
            msg("a/../b"),
            "URL path contains invalid traversal sequence"
        );
        assert!(msg("a//b").contains("//"));
        assert_eq!(
            msg("specs/web.json"),
            "key contains suspicious file extension '.json' that may be cached by proxies"
        );
    }
}
