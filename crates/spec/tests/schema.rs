//! The checked-in JSON Schemas equal what the code generates.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use steward_spec::schema::{guardrail_policy_schema, servicespec_schema, to_file_text};

const UPDATE_ENV: &str = "STEWARD_UPDATE_SCHEMAS";

fn check_fresh(file: &str, schema: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(file);
    let generated = to_file_text(schema);
    if std::env::var(UPDATE_ENV).as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schemas/{file} is missing or stale: it differs from the schema the code generates.\n\
         Regenerate it with:\n    {UPDATE_ENV}=1 cargo nextest run -p steward-spec -E 'test(schema_file_is_fresh)'\n\
         and commit the result."
    );
}

#[test]
fn schema_file_is_fresh() {
    check_fresh("servicespec.v1.json", &servicespec_schema());
}

#[test]
fn guardrails_schema_file_is_fresh() {
    check_fresh("guardrails.v1.json", &guardrail_policy_schema());
}

/// Every object property of every definition, with its path.
fn properties(schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut objects = vec![("<root>".to_owned(), schema.clone())];
    for (name, def) in schema["$defs"].as_object().unwrap() {
        objects.push((name.clone(), def.clone()));
    }
    for (owner, object) in objects {
        for (name, property) in object["properties"].as_object().into_iter().flatten() {
            out.push((format!("{owner}.{name}"), property.clone()));
        }
    }
    out
}

#[test]
fn every_field_is_documented_with_its_default_or_as_required() {
    for schema in [servicespec_schema(), guardrail_policy_schema()] {
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        for (path, property) in properties(&schema) {
            let description = property["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("Default") || description.contains("Required"),
                "{path} does not state its default: {description:?}"
            );
        }
    }
}

#[test]
fn every_object_rejects_unknown_fields() {
    let schema = servicespec_schema();
    assert_eq!(schema["additionalProperties"], false);
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            assert_eq!(def["additionalProperties"], false, "{name}");
        }
    }
}

#[test]
fn schema_bounds_match_the_documented_limits() {
    let schema = servicespec_schema();
    let defs = &schema["$defs"];
    assert_eq!(defs["Spec"]["properties"]["replicas"]["maximum"], 1000);
    assert_eq!(defs["Resources"]["properties"]["cpu"]["minimum"], 10);
    assert_eq!(defs["Resources"]["properties"]["cpu"]["maximum"], 64000);
    assert_eq!(
        defs["Resources"]["properties"]["memoryMB"]["maximum"],
        262_144
    );
    assert_eq!(defs["Spec"]["properties"]["port"]["minimum"], 1);
    assert_eq!(defs["Spec"]["properties"]["replicas"]["default"], 1);
    assert_eq!(
        defs["Spec"]["properties"]["datacenters"]["default"],
        serde_json::json!(["*"])
    );
}
