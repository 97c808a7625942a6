//! The JWT/OIDC auth method (`vault-plugin-auth-jwt`): roles and mount config.
//! Field handling follows the plugin's `path_role.go` and `path_config.go` and the
//! SDK's `tokenutil`; no JWT is ever verified and no network request is made.

mod config;
mod role;

pub(super) use config::{config_read, config_write};
pub(super) use role::role_write;

use super::api::{self, Outcome, Resp, VErr, Version};
use super::policy::go_quote;
use super::{Cx, Inner, data_resp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The state of one JWT/OIDC mount.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backend {
    pub roles: BTreeMap<String, Role>,
    pub config: Option<Config>,
}

/// A stored role (`jwtRole`); `None` lists are Go's nil slices (read as `null`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Role {
    pub role_type: String,
    pub expiration_leeway: i64,
    pub not_before_leeway: i64,
    pub clock_skew_leeway: i64,
    pub bound_audiences: Option<Vec<String>>,
    pub bound_subject: String,
    pub bound_claims_type: String,
    pub bound_claims: Option<Map<String, Value>>,
    pub claim_mappings: Option<BTreeMap<String, String>>,
    pub oauth2_metadata: Option<Vec<String>>,
    pub user_claim: String,
    pub user_claim_json_pointer: bool,
    pub groups_claim: String,
    pub oidc_scopes: Option<Vec<String>>,
    pub allowed_redirect_uris: Option<Vec<String>>,
    pub verbose_oidc_logging: bool,
    pub max_age: i64,
    pub token_bound_cidrs: Vec<String>,
    pub token_explicit_max_ttl: i64,
    pub token_max_ttl: i64,
    pub token_no_default_policy: bool,
    pub token_num_uses: i64,
    pub token_period: i64,
    pub token_policies: Vec<String>,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    pub token_ttl: i64,
    /// Deprecated fields, kept when a client wrote them.
    pub policies: Option<Vec<String>>,
    pub ttl: i64,
    pub max_ttl: i64,
    pub period: i64,
    pub num_uses: i64,
    pub bound_cidrs: Option<Vec<String>>,
}

/// The mount configuration (`jwtConfig`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub oidc_discovery_url: String,
    pub oidc_discovery_ca_pem: String,
    pub oidc_client_id: String,
    pub oidc_client_secret: String,
    pub oidc_response_mode: String,
    pub oidc_response_types: Vec<String>,
    pub jwks_url: String,
    pub jwks_ca_pem: String,
    pub jwt_validation_pubkeys: Vec<String>,
    pub jwt_supported_algs: Vec<String>,
    pub bound_issuer: String,
    pub default_role: String,
    pub provider_config: Map<String, Value>,
    pub namespace_in_state: bool,
}

/// `framework.GenericNameRegex`: `\w(([\w-.@]+)?\w)?`.
pub(crate) fn valid_role_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = name.chars().collect();
    match chars.as_slice() {
        [] => false,
        [c] => word(*c),
        [first, middle @ .., last] => {
            word(*first)
                && word(*last)
                && middle
                    .iter()
                    .all(|c| word(*c) || matches!(c, '-' | '.' | '@'))
        }
    }
}

fn backend<'a>(inner: &'a Inner, mount: &str) -> Result<&'a Backend, VErr> {
    inner.jwt.get(mount).ok_or_else(VErr::unsupported_path)
}

/// LIST `auth/<mount>/role`.
pub(super) fn role_list(cx: &mut Cx<'_>, mount: &str) -> Outcome {
    let keys = backend(cx.inner, mount)?.roles.keys().cloned().collect();
    Ok(Some(Resp::list(keys)))
}

/// GET `auth/<mount>/role/<name>`.
pub(super) fn role_read(cx: &mut Cx<'_>, mount: &str, name: &str) -> Outcome {
    match backend(cx.inner, mount)?.roles.get(name) {
        Some(role) => data_resp(role_data(role, cx.state.version)),
        None => Ok(None),
    }
}

/// The `data` of a role read (`pathRoleRead` plus `PopulateTokenData`).
pub(crate) fn role_data(role: &Role, version: Version) -> Value {
    let mut d = json!({
        "role_type": role.role_type,
        "expiration_leeway": role.expiration_leeway,
        "not_before_leeway": role.not_before_leeway,
        "clock_skew_leeway": role.clock_skew_leeway,
        "bound_audiences": role.bound_audiences,
        "bound_subject": role.bound_subject,
        "bound_claims_type": role.bound_claims_type,
        "bound_claims": role.bound_claims,
        "claim_mappings": role.claim_mappings,
        "user_claim": role.user_claim,
        "groups_claim": role.groups_claim,
        "allowed_redirect_uris": role.allowed_redirect_uris,
        "oidc_scopes": role.oidc_scopes,
        "verbose_oidc_logging": role.verbose_oidc_logging,
        "max_age": role.max_age,
        "token_bound_cidrs": role.token_bound_cidrs,
        "token_explicit_max_ttl": role.token_explicit_max_ttl,
        "token_max_ttl": role.token_max_ttl,
        "token_no_default_policy": role.token_no_default_policy,
        "token_period": role.token_period,
        "token_policies": role.token_policies,
        "token_type": role.token_type,
        "token_ttl": role.token_ttl,
        "token_num_uses": role.token_num_uses,
    });
    if version.at_least(1, 9) {
        d["user_claim_json_pointer"] = json!(role.user_claim_json_pointer);
    }
    if version.at_least(1, 16) {
        d["oauth2_metadata"] = json!(role.oauth2_metadata);
    }
    if role.policies.as_ref().is_some_and(|p| !p.is_empty()) {
        d["policies"] = json!(role.token_policies);
    }
    if role.bound_cidrs.as_ref().is_some_and(|p| !p.is_empty()) {
        d["bound_cidrs"] = json!(role.token_bound_cidrs);
    }
    for (key, value) in [
        ("ttl", role.ttl),
        ("max_ttl", role.max_ttl),
        ("period", role.period),
        ("num_uses", role.num_uses),
    ] {
        if value > 0 {
            d[key] = json!(value);
        }
    }
    api::sorted(d)
}

/// DELETE `auth/<mount>/role/<name>`: 204 also when the role is gone.
pub(super) fn role_delete(cx: &mut Cx<'_>, mount: &str, name: &str) -> Outcome {
    backend(cx.inner, mount)?;
    if let Some(b) = cx.inner.jwt.get_mut(mount)
        && b.roles.remove(name).is_some()
    {
        cx.changed = true;
    }
    Ok(None)
}

/// Typed access to the request fields, with the framework's conversion errors.
pub(super) struct Fields<'a> {
    pub(super) data: &'a Map<String, Value>,
}

impl Fields<'_> {
    pub(super) fn string(&self, key: &str) -> Result<Option<String>, VErr> {
        self.conv(key, api::weak_string)
    }
    pub(super) fn strings(&self, key: &str) -> Result<Option<Vec<String>>, VErr> {
        self.conv(key, api::comma_string_slice)
    }
    pub(super) fn secs(&self, key: &str) -> Result<Option<i64>, VErr> {
        self.conv(key, api::parse_duration_second)
    }
    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, VErr> {
        self.conv(key, api::parse_bool)
    }
    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, VErr> {
        self.conv(key, api::parse_int)
    }
    pub(super) fn conv<T>(
        &self,
        key: &str,
        f: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, VErr> {
        match self.data.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).map_err(|e| api::field_error(key, v, &e)),
        }
    }
}

/// `auth/<mount>/login` (unauthenticated). The simulator does not verify JWTs, so a
/// well-formed login still fails; the argument checks come first as in the plugin.
pub(super) fn login(inner: &Inner, mount: &str, data: &Map<String, Value>) -> Outcome {
    let backend = backend(inner, mount)?;
    let role = data
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|r| !r.is_empty())
        .or_else(|| {
            backend
                .config
                .as_ref()
                .map(|c| c.default_role.clone())
                .filter(|r| !r.is_empty())
        });
    let Some(role) = role else {
        return Err(VErr::bad("missing role"));
    };
    if !backend.roles.contains_key(&role.to_lowercase()) {
        return Err(VErr::bad(format!(
            "role {} could not be found",
            go_quote(&role)
        )));
    }
    if data
        .get("jwt")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(VErr::bad("missing token"));
    }
    if backend.config.is_none() {
        return Err(VErr::bad("could not load configuration"));
    }
    Err(VErr::bad(
        "error validating token: JWT login is not simulated (the simulator does not verify signatures)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_generic_name_regex() {
        assert!(valid_role_name("steward-trading-order-api"));
        assert!(valid_role_name("a"));
        assert!(valid_role_name("a.b@c_d"));
        assert!(!valid_role_name("-a"));
        assert!(!valid_role_name("a/b"));
        assert!(!valid_role_name(""));
    }
}
