//! Each semantic rule, triggered alone: the right code at the right path.
#![allow(clippy::unwrap_used)]

use steward_spec::{Severity, load};

/// A document for `order-api` in `trading` whose `spec:` body is `body`.
fn doc(body: &str) -> String {
    format!(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  name: order-api\n  namespace: trading\nspec:\n{body}"
    )
}

const IMAGE: &str = "  image: registry.example/order-api:1.4.2\n";

/// Loads `body` and returns `(path, code)` of every diagnostic.
fn findings(body: &str) -> Vec<(String, String)> {
    let loaded = load("rules.yaml", &doc(body), None);
    loaded
        .diagnostics
        .iter()
        .map(|d| (d.path.clone(), d.code.clone()))
        .collect()
}

fn expect(body: &str, expected: &[(&str, &str)]) {
    let got = findings(body);
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want, "body:\n{body}");
}

#[test]
fn a_minimal_spec_is_valid_and_gets_every_default() {
    let loaded = load("min.yaml", &doc(IMAGE), None);
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let spec = loaded.spec.unwrap();
    assert_eq!(spec.key(), "trading/order-api");
    assert_eq!(spec.spec.replicas, 1);
    assert_eq!(
        (spec.spec.resources.cpu, spec.spec.resources.memory_mb),
        (100, 128)
    );
    assert_eq!(spec.spec.datacenters, ["*"]);
    assert!(spec.spec.update.auto_revert);
    assert_eq!(spec.spec.update.min_healthy_time.as_nanos(), 10_000_000_000);
    assert_eq!(
        spec.spec.update.healthy_deadline.as_nanos(),
        300_000_000_000
    );
    assert_eq!(spec.effective_protocol(), steward_spec::Protocol::Tcp);
    assert!(!spec.is_batch());
}

#[test]
fn driver_rules() {
    expect("  replicas: 2\n", &[("spec.image", "missing-driver")]);
    expect(
        "  image: registry.example/a:1\n  command: /bin/a\n",
        &[("spec.command", "driver-conflict")],
    );
    expect(
        "  command: /bin/a --flag\n",
        &[("spec.command", "invalid-command")],
    );
    expect(
        "  image: registry.example//a:1\n",
        &[("spec.image", "invalid-image")],
    );
    expect(
        &format!("  image: registry.example/a@sha256:{}\n", "a".repeat(63)),
        &[("spec.image", "invalid-image")],
    );
}

#[test]
fn name_and_label_rules() {
    let long = "a".repeat(64);
    let text = format!(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  name: {long}\n  namespace: Trading\n  labels: {{steward.spec: x, ok: y}}\nspec:\n{IMAGE}"
    );
    let loaded = load("n.yaml", &text, None);
    let got: Vec<(&str, &str)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.path.as_str(), d.code.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("metadata.name", "invalid-name"),
            ("metadata.namespace", "invalid-namespace"),
            ("metadata.labels[\"steward.spec\"]", "invalid-label"),
        ]
    );
    assert!(loaded.diagnostics[0].message.contains("longer than 63"));
}

#[test]
fn resource_and_replica_bounds() {
    expect(
        &format!("{IMAGE}  replicas: 1001\n"),
        &[("spec.replicas", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}  replicas: -1\n"),
        &[("spec.replicas", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}  resources: {{cpu: 5}}\n"),
        &[("spec.resources.cpu", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}  resources: {{memoryMB: 300000}}\n"),
        &[("spec.resources.memoryMB", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}  resources: {{memoryMB: 512, memoryMaxMB: 256}}\n"),
        &[("spec.resources.memoryMaxMB", "invalid-memory-max")],
    );
    expect(
        &format!("{IMAGE}  replicas: 2.5\n"),
        &[("spec.replicas", "wrong-type")],
    );
}

#[test]
fn port_rules() {
    expect(
        &format!("{IMAGE}  port: 0\n"),
        &[("spec.port", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}  port: 70000\n"),
        &[("spec.port", "out-of-range")],
    );
    expect(
        &format!(
            "{IMAGE}  port: 8080\n  ports: [{{name: metrics, port: 8080}}, {{name: metrics, port: 9000}}, {{name: main, port: 9001}}, {{name: Admin, port: 9002}}]\n"
        ),
        &[
            ("spec.ports[0].port", "duplicate-port"),
            ("spec.ports[1].name", "duplicate-port-name"),
            ("spec.ports[2].name", "reserved-port-name"),
            ("spec.ports[3].name", "invalid-port-name"),
        ],
    );
    expect(
        &format!("{IMAGE}  check: {{tcp: true}}\n"),
        &[("spec.check", "port-required")],
    );
    expect(
        &format!("{IMAGE}  edge: {{routes: [{{host: a.example.com}}]}}\n"),
        &[("spec.edge", "port-required")],
    );
}

#[test]
fn check_and_update_rules() {
    let port = "  port: 8080\n";
    expect(
        &format!("{IMAGE}{port}  check: {{http: /h, interval: 2s, timeout: 3s}}\n"),
        &[("spec.check.timeout", "check-timeout")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{http: /h, timeout: 500ms}}\n"),
        &[("spec.check.timeout", "out-of-range")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{interval: 5s}}\n"),
        &[("spec.check", "invalid-check")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{http: /h, tcp: true}}\n"),
        &[("spec.check.tcp", "invalid-check")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{tcp: true, interval: 5s}}\n"),
        &[("spec.check.tcp", "tcp-check-in-mesh")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{http: healthz}}\n"),
        &[("spec.check.http", "invalid-path")],
    );
    expect(
        &format!("{IMAGE}{port}  check: {{http: /h, interval: 10 seconds}}\n"),
        &[("spec.check.interval", "invalid-duration")],
    );
    expect(
        &format!("{IMAGE}  update: {{minHealthyTime: 5m, healthyDeadline: 5m}}\n"),
        &[("spec.update.healthyDeadline", "invalid-update")],
    );
    expect(
        &format!("{IMAGE}  update: {{autoPromote: true}}\n"),
        &[("spec.update.autoPromote", "invalid-update")],
    );
}

#[test]
fn upstream_rules() {
    expect(
        &format!(
            "{IMAGE}  port: 9001\n  upstreams:\n    - {{service: a, localPort: 9001}}\n    - {{service: a, localPort: 9002}}\n    - {{service: order-api, localPort: 9003}}\n    - {{service: B_b, localPort: 9004}}\n"
        ),
        &[
            ("spec.upstreams[0].localPort", "local-port-conflict"),
            ("spec.upstreams[1].service", "duplicate-upstream"),
            ("spec.upstreams[2].service", "self-reference"),
            ("spec.upstreams[3].service", "invalid-service"),
        ],
    );
}

#[test]
fn allow_from_rules() {
    let port = "  port: 8080\n";
    expect(
        &format!(
            "{IMAGE}{port}  allowFrom:\n    - {{service: web}}\n    - {{service: web}}\n    - {{service: batch, pathPrefix: /a, pathExact: /b}}\n    - {{service: batch}}\n    - {{service: api, methods: [FETCH]}}\n"
        ),
        &[
            ("spec.allowFrom[1].service", "duplicate-source"),
            ("spec.allowFrom[2].pathExact", "path-conflict"),
            ("spec.allowFrom[3].service", "mixed-l4-l7"),
            ("spec.allowFrom[4].methods[0]", "invalid-http-method"),
        ],
    );
    expect(
        &format!("{IMAGE}{port}  protocol: tcp\n  allowFrom: [{{service: web, methods: [GET]}}]\n"),
        &[("spec.protocol", "protocol-conflict")],
    );
    expect(
        &format!("{IMAGE}{port}  allowFrom: [{{service: web, action: permit}}]\n"),
        &[("spec.allowFrom[0].action", "invalid-intention-action")],
    );
}

#[test]
fn l7_features_make_the_protocol_http() {
    let loaded = load(
        "p.yaml",
        &doc(&format!(
            "{IMAGE}  port: 8080\n  allowFrom: [{{service: web, methods: [GET]}}]\n"
        )),
        None,
    );
    assert_eq!(
        loaded.spec.unwrap().effective_protocol(),
        steward_spec::Protocol::Http
    );
}

#[test]
fn secret_rules() {
    expect(
        &format!(
            "{IMAGE}  secrets:\n    - {{path: \"*\", capabilities: [read]}}\n    - {{path: /secret/data/x, capabilities: [read]}}\n    - {{path: secret/data/trading/order-api/*, capabilities: []}}\n    - {{path: sys/policies/acl/x, capabilities: [read]}}\n    - {{path: secret/data/trading/order-api/*, capabilities: [read]}}\n    - {{path: secret/data/a*b, capabilities: [read]}}\n"
        ),
        &[
            ("spec.secrets[0].path", "secret-path-too-broad"),
            ("spec.secrets[1].path", "invalid-secret-path"),
            ("spec.secrets[2].capabilities", "empty-capabilities"),
            ("spec.secrets[3].path", "forbidden-secret-path"),
            ("spec.secrets[4].path", "duplicate-secret-path"),
            ("spec.secrets[5].path", "invalid-secret-path"),
        ],
    );
    let loaded = load(
        "w.yaml",
        &doc(&format!(
            "{IMAGE}  secrets: [{{path: secret/data/x/y, capabilities: [read, deny]}}]\n"
        )),
        None,
    );
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, "deny-overrides");
    assert_eq!(loaded.diagnostics[0].severity, Severity::Warning);
}

#[test]
fn edge_rules() {
    expect(
        &format!(
            "{IMAGE}  port: 8080\n  edge:\n    routes:\n      - {{host: \"*.example.com\", pathPrefix: /a, pathExact: /a}}\n      - {{host: api.example.com, rewrite: v1}}\n      - {{host: api.example.com}}\n      - {{host: Api.Example.com, timeout: 2h}}\n      - {{host: b.example.com, retries: 11}}\n"
        ),
        &[
            ("spec.edge.routes[0].pathExact", "path-conflict"),
            ("spec.edge.routes[1].rewrite", "invalid-path"),
            ("spec.edge.routes[2].host", "duplicate-route"),
            ("spec.edge.routes[3].host", "invalid-host"),
            ("spec.edge.routes[3].timeout", "out-of-range"),
            ("spec.edge.routes[4].retries", "out-of-range"),
        ],
    );
}

#[test]
fn scaling_rules() {
    expect(
        &format!(
            "{IMAGE}  scaling:\n    timeZone: asia/tokyo\n    windows:\n      - {{days: Mon-Fry, from: \"08:00\", to: \"09:00\", replicas: 2}}\n      - {{days: Sat, from: \"08:00\", to: \"08:00\", replicas: 2}}\n      - {{days: Sun, from: \"22:00\", to: \"06:00\", replicas: 2}}\n      - {{days: Mon, from: \"05:00\", to: \"07:00\", replicas: 2}}\n"
        ),
        &[
            ("spec.scaling.timeZone", "invalid-time-zone"),
            ("spec.scaling.windows[0].days", "invalid-days"),
            ("spec.scaling.windows[1].to", "empty-window"),
            ("spec.scaling.windows[3]", "overlapping-windows"),
        ],
    );
    let loaded = load(
        "s.yaml",
        &doc(&format!("{IMAGE}  scaling: {{windows: []}}\n")),
        None,
    );
    assert_eq!(loaded.diagnostics[0].code, "no-scaling-windows");
    assert!(loaded.spec.is_some());
}

#[test]
fn periodic_rules() {
    expect(
        &format!("{IMAGE}  periodic: {{cron: \"0 2 * *\", timeZone: Mars/Base}}\n"),
        &[
            ("spec.periodic.cron", "invalid-cron"),
            ("spec.periodic.timeZone", "invalid-time-zone"),
        ],
    );
    expect(
        &format!(
            "{IMAGE}  port: 8080\n  check: {{tcp: true}}\n  allowFrom: [{{service: web}}]\n  edge: {{routes: [{{host: a.example.com}}]}}\n  scaling: {{windows: [{{days: daily, from: \"01:00\", to: \"02:00\", replicas: 2}}]}}\n  periodic: {{cron: \"@daily\"}}\n"
        ),
        &[
            ("spec.port", "periodic-listener"),
            ("spec.check", "periodic-listener"),
            ("spec.allowFrom", "periodic-listener"),
            ("spec.edge", "periodic-listener"),
            ("spec.scaling", "periodic-scaling"),
        ],
    );
    let loaded = load(
        "b.yaml",
        &doc(&format!("{IMAGE}  periodic: {{cron: \"*/15 * * * *\"}}\n")),
        None,
    );
    let spec = loaded.spec.unwrap();
    assert!(spec.is_batch());
    let periodic = spec.spec.periodic.unwrap();
    assert_eq!(
        (periodic.time_zone.as_str(), periodic.prohibit_overlap),
        ("UTC", true)
    );
}

#[test]
fn env_and_datacenter_rules() {
    expect(
        &format!(
            "{IMAGE}  env: {{\"1BAD\": x, NOMAD_ADDR: y, GOOD: \"1\"}}\n  datacenters: [dc1, dc1, \"dc 2\"]\n"
        ),
        &[
            ("spec.env[\"1BAD\"]", "invalid-env-name"),
            ("spec.env.NOMAD_ADDR", "reserved-env-name"),
            ("spec.datacenters[1]", "duplicate-datacenter"),
            ("spec.datacenters[2]", "invalid-datacenter"),
        ],
    );
}

#[test]
fn scalars_convert_to_the_expected_type() {
    let loaded = load(
        "c.yaml",
        &doc(&format!(
            "{IMAGE}  env: {{PORT: 8080, DEBUG: true, RATIO: 0.5}}\n  args: [--workers, 4]\n  replicas: 0x3\n"
        )),
        None,
    );
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let spec = loaded.spec.unwrap();
    assert_eq!(spec.spec.env["PORT"], "8080");
    assert_eq!(spec.spec.env["DEBUG"], "true");
    assert_eq!(spec.spec.args, ["--workers", "4"]);
    assert_eq!(spec.spec.replicas, 3);
    expect(
        &format!("{IMAGE}  update: {{autoRevert: yes}}\n"),
        &[("spec.update.autoRevert", "wrong-type")],
    );
    expect(
        &format!("{IMAGE}  datacenters: dc1\n"),
        &[("spec.datacenters", "wrong-type")],
    );
}

#[test]
fn empty_optional_values_mean_not_set() {
    let loaded = load(
        "e.yaml",
        &doc(&format!("{IMAGE}  env:\n  check:\n  replicas: ~\n")),
        None,
    );
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    assert_eq!(loaded.spec.unwrap().spec.replicas, 1);
}
