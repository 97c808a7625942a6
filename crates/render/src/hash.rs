//! The spec hash: a fingerprint of exactly what the objects are rendered from.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use steward_spec::ServiceSpec;

use crate::context::{GatewayRef, RenderContext};
use crate::error::{Error, Result};

/// What the hash covers besides the spec: the context fields that shape objects.
/// `generation` and the replica override are left out on purpose: the first is
/// informational, the second changes with the clock and is diffed as `Count` instead.
#[derive(Serialize)]
struct Hashed<'a> {
    spec: &'a ServiceSpec,
    edge_gateway: &'a GatewayRef,
    jwt_auth_mount: &'a str,
    jwt_audience: &'a str,
}

/// SHA-256 (lower-case hex) of the canonical JSON of the loaded spec (every default
/// filled in) and of the context fields that shape objects (`edge_gateway`,
/// `jwt_auth_mount`, `jwt_audience`).
///
/// Canonical JSON: object keys sorted at every level, no whitespace. Key order in the
/// YAML therefore never changes the hash, and neither does writing a default out.
///
/// # Errors
/// [`Error::Serialise`] if the spec cannot be serialised (not expected for a loaded spec).
pub fn spec_hash(spec: &ServiceSpec, ctx: &RenderContext) -> Result<String> {
    let hashed = Hashed {
        spec,
        edge_gateway: &ctx.edge_gateway,
        jwt_auth_mount: &ctx.jwt_auth_mount,
        jwt_audience: &ctx.jwt_audience,
    };
    let value = serde_json::to_value(&hashed).map_err(|source| Error::Serialise {
        key: spec.key(),
        source,
    })?;
    let canonical = canonical_json(&value);
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// Compact JSON with object keys sorted at every level.
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    sorted(value).to_string()
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let out: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect();
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [ {"y": 1, "x": 2} ], "c": 3}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":3,"d":[{"x":2,"y":1}]},"b":1}"#
        );
    }
}
