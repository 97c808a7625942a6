//! Consul config entries: `/v1/config` put/get/list/delete (reference §4), typed structs
//! for the kinds Steward writes (unknown fields kept in `extra`) and raw JSON for any kind.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Product, Result};
use crate::request::{Idempotency, QueryOptions, RequestSpec, WriteOptions};
use crate::response::{RawResponse, Response};
use crate::util::{encode_segment, null_default};

/// A typed config entry of one kind.
pub trait ConfigEntry: Serialize + DeserializeOwned {
    /// The `Kind` string.
    const KIND: &'static str;
    /// The entry name.
    fn name(&self) -> &str;
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

macro_rules! kind_default {
    ($f:ident, $k:literal) => {
        fn $f() -> String {
            $k.to_owned()
        }
    };
}
kind_default!(kind_service_defaults, "service-defaults");
kind_default!(kind_service_intentions, "service-intentions");
kind_default!(kind_http_route, "http-route");

/// `service-defaults` (reference §4.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceDefaults {
    /// Always `service-defaults`.
    #[serde(default = "kind_service_defaults")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Protocol (`tcp`, `http`, `http2`, `grpc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Ownership labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub meta: BTreeMap<String, String>,
    /// Create index (read-only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_index: u64,
    /// Modify index (read-only; use it as `cas`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modify_index: u64,
    /// Every other field, kept as returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServiceDefaults {
    /// A new entry for `name` with `protocol`.
    pub fn new(name: impl Into<String>, protocol: impl Into<String>) -> Self {
        Self {
            kind: kind_service_defaults(),
            name: name.into(),
            protocol: Some(protocol.into()),
            meta: BTreeMap::new(),
            create_index: 0,
            modify_index: 0,
            extra: Map::new(),
        }
    }
}

impl ConfigEntry for ServiceDefaults {
    const KIND: &'static str = "service-defaults";
    fn name(&self) -> &str {
        &self.name
    }
}

/// An HTTP match of an L7 intention permission.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionHttp {
    /// Exact path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_exact: Option<String>,
    /// Path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Path regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// Methods (upper case).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub methods: Vec<String>,
    /// Header matches, kept raw.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub header: Vec<Value>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One L7 permission.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionPermission {
    /// `allow` or `deny`.
    pub action: String,
    /// HTTP match.
    #[serde(rename = "HTTP", default, skip_serializing_if = "Option::is_none")]
    pub http: Option<IntentionHttp>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One source of a `service-intentions` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionSource {
    /// Source service (`*` = any).
    pub name: String,
    /// L4 action (`allow`/`deny`); exclusive with `permissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// L7 permissions.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub permissions: Vec<IntentionPermission>,
    /// Precedence (computed by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precedence: Option<u32>,
    /// Source type (`consul`, filled in by the server).
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other fields (Peer, Namespace, Legacy*...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `service-intentions` (reference §4.3): one entry per destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceIntentions {
    /// Always `service-intentions`.
    #[serde(default = "kind_service_intentions")]
    pub kind: String,
    /// Destination service.
    pub name: String,
    /// Sources (the server re-sorts them by precedence).
    #[serde(default, deserialize_with = "null_default")]
    pub sources: Vec<IntentionSource>,
    /// Ownership labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub meta: BTreeMap<String, String>,
    /// Create index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_index: u64,
    /// Modify index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modify_index: u64,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServiceIntentions {
    /// An entry for destination `name`.
    pub fn new(name: impl Into<String>, sources: Vec<IntentionSource>) -> Self {
        Self {
            kind: kind_service_intentions(),
            name: name.into(),
            sources,
            meta: BTreeMap::new(),
            create_index: 0,
            modify_index: 0,
            extra: Map::new(),
        }
    }
}

impl ConfigEntry for ServiceIntentions {
    const KIND: &'static str = "service-intentions";
    fn name(&self) -> &str {
        &self.name
    }
}

/// A parent reference of a route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteParent {
    /// Parent kind (`api-gateway`).
    pub kind: String,
    /// Parent name.
    pub name: String,
    /// Listener name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub section_name: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `http-route` (reference §4.6). Rules are kept as JSON: the renderer owns their shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpRoute {
    /// Always `http-route`.
    #[serde(default = "kind_http_route")]
    pub kind: String,
    /// Route name.
    pub name: String,
    /// Gateways the route attaches to.
    #[serde(default, deserialize_with = "null_default")]
    pub parents: Vec<RouteParent>,
    /// Host names.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub hostnames: Vec<String>,
    /// Rules.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<Value>,
    /// Ownership labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub meta: BTreeMap<String, String>,
    /// Status written by Consul's controller (never send it back; strip before diffing).
    #[serde(default, skip_serializing)]
    pub status: Option<Value>,
    /// Create index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_index: u64,
    /// Modify index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modify_index: u64,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfigEntry for HttpRoute {
    const KIND: &'static str = "http-route";
    fn name(&self) -> &str {
        &self.name
    }
}

fn check_kind_name(kind: &str, name: Option<&str>) -> Result<()> {
    if kind.is_empty() || kind.contains('/') {
        return Err(Error::invalid_argument(format!(
            "bad config entry kind {kind:?}"
        )));
    }
    if let Some(n) = name
        && n.is_empty()
    {
        return Err(Error::invalid_argument("config entry name is empty"));
    }
    Ok(())
}

/// `PUT /v1/config[?cas=N]` with the entry JSON (typed or raw; must carry `Kind` and
/// `Name`). Answer: [`parse_bool`] (`false` = CAS failed).
///
/// # Errors
/// `InvalidArgument` when the entry does not serialize to an object with Kind and Name.
pub fn put<T: Serialize + ?Sized>(entry: &T, opts: &WriteOptions) -> Result<RequestSpec> {
    let body = serde_json::to_value(entry)
        .map_err(|e| Error::invalid_argument(format!("config entry does not serialize: {e}")))?;
    let has = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !has("Kind") || !has("Name") {
        return Err(Error::invalid_argument("config entry needs Kind and Name"));
    }
    let mut spec = RequestSpec::put("/v1/config").json(body);
    if let Some(cas) = opts.cas {
        spec = spec.query("cas", cas).idempotency(Idempotency::CasGuarded);
    }
    Ok(opts.apply_scope(Product::Consul, spec))
}

/// Decodes `true`/`false`.
///
/// # Errors
/// `Decode` for anything else.
pub fn parse_bool(raw: &RawResponse) -> Result<bool> {
    raw.bool()
}

/// `GET /v1/config/<kind>/<name>` (blocking-capable); 404 is `None`.
///
/// # Errors
/// `InvalidArgument` for an empty kind or name, or bad options.
pub fn get(kind: &str, name: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_kind_name(kind, Some(name))?;
    opts.apply(
        Product::Consul,
        RequestSpec::get(format!(
            "/v1/config/{}/{}",
            encode_segment(kind),
            encode_segment(name)
        ))
        .accept(&[404]),
    )
}

/// Decodes one entry (`None` on 404, metadata either way).
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_get<T: DeserializeOwned>(raw: &RawResponse) -> Result<Response<Option<T>>> {
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response { value: None, meta });
    }
    Ok(Response {
        value: Some(raw.json()?),
        meta,
    })
}

/// `GET /v1/config/<kind>` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty kind or bad options.
pub fn list(kind: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_kind_name(kind, None)?;
    opts.apply(
        Product::Consul,
        RequestSpec::get(format!("/v1/config/{}", encode_segment(kind))),
    )
}

/// Decodes a list of entries.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_list<T: DeserializeOwned>(raw: &RawResponse) -> Result<Response<Vec<T>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<T>>>()?
        .map(Option::unwrap_or_default))
}

/// `DELETE /v1/config/<kind>/<name>[?cas=N]`. Answer: [`parse_delete`].
///
/// # Errors
/// `InvalidArgument` for an empty kind or name.
pub fn delete(kind: &str, name: &str, opts: &WriteOptions) -> Result<RequestSpec> {
    check_kind_name(kind, Some(name))?;
    let mut spec = RequestSpec::delete(format!(
        "/v1/config/{}/{}",
        encode_segment(kind),
        encode_segment(name)
    ));
    if let Some(cas) = opts.cas {
        spec = spec.query("cas", cas).idempotency(Idempotency::CasGuarded);
    }
    Ok(opts.apply_scope(Product::Consul, spec))
}

/// Decodes a delete: non-CAS deletes answer `{}` (success), CAS deletes `true`/`false`.
///
/// # Errors
/// `Decode` for anything else.
pub fn parse_delete(raw: &RawResponse) -> Result<bool> {
    if raw.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(true);
    }
    match raw.json::<Value>()? {
        Value::Bool(b) => Ok(b),
        Value::Object(m) if m.is_empty() => Ok(true),
        other => Err(raw.decode_error(format!("unexpected delete answer {other}"))),
    }
}
