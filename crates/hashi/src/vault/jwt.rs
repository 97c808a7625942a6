//! Vault JWT auth roles: `/v1/auth/<mount>/role/<name>` (reference §7.6, §9).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::request::{Idempotency, RequestSpec};
use crate::response::RawResponse;
use crate::util::{encode_segment, null_default, parse_go_duration};

/// The mount Nomad workload identities log in through by default.
pub const DEFAULT_JWT_MOUNT: &str = "jwt-nomad";

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("bad seconds {n}"))),
        Some(Value::String(s)) => {
            if let Ok(n) = s.parse::<u64>() {
                return Ok(Some(n));
            }
            parse_go_duration(&s)
                .map(|d| Some(d.as_secs()))
                .ok_or_else(|| serde::de::Error::custom(format!("bad duration {s:?}")))
        }
        Some(other) => Err(serde::de::Error::custom(format!("bad duration {other}"))),
    }
}

/// A JWT auth role. Durations are whole seconds (Vault reads them back that way).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtRole {
    /// `jwt`.
    #[serde(default)]
    pub role_type: String,
    /// Accepted `aud` values.
    #[serde(default, deserialize_with = "null_default")]
    pub bound_audiences: Vec<String>,
    /// Claim used as the user name.
    #[serde(default)]
    pub user_claim: String,
    /// `user_claim` is a JSON pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_claim_json_pointer: Option<bool>,
    /// Claims that must match.
    #[serde(default, deserialize_with = "null_default")]
    pub bound_claims: Map<String, Value>,
    /// `string` or `glob`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_claims_type: Option<String>,
    /// Claims copied into token metadata.
    #[serde(default, deserialize_with = "null_default")]
    pub claim_mappings: BTreeMap<String, String>,
    /// `service`, `batch`, `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Periodic token period (seconds).
    #[serde(
        default,
        deserialize_with = "seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_period: Option<u64>,
    /// Token TTL (seconds).
    #[serde(
        default,
        deserialize_with = "seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_ttl: Option<u64>,
    /// Token max TTL (seconds).
    #[serde(
        default,
        deserialize_with = "seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_max_ttl: Option<u64>,
    /// Policies attached to tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub token_policies: Vec<String>,
    /// Every other field, kept as returned.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn check(mount: &str, name: Option<&str>) -> Result<()> {
    if mount.is_empty() || mount.starts_with('/') || mount.ends_with('/') {
        return Err(Error::invalid_argument(format!(
            "bad vault auth mount {mount:?}"
        )));
    }
    if name.is_some_and(|n| n.is_empty() || n.contains('/')) {
        return Err(Error::invalid_argument("bad vault role name"));
    }
    Ok(())
}

fn role_path(mount: &str, name: &str) -> Result<String> {
    check(mount, Some(name))?;
    Ok(format!(
        "/v1/auth/{}/role/{}",
        crate::util::encode_path(mount),
        encode_segment(name)
    ))
}

/// `POST /v1/auth/<mount>/role/<name>`.
///
/// # Errors
/// `InvalidArgument` for a bad mount or name or a role that does not serialize.
pub fn put(mount: &str, name: &str, role: &JwtRole) -> Result<RequestSpec> {
    let body = serde_json::to_value(role)
        .map_err(|e| Error::invalid_argument(format!("role does not serialize: {e}")))?;
    Ok(
        RequestSpec::new(http::Method::POST, role_path(mount, name)?)
            .idempotency(Idempotency::Unguarded)
            .json(body),
    )
}

/// `GET /v1/auth/<mount>/role/<name>`; 404 is `None`.
///
/// # Errors
/// `InvalidArgument` for a bad mount or name.
pub fn get(mount: &str, name: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::get(role_path(mount, name)?).accept(&[404]))
}

/// Decodes a role read.
///
/// # Errors
/// `Decode` for a bad envelope.
pub fn parse_get(raw: &RawResponse) -> Result<Option<JwtRole>> {
    if raw.status == 404 {
        return Ok(None);
    }
    super::parse_data::<JwtRole>(raw).map(Some)
}

/// `DELETE /v1/auth/<mount>/role/<name>` (204 also when gone).
///
/// # Errors
/// `InvalidArgument` for a bad mount or name.
pub fn delete(mount: &str, name: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::delete(role_path(mount, name)?).idempotency(Idempotency::CasGuarded))
}

/// `LIST /v1/auth/<mount>/role`; empty is 404 and reads as `[]`.
///
/// # Errors
/// `InvalidArgument` for a bad mount.
pub fn list(mount: &str) -> Result<RequestSpec> {
    check(mount, None)?;
    Ok(super::list_spec(&format!(
        "/v1/auth/{}/role",
        crate::util::encode_path(mount)
    )))
}
