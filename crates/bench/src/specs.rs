//! The generated specs: `deploy/examples/order-api.yaml` made uniform, so that every
//! spec owns all four kinds of object (Nomad job, `service-intentions`, Vault policy and
//! JWT role, `http-route`) and passes `deploy/guardrails.yaml`.

/// The guardrail policy the operator runs with (`deploy/guardrails.yaml`).
pub const GUARDRAILS: &str = include_str!("../../../deploy/guardrails.yaml");

/// The name of spec `i` (`svc-00042`).
#[must_use]
pub fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// The namespace of spec `i` among `namespaces`.
#[must_use]
pub fn namespace(i: usize, namespaces: usize) -> String {
    format!("team-{}", i % namespaces.max(1))
}

/// The spec key `<ns>/<name>` of spec `i`.
#[must_use]
pub fn key(i: usize, namespaces: usize) -> String {
    format!("{}/{}", namespace(i, namespaces), name(i))
}

/// The document of spec `i` with image tag `tag`. Like `order-api` (a check, an update
/// policy, an upstream, an L7 caller, secrets) plus an edge route on the host the
/// guardrails allow every namespace (`{name}.{namespace}.apps.internal`). One replica:
/// the operator's work does not depend on the count, the simulator's does.
#[must_use]
pub fn document(i: usize, namespaces: usize, tag: &str) -> String {
    let (ns, name) = (namespace(i, namespaces), name(i));
    format!(
        "apiVersion: steward/v1
kind: ServiceSpec
metadata:
  name: {name}
  namespace: {ns}
  labels: {{team: {ns}}}
spec:
  image: registry.example/{name}:{tag}
  replicas: 1
  resources: {{cpu: 500, memoryMB: 512}}
  port: 8080
  env:
    LOG_LEVEL: info
    PRICE_FEED_ADDR: 127.0.0.1:9001
  check: {{http: /healthz, interval: 10s, timeout: 2s}}
  update: {{maxParallel: 1, canary: 0, autoRevert: true}}
  upstreams:
    - {{service: price-feed, localPort: 9001}}
  allowFrom:
    - service: web-api
      methods: [GET, POST]
      pathPrefix: /orders
  secrets:
    - path: secret/data/{ns}/{name}/*
      capabilities: [read]
  edge:
    routes:
      - {{host: {name}.{ns}.apps.internal, pathPrefix: /, timeout: 5s}}
"
    )
}

/// The guardrail policy of [`GUARDRAILS`].
///
/// # Errors
/// [`crate::Error::Input`] when it does not load (the file in the repository is broken).
pub fn guardrails() -> crate::Result<steward_spec::GuardrailPolicy> {
    let loaded = steward_spec::load_guardrail_policy("deploy/guardrails.yaml", GUARDRAILS);
    let message = loaded.render();
    loaded.policy.ok_or(crate::Error::Input {
        what: "deploy/guardrails.yaml".to_owned(),
        message,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_specs_are_valid_and_pass_the_guardrails() {
        let policy = steward_spec::load_guardrail_policy("guardrails.yaml", GUARDRAILS);
        let policy = policy.policy.unwrap();
        for i in [0, 7, 12_345] {
            let text = document(i, 10, "1.0.0");
            let loaded = steward_spec::load("spec.yaml", &text, Some(&policy));
            assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
            assert!(loaded.spec.is_some());
        }
        assert_eq!(key(12, 10), "team-2/svc-00012");
    }
}
