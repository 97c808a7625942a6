//! What Vault returns for a written JWT role, and policy text formatted another way.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::{obj_mut, sort_keys};

/// The `data` of `GET /v1/auth/<mount>/role/<name>` after writing `body` (reference §9 and
/// the captured `jwt-role-read`): durations in seconds, audiences as a list, every other
/// field at its zero value, keys sorted.
pub fn vault_role_read_form(body: &Value) -> Value {
    let mut data = json!({
        "allowed_redirect_uris": null,
        "bound_audiences": [],
        "bound_claims": null,
        "bound_claims_type": "string",
        "bound_subject": "",
        "claim_mappings": null,
        "clock_skew_leeway": 0,
        "expiration_leeway": 0,
        "groups_claim": "",
        "max_age": 0,
        "not_before_leeway": 0,
        "oidc_scopes": null,
        "role_type": "oidc",
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": 0,
        "token_no_default_policy": false,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": [],
        "token_ttl": 0,
        "token_type": "default",
        "user_claim": "",
        "user_claim_json_pointer": false,
        "verbose_oidc_logging": false
    });
    let d = obj_mut(&mut data);
    for (k, v) in body.as_object().unwrap() {
        let v = match (k.as_str(), v) {
            ("token_period" | "token_ttl" | "token_max_ttl", Value::String(s)) => {
                json!(steward_spec::Duration::parse(s).unwrap().as_secs())
            }
            ("bound_audiences", Value::String(s)) => json!([s]),
            (_, v) => v.clone(),
        };
        d.insert(k.clone(), v);
    }
    sort_keys(&data)
}

/// A policy text as another writer might have stored it: same rules, different
/// formatting (one line per block, capabilities in another order), the marker kept.
/// Vault itself stores the text as given (reference §7.1); this proves the diff reads
/// the parsed body, not the text.
pub fn policy_reformatted(hcl: &str) -> String {
    let marker = hcl.lines().next().unwrap();
    let body: hcl::Body = hcl::from_str(hcl).unwrap();
    let mut out = format!("{marker}\n\n");
    for block in body.blocks() {
        let path = block.labels()[0].as_str();
        let caps: Value = hcl::from_body(block.body().clone()).unwrap();
        let mut caps: Vec<String> = caps["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        caps.reverse();
        let caps: Vec<String> = caps.iter().map(|c| format!("\"{c}\"")).collect();
        out.push_str(&format!(
            "path \"{path}\" {{ capabilities = [{}] }}\n",
            caps.join(",")
        ));
    }
    out
}
