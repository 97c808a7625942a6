//! The shapes of the config entry kinds, as the Go structs define them.
//!
//! Decoding mirrors Consul's `DecodeConfigEntry` (mapstructure): field names match
//! case-insensitively (and snake_case aliases by ignoring `_`), input is weakly typed,
//! and every key that matches no field is reported as `invalid config key "<path>"`.
//! Encoding mirrors Go's `encoding/json` on those structs: fields in struct order,
//! `omitempty` fields dropped when empty, nested (non-pointer) structs always present,
//! durations as Go duration strings.

use serde_json::{Map, Number, Value};

/// The type of one field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    Str,
    Int,
    Uint,
    Float,
    Bool,
    /// `*int`/`*bool`: emitted when set, even when zero.
    OptScalar,
    /// `time.Duration` with Consul's custom marshalling: a Go duration string.
    Dur,
    /// `time.Duration` without custom marshalling: integer nanoseconds.
    DurNs,
    /// `map[string]string`.
    MapStr,
    /// `map[string]interface{}` / `interface{}`: passed through.
    Any,
    /// A map of structs (`map[string]T`).
    MapOf(&'static [Field]),
    /// A slice.
    List(&'static Ty),
    /// A non-pointer struct: always emitted.
    Obj(&'static [Field]),
    /// A pointer to a struct: `null`/omitted when absent.
    Ptr(&'static [Field]),
    /// `*time.Time`: RFC 3339 string or null.
    Time,
}

/// One struct field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// `json:",omitempty"`.
    pub omit: bool,
}

const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        omit: false,
    }
}

const fn o(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        omit: true,
    }
}

/// Whether two names match as mapstructure matches them: case-insensitively,
/// ignoring `_` and `-` (compared in place, without building normalised copies).
fn norm_eq(a: &str, b: &str) -> bool {
    fn chars(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
    }
    chars(a).eq(chars(b))
}

/// Decodes `input` against a struct schema. Unknown keys are appended to `unused`
/// with their path (`Sources[0].Actoin`).
pub(crate) fn decode(
    schema: &[Field],
    input: &Map<String, Value>,
    path: &str,
    unused: &mut Vec<String>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in input {
        match schema.iter().find(|fld| norm_eq(fld.name, k)) {
            Some(fld) => {
                let p = join(path, fld.name);
                let val = decode_value(&fld.ty, v, &p, unused)?;
                out.insert(fld.name.to_string(), val);
            }
            None => unused.push(join(path, k)),
        }
    }
    Ok(out)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn type_err(path: &str, want: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    };
    format!("'{path}' expected type '{want}', got unconvertible type '{got}'")
}

fn decode_value(ty: &Ty, v: &Value, path: &str, unused: &mut Vec<String>) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match ty {
        Ty::Str => match v {
            Value::String(_) => v.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(if *b { "1".into() } else { "0".into() }),
            _ => return Err(type_err(path, "string", v)),
        },
        Ty::Int | Ty::Uint => match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.into(),
                None => n
                    .as_f64()
                    .map(|x| Value::from(x.trunc() as i64))
                    .unwrap_or_else(|| v.clone()),
            },
            Value::String(s) if s.is_empty() => 0.into(),
            Value::String(s) => s.parse::<i64>().map(Value::from).map_err(|_| {
                format!(
                    "cannot parse '{path}' as int: strconv.ParseInt: parsing {s:?}: invalid syntax"
                )
            })?,
            Value::Bool(b) => i64::from(*b).into(),
            _ => return Err(type_err(path, "int", v)),
        },
        Ty::Float => match v {
            Value::Number(_) => v.clone(),
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("cannot parse '{path}' as float: {s:?}"))?,
            _ => return Err(type_err(path, "float32", v)),
        },
        Ty::Bool => match v {
            Value::Bool(_) => v.clone(),
            Value::Number(n) => Value::Bool(n.as_f64().unwrap_or(0.0) != 0.0),
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Value::Bool(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Value::Bool(false),
                _ => {
                    return Err(format!(
                        "cannot parse '{path}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
                    ));
                }
            },
            _ => return Err(type_err(path, "bool", v)),
        },
        Ty::OptScalar | Ty::Any => v.clone(),
        Ty::Dur | Ty::DurNs => match v {
            Value::String(s) => {
                let d = crate::blocking::parse_go_duration(s)
                    .ok_or_else(|| super::super::web::go_duration_error(s))?;
                Value::from(d.as_nanos() as u64)
            }
            Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0).max(0.0) as u64),
            _ => return Err(type_err(path, "time.Duration", v)),
        },
        Ty::MapStr => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    let s = match x {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                        other => return Err(type_err(&format!("{path}[{k}]"), "string", other)),
                    };
                    out.insert(k.clone(), Value::String(s));
                }
                Value::Object(out)
            }
            _ => return Err(type_err(path, "map[string]string", v)),
        },
        Ty::MapOf(schema) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    let p = format!("{path}[{k}]");
                    let Value::Object(obj) = x else {
                        return Err(type_err(&p, "struct", x));
                    };
                    out.insert(k.clone(), Value::Object(decode(schema, obj, &p, unused)?));
                }
                Value::Object(out)
            }
            _ => return Err(type_err(path, "map", v)),
        },
        Ty::List(inner) => {
            // mapstructure's WeakDecodeFromSlice also accepts a single value.
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.into_iter().enumerate() {
                out.push(decode_value(inner, x, &format!("{path}[{i}]"), unused)?);
            }
            Value::Array(out)
        }
        Ty::Obj(schema) | Ty::Ptr(schema) => match v {
            Value::Object(m) => Value::Object(decode(schema, m, path, unused)?),
            // HCL-style single-element lists of blocks.
            Value::Array(a) if a.len() == 1 && a[0].is_object() => match &a[0] {
                Value::Object(m) => Value::Object(decode(schema, m, path, unused)?),
                _ => Value::Null,
            },
            _ => return Err(type_err(path, "struct", v)),
        },
        Ty::Time => match v {
            Value::String(_) => v.clone(),
            _ => return Err(type_err(path, "time.Time", v)),
        },
    })
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
    }
}

/// Encodes a decoded map the way Go's `json.Marshal` encodes the struct.
pub(crate) fn encode(schema: &[Field], v: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for fld in schema {
        let val = v.get(fld.name);
        if let Some(enc) = encode_field(fld, val) {
            out.insert(fld.name.to_string(), enc);
        }
    }
    out
}

fn encode_field(fld: &Field, val: Option<&Value>) -> Option<Value> {
    match fld.ty {
        Ty::Obj(schema) => {
            let empty = Map::new();
            let m = val.and_then(Value::as_object).unwrap_or(&empty);
            return Some(Value::Object(encode(schema, m)));
        }
        Ty::Ptr(schema) => {
            return match val.and_then(Value::as_object) {
                Some(m) => Some(Value::Object(encode(schema, m))),
                None if fld.omit => None,
                None => Some(Value::Null),
            };
        }
        Ty::OptScalar => {
            return match val {
                None | Some(Value::Null) if fld.omit => None,
                None => Some(Value::Null),
                Some(v) => Some(v.clone()),
            };
        }
        _ => {}
    }
    if fld.omit && is_empty(val) {
        return None;
    }
    Some(encode_value(&fld.ty, val))
}

fn encode_value(ty: &Ty, val: Option<&Value>) -> Value {
    let val = val.filter(|v| !v.is_null());
    match ty {
        Ty::Str => val.cloned().unwrap_or_else(|| Value::String(String::new())),
        Ty::Int | Ty::Uint | Ty::Float => val.cloned().unwrap_or_else(|| 0.into()),
        Ty::Bool => val.cloned().unwrap_or(Value::Bool(false)),
        Ty::Dur => {
            let ns = val.and_then(Value::as_u64).unwrap_or(0);
            Value::String(crate::blocking::format_go_duration(
                std::time::Duration::from_nanos(ns),
            ))
        }
        Ty::DurNs => val.cloned().unwrap_or_else(|| 0.into()),
        Ty::MapStr | Ty::Any | Ty::OptScalar | Ty::Time => val.cloned().unwrap_or(Value::Null),
        Ty::MapOf(schema) => match val.and_then(Value::as_object) {
            Some(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let empty = Map::new();
                        (
                            k.clone(),
                            Value::Object(encode(schema, x.as_object().unwrap_or(&empty))),
                        )
                    })
                    .collect(),
            ),
            None => Value::Null,
        },
        Ty::List(inner) => match val.and_then(Value::as_array) {
            Some(a) => Value::Array(
                a.iter()
                    .map(|x| match inner {
                        Ty::Obj(s) | Ty::Ptr(s) => {
                            let empty = Map::new();
                            Value::Object(encode(s, x.as_object().unwrap_or(&empty)))
                        }
                        other => encode_value(other, Some(x)),
                    })
                    .collect(),
            ),
            None => Value::Null,
        },
        Ty::Obj(schema) | Ty::Ptr(schema) => {
            let empty = Map::new();
            Value::Object(encode(
                schema,
                val.and_then(Value::as_object).unwrap_or(&empty),
            ))
        }
    }
}

// ----- the kinds -----------------------------------------------------------------

const STRS: Ty = Ty::List(&Ty::Str);

static TRANSPARENT_PROXY: &[Field] = &[
    o("OutboundListenerPort", Ty::Int),
    o("DialedDirectly", Ty::Bool),
];
static MESH_GATEWAY: &[Field] = &[o("Mode", Ty::Str)];
static EXPOSE_PATH: &[Field] = &[
    o("ListenerPort", Ty::Int),
    o("Path", Ty::Str),
    o("LocalPathPort", Ty::Int),
    o("Protocol", Ty::Str),
    o("ParsedFromCheck", Ty::Bool),
];
static EXPOSE: &[Field] = &[
    o("Checks", Ty::Bool),
    o("Paths", Ty::List(&Ty::Obj(EXPOSE_PATH))),
];
static LIMITS: &[Field] = &[
    o("MaxConnections", Ty::OptScalar),
    o("MaxPendingRequests", Ty::OptScalar),
    o("MaxConcurrentRequests", Ty::OptScalar),
];
static PASSIVE_HEALTH_CHECK: &[Field] = &[
    o("Interval", Ty::DurNs),
    o("MaxFailures", Ty::Uint),
    o("EnforcingConsecutive5xx", Ty::OptScalar),
    o("MaxEjectionPercent", Ty::OptScalar),
    o("BaseEjectionTime", Ty::OptScalar),
];
static UPSTREAM_CONFIG: &[Field] = &[
    o("Name", Ty::Str),
    o("Namespace", Ty::Str),
    o("Partition", Ty::Str),
    f("Peer", Ty::Str),
    o("EnvoyListenerJSON", Ty::Str),
    o("EnvoyClusterJSON", Ty::Str),
    o("Protocol", Ty::Str),
    o("ConnectTimeoutMs", Ty::Int),
    o("Limits", Ty::Ptr(LIMITS)),
    o("PassiveHealthCheck", Ty::Ptr(PASSIVE_HEALTH_CHECK)),
    f("MeshGateway", Ty::Obj(MESH_GATEWAY)),
    o("BalanceOutboundConnections", Ty::Str),
];
static UPSTREAM_CONFIGURATION: &[Field] = &[
    o("Overrides", Ty::List(&Ty::Ptr(UPSTREAM_CONFIG))),
    o("Defaults", Ty::Ptr(UPSTREAM_CONFIG)),
];
static DESTINATION: &[Field] = &[o("Addresses", STRS), o("Port", Ty::Int)];
static ENVOY_EXTENSION: &[Field] = &[
    f("Name", Ty::Str),
    f("Required", Ty::Bool),
    f("Arguments", Ty::Any),
    f("ConsulVersion", Ty::Str),
    f("EnvoyVersion", Ty::Str),
];

/// `service-defaults`.
pub(crate) static SERVICE_DEFAULTS: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Protocol", Ty::Str),
    o("Mode", Ty::Str),
    o("TransparentProxy", Ty::Obj(TRANSPARENT_PROXY)),
    o("MutualTLSMode", Ty::Str),
    o("MeshGateway", Ty::Obj(MESH_GATEWAY)),
    o("Expose", Ty::Obj(EXPOSE)),
    o("ExternalSNI", Ty::Str),
    o("UpstreamConfig", Ty::Ptr(UPSTREAM_CONFIGURATION)),
    o("Destination", Ty::Ptr(DESTINATION)),
    o("MaxInboundConnections", Ty::Int),
    o("LocalConnectTimeoutMs", Ty::Int),
    o("LocalRequestTimeoutMs", Ty::Int),
    o("BalanceInboundConnections", Ty::Str),
    o("RateLimits", Ty::Any),
    o("EnvoyExtensions", Ty::List(&Ty::Obj(ENVOY_EXTENSION))),
    o("Meta", Ty::MapStr),
];

static ACCESS_LOGS: &[Field] = &[
    o("Enabled", Ty::Bool),
    o("DisableListenerLogs", Ty::Bool),
    o("Type", Ty::Str),
    o("Path", Ty::Str),
    o("JSONFormat", Ty::Str),
    o("TextFormat", Ty::Str),
];
static FAILOVER_POLICY: &[Field] = &[o("Mode", Ty::Str), o("Regions", STRS)];
static PRIORITIZE: &[Field] = &[o("Mode", Ty::Str)];

/// `proxy-defaults`.
pub(crate) static PROXY_DEFAULTS: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Config", Ty::Any),
    o("Mode", Ty::Str),
    o("TransparentProxy", Ty::Obj(TRANSPARENT_PROXY)),
    o("MutualTLSMode", Ty::Str),
    o("MeshGateway", Ty::Obj(MESH_GATEWAY)),
    o("Expose", Ty::Obj(EXPOSE)),
    o("AccessLogs", Ty::Obj(ACCESS_LOGS)),
    o("EnvoyExtensions", Ty::List(&Ty::Obj(ENVOY_EXTENSION))),
    o("FailoverPolicy", Ty::Ptr(FAILOVER_POLICY)),
    o("PrioritizeByLocality", Ty::Ptr(PRIORITIZE)),
    o("Meta", Ty::MapStr),
];

static HEADER_MATCH: &[Field] = &[
    f("Name", Ty::Str),
    o("Present", Ty::Bool),
    o("Exact", Ty::Str),
    o("Prefix", Ty::Str),
    o("Suffix", Ty::Str),
    o("Regex", Ty::Str),
    o("Invert", Ty::Bool),
];
static QUERY_MATCH: &[Field] = &[
    f("Name", Ty::Str),
    o("Present", Ty::Bool),
    o("Exact", Ty::Str),
    o("Regex", Ty::Str),
];
static ROUTE_HTTP_MATCH: &[Field] = &[
    o("PathExact", Ty::Str),
    o("PathPrefix", Ty::Str),
    o("PathRegex", Ty::Str),
    o("Header", Ty::List(&Ty::Obj(HEADER_MATCH))),
    o("QueryParam", Ty::List(&Ty::Obj(QUERY_MATCH))),
    o("Methods", STRS),
];
static ROUTE_MATCH: &[Field] = &[o("HTTP", Ty::Ptr(ROUTE_HTTP_MATCH))];
static HEADER_MODIFIERS: &[Field] = &[
    o("Add", Ty::MapStr),
    o("Set", Ty::MapStr),
    o("Remove", STRS),
];
static ROUTE_DESTINATION: &[Field] = &[
    o("RequestTimeout", Ty::Dur),
    o("IdleTimeout", Ty::Dur),
    o("Service", Ty::Str),
    o("ServiceSubset", Ty::Str),
    o("Namespace", Ty::Str),
    o("Partition", Ty::Str),
    o("PrefixRewrite", Ty::Str),
    o("NumRetries", Ty::Uint),
    o("RetryOnConnectFailure", Ty::Bool),
    o("RetryOn", STRS),
    o("RetryOnStatusCodes", Ty::List(&Ty::Uint)),
    o("RequestHeaders", Ty::Ptr(HEADER_MODIFIERS)),
    o("ResponseHeaders", Ty::Ptr(HEADER_MODIFIERS)),
];
static ROUTE: &[Field] = &[
    o("Match", Ty::Ptr(ROUTE_MATCH)),
    o("Destination", Ty::Ptr(ROUTE_DESTINATION)),
];

/// `service-router`.
pub(crate) static SERVICE_ROUTER: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Routes", Ty::List(&Ty::Obj(ROUTE))),
    o("Meta", Ty::MapStr),
];

static SPLIT: &[Field] = &[
    f("Weight", Ty::Float),
    o("Service", Ty::Str),
    o("ServiceSubset", Ty::Str),
    o("Namespace", Ty::Str),
    o("Partition", Ty::Str),
    o("RequestHeaders", Ty::Ptr(HEADER_MODIFIERS)),
    o("ResponseHeaders", Ty::Ptr(HEADER_MODIFIERS)),
];

/// `service-splitter`.
pub(crate) static SERVICE_SPLITTER: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Splits", Ty::List(&Ty::Obj(SPLIT))),
    o("Meta", Ty::MapStr),
];

static SUBSET: &[Field] = &[o("Filter", Ty::Str), o("OnlyPassing", Ty::Bool)];

/// `service-resolver`.
pub(crate) static SERVICE_RESOLVER: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    o("DefaultSubset", Ty::Str),
    o("Subsets", Ty::MapOf(SUBSET)),
    o("Redirect", Ty::Any),
    o("Failover", Ty::Any),
    o("ConnectTimeout", Ty::Dur),
    o("RequestTimeout", Ty::Dur),
    o("PrioritizeByLocality", Ty::Ptr(PRIORITIZE)),
    o("LoadBalancer", Ty::Any),
    o("Meta", Ty::MapStr),
];

/// The pre-1.7 kinds Steward does not write: kept with their given fields.
pub(crate) static SDS: &[Field] = &[o("ClusterName", Ty::Str), o("CertResource", Ty::Str)];
static GATEWAY_TLS: &[Field] = &[
    f("Enabled", Ty::Bool),
    o("TLSMinVersion", Ty::Str),
    o("TLSMaxVersion", Ty::Str),
    o("CipherSuites", STRS),
    o("SDS", Ty::Ptr(SDS)),
];
static SERVICE_TLS: &[Field] = &[o("SDS", Ty::Ptr(SDS))];
static INGRESS_SERVICE: &[Field] = &[
    f("Name", Ty::Str),
    f("Hosts", STRS),
    o("TLS", Ty::Ptr(SERVICE_TLS)),
    o("RequestHeaders", Ty::Ptr(HEADER_MODIFIERS)),
    o("ResponseHeaders", Ty::Ptr(HEADER_MODIFIERS)),
    o("MaxConnections", Ty::Uint),
    o("MaxPendingRequests", Ty::Uint),
    o("MaxConcurrentRequests", Ty::Uint),
    o("PassiveHealthCheck", Ty::Ptr(PASSIVE_HEALTH_CHECK)),
];
static INGRESS_LISTENER: &[Field] = &[
    f("Port", Ty::Int),
    f("Protocol", Ty::Str),
    f("Services", Ty::List(&Ty::Obj(INGRESS_SERVICE))),
    o("TLS", Ty::Ptr(GATEWAY_TLS)),
];
static INGRESS_DEFAULTS: &[Field] = &[
    o("MaxConnections", Ty::Uint),
    o("MaxPendingRequests", Ty::Uint),
    o("MaxConcurrentRequests", Ty::Uint),
    o("PassiveHealthCheck", Ty::Ptr(PASSIVE_HEALTH_CHECK)),
];

/// `ingress-gateway`.
pub(crate) static INGRESS_GATEWAY: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("TLS", Ty::Obj(GATEWAY_TLS)),
    f("Listeners", Ty::List(&Ty::Obj(INGRESS_LISTENER))),
    o("Meta", Ty::MapStr),
    o("Defaults", Ty::Ptr(INGRESS_DEFAULTS)),
];

static PERMISSION_HTTP: &[Field] = &[
    o("PathExact", Ty::Str),
    o("PathPrefix", Ty::Str),
    o("PathRegex", Ty::Str),
    o("Header", Ty::List(&Ty::Obj(HEADER_MATCH))),
    o("Methods", STRS),
];
static PERMISSION: &[Field] = &[
    f("Action", Ty::Str),
    o("HTTP", Ty::Ptr(PERMISSION_HTTP)),
    o("JWT", Ty::Any),
];
static SOURCE: &[Field] = &[
    f("Name", Ty::Str),
    o("Action", Ty::Str),
    o("Permissions", Ty::List(&Ty::Ptr(PERMISSION))),
    f("Precedence", Ty::Int),
    o("LegacyID", Ty::Str),
    f("Type", Ty::Str),
    o("Description", Ty::Str),
    o("LegacyMeta", Ty::MapStr),
    o("LegacyCreateTime", Ty::Time),
    o("LegacyUpdateTime", Ty::Time),
    o("Peer", Ty::Str),
    o("SamenessGroup", Ty::Str),
];

/// `service-intentions`.
pub(crate) static SERVICE_INTENTIONS: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Sources", Ty::List(&Ty::Ptr(SOURCE))),
    o("JWT", Ty::Any),
    o("Meta", Ty::MapStr),
];

static RESOURCE_REF: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("SectionName", Ty::Str),
];
static CONDITION: &[Field] = &[
    f("Type", Ty::Str),
    f("Status", Ty::Str),
    f("Reason", Ty::Str),
    f("Message", Ty::Str),
    f("Resource", Ty::Ptr(RESOURCE_REF)),
    f("LastTransitionTime", Ty::Time),
];
static STATUS: &[Field] = &[f("Conditions", Ty::List(&Ty::Obj(CONDITION)))];
static APIGW_TLS: &[Field] = &[
    f("Certificates", Ty::List(&Ty::Obj(RESOURCE_REF))),
    f("MaxVersion", Ty::Str),
    f("MinVersion", Ty::Str),
    f("CipherSuites", STRS),
];
static APIGW_LISTENER: &[Field] = &[
    f("Name", Ty::Str),
    f("Hostname", Ty::Str),
    f("Port", Ty::Int),
    f("Protocol", Ty::Str),
    f("TLS", Ty::Obj(APIGW_TLS)),
    o("Override", Ty::Any),
    o("Default", Ty::Any),
];

/// `api-gateway`.
pub(crate) static API_GATEWAY: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Listeners", Ty::List(&Ty::Obj(APIGW_LISTENER))),
    f("Status", Ty::Obj(STATUS)),
    o("Meta", Ty::MapStr),
];

static HTTP_HEADER_MATCH: &[Field] =
    &[f("Match", Ty::Str), f("Name", Ty::Str), f("Value", Ty::Str)];
static HTTP_PATH_MATCH: &[Field] = &[f("Match", Ty::Str), f("Value", Ty::Str)];
static HTTP_MATCH: &[Field] = &[
    f("Headers", Ty::List(&Ty::Obj(HTTP_HEADER_MATCH))),
    f("Method", Ty::Str),
    f("Path", Ty::Obj(HTTP_PATH_MATCH)),
    f("Query", Ty::List(&Ty::Obj(HTTP_HEADER_MATCH))),
];
static HTTP_HEADER_FILTER: &[Field] = &[
    f("Add", Ty::MapStr),
    f("Remove", STRS),
    f("Set", Ty::MapStr),
];
static URL_REWRITE: &[Field] = &[f("Path", Ty::Str)];
static RETRY_FILTER: &[Field] = &[
    f("NumRetries", Ty::OptScalar),
    f("RetryOn", STRS),
    f("RetryOnStatusCodes", Ty::List(&Ty::Uint)),
    f("RetryOnConnectFailure", Ty::OptScalar),
];
static TIMEOUT_FILTER: &[Field] = &[f("RequestTimeout", Ty::DurNs), f("IdleTimeout", Ty::DurNs)];
static HTTP_FILTERS: &[Field] = &[
    f("Headers", Ty::List(&Ty::Obj(HTTP_HEADER_FILTER))),
    f("URLRewrite", Ty::Ptr(URL_REWRITE)),
    f("RetryFilter", Ty::Ptr(RETRY_FILTER)),
    f("TimeoutFilter", Ty::Ptr(TIMEOUT_FILTER)),
    o("JWT", Ty::Any),
];
static HTTP_RESPONSE_FILTERS: &[Field] = &[f("Headers", Ty::List(&Ty::Obj(HTTP_HEADER_FILTER)))];
static HTTP_SERVICE: &[Field] = &[
    f("Name", Ty::Str),
    f("Weight", Ty::Int),
    f("Filters", Ty::Obj(HTTP_FILTERS)),
    f("ResponseFilters", Ty::Obj(HTTP_RESPONSE_FILTERS)),
];
static HTTP_RULE: &[Field] = &[
    f("Filters", Ty::Obj(HTTP_FILTERS)),
    f("ResponseFilters", Ty::Obj(HTTP_RESPONSE_FILTERS)),
    f("Matches", Ty::List(&Ty::Obj(HTTP_MATCH))),
    f("Services", Ty::List(&Ty::Obj(HTTP_SERVICE))),
];

/// `http-route`.
pub(crate) static HTTP_ROUTE: &[Field] = &[
    f("Kind", Ty::Str),
    f("Name", Ty::Str),
    f("Parents", Ty::List(&Ty::Obj(RESOURCE_REF))),
    f("Rules", Ty::List(&Ty::Obj(HTTP_RULE))),
    f("Hostnames", STRS),
    o("Meta", Ty::MapStr),
    f("Status", Ty::Obj(STATUS)),
];

/// The schema of a kind this simulator models field by field.
pub(crate) fn schema_for(kind: &str) -> Option<&'static [Field]> {
    Some(match kind {
        "service-defaults" => SERVICE_DEFAULTS,
        "proxy-defaults" => PROXY_DEFAULTS,
        "service-router" => SERVICE_ROUTER,
        "service-splitter" => SERVICE_SPLITTER,
        "service-resolver" => SERVICE_RESOLVER,
        "ingress-gateway" => INGRESS_GATEWAY,
        "service-intentions" => SERVICE_INTENTIONS,
        "api-gateway" => API_GATEWAY,
        "http-route" => HTTP_ROUTE,
        _ => return None,
    })
}

/// Every kind Consul knows (`MakeConfigEntry`); the ones without a schema are stored
/// with the fields they were given.
pub const ALL_KINDS: &[&str] = &[
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "http-route",
    "tcp-route",
    "file-system-certificate",
    "inline-certificate",
    "control-plane-request-limit",
    "jwt-provider",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn names_match_case_insensitively_ignoring_underscores_and_dashes() {
        assert!(norm_eq("MaxConnections", "max_connections"));
        assert!(norm_eq("MaxConnections", "max-connections"));
        assert!(norm_eq("MaxConnections", "MAXCONNECTIONS"));
        assert!(norm_eq("TLS", "t_l_s"));
        assert!(!norm_eq("MaxConnections", "MaxConnection"));
        assert!(!norm_eq("Name", "Names"));
        assert!(norm_eq("", "_-"));
        // Non-ASCII lower-cases like Go's strings.ToLower does per character.
        assert!(norm_eq("Ärger", "äRGER"));
    }

    #[test]
    fn decoding_reports_unknown_keys_with_their_path() {
        let input = json!({"Kind": "service-intentions", "Name": "a",
            "Sources": [{"Name": "b", "Actoin": "allow"}]});
        let mut unused = Vec::new();
        decode(
            SERVICE_INTENTIONS,
            input.as_object().unwrap(),
            "",
            &mut unused,
        )
        .unwrap();
        assert_eq!(unused, vec!["Sources[0].Actoin"]);
    }

    #[test]
    fn encoding_follows_go_struct_rules() {
        let mut unused = Vec::new();
        let input =
            json!({"kind": "service-defaults", "name": "web", "protocol": "http", "Meta": {}});
        let d = decode(
            SERVICE_DEFAULTS,
            input.as_object().unwrap(),
            "",
            &mut unused,
        )
        .unwrap();
        assert!(unused.is_empty());
        let e = encode(SERVICE_DEFAULTS, &d);
        assert_eq!(
            Value::Object(e),
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http",
                "TransparentProxy": {}, "MeshGateway": {}, "Expose": {}})
        );
    }

    #[test]
    fn durations_round_trip_as_go_strings() {
        let mut unused = Vec::new();
        let input = json!({"Kind": "service-router", "Name": "r", "Routes": [
            {"Destination": {"Service": "x", "RequestTimeout": "5s", "request_timeout": "5s"}}]});
        let d = decode(SERVICE_ROUTER, input.as_object().unwrap(), "", &mut unused).unwrap();
        let e = Value::Object(encode(SERVICE_ROUTER, &d));
        assert_eq!(e["Routes"][0]["Destination"]["RequestTimeout"], "5s");
    }
}
