//! Role writes (`pathRoleCreateUpdate` and the SDK's `tokenutil.ParseTokenFields`).

use super::super::Cx;
use super::super::api::{self, Op, Outcome, Resp, VErr};
use super::super::policy::go_quote;
use super::{Fields, backend};
use serde_json::{Map, Value};

const ROLE_FIELDS: &[&str] = &[
    "name",
    "role_type",
    "policies",
    "num_uses",
    "ttl",
    "max_ttl",
    "period",
    "bound_cidrs",
    "expiration_leeway",
    "not_before_leeway",
    "clock_skew_leeway",
    "bound_subject",
    "bound_audiences",
    "bound_claims_type",
    "bound_claims",
    "claim_mappings",
    "oauth2_metadata",
    "user_claim",
    "user_claim_json_pointer",
    "groups_claim",
    "oidc_scopes",
    "allowed_redirect_uris",
    "verbose_oidc_logging",
    "max_age",
    "token_bound_cidrs",
    "token_explicit_max_ttl",
    "token_max_ttl",
    "token_no_default_policy",
    "token_period",
    "token_policies",
    "token_type",
    "token_ttl",
    "token_num_uses",
];

/// Validates every present field's type first, as the framework does before the
/// handler runs.
fn validate_types(f: &Fields<'_>) -> Result<(), VErr> {
    for key in [
        "role_type",
        "bound_subject",
        "user_claim",
        "groups_claim",
        "bound_claims_type",
        "token_type",
    ] {
        f.string(key)?;
    }
    for key in [
        "bound_audiences",
        "oidc_scopes",
        "allowed_redirect_uris",
        "oauth2_metadata",
        "token_policies",
        "policies",
        "token_bound_cidrs",
        "bound_cidrs",
    ] {
        f.strings(key)?;
    }
    for key in [
        "ttl",
        "max_ttl",
        "period",
        "max_age",
        "token_ttl",
        "token_max_ttl",
        "token_period",
        "token_explicit_max_ttl",
        "expiration_leeway",
        "not_before_leeway",
        "clock_skew_leeway",
    ] {
        f.secs(key)?;
    }
    for key in [
        "user_claim_json_pointer",
        "verbose_oidc_logging",
        "token_no_default_policy",
    ] {
        f.boolean(key)?;
    }
    for key in ["num_uses", "token_num_uses"] {
        f.int(key)?;
    }
    f.conv("bound_claims", api::parse_map)?;
    f.conv("claim_mappings", api::parse_kv_pairs)?;
    Ok(())
}

/// `tokenutil.UpgradeValue` for one deprecated/new pair of integer-like fields.
fn upgrade<T: Clone + Default>(new: Option<T>, old: Option<T>, old_val: &mut T, new_val: &mut T) {
    match (new, old) {
        (None, Some(o)) => {
            *old_val = o.clone();
            *new_val = o;
        }
        (Some(_), Some(_)) => *old_val = new_val.clone(),
        (Some(_), None) => *old_val = T::default(),
        (None, None) => {}
    }
}

fn parse_cidrs(values: Vec<String>) -> Result<Vec<String>, VErr> {
    for v in &values {
        let addr = v.split('/').next().unwrap_or("");
        let ok_ip = addr.parse::<std::net::IpAddr>().is_ok();
        let ok_mask = v
            .split_once('/')
            .is_none_or(|(_, m)| m.parse::<u8>().is_ok_and(|m| m <= 128));
        if !ok_ip || !ok_mask {
            return Err(VErr::bad(format!("invalid CIDR address: {v}")));
        }
    }
    Ok(values)
}

/// POST/PUT `auth/<mount>/role/<name>` (`pathRoleCreateUpdate`).
pub(in crate::vault) fn role_write(cx: &mut Cx<'_>, mount: &str, name: &str, op: Op) -> Outcome {
    backend(cx.inner, mount)?;
    let version = cx.state.version;
    let max_lease = cx.state.cfg.max_lease_ttl_secs as i64;
    let existing = cx
        .inner
        .jwt
        .get(mount)
        .and_then(|b| b.roles.get(name))
        .cloned();
    if existing.is_none() && op == Op::Update {
        return Err(VErr::code(
            500,
            "role entry not found during update operation",
        ));
    }
    let mut role = existing.unwrap_or_default();
    let f = Fields { data: &cx.data };
    validate_types(&f)?;

    let role_type = f.string("role_type")?.unwrap_or_default();
    let role_type = if role_type.is_empty() {
        "oidc".to_string()
    } else {
        role_type
    };
    if role_type != "jwt" && role_type != "oidc" {
        return Err(VErr::bad(format!("invalid 'role_type': {role_type}")));
    }
    role.role_type = role_type.clone();

    // tokenutil.ParseTokenFields
    let token_err = |msg: &str| VErr::bad(msg.to_string());
    if let Some(cidrs) = f.strings("token_bound_cidrs")? {
        role.token_bound_cidrs = parse_cidrs(cidrs)?;
    }
    if let Some(v) = f.secs("token_explicit_max_ttl")? {
        role.token_explicit_max_ttl = v;
    }
    if let Some(v) = f.secs("token_max_ttl")? {
        role.token_max_ttl = v;
    }
    if role.token_max_ttl < 0 {
        return Err(token_err("'token_max_ttl' cannot be negative"));
    }
    if let Some(v) = f.boolean("token_no_default_policy")? {
        role.token_no_default_policy = v;
    }
    if let Some(v) = f.secs("token_period")? {
        role.token_period = v;
    }
    if role.token_period < 0 {
        return Err(token_err("'token_period' cannot be negative"));
    }
    if let Some(v) = f.strings("token_policies")? {
        role.token_policies = v;
    }
    if let Some(t) = f.string("token_type")? {
        role.token_type = match t.as_str() {
            "" | "default" => "default".into(),
            "service" | "batch" => t,
            _ => {
                return Err(VErr::bad(format!(
                    "invalid 'token_type' value {}",
                    go_quote(&t)
                )));
            }
        };
    }
    if role.token_type.is_empty() {
        role.token_type = "default".into();
    }
    if let Some(v) = f.int("token_num_uses")? {
        role.token_num_uses = v;
    }
    if role.token_num_uses < 0 {
        return Err(token_err("'token_num_uses' cannot be negative"));
    }
    if role.token_type == "batch" {
        if role.token_period != 0 {
            return Err(token_err(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
            ));
        }
        if role.token_num_uses != 0 {
            return Err(token_err(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
            ));
        }
    }
    if let Some(v) = f.secs("token_ttl")? {
        role.token_ttl = v;
    }
    if role.token_ttl < 0 {
        return Err(token_err("'token_ttl' cannot be negative"));
    }
    if role.token_ttl > 0 && role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
        return Err(token_err(
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ));
    }

    // Deprecated fields (tokenutil.UpgradeValue).
    {
        let new = f.strings("token_policies")?;
        match (new, f.strings("policies")?) {
            (None, Some(old)) => {
                let sanitized = super::super::token::sanitize_policies(old, false);
                role.policies = Some(sanitized.clone());
                role.token_policies = sanitized;
            }
            (Some(_), Some(_)) => role.policies = Some(role.token_policies.clone()),
            (Some(_), None) => role.policies = None,
            (None, None) => {}
        }
        match (f.strings("token_bound_cidrs")?, f.strings("bound_cidrs")?) {
            (None, Some(old)) => {
                let cidrs = parse_cidrs(old)?;
                role.bound_cidrs = Some(cidrs.clone());
                role.token_bound_cidrs = cidrs;
            }
            (Some(_), Some(_)) => role.bound_cidrs = Some(role.token_bound_cidrs.clone()),
            (Some(_), None) => role.bound_cidrs = None,
            (None, None) => {}
        }
        let mut tmp = role.token_num_uses;
        upgrade(
            f.int("token_num_uses")?,
            f.int("num_uses")?,
            &mut role.num_uses,
            &mut tmp,
        );
        role.token_num_uses = tmp;
        let mut tmp = role.token_ttl;
        upgrade(
            f.secs("token_ttl")?,
            f.secs("ttl")?,
            &mut role.ttl,
            &mut tmp,
        );
        role.token_ttl = tmp;
        let mut tmp = role.token_max_ttl;
        upgrade(
            f.secs("token_max_ttl")?,
            f.secs("max_ttl")?,
            &mut role.max_ttl,
            &mut tmp,
        );
        role.token_max_ttl = tmp;
        let mut tmp = role.token_period;
        upgrade(
            f.secs("token_period")?,
            f.secs("period")?,
            &mut role.period,
            &mut tmp,
        );
        role.token_period = tmp;
    }

    if role.token_period > max_lease {
        let fmt = |s: i64| {
            go_quote(&crate::blocking::format_go_duration(
                std::time::Duration::from_secs(s.max(0) as u64),
            ))
        };
        return Err(VErr::bad(format!(
            "'period' of '{}' is greater than the backend's maximum lease TTL of '{}'",
            fmt(role.token_period),
            fmt(max_lease)
        )));
    }
    if let Some(v) = f.secs("expiration_leeway")? {
        role.expiration_leeway = v;
    }
    if let Some(v) = f.secs("not_before_leeway")? {
        role.not_before_leeway = v;
    }
    if let Some(v) = f.secs("clock_skew_leeway")? {
        role.clock_skew_leeway = v;
    }
    if let Some(v) = f.strings("bound_audiences")? {
        role.bound_audiences = Some(v);
    }
    if let Some(v) = f.string("bound_subject")? {
        role.bound_subject = v;
    }
    if let Some(v) = f.boolean("verbose_oidc_logging")? {
        role.verbose_oidc_logging = v;
    }
    if let Some(v) = f.secs("max_age")? {
        role.max_age = v;
    }
    let claims_type = f
        .string("bound_claims_type")?
        .unwrap_or_else(|| "string".into());
    match claims_type.as_str() {
        "string" | "glob" => role.bound_claims_type = claims_type.clone(),
        _ => {
            return Err(VErr::bad(format!(
                "invalid 'bound_claims_type': {claims_type}"
            )));
        }
    }
    if let Some(claims) = f.conv("bound_claims", api::parse_map)? {
        if claims_type == "glob" {
            for value in claims.values() {
                let list: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    Value::String(_) => vec![value],
                    other => {
                        return Err(VErr::bad(format!(
                            "claim is not a string or list: {}",
                            api::go_fmt(other)
                        )));
                    }
                };
                if let Some(bad) = list.iter().find(|v| !v.is_string()) {
                    return Err(VErr::bad(format!(
                        "claim is not a string: {}",
                        api::go_fmt(bad)
                    )));
                }
            }
        }
        role.bound_claims = Some(claims);
    }
    if let Some(mappings) = f.conv("claim_mappings", api::parse_kv_pairs)? {
        let mut targets = std::collections::BTreeSet::new();
        for target in mappings.values() {
            if target == "role" {
                return Err(VErr::bad(format!(
                    "metadata key {} is reserved and may not be a mapping destination",
                    go_quote(target)
                )));
            }
            if !targets.insert(target.clone()) {
                return Err(VErr::bad(format!(
                    "multiple keys are mapped to metadata key {}",
                    go_quote(target)
                )));
            }
        }
        role.claim_mappings = Some(mappings);
    }
    if let Some(v) = f.strings("oauth2_metadata")? {
        role.oauth2_metadata = Some(v);
    }
    if let Some(v) = f.string("user_claim")? {
        role.user_claim = v;
    }
    if role.user_claim.is_empty() {
        return Err(VErr::bad("a user claim must be defined on the role"));
    }
    if let Some(v) = f.boolean("user_claim_json_pointer")? {
        role.user_claim_json_pointer = v;
    }
    if let Some(v) = f.string("groups_claim")? {
        role.groups_claim = v;
    }
    if let Some(v) = f.strings("oidc_scopes")? {
        role.oidc_scopes = Some(v);
    }
    if let Some(v) = f.strings("allowed_redirect_uris")? {
        role.allowed_redirect_uris = Some(v);
    }
    if role.role_type == "oidc"
        && role
            .allowed_redirect_uris
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(VErr::bad(
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ));
    }
    if role_type != "oidc"
        && role.bound_audiences.as_ref().is_none_or(Vec::is_empty)
        && role.token_bound_cidrs.is_empty()
        && role.bound_subject.is_empty()
        && role.bound_claims.as_ref().is_none_or(Map::is_empty)
    {
        return Err(VErr::bad(
            "must have at least one bound constraint when creating/updating a role",
        ));
    }
    if role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
        return Err(VErr::bad("ttl should not be greater than max ttl"));
    }
    let mut warnings = Vec::new();
    if role.token_max_ttl > max_lease {
        warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_string());
    }
    if role.verbose_oidc_logging {
        warnings.push("verbose_oidc_logging has been enabled for this role. This is not recommended in production since sensitive information may be present in OIDC responses.".to_string());
    }
    if version.at_least(1, 13) {
        let unknown = api::unknown_fields(&cx.data, ROLE_FIELDS);
        if !unknown.is_empty() {
            warnings.push(api::ignored_warning(&unknown));
        }
    }
    if let Some(b) = cx.inner.jwt.get_mut(mount)
        && b.roles.get(name) != Some(&role)
    {
        b.roles.insert(name.to_string(), role);
        cx.changed = true;
    }
    if warnings.is_empty() && version.at_least(1, 11) {
        return Ok(None);
    }
    Ok(Some(Resp::warnings(warnings)))
}
