//! The simulated Consul HTTP API. (Skeleton: the product developer replaces this.)

use crate::Product;
use crate::index::IndexClock;
use crate::product::{ProductState, SimContext};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Consul-specific simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsulSimConfig {
    /// Datacenter name reported by the agent.
    pub datacenter: String,
    /// Node name of the single simulated agent/server.
    pub node_name: String,
}

impl Default for ConsulSimConfig {
    fn default() -> Self {
        ConsulSimConfig {
            datacenter: "dc1".into(),
            node_name: "sim".into(),
        }
    }
}

/// The whole Consul state.
pub struct ConsulState {
    clock: IndexClock,
}

impl ConsulState {
    pub(crate) fn new(_ctx: &SimContext) -> Arc<Self> {
        Arc::new(ConsulState {
            clock: IndexClock::new(1),
        })
    }

    /// Starts background work (session TTL expiry).
    pub(crate) fn start(self: &Arc<Self>, _ctx: &SimContext) {}
}

impl ProductState for ConsulState {
    fn product(&self) -> Product {
        Product::Consul
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

/// The Consul API routes.
pub(crate) fn router(_state: Arc<ConsulState>) -> Router {
    Router::new().route(
        "/v1/status/leader",
        axum::routing::get(|| async { "\"127.0.0.1:8300\"" }),
    )
}
