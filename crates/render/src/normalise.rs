//! Normalisation: bringing a desired object and what the server returns for it to forms
//! that compare field by field. Applied to both sides by the diffs; pure.
//!
//! What each function relies on is server behaviour from reference §6.6, §8 and §9.

use serde_json::{Map, Value};
use steward_spec::Duration;

use crate::compare::obj;
use crate::names::{META_GENERATION, META_PREFIX};

/// Fields of a job-level `Update` that Nomad keeps at job level; the others it moves
/// into every task group's `Update` (group values win) and zeroes at job level.
const JOB_LEVEL_UPDATE_KEYS: [&str; 2] = ["MaxParallel", "Stagger"];

/// A Nomad job with a job-level `Update` resolved the way Nomad stores it: for service
/// and system jobs its fields are merged into each group's `Update` where the group does
/// not set them, and the job level keeps only `MaxParallel` and `Stagger` (the rest reads
/// back as zero). Jobs without a job-level `Update` are returned unchanged.
#[must_use]
pub fn normalise_job(job: &Value) -> Value {
    let mut job = job.clone();
    let Some(top) = job.as_object_mut() else {
        return job;
    };
    let Some(Value::Object(update)) = top.get("Update").cloned() else {
        return job;
    };
    let batch = matches!(
        top.get("Type").and_then(Value::as_str),
        Some("batch" | "sysbatch")
    );
    if let (false, Some(Value::Array(groups))) = (batch, top.get_mut("TaskGroups")) {
        for group in groups.iter_mut().filter_map(Value::as_object_mut) {
            let mut merged = update.clone();
            for (k, v) in obj(group.get("Update")) {
                merged.insert(k.clone(), v.clone());
            }
            group.insert("Update".into(), Value::Object(merged));
        }
    }
    let kept: Map<String, Value> = update
        .into_iter()
        .filter(|(k, _)| JOB_LEVEL_UPDATE_KEYS.contains(&k.as_str()))
        .collect();
    top.insert("Update".into(), Value::Object(kept));
    job
}

/// The ownership part of a `Meta` map that the diff compares: every `steward.*` key but
/// `steward.generation` (informational). Other keys belong to someone else.
#[must_use]
pub fn owned_meta(meta: Option<&Value>) -> Value {
    let owned: Map<String, Value> = obj(meta)
        .iter()
        .filter(|(k, _)| k.starts_with(META_PREFIX) && k.as_str() != META_GENERATION)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(owned)
}

/// Server-computed fields of intention sources (reference §4.3, §9).
const SOURCE_SERVER_FIELDS: [&str; 6] = [
    "Precedence",
    "Type",
    "LegacyID",
    "LegacyMeta",
    "LegacyCreateTime",
    "LegacyUpdateTime",
];

/// A Consul config entry without what the server adds: `CreateIndex`, `ModifyIndex`,
/// `Status` (gateway and route kinds), `Precedence`/`Type`/`Legacy*` on intention
/// sources; `http-route` filter durations (`RequestTimeout`, `IdleTimeout`, written as
/// Go duration strings or nanoseconds) become nanoseconds.
#[must_use]
pub fn normalise_config_entry(entry: &Value) -> Value {
    let mut entry = entry.clone();
    let Some(top) = entry.as_object_mut() else {
        return entry;
    };
    for k in ["CreateIndex", "ModifyIndex", "Status"] {
        top.remove(k);
    }
    if let Some(Value::Array(sources)) = top.get_mut("Sources") {
        for source in sources.iter_mut().filter_map(Value::as_object_mut) {
            for k in SOURCE_SERVER_FIELDS {
                source.remove(k);
            }
        }
    }
    if let Some(Value::Array(rules)) = top.get_mut("Rules") {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            let filters = rule.get_mut("Filters").and_then(Value::as_object_mut);
            let timeout = filters
                .and_then(|f| f.get_mut("TimeoutFilter"))
                .and_then(Value::as_object_mut);
            for value in timeout.into_iter().flat_map(|t| t.values_mut()) {
                if let Some(nanos) = duration_nanos(value) {
                    *value = Value::from(nanos);
                }
            }
        }
    }
    entry
}

/// Nanoseconds of a duration written as a Go duration string or a number of nanoseconds.
fn duration_nanos(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => Duration::parse(s).ok().map(|d| d.as_nanos()),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Role fields holding durations: written as Go duration strings or seconds, read back
/// as seconds.
const ROLE_DURATION_KEYS: [&str; 8] = [
    "token_period",
    "token_ttl",
    "token_max_ttl",
    "token_explicit_max_ttl",
    "clock_skew_leeway",
    "expiration_leeway",
    "not_before_leeway",
    "max_age",
];

/// Role fields that are sets: written as lists or comma-separated strings, compared
/// sorted.
const ROLE_SET_KEYS: [&str; 4] = [
    "bound_audiences",
    "token_policies",
    "token_bound_cidrs",
    "allowed_redirect_uris",
];

/// A JWT role body in one form: the read envelope's `data` is unwrapped, durations
/// become whole seconds, set-like lists are sorted (and `token_policies` lower-cased, as
/// Vault stores policy names).
#[must_use]
pub fn normalise_role(body: &Value) -> Value {
    let is_envelope =
        body.get("role_type").is_none() && body.get("data").is_some_and(Value::is_object);
    let mut role = if is_envelope {
        body.get("data").cloned().unwrap_or_default()
    } else {
        body.clone()
    };
    let Some(map) = role.as_object_mut() else {
        return role;
    };
    for k in ROLE_DURATION_KEYS {
        if let Some(value) = map.get_mut(k) {
            let secs = match &*value {
                Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                    s.parse().ok()
                }
                Value::String(s) => Duration::parse(s).ok().map(|d| d.as_secs()),
                Value::Number(n) => n.as_u64(),
                _ => None,
            };
            if let Some(secs) = secs {
                *value = Value::from(secs);
            }
        }
    }
    for k in ROLE_SET_KEYS {
        if let Some(value) = map.get_mut(k) {
            let mut items: Vec<String> = match &*value {
                Value::String(s) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => continue,
            };
            if k == "token_policies" {
                items.iter_mut().for_each(|p| *p = p.to_ascii_lowercase());
            }
            items.sort();
            items.dedup();
            *value = Value::from(items);
        }
    }
    role
}

/// A parsed Vault policy: the marker's spec key and each `path` block's body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPolicy {
    /// The spec key of the marker comment, if the first line is one.
    pub marker: Option<String>,
    /// `path` blocks by pattern, in first appearance order, repeated patterns merged;
    /// `capabilities` lower-cased, sorted and unique.
    pub paths: Map<String, Value>,
}

/// Parses policy HCL with hcl-rs (comments and formatting do not matter).
///
/// # Errors
/// The parser's message when the text is not HCL.
pub fn parse_policy(text: &str) -> Result<ParsedPolicy, String> {
    let body: hcl::Body = hcl::from_str(text).map_err(|e| e.to_string())?;
    let mut paths = Map::new();
    for block in body.blocks().filter(|b| b.identifier() == "path") {
        let Some(label) = block.labels().first() else {
            return Err("a `path` block has no label".to_owned());
        };
        let parsed: Value = hcl::from_body(block.body().clone()).map_err(|e| e.to_string())?;
        let entry = paths
            .entry(label.as_str().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let (Some(into), Value::Object(fields)) = (entry.as_object_mut(), parsed) {
            for (k, v) in fields {
                if k == "capabilities" {
                    let mut caps: Vec<String> = crate::compare::arr(into.get(&k))
                        .iter()
                        .chain(crate::compare::arr(Some(&v)))
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect();
                    caps.sort();
                    caps.dedup();
                    into.insert(k, Value::from(caps));
                } else {
                    into.insert(k, v);
                }
            }
        }
    }
    let marker = crate::names::parse_policy_marker(text).map(|k| k.to_string());
    Ok(ParsedPolicy { marker, paths })
}
