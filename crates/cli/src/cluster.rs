//! What `steward doctor` and `steward bootstrap` share: the settings resolved as
//! `steward run` resolves them, the clients from the standard env vars, and the reads
//! of the prerequisites (pure parsing of their answers, I/O kept thin).

use std::collections::BTreeSet;

use anyhow::Context as _;
use serde_json::Value;
use steward_hashi::transport::Transport;
use steward_hashi::{ConsulClient, NomadClient, QueryOptions, RequestSpec, VaultClient};
use steward_operator::OperatorConfig;

use crate::args::ClusterArgs;
use crate::operator::{load_config, parse_gateway};

/// The settings of `steward run` for the same flags: the file (or defaults), then the
/// flags.
///
/// # Errors
/// Unreadable config file, a bad `--edge-gateway`, an invalid prefix.
pub fn cluster_config(args: &ClusterArgs) -> anyhow::Result<OperatorConfig> {
    let mut config = match &args.config {
        Some(path) => load_config(path)?,
        None => OperatorConfig::default(),
    };
    if let Some(prefix) = &args.prefix {
        config.prefix = prefix.trim_end_matches('/').to_owned();
    }
    if let Some(g) = &args.edge_gateway {
        config.edge_gateway = parse_gateway(g)?;
    }
    if let Some(mount) = &args.jwt_auth_mount {
        config.jwt_auth_mount = mount.trim_matches('/').to_owned();
    }
    // Nothing here listens: the operator's listen check does not apply.
    config.listen = None;
    config.validate()?;
    Ok(config)
}

/// The three clients, from the CONSUL_*, NOMAD_* and VAULT_* variables.
pub struct Servers {
    /// Consul.
    pub consul: ConsulClient,
    /// Nomad.
    pub nomad: NomadClient,
    /// Vault.
    pub vault: VaultClient,
}

impl Servers {
    /// Reads the standard variables.
    ///
    /// # Errors
    /// A variable with an unusable value (bad address, unreadable CA file...).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            consul: ConsulClient::from_env()
                .context("Consul client configuration (CONSUL_* env)")?,
            nomad: NomadClient::from_env().context("Nomad client configuration (NOMAD_* env)")?,
            vault: VaultClient::from_env().context("Vault client configuration (VAULT_* env)")?,
        })
    }
}

/// Reads JSON; `None` for 404 (and for an empty 2xx body, which is how Vault answers
/// a read of something unset).
///
/// # Errors
/// Transport errors and other statuses.
pub async fn get_json(t: &Transport, path: &str) -> steward_hashi::Result<Option<Value>> {
    t.call(RequestSpec::get(path).accept(&[404]), |raw| {
        if raw.status == 404 || raw.body.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            raw.json().map(Some)
        }
    })
    .await
}

/// The Nomad namespaces of spec keys `<prefix>/specs/<ns>/<name>`.
pub fn namespaces_of_kv_keys(prefix: &str, keys: &[String]) -> BTreeSet<String> {
    let specs = crate::push::plan::specs_prefix(prefix);
    keys.iter()
        .filter_map(|k| k.strip_prefix(&specs))
        .filter_map(|rest| rest.split_once('/'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .map(|(ns, _)| ns.to_owned())
        .collect()
}

/// The namespaces of the specs stored in KV.
///
/// # Errors
/// Consul errors (an absent prefix is no error: no specs).
pub async fn kv_spec_namespaces(
    consul: &ConsulClient,
    prefix: &str,
) -> steward_hashi::Result<BTreeSet<String>> {
    let specs = crate::push::plan::specs_prefix(prefix);
    match consul.kv_keys(&specs, None, &QueryOptions::new()).await {
        Ok(r) => Ok(namespaces_of_kv_keys(prefix, &r.value)),
        Err(steward_hashi::Error::NotFound { .. }) => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// The names in Nomad's `GET /v1/namespaces` answer.
pub fn namespace_names(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("Name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Vault's `GET sys/auth` table (`data`, or the top level of older servers): the type
/// of the method mounted at `mount`, if any.
pub fn auth_mount_type(table: &Value, mount: &str) -> Option<String> {
    let key = format!("{}/", mount.trim_matches('/'));
    let table = table.get("data").filter(|d| d.is_object()).unwrap_or(table);
    table
        .get(&key)
        .and_then(|m| m.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether a JWT auth config (`data` of `GET auth/<mount>/config`) names a way to
/// verify tokens: a JWKS URL, an OIDC discovery URL or public keys.
pub fn jwt_config_verifier(config: &Value) -> Option<String> {
    let data = config.get("data").unwrap_or(config);
    let text = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(url) = text("jwks_url") {
        return Some(format!("jwks_url {url}"));
    }
    if let Some(url) = text("oidc_discovery_url") {
        return Some(format!("oidc_discovery_url {url}"));
    }
    data.get("jwt_validation_pubkeys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty())
        .map(|keys| format!("{} public key(s)", keys.len()))
}

/// Nomad's JWKS URL, which Vault's JWT auth method verifies workload identities with.
pub fn nomad_jwks_url(nomad_base_url: &str) -> String {
    format!(
        "{}/.well-known/jwks.json",
        nomad_base_url.trim_end_matches('/')
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_keys_give_their_namespaces_once() {
        let keys = [
            "steward/specs/trading/order-api",
            "steward/specs/trading/ledger",
            "steward/specs/default/hello",
            "steward/specs/stray",
            "steward/status/ops/x",
        ]
        .map(str::to_owned);
        let ns = namespaces_of_kv_keys("steward", &keys);
        assert_eq!(ns.into_iter().collect::<Vec<_>>(), ["default", "trading"]);
    }

    #[test]
    fn auth_mounts_are_found_in_data_or_at_the_top_level() {
        let new = json!({"data": {"jwt-nomad/": {"type": "jwt"}, "token/": {"type": "token"}}});
        assert_eq!(auth_mount_type(&new, "jwt-nomad").as_deref(), Some("jwt"));
        let old = json!({"jwt-nomad/": {"type": "jwt"}});
        assert_eq!(auth_mount_type(&old, "/jwt-nomad/").as_deref(), Some("jwt"));
        assert_eq!(auth_mount_type(&new, "oidc"), None);
    }

    #[test]
    fn a_jwt_config_needs_a_way_to_verify_tokens() {
        let c = json!({"data": {"jwks_url": "http://n:4646/.well-known/jwks.json", "oidc_discovery_url": ""}});
        assert_eq!(
            jwt_config_verifier(&c).as_deref(),
            Some("jwks_url http://n:4646/.well-known/jwks.json")
        );
        assert_eq!(
            jwt_config_verifier(&json!({"data": {"jwks_url": ""}})),
            None
        );
        assert_eq!(
            nomad_jwks_url("http://127.0.0.1:4646/"),
            "http://127.0.0.1:4646/.well-known/jwks.json"
        );
    }

    #[test]
    fn namespace_lists_give_names() {
        let list = json!([{"Name": "default"}, {"Name": "trading"}]);
        assert_eq!(namespace_names(&list).len(), 2);
    }
}
