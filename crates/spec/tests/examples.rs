//! Every example in deploy/examples loads cleanly under deploy/guardrails.yaml, and the
//! examples reference each other consistently.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use steward_spec::{Driver, GuardrailPolicy, ServiceSpec, load, load_guardrail_policy};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn policy() -> GuardrailPolicy {
    let path = deploy_dir().join("guardrails.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = load_guardrail_policy("deploy/guardrails.yaml", &text);
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    loaded.policy.unwrap()
}

fn examples() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(deploy_dir().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = format!(
                "deploy/examples/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn load_all() -> Vec<ServiceSpec> {
    let policy = policy();
    examples()
        .iter()
        .map(|(file, text)| {
            let loaded = load(file, text, Some(&policy));
            assert!(
                loaded.diagnostics.is_empty(),
                "{file}:\n{}",
                loaded.render()
            );
            loaded.spec.unwrap()
        })
        .collect()
}

#[test]
fn every_example_loads_with_zero_diagnostics_under_the_example_policy() {
    let specs = load_all();
    assert!(
        specs.len() >= 7,
        "expected at least 7 examples, found {}",
        specs.len()
    );
}

#[test]
fn every_example_starts_with_the_schema_modeline() {
    for (file, text) in examples() {
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schemas/servicespec.v1.json\n"),
            "{file} lacks the modeline"
        );
    }
}

#[test]
fn examples_have_unique_names_and_reference_each_other() {
    let specs = load_all();
    let names: BTreeSet<&str> = specs.iter().map(|s| s.metadata.name.as_str()).collect();
    assert_eq!(names.len(), specs.len(), "example names must be unique");
    for spec in &specs {
        for upstream in &spec.spec.upstreams {
            assert!(
                names.contains(upstream.service.as_str()),
                "{}: unknown upstream {}",
                spec.key(),
                upstream.service
            );
        }
        for rule in &spec.spec.allow_from {
            assert!(
                names.contains(rule.service.as_str()),
                "{}: unknown source {}",
                spec.key(),
                rule.service
            );
        }
    }
    // Every upstream edge is allowed by the target's intentions.
    for caller in &specs {
        for upstream in &caller.spec.upstreams {
            let target = specs
                .iter()
                .find(|s| s.metadata.name == upstream.service)
                .unwrap();
            assert!(
                target
                    .spec
                    .allow_from
                    .iter()
                    .any(|a| a.service == caller.metadata.name),
                "{} calls {} but is not in its allowFrom",
                caller.metadata.name,
                target.metadata.name
            );
        }
    }
}

#[test]
fn the_examples_cover_the_promised_shapes() {
    let specs = load_all();
    let by_name = |n: &str| specs.iter().find(|s| s.metadata.name == n).unwrap();
    assert_eq!(by_name("web-api").metadata.namespace, "storefront");
    assert!(!by_name("web-api").spec.edge.routes.is_empty());
    assert!(
        by_name("order-api")
            .spec
            .allow_from
            .iter()
            .any(|a| a.is_l7())
    );
    assert!(by_name("nightly-settlement").is_batch());
    let cache = by_name("market-data-cache").spec.scaling.clone().unwrap();
    assert_eq!(cache.time_zone, "Asia/Tokyo");
    assert!(cache.windows.iter().any(|w| w.crosses_midnight()));
    assert!(!by_name("ledger-reader").spec.secrets.is_empty());
    assert_eq!(by_name("ticker").driver(), Driver::Exec);
}

#[test]
fn the_exec_example_is_rejected_under_the_default_policy() {
    let (file, text) = examples()
        .into_iter()
        .find(|(f, _)| f.ends_with("ticker.yaml"))
        .unwrap();
    let loaded = load(&file, &text, Some(&GuardrailPolicy::default()));
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["guardrail-driver"]);
    assert!(loaded.spec.is_none());
}
