//! The simulated Vault HTTP API: ACL policies, auth mounts, JWT auth roles, tokens,
//! health.
//!
//! It behaves like a Vault dev server (`vault server -dev -dev-root-token-id=root`)
//! of the configured [`VaultSimConfig::version`] on the endpoints Steward uses:
//!
//! - `sys/policies/acl` (LIST or `GET ?list=true`), `sys/policies/acl/{name}`
//!   (GET/PUT/POST/DELETE) and the legacy `sys/policy[/{name}]`;
//! - `sys/auth` (GET), `sys/auth/{path}` (GET/POST/DELETE), `sys/auth/{path}/tune`;
//! - `auth/{jwt mount}/role[/{name}]` and `auth/{jwt mount}/config`;
//! - `auth/token/lookup-self`, `lookup`, `create`, `create-orphan`, `revoke-self`,
//!   `renew-self`;
//! - `sys/health` (GET/HEAD), `sys/seal-status`, `sys/init` (unauthenticated).
//!
//! Every other request needs a token: the root token (`SimConfig::vault_root_token`),
//! a configured token (`SimConfig::tokens` for Vault: `rules` holds policy names,
//! comma-separated, or inline policy HCL; `management` means root), or a token minted
//! through `auth/token/create`. Capabilities are evaluated as Vault evaluates them
//! (see the `acl` submodule), with Vault's status codes and error bodies.
//!
//! Vault has no index in its API; the state still has an [`IndexClock`] that ticks on
//! every change so the persistence writer saves it.

mod acl;
mod api;
mod hcl1;
mod jwt;
mod policy;
mod route;
mod snapshot;
mod sys;
mod token;

use crate::Product;
use crate::index::IndexClock;
use crate::product::SimContext;
use api::{Op, Outcome, Resp, VErr, Version};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::response::Response;
use axum::routing::any;
use parking_lot::Mutex;
use route::Route;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Vault-specific simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultSimConfig {
    /// The Vault version to behave like (`1.18.3` by default). It is reported by
    /// `sys/health` and selects version-dependent shapes: `mount_type` in responses
    /// (≥ 1.13), the lower-casing warning on policy names (≥ 1.10), 204 instead of
    /// 200 for JWT role writes (≥ 1.11), the `invalid token` error next to
    /// `permission denied` for unknown tokens (≥ 1.17), `sys/health` fields (≥ 1.16).
    /// Set `1.7.3` to reproduce the reference fixtures exactly.
    pub version: String,
    /// JWT auth mounts enabled on a fresh state (default `["jwt-nomad"]`, the mount
    /// Nomad workload identities log in with, so `steward dev` can write roles at
    /// once). Persisted state replaces this: a mount disabled through the API stays
    /// disabled after a restart.
    pub jwt_mounts: Vec<String>,
    /// `jwks_url` values that `auth/<mount>/config` accepts as reachable. The
    /// simulator never makes network requests: besides these, only loopback URLs
    /// ending in `/.well-known/jwks.json` (the simulated Nomad's JWKS endpoint) are
    /// accepted; anything else fails with 400 as an unreachable URL does.
    pub reachable_jwks_urls: Vec<String>,
    /// The system default and maximum lease TTL, in seconds (768h as on a dev
    /// server): TTL of minted tokens, cap for JWT role periods.
    pub max_lease_ttl_secs: u64,
}

impl Default for VaultSimConfig {
    fn default() -> Self {
        VaultSimConfig {
            version: "1.18.3".into(),
            jwt_mounts: vec!["jwt-nomad".into()],
            reachable_jwks_urls: Vec::new(),
            max_lease_ttl_secs: 768 * 3600,
        }
    }
}

/// A stored ACL policy: the text as written and its parsed rules.
#[derive(Debug, Clone)]
pub(crate) struct StoredPolicy {
    raw: String,
    parsed: policy::Policy,
}

/// Everything behind the state lock.
#[derive(Debug)]
pub(crate) struct Inner {
    policies: BTreeMap<String, StoredPolicy>,
    mounts: BTreeMap<String, sys::AuthMount>,
    jwt: BTreeMap<String, jwt::Backend>,
    tokens: BTreeMap<String, token::TokenEntry>,
    revoked_accessors: BTreeSet<String>,
    cluster_name: String,
    cluster_id: String,
    created_unix: i64,
    created_issue_time: String,
}

/// The whole Vault state.
pub struct VaultState {
    clock: IndexClock,
    inner: Mutex<Inner>,
    ctx: SimContext,
    cfg: VaultSimConfig,
    version: Version,
    /// Inline policies of configured tokens, by position in `SimConfig::tokens_for`.
    inline: Vec<Option<policy::Policy>>,
}

impl VaultState {
    pub(crate) fn new(ctx: &SimContext) -> Arc<Self> {
        let cfg = ctx.config.vault.clone();
        let version = Version::parse(&cfg.version).unwrap_or_else(|| {
            tracing::warn!(version = %cfg.version, "unparsable Vault version; behaving like 1.18.3");
            Version {
                major: 1,
                minor: 18,
                patch: 3,
            }
        });
        let inline = ctx
            .config
            .tokens_for(Product::Vault)
            .map(|t| {
                token::is_inline_rules(&t.rules).then(|| {
                    policy::parse(&t.rules).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "configured Vault token has unparsable rules");
                        policy::Policy::default()
                    })
                })
            })
            .collect();
        let inner = Inner::fresh(&cfg);
        Arc::new(VaultState {
            clock: IndexClock::new(1),
            inner: Mutex::new(inner),
            ctx: ctx.clone(),
            cfg,
            version,
            inline,
        })
    }

    /// Starts background work (none: token expiry is checked on use).
    pub(crate) fn start(self: &Arc<Self>, _ctx: &SimContext) {}

    /// Runs one authenticated logical request under the state lock.
    fn handle(
        &self,
        op: Op,
        path: &str,
        data: Map<String, Value>,
        token: Option<String>,
    ) -> (Outcome, String) {
        let mut inner = self.inner.lock();
        let route = Route::resolve(&inner, path);
        let mount_type = route.mount_type(&inner);
        if let Route::JwtLogin(mount) = &route {
            return (jwt::login(&inner, mount, &data), mount_type);
        }
        let Some(secret) = token else {
            return (Err(VErr::bad("missing client token")), mount_type);
        };
        let now = jiff::Timestamp::now().as_second();
        let tokens_before = inner.tokens.len();
        let resolved = token::resolve(&mut inner, self, &secret, now);
        if inner.tokens.len() != tokens_before {
            // An expired token was dropped.
            self.clock.next();
        }
        let Some(caller) = resolved else {
            return (Err(self.invalid_token()), mount_type);
        };
        let op = match (op, route.existence(&inner)) {
            (Op::Update, Some(false)) => Op::Create,
            (op, _) => op,
        };
        let acl = token::acl_for(&inner, self, &caller);
        let decision = acl.check(op, path);
        if !decision.allowed || (route.sudo_required() && !decision.sudo) {
            return (Err(permission_denied()), mount_type);
        }
        let mut changed = token::use_once(&mut inner, &caller);
        let mut cx = Cx {
            inner: &mut inner,
            state: self,
            caller: &caller,
            acl: &acl,
            data,
            changed: false,
            now,
        };
        let outcome = route.execute(&mut cx, op);
        changed |= cx.changed;
        if changed {
            self.clock.next();
        }
        (outcome, mount_type)
    }

    fn invalid_token(&self) -> VErr {
        if self.version.at_least(1, 17) {
            VErr::code(
                403,
                policy::multi_error(&["permission denied".into(), "invalid token".into()]),
            )
        } else {
            VErr::code(403, "permission denied")
        }
    }
}

fn permission_denied() -> VErr {
    VErr::code(403, policy::multi_error(&["permission denied".into()]))
}

impl Inner {
    fn fresh(cfg: &VaultSimConfig) -> Inner {
        let now = jiff::Timestamp::now();
        let mut inner = Inner {
            policies: BTreeMap::new(),
            mounts: BTreeMap::new(),
            jwt: BTreeMap::new(),
            tokens: BTreeMap::new(),
            revoked_accessors: BTreeSet::new(),
            cluster_name: format!("vault-cluster-{}", random_hex(8)),
            cluster_id: uuid::Uuid::new_v4().to_string(),
            created_unix: now.as_second(),
            created_issue_time: now.to_string(),
        };
        if let Ok(parsed) = policy::parse(policy::DEFAULT_POLICY) {
            inner.policies.insert(
                "default".into(),
                StoredPolicy {
                    raw: policy::DEFAULT_POLICY.to_string(),
                    parsed,
                },
            );
        }
        inner
            .mounts
            .insert("token/".into(), sys::AuthMount::token());
        for path in &cfg.jwt_mounts {
            let path = sys::sanitize_mount_path(path);
            if path != "token/" && !inner.mounts.contains_key(&path) {
                inner
                    .mounts
                    .insert(path.clone(), sys::AuthMount::new(&path, "jwt", "", None));
                inner.jwt.insert(path, jwt::Backend::default());
            }
        }
        inner
    }
}

/// What a handler gets.
pub(crate) struct Cx<'a> {
    inner: &'a mut Inner,
    state: &'a VaultState,
    caller: &'a token::TokenView,
    acl: &'a acl::Acl,
    data: Map<String, Value>,
    /// Set by handlers that changed persisted state.
    changed: bool,
    now: i64,
}

/// The Vault API routes. Every route goes to one dispatcher (Vault routes by mount
/// table, not by URL template); the templates only name the routes in the request
/// counters.
pub(crate) fn router(state: Arc<VaultState>) -> Router {
    const ROUTES: &[&str] = &[
        "/v1/sys/health",
        "/v1/sys/seal-status",
        "/v1/sys/init",
        "/v1/sys/policies/acl",
        "/v1/sys/policies/acl/",
        "/v1/sys/policies/acl/{*name}",
        "/v1/sys/policy",
        "/v1/sys/policy/",
        "/v1/sys/policy/{*name}",
        "/v1/sys/auth",
        "/v1/sys/auth/",
        "/v1/sys/auth/{*path}",
        "/v1/sys/capabilities-self",
        "/v1/sys/capabilities",
        "/v1/auth/token/lookup-self",
        "/v1/auth/token/lookup",
        "/v1/auth/token/create",
        "/v1/auth/token/create-orphan",
        "/v1/auth/token/revoke-self",
        "/v1/auth/token/renew-self",
        "/v1/auth/{mount}/role",
        "/v1/auth/{mount}/role/",
        "/v1/auth/{mount}/role/{name}",
        "/v1/auth/{mount}/config",
        "/v1/auth/{mount}/login",
        "/v1/{*path}",
    ];
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route, any(dispatch));
    }
    router.fallback(dispatch).with_state(state)
}

/// Largest request body accepted (Vault's default `max_request_size`).
const MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

async fn dispatch(State(state): State<Arc<VaultState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let Some(rel) = percent_decode(parts.uri.path())
        .strip_prefix("/v1/")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
    else {
        return api::error_response(&VErr::empty(404));
    };
    match rel.as_str() {
        "sys/health" => return sys::health(&state, &parts.method, &query),
        "sys/seal-status" => return sys::seal_status(&state, &parts.method),
        "sys/init" => return sys::init(&parts.method),
        _ => {}
    }
    let mut list_query = false;
    let op = match parts.method.as_str() {
        "GET" => match query.get("list").filter(|l| !l.is_empty()) {
            Some(l) => match api::go_parse_bool(l) {
                Some(true) => {
                    list_query = true;
                    Op::List
                }
                Some(false) => Op::Read,
                None => return api::error_response(&VErr::empty(400)),
            },
            None => Op::Read,
        },
        "POST" | "PUT" => Op::Update,
        "DELETE" => Op::Delete,
        "LIST" => Op::List,
        "PATCH" => Op::Patch,
        "HEAD" => Op::Header,
        _ => return api::error_response(&VErr::empty(405)),
    };
    let mut path = rel;
    if op == Op::List && !path.ends_with('/') {
        path.push('/');
    }
    let data = match op {
        Op::Update | Op::Patch => {
            let bytes = match axum::body::to_bytes(body, MAX_REQUEST_SIZE).await {
                Ok(b) => b,
                Err(_) => {
                    return api::error_response(&VErr::code(413, "http: request body too large"));
                }
            };
            match api::parse_body(&bytes) {
                Ok(d) => d,
                Err(e) => return api::error_response(&e),
            }
        }
        Op::Read | Op::List if !list_query => query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        _ => Map::new(),
    };
    let token = crate::acl::request_token(Product::Vault, &parts.headers, &query);
    let (outcome, mount_type) = state.handle(op, &path, data, token);
    api::render(op, outcome, &mount_type, state.version)
}

// ---------------------------------------------------------------------------
// Helpers

/// Decodes `%XX` escapes in a URL path, as Go's `URL.Path` holds it.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let d: u32 = rng.random_range(0..16);
            char::from_digit(d, 16).unwrap_or('0')
        })
        .collect()
}

fn random_base62(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

// ---------------------------------------------------------------------------
// Control methods for tests and `steward dev`

impl crate::SimHandle {
    /// The Vault state's change counter (Vault has no index in its API; this counts
    /// state changes, and identical writes do not move it).
    pub fn vault_index(&self) -> u64 {
        self.vault.clock.current()
    }

    /// The text of a Vault ACL policy as stored (`None` when missing).
    pub fn vault_policy(&self, name: &str) -> Option<String> {
        self.vault
            .inner
            .lock()
            .policies
            .get(&name.trim().to_lowercase())
            .map(|p| p.raw.clone())
    }

    /// Names of the stored Vault ACL policies (without `root`), sorted.
    pub fn vault_policy_names(&self) -> Vec<String> {
        self.vault.inner.lock().policies.keys().cloned().collect()
    }

    /// Writes a Vault ACL policy directly, validating it as the API does.
    ///
    /// # Errors
    /// Vault's message for an invalid policy or a protected name.
    pub fn vault_put_policy(&self, name: &str, text: &str) -> Result<(), String> {
        let name = name.trim().to_lowercase();
        if name.is_empty()
            || matches!(
                name.as_str(),
                "root" | "response-wrapping" | "control-group"
            )
        {
            return Err(format!("cannot update {} policy", policy::go_quote(&name)));
        }
        let parsed = policy::parse(text)?;
        let mut inner = self.vault.inner.lock();
        inner.policies.insert(
            name,
            StoredPolicy {
                raw: text.to_string(),
                parsed,
            },
        );
        self.vault.clock.next();
        Ok(())
    }

    /// The JWT role as `GET auth/<mount>/role/<name>` returns its `data`.
    pub fn vault_jwt_role(&self, mount: &str, name: &str) -> Option<Value> {
        let inner = self.vault.inner.lock();
        let backend = inner.jwt.get(&sys::sanitize_mount_path(mount))?;
        let role = backend.roles.get(&name.to_lowercase())?;
        Some(jwt::role_data(role, self.vault.version))
    }

    /// Names of the JWT roles on a mount, sorted.
    pub fn vault_jwt_role_names(&self, mount: &str) -> Vec<String> {
        self.vault
            .inner
            .lock()
            .jwt
            .get(&sys::sanitize_mount_path(mount))
            .map(|b| b.roles.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Enabled auth mounts as `(path, type)`, e.g. `("jwt-nomad/", "jwt")`.
    pub fn vault_auth_mounts(&self) -> Vec<(String, String)> {
        self.vault
            .inner
            .lock()
            .mounts
            .values()
            .map(|m| (m.path.clone(), m.kind.clone()))
            .collect()
    }

    /// Mints a token carrying `policies` (plus `default`) without going through HTTP,
    /// and returns its secret.
    pub fn vault_create_token(&self, policies: &[&str]) -> String {
        let mut inner = self.vault.inner.lock();
        let now = jiff::Timestamp::now().as_second();
        let names: Vec<String> = policies.iter().map(|p| p.to_string()).collect();
        let entry = token::TokenEntry::minted(
            names,
            true,
            self.vault.cfg.max_lease_ttl_secs as i64,
            now,
            self.vault.version,
        );
        let id = entry.id.clone();
        inner.tokens.insert(id.clone(), entry);
        self.vault.clock.next();
        id
    }
}

impl std::fmt::Debug for VaultState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultState")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Resp helpers shared by the handler modules.
fn data_resp(data: Value) -> Outcome {
    Ok(Some(Resp::data(api::sorted(data))))
}
