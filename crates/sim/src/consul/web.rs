//! What every Consul endpoint shares: query parsing, the datacenter and consistency
//! checks, ACL resolution, blocking waits over the change log, and responses with
//! Consul's headers (`X-Consul-Index`, `X-Consul-KnownLeader`, `X-Consul-LastContact`,
//! `X-Consul-Default-ACL-Policy`; JSON only on success, plain-text errors).

use super::ConsulState;
use super::acl::{AclError, Authz};
use super::store::{Store, Watch};
use crate::Product;
use crate::blocking::{BlockingParams, OnRestore, wait_for_change};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::collections::HashMap;

/// An error answer: status and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub msg: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            msg: msg.into(),
        }
    }
    pub(crate) fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::new(400, msg)
    }
    pub(crate) fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(500, msg)
    }
}

impl From<AclError> for ApiError {
    fn from(e: AclError) -> ApiError {
        ApiError::new(403, e.to_string())
    }
}

/// The result type of handlers.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// A parsed request: query parameters (flags like `?recurse` have empty values) and
/// the caller's token.
#[derive(Debug, Default)]
pub(crate) struct Req {
    pairs: Vec<(String, String)>,
    map: HashMap<String, String>,
    pub token: Option<String>,
}

impl Req {
    pub(crate) fn new(raw_query: Option<&str>, headers: &HeaderMap) -> Req {
        let mut pairs = Vec::new();
        if let Some(q) = raw_query {
            for part in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                pairs.push((form_decode(k), form_decode(v)));
            }
        }
        let mut map = HashMap::new();
        for (k, v) in &pairs {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let token = crate::acl::request_token(Product::Consul, headers, &map);
        Req { pairs, map, token }
    }

    /// Whether the parameter is present (with or without a value).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The first value of a parameter.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Every value of a repeatable parameter.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The parameters re-encoded the way Go's `url.Values.Encode` does (sorted by key).
    pub(crate) fn encode_sorted(&self) -> String {
        let mut pairs = self.pairs.clone();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub(crate) fn map(&self) -> &HashMap<String, String> {
        &self.map
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space).
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The checks every forwarded RPC does: the datacenter must be ours.
pub(crate) fn check_dc(state: &ConsulState, req: &Req) -> Result<(), ApiError> {
    match req.get("dc") {
        Some(dc) if !dc.is_empty() && dc != state.cfg.datacenter => {
            Err(ApiError::internal("No path to datacenter"))
        }
        _ => Ok(()),
    }
}

/// A read's options: consistency mode and blocking parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOpts {
    pub blocking: BlockingParams,
    pub stale: bool,
    pub consistent: bool,
}

/// Parses the read options with Consul's errors (400 `Invalid wait time`, `Invalid
/// index`, `Cannot specify ?stale with ?consistent, conflicting semantics.`).
pub(crate) fn read_opts(state: &ConsulState, req: &Req) -> Result<ReadOpts, ApiError> {
    check_dc(state, req)?;
    let blocking =
        BlockingParams::consul(req.map()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let stale = req.has("stale");
    let consistent = req.has("consistent");
    if stale && consistent {
        return Err(ApiError::bad_request(
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ));
    }
    Ok(ReadOpts {
        blocking,
        stale,
        consistent,
    })
}

/// Resolves the caller's token.
pub(crate) fn authz(state: &ConsulState, req: &Req) -> Result<Authz, ApiError> {
    Ok(state.acl.resolve(req.token.as_deref())?)
}

/// Waits (blocking query) until something `watch` covers changes, the index the read
/// would report moves, or the wait ends. `index_of` computes that index from the
/// store; it is evaluated once up front and again only after a relevant change, so a
/// waiter costs O(new changes) per write, not a scan of its data.
pub(crate) async fn block(
    state: &ConsulState,
    opts: &ReadOpts,
    watch: &Watch,
    index_of: impl Fn(&Store) -> u64,
) {
    if opts.blocking.index == 0 {
        return;
    }
    let mut cursor: Option<u64> = None;
    let wanted = opts.blocking.index;
    wait_for_change(&state.clock, OnRestore::Answer, opts.blocking, || {
        let store = state.store.lock();
        let now = store.changes.cursor();
        match cursor {
            None => {
                cursor = Some(now);
                index_of(&store).max(1)
            }
            Some(from) => {
                cursor = Some(now);
                if store.changes.any_since(from, watch) {
                    index_of(&store).max(1)
                } else {
                    wanted
                }
            }
        }
    })
    .await;
}

/// Metadata for a read's response headers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meta {
    pub index: u64,
    pub filtered: bool,
    /// Catalog and health reads also report `X-Consul-Effective-Consistency`.
    pub consistency: Option<&'static str>,
}

impl Meta {
    pub(crate) fn index(index: u64) -> Meta {
        Meta {
            index: index.max(1),
            ..Meta::default()
        }
    }
}

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""))
}

/// Adds `X-Consul-Default-ACL-Policy` (every response).
pub(crate) fn add_acl_header(state: &ConsulState, resp: &mut Response) {
    resp.headers_mut().insert(
        "x-consul-default-acl-policy",
        HeaderValue::from_static(state.acl.default_policy()),
    );
}

/// Adds the blocking-query headers.
pub(crate) fn add_meta(state: &ConsulState, resp: &mut Response, meta: &Meta) {
    let h = resp.headers_mut();
    h.insert("x-consul-index", header(&meta.index.max(1).to_string()));
    h.insert(
        "x-consul-knownleader",
        header(&known_leader(state).to_string()),
    );
    h.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    if let Some(c) = meta.consistency {
        h.insert(
            "x-consul-effective-consistency",
            HeaderValue::from_static(c),
        );
    }
    if meta.filtered {
        h.insert(
            "x-consul-results-filtered-by-acls",
            HeaderValue::from_static("true"),
        );
    }
}

/// Whether the datacenter has a leader (leader-loss fault).
pub(crate) fn known_leader(state: &ConsulState) -> bool {
    state.faults.leader_known(Product::Consul)
}

/// Serialises like Go's `json.Marshal` (compact) or, with `?pretty`, `MarshalIndent`
/// with four spaces and a trailing newline.
pub(crate) fn to_body(req: &Req, value: &serde_json::Value) -> Vec<u8> {
    if req.has("pretty") {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        if serde::Serialize::serialize(value, &mut ser).is_ok() {
            out.push(b'\n');
            return out;
        }
    }
    serde_json::to_vec(value).unwrap_or_default()
}

/// A 200 JSON answer without blocking metadata (writes).
pub(crate) fn json(state: &ConsulState, req: &Req, value: &serde_json::Value) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        to_body(req, value),
    )
        .into_response();
    add_acl_header(state, &mut resp);
    resp
}

/// A 200 JSON answer with blocking metadata (reads).
pub(crate) fn json_meta(
    state: &ConsulState,
    req: &Req,
    value: &serde_json::Value,
    meta: &Meta,
) -> Response {
    let mut resp = json(state, req, value);
    add_meta(state, &mut resp, meta);
    resp
}

/// A 200 JSON answer with blocking metadata whose body is already serialised
/// (compact; callers handle `?pretty` themselves).
pub(crate) fn raw_json_meta(state: &ConsulState, body: Vec<u8>, meta: &Meta) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    add_acl_header(state, &mut resp);
    add_meta(state, &mut resp, meta);
    resp
}

/// A 404 with an empty body and no Content-Type, but the blocking headers (KV reads).
pub(crate) fn not_found_meta(state: &ConsulState, meta: &Meta) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::empty())
        .unwrap_or_default();
    add_meta(state, &mut resp, meta);
    add_acl_header(state, &mut resp);
    resp
}

/// A 200 with an empty body (agent registration endpoints).
pub(crate) fn empty_ok(state: &ConsulState) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .unwrap_or_default();
    add_acl_header(state, &mut resp);
    resp
}

/// A plain-text error answer.
pub(crate) fn error(state: &ConsulState, e: &ApiError) -> Response {
    let mut resp = crate::product::error_response(Product::Consul, e.status, &e.msg);
    add_acl_header(state, &mut resp);
    resp
}

/// Turns a handler result into a response.
pub(crate) fn finish(state: &ConsulState, r: ApiResult) -> Response {
    match r {
        Ok(resp) => resp,
        Err(e) => error(state, &e),
    }
}

/// Consul's answer to a method a route does not support.
pub(crate) fn method_not_allowed(state: &ConsulState, method: &http::Method) -> Response {
    error(
        state,
        &ApiError::new(405, format!("method {method} not allowed")),
    )
}

/// Go's `time.ParseDuration` error text, for messages that quote it.
pub(crate) fn go_duration_error(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        format!("time: missing unit in duration {}", super::acl::go_quote(s))
    } else {
        format!("time: invalid duration {}", super::acl::go_quote(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_flags_and_repeats() {
        let r = Req::new(Some("recurse&tag=a&tag=b%20c&x=1+2"), &HeaderMap::new());
        assert!(r.has("recurse"));
        assert_eq!(r.get("recurse"), Some(""));
        assert_eq!(r.all("tag"), vec!["a", "b c"]);
        assert_eq!(r.get("x"), Some("1 2"));
        assert_eq!(r.encode_sorted(), "recurse=&tag=a&tag=b+c&x=1+2");
    }

    #[test]
    fn go_duration_errors_match_go() {
        assert_eq!(
            go_duration_error("10"),
            "time: missing unit in duration \"10\""
        );
        assert_eq!(go_duration_error("x"), "time: invalid duration \"x\"");
    }
}
