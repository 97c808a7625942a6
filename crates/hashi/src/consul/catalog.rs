//! Consul health, catalog, status and agent basics (reference §5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Product, Result};
use crate::request::{QueryOptions, RequestSpec, WriteOptions};
use crate::response::{RawResponse, Response};
use crate::util::{encode_segment, null_default};

/// The node part of a health entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthNode {
    /// Node ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Node name.
    #[serde(default)]
    pub node: String,
    /// Address.
    #[serde(default)]
    pub address: String,
    /// Datacenter.
    #[serde(default)]
    pub datacenter: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A service instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceInstance {
    /// Kind (`""`, `connect-proxy`, `api-gateway`...).
    #[serde(default)]
    pub kind: String,
    /// Instance ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Meta.
    #[serde(default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Port.
    #[serde(default)]
    pub port: u16,
    /// Address (empty = node address).
    #[serde(default)]
    pub address: String,
    /// Other fields (Proxy, Connect, Weights...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One health check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// Check ID.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `passing`, `warning` or `critical`.
    #[serde(default)]
    pub status: String,
    /// Service ID.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// Output.
    #[serde(default)]
    pub output: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entry of `GET /v1/health/service/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntry {
    /// Node.
    pub node: HealthNode,
    /// Service instance.
    pub service: ServiceInstance,
    /// Checks.
    #[serde(default, deserialize_with = "null_default")]
    pub checks: Vec<HealthCheck>,
}

/// `GET /v1/health/service/<name>[?passing]` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty name or bad options.
pub fn health_service(name: &str, passing_only: bool, opts: &QueryOptions) -> Result<RequestSpec> {
    if name.is_empty() {
        return Err(Error::invalid_argument("service name is empty"));
    }
    let mut spec = RequestSpec::get(format!("/v1/health/service/{}", encode_segment(name)));
    if passing_only {
        spec = spec.flag("passing");
    }
    opts.apply(Product::Consul, spec)
}

/// Decodes a health list.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_health_service(raw: &RawResponse) -> Result<Response<Vec<ServiceEntry>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<ServiceEntry>>>()?
        .map(Option::unwrap_or_default))
}

/// Body of `PUT /v1/catalog/register`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogRegistration {
    /// Node name.
    pub node: String,
    /// Node address.
    pub address: String,
    /// Service to register on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceInstance>,
    /// Checks, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Value>>,
    /// Do not touch node-level data.
    #[serde(default)]
    pub skip_node_update: bool,
    /// Other fields (Datacenter, NodeMeta, TaggedAddresses...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `PUT /v1/catalog/register`. Answer: `true`.
///
/// # Errors
/// `InvalidArgument` when the registration does not serialize or has no node.
pub fn catalog_register(reg: &CatalogRegistration, opts: &WriteOptions) -> Result<RequestSpec> {
    if reg.node.is_empty() {
        return Err(Error::invalid_argument("catalog registration needs a node"));
    }
    let body = serde_json::to_value(reg)
        .map_err(|e| Error::invalid_argument(format!("registration does not serialize: {e}")))?;
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::put("/v1/catalog/register").json(body),
    ))
}

/// `PUT /v1/catalog/deregister` of a service (or the whole node when `service_id` is
/// `None`). Answer: `true`.
///
/// # Errors
/// `InvalidArgument` for an empty node.
pub fn catalog_deregister(
    node: &str,
    service_id: Option<&str>,
    opts: &WriteOptions,
) -> Result<RequestSpec> {
    if node.is_empty() {
        return Err(Error::invalid_argument(
            "catalog deregistration needs a node",
        ));
    }
    let mut body = Map::new();
    body.insert("Node".into(), Value::String(node.to_owned()));
    if let Some(id) = service_id {
        body.insert("ServiceID".into(), Value::String(id.to_owned()));
    }
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::put("/v1/catalog/deregister").json(Value::Object(body)),
    ))
}

/// `GET /v1/catalog/services` (blocking-capable): service name → tags.
///
/// # Errors
/// `InvalidArgument` for bad options.
pub fn catalog_services(opts: &QueryOptions) -> Result<RequestSpec> {
    opts.apply(Product::Consul, RequestSpec::get("/v1/catalog/services"))
}

/// Decodes the service map.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_catalog_services(
    raw: &RawResponse,
) -> Result<Response<BTreeMap<String, Vec<String>>>> {
    let r = raw.json_with_meta::<Option<BTreeMap<String, Option<Vec<String>>>>>()?;
    Ok(r.map(|m| {
        m.unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    }))
}

/// `GET /v1/status/leader`.
pub fn status_leader() -> RequestSpec {
    RequestSpec::get("/v1/status/leader")
}

/// Decodes the leader address; `None` when there is no leader (empty string).
///
/// # Errors
/// `Decode` for anything but a JSON string.
pub fn parse_status_leader(raw: &RawResponse) -> Result<Option<String>> {
    let s: String = raw.json()?;
    Ok((!s.is_empty()).then_some(s))
}

/// The parts of `GET /v1/agent/self` Steward uses; `raw` holds everything.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSelf {
    /// `Config.Datacenter`.
    pub datacenter: String,
    /// `Config.NodeName`.
    pub node_name: String,
    /// `Config.Version`.
    pub version: String,
    /// The whole answer.
    pub raw: Value,
}

/// `GET /v1/agent/self`.
pub fn agent_self() -> RequestSpec {
    RequestSpec::get("/v1/agent/self")
}

/// Decodes the agent's self description.
///
/// # Errors
/// `Decode` for a body that is not a JSON object.
pub fn parse_agent_self(raw: &RawResponse) -> Result<AgentSelf> {
    let v: Value = raw.json()?;
    if !v.is_object() {
        return Err(raw.decode_error("agent/self is not an object"));
    }
    let cfg = |k: &str| {
        v.pointer(&format!("/Config/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(AgentSelf {
        datacenter: cfg("Datacenter"),
        node_name: cfg("NodeName"),
        version: cfg("Version"),
        raw: v,
    })
}
