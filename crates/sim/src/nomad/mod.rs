//! The simulated Nomad HTTP API. (Skeleton: the product developer replaces this.)

use crate::Product;
use crate::index::IndexClock;
use crate::product::{ProductState, SimContext};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Nomad-specific simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NomadSimConfig {
    /// Datacenter name reported by the agent.
    pub datacenter: String,
    /// Node name of the single simulated agent/server.
    pub node_name: String,
}

impl Default for NomadSimConfig {
    fn default() -> Self {
        NomadSimConfig {
            datacenter: "dc1".into(),
            node_name: "sim".into(),
        }
    }
}

/// The whole Nomad state.
pub struct NomadState {
    clock: IndexClock,
}

impl NomadState {
    pub(crate) fn new(_ctx: &SimContext, _consul: Arc<crate::consul::ConsulState>) -> Arc<Self> {
        Arc::new(NomadState {
            clock: IndexClock::new(1),
        })
    }

    /// Starts background work (the scheduler).
    pub(crate) fn start(self: &Arc<Self>, _ctx: &SimContext) {}
}

impl ProductState for NomadState {
    fn product(&self) -> Product {
        Product::Nomad
    }
    fn clock(&self) -> &IndexClock {
        &self.clock
    }
    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({ "index": self.clock.current() })
    }
    fn restore(&self, snapshot: serde_json::Value) -> Result<(), String> {
        let index = snapshot
            .get("index")
            .and_then(|v| v.as_u64())
            .ok_or("missing index")?;
        self.clock.set(index);
        Ok(())
    }
    fn reset_indexes(&self) {
        self.clock.set(self.clock.current() / 2);
    }
}

/// The Nomad API routes.
pub(crate) fn router(_state: Arc<NomadState>) -> Router {
    Router::new().route(
        "/v1/status/leader",
        axum::routing::get(|| async { "\"127.0.0.1:8300\"" }),
    )
}
