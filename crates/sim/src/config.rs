//! Simulator configuration.

use crate::Product;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How to start the simulator. `SimConfig::default()` listens on ephemeral loopback
/// ports with ACLs off and Vault root token `root`, like the real `-dev` agents.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Consul HTTP API address (port 0 = ephemeral).
    pub consul_addr: SocketAddr,
    /// Nomad HTTP API address (port 0 = ephemeral).
    pub nomad_addr: SocketAddr,
    /// Vault HTTP API address (port 0 = ephemeral).
    pub vault_addr: SocketAddr,
    /// Where state survives restarts; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// How long after a change the state file is written (writes are debounced).
    pub persist_debounce: Duration,
    /// ACL tokens. A product enforces ACLs only when at least one token is configured
    /// for it (Vault always requires a token; its root token is always valid).
    pub tokens: Vec<TokenConfig>,
    /// Vault's root token (`vault server -dev -dev-root-token-id=...`).
    pub vault_root_token: String,
    /// Seed for every random decision (faults, IDs are still random UUIDs).
    pub seed: u64,
    /// Consul-specific settings.
    pub consul: crate::consul::ConsulSimConfig,
    /// Nomad-specific settings (scheduler timings, where allocations listen).
    pub nomad: crate::nomad::NomadSimConfig,
    /// Vault-specific settings.
    pub vault: crate::vault::VaultSimConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        SimConfig {
            consul_addr: loopback,
            nomad_addr: loopback,
            vault_addr: loopback,
            data_dir: None,
            persist_debounce: Duration::from_millis(200),
            tokens: Vec::new(),
            vault_root_token: "root".to_string(),
            seed: 0x5eed,
            consul: Default::default(),
            nomad: Default::default(),
            vault: Default::default(),
        }
    }
}

impl SimConfig {
    /// Tokens configured for one product.
    pub fn tokens_for(&self, product: Product) -> impl Iterator<Item = &TokenConfig> {
        self.tokens.iter().filter(move |t| t.product == product)
    }
}

/// One ACL token known to a simulated product.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenConfig {
    /// Product the token belongs to.
    pub product: Product,
    /// The secret sent in `X-Consul-Token` / `X-Nomad-Token` / `X-Vault-Token`.
    pub secret: String,
    /// Full access (Consul/Nomad management token; Vault `root` policy).
    #[serde(default)]
    pub management: bool,
    /// The product's own policy language: Consul ACL rules (HCL), Nomad ACL policy
    /// (HCL), or Vault policy names (comma-separated) / policy HCL.
    #[serde(default)]
    pub rules: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("product", &self.product)
            .field("secret", &"<redacted>")
            .field("management", &self.management)
            .field("rules", &self.rules)
            .finish()
    }
}
