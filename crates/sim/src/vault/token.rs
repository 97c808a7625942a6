//! The token store: the root token, configured tokens, minted tokens, and the
//! `auth/token/*` endpoints that make them usable.

use super::acl::Acl;
use super::api::{self, Op, Outcome, Resp, VErr, Version};
use super::policy::Policy;
use super::{Cx, Inner, VaultState, random_base62};
use crate::Product;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A token minted through `auth/token/create` (persisted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenEntry {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub display_name: String,
    pub path: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub creation_time: i64,
    pub issue_time: String,
    pub creation_ttl: i64,
    pub explicit_max_ttl: i64,
    pub period: i64,
    /// Unix seconds; `None` never expires (root-policy tokens without a TTL).
    pub expire_at: Option<i64>,
    pub last_renewal: Option<i64>,
    /// Remaining uses; 0 is unlimited.
    pub num_uses: i64,
    pub orphan: bool,
    pub renewable: bool,
    #[serde(rename = "type")]
    pub token_type: String,
    pub parent: Option<String>,
}

impl TokenEntry {
    /// A service token created by the root token.
    pub fn minted(
        policies: Vec<String>,
        add_default: bool,
        ttl: i64,
        now: i64,
        version: Version,
    ) -> TokenEntry {
        let policies = sanitize_policies(policies, add_default);
        let root = policies.iter().any(|p| p == "root");
        TokenEntry {
            id: new_token_id("service", version),
            accessor: random_base62(24),
            display_name: "token".into(),
            path: "auth/token/create".into(),
            meta: None,
            creation_time: now,
            issue_time: issue_time(now),
            creation_ttl: if root { 0 } else { ttl },
            explicit_max_ttl: 0,
            period: 0,
            expire_at: (!root).then_some(now + ttl),
            last_renewal: None,
            num_uses: 0,
            orphan: false,
            renewable: !root,
            token_type: "service".into(),
            parent: None,
            policies,
        }
    }
}

fn issue_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn new_token_id(token_type: &str, version: Version) -> String {
    let prefix = match (token_type, version.at_least(1, 10)) {
        ("batch", true) => "hvb.",
        ("batch", false) => "b.",
        (_, true) => "hvs.",
        (_, false) => "s.",
    };
    format!("{prefix}{}", random_base62(24))
}

/// `policyutil.SanitizePolicies`: lower-cased, trimmed, `root` alone, `default`
/// added on request, deduplicated and sorted.
pub(crate) fn sanitize_policies(policies: Vec<String>, add_default: bool) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if out.iter().any(|p| p == "root") {
        return vec!["root".into()];
    }
    if add_default && !out.iter().any(|p| p == "default") {
        out.push("default".into());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a configured token's `rules` are inline policy text rather than names.
pub(crate) fn is_inline_rules(rules: &str) -> bool {
    rules.contains('{') || rules.contains('"')
}

/// Where a token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Root,
    /// Index into `SimConfig::tokens_for(Vault)`.
    Configured(usize),
    Minted,
}

/// Everything about the calling token that requests need.
#[derive(Debug, Clone)]
pub(crate) struct TokenView {
    pub entry: TokenEntry,
    pub source: Source,
}

impl TokenView {
    fn is_root(&self) -> bool {
        self.entry.policies.iter().any(|p| p == "root")
    }
}

/// The accessor of a root or configured token, derived from its secret (FNV-1a) so it
/// is stable across restarts without writing the secret anywhere.
fn fixed_accessor(secret: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(24);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8..3 {
        for b in secret.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut x = h;
        for _ in 0..8 {
            out.push(char::from(ALPHABET[(x % 62) as usize]));
            x /= 62;
        }
    }
    out
}

/// Looks a secret up: root, configured, then minted (expired minted tokens are
/// dropped). `None` for unknown, expired or revoked tokens.
pub(crate) fn resolve(
    inner: &mut Inner,
    state: &VaultState,
    secret: &str,
    now: i64,
) -> Option<TokenView> {
    let config = &state.ctx.config;
    if secret == config.vault_root_token {
        let accessor = fixed_accessor(secret);
        if inner.revoked_accessors.contains(&accessor) {
            return None;
        }
        return Some(TokenView {
            entry: TokenEntry {
                id: secret.to_string(),
                accessor,
                policies: vec!["root".into()],
                display_name: "token".into(),
                path: "auth/token/create".into(),
                meta: None,
                creation_time: inner.created_unix,
                issue_time: inner.created_issue_time.clone(),
                creation_ttl: 0,
                explicit_max_ttl: 0,
                period: 0,
                expire_at: None,
                last_renewal: None,
                num_uses: 0,
                orphan: true,
                renewable: false,
                token_type: "service".into(),
                parent: None,
            },
            source: Source::Root,
        });
    }
    if let Some((index, t)) = config
        .tokens_for(Product::Vault)
        .enumerate()
        .find(|(_, t)| t.secret == secret)
    {
        let accessor = fixed_accessor(secret);
        if inner.revoked_accessors.contains(&accessor) {
            return None;
        }
        let names: Vec<String> = if t.management {
            vec!["root".into()]
        } else if is_inline_rules(&t.rules) {
            vec!["sim-inline".into()]
        } else {
            t.rules.split(',').map(str::to_string).collect()
        };
        let policies = sanitize_policies(names, true);
        return Some(TokenView {
            entry: TokenEntry {
                id: secret.to_string(),
                accessor,
                renewable: false,
                orphan: true,
                policies,
                display_name: "token".into(),
                path: "auth/token/create".into(),
                meta: None,
                creation_time: inner.created_unix,
                issue_time: inner.created_issue_time.clone(),
                creation_ttl: 0,
                explicit_max_ttl: 0,
                period: 0,
                expire_at: None,
                last_renewal: None,
                num_uses: 0,
                token_type: "service".into(),
                parent: None,
            },
            source: Source::Configured(index),
        });
    }
    let entry = inner.tokens.get(secret)?.clone();
    if entry.expire_at.is_some_and(|e| e <= now) {
        revoke_tree(inner, secret);
        return None;
    }
    Some(TokenView {
        entry,
        source: Source::Minted,
    })
}

/// The merged ACL of the caller's policies (a missing policy grants nothing).
pub(crate) fn acl_for(inner: &Inner, state: &VaultState, caller: &TokenView) -> Acl {
    if caller.is_root() {
        return Acl::root();
    }
    let mut policies: Vec<&Policy> = caller
        .entry
        .policies
        .iter()
        .filter_map(|name| inner.policies.get(name).map(|p| &p.parsed))
        .collect();
    if let Source::Configured(index) = caller.source
        && let Some(Some(inline)) = state.inline.get(index)
    {
        policies.push(inline);
    }
    Acl::build(policies)
}

/// Counts one use of a limited-use token; revokes it when the last use is spent.
/// Returns whether state changed.
pub(crate) fn use_once(inner: &mut Inner, caller: &TokenView) -> bool {
    if caller.source != Source::Minted || caller.entry.num_uses == 0 {
        return false;
    }
    let id = &caller.entry.id;
    let remaining = inner.tokens.get(id).map(|t| t.num_uses).unwrap_or(0);
    if remaining <= 1 {
        revoke_tree(inner, id);
    } else if let Some(t) = inner.tokens.get_mut(id) {
        t.num_uses -= 1;
    }
    true
}

/// Revokes a minted token and every token created under it.
fn revoke_tree(inner: &mut Inner, id: &str) {
    inner.tokens.remove(id);
    let children: Vec<String> = inner
        .tokens
        .values()
        .filter(|t| t.parent.as_deref() == Some(id))
        .map(|t| t.id.clone())
        .collect();
    for child in children {
        revoke_tree(inner, &child);
    }
}

/// The `data` of a token lookup.
fn lookup_data(entry: &TokenEntry, now: i64) -> Value {
    let ttl = entry.expire_at.map(|e| (e - now).max(0)).unwrap_or(0);
    let expire_time = entry
        .expire_at
        .and_then(|e| jiff::Timestamp::from_second(e).ok())
        .map(|t| json!(t.to_string()))
        .unwrap_or(Value::Null);
    let mut data = json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": expire_time,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": entry.id,
        "issue_time": entry.issue_time,
        "meta": entry.meta,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": ttl,
        "type": entry.token_type,
    });
    if entry.period > 0 {
        data["period"] = json!(entry.period);
    }
    if let Some(last) = entry.last_renewal {
        data["last_renewal_time"] = json!(last);
        data["last_renewal"] = json!(issue_time(last));
    }
    api::sorted(data)
}

/// GET/POST `auth/token/lookup-self`.
pub(super) fn lookup_self(cx: &mut Cx<'_>) -> Outcome {
    Ok(Some(Resp::data(lookup_data(&cx.caller.entry, cx.now))))
}

/// `auth/token/lookup` (`token` in the body or query) and `auth/token/lookup/<token>`.
pub(super) fn lookup(cx: &mut Cx<'_>, in_path: Option<&str>) -> Outcome {
    let secret = match in_path {
        Some(t) => t.to_string(),
        None => match cx.data.get("token") {
            Some(v) => api::weak_string(v).map_err(|e| api::field_error("token", v, &e))?,
            None => String::new(),
        },
    };
    if secret.is_empty() {
        return Err(VErr::bad("missing token"));
    }
    let now = cx.now;
    match resolve(cx.inner, cx.state, &secret, now) {
        Some(view) => Ok(Some(Resp::data(lookup_data(&view.entry, now)))),
        None => Err(VErr::code(403, "bad token")),
    }
}

const CREATE_FIELDS: &[&str] = &[
    "id",
    "role_name",
    "policies",
    "meta",
    "no_parent",
    "no_default_policy",
    "renewable",
    "lease",
    "ttl",
    "type",
    "explicit_max_ttl",
    "display_name",
    "num_uses",
    "period",
    "entity_alias",
];

/// POST `auth/token/create` and `auth/token/create-orphan`.
pub(super) fn create(cx: &mut Cx<'_>, orphan_path: bool) -> Outcome {
    let outcome = create_inner(cx, orphan_path);
    if !cx.state.version.at_least(1, 13) {
        return outcome;
    }
    let unknown = api::unknown_fields(&cx.data, CREATE_FIELDS);
    if unknown.is_empty() {
        return outcome;
    }
    let mut resp = outcome?.unwrap_or_default();
    resp.warnings.push(api::ignored_warning(&unknown));
    Ok(Some(resp))
}

fn create_inner(cx: &mut Cx<'_>, orphan_path: bool) -> Outcome {
    let get = |key: &str| cx.data.get(key).cloned();
    let conv_err = |key: &str, v: &Value, e: String| api::field_error(key, v, &e);
    let str_field = |key: &str| -> Result<String, VErr> {
        match get(key) {
            None => Ok(String::new()),
            Some(v) => api::weak_string(&v).map_err(|e| conv_err(key, &v, e)),
        }
    };
    let bool_field = |key: &str, default: bool| -> Result<bool, VErr> {
        match get(key) {
            None => Ok(default),
            Some(v) => api::parse_bool(&v).map_err(|e| conv_err(key, &v, e)),
        }
    };
    let dur_field = |key: &str| -> Result<i64, VErr> {
        match get(key) {
            None => Ok(0),
            Some(v) => api::parse_duration_second(&v).map_err(|e| conv_err(key, &v, e)),
        }
    };
    let id = str_field("id")?;
    let display_name = str_field("display_name")?;
    let token_type = str_field("type")?;
    let no_parent = bool_field("no_parent", false)?;
    let no_default_policy = bool_field("no_default_policy", false)?;
    let renewable = bool_field("renewable", true)?;
    let mut ttl = dur_field("ttl")?;
    if ttl == 0 {
        ttl = dur_field("lease")?;
    }
    let explicit_max_ttl = dur_field("explicit_max_ttl")?;
    let period = dur_field("period")?;
    let num_uses = match get("num_uses") {
        None => 0,
        Some(v) => api::parse_int(&v).map_err(|e| conv_err("num_uses", &v, e))?,
    };
    let requested: Option<Vec<String>> = match get("policies") {
        None => None,
        Some(v) => Some(api::comma_string_slice(&v).map_err(|e| conv_err("policies", &v, e))?),
    };
    let meta: Option<BTreeMap<String, String>> = match get("meta") {
        None => None,
        Some(v) => Some(api::parse_kv_pairs(&v).map_err(|e| conv_err("meta", &v, e))?),
    };

    let caller = cx.caller;
    let is_root = caller.is_root();
    let sudo = is_root || cx.acl.check(Op::Update, "auth/token/create").sudo;
    if num_uses < 0 {
        return Err(VErr::bad("number of uses cannot be negative"));
    }
    let token_type = match token_type.as_str() {
        "" | "service" | "default" | "default-service" => "service",
        "batch" | "default-batch" => "batch",
        other => {
            return Err(VErr::bad(format!(
                "invalid 'type' value {}",
                super::policy::go_quote(other)
            )));
        }
    };
    if !id.is_empty() {
        if !sudo {
            return Err(VErr::bad(
                "root or sudo privileges required to specify token id",
            ));
        }
        if cx.inner.tokens.contains_key(&id) || id == cx.state.ctx.config.vault_root_token {
            return Err(VErr::bad("cannot create a token with a duplicate ID"));
        }
    }
    let orphan = orphan_path || no_parent;
    if no_parent && !orphan_path && !sudo {
        return Err(VErr::bad(
            "root or sudo privileges required to create orphan token",
        ));
    }
    let parent_policies = &caller.entry.policies;
    let mut policies = match requested {
        Some(p) if !p.is_empty() => {
            let p = sanitize_policies(p, !no_default_policy);
            if p.iter().any(|x| x == "root") && !is_root {
                return Err(VErr::bad(
                    "root tokens may not be created without parent token being root",
                ));
            }
            if !sudo
                && !p
                    .iter()
                    .all(|x| x == "default" || parent_policies.contains(x))
            {
                return Err(VErr::bad("child policies must be subset of parent"));
            }
            p
        }
        _ => parent_policies
            .iter()
            .filter(|p| !no_default_policy || p.as_str() != "default")
            .cloned()
            .collect(),
    };
    if policies.is_empty() {
        policies = vec!["default".into()];
    }
    let root_token = policies.iter().any(|p| p == "root");
    let max = cx.state.cfg.max_lease_ttl_secs as i64;
    let mut warnings = Vec::new();
    let mut effective = if period > 0 { period } else { ttl };
    if !root_token || ttl > 0 || period > 0 {
        if effective == 0 {
            effective = max;
        }
        let cap = if explicit_max_ttl > 0 {
            explicit_max_ttl.min(max)
        } else {
            max
        };
        if effective > cap {
            warnings.push(format!(
                "TTL of {} exceeded the effective max_ttl of {}; TTL value is capped accordingly",
                super::policy::go_quote(&fmt_secs(effective)),
                super::policy::go_quote(&fmt_secs(cap))
            ));
            effective = cap;
        }
    }
    let now = cx.now;
    let mut entry = TokenEntry::minted(policies, false, effective, now, cx.state.version);
    if !id.is_empty() {
        entry.id = id;
    } else if token_type == "batch" {
        entry.id = new_token_id("batch", cx.state.version);
    }
    if token_type == "batch" {
        entry.accessor = String::new();
    }
    entry.token_type = token_type.into();
    entry.creation_ttl = effective;
    entry.expire_at = (effective > 0).then_some(now + effective);
    entry.renewable = effective > 0 && renewable && token_type == "service";
    entry.explicit_max_ttl = explicit_max_ttl;
    entry.period = period;
    entry.num_uses = num_uses;
    entry.meta = meta;
    entry.orphan = orphan;
    entry.parent = (!orphan && caller.source == Source::Minted).then(|| caller.entry.id.clone());
    if !display_name.is_empty() {
        let cleaned: String = display_name
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        entry.display_name = format!("token-{cleaned}");
    }
    let auth = auth_block(&entry);
    cx.inner.tokens.insert(entry.id.clone(), entry);
    cx.changed = true;
    Ok(Some(Resp {
        auth: Some(auth),
        warnings,
        ..Resp::default()
    }))
}

fn fmt_secs(secs: i64) -> String {
    crate::blocking::format_go_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}

/// The `auth` block of a login or token creation.
fn auth_block(entry: &TokenEntry) -> Value {
    json!({
        "client_token": entry.id,
        "accessor": entry.accessor,
        "policies": entry.policies,
        "token_policies": entry.policies,
        "metadata": entry.meta,
        "lease_duration": entry.creation_ttl,
        "renewable": entry.renewable,
        "entity_id": "",
        "token_type": entry.token_type,
        "orphan": entry.orphan,
        "mfa_requirement": null,
        "num_uses": entry.num_uses,
    })
}

/// Revokes a resolved token: a minted one with the tokens it created; the root and
/// configured tokens (which live in the configuration) by their accessor.
fn revoke_view(inner: &mut Inner, view: &TokenView) {
    match view.source {
        Source::Minted => revoke_tree(inner, &view.entry.id),
        Source::Root | Source::Configured(_) => {
            inner.revoked_accessors.insert(view.entry.accessor.clone());
        }
    }
}

/// POST `auth/token/revoke-self`: revokes the caller (and tokens it created).
pub(super) fn revoke_self(cx: &mut Cx<'_>) -> Outcome {
    let caller = cx.caller.clone();
    revoke_view(cx.inner, &caller);
    cx.changed = true;
    Ok(None)
}

/// A string field of the request body, `""` when absent.
fn body_string(cx: &Cx<'_>, field: &str) -> Result<String, VErr> {
    match cx.data.get(field) {
        Some(v) => api::weak_string(v).map_err(|e| api::field_error(field, v, &e)),
        None => Ok(String::new()),
    }
}

/// POST `auth/token/revoke`: revokes the token in the body and its children. An
/// unknown or already revoked token is a no-op 204, as in Vault's `revokeCommon`.
pub(super) fn revoke(cx: &mut Cx<'_>) -> Outcome {
    let secret = body_string(cx, "token")?;
    if secret.is_empty() {
        return Err(VErr::bad("missing token ID"));
    }
    let now = cx.now;
    if let Some(view) = resolve(cx.inner, cx.state, &secret, now) {
        revoke_view(cx.inner, &view);
        cx.changed = true;
    }
    Ok(None)
}

/// POST `auth/token/revoke-accessor`: revokes the token behind an accessor; an
/// unknown accessor is 400 `invalid accessor` (Vault's `lookupByAccessor`).
pub(super) fn revoke_accessor(cx: &mut Cx<'_>) -> Outcome {
    let accessor = body_string(cx, "accessor")?;
    if accessor.is_empty() {
        return Err(VErr::bad("missing accessor"));
    }
    let minted = cx
        .inner
        .tokens
        .values()
        .find(|t| t.accessor == accessor)
        .map(|t| t.id.clone());
    if let Some(id) = minted {
        revoke_tree(cx.inner, &id);
        cx.changed = true;
        return Ok(None);
    }
    let config = &cx.state.ctx.config;
    let configured = std::iter::once(config.vault_root_token.as_str())
        .chain(config.tokens_for(Product::Vault).map(|t| t.secret.as_str()))
        .any(|secret| fixed_accessor(secret) == accessor);
    if !configured || cx.inner.revoked_accessors.contains(&accessor) {
        return Err(VErr::bad("invalid accessor"));
    }
    cx.inner.revoked_accessors.insert(accessor);
    cx.changed = true;
    Ok(None)
}

/// POST `auth/token/renew-self`.
pub(super) fn renew_self(cx: &mut Cx<'_>) -> Outcome {
    let increment = match cx.data.get("increment") {
        None => 0,
        Some(v) => {
            api::parse_duration_second(v).map_err(|e| api::field_error("increment", v, &e))?
        }
    };
    if cx.caller.source != Source::Minted || !cx.caller.entry.renewable {
        return Err(VErr::bad("lease is not renewable"));
    }
    let now = cx.now;
    let max = cx.state.cfg.max_lease_ttl_secs as i64;
    let Some(entry) = cx.inner.tokens.get_mut(&cx.caller.entry.id) else {
        return Err(VErr::code(403, "permission denied"));
    };
    let mut ttl = if entry.period > 0 {
        entry.period
    } else if increment > 0 {
        increment
    } else {
        entry.creation_ttl
    };
    let hard_limit = if entry.explicit_max_ttl > 0 {
        entry.creation_time + entry.explicit_max_ttl
    } else if entry.period > 0 {
        i64::MAX
    } else {
        entry.creation_time + max
    };
    ttl = ttl.min(hard_limit.saturating_sub(now)).max(0);
    entry.expire_at = Some(now + ttl);
    entry.last_renewal = Some(now);
    let mut auth = auth_block(entry);
    auth["lease_duration"] = json!(ttl);
    cx.changed = true;
    Ok(Some(Resp {
        auth: Some(auth),
        ..Resp::default()
    }))
}
