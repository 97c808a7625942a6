//! Prometheus metrics of the edge control plane, registered into the registry its
//! embedder passes in (`steward_edge_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `type` label: `cds`, `eds`, `lds` or `rds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// Resource type.
    pub r#type: String,
}

impl TypeLabel {
    pub(crate) fn of(kind: crate::resources::TypeKind) -> Self {
        Self {
            r#type: kind.label().to_owned(),
        }
    }
}

/// Every metric the edge updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `steward_edge_connected_proxies`.
    pub connected_proxies: Gauge,
    /// `steward_edge_pushes_total{type}`: responses sent.
    pub pushes: Family<TypeLabel, Counter>,
    /// `steward_edge_nacks_total{type}`.
    pub nacks: Family<TypeLabel, Counter>,
    /// `steward_edge_push_latency_seconds{type}`: from the snapshot being built to the
    /// proxy's ACK of it.
    pub push_latency: Family<TypeLabel, Histogram>,
    /// `steward_edge_snapshots_total`: snapshots built (translations that changed
    /// something).
    pub snapshots: Counter,
    /// `steward_edge_routes{state}` is split in three gauges: serving, conflicting,
    /// rejected.
    pub routes_serving: Gauge,
    /// Routes lost to an older spec.
    pub routes_conflicting: Gauge,
    /// Routes Envoy would refuse or did.
    pub routes_rejected: Gauge,
    /// `steward_edge_endpoint_watch_failures_total`: failed or malformed Consul health
    /// answers (the last good endpoints stay).
    pub endpoint_watch_failures: Counter,
    /// `steward_edge_endpoint_watches`: services whose health is watched.
    pub endpoint_watches: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under `steward_edge`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let r = registry.sub_registry_with_prefix("steward_edge");
        r.register(
            "connected_proxies",
            "Envoys connected over ADS",
            m.connected_proxies.clone(),
        );
        r.register("pushes", "xDS responses sent, by type", m.pushes.clone());
        r.register(
            "nacks",
            "xDS responses Envoy refused, by type",
            m.nacks.clone(),
        );
        r.register(
            "push_latency_seconds",
            "Time from a snapshot being built to an Envoy's ACK of it, by type",
            m.push_latency.clone(),
        );
        r.register("snapshots", "Snapshots built", m.snapshots.clone());
        r.register(
            "routes_serving",
            "Edge routes sent to Envoy",
            m.routes_serving.clone(),
        );
        r.register(
            "routes_conflicting",
            "Edge routes lost to an older spec claiming the same host and path",
            m.routes_conflicting.clone(),
        );
        r.register(
            "routes_rejected",
            "Edge routes Envoy would refuse or did",
            m.routes_rejected.clone(),
        );
        r.register(
            "endpoint_watch_failures",
            "Failed or malformed Consul health answers (the last good endpoints stay)",
            m.endpoint_watch_failures.clone(),
        );
        r.register(
            "endpoint_watches",
            "Services whose Consul health is watched",
            m.endpoint_watches.clone(),
        );
        m
    }

    /// Metrics registered nowhere (tests, benches).
    #[must_use]
    pub fn unregistered() -> Self {
        Self {
            connected_proxies: Gauge::default(),
            pushes: Family::default(),
            nacks: Family::default(),
            push_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            snapshots: Counter::default(),
            routes_serving: Gauge::default(),
            routes_conflicting: Gauge::default(),
            routes_rejected: Gauge::default(),
            endpoint_watch_failures: Counter::default(),
            endpoint_watches: Gauge::default(),
        }
    }
}
