//! Guardrail violations are reported like validation diagnostics, at the offending field.
#![allow(clippy::unwrap_used)]

use steward_spec::{Diagnostic, GuardrailPolicy, load, load_guardrail_policy};

const POLICY: &str = "\
apiVersion: steward/v1
kind: GuardrailPolicy
registries: [registry.example, ghcr.io/acme/]
vaultPaths:
  \"*\": [\"secret/data/{namespace}/{name}/*\", \"secret/metadata/{namespace}/{name}/*\"]
  trading: [secret/data/trading/shared/*]
edgeHosts:
  \"*\": [\"{name}.{namespace}.apps.internal\"]
  trading: [\"*.trading.example.com\"]
limits: {maxReplicas: 10, maxCpu: 2000, maxMemoryMB: 4096}
drivers:
  \"*\": [docker]
  tools: [exec]
";

fn policy() -> GuardrailPolicy {
    let loaded = load_guardrail_policy("policy.yaml", POLICY);
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    loaded.policy.unwrap()
}

/// A valid trading spec; `body` lines are appended under `spec:`.
fn spec(namespace: &str, body: &str) -> String {
    format!(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  name: order-api\n  namespace: {namespace}\nspec:\n{body}"
    )
}

fn guardrail_positions(diagnostics: &[Diagnostic]) -> Vec<(usize, usize, &str, &str)> {
    diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.path.as_str(), d.code.as_str()))
        .collect()
}

#[test]
fn a_spec_within_the_policy_passes() {
    let text = spec(
        "trading",
        "  image: registry.example/order-api:1.4.2\n  port: 8080\n  secrets:\n    - {path: secret/data/trading/order-api/db, capabilities: [read]}\n    - {path: secret/data/trading/shared/*, capabilities: [read]}\n  edge:\n    routes: [{host: orders.trading.example.com}]\n",
    );
    let loaded = load("ok.yaml", &text, Some(&policy()));
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
}

#[test]
fn another_namespaces_vault_path_is_rejected() {
    let text = spec(
        "trading",
        "  image: registry.example/order-api:1.4.2\n  secrets:\n    - path: secret/data/trading/order-api/*\n      capabilities: [read]\n    - path: secret/data/payments/ledger/*\n      capabilities: [read]\n",
    );
    let loaded = load("vault.yaml", &text, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(11, 13, "spec.secrets[1].path", "guardrail-vault-path")]
    );
    assert_eq!(
        loaded.diagnostics[0].message,
        "Vault path `secret/data/payments/ledger/*` is outside what `trading/order-api` may be granted (allowed: `secret/data/trading/order-api/*`, `secret/metadata/trading/order-api/*`, `secret/data/trading/shared/*`)"
    );
    assert!(loaded.spec.is_none());
}

#[test]
fn a_glob_reaching_past_the_services_own_prefix_is_rejected() {
    let text = spec(
        "trading",
        "  image: registry.example/order-api:1.4.2\n  secrets: [{path: secret/data/trading/order-api*, capabilities: [read]}]\n",
    );
    let loaded = load("glob.yaml", &text, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(8, 20, "spec.secrets[0].path", "guardrail-vault-path")]
    );
}

#[test]
fn an_unlisted_registry_is_rejected() {
    let text = spec("trading", "  image: docker.io/evil/miner:1.0\n");
    let loaded = load("registry.yaml", &text, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(7, 10, "spec.image", "guardrail-registry")]
    );
    assert_eq!(
        loaded.diagnostics[0].message,
        "image `docker.io/evil/miner` is not from an allowed registry (allowed: `registry.example`, `ghcr.io/acme/`)"
    );
    // A look-alike host is not a prefix match.
    let lookalike = spec(
        "trading",
        "  image: registry.example.evil.com/order-api:1.0\n",
    );
    let loaded = load("lookalike.yaml", &lookalike, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(7, 10, "spec.image", "guardrail-registry")]
    );
}

#[test]
fn a_host_outside_its_pattern_is_rejected() {
    let text = spec(
        "trading",
        "  image: registry.example/order-api:1.4.2\n  port: 8080\n  edge:\n    routes:\n      - host: orders.trading.example.com\n      - host: shop.storefront.example.com\n        pathPrefix: /cart\n",
    );
    let loaded = load("host.yaml", &text, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(12, 15, "spec.edge.routes[1].host", "guardrail-edge-host")]
    );
    assert!(
        loaded.diagnostics[0]
            .message
            .contains("`*.trading.example.com`")
    );
}

#[test]
fn exec_is_rejected_under_the_default_policy_and_allowed_where_enabled() {
    let text = spec("trading", "  command: /usr/local/bin/ticker\n");
    let loaded = load("exec.yaml", &text, Some(&GuardrailPolicy::default()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(7, 3, "spec.command", "guardrail-driver")]
    );
    assert!(
        loaded.diagnostics[0]
            .message
            .starts_with("the `exec` driver is not allowed in namespace `trading`")
    );
    let tools = spec("tools", "  command: /usr/local/bin/ticker\n");
    let loaded = load("exec.yaml", &tools, Some(&policy()));
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
}

#[test]
fn replicas_and_resources_above_the_limits_are_rejected() {
    let text = spec(
        "trading",
        "  image: registry.example/order-api:1.4.2\n  replicas: 12\n  resources: {cpu: 3000, memoryMB: 1024, memoryMaxMB: 8192}\n  port: 8080\n  scaling:\n    windows:\n      - {days: daily, from: \"09:00\", to: \"17:00\", replicas: 40}\n",
    );
    let loaded = load("limits.yaml", &text, Some(&policy()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [
            (8, 13, "spec.replicas", "guardrail-replicas"),
            (9, 20, "spec.resources.cpu", "guardrail-cpu"),
            (9, 55, "spec.resources.memoryMaxMB", "guardrail-memory"),
            (
                13,
                61,
                "spec.scaling.windows[0].replicas",
                "guardrail-replicas"
            ),
        ]
    );
    assert_eq!(
        loaded.diagnostics[0].message,
        "12 replicas is above the guardrail limit of 10"
    );
}

#[test]
fn the_default_policy_rejects_every_image_until_registries_are_listed() {
    let text = spec("trading", "  image: registry.example/order-api:1.4.2\n");
    let loaded = load("default.yaml", &text, Some(&GuardrailPolicy::default()));
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [(7, 10, "spec.image", "guardrail-registry")]
    );
    assert!(
        loaded.diagnostics[0]
            .message
            .contains("lists no registries")
    );
    // Without a policy no guardrail is checked.
    assert!(load("none.yaml", &text, None).diagnostics.is_empty());
}

#[test]
fn a_broken_policy_document_is_reported_like_a_spec() {
    let text = "apiVersion: steward/v1\nkind: GuardrailPolicy\nregistries: [registry.example]\nvaultPath:\n  \"*\": [\"secret/data/{namespace}/*\"]\nlimits: {maxReplicas: 5000}\ndrivers: {\"*\": [docker, podman]}\nedgeHosts: {\"*\": [\"{team}.apps.internal\"]}\n";
    let loaded = load_guardrail_policy("policy.yaml", text);
    assert!(loaded.policy.is_none());
    assert_eq!(
        guardrail_positions(&loaded.diagnostics),
        [
            (4, 1, "vaultPath", "unknown-field"),
            (6, 23, "limits.maxReplicas", "out-of-range"),
            (7, 25, "drivers[\"*\"][1]", "invalid-driver"),
            (8, 19, "edgeHosts[\"*\"][0]", "invalid-template"),
        ]
    );
    assert_eq!(
        loaded.diagnostics[0].message,
        "unknown field `vaultPath`, did you mean `vaultPaths`?"
    );
}
