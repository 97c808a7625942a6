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

/// A digest of a Consul config entry's owned content, equal for a desired entry and the
/// live entry the server stored for it: the entry normalised
/// ([`crate::normalise::normalise_config_entry`]), without `steward.generation` and
/// `steward.hash` in `Meta` (informational; a new spec hash alone is no reason to
/// write), without Go zero values (the server fills them in), with intention sources in
/// a fixed order (the server sorts them by precedence), keys sorted.
///
/// Caches keep this instead of the body. Equal digests mean the diff is empty; unequal
/// ones mean "read the body and diff it" (the diff tolerates more than the digest does,
/// so a difference here is never taken as a change by itself).
#[must_use]
pub fn config_entry_digest(entry: &Value) -> u64 {
    let mut normalised = crate::normalise::normalise_config_entry(entry);
    if let Some(meta) = normalised.get_mut("Meta").and_then(Value::as_object_mut) {
        meta.remove(crate::names::META_GENERATION);
        meta.remove(crate::names::META_HASH);
    }
    let mut stripped = without_zero_values(&normalised).unwrap_or(Value::Null);
    if let Some(Value::Array(sources)) = stripped.get_mut("Sources") {
        sources.sort_by_cached_key(canonical_json);
    }
    let digest = Sha256::digest(canonical_json(&stripped).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A digest of any JSON value's canonical form (keys sorted): equal values, equal
/// digests. Caches keep it for what they wrote instead of the body.
#[must_use]
pub fn value_digest(value: &Value) -> u64 {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `value` without Go zero values (`null`, `""`, `0`, `false`, empty lists and maps),
/// recursively; `None` when nothing is left.
fn without_zero_values(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Bool(b) => b.then_some(Value::Bool(true)),
        Value::Number(n) => (n.as_f64() != Some(0.0)).then(|| Value::Number(n.clone())),
        Value::String(s) => (!s.is_empty()).then(|| Value::String(s.clone())),
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(without_zero_values).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| without_zero_values(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_and_what_the_server_stored_for_it_digest_alike() {
        let desired: Value = serde_json::from_str(
            r#"{"Kind": "service-intentions", "Name": "web",
                "Meta": {"steward.managed-by": "steward", "steward.spec": "a/web",
                         "steward.generation": "5", "steward.hash": "h1"},
                "Sources": [{"Name": "b", "Action": "allow"}, {"Name": "*", "Action": "deny"}]}"#,
        )
        .unwrap();
        // The server re-sorts sources, adds indexes, precedence and zero values; a new
        // generation and spec hash change nothing that is owned.
        let stored: Value = serde_json::from_str(
            r#"{"Kind": "service-intentions", "Name": "web", "Namespace": "",
                "Meta": {"steward.managed-by": "steward", "steward.spec": "a/web",
                         "steward.generation": "7", "steward.hash": "h2"},
                "Sources": [{"Name": "*", "Action": "deny", "Precedence": 8, "Type": "consul"},
                            {"Name": "b", "Action": "allow", "Precedence": 9, "Type": "consul",
                             "Description": ""}],
                "CreateIndex": 10, "ModifyIndex": 12}"#,
        )
        .unwrap();
        assert_eq!(config_entry_digest(&desired), config_entry_digest(&stored));
        // An owned change is a different digest: a hand edit, another owner.
        let mut edited = stored.clone();
        edited["Sources"][1]["Action"] = Value::from("deny");
        assert_ne!(config_entry_digest(&desired), config_entry_digest(&edited));
        let mut foreign = stored;
        foreign["Meta"]["steward.spec"] = Value::from("b/web");
        assert_ne!(config_entry_digest(&desired), config_entry_digest(&foreign));
    }

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
