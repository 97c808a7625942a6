//! `steward doctor`: read-only checks that the servers are ready for `steward run`.
//!
//! Each check's verdict is a pure function of the servers' answers (status and body);
//! [`gather`] only asks the questions, with GETs (and Vault's capability query, a POST
//! that changes nothing). A product that cannot be reached is reported once, and its
//! other checks are left out rather than failed in a cascade.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};
use steward_hashi::transport::Transport;
use steward_hashi::versions::{self, Version};
use steward_hashi::{Product, RequestSpec};
use steward_operator::OperatorConfig;
use steward_render::GatewayRef;

use crate::args::{DoctorArgs, DoctorOutput};
use crate::cluster::{self, Servers, get_json};
use crate::exit::Exit;

/// The config-entry kinds Steward writes (and lists to watch them).
pub const WRITTEN_KINDS: [&str; 3] = ["service-defaults", "service-intentions", "http-route"];

/// Name used in the Vault paths whose capabilities are probed: it stands for every
/// `steward-<ns>-<name>` policy and role.
pub const PROBE_NAME: &str = "steward-doctor-probe";

/// One check and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `consul`, `nomad` or `vault`.
    pub product: String,
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// For a failed check: what to do, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(product: Product, check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            product: product.to_string(),
            check: check.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(
        product: Product,
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            product: product.to_string(),
            check: check.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

fn addr_var(product: Product) -> &'static str {
    match product {
        Product::Consul => "CONSUL_HTTP_ADDR",
        Product::Nomad => "NOMAD_ADDR",
        Product::Vault => "VAULT_ADDR",
    }
}

fn env_prefix(product: Product) -> &'static str {
    match product {
        Product::Consul => "CONSUL",
        Product::Nomad => "NOMAD",
        Product::Vault => "VAULT",
    }
}

fn token_var(product: Product) -> &'static str {
    match product {
        Product::Consul => "CONSUL_HTTP_TOKEN",
        Product::Nomad => "NOMAD_TOKEN",
        Product::Vault => "VAULT_TOKEN",
    }
}

/// Whether an error means the server never answered (connection or TLS), as opposed
/// to an answer that was an error.
pub fn never_answered(error: &steward_hashi::Error) -> bool {
    matches!(
        error,
        steward_hashi::Error::Tls { .. } | steward_hashi::Error::Unavailable { status: None, .. }
    )
}

/// Reachability from the first request's outcome: any HTTP answer proves it.
pub fn reach_check(product: Product, url: &str, error: Option<&steward_hashi::Error>) -> Check {
    let name = "reachable";
    match error {
        Some(e @ steward_hashi::Error::Tls { .. }) => Check::fail(
            product,
            name,
            format!("TLS handshake with {url} failed: {e}"),
            format!(
                "check {p}_CACERT (the CA that signed the server's certificate) and {p}_TLS_SERVER_NAME",
                p = env_prefix(product)
            ),
        ),
        Some(e) if never_answered(e) => Check::fail(
            product,
            name,
            format!("cannot reach {url}: {e}"),
            format!(
                "start {product} or point {} at it (https:// for TLS)",
                addr_var(product)
            ),
        ),
        _ => Check::pass(product, name, url),
    }
}

pub use steward_hashi::versions::{consul_version, nomad_version, vault_version};

fn product_title(product: Product) -> &'static str {
    match product {
        Product::Consul => "Consul",
        Product::Nomad => "Nomad",
        Product::Vault => "Vault",
    }
}

/// The version against Steward's minimum.
pub fn version_check(product: Product, answer: Result<Option<&str>, String>) -> Check {
    let name = "version";
    let title = product_title(product);
    let min = versions::minimum(product);
    match answer {
        Err(e) => Check::fail(
            product,
            name,
            format!("cannot read the version: {e}"),
            format!("let the {title} token read the agent's own information"),
        ),
        Ok(None) => Check::fail(
            product,
            name,
            "the answer carries no version",
            format!(
                "check that {} points at a {title} server",
                addr_var(product)
            ),
        ),
        Ok(Some(text)) => match Version::parse(text) {
            None => Check::fail(
                product,
                name,
                format!("unreadable version {text:?}"),
                format!(
                    "check that {} points at a {title} server",
                    addr_var(product)
                ),
            ),
            Some(v) if versions::is_supported(product, v) => {
                Check::pass(product, name, format!("{title} {text} (minimum {min})"))
            }
            Some(_) => Check::fail(
                product,
                name,
                format!("{title} {text} is older than {min}, the oldest Steward supports"),
                format!("upgrade {title} to {}.{} or newer", min.major, min.minor),
            ),
        },
    }
}

/// A config-entry kind, from the status and text of `GET /v1/config/<kind>`.
pub fn kind_check(kind: &str, status: u16, text: &str) -> Check {
    let name = format!("config-entry kind {kind}");
    match status {
        200..=299 => Check::pass(Product::Consul, name, "supported"),
        500 if text.contains("invalid config entry kind") => Check::fail(
            Product::Consul,
            name,
            format!("Consul lacks it: {text}"),
            format!(
                "upgrade Consul to {}.{} or newer",
                versions::CONSUL_MIN.major,
                versions::CONSUL_MIN.minor
            ),
        ),
        403 => Check::fail(
            Product::Consul,
            name,
            format!("cannot list it: {text}"),
            "give the Consul token read and write on services, intentions and the mesh \
             (service_prefix \"\" { policy = \"write\" intentions = \"write\" }, mesh = \"write\")",
        ),
        _ => Check::fail(
            Product::Consul,
            name,
            format!("cannot list it: HTTP {status}: {text}"),
            "see Consul's logs for the cause",
        ),
    }
}

/// The token of Consul or Nomad, from the status and body of `GET /v1/acl/token/self`.
/// With ACLs off the servers answer `ACL support disabled` (Consul 401, Nomad 400).
pub fn acl_token_check(product: Product, status: u16, body: &str) -> Check {
    let name = "token";
    if body.contains("ACL support disabled") {
        return Check::pass(product, name, "ACLs are disabled: every request is allowed");
    }
    if !(200..300).contains(&status) {
        return Check::fail(
            product,
            name,
            format!("the token is refused: HTTP {status}: {body}"),
            format!("set {} to a valid token", token_var(product)),
        );
    }
    let token: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let accessor = token
        .get("AccessorID")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let policies: Vec<String> = token
        .get("Policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("Name").and_then(Value::as_str).or_else(|| p.as_str()))
        .map(str::to_owned)
        .collect();
    let anonymous = accessor == "anonymous" || accessor == "00000000-0000-0000-0000-000000000002";
    let management = token.get("Type").and_then(Value::as_str) == Some("management")
        || policies.iter().any(|p| p == "global-management");
    if anonymous {
        return Check::fail(
            product,
            name,
            "no token: requests run as the anonymous token",
            format!("set {} to Steward's token", token_var(product)),
        );
    }
    if management {
        return Check::pass(product, name, format!("management token {accessor}"));
    }
    let needs = match product {
        Product::Consul => {
            "run needs deploy/acl/consul-steward.hcl, doctor and diff consul-readonly.hcl"
        }
        _ => "run needs deploy/acl/nomad-steward.hcl, doctor nomad-readonly.hcl",
    };
    Check::pass(
        product,
        name,
        format!(
            "token {accessor} with policies {} (not evaluated here; Steward {needs})",
            if policies.is_empty() {
                "none".to_owned()
            } else {
                policies.join(", ")
            }
        ),
    )
}

/// One Vault path Steward writes (or lists), the capabilities it needs there, and the
/// policy rule that grants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultProbe {
    /// The path asked about.
    pub path: String,
    /// The policy path pattern Steward's paths fall under.
    pub pattern: String,
    /// Capabilities needed.
    pub needs: &'static [&'static str],
}

/// Whose tokens doctor checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// The operator's (`steward run`): it writes policies and roles.
    Operator,
    /// The read-only ones of `steward diff` and doctor in CI
    /// (`deploy/acl/*-readonly.hcl`): they read the policies only.
    ReadOnly,
}

/// The paths Steward uses under Vault and the capabilities `role` needs on them: for
/// the operator its ACL policies and the JWT roles on the configured mount, and the
/// lists of both; for the read-only tokens the policies it compares.
pub fn vault_probes(jwt_mount: &str, role: TokenRole) -> Vec<VaultProbe> {
    // Vault's sys/policies/acl has no existence check: writing a new policy is an
    // update, so `create` is never needed there. JWT roles have one: a new role is a
    // create, an existing one an update.
    const POLICY: &[&str] = &["read", "update", "delete"];
    const CRUD: &[&str] = &["create", "read", "update", "delete"];
    const LIST: &[&str] = &["list"];
    const READ: &[&str] = &["read"];
    let mount = jwt_mount.trim_matches('/');
    let policy = |needs| VaultProbe {
        path: format!("sys/policies/acl/{PROBE_NAME}"),
        pattern: "sys/policies/acl/steward-*".to_owned(),
        needs,
    };
    if role == TokenRole::ReadOnly {
        return vec![policy(READ)];
    }
    vec![
        policy(POLICY),
        VaultProbe {
            path: "sys/policies/acl".to_owned(),
            pattern: "sys/policies/acl".to_owned(),
            needs: LIST,
        },
        VaultProbe {
            path: format!("auth/{mount}/role/{PROBE_NAME}"),
            pattern: format!("auth/{mount}/role/steward-*"),
            needs: CRUD,
        },
        VaultProbe {
            path: format!("auth/{mount}/role"),
            pattern: format!("auth/{mount}/role"),
            needs: LIST,
        },
    ]
}

/// The capabilities a `sys/capabilities-self` answer lists for `path` (in `data`, or
/// at the top level as older servers answer).
pub fn capabilities_of(answer: &Value, path: &str) -> Vec<String> {
    answer
        .get("data")
        .and_then(|d| d.get(path))
        .or_else(|| answer.get(path))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The token's capabilities on one probed path.
pub fn capability_check(probe: &VaultProbe, caps: &[String]) -> Check {
    let name = format!("token capabilities on {}", probe.pattern);
    let has = |c: &str| caps.iter().any(|have| have == c);
    if has("root") {
        return Check::pass(Product::Vault, name, "root token");
    }
    let missing: Vec<&str> = probe
        .needs
        .iter()
        .copied()
        .filter(|c| has("deny") || !has(c))
        .collect();
    if missing.is_empty() {
        return Check::pass(Product::Vault, name, caps.join(", "));
    }
    let quoted: Vec<String> = probe.needs.iter().map(|c| format!("\"{c}\"")).collect();
    Check::fail(
        Product::Vault,
        name,
        format!(
            "missing {} on {} (has: {})",
            missing.join(", "),
            probe.path,
            if caps.is_empty() {
                "none".to_owned()
            } else {
                caps.join(", ")
            }
        ),
        format!(
            "add to the token's policy: path \"{}\" {{ capabilities = [{}] }}",
            probe.pattern,
            quoted.join(", ")
        ),
    )
}

/// The KV prefix: readable (and how many namespaces its specs use), or the error.
pub fn kv_check(prefix: &str, answer: Result<&BTreeSet<String>, String>) -> Check {
    let name = format!("KV prefix {prefix}/");
    match answer {
        Ok(ns) if ns.is_empty() => Check::pass(Product::Consul, name, "readable; no specs yet"),
        Ok(ns) => Check::pass(
            Product::Consul,
            name,
            format!(
                "readable; specs in namespace(s) {}",
                ns.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Err(e) => Check::fail(
            Product::Consul,
            name,
            format!("cannot list {prefix}/specs/: {e}"),
            format!("give the Consul token key_prefix \"{prefix}/\" {{ policy = \"write\" }}"),
        ),
    }
}

/// The Nomad namespaces the specs need against those that exist.
pub fn namespaces_check(needed: &BTreeSet<String>, existing: &BTreeSet<String>) -> Check {
    let name = "namespaces of the specs";
    let missing: Vec<&str> = needed
        .iter()
        .filter(|n| !existing.contains(*n))
        .map(String::as_str)
        .collect();
    if needed.is_empty() {
        return Check::pass(Product::Nomad, name, "no specs in KV");
    }
    if missing.is_empty() {
        return Check::pass(
            Product::Nomad,
            name,
            format!(
                "present: {}",
                needed.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    Check::fail(
        Product::Nomad,
        name,
        format!("missing: {}", missing.join(", ")),
        format!(
            "run `steward bootstrap` (or `nomad namespace apply NAME` for {})",
            missing.join(", ")
        ),
    )
}

fn gateway_label(g: &GatewayRef) -> String {
    match &g.section_name {
        Some(l) => format!("{}/{}/{l}", g.kind, g.name),
        None => format!("{}/{}", g.kind, g.name),
    }
}

/// The edge gateway entry (and its listener) from `GET /v1/config/<kind>/<name>`.
pub fn gateway_check(gateway: &GatewayRef, entry: Result<Option<&Value>, String>) -> Check {
    let name = format!("edge gateway {}", gateway_label(gateway));
    let entry = match entry {
        Err(e) => {
            return Check::fail(
                Product::Consul,
                name,
                format!("cannot read it: {e}"),
                "see the config-entry kind checks above",
            );
        }
        Ok(None) => {
            return Check::fail(
                Product::Consul,
                name,
                format!("config entry {}/{} not found", gateway.kind, gateway.name),
                "run `steward bootstrap`, or point --edge-gateway at your gateway",
            );
        }
        Ok(Some(e)) => e,
    };
    let listeners: Vec<&str> = entry
        .get("Listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("Name").and_then(Value::as_str))
        .collect();
    match &gateway.section_name {
        Some(wanted) if !listeners.iter().any(|l| l == wanted) => Check::fail(
            Product::Consul,
            name,
            format!(
                "no listener {wanted:?} (has: {})",
                if listeners.is_empty() {
                    "none".to_owned()
                } else {
                    listeners.join(", ")
                }
            ),
            format!(
                "add an http listener named {wanted} to {}/{}, or pass --edge-gateway KIND/NAME/LISTENER",
                gateway.kind, gateway.name
            ),
        ),
        _ => Check::pass(
            Product::Consul,
            name,
            format!("listeners: {}", listeners.join(", ")),
        ),
    }
}

/// The JWT auth mount, from Vault's `GET sys/auth` table.
pub fn jwt_mount_check(mount: &str, table: &Value) -> Check {
    let name = format!("JWT auth mount {mount}/");
    match cluster::auth_mount_type(table, mount).as_deref() {
        Some("jwt") => Check::pass(Product::Vault, name, "enabled (type jwt)"),
        Some(other) => Check::fail(
            Product::Vault,
            name,
            format!("{mount}/ is a {other} method, not jwt"),
            "pass --jwt-auth-mount with the path of a jwt method, or move the other method",
        ),
        None => Check::fail(
            Product::Vault,
            name,
            "not enabled",
            format!("run `steward bootstrap` (or `vault auth enable -path={mount} jwt`)"),
        ),
    }
}

/// The JWT auth mount's config, from `GET auth/<mount>/config` (`None`: unset).
pub fn jwt_config_check(mount: &str, config: Option<&Value>) -> Check {
    let name = format!("JWT auth config {mount}/");
    match config.and_then(cluster::jwt_config_verifier) {
        Some(verifier) => Check::pass(Product::Vault, name, verifier),
        None => Check::fail(
            Product::Vault,
            name,
            "not configured: Vault cannot verify Nomad's workload identities",
            format!(
                "run `steward bootstrap` (or `vault write auth/{mount}/config jwks_url=$NOMAD_ADDR/.well-known/jwks.json jwt_supported_algs=RS256,EdDSA default_role=nomad-workloads`)"
            ),
        ),
    }
}

/// Sends a GET and returns status and body text, whatever the status.
async fn get_answer(t: &Transport, spec: RequestSpec) -> steward_hashi::Result<(u16, String)> {
    let spec = spec.accept(&[400, 401, 403, 404, 500]);
    t.call(spec, |raw| Ok((raw.status, raw.text()))).await
}

fn error_text(e: &steward_hashi::Error) -> String {
    e.to_string()
}

/// Asks every question and returns every verdict. Makes no write.
pub async fn gather(servers: &Servers, config: &OperatorConfig, role: TokenRole) -> Vec<Check> {
    let mut checks = Vec::new();
    let spec_namespaces = consul_checks(servers, config, &mut checks).await;
    nomad_checks(servers, spec_namespaces.as_ref(), &mut checks).await;
    vault_checks(servers, config, role, &mut checks).await;
    checks
}

/// Consul's checks; the namespaces of the specs in KV when they could be listed.
async fn consul_checks(
    servers: &Servers,
    config: &OperatorConfig,
    checks: &mut Vec<Check>,
) -> Option<BTreeSet<String>> {
    let t = servers.consul.transport();
    let product = Product::Consul;
    let answer = get_json(t, "/v1/agent/self").await;
    checks.push(reach_check(product, t.base_url(), answer.as_ref().err()));
    match &answer {
        Err(e) if never_answered(e) => return None,
        Err(e) => checks.push(version_check(product, Err(error_text(e)))),
        Ok(v) => checks.push(version_check(
            product,
            Ok(v.as_ref().and_then(consul_version)),
        )),
    }
    for kind in WRITTEN_KINDS {
        match get_answer(t, RequestSpec::get(format!("/v1/config/{kind}"))).await {
            Ok((status, text)) => checks.push(kind_check(kind, status, &text)),
            Err(e) => checks.push(kind_check(kind, e.status().unwrap_or(0), &error_text(&e))),
        }
    }
    match get_answer(t, RequestSpec::get("/v1/acl/token/self")).await {
        Ok((status, body)) => checks.push(acl_token_check(product, status, &body)),
        Err(e) => checks.push(acl_token_check(
            product,
            e.status().unwrap_or(0),
            &error_text(&e),
        )),
    }
    let kv = cluster::kv_spec_namespaces(&servers.consul, &config.prefix).await;
    checks.push(kv_check(&config.prefix, kv.as_ref().map_err(error_text)));
    let gw = &config.edge_gateway;
    let entry = get_json(t, &format!("/v1/config/{}/{}", gw.kind, gw.name)).await;
    checks.push(gateway_check(
        gw,
        entry.as_ref().map(Option::as_ref).map_err(error_text),
    ));
    kv.ok()
}

async fn nomad_checks(
    servers: &Servers,
    spec_namespaces: Option<&BTreeSet<String>>,
    checks: &mut Vec<Check>,
) {
    let t = servers.nomad.transport();
    let product = Product::Nomad;
    let answer = get_json(t, "/v1/agent/self").await;
    checks.push(reach_check(product, t.base_url(), answer.as_ref().err()));
    match &answer {
        Err(e) if never_answered(e) => return,
        Err(e) => checks.push(version_check(product, Err(error_text(e)))),
        Ok(v) => checks.push(version_check(
            product,
            Ok(v.as_ref().and_then(nomad_version)),
        )),
    }
    match get_answer(t, RequestSpec::get("/v1/acl/token/self")).await {
        Ok((status, body)) => checks.push(acl_token_check(product, status, &body)),
        Err(e) => checks.push(acl_token_check(
            product,
            e.status().unwrap_or(0),
            &error_text(&e),
        )),
    }
    // The namespaces come from the specs in KV; without KV there is nothing to compare.
    let Some(needed) = spec_namespaces else {
        return;
    };
    match get_json(t, "/v1/namespaces").await {
        Ok(list) => {
            let existing = list
                .as_ref()
                .map(cluster::namespace_names)
                .unwrap_or_default();
            checks.push(namespaces_check(needed, &existing));
        }
        Err(e) => checks.push(Check::fail(
            product,
            "namespaces of the specs",
            format!("cannot list namespaces: {e}"),
            "give the Nomad token read access to the namespaces Steward deploys to",
        )),
    }
}

async fn vault_checks(
    servers: &Servers,
    config: &OperatorConfig,
    role: TokenRole,
    checks: &mut Vec<Check>,
) {
    let t = servers.vault.transport();
    let product = Product::Vault;
    // Standbys (429, 473) and DR secondaries (472) serve Steward through the active
    // node; sealed (503) and uninitialised (501) servers serve nothing: said, and the
    // other Vault checks left out.
    let health = t
        .call(
            RequestSpec::get("/v1/sys/health").accept(&[429, 472, 473, 501, 503]),
            |raw| Ok((raw.status, raw.json::<Value>().ok())),
        )
        .await;
    checks.push(reach_check(product, t.base_url(), health.as_ref().err()));
    match &health {
        Err(e) if never_answered(e) => return,
        Err(e) => checks.push(version_check(product, Err(error_text(e)))),
        Ok((503, _)) => {
            checks.push(Check::fail(
                product,
                "unsealed",
                "Vault is sealed",
                "unseal Vault (`vault operator unseal`)",
            ));
            return;
        }
        Ok((501, _)) => {
            checks.push(Check::fail(
                product,
                "initialised",
                "Vault is not initialised",
                "initialise Vault (`vault operator init`)",
            ));
            return;
        }
        Ok((_, body)) => checks.push(version_check(
            product,
            Ok(body.as_ref().and_then(vault_version)),
        )),
    }
    let probes = vault_probes(&config.jwt_auth_mount, role);
    let paths: Vec<&str> = probes.iter().map(|p| p.path.as_str()).collect();
    let spec = RequestSpec::new(reqwest::Method::POST, "/v1/sys/capabilities-self")
        .json(json!({ "paths": paths }));
    match t.call(spec, |raw| raw.json::<Value>()).await {
        Ok(answer) => {
            for probe in &probes {
                checks.push(capability_check(
                    probe,
                    &capabilities_of(&answer, &probe.path),
                ));
            }
        }
        Err(e) => checks.push(Check::fail(
            product,
            "token capabilities",
            format!("cannot query them: {e}"),
            "set VAULT_TOKEN to a valid token (its default policy allows sys/capabilities-self)",
        )),
    }
    let mount = config.jwt_auth_mount.trim_matches('/');
    match get_json(t, "/v1/sys/auth").await {
        Ok(table) => {
            let table = table.unwrap_or(Value::Null);
            let check = jwt_mount_check(mount, &table);
            let mounted = check.ok;
            checks.push(check);
            if mounted {
                match get_json(t, &format!("/v1/auth/{mount}/config")).await {
                    Ok(c) => checks.push(jwt_config_check(mount, c.as_ref())),
                    Err(e) => checks.push(Check::fail(
                        product,
                        format!("JWT auth config {mount}/"),
                        format!("cannot read it: {e}"),
                        format!("add to the token's policy: path \"auth/{mount}/config\" {{ capabilities = [\"read\"] }}"),
                    )),
                }
            }
        }
        Err(e) => checks.push(Check::fail(
            product,
            format!("JWT auth mount {mount}/"),
            format!("cannot list auth methods: {e}"),
            "add to the token's policy: path \"sys/auth\" { capabilities = [\"read\"] }",
        )),
    }
}

/// The table: one line per check, with the fix of each failed one.
pub fn report(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                if c.ok { "✓" } else { "✗" }.to_owned(),
                format!("{} {}", c.product, c.check),
                c.detail.clone(),
                c.fix.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = crate::table::table(&["", "CHECK", "RESULT", "FIX"], &rows);
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str(&format!("all {} checks passed\n", checks.len()));
    } else {
        out.push_str(&format!("{failed} of {} checks failed\n", checks.len()));
    }
    out
}

/// The JSON form: `{"ok": bool, "checks": [...]}`.
pub fn json_report(checks: &[Check]) -> String {
    let ok = checks.iter().all(|c| c.ok);
    serde_json::to_string_pretty(&json!({ "ok": ok, "checks": checks }))
        .unwrap_or_else(|_| "{}".to_owned())
}

/// Runs `steward doctor`.
///
/// # Errors
/// Usage errors (bad flags, config or env): exit 2.
pub async fn run(args: &DoctorArgs) -> anyhow::Result<Exit> {
    let config = cluster::cluster_config(&args.cluster)?;
    let servers = Servers::from_env()?;
    let role = if args.read_only {
        TokenRole::ReadOnly
    } else {
        TokenRole::Operator
    };
    let checks = gather(&servers, &config, role).await;
    match args.output {
        DoctorOutput::Table => print!("{}", report(&checks)),
        DoctorOutput::Json => println!("{}", json_report(&checks)),
    }
    Ok(if checks.iter().all(|c| c.ok) {
        Exit::Ok
    } else {
        Exit::Invalid
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_each_products_shape() {
        let consul = json!({"Config": {"Version": "1.21.4"}});
        assert_eq!(consul_version(&consul), Some("1.21.4"));
        let nomad = json!({"config": {"Version": {"Version": "1.10.2"}}, "member": {"Tags": {"build": "1.10.2"}}});
        assert_eq!(nomad_version(&nomad), Some("1.10.2"));
        let tags_only = json!({"member": {"Tags": {"build": "1.1.2"}}});
        assert_eq!(nomad_version(&tags_only), Some("1.1.2"));
        assert_eq!(vault_version(&json!({"version": "1.18.3"})), Some("1.18.3"));
    }

    #[test]
    fn an_old_server_fails_the_version_check_with_the_minimum() {
        let c = version_check(Product::Consul, Ok(Some("1.10.12")));
        assert!(!c.ok);
        assert!(c.detail.contains("older than 1.16.0"), "{}", c.detail);
        assert_eq!(c.fix.as_deref(), Some("upgrade Consul to 1.16 or newer"));
        assert!(version_check(Product::Vault, Ok(Some("1.18.3"))).ok);
    }

    #[test]
    fn a_missing_kind_is_a_500_naming_it() {
        let c = kind_check("http-route", 500, "invalid config entry kind: http-route");
        assert!(!c.ok);
        assert!(c.fix.unwrap().contains("upgrade Consul"));
        assert!(kind_check("service-defaults", 200, "[]").ok);
    }

    #[test]
    fn acls_off_pass_and_unknown_or_missing_tokens_fail() {
        assert!(acl_token_check(Product::Consul, 401, "ACL support disabled").ok);
        assert!(acl_token_check(Product::Nomad, 400, "ACL support disabled").ok);
        let c = acl_token_check(Product::Nomad, 403, "ACL token not found");
        assert!(!c.ok);
        assert!(c.fix.unwrap().contains("NOMAD_TOKEN"));
        let anon = acl_token_check(
            Product::Nomad,
            200,
            r#"{"AccessorID":"anonymous","Type":"client"}"#,
        );
        assert!(!anon.ok);
        let mgmt = acl_token_check(
            Product::Consul,
            200,
            r#"{"AccessorID":"a-1","Policies":[{"Name":"global-management"}]}"#,
        );
        assert!(mgmt.ok, "{mgmt:?}");
    }

    #[test]
    fn missing_vault_capabilities_give_the_policy_line() {
        let probes = vault_probes("jwt-nomad", TokenRole::Operator);
        assert_eq!(probes[2].path, "auth/jwt-nomad/role/steward-doctor-probe");
        let c = capability_check(&probes[0], &["read".to_owned()]);
        assert!(!c.ok);
        assert_eq!(
            c.fix.as_deref(),
            Some(
                "add to the token's policy: path \"sys/policies/acl/steward-*\" { capabilities = [\"read\", \"update\", \"delete\"] }"
            )
        );
        assert!(capability_check(&probes[0], &["root".to_owned()]).ok);
        // deploy/acl/vault-steward.hcl: no `create` on policies (no existence check).
        let all: Vec<String> = ["read", "update", "delete"].map(str::to_owned).into();
        assert!(capability_check(&probes[0], &all).ok);
        let role_caps: Vec<String> = ["read", "update", "delete"].map(str::to_owned).into();
        assert!(
            !capability_check(&probes[2], &role_caps).ok,
            "a new role is a create"
        );
        let read_only = vault_probes("jwt-nomad", TokenRole::ReadOnly);
        assert_eq!(read_only.len(), 1);
        assert!(capability_check(&read_only[0], &["read".to_owned()]).ok);
        let answer = json!({"data": {"sys/policies/acl": ["list"]}});
        assert_eq!(capabilities_of(&answer, "sys/policies/acl"), ["list"]);
    }

    #[test]
    fn missing_namespaces_are_named_with_the_fix() {
        let needed: BTreeSet<String> = ["default", "trading"].map(str::to_owned).into();
        let existing: BTreeSet<String> = ["default"].map(str::to_owned).into();
        let c = namespaces_check(&needed, &existing);
        assert!(!c.ok);
        assert_eq!(c.detail, "missing: trading");
        assert!(c.fix.unwrap().contains("steward bootstrap"));
    }

    #[test]
    fn the_gateway_needs_its_listener() {
        let g = GatewayRef::default();
        let entry = crate::operator::edge_gateway_entry(&g);
        assert!(gateway_check(&g, Ok(Some(&entry))).ok);
        let other = json!({"Listeners": [{"Name": "https"}]});
        let c = gateway_check(&g, Ok(Some(&other)));
        assert!(!c.ok);
        assert!(c.detail.contains("has: https"), "{}", c.detail);
        assert!(!gateway_check(&g, Ok(None)).ok);
    }

    #[test]
    fn the_report_has_a_line_per_check_and_the_fix() {
        let checks = [
            Check::pass(Product::Consul, "version", "Consul 1.21.4"),
            jwt_mount_check("jwt-nomad", &json!({"data": {}})),
        ];
        let text = report(&checks);
        assert!(text.contains("✓  consul version"), "{text}");
        let failed = text.lines().find(|l| l.starts_with('✗')).unwrap();
        assert!(failed.contains("steward bootstrap"), "{text}");
        assert!(text.ends_with("1 of 2 checks failed\n"));
        let json: Value = serde_json::from_str(&json_report(&checks)).unwrap();
        assert_eq!(json["ok"], false);
        assert!(json["checks"][1]["fix"].as_str().is_some());
    }
}
