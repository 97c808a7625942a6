//! JSON Schema (draft 2020-12) of the ServiceSpec and GuardrailPolicy documents.
//!
//! The loader walks documents against these same schemas, so the checked-in schema files
//! and the loader's structural checks cannot drift apart.

use std::sync::OnceLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use crate::guardrails::GuardrailPolicy;
use crate::types::ServiceSpec;

fn generate<T: JsonSchema>(id: &str) -> serde_json::Value {
    let schema = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    // `$schema` and `$id` first, for readers of the checked-in file.
    let mut out = serde_json::Map::new();
    out.insert("$schema".to_owned(), schema["$schema"].clone());
    out.insert("$id".to_owned(), serde_json::Value::String(id.to_owned()));
    if let serde_json::Value::Object(fields) = schema {
        out.extend(fields.into_iter().filter(|(k, _)| k != "$schema"));
    }
    serde_json::Value::Object(out)
}

/// `$id` of the ServiceSpec v1 schema.
pub const SERVICESPEC_SCHEMA_ID: &str =
    "https://example.invalid/steward/schemas/servicespec.v1.json";
/// `$id` of the GuardrailPolicy v1 schema.
pub const GUARDRAILS_SCHEMA_ID: &str = "https://example.invalid/steward/schemas/guardrails.v1.json";

/// The JSON Schema of a ServiceSpec v1 document (the file `schemas/servicespec.v1.json`).
#[must_use]
pub fn servicespec_schema() -> serde_json::Value {
    servicespec_schema_ref().clone()
}

/// The JSON Schema of a GuardrailPolicy v1 document (the file `schemas/guardrails.v1.json`).
#[must_use]
pub fn guardrail_policy_schema() -> serde_json::Value {
    guardrail_policy_schema_ref().clone()
}

pub(crate) fn servicespec_schema_ref() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| generate::<ServiceSpec>(SERVICESPEC_SCHEMA_ID))
}

pub(crate) fn guardrail_policy_schema_ref() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| generate::<GuardrailPolicy>(GUARDRAILS_SCHEMA_ID))
}

/// Pretty JSON with a trailing newline: the exact content of the checked-in schema files.
#[must_use]
pub fn to_file_text(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}
