//! Request and response plumbing shared by the Nomad handlers: query parsing,
//! `X-Nomad-*` headers, plain-text errors, ACL checks and blocking reads.

use super::NomadState;
use super::acl::Authz;
use crate::Product;
use crate::blocking::BlockingParams;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use std::collections::HashMap;

/// Percent-decodes a query component (`+` is a space).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed query string.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
    map: HashMap<String, String>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let mut q = Query::default();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let (k, v) = (decode(k), decode(v));
            q.map.entry(k.clone()).or_insert_with(|| v.clone());
            q.pairs.push((k, v));
        }
        q
    }
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    /// A boolean flag (`?purge`, `?purge=true`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some("") => true,
            Some(v) => v.eq_ignore_ascii_case("true") || v == "1",
        }
    }
    pub(crate) fn map(&self) -> &HashMap<String, String> {
        &self.map
    }
    /// The request namespace (`default` when absent).
    pub(crate) fn namespace(&self) -> String {
        match self.get("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        }
    }
}

/// A plain-text Nomad error.
pub(crate) fn error(status: u16, msg: &str) -> Response {
    crate::product::error_response(Product::Nomad, status, msg)
}

/// 403 `Permission denied`.
pub(crate) fn denied() -> Response {
    error(403, "Permission denied")
}

/// Serialises JSON (pretty with `?pretty`).
fn body(v: &Value, q: &Query) -> String {
    if q.has("pretty") {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// A read response with the blocking-query headers.
pub(crate) fn read_ok(state: &NomadState, q: &Query, index: u64, v: &Value) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body(v, q),
    )
        .into_response();
    add_meta(state, resp.headers_mut(), index);
    resp
}

/// A read response whose JSON body is already serialised (compact).
pub(crate) fn read_ok_raw(state: &NomadState, index: u64, body: Vec<u8>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    add_meta(state, resp.headers_mut(), index);
    resp
}

/// A read error that still carries the blocking headers (404 `job not found`).
pub(crate) fn read_err(state: &NomadState, index: u64, status: u16, msg: &str) -> Response {
    let mut resp = error(status, msg);
    add_meta(state, resp.headers_mut(), index);
    resp
}

/// `X-Nomad-Index`, `X-Nomad-KnownLeader`, `X-Nomad-LastContact`.
pub(crate) fn add_meta(state: &NomadState, h: &mut HeaderMap, index: u64) {
    if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
        h.insert("X-Nomad-Index", v);
    }
    let known = state.leader_known();
    h.insert(
        "X-Nomad-KnownLeader",
        HeaderValue::from_static(if known { "true" } else { "false" }),
    );
    h.insert("X-Nomad-LastContact", HeaderValue::from_static("0"));
}

/// A write response: JSON body, `X-Nomad-Index` only.
pub(crate) fn write_ok(q: &Query, index: u64, v: &Value) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body(v, q),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
        resp.headers_mut().insert("X-Nomad-Index", v);
    }
    resp
}

/// A JSON response without index headers.
pub(crate) fn plain_ok(q: &Query, v: &Value) -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body(v, q),
    )
        .into_response()
}

/// Resolves the caller's token (403 on an unknown one).
#[allow(clippy::result_large_err)] // handlers return the error response as is
pub(crate) fn authz(state: &NomadState, headers: &HeaderMap, q: &Query) -> Result<Authz, Response> {
    let token = crate::acl::request_token(Product::Nomad, headers, q.map());
    state
        .acl
        .resolve(token.as_deref())
        .map_err(|msg| error(403, msg))
}

/// Requires a namespace capability.
#[allow(clippy::result_large_err)]
pub(crate) fn require_ns(
    state: &NomadState,
    headers: &HeaderMap,
    q: &Query,
    ns: &str,
    cap: &str,
) -> Result<Authz, Response> {
    let a = authz(state, headers, q)?;
    if a.allow_ns(ns, cap) {
        Ok(a)
    } else {
        Err(denied())
    }
}

/// Parses `index`/`wait` (400 with Nomad's text) and waits for `current` to move.
#[allow(clippy::result_large_err)]
pub(crate) async fn block(
    state: &NomadState,
    q: &Query,
    mut current: impl FnMut() -> u64,
) -> Result<u64, Response> {
    let params = BlockingParams::nomad(q.map()).map_err(|e| error(400, &e.to_string()))?;
    if let Some(stale) = q.get("stale")
        && !(stale.is_empty()
            || stale.eq_ignore_ascii_case("true")
            || stale.eq_ignore_ascii_case("false"))
    {
        return Err(error(400, &format!("Invalid stale value: {stale:?}")));
    }
    Ok(crate::blocking::wait_for_change(
        &state.clock,
        crate::blocking::OnRestore::Rerun,
        params,
        &mut current,
    )
    .await)
}

/// Parses a JSON request body (400 with the decoder's text).
#[allow(clippy::result_large_err)]
pub(crate) fn json_body(bytes: &Bytes) -> Result<Value, Response> {
    if bytes.is_empty() {
        return Err(error(400, "EOF"));
    }
    serde_json::from_slice::<Value>(bytes).map_err(|e| error(400, &e.to_string()))
}
