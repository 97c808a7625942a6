//! The three simulated products and what they have in common.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the simulated HashiCorp products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// Consul: KV, sessions, txn, config entries, catalog and health.
    Consul,
    /// Nomad: jobs, plans, evaluations, allocations, deployments.
    Nomad,
    /// Vault: ACL policies, JWT auth roles, token lookup, health.
    Vault,
}

impl Product {
    /// Every product, in a fixed order.
    pub const ALL: [Product; 3] = [Product::Consul, Product::Nomad, Product::Vault];

    /// Lower-case name used in stats, admin requests and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Consul => "consul",
            Product::Nomad => "nomad",
            Product::Vault => "vault",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Product> {
        match s {
            "consul" => Some(Product::Consul),
            "nomad" => Some(Product::Nomad),
            "vault" => Some(Product::Vault),
            _ => None,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the core needs from each product's state: persistence and the
/// snapshot-restore fault.
pub trait ProductState: Send + Sync {
    /// Which product this is.
    fn product(&self) -> Product;
    /// The product's index clock; every change to persisted state must tick it (or
    /// [`IndexClock::touch`](crate::index::IndexClock::touch) it) so the state is saved.
    fn clock(&self) -> &crate::index::IndexClock;
    /// A serialisable copy of the whole state, including the index counter.
    fn snapshot(&self) -> serde_json::Value;
    /// [`ProductState::snapshot`] serialised (compact JSON). Products override it to
    /// write their tables directly, without building a JSON tree of the whole state.
    fn snapshot_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.snapshot()).unwrap_or_default()
    }
    /// Replaces the whole state with a snapshot taken by [`ProductState::snapshot`].
    ///
    /// # Errors
    /// A message naming what in the snapshot is malformed.
    fn restore(&self, snapshot: serde_json::Value) -> Result<(), String>;
    /// Simulates a snapshot restore that moves indexes backwards: the index counter
    /// and every stored index are lowered, and every blocked watcher is woken.
    fn reset_indexes(&self);
}

/// What every product's state gets when it is created.
#[derive(Clone)]
pub struct SimContext {
    /// The whole simulator configuration.
    pub config: std::sync::Arc<crate::SimConfig>,
    /// Faults, for the state-level ones (leader loss, sealed Vault, failing jobs).
    pub faults: crate::FaultController,
    /// Cancelled when the simulator shuts down; background tasks stop on it.
    pub cancel: tokio_util::sync::CancellationToken,
}

/// An error response in the product's own format: plain text for Consul and Nomad,
/// `{"errors": [...]}` JSON for Vault (reference §1.3).
pub fn error_response(product: Product, status: u16, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    match product {
        Product::Consul | Product::Nomad => (
            status,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.to_string(),
        )
            .into_response(),
        Product::Vault => {
            let errors: Vec<&str> = if message.is_empty() {
                Vec::new()
            } else {
                vec![message]
            };
            (
                status,
                [
                    (http::header::CONTENT_TYPE, "application/json"),
                    (http::header::CACHE_CONTROL, "no-store"),
                ],
                serde_json::json!({ "errors": errors }).to_string(),
            )
                .into_response()
        }
    }
}

/// The body a product answers with for an injected error status.
pub fn injected_error_message(product: Product, status: u16) -> &'static str {
    match (product, status) {
        (Product::Vault, 503) => "Vault is sealed",
        (Product::Vault, 429) => "request path \"sys/health\": rate limit quota exceeded",
        (Product::Vault, _) => "internal error",
        (_, 429) => "rate limit exceeded, try again later",
        (_, 503) => "rate limit exceeded, try again later or with a different server",
        (_, _) => "rpc error: injected fault",
    }
}
