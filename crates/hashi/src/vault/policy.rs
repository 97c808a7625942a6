//! Vault ACL policies: `/v1/sys/policies/acl` (reference §7.1).

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::request::{Idempotency, RequestSpec};
use crate::response::RawResponse;
use crate::util::encode_segment;

/// A stored policy.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Policy {
    /// Name (lower case).
    pub name: String,
    /// Policy text (HCL or JSON), as stored.
    pub policy: String,
}

/// Vault lower-cases policy names; so does this client, so paths and comparisons agree.
pub fn normalize_name(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::invalid_argument(format!(
            "bad vault policy name {name:?}"
        )));
    }
    Ok(name.to_lowercase())
}

fn path(name: &str) -> Result<String> {
    Ok(format!(
        "/v1/sys/policies/acl/{}",
        encode_segment(&normalize_name(name)?)
    ))
}

/// `PUT /v1/sys/policies/acl/<name>` with `{"policy": text}` (204, or 200 with warnings).
///
/// # Errors
/// `InvalidArgument` for an empty name.
pub fn put(name: &str, policy: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::put(path(name)?).json(json!({ "policy": policy })))
}

/// `GET /v1/sys/policies/acl/<name>`; 404 is `None`.
///
/// # Errors
/// `InvalidArgument` for an empty name.
pub fn get(name: &str) -> Result<RequestSpec> {
    Ok(RequestSpec::get(path(name)?).accept(&[404]))
}

/// `DELETE /v1/sys/policies/acl/<name>` (204 also when absent).
///
/// # Errors
/// `InvalidArgument` for an empty name.
pub fn delete(name: &str) -> Result<RequestSpec> {
    // Deleting twice has the same effect as once.
    Ok(RequestSpec::delete(path(name)?).idempotency(Idempotency::CasGuarded))
}

/// `LIST /v1/sys/policies/acl`; an empty list is 404 and reads as `[]`.
pub fn list() -> RequestSpec {
    super::list_spec("/v1/sys/policies/acl")
}

/// Decodes a policy read.
///
/// # Errors
/// `Decode` for a bad envelope.
pub fn parse_get(raw: &RawResponse) -> Result<Option<Policy>> {
    if raw.status == 404 {
        return Ok(None);
    }
    super::parse_data::<Policy>(raw).map(Some)
}
