//! The mount configuration (`pathConfigWrite`), without network access.

use super::super::api::{self, Outcome, Resp, VErr};
use super::super::policy::go_quote;
use super::super::{Cx, data_resp};
use super::{Config, Fields, backend};
use serde_json::json;

/// GET `auth/<mount>/config`.
pub(in crate::vault) fn config_read(cx: &mut Cx<'_>, mount: &str) -> Outcome {
    let Some(c) = &backend(cx.inner, mount)?.config else {
        return Ok(None);
    };
    data_resp(json!({
        "oidc_discovery_url": c.oidc_discovery_url,
        "oidc_discovery_ca_pem": c.oidc_discovery_ca_pem,
        "oidc_client_id": c.oidc_client_id,
        "oidc_response_mode": c.oidc_response_mode,
        "oidc_response_types": c.oidc_response_types,
        "default_role": c.default_role,
        "jwt_validation_pubkeys": c.jwt_validation_pubkeys,
        "jwt_supported_algs": c.jwt_supported_algs,
        "jwks_url": c.jwks_url,
        "jwks_ca_pem": c.jwks_ca_pem,
        "jwks_pairs": [],
        "bound_issuer": c.bound_issuer,
        "provider_config": c.provider_config,
        "namespace_in_state": c.namespace_in_state,
        "unsupported_critical_cert_extensions": [],
    }))
}

const CONFIG_FIELDS: &[&str] = &[
    "oidc_discovery_url",
    "oidc_discovery_ca_pem",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_response_mode",
    "oidc_response_types",
    "jwks_url",
    "jwks_ca_pem",
    "jwks_pairs",
    "default_role",
    "jwt_validation_pubkeys",
    "jwt_supported_algs",
    "bound_issuer",
    "provider_config",
    "namespace_in_state",
    "unsupported_critical_cert_extensions",
];

/// POST `auth/<mount>/config` (`pathConfigWrite`), without network access: a
/// `jwks_url` is reachable only when listed in `VaultSimConfig::reachable_jwks_urls`
/// or when it is a loopback `/.well-known/jwks.json` URL.
pub(in crate::vault) fn config_write(cx: &mut Cx<'_>, mount: &str) -> Outcome {
    backend(cx.inner, mount)?;
    let f = Fields { data: &cx.data };
    let s = |k: &str| f.string(k).map(Option::unwrap_or_default);
    let l = |k: &str| f.strings(k).map(Option::unwrap_or_default);
    let config = Config {
        oidc_discovery_url: s("oidc_discovery_url")?,
        oidc_discovery_ca_pem: s("oidc_discovery_ca_pem")?,
        oidc_client_id: s("oidc_client_id")?,
        oidc_client_secret: s("oidc_client_secret")?,
        oidc_response_mode: s("oidc_response_mode")?,
        oidc_response_types: l("oidc_response_types")?,
        jwks_url: s("jwks_url")?,
        jwks_ca_pem: s("jwks_ca_pem")?,
        jwt_validation_pubkeys: l("jwt_validation_pubkeys")?,
        jwt_supported_algs: l("jwt_supported_algs")?,
        bound_issuer: s("bound_issuer")?,
        default_role: s("default_role")?.to_lowercase(),
        provider_config: f
            .conv("provider_config", api::parse_map)?
            .unwrap_or_default(),
        namespace_in_state: f.boolean("namespace_in_state")?.unwrap_or(true),
    };
    let methods = [
        !config.oidc_discovery_url.is_empty(),
        !config.jwt_validation_pubkeys.is_empty(),
        !config.jwks_url.is_empty(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if methods != 1 {
        return Err(VErr::bad(
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
        ));
    }
    if config.oidc_client_id.is_empty() != config.oidc_client_secret.is_empty() {
        return Err(VErr::bad(
            "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC",
        ));
    }
    if !config.oidc_discovery_url.is_empty() {
        if !is_http_url(&config.oidc_discovery_url) {
            return Err(VErr::bad(format!(
                "error checking oidc discovery URL: error creating provider with given values: Get \"{}/.well-known/openid-configuration\": unsupported protocol scheme \"\"",
                config.oidc_discovery_url
            )));
        }
    } else if !config.oidc_client_id.is_empty() {
        return Err(VErr::bad("'oidc_discovery_url' must be set for OIDC"));
    } else if !config.jwks_url.is_empty() {
        if !jwks_reachable(&cx.state.cfg.reachable_jwks_urls, &config.jwks_url) {
            return Err(VErr::bad(unreachable_jwks(&config.jwks_url)));
        }
    } else {
        for key in &config.jwt_validation_pubkeys {
            if !is_public_key_pem(key) {
                return Err(VErr::bad(
                    "error parsing public key: data does not contain any valid public keys",
                ));
            }
        }
    }
    for alg in &config.jwt_supported_algs {
        if !matches!(
            alg.as_str(),
            "RS256"
                | "RS384"
                | "RS512"
                | "ES256"
                | "ES384"
                | "ES512"
                | "PS256"
                | "PS384"
                | "PS512"
                | "EdDSA"
        ) {
            return Err(VErr::bad(format!("Invalid supported algorithm: {alg}")));
        }
    }
    if config
        .oidc_response_types
        .iter()
        .any(|t| t != "code" && t != "id_token")
    {
        return Err(VErr::bad(format!(
            "invalid response_types [{}]. 'code' and 'id_token' are allowed",
            config.oidc_response_types.join(" ")
        )));
    }
    match config.oidc_response_mode.as_str() {
        "" | "query" => {
            if config.oidc_response_types.iter().any(|t| t == "id_token") {
                return Err(VErr::bad(
                    "query response_mode may not be used with an id_token response_type",
                ));
            }
        }
        "form_post" => {}
        other => {
            return Err(VErr::bad(format!(
                "invalid response_mode: {}",
                go_quote(other)
            )));
        }
    }
    let mut warnings = Vec::new();
    if cx.state.version.at_least(1, 13) {
        let unknown = api::unknown_fields(&cx.data, CONFIG_FIELDS);
        if !unknown.is_empty() {
            warnings.push(api::ignored_warning(&unknown));
        }
    }
    if let Some(b) = cx.inner.jwt.get_mut(mount)
        && b.config.as_ref() != Some(&config)
    {
        b.config = Some(config);
        cx.changed = true;
    }
    Ok((!warnings.is_empty()).then(|| Resp::warnings(warnings)))
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn jwks_reachable(listed: &[String], url: &str) -> bool {
    if listed.iter().any(|u| u == url) {
        return true;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host_port
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host_port)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback && format!("/{path}") == "/.well-known/jwks.json"
}

/// The error `oidc.NewRemoteKeySet` produces for a URL nothing answers on.
fn unreachable_jwks(url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return format!(
            "error checking jwks URL: fetching keys oidc: get keys failed: Get {}: unsupported protocol scheme \"\"",
            go_quote(url)
        );
    };
    let host_port = rest.split('/').next().unwrap_or(rest);
    let default_port = if url.starts_with("https://") {
        "443"
    } else {
        "80"
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || host_port.starts_with('[') => (h, p),
        _ => (host_port, default_port),
    };
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
    let cause = if loopback {
        format!("dial tcp {host}:{port}: connect: connection refused")
    } else {
        format!("dial tcp: lookup {host}: no such host")
    };
    format!(
        "error checking jwks URL: fetching keys oidc: get keys failed: Get {}: {cause}",
        go_quote(url)
    )
}

fn is_public_key_pem(pem: &str) -> bool {
    use base64::Engine;
    let trimmed = pem.trim();
    ["PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"]
        .iter()
        .any(|label| {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let Some(body) = trimmed
                .strip_prefix(&begin)
                .and_then(|b| b.split(&end).next())
            else {
                return false;
            };
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            !compact.is_empty()
                && base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_jwks_endpoints_are_reachable() {
        assert!(jwks_reachable(
            &[],
            "http://127.0.0.1:4646/.well-known/jwks.json"
        ));
        assert!(!jwks_reachable(
            &[],
            "https://nomad.example:4646/.well-known/jwks.json"
        ));
        assert!(jwks_reachable(
            &["https://x/jwks".to_string()],
            "https://x/jwks"
        ));
        assert!(
            unreachable_jwks("http://127.0.0.1:9/keys").ends_with("connect: connection refused")
        );
    }
}
