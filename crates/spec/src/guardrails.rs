//! Guardrails: the platform team's policy on what a spec may ask for, and the pure check
//! of a spec against it (registries, Vault paths, edge hosts, drivers, size limits).
//!
//! This is what stops team A's spec from granting itself team B's secrets or hosts.

mod matching;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Finding;
use crate::image::ImageRef;
use crate::path::FieldPath;
use crate::types::{API_VERSION, Driver, ServiceSpec};
use crate::validate::{check_secret_path, host_problem};

/// The `kind` of a guardrail policy document.
pub const GUARDRAIL_POLICY_KIND: &str = "GuardrailPolicy";
/// Key in the per-namespace maps that applies to every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// A guardrail policy document (`apiVersion: steward/v1`, `kind: GuardrailPolicy`).
///
/// Per-namespace maps (`vaultPaths`, `edgeHosts`, `drivers`) are keyed by namespace or
/// `*` (every namespace); a spec gets the union of the `*` entry and its namespace's entry.
/// A map written in the document replaces the default map entirely, so keep a `*` entry
/// if you want the defaults for every namespace. The default policy is the safe one: no
/// registry allowed, only each service's own Vault paths and edge host, docker only, and
/// moderate size limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "GuardrailPolicy v1")]
pub struct GuardrailPolicy {
    /// Must be exactly `steward/v1`. Required.
    #[schemars(extend("const" = "steward/v1"))]
    pub api_version: String,
    /// Must be exactly `GuardrailPolicy`. Required.
    #[schemars(extend("const" = "GuardrailPolicy"))]
    pub kind: String,
    /// Allowed image sources, matched as prefixes of `registry/repository` on whole path
    /// components (`registry.example`, `ghcr.io/acme/`). Images written without a
    /// registry are `docker.io/library/<name>` or `docker.io/<org>/<name>`.
    /// Default: none — every image is rejected until the platform team lists registries.
    #[serde(default)]
    pub registries: Vec<String>,
    /// Vault path templates a service may be granted, per namespace (`*` = every
    /// namespace). `{namespace}` and `{name}` are replaced by the spec's; a requested path
    /// is allowed only when everything it matches is inside one expanded template.
    /// Default: `{"*": ["secret/data/{namespace}/{name}/*", "secret/metadata/{namespace}/{name}/*"]}`.
    #[serde(default = "default_vault_paths")]
    pub vault_paths: BTreeMap<String, Vec<String>>,
    /// Edge host patterns a service may route, per namespace (`*` = every namespace):
    /// exact hosts or `*.suffix` (one or more labels in front of the suffix), with
    /// `{namespace}` and `{name}` replaced. Default: `{"*": ["{name}.{namespace}.apps.internal"]}`
    /// — each service may claim only its own host name.
    #[serde(default = "default_edge_hosts")]
    pub edge_hosts: BTreeMap<String, Vec<String>>,
    /// Size limits per spec. Default: maxReplicas 50, maxCpu 4000, maxMemoryMB 8192.
    #[serde(default)]
    pub limits: Limits,
    /// Allowed task drivers per namespace (`*` = every namespace).
    /// Default: `{"*": ["docker"]}` — `exec` runs on the host and must be enabled explicitly.
    #[serde(default = "default_drivers")]
    pub drivers: BTreeMap<String, Vec<Driver>>,
}

/// Per-spec size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Largest `replicas` (and scaling-window `replicas`), 0..=1000. Default: 50.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(max = 1000))]
    pub max_replicas: u32,
    /// Largest `resources.cpu` in MHz, 10..=64000. Default: 4000.
    #[serde(default = "default_max_cpu")]
    #[schemars(range(min = 10, max = 64000))]
    pub max_cpu: u32,
    /// Largest `resources.memoryMB` and `resources.memoryMaxMB`, 10..=262144.
    /// Default: 8192.
    #[serde(default = "default_max_memory_mb", rename = "maxMemoryMB")]
    #[schemars(range(min = 10, max = 262_144))]
    pub max_memory_mb: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_replicas: default_max_replicas(),
            max_cpu: default_max_cpu(),
            max_memory_mb: default_max_memory_mb(),
        }
    }
}

impl Default for GuardrailPolicy {
    fn default() -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: GUARDRAIL_POLICY_KIND.to_owned(),
            registries: Vec::new(),
            vault_paths: default_vault_paths(),
            edge_hosts: default_edge_hosts(),
            limits: Limits::default(),
            drivers: default_drivers(),
        }
    }
}

fn default_vault_paths() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        ALL_NAMESPACES.to_owned(),
        vec![
            "secret/data/{namespace}/{name}/*".to_owned(),
            "secret/metadata/{namespace}/{name}/*".to_owned(),
        ],
    )])
}
fn default_edge_hosts() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        ALL_NAMESPACES.to_owned(),
        vec!["{name}.{namespace}.apps.internal".to_owned()],
    )])
}
fn default_drivers() -> BTreeMap<String, Vec<Driver>> {
    BTreeMap::from([(ALL_NAMESPACES.to_owned(), vec![Driver::Docker])])
}
fn default_max_replicas() -> u32 {
    50
}
fn default_max_cpu() -> u32 {
    4000
}
fn default_max_memory_mb() -> u32 {
    8192
}

impl GuardrailPolicy {
    /// The `*` entry followed by the namespace's entry of a per-namespace map.
    fn for_namespace<'a, T>(map: &'a BTreeMap<String, Vec<T>>, namespace: &str) -> Vec<&'a T> {
        let mut out: Vec<&T> = map.get(ALL_NAMESPACES).into_iter().flatten().collect();
        if namespace != ALL_NAMESPACES {
            out.extend(map.get(namespace).into_iter().flatten());
        }
        out
    }

    /// Vault path templates for `namespace/name`, expanded.
    #[must_use]
    pub fn vault_paths_for(&self, namespace: &str, name: &str) -> Vec<String> {
        Self::for_namespace(&self.vault_paths, namespace)
            .into_iter()
            .map(|t| matching::expand(t, namespace, name))
            .collect()
    }

    /// Edge host patterns for `namespace/name`, expanded.
    #[must_use]
    pub fn edge_hosts_for(&self, namespace: &str, name: &str) -> Vec<String> {
        Self::for_namespace(&self.edge_hosts, namespace)
            .into_iter()
            .map(|t| matching::expand(t, namespace, name))
            .collect()
    }

    /// Drivers allowed in `namespace`.
    #[must_use]
    pub fn drivers_for(&self, namespace: &str) -> Vec<Driver> {
        let mut drivers: Vec<Driver> = Self::for_namespace(&self.drivers, namespace)
            .into_iter()
            .copied()
            .collect();
        drivers.sort();
        drivers.dedup();
        drivers
    }

    /// Whether the image name (`registry/repository`) comes from an allowed registry.
    #[must_use]
    pub fn allows_image(&self, image: &ImageRef) -> bool {
        let name = image.name();
        self.registries
            .iter()
            .any(|entry| matching::registry_allows(entry, &name))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `spec` against `policy` and returns every violation (codes `guardrail-*`).
///
/// Values that are themselves invalid (an unparsable image, a malformed Vault path) are
/// left to validation and not reported twice.
#[must_use]
pub fn check_guardrails(spec: &ServiceSpec, policy: &GuardrailPolicy) -> Vec<Finding> {
    let mut out = Vec::new();
    let namespace = spec.metadata.namespace.as_str();
    let name = spec.metadata.name.as_str();
    let body = FieldPath::root().key("spec");
    let namespace_path = FieldPath::root().key("metadata").key("namespace");

    let driver = spec.driver();
    let drivers = policy.drivers_for(namespace);
    if !drivers.contains(&driver) {
        let field = match driver {
            Driver::Docker => "image",
            Driver::Exec => "command",
        };
        let allowed: Vec<String> = drivers.iter().map(|d| d.as_str().to_owned()).collect();
        out.push(
            Finding::error(
                body.key(field),
                "guardrail-driver",
                format!(
                    "the `{}` driver is not allowed in namespace `{namespace}` (allowed: {}); the platform team can enable it under `drivers` in the guardrail policy",
                    driver.as_str(),
                    list(&allowed)
                ),
            )
            .at_key()
            .related(namespace_path.clone()),
        );
    }

    if let Some(Ok(image)) = spec.spec.image.as_deref().map(ImageRef::parse)
        && !policy.allows_image(&image)
    {
        let message = if policy.registries.is_empty() {
            format!(
                "image `{}` is not allowed: the guardrail policy lists no registries, so every image is rejected until the platform team adds them under `registries`",
                image.name()
            )
        } else {
            format!(
                "image `{}` is not from an allowed registry (allowed: {})",
                image.name(),
                list(&policy.registries)
            )
        };
        out.push(Finding::error(
            body.key("image"),
            "guardrail-registry",
            message,
        ));
    }

    let vault = policy.vault_paths_for(namespace, name);
    for (i, secret) in spec.spec.secrets.iter().enumerate() {
        if check_secret_path(&secret.path).is_err() {
            continue;
        }
        if !vault
            .iter()
            .any(|t| matching::vault_contains(t, &secret.path))
        {
            out.push(
                Finding::error(
                    body.key("secrets").index(i).key("path"),
                    "guardrail-vault-path",
                    format!(
                        "Vault path `{}` is outside what `{namespace}/{name}` may be granted (allowed: {})",
                        secret.path,
                        list(&vault)
                    ),
                )
                .related(namespace_path.clone()),
            );
        }
    }

    let hosts = policy.edge_hosts_for(namespace, name);
    for (i, route) in spec.spec.edge.routes.iter().enumerate() {
        if host_problem(&route.host).is_some() {
            continue;
        }
        if !hosts.iter().any(|p| matching::host_allowed(p, &route.host)) {
            out.push(
                Finding::error(
                    body.key("edge").key("routes").index(i).key("host"),
                    "guardrail-edge-host",
                    format!(
                        "host `{}` is not allowed for `{namespace}/{name}` (allowed: {})",
                        route.host,
                        list(&hosts)
                    ),
                )
                .related(namespace_path.clone()),
            );
        }
    }

    limits(spec, &policy.limits, &body, &mut out);
    out
}

fn limits(spec: &ServiceSpec, limits: &Limits, body: &FieldPath, out: &mut Vec<Finding>) {
    let max = limits.max_replicas;
    let mut replicas = vec![(body.key("replicas"), spec.spec.replicas)];
    if let Some(scaling) = &spec.spec.scaling {
        for (i, window) in scaling.windows.iter().enumerate() {
            let path = body.key("scaling").key("windows").index(i).key("replicas");
            replicas.push((path, window.replicas));
        }
    }
    for (path, count) in replicas {
        if count > max {
            out.push(Finding::error(
                path,
                "guardrail-replicas",
                format!("{count} replicas is above the guardrail limit of {max}"),
            ));
        }
    }
    let resources = body.key("resources");
    let r = &spec.spec.resources;
    if r.cpu > limits.max_cpu {
        out.push(Finding::error(
            resources.key("cpu"),
            "guardrail-cpu",
            format!(
                "cpu {} MHz is above the guardrail limit of {} MHz",
                r.cpu, limits.max_cpu
            ),
        ));
    }
    let memory = [
        ("memoryMB", Some(r.memory_mb)),
        ("memoryMaxMB", r.memory_max_mb),
    ];
    for (field, value) in memory {
        if let Some(mb) = value.filter(|mb| *mb > limits.max_memory_mb) {
            out.push(Finding::error(
                resources.key(field),
                "guardrail-memory",
                format!(
                    "{field} {mb} is above the guardrail limit of {} MB",
                    limits.max_memory_mb
                ),
            ));
        }
    }
}

/// Checks the policy document itself (namespace keys, templates, host patterns,
/// registries).
#[must_use]
pub fn validate_policy(policy: &GuardrailPolicy) -> Vec<Finding> {
    let mut out = Vec::new();
    let root = FieldPath::root();
    if policy.registries.is_empty() {
        out.push(
            Finding::warning(
                root.key("registries"),
                "no-registries",
                "no registries are allowed, so every image will be rejected; list the registries your teams use",
            )
            .at_key(),
        );
    }
    for (i, entry) in policy.registries.iter().enumerate() {
        let bad = entry.trim().is_empty()
            || entry.contains("://")
            || entry.contains('@')
            || entry.chars().any(char::is_whitespace);
        if bad {
            out.push(Finding::error(
                root.key("registries").index(i),
                "invalid-registry",
                format!("registry entry `{entry}` must be a plain `host[:port][/path/]` prefix, without scheme, tag or digest"),
            ));
        }
    }
    namespaces(&policy.vault_paths, &root.key("vaultPaths"), &mut out);
    namespaces(&policy.edge_hosts, &root.key("edgeHosts"), &mut out);
    namespaces(&policy.drivers, &root.key("drivers"), &mut out);
    for (namespace, templates) in &policy.vault_paths {
        for (i, template) in templates.iter().enumerate() {
            let path = root.key("vaultPaths").key(namespace.clone()).index(i);
            if let Some(problem) = placeholder_problem(template) {
                out.push(Finding::error(path, "invalid-template", problem));
            } else if let Err((_, message)) =
                check_secret_path(&matching::expand(template, "ns", "name"))
            {
                out.push(Finding::error(path, "invalid-template", message));
            }
        }
    }
    for (namespace, patterns) in &policy.edge_hosts {
        for (i, pattern) in patterns.iter().enumerate() {
            let path = root.key("edgeHosts").key(namespace.clone()).index(i);
            if let Some(problem) = placeholder_problem(pattern) {
                out.push(Finding::error(path, "invalid-template", problem));
            } else if let Some(problem) = host_problem(&matching::expand(pattern, "ns", "name")) {
                out.push(Finding::error(
                    path,
                    "invalid-host",
                    format!("invalid host pattern `{pattern}`: {problem}"),
                ));
            }
        }
    }
    out
}

fn namespaces<T>(map: &BTreeMap<String, Vec<T>>, path: &FieldPath, out: &mut Vec<Finding>) {
    for namespace in map.keys() {
        if namespace != ALL_NAMESPACES && crate::validate::dns_label_problem(namespace).is_some() {
            out.push(
                Finding::error(
                    path.key(namespace.clone()),
                    "invalid-namespace",
                    format!("`{namespace}` is neither `*` nor a namespace name (a DNS label)"),
                )
                .at_key(),
            );
        }
    }
}

fn placeholder_problem(template: &str) -> Option<String> {
    let stripped = template.replace("{namespace}", "").replace("{name}", "");
    (stripped.contains('{') || stripped.contains('}')).then(|| {
        format!("`{template}`: only the placeholders `{{namespace}}` and `{{name}}` are supported")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_restrictive_and_valid() {
        let policy = GuardrailPolicy::default();
        assert!(policy.registries.is_empty());
        assert_eq!(policy.drivers_for("anything"), vec![Driver::Docker]);
        assert_eq!(
            policy.vault_paths_for("trading", "order-api"),
            [
                "secret/data/trading/order-api/*",
                "secret/metadata/trading/order-api/*"
            ]
        );
        assert_eq!(
            policy.edge_hosts_for("trading", "order-api"),
            ["order-api.trading.apps.internal"]
        );
        let findings = validate_policy(&policy);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, "no-registries");
        assert!(!findings[0].is_error());
    }

    #[test]
    fn namespace_entries_add_to_the_wildcard_entry() {
        let mut policy = GuardrailPolicy::default();
        policy.drivers.insert("tools".into(), vec![Driver::Exec]);
        assert_eq!(
            policy.drivers_for("tools"),
            vec![Driver::Docker, Driver::Exec]
        );
        assert_eq!(policy.drivers_for("trading"), vec![Driver::Docker]);
    }

    #[test]
    fn policy_templates_and_keys_are_validated() {
        let mut policy = GuardrailPolicy {
            registries: vec!["https://registry.example".into()],
            ..GuardrailPolicy::default()
        };
        policy
            .vault_paths
            .insert("Bad_NS".into(), vec!["secret/{team}/*".into()]);
        policy
            .edge_hosts
            .insert("trading".into(), vec!["*.{namespace}".into()]);
        let codes: Vec<String> = validate_policy(&policy)
            .into_iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(
            codes,
            [
                "invalid-registry",
                "invalid-namespace",
                "invalid-template",
                "invalid-host"
            ]
        );
    }
}
