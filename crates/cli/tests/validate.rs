//! `steward validate`, `render` and `schema` through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{repo_root, run};

const MISTAKES: &str = "crates/spec/tests/fixtures/many-mistakes.yaml";

#[test]
fn the_examples_are_valid_with_and_without_the_example_policy() {
    let r = run(&["validate", "deploy/examples"]);
    r.expect_code(0);
    assert!(r.stdout.ends_with("ok: 7 files valid\n"), "{}", r.stdout);
    let r = run(&[
        "validate",
        "deploy/examples",
        "--policy",
        "deploy/guardrails.yaml",
    ]);
    r.expect_code(0);
    assert!(r.stdout.contains(" valid"), "{}", r.stdout);
}

#[test]
fn every_mistake_is_reported_with_line_and_column() {
    let r = run(&["validate", MISTAKES]);
    r.expect_code(1);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    insta::assert_snapshot!("many_mistakes_human", r.stdout);
}

#[test]
fn json_output_is_an_array_of_located_diagnostics() {
    let r = run(&["validate", "--output", "json", MISTAKES]);
    r.expect_code(1);
    let parsed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let list = parsed.as_array().unwrap();
    assert!(list.len() >= 10, "{}", r.stdout);
    for d in list {
        for field in [
            "file", "line", "column", "path", "message", "severity", "code",
        ] {
            assert!(d.get(field).is_some(), "{field} missing in {d}");
        }
    }
    insta::assert_json_snapshot!("many_mistakes_json", parsed);
}

#[test]
fn problems_in_several_files_and_the_policy_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "kind: [\n").unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: b}\nspec: {image: 'nginx:1', replicas: -1}\n",
    )
    .unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        "{\"apiVersion\": \"steward/v1\", \"kind\": \"GuardrailPolicy\", \"bogus\": 1}",
    )
    .unwrap();
    let r = run(&[
        "validate",
        "--output",
        "json",
        "--policy",
        policy.to_str().unwrap(),
        dir.path().join("a.yaml").to_str().unwrap(),
        dir.path().join("b.yml").to_str().unwrap(),
    ]);
    r.expect_code(1);
    let list: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let files: std::collections::BTreeSet<&str> =
        list.iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
}

#[test]
fn guardrails_apply_with_a_policy() {
    // No registry is allowed by the default policy, so the example policy's registries
    // matter: an image from elsewhere is refused.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("x.yaml");
    std::fs::write(
        &spec,
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: x}\nspec: {image: 'evil.example/x:1'}\n",
    )
    .unwrap();
    run(&["validate", spec.to_str().unwrap()]).expect_code(0);
    let r = run(&[
        "validate",
        "--policy",
        "deploy/guardrails.yaml",
        spec.to_str().unwrap(),
    ]);
    r.expect_code(1);
    assert!(r.stdout.contains("guardrail"), "{}", r.stdout);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let r = run(&["validate", "no/such/file.yaml"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no/such/file.yaml"), "{}", r.stderr);
    let empty = tempfile::tempdir().unwrap();
    let r = run(&["validate", empty.path().to_str().unwrap()]);
    r.expect_code(2);
    assert!(r.stderr.contains("no spec files"), "{}", r.stderr);
    run(&["validate"]).expect_code(2);
    run(&["validate", "--output", "xml", MISTAKES]).expect_code(2);
    run(&[
        "validate",
        "--policy",
        "no/such/policy.yaml",
        "deploy/examples",
    ])
    .expect_code(2);
    run(&["frobnicate"]).expect_code(2);
}

#[test]
fn render_prints_the_objects_in_each_format() {
    for format in ["json", "hcl", "yaml"] {
        let r = run(&[
            "render",
            "deploy/examples/order-api.yaml",
            "--format",
            format,
            "--generation",
            "42",
        ]);
        r.expect_code(0);
        insta::assert_snapshot!(format!("render_order_api_{format}"), r.stdout);
    }
}

#[test]
fn render_only_nomad_is_the_register_body() {
    let r = run(&[
        "render",
        "deploy/examples/order-api.yaml",
        "--only",
        "nomad",
    ]);
    r.expect_code(0);
    let body: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(body["Job"]["ID"], "order-api");
    assert_eq!(body["Job"]["Namespace"], "trading");
    let r = run(&[
        "render",
        "deploy/examples/order-api.yaml",
        "--only",
        "consul",
        "--format",
        "hcl",
    ]);
    r.expect_code(0);
    assert!(
        r.stdout
            .contains("(JSON: the body of PUT /v1/config; no HCL rendering)")
    );
    assert!(!r.stdout.contains("job \"order-api\""));
}

#[test]
fn render_refuses_invalid_specs_with_diagnostics() {
    let r = run(&["render", MISTAKES]);
    r.expect_code(1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("many-mistakes.yaml:"), "{}", r.stderr);
    run(&["render", "no/such.yaml"]).expect_code(2);
}

#[test]
fn schema_is_byte_for_byte_the_checked_in_file() {
    let r = run(&["schema"]);
    r.expect_code(0);
    let file = std::fs::read_to_string(repo_root().join("schemas/servicespec.v1.json")).unwrap();
    assert_eq!(r.stdout, file);
    let r = run(&["schema", "--kind", "guardrails"]);
    r.expect_code(0);
    let file = std::fs::read_to_string(repo_root().join("schemas/guardrails.v1.json")).unwrap();
    assert_eq!(r.stdout, file);
}

#[test]
fn version_and_help_work() {
    let r = run(&["--version"]);
    r.expect_code(0);
    assert!(
        r.stdout
            .starts_with(concat!("steward ", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    let r = run(&["push", "--help"]);
    r.expect_code(0);
    for code in [
        "0  success",
        "1  invalid input",
        "2  usage",
        "3  write failure",
        "4  not converged",
    ] {
        assert!(r.stdout.contains(code), "{code} missing in\n{}", r.stdout);
    }
}
