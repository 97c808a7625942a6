//! `sys/` endpoints: ACL policies (`sys/policies/acl`, legacy `sys/policy`), auth
//! mounts (`sys/auth`), and the unauthenticated `sys/health`, `sys/seal-status`,
//! `sys/init`.

use super::api::{self, Outcome, Resp, VErr, Version};
use super::policy::{self, go_quote};
use super::{Cx, StoredPolicy, VaultState, data_resp, jwt, random_hex};
use axum::response::{IntoResponse, Response};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// Policies that can be neither written nor deleted.
const IMMUTABLE_POLICIES: &[&str] = &["root", "response-wrapping", "control-group"];

// ---------------------------------------------------------------------------
// Health and seal status

/// `GET|HEAD /v1/sys/health`.
pub(super) fn health(
    state: &VaultState,
    method: &Method,
    query: &HashMap<String, String>,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return api::error_response(&VErr::empty(405));
    }
    for flag in ["standbyok", "perfstandbyok"] {
        if let Some(v) = query.get(flag)
            && api::go_parse_bool(v).is_none()
        {
            return api::error_response(&VErr::empty(400));
        }
    }
    let mut codes = HashMap::new();
    for (name, default) in [
        ("uninitcode", 501),
        ("sealedcode", 503),
        ("standbycode", 429),
        ("activecode", 200),
        ("drsecondarycode", 472),
        ("performancestandbycode", 473),
    ] {
        let code = match query.get(name) {
            None => default,
            Some(raw) => match raw.parse::<u16>() {
                Ok(c) if (100..=999).contains(&c) => c,
                _ => return api::error_response(&VErr::empty(400)),
            },
        };
        codes.insert(name, code);
    }
    let sealed = state.ctx.faults.vault_sealed();
    let code = if sealed {
        codes["sealedcode"]
    } else {
        codes["activecode"]
    };
    let inner = state.inner.lock();
    let mut body = Map::new();
    body.insert("initialized".into(), json!(true));
    body.insert("sealed".into(), json!(sealed));
    body.insert("standby".into(), json!(false));
    body.insert("performance_standby".into(), json!(false));
    body.insert("replication_performance_mode".into(), json!("disabled"));
    body.insert("replication_dr_mode".into(), json!("disabled"));
    body.insert(
        "server_time_utc".into(),
        json!(jiff::Timestamp::now().as_second()),
    );
    body.insert("version".into(), json!(state.cfg.version));
    if state.version.at_least(1, 16) {
        body.insert("enterprise".into(), json!(false));
    }
    if !sealed {
        body.insert("cluster_name".into(), json!(inner.cluster_name));
        body.insert("cluster_id".into(), json!(inner.cluster_id));
    }
    if state.version.at_least(1, 16) {
        body.insert("echo_duration_ms".into(), json!(0));
        body.insert("clock_skew_ms".into(), json!(0));
        body.insert("replication_primary_canary_age_ms".into(), json!(0));
    }
    drop(inner);
    if method == Method::HEAD {
        let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
        return (
            status,
            [
                (http::header::CACHE_CONTROL, "no-store"),
                (http::header::CONTENT_TYPE, "application/json"),
            ],
        )
            .into_response();
    }
    api::raw_json(code, &Value::Object(body))
}

/// `GET /v1/sys/seal-status`.
pub(super) fn seal_status(state: &VaultState, method: &Method) -> Response {
    if method != Method::GET {
        return api::error_response(&VErr::empty(405));
    }
    let sealed = state.ctx.faults.vault_sealed();
    let inner = state.inner.lock();
    let mut body = Map::new();
    body.insert("type".into(), json!("shamir"));
    body.insert("initialized".into(), json!(true));
    body.insert("sealed".into(), json!(sealed));
    body.insert("t".into(), json!(1));
    body.insert("n".into(), json!(1));
    body.insert("progress".into(), json!(0));
    body.insert("nonce".into(), json!(""));
    body.insert("version".into(), json!(state.cfg.version));
    if state.version.at_least(1, 10) {
        body.insert("build_date".into(), json!("2024-12-16T14:00:53Z"));
    }
    body.insert("migration".into(), json!(false));
    if !sealed {
        body.insert("cluster_name".into(), json!(inner.cluster_name));
        body.insert("cluster_id".into(), json!(inner.cluster_id));
    }
    body.insert("recovery_seal".into(), json!(false));
    body.insert("storage_type".into(), json!("inmem"));
    api::raw_json(200, &Value::Object(body))
}

/// `/v1/sys/init`: GET reports initialised; initialising again is refused.
pub(super) fn init(method: &Method) -> Response {
    match method.as_str() {
        "GET" => api::raw_json(200, &json!({ "initialized": true })),
        "PUT" | "POST" => api::error_response(&VErr::bad("Vault is already initialized")),
        _ => api::error_response(&VErr::empty(405)),
    }
}

// ---------------------------------------------------------------------------
// ACL policies

fn sanitize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Appends the framework's warning for body fields the path does not declare.
fn with_ignored(cx: &Cx<'_>, known: &[&str], outcome: Outcome) -> Outcome {
    if !cx.state.version.at_least(1, 13) {
        return outcome;
    }
    let unknown = api::unknown_fields(&cx.data, known);
    if unknown.is_empty() {
        return outcome;
    }
    let mut resp = outcome?.unwrap_or_default();
    resp.warnings.push(api::ignored_warning(&unknown));
    Ok(Some(resp))
}

/// LIST `sys/policies/acl`, and the legacy `sys/policy` list (which adds `policies`
/// and copies the data to the top level).
pub(super) fn policy_list(cx: &mut Cx<'_>, legacy: bool) -> Outcome {
    let mut keys: Vec<String> = cx.inner.policies.keys().cloned().collect();
    keys.push("root".into());
    if legacy {
        let mut resp = Resp::data(json!({ "keys": keys, "policies": keys }));
        resp.inject_top = true;
        return Ok(Some(resp));
    }
    Ok(Some(Resp::list(keys)))
}

/// GET `sys/policies/acl/<name>` (`sys/policy/<name>` answers `rules` instead of
/// `policy`).
pub(super) fn policy_read(cx: &mut Cx<'_>, name: &str, legacy: bool) -> Outcome {
    let name = sanitize_name(name);
    let text = if name == "root" {
        String::new()
    } else {
        match cx.inner.policies.get(&name) {
            Some(p) => p.raw.clone(),
            None => return Ok(None),
        }
    };
    let field = if legacy { "rules" } else { "policy" };
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert(field.into(), json!(text));
    let outcome = data_resp(Value::Object(data));
    if legacy {
        return outcome.map(|r| {
            r.map(|mut r| {
                r.inject_top = true;
                r
            })
        });
    }
    outcome
}

/// PUT/POST `sys/policies/acl/<name>`.
pub(super) fn policy_write(cx: &mut Cx<'_>, raw_name: &str, legacy: bool) -> Outcome {
    let known: &[&str] = if legacy {
        &["name", "policy", "rules"]
    } else {
        &["name", "policy"]
    };
    let outcome = policy_write_inner(cx, raw_name, legacy);
    with_ignored(cx, known, outcome)
}

fn policy_write_inner(cx: &mut Cx<'_>, raw_name: &str, legacy: bool) -> Outcome {
    let lower = raw_name.to_lowercase();
    if lower.is_empty() {
        return Err(VErr::bad("policy name must be provided in the URL"));
    }
    let mut warnings = Vec::new();
    if lower != raw_name && cx.state.version.at_least(1, 10) {
        warnings.push(format!("policy name was converted to {lower}"));
    }
    let field = |key: &str| {
        cx.data
            .get(key)
            .map(api::weak_string)
            .transpose()
            .map_err(|e| api::field_error(key, &cx.data[key], &e))
    };
    let mut text = field("policy")?.unwrap_or_default();
    if text.is_empty() && legacy {
        text = field("rules")?.unwrap_or_default();
        warnings.push("'rules' is deprecated, please use 'policy' instead".into());
    }
    if text.is_empty() {
        return Err(VErr::bad("'policy' parameter not supplied or empty"));
    }
    if let Some(decoded) = decode_base64(&text) {
        text = decoded;
    }
    let parsed = policy::parse(&text).map_err(VErr::bad)?;
    let name = sanitize_name(&lower);
    if IMMUTABLE_POLICIES.contains(&name.as_str()) {
        return Err(VErr::bad(format!(
            "cannot update {} policy",
            go_quote(&name)
        )));
    }
    let unchanged = cx.inner.policies.get(&name).is_some_and(|p| p.raw == text);
    if !unchanged {
        cx.inner
            .policies
            .insert(name, StoredPolicy { raw: text, parsed });
        cx.changed = true;
    }
    Ok((!warnings.is_empty()).then(|| Resp::warnings(warnings)))
}

/// Go's `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`).
fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// DELETE `sys/policies/acl/<name>`: 204 also for a policy that does not exist.
pub(super) fn policy_delete(cx: &mut Cx<'_>, name: &str) -> Outcome {
    let name = sanitize_name(name);
    if IMMUTABLE_POLICIES.contains(&name.as_str()) {
        return Err(VErr::bad(format!(
            "cannot delete {} policy",
            go_quote(&name)
        )));
    }
    if name == "default" {
        return Err(VErr::bad("cannot delete default policy"));
    }
    if cx.inner.policies.remove(&name).is_some() {
        cx.changed = true;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Auth mounts

/// One enabled auth method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthMount {
    /// Mount path with a trailing slash, e.g. `jwt-nomad/`.
    pub path: String,
    /// Auth method type (`token`, `jwt`, `oidc`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub accessor: String,
    pub uuid: String,
    pub local: bool,
    pub seal_wrap: bool,
    pub external_entropy_access: bool,
    pub options: Option<BTreeMap<String, String>>,
    pub default_lease_ttl: i64,
    pub max_lease_ttl: i64,
    pub token_type: String,
}

/// Auth method types a real server ships built in. Only `jwt`/`oidc` (and the token
/// store) have simulated endpoints; the others can be mounted and listed.
const BUILTIN_AUTH: &[&str] = &[
    "jwt",
    "oidc",
    "approle",
    "userpass",
    "ldap",
    "kubernetes",
    "cert",
    "github",
    "aws",
    "azure",
    "gcp",
    "okta",
    "radius",
    "alicloud",
    "cf",
    "kerberos",
    "oci",
];

impl AuthMount {
    /// The token store's mount, present from the start.
    pub fn token() -> AuthMount {
        let mut m = AuthMount::new("token/", "token", "token based credentials", None);
        m.options = None;
        m
    }

    /// A new mount with a fresh accessor and UUID.
    pub fn new(
        path: &str,
        kind: &str,
        description: &str,
        options: Option<BTreeMap<String, String>>,
    ) -> AuthMount {
        AuthMount {
            path: path.to_string(),
            kind: kind.to_string(),
            description: description.to_string(),
            accessor: format!("auth_{}_{}", kind.replace('-', "_"), random_hex(8)),
            uuid: uuid::Uuid::new_v4().to_string(),
            local: false,
            seal_wrap: false,
            external_entropy_access: false,
            options: Some(options.unwrap_or_default()),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            token_type: "default-service".into(),
        }
    }

    /// `mountInfo`: the entry as `sys/auth` lists it.
    fn info(&self, version: Version) -> Value {
        let mut info = Map::new();
        info.insert("accessor".into(), json!(self.accessor));
        info.insert(
            "config".into(),
            json!({
                "default_lease_ttl": self.default_lease_ttl,
                "force_no_cache": false,
                "max_lease_ttl": self.max_lease_ttl,
                "token_type": self.token_type,
            }),
        );
        info.insert("description".into(), json!(self.description));
        info.insert(
            "external_entropy_access".into(),
            json!(self.external_entropy_access),
        );
        info.insert("local".into(), json!(self.local));
        info.insert("options".into(), json!(self.options));
        info.insert("seal_wrap".into(), json!(self.seal_wrap));
        info.insert("type".into(), json!(self.kind));
        info.insert("uuid".into(), json!(self.uuid));
        if version.at_least(1, 12) {
            info.insert("deprecation_status".into(), json!("supported"));
            info.insert("plugin_version".into(), json!(""));
            let running = if matches!(self.kind.as_str(), "jwt" | "oidc") {
                format!("v0.{}.0+builtin", version.minor + 4)
            } else {
                format!(
                    "v{}.{}.{}+builtin.vault",
                    version.major, version.minor, version.patch
                )
            };
            info.insert("running_plugin_version".into(), json!(running));
            info.insert("running_sha256".into(), json!(""));
        }
        api::sorted(Value::Object(info))
    }
}

/// `sanitizePath`: no leading slash, one trailing slash.
pub(crate) fn sanitize_mount_path(path: &str) -> String {
    let p = path.trim_start_matches('/');
    if p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// GET `sys/auth`.
pub(super) fn auth_table(cx: &mut Cx<'_>) -> Outcome {
    let version = cx.state.version;
    let data: Map<String, Value> = cx
        .inner
        .mounts
        .values()
        .map(|m| (m.path.clone(), m.info(version)))
        .collect();
    let mut resp = Resp::data(api::sorted(Value::Object(data)));
    resp.inject_top = true;
    Ok(Some(resp))
}

/// GET `sys/auth/<path>` (Vault ≥ 1.10).
pub(super) fn auth_read(cx: &mut Cx<'_>, path: &str) -> Outcome {
    let path = sanitize_mount_path(path);
    match cx.inner.mounts.get(&path) {
        Some(m) => {
            let mut resp = Resp::data(m.info(cx.state.version));
            resp.inject_top = true;
            Ok(Some(resp))
        }
        None => Err(VErr::bad(format!("No auth engine at {path}"))),
    }
}

const ENABLE_FIELDS: &[&str] = &[
    "path",
    "type",
    "description",
    "config",
    "local",
    "seal_wrap",
    "external_entropy_access",
    "plugin_name",
    "plugin_version",
    "options",
];

/// POST `sys/auth/<path>`: enable an auth method.
pub(super) fn auth_enable(cx: &mut Cx<'_>, raw_path: &str) -> Outcome {
    let outcome = auth_enable_inner(cx, raw_path);
    with_ignored(cx, ENABLE_FIELDS, outcome)
}

fn string_field(cx: &Cx<'_>, key: &str) -> Result<String, VErr> {
    match cx.data.get(key) {
        None => Ok(String::new()),
        Some(v) => api::weak_string(v).map_err(|e| api::field_error(key, v, &e)),
    }
}

fn bool_field(cx: &Cx<'_>, key: &str) -> Result<bool, VErr> {
    match cx.data.get(key) {
        None => Ok(false),
        Some(v) => api::parse_bool(v).map_err(|e| api::field_error(key, v, &e)),
    }
}

fn auth_enable_inner(cx: &mut Cx<'_>, raw_path: &str) -> Outcome {
    let path = sanitize_mount_path(raw_path);
    let mut kind = string_field(cx, "type")?;
    let description = string_field(cx, "description")?;
    let local = bool_field(cx, "local")?;
    let seal_wrap = bool_field(cx, "seal_wrap")?;
    let external_entropy_access = bool_field(cx, "external_entropy_access")?;
    let options: BTreeMap<String, String> = match cx.data.get("options") {
        None => BTreeMap::new(),
        Some(v) => api::parse_kv_pairs(v).map_err(|e| api::field_error("options", v, &e))?,
    };
    let config = match cx.data.get("config") {
        None => Map::new(),
        Some(v) => api::parse_map(v).map_err(|e| api::field_error("config", v, &e))?,
    };
    let max = cx.state.cfg.max_lease_ttl_secs as i64;
    let ttl = |key: &str| -> Result<i64, VErr> {
        match config.get(key) {
            None => Ok(0),
            Some(Value::String(s)) if s.is_empty() || s == "system" => Ok(0),
            Some(v) => api::parse_duration_second(v).map_err(|e| {
                VErr::bad(format!(
                    "unable to parse {} of {}: {e}",
                    if key == "default_lease_ttl" {
                        "default TTL"
                    } else {
                        "max TTL"
                    },
                    api::go_fmt(v)
                ))
            }),
        }
    };
    let default_lease_ttl = ttl("default_lease_ttl")?;
    let max_lease_ttl = ttl("max_lease_ttl")?;
    if max_lease_ttl != 0 && default_lease_ttl > max_lease_ttl {
        return Err(VErr::bad(
            "given default lease TTL greater than given max lease TTL",
        ));
    }
    if default_lease_ttl > max && max_lease_ttl == 0 {
        return Err(VErr::bad(format!(
            "given default lease TTL greater than system max lease TTL of {max}"
        )));
    }
    let token_type = match config.get("token_type").map(api::weak_string) {
        None => "default-service".to_string(),
        Some(Ok(t)) => match t.as_str() {
            "" | "default-service" => "default-service".into(),
            "default-batch" | "service" | "batch" => t,
            _ => return Err(VErr::bad("invalid value for 'token_type'")),
        },
        Some(Err(_)) => return Err(VErr::bad("invalid value for 'token_type'")),
    };
    if kind.is_empty() {
        return Err(VErr::bad("backend type must be specified as a string"));
    }
    if kind == "plugin" {
        kind = string_field(cx, "plugin_name")?;
        if kind.is_empty() {
            return Err(VErr::bad("plugin_name must be provided for plugin backend"));
        }
    }
    if options.get("version").is_some_and(|v| !v.is_empty()) {
        return Err(VErr::bad(format!(
            "auth method {} does not allow setting a version",
            go_quote(&kind)
        )));
    }
    if kind == "token" {
        return Err(VErr::bad("token credential backend cannot be instantiated"));
    }
    if !BUILTIN_AUTH.contains(&kind.as_str()) {
        return Err(VErr::bad(format!(
            "plugin not found in the catalog: {kind}"
        )));
    }
    if let Some(conflict) = cx
        .inner
        .mounts
        .keys()
        .find(|m| path.starts_with(m.as_str()) || m.starts_with(path.as_str()))
    {
        return Err(VErr::bad(format!("path is already in use at {conflict}")));
    }
    let mut mount = AuthMount::new(&path, &kind, &description, Some(options));
    mount.local = local;
    mount.seal_wrap = seal_wrap;
    mount.external_entropy_access = external_entropy_access;
    mount.default_lease_ttl = default_lease_ttl;
    mount.max_lease_ttl = max_lease_ttl;
    mount.token_type = token_type;
    if matches!(kind.as_str(), "jwt" | "oidc") {
        cx.inner.jwt.insert(path.clone(), jwt::Backend::default());
    }
    cx.inner.mounts.insert(path, mount);
    cx.changed = true;
    Ok(None)
}

/// DELETE `sys/auth/<path>`: 204 also when nothing is mounted there.
pub(super) fn auth_disable(cx: &mut Cx<'_>, raw_path: &str) -> Outcome {
    let path = sanitize_mount_path(raw_path);
    if path == "token/" {
        return Err(VErr::bad("token credential backend cannot be disabled"));
    }
    if cx.inner.mounts.remove(&path).is_some() {
        cx.inner.jwt.remove(&path);
        cx.changed = true;
    }
    Ok(None)
}

/// GET `sys/auth/<path>/tune`.
pub(super) fn auth_tune_read(cx: &mut Cx<'_>, raw_path: &str) -> Outcome {
    let path = sanitize_mount_path(raw_path);
    let max = cx.state.cfg.max_lease_ttl_secs as i64;
    let Some(m) = cx.inner.mounts.get(&path) else {
        return Err(VErr::bad(format!(
            "cannot fetch sysview for path \"auth/{path}\""
        )));
    };
    let or_system = |v: i64| if v == 0 { max } else { v };
    data_resp(json!({
        "default_lease_ttl": or_system(m.default_lease_ttl),
        "max_lease_ttl": or_system(m.max_lease_ttl),
        "force_no_cache": false,
        "token_type": m.token_type,
        "description": m.description,
        "options": m.options,
    }))
}

/// POST `sys/auth/<path>/tune`: description and lease TTLs.
pub(super) fn auth_tune_write(cx: &mut Cx<'_>, raw_path: &str) -> Outcome {
    let path = sanitize_mount_path(raw_path);
    let description = cx.data.get("description").map(api::weak_string);
    let mut ttls = Vec::new();
    for key in ["default_lease_ttl", "max_lease_ttl"] {
        let value = match cx.data.get(key) {
            None => None,
            Some(Value::String(s)) if s == "system" => Some(0),
            Some(v) => {
                Some(api::parse_duration_second(v).map_err(|e| api::field_error(key, v, &e))?)
            }
        };
        ttls.push(value);
    }
    let Some(m) = cx.inner.mounts.get_mut(&path) else {
        return Err(VErr::bad(format!(
            "cannot fetch sysview for path \"auth/{path}\""
        )));
    };
    if let Some(Ok(d)) = description {
        m.description = d;
    }
    if let Some(v) = ttls[0] {
        m.default_lease_ttl = v;
    }
    if let Some(v) = ttls[1] {
        m.max_lease_ttl = v;
    }
    cx.changed = true;
    Ok(None)
}

// ---------------------------------------------------------------------------
// Capabilities

/// POST `sys/capabilities-self` (the caller's capabilities) and `sys/capabilities`
/// (another token's, named by `token`): `{<path>: [caps], "capabilities": [caps]}`,
/// the last key only for a single path.
pub(super) fn capabilities(cx: &mut Cx<'_>, own: bool) -> Outcome {
    let list = |key: &str| -> Result<Vec<String>, VErr> {
        match cx.data.get(key) {
            None => Ok(Vec::new()),
            Some(v) => api::comma_string_slice(v).map_err(|e| api::field_error(key, v, &e)),
        }
    };
    let mut paths = list("paths")?;
    if paths.is_empty() {
        paths = list("path")?;
    }
    let acl = if own {
        cx.acl.clone()
    } else {
        let secret = string_field(cx, "token")?;
        if secret.is_empty() {
            return Err(VErr::bad("missing token"));
        }
        let now = cx.now;
        let Some(view) = super::token::resolve(cx.inner, cx.state, &secret, now) else {
            return Err(VErr::code(403, "permission denied"));
        };
        super::token::acl_for(cx.inner, cx.state, &view)
    };
    let mut data = Map::new();
    for path in &paths {
        data.insert(path.clone(), json!(acl.capabilities(path)));
    }
    if paths.len() == 1 {
        data.insert("capabilities".into(), json!(acl.capabilities(&paths[0])));
    }
    let mut resp = Resp::data(api::sorted(Value::Object(data)));
    resp.inject_top = true;
    Ok(Some(resp))
}
