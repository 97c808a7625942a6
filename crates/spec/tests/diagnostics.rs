//! One load reports every problem, each at its exact line and column, in both the human
//! and the JSON form.
#![allow(clippy::unwrap_used)]

use steward_spec::{Diagnostic, Severity, load};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn positions(diagnostics: &[Diagnostic]) -> Vec<(usize, usize, &str, &str)> {
    diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.path.as_str(), d.code.as_str()))
        .collect()
}

#[test]
fn every_mistake_in_the_fixture_is_reported_at_its_exact_position() {
    let text = fixture("many-mistakes.yaml");
    let loaded = load("tests/fixtures/many-mistakes.yaml", &text, None);
    assert!(loaded.spec.is_none());
    assert_eq!(
        positions(&loaded.diagnostics),
        [
            (5, 9, "metadata.name", "invalid-name"),
            (8, 10, "spec.image", "invalid-image"),
            (9, 3, "spec.replica", "unknown-field"),
            (11, 10, "spec.resources.cpu", "out-of-range"),
            (12, 15, "spec.resources.memoryMB", "wrong-type"),
            (17, 14, "spec.check.timeout", "check-timeout"),
            (
                22,
                18,
                "spec.upstreams[1].localPort",
                "duplicate-local-port"
            ),
            (25, 16, "spec.allowFrom[1].service", "self-reference"),
            (
                28,
                22,
                "spec.secrets[0].capabilities[0]",
                "invalid-capability"
            ),
            (31, 15, "spec.edge.routes[0].host", "invalid-host"),
            (32, 21, "spec.edge.routes[0].pathPrefix", "invalid-path"),
            (34, 15, "spec.scaling.timeZone", "invalid-time-zone"),
            (37, 9, "spec.scaling.windows[1]", "overlapping-windows"),
            (38, 27, "spec.scaling.windows[2].from", "invalid-time"),
        ]
    );
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity == Severity::Error)
    );
    // Every excerpt is the line the position names.
    let lines: Vec<&str> = text.lines().collect();
    for d in &loaded.diagnostics {
        assert_eq!(d.excerpt, lines[d.line - 1]);
        assert!(d.end_column > d.column);
    }
    insta::assert_snapshot!("many_mistakes_human", loaded.render());
    insta::assert_json_snapshot!("many_mistakes_json", loaded.diagnostics);
}

#[test]
fn the_unknown_field_message_suggests_the_intended_field() {
    let text = fixture("many-mistakes.yaml");
    let loaded = load("f.yaml", &text, None);
    let typo = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "unknown-field")
        .unwrap();
    assert_eq!(
        typo.message,
        "unknown field `replica`, did you mean `replicas`?"
    );
    assert_eq!((typo.column, typo.end_column), (3, 10));
}

#[test]
fn a_yaml_syntax_error_is_reported_at_the_parser_position() {
    let text = fixture("syntax-error.yaml");
    let loaded = load("tests/fixtures/syntax-error.yaml", &text, None);
    assert!(loaded.spec.is_none());
    assert_eq!(positions(&loaded.diagnostics), [(8, 12, "", "yaml-syntax")]);
    insta::assert_snapshot!("syntax_error_human", loaded.render());
}

#[test]
fn json_documents_are_located_exactly() {
    let text = fixture("order-api.json");
    let loaded = load("order-api.json", &text, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [
            (7, 17, "spec.replicas", "wrong-type"),
            (9, 35, "spec.check.intervall", "unknown-field"),
            (12, 19, "spec.upstreams[1].service", "self-reference"),
        ]
    );
    assert!(loaded.diagnostics[0].message.contains("remove the quotes"));
}

#[test]
fn a_valid_json_document_equals_the_same_yaml_document() {
    let json = r#"{"apiVersion": "steward/v1", "kind": "ServiceSpec",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"image": "registry.example/web:1.0", "port": 8080,
                 "check": {"http": "/healthz", "interval": "15s"}}}"#;
    let yaml = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  check: {http: /healthz, interval: 15s}\n";
    let from_json = load("a.json", json, None);
    let from_yaml = load("a.yaml", yaml, None);
    assert!(from_json.diagnostics.is_empty(), "{}", from_json.render());
    assert_eq!(from_json.spec, from_yaml.spec);
    assert_eq!(
        from_json
            .spec
            .unwrap()
            .spec
            .check
            .unwrap()
            .interval
            .as_nanos(),
        15_000_000_000
    );
}

#[test]
fn missing_required_fields_point_at_the_enclosing_key() {
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  namespace: shop\nspec:\n  image: registry.example/web:1.0\n  upstreams:\n    - localPort: 9001\n";
    let loaded = load("m.yaml", text, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [
            (3, 1, "metadata.name", "missing-field"),
            (8, 7, "spec.upstreams[0].service", "missing-field"),
        ]
    );
    assert_eq!(
        loaded.diagnostics[0].message,
        "missing required field `name` in `metadata`"
    );
}

#[test]
fn wrong_api_version_kind_and_root_fields_are_reported() {
    let text = "apiVersion: steward/v2\nkind: Service\nmetadata: {name: web}\n";
    let loaded = load("k.yaml", text, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [
            (1, 1, "spec", "missing-field"),
            (1, 13, "apiVersion", "invalid-api-version"),
            (2, 7, "kind", "invalid-kind"),
        ]
    );
    assert_eq!(
        loaded.diagnostics[1].message,
        "`apiVersion` must be `steward/v1`, found `steward/v2`"
    );
}

#[test]
fn a_document_that_is_not_a_mapping_is_a_type_error() {
    let loaded = load("l.yaml", "- a\n- b\n", None);
    assert_eq!(positions(&loaded.diagnostics), [(1, 1, "", "wrong-type")]);
    assert_eq!(
        loaded.diagnostics[0].message,
        "expected a mapping, found a sequence"
    );
}

#[test]
fn duplicate_keys_multiple_documents_and_empty_input_are_errors() {
    let dup = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  image: registry.example/web:1.0\n  image: registry.example/web:2.0\n";
    let loaded = load("d.yaml", dup, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [(6, 3, "spec.image", "duplicate-key")]
    );
    assert!(
        loaded.diagnostics[0]
            .message
            .contains("first defined at line 5")
    );
    let multi = load("m.yaml", "a: 1\n---\nb: 2\n", None);
    assert_eq!(
        positions(&multi.diagnostics),
        [(3, 1, "", "multiple-documents")]
    );
    let empty = load("e.yaml", "# only a comment\n", None);
    assert_eq!(
        positions(&empty.diagnostics),
        [(1, 1, "", "empty-document")]
    );
}

#[test]
fn warnings_do_not_block_the_spec() {
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  image: nginx:latest\n";
    let loaded = load("w.yaml", text, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [(5, 10, "spec.image", "unpinned-image")]
    );
    assert_eq!(loaded.diagnostics[0].severity, Severity::Warning);
    assert!(!loaded.has_errors());
    assert!(loaded.spec.is_some());
}

#[test]
fn consequences_of_a_broken_value_are_not_reported_twice() {
    // `interval` has the wrong type; `timeout >= interval` must not be reported on top.
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  image: registry.example/web:1.0\n  port: 80\n  check: {http: /, interval: [1], timeout: 30s}\n";
    let loaded = load("c.yaml", text, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [(7, 30, "spec.check.interval", "wrong-type")]
    );
    // A typo in `image` does not also report "set image or command".
    let typo = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  imagee: registry.example/web:1.0\n";
    let loaded = load("t.yaml", typo, None);
    assert_eq!(
        positions(&loaded.diagnostics),
        [(5, 3, "spec.imagee", "unknown-field")]
    );
}

#[test]
fn diagnostics_serialise_with_the_documented_fields() {
    let text = fixture("many-mistakes.yaml");
    let loaded = load("f.yaml", &text, None);
    let json = serde_json::to_value(&loaded.diagnostics[0]).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "file",
            "line",
            "column",
            "end_column",
            "path",
            "message",
            "severity",
            "code",
            "excerpt"
        ]
    );
    assert_eq!(json["severity"], "error");
}

#[test]
fn a_tcp_check_on_a_mesh_service_is_reported_at_its_tcp_key_value() {
    // Nomad refuses it ("tcp checks are not valid for Connect enabled services"), and
    // every service with a `port` is in the mesh: `steward validate` says so first.
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: cache, namespace: trading}\nspec:\n  image: registry.example/cache:1\n  port: 6379\n  check: {tcp: true}\n";
    let loaded = load("cache.yaml", text, None);
    assert!(loaded.spec.is_none());
    assert_eq!(
        positions(&loaded.diagnostics),
        [(7, 16, "spec.check.tcp", "tcp-check-in-mesh")]
    );
    let d = &loaded.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert!(
        d.message
            .contains("tcp checks are not valid for Connect enabled services"),
        "{}",
        d.message
    );
    assert!(d.message.contains("`http: /path`"), "{}", d.message);
}
