//! ServiceSpec v1: the document a service team commits, with every default filled in.
//!
//! Loading ([`crate::load()`]) fills every default through serde, so the renderer reads
//! plain fields; the few values derived from several fields have accessors
//! ([`ServiceSpec::driver`], [`ServiceSpec::effective_protocol`], [`EdgeRoute::path_match`], ...).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

mod schedule;
mod secrets;
mod traffic;

pub use schedule::{Periodic, Scaling, ScalingWindow};
pub use secrets::{Capability, SecretAccess};
pub use traffic::{
    AllowFrom, Edge, EdgeRoute, HttpMethod, IntentionAction, PathMatch, Protocol, Upstream,
};

/// The only `apiVersion` this crate reads.
pub const API_VERSION: &str = "steward/v1";
/// The `kind` of a service document.
pub const SERVICE_SPEC_KIND: &str = "ServiceSpec";
/// The namespace used when `metadata.namespace` is omitted.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The time zone used when `scaling.timeZone` / `periodic.timeZone` is omitted.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// Port name reserved for the main `port` (named `ports` may not use it).
pub const MAIN_PORT_NAME: &str = "main";

/// A ServiceSpec v1 document (`apiVersion: steward/v1`, `kind: ServiceSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ServiceSpec v1")]
pub struct ServiceSpec {
    /// Must be exactly `steward/v1`. Required.
    #[schemars(extend("const" = "steward/v1"))]
    pub api_version: String,
    /// Must be exactly `ServiceSpec`. Required.
    #[schemars(extend("const" = "ServiceSpec"))]
    pub kind: String,
    /// Name, namespace and labels. Required.
    pub metadata: Metadata,
    /// What to run and how it may be reached. Required.
    pub spec: Spec,
}

/// Identity of the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Service name: an RFC 1123 DNS label (lower-case letters, digits and `-`, at most 63
    /// characters, starting and ending with a letter or digit). Unique in its namespace; it
    /// is also the Consul service name and the Nomad job ID. Required.
    pub name: String,
    /// Namespace (a DNS label like `name`); the Nomad namespace of the job.
    /// Default: `default`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Free-form labels (keys: up to 63 letters, digits, `-`, `_`, `.`, optionally prefixed
    /// by `<dns-subdomain>/`; the `steward.` and `steward/` prefixes are reserved).
    /// Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for `namespace/name` without labels.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            labels: BTreeMap::new(),
        }
    }
}

/// The service body. Exactly one of `image` (docker driver) or `command` (exec driver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// Container image reference for the Nomad `docker` driver, e.g.
    /// `registry.example/order-api:1.4.2` or `ghcr.io/acme/web@sha256:<64 hex>`.
    /// Exactly one of `image` and `command` is required. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Executable for the Nomad `exec` driver (a single path, no arguments: put those in
    /// `args`). Exactly one of `image` and `command` is required. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments: passed to `command` (exec driver) or to the image's entrypoint (docker
    /// driver `args`). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Number of instances (Nomad group count) outside scaling windows. 0..=1000.
    /// Default: 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(max = 1000))]
    pub replicas: u32,
    /// CPU and memory reserved per instance. Default: cpu 100 MHz, memoryMB 128.
    #[serde(default)]
    pub resources: Resources,
    /// Main port the service listens on inside its network namespace (1..=65535); this is
    /// the port registered in Consul and targeted by `allowFrom`, `edge` and `check`.
    /// Default: none (a worker that accepts no connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Extra named ports (metrics, admin). Names and port numbers must be unique and must
    /// differ from `port`. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NamedPort>,
    /// Protocol of the main port, used for Consul `service-defaults`. Default: derived —
    /// `http` when any L7 feature is used (an `http` check, `edge` routes, or `allowFrom`
    /// rules with `methods`/paths), otherwise `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Environment variables (names like `[A-Za-z_][A-Za-z0-9_]*`; the `NOMAD_` prefix is
    /// reserved). Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Health check on the main port (requires `port`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// Rolling-update policy (ignored for periodic jobs). Default: every field at its own default.
    #[serde(default)]
    pub update: Update,
    /// Nomad datacenters the job may run in (globs allowed). Default: `["*"]`.
    #[serde(default = "default_datacenters")]
    pub datacenters: Vec<String>,
    /// Services this one calls through its Connect sidecar. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Upstream>,
    /// Which services may call this one (Consul `service-intentions`); anything not listed
    /// is denied. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<AllowFrom>,
    /// Vault paths the service may use (a Vault ACL policy bound to its workload identity).
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretAccess>,
    /// Routes on the edge gateway (Consul `http-route`). Default: no routes.
    #[serde(default, skip_serializing_if = "Edge::is_empty")]
    pub edge: Edge,
    /// Time-of-day replica windows. Default: none (always `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// Run as a periodic batch job on a cron schedule instead of a long-running service.
    /// Default: none (a service job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<Periodic>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            image: None,
            command: None,
            args: Vec::new(),
            replicas: default_replicas(),
            resources: Resources::default(),
            port: None,
            ports: Vec::new(),
            protocol: None,
            env: BTreeMap::new(),
            check: None,
            update: Update::default(),
            datacenters: default_datacenters(),
            upstreams: Vec::new(),
            allow_from: Vec::new(),
            secrets: Vec::new(),
            edge: Edge::default(),
            scaling: None,
            periodic: None,
        }
    }
}

/// CPU and memory per instance (Nomad task `resources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// CPU in MHz, 10..=64000. Default: 100.
    #[serde(default = "default_cpu")]
    #[schemars(range(min = 10, max = 64000))]
    pub cpu: u32,
    /// Memory reservation in MB, 10..=262144. Default: 128.
    #[serde(default = "default_memory_mb", rename = "memoryMB")]
    #[schemars(range(min = 10, max = 262_144))]
    pub memory_mb: u32,
    /// Memory limit in MB (Nomad memory oversubscription), at least `memoryMB` and at most
    /// 262144. Default: none (the limit equals `memoryMB`).
    #[serde(
        default,
        rename = "memoryMaxMB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 10, max = 262_144))]
    pub memory_max_mb: Option<u32>,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: default_cpu(),
            memory_mb: default_memory_mb(),
            memory_max_mb: None,
        }
    }
}

/// An extra named port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedPort {
    /// Port label: lower-case letters, digits and `_`, starting with a letter, at most 32
    /// characters (Nomad exposes it as `NOMAD_PORT_<name>`); `main` is reserved. Required.
    pub name: String,
    /// Port number inside the network namespace, 1..=65535. Required.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
}

/// Health check on the main port. Exactly one of `http` and `tcp`; only `http` is
/// accepted on a service with a `port`, which is always in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    /// HTTP GET path (starting with `/`) that answers 2xx when healthy. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// `true` for a TCP connect check. Rejected on a service with a `port` (every such
    /// service is in the Connect mesh, where Nomad refuses TCP checks); kept so that a
    /// spec using it gets that diagnostic rather than an unknown field. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<bool>,
    /// Time between checks, 1s..=1h. Default: `10s`.
    #[serde(default = "default_check_interval")]
    pub interval: Duration,
    /// Time a check may take, at least 1s and less than `interval`. Default: `2s`.
    #[serde(default = "default_check_timeout")]
    pub timeout: Duration,
}

/// Which kind of check a [`Check`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind<'a> {
    /// HTTP GET on this path.
    Http(&'a str),
    /// TCP connect.
    Tcp,
}

impl Check {
    /// The check kind: `http` wins if (invalidly) both are set; `None` if neither is.
    #[must_use]
    pub fn kind(&self) -> Option<CheckKind<'_>> {
        match (&self.http, self.tcp) {
            (Some(path), _) => Some(CheckKind::Http(path)),
            (None, Some(true)) => Some(CheckKind::Tcp),
            _ => None,
        }
    }
}

/// Rolling-update policy (Nomad `update` block). Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Update {
    /// Instances updated at once, 1..=1000. Default: 1.
    #[serde(default = "default_max_parallel")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_parallel: u32,
    /// Canary instances placed before the rolling update, 0..=1000. Default: 0.
    #[serde(default)]
    #[schemars(range(max = 1000))]
    pub canary: u32,
    /// Roll back to the last stable version when a deployment fails.
    /// Default: `true` (Nomad's own default is `false`).
    #[serde(default = "default_true")]
    pub auto_revert: bool,
    /// Promote canaries automatically once healthy (needs `canary` > 0). Default: `false`.
    #[serde(default)]
    pub auto_promote: bool,
    /// How long an instance must be healthy to count as healthy; less than
    /// `healthyDeadline`. Default: `10s`.
    #[serde(default = "default_min_healthy_time")]
    pub min_healthy_time: Duration,
    /// Deadline for an instance to become healthy; less than `progressDeadline`.
    /// Default: `5m`.
    #[serde(default = "default_healthy_deadline")]
    pub healthy_deadline: Duration,
    /// Deadline for the deployment to make progress (an instance turning healthy).
    /// Default: `10m`.
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline: Duration,
}

impl Default for Update {
    fn default() -> Self {
        Self {
            max_parallel: default_max_parallel(),
            canary: 0,
            auto_revert: true,
            auto_promote: false,
            min_healthy_time: default_min_healthy_time(),
            healthy_deadline: default_healthy_deadline(),
            progress_deadline: default_progress_deadline(),
        }
    }
}

/// The Nomad task driver a spec runs with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// `docker` (the spec sets `image`).
    Docker,
    /// `exec` (the spec sets `command`).
    Exec,
}

impl Driver {
    /// The driver name as Nomad writes it.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Driver::Docker => "docker",
            Driver::Exec => "exec",
        }
    }
}

impl ServiceSpec {
    /// A spec with `apiVersion`/`kind` set and the given metadata and body.
    #[must_use]
    pub fn new(metadata: Metadata, spec: Spec) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: SERVICE_SPEC_KIND.to_owned(),
            metadata,
            spec,
        }
    }

    /// `"<namespace>/<name>"`, the spec's key everywhere in Steward.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// `Exec` when `command` is set and `image` is not; otherwise `Docker`.
    #[must_use]
    pub fn driver(&self) -> Driver {
        match (&self.spec.image, &self.spec.command) {
            (None, Some(_)) => Driver::Exec,
            _ => Driver::Docker,
        }
    }

    /// Whether this is a (periodic) batch job rather than a service job.
    #[must_use]
    pub fn is_batch(&self) -> bool {
        self.spec.periodic.is_some()
    }

    /// Whether any L7 feature is used: an `http` check, edge routes, or L7 `allowFrom`.
    #[must_use]
    pub fn uses_l7(&self) -> bool {
        let http_check = matches!(
            self.spec.check.as_ref().and_then(Check::kind),
            Some(CheckKind::Http(_))
        );
        http_check
            || !self.spec.edge.is_empty()
            || self.spec.allow_from.iter().any(AllowFrom::is_l7)
    }

    /// `spec.protocol` if set, else `http` when [`ServiceSpec::uses_l7`], else `tcp`.
    #[must_use]
    pub fn effective_protocol(&self) -> Protocol {
        match self.spec.protocol {
            Some(p) => p,
            None if self.uses_l7() => Protocol::Http,
            None => Protocol::Tcp,
        }
    }

    /// The largest replica count the spec can ask for (base or any scaling window).
    #[must_use]
    pub fn max_replicas(&self) -> u32 {
        let windows = self.spec.scaling.iter().flat_map(|s| s.windows.iter());
        windows
            .map(|w| w.replicas)
            .fold(self.spec.replicas, u32::max)
    }
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}
fn default_replicas() -> u32 {
    1
}
fn default_cpu() -> u32 {
    100
}
fn default_memory_mb() -> u32 {
    128
}
fn default_true() -> bool {
    true
}
fn default_max_parallel() -> u32 {
    1
}
fn default_datacenters() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_owned()
}
fn default_check_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_check_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_min_healthy_time() -> Duration {
    Duration::from_secs(10)
}
fn default_healthy_deadline() -> Duration {
    Duration::from_mins(5)
}
fn default_progress_deadline() -> Duration {
    Duration::from_mins(10)
}
