//! What rendering needs besides the spec: cluster-wide settings and the caller's decisions.

use serde::{Deserialize, Serialize};

use crate::names::DEFAULT_JWT_AUTH_MOUNT;

/// Default kind of the edge gateway entry.
pub const DEFAULT_GATEWAY_KIND: &str = "api-gateway";
/// Default name of the edge gateway.
pub const DEFAULT_GATEWAY_NAME: &str = "edge";
/// Default listener (`SectionName`) on the edge gateway.
pub const DEFAULT_GATEWAY_SECTION: &str = "http";
/// Default audience of Nomad's Vault workload identity.
pub const DEFAULT_JWT_AUDIENCE: &str = "vault.io";

/// Inputs of [`crate::render`] other than the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderContext {
    /// The spec's generation (its KV `ModifyIndex`), written to `steward.generation`.
    /// Not part of the spec hash.
    pub generation: u64,
    /// Group count decided by the caller from the scaling windows at "now"; `None` means
    /// `spec.replicas`. Not part of the spec hash (the windows themselves are).
    pub replicas: Option<u32>,
    /// The gateway `http-route` entries attach to.
    pub edge_gateway: GatewayRef,
    /// Mount of the JWT auth method Nomad workload identities log in with.
    pub jwt_auth_mount: String,
    /// Audience (`aud`) of Nomad's Vault workload identity, bound by the role.
    pub jwt_audience: String,
}

impl Default for RenderContext {
    fn default() -> Self {
        Self {
            generation: 0,
            replicas: None,
            edge_gateway: GatewayRef::default(),
            jwt_auth_mount: DEFAULT_JWT_AUTH_MOUNT.to_owned(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.to_owned(),
        }
    }
}

/// A parent gateway of `http-route` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRef {
    /// Config entry kind of the gateway. Default `api-gateway`.
    pub kind: String,
    /// Gateway name. Default `edge`.
    pub name: String,
    /// Listener name on the gateway; `None` attaches to every listener. Default `http`.
    pub section_name: Option<String>,
}

impl Default for GatewayRef {
    fn default() -> Self {
        Self {
            kind: DEFAULT_GATEWAY_KIND.to_owned(),
            name: DEFAULT_GATEWAY_NAME.to_owned(),
            section_name: Some(DEFAULT_GATEWAY_SECTION.to_owned()),
        }
    }
}
