//! The one naming module: every name Steward gives an object, and the way back from an
//! object to the spec that owns it.
//!
//! For spec key `<ns>/<name>` (both RFC 1123 DNS labels):
//!
//! | object | name |
//! |---|---|
//! | Nomad namespace | `<ns>` |
//! | Nomad job ID (and `Name`) | `<name>` |
//! | task group | `<name>` |
//! | main task | `app` ([`TASK_NAME`]) |
//! | main port label | `main` ([`MAIN_PORT_LABEL`], the spec's reserved port name) |
//! | health check | `<name>-health` |
//! | Consul service | `<name>` (Consul OSS has no namespaces: see below) |
//! | `service-defaults`, `service-intentions` entries | `<name>` (named after the service) |
//! | `http-route`, routes for one host (or none) | `<ns>-<name>` |
//! | `http-route`, routes for several hosts | one per host: `<ns>-<name>-<host slug>-<8 hex>` ([`http_route_for_host`]) |
//! | Vault ACL policy | `steward-<ns>-<name>`, HCL starting with `# managed-by: steward; spec: <ns>/<name>` |
//! | Vault JWT auth role | `steward-<ns>-<name>` on the configured mount (default `jwt-nomad`) |
//!
//! Ownership: Nomad jobs and config entries carry the four [`ownership_meta`] keys in
//! `Meta`; policies carry the marker comment; roles are bound to exactly one job through
//! `bound_claims`. [`owner_from_meta`], [`owner_of_policy`] and [`owner_of_role`] read the
//! owning key back.
//!
//! Collisions: Consul names ignore the namespace, and `<ns>-<name>` is not injective
//! (`a-b/c` and `a/b-c` both give `a-b-c`). Every owned object therefore records the full
//! spec key, and the operator must treat an object whose recorded owner differs from the
//! spec it is reconciling as a conflict, never overwrite it.

use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use steward_spec::ServiceSpec;

/// `Meta` key naming the manager; its value is always [`MANAGED_BY`].
pub const META_MANAGED_BY: &str = "steward.managed-by";
/// `Meta` key holding the owning spec key `<ns>/<name>`.
pub const META_SPEC: &str = "steward.spec";
/// `Meta` key holding the spec's generation (its KV `ModifyIndex`). Informational: the
/// diff ignores it.
pub const META_GENERATION: &str = "steward.generation";
/// `Meta` key holding the spec hash the object was rendered from.
pub const META_HASH: &str = "steward.hash";
/// Prefix shared by every ownership `Meta` key.
pub const META_PREFIX: &str = "steward.";
/// Value of [`META_MANAGED_BY`].
pub const MANAGED_BY: &str = "steward";
/// Prefix of Vault policy and role names.
pub const VAULT_NAME_PREFIX: &str = "steward-";
/// The policy marker comment up to the spec key.
pub const POLICY_MARKER_PREFIX: &str = "# managed-by: steward; spec: ";
/// Name of the one task that runs the workload.
pub const TASK_NAME: &str = "app";
/// Label of the main port in the group network (the spec's reserved port name).
pub const MAIN_PORT_LABEL: &str = steward_spec::MAIN_PORT_NAME;
/// Prefix of the sidecar task and port Nomad injects for a Connect service.
pub const CONNECT_PROXY_PREFIX: &str = "connect-proxy-";
/// Default JWT auth mount that Nomad workload identities log in with.
pub const DEFAULT_JWT_AUTH_MOUNT: &str = "jwt-nomad";

/// The key of a spec, `<ns>/<name>`: the owner of every object rendered from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpecKey {
    namespace: String,
    name: String,
}

impl SpecKey {
    /// The key of `namespace/name`.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a loaded spec.
    #[must_use]
    pub fn of(spec: &ServiceSpec) -> Self {
        Self::new(&spec.metadata.namespace, &spec.metadata.name)
    }

    /// Parses `<ns>/<name>`; `None` unless both parts are DNS labels.
    #[must_use]
    pub fn parse(key: &str) -> Option<Self> {
        let (namespace, name) = key.split_once('/')?;
        (is_dns_label(namespace) && is_dns_label(name)).then(|| Self::new(namespace, name))
    }

    /// The namespace part.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name part.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for SpecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// RFC 1123 label: 1..=63 of `[a-z0-9-]`, not starting or ending with `-`.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Nomad namespace of the job: `<ns>`.
#[must_use]
pub fn nomad_namespace(key: &SpecKey) -> String {
    key.namespace.clone()
}

/// Nomad job ID (also its `Name`): `<name>`.
#[must_use]
pub fn job_id(key: &SpecKey) -> String {
    key.name.clone()
}

/// Name of the job's only task group: `<name>`.
#[must_use]
pub fn group_name(key: &SpecKey) -> String {
    key.name.clone()
}

/// Name of the health check on the service: `<name>-health`.
#[must_use]
pub fn health_check(key: &SpecKey) -> String {
    format!("{}-health", key.name)
}

/// Consul service name: `<name>`.
#[must_use]
pub fn consul_service(key: &SpecKey) -> String {
    key.name.clone()
}

/// Name of the `service-defaults` entry: the Consul service name.
#[must_use]
pub fn service_defaults(key: &SpecKey) -> String {
    consul_service(key)
}

/// Name of the `service-intentions` entry: the destination, i.e. the Consul service name.
#[must_use]
pub fn service_intentions(key: &SpecKey) -> String {
    consul_service(key)
}

/// Name of the `http-route` entry when the spec's edge routes use at most one host:
/// `<ns>-<name>`.
#[must_use]
pub fn http_route(key: &SpecKey) -> String {
    format!("{}-{}", key.namespace, key.name)
}

/// Name of the `http-route` entry for one host when the spec's routes use several hosts
/// (an entry applies its `Hostnames` to all its rules, so routes are grouped per host):
/// `<ns>-<name>-<slug>-<hash>`, where `<slug>` is the host lower-cased with `*` written
/// `wildcard` and every other character outside `[a-z0-9]` written `-`, and `<hash>` the
/// first 8 hex digits of the SHA-256 of the host as written in the spec. The slug keeps
/// names readable; the hash keeps them distinct (`a-b.example` and `a.b-example` share a
/// slug).
#[must_use]
pub fn http_route_for_host(key: &SpecKey, host: &str) -> String {
    let mut slug = String::with_capacity(host.len() + 8);
    for c in host.chars() {
        match c {
            '*' => slug.push_str("wildcard"),
            c if c.is_ascii_alphanumeric() => slug.push(c.to_ascii_lowercase()),
            _ => slug.push('-'),
        }
    }
    let digest = hex::encode(Sha256::digest(host.as_bytes()));
    let short = digest.get(..8).unwrap_or(&digest);
    format!("{}-{}-{slug}-{short}", key.namespace, key.name)
}

/// Vault ACL policy name: `steward-<ns>-<name>`.
#[must_use]
pub fn vault_policy(key: &SpecKey) -> String {
    format!("{VAULT_NAME_PREFIX}{}-{}", key.namespace, key.name)
}

/// Vault JWT auth role name: `steward-<ns>-<name>`.
#[must_use]
pub fn jwt_role(key: &SpecKey) -> String {
    format!("{VAULT_NAME_PREFIX}{}-{}", key.namespace, key.name)
}

/// The first line of every policy Steward writes: `# managed-by: steward; spec: <ns>/<name>`.
#[must_use]
pub fn policy_marker(key: &SpecKey) -> String {
    format!("{POLICY_MARKER_PREFIX}{key}")
}

/// The spec key recorded in a policy's marker comment (its first non-blank line).
#[must_use]
pub fn parse_policy_marker(hcl: &str) -> Option<SpecKey> {
    let first = hcl.lines().map(str::trim).find(|l| !l.is_empty())?;
    SpecKey::parse(first.strip_prefix(POLICY_MARKER_PREFIX)?.trim())
}

/// The owner of a Vault policy: the marker's key, provided the policy's name is the one
/// that key gives (Vault lower-cases names, so they are compared case-insensitively).
#[must_use]
pub fn owner_of_policy(name: &str, hcl: &str) -> Option<SpecKey> {
    let key = parse_policy_marker(hcl)?;
    name.eq_ignore_ascii_case(&vault_policy(&key))
        .then_some(key)
}

/// The owner of a JWT auth role, from its body (write or read form): the key given by
/// `bound_claims` `{nomad_namespace, nomad_job_id}`, provided the role's name is the one
/// that key gives.
#[must_use]
pub fn owner_of_role(name: &str, body: &Value) -> Option<SpecKey> {
    let claims = body.get("bound_claims")?;
    let namespace = claims.get("nomad_namespace")?.as_str()?;
    let job = claims.get("nomad_job_id")?.as_str()?;
    let key = SpecKey::new(namespace, job);
    (is_dns_label(namespace) && is_dns_label(job) && name.eq_ignore_ascii_case(&jwt_role(&key)))
        .then_some(key)
}

/// Whether a Vault policy or role name is in Steward's reserved prefix.
#[must_use]
pub fn has_vault_prefix(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with(VAULT_NAME_PREFIX)
}

/// The ownership `Meta` of every Nomad job and config entry, in this order:
/// managed-by, spec, generation, hash.
#[must_use]
pub fn ownership_meta(key: &SpecKey, generation: u64, hash: &str) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(META_MANAGED_BY.to_owned(), Value::from(MANAGED_BY));
    meta.insert(META_SPEC.to_owned(), Value::from(key.to_string()));
    meta.insert(
        META_GENERATION.to_owned(),
        Value::from(generation.to_string()),
    );
    meta.insert(META_HASH.to_owned(), Value::from(hash));
    meta
}

/// The owning spec recorded in an object's `Meta` (a JSON object; `null` or anything
/// else gives `None`): requires `steward.managed-by = steward` and a valid `steward.spec`.
#[must_use]
pub fn owner_from_meta(meta: &Value) -> Option<SpecKey> {
    let meta = meta.as_object()?;
    if meta.get(META_MANAGED_BY)?.as_str()? != MANAGED_BY {
        return None;
    }
    SpecKey::parse(meta.get(META_SPEC)?.as_str()?)
}

/// The spec hash recorded in an object's `Meta`.
#[must_use]
pub fn hash_from_meta(meta: &Value) -> Option<&str> {
    meta.get(META_HASH)?.as_str()
}

/// The spec generation recorded in an object's `Meta`.
#[must_use]
pub fn generation_from_meta(meta: &Value) -> Option<u64> {
    meta.get(META_GENERATION)?.as_str()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> SpecKey {
        SpecKey::new("trading", "order-api")
    }

    #[test]
    fn names_follow_the_contract() {
        let k = key();
        assert_eq!(k.to_string(), "trading/order-api");
        assert_eq!(nomad_namespace(&k), "trading");
        assert_eq!(job_id(&k), "order-api");
        assert_eq!(group_name(&k), "order-api");
        assert_eq!(consul_service(&k), "order-api");
        assert_eq!(service_defaults(&k), "order-api");
        assert_eq!(service_intentions(&k), "order-api");
        assert_eq!(http_route(&k), "trading-order-api");
        assert_eq!(vault_policy(&k), "steward-trading-order-api");
        assert_eq!(jwt_role(&k), "steward-trading-order-api");
        assert_eq!(
            policy_marker(&k),
            "# managed-by: steward; spec: trading/order-api"
        );
        assert_eq!(TASK_NAME, "app");
        assert_eq!(MAIN_PORT_LABEL, "main");
    }

    #[test]
    fn per_host_route_names_are_readable_distinct_and_stable() {
        let k = key();
        let a = http_route_for_host(&k, "api.example.com");
        assert!(a.starts_with("trading-order-api-api-example-com-"), "{a}");
        assert_eq!(a.len(), "trading-order-api-api-example-com-".len() + 8);
        assert_eq!(a, http_route_for_host(&k, "api.example.com"));
        let w = http_route_for_host(&k, "*.example.com");
        assert!(
            w.starts_with("trading-order-api-wildcard-example-com-"),
            "{w}"
        );
        assert_ne!(
            http_route_for_host(&k, "a-b.example"),
            http_route_for_host(&k, "a.b-example")
        );
    }

    #[test]
    fn spec_keys_parse_back_only_when_well_formed() {
        assert_eq!(SpecKey::parse("trading/order-api"), Some(key()));
        for bad in [
            "",
            "trading",
            "/x",
            "x/",
            "a/b/c",
            "Trading/x",
            "a/-b",
            "a b/c",
        ] {
            assert_eq!(SpecKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn meta_round_trips_to_the_owner() {
        let meta = Value::Object(ownership_meta(&key(), 42, "abc"));
        assert_eq!(owner_from_meta(&meta), Some(key()));
        assert_eq!(hash_from_meta(&meta), Some("abc"));
        assert_eq!(generation_from_meta(&meta), Some(42));
        let keys: Vec<_> = meta.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [META_MANAGED_BY, META_SPEC, META_GENERATION, META_HASH]
        );

        let foreign = serde_json::json!({"steward.managed-by": "someone", "steward.spec": "a/b"});
        assert_eq!(owner_from_meta(&foreign), None);
        assert_eq!(owner_from_meta(&Value::Null), None);
    }

    #[test]
    fn policies_are_owned_through_name_and_marker() {
        let hcl = "# managed-by: steward; spec: trading/order-api\npath \"x\" {}\n";
        assert_eq!(
            owner_of_policy("steward-trading-order-api", hcl),
            Some(key())
        );
        assert_eq!(
            owner_of_policy("STEWARD-trading-order-api", hcl),
            Some(key())
        );
        assert_eq!(owner_of_policy("steward-other", hcl), None);
        assert_eq!(
            owner_of_policy("steward-trading-order-api", "path \"x\" {}"),
            None
        );
        assert_eq!(
            parse_policy_marker("\n  # managed-by: steward; spec: a/b  \n"),
            Some(SpecKey::new("a", "b"))
        );
        assert!(has_vault_prefix("Steward-x"));
        assert!(!has_vault_prefix("nomad-workloads"));
    }

    #[test]
    fn roles_are_owned_through_name_and_bound_claims() {
        let body = serde_json::json!({"bound_claims": {"nomad_namespace": "trading", "nomad_job_id": "order-api"}});
        assert_eq!(
            owner_of_role("steward-trading-order-api", &body),
            Some(key())
        );
        assert_eq!(owner_of_role("steward-x", &body), None);
        assert_eq!(
            owner_of_role("steward-trading-order-api", &serde_json::json!({})),
            None
        );
    }
}
