//! The objects one spec renders to, in the exact shapes the APIs take.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Everything one spec owns, as it should be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// The spec key `<ns>/<name>`.
    pub key: String,
    /// The spec hash ([`crate::spec_hash`]), also written to `steward.hash`.
    pub hash: String,
    /// The Nomad job.
    pub nomad_job: NomadJob,
    /// The `service-defaults` entry (every spec with a `port`).
    pub service_defaults: Option<ConfigEntry>,
    /// The `service-intentions` entry for this service as destination (every spec with a
    /// `port`: anything not allowed is denied).
    pub service_intentions: Option<ConfigEntry>,
    /// `http-route` entries on the edge gateway, one per host group (see
    /// [`crate::names::http_route_for_host`]); empty without edge routes.
    pub http_routes: Vec<ConfigEntry>,
    /// The Vault ACL policy (specs with `secrets`).
    pub vault_policy: Option<VaultPolicy>,
    /// The Vault JWT auth role naming that policy (specs with `secrets`).
    pub vault_role: Option<VaultRole>,
}

/// A Nomad job to register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NomadJob {
    /// Nomad namespace.
    pub namespace: String,
    /// Job ID.
    pub id: String,
    /// The `Job` object of the register body (`PUT /v1/jobs` with `{"Job": job}`).
    pub job: Value,
}

impl NomadJob {
    /// The register request body: `{"Job": job}` plus, when `enforce_index` is given,
    /// `EnforceIndex: true` and `JobModifyIndex` (0 = create only).
    #[must_use]
    pub fn register_body(&self, enforce_index: Option<u64>) -> Value {
        match enforce_index {
            Some(index) => json!({"Job": self.job, "EnforceIndex": true, "JobModifyIndex": index}),
            None => json!({"Job": self.job}),
        }
    }
}

/// A Consul config entry to write with `PUT /v1/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// `Kind` (`service-defaults`, `service-intentions`, `http-route`).
    pub kind: String,
    /// `Name`.
    pub name: String,
    /// The whole entry body, `Kind` and `Name` included.
    pub body: Value,
}

/// A Vault ACL policy to write with `PUT /v1/sys/policies/acl/<name>` `{"policy": hcl}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultPolicy {
    /// Policy name (lower-case).
    pub name: String,
    /// Policy text; its first line is the ownership marker.
    pub hcl: String,
}

/// A Vault JWT auth role to write with `POST /v1/auth/<mount>/role/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaultRole {
    /// Auth mount (without `auth/`).
    pub mount: String,
    /// Role name.
    pub name: String,
    /// Request body.
    pub body: Value,
}

/// The kinds of object a spec owns, in apply order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    /// Vault ACL policy.
    VaultPolicy,
    /// Vault JWT auth role (needs the policy name it grants).
    VaultRole,
    /// Consul `service-defaults` (the protocol L7 intentions and routes need).
    ServiceDefaults,
    /// Consul `service-intentions`.
    ServiceIntentions,
    /// Nomad job (its `vault` block names the role).
    NomadJob,
    /// Consul `http-route` (its service must exist with an HTTP protocol).
    HttpRoute,
}

impl ObjectKind {
    /// Every kind in apply order; delete in the reverse order.
    pub const APPLY_ORDER: [ObjectKind; 6] = [
        ObjectKind::VaultPolicy,
        ObjectKind::VaultRole,
        ObjectKind::ServiceDefaults,
        ObjectKind::ServiceIntentions,
        ObjectKind::NomadJob,
        ObjectKind::HttpRoute,
    ];

    /// A short stable name (`vault-policy`, `vault-role`, `service-defaults`,
    /// `service-intentions`, `nomad-job`, `http-route`): the config entry kind where
    /// there is one.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ObjectKind::VaultPolicy => "vault-policy",
            ObjectKind::VaultRole => "vault-role",
            ObjectKind::ServiceDefaults => "service-defaults",
            ObjectKind::ServiceIntentions => "service-intentions",
            ObjectKind::NomadJob => "nomad-job",
            ObjectKind::HttpRoute => "http-route",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One owned object: its kind and name (job ID for the Nomad job, whose namespace is
/// [`NomadJob::namespace`]; role name on [`VaultRole::mount`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Kind.
    pub kind: ObjectKind,
    /// Name.
    pub name: String,
}

impl Desired {
    /// Every object, in apply order: Vault policy → role → service-defaults →
    /// intentions → job → http-routes. Deletion goes in the reverse order.
    #[must_use]
    pub fn objects(&self) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        let mut add = |kind, name: &str| {
            out.push(ObjectRef {
                kind,
                name: name.to_owned(),
            });
        };
        if let Some(p) = &self.vault_policy {
            add(ObjectKind::VaultPolicy, &p.name);
        }
        if let Some(r) = &self.vault_role {
            add(ObjectKind::VaultRole, &r.name);
        }
        if let Some(e) = &self.service_defaults {
            add(ObjectKind::ServiceDefaults, &e.name);
        }
        if let Some(e) = &self.service_intentions {
            add(ObjectKind::ServiceIntentions, &e.name);
        }
        add(ObjectKind::NomadJob, &self.nomad_job.id);
        for route in &self.http_routes {
            add(ObjectKind::HttpRoute, &route.name);
        }
        out
    }

    /// Every config entry (service-defaults, intentions, routes) in apply order.
    #[must_use]
    pub fn config_entries(&self) -> Vec<&ConfigEntry> {
        let head = self.service_defaults.iter().chain(&self.service_intentions);
        head.chain(&self.http_routes).collect()
    }
}
