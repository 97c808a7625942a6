//! Prometheus metrics of one operator instance (its own registry, so several instances in
//! one process do not collide).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use steward_hashi::{Observation, Observer};

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `error`...
    pub result: String,
}

/// Labels of `steward_api_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `consul`, `nomad`, `vault`.
    pub product: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status, or `error` when no answer arrived.
    pub code: String,
}

/// `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Object kind (`nomad-job`...).
    pub kind: String,
}

/// `product` and `feature` labels (start-up detection).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabel {
    /// `consul`, `nomad` or `vault`.
    pub product: String,
    /// The feature (`config-entry kind http-route`...); empty for the version.
    pub feature: String,
}

/// `cache` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    /// Cache name (`specs`, `http-route`, `nomad-jobs`...).
    pub cache: String,
}

/// `phase` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// Phase name.
    pub phase: String,
}

/// Every metric the operator updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `steward_reconciles_total{result}`.
    pub reconciles: Family<ResultLabel, Counter>,
    /// `steward_reconcile_duration_seconds`.
    pub reconcile_duration: Histogram,
    /// `steward_api_requests_total{product,method,code}`.
    pub api_requests: Family<ApiLabels, Counter>,
    /// `steward_owned_objects{kind}`.
    pub owned_objects: Family<KindLabel, Gauge>,
    /// `steward_leader` (0/1).
    pub leader: Gauge,
    /// `steward_gc_blocked` (0/1).
    pub gc_blocked: Gauge,
    /// `steward_specs{phase}`.
    pub specs: Family<PhaseLabel, Gauge>,
    /// `steward_gc_passes_total{result}` (`done`, `blocked`, `skipped`, `failed`).
    pub gc_passes: Family<ResultLabel, Counter>,
    /// `steward_gc_deleted_objects_total`.
    pub gc_deleted: Counter,
    /// `steward_status_writes_total` (transactions).
    pub status_writes: Counter,
    /// `steward_cache_synced{cache}` (0/1).
    pub cache_synced: Family<CacheLabel, Gauge>,
    /// `steward_cache_consecutive_failures{cache}`: failed reads in a row (0 = healthy).
    pub cache_consecutive_failures: Family<CacheLabel, Gauge>,
    /// `steward_cache_failed_reads_total{cache}`.
    pub cache_failed_reads: Family<CacheLabel, Counter>,
    /// `steward_server_supported{product,feature=""}` and
    /// `steward_server_feature{product,feature}`: 1 supported/available, 0 not (unset
    /// when start-up detection could not tell).
    pub server_supported: Family<FeatureLabel, Gauge>,
    /// See [`Metrics::server_supported`].
    pub server_feature: Family<FeatureLabel, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 18)),
            api_requests: Family::default(),
            owned_objects: Family::default(),
            leader: Gauge::default(),
            gc_blocked: Gauge::default(),
            specs: Family::default(),
            gc_passes: Family::default(),
            gc_deleted: Counter::default(),
            status_writes: Counter::default(),
            cache_synced: Family::default(),
            cache_consecutive_failures: Family::default(),
            cache_failed_reads: Family::default(),
            server_supported: Family::default(),
            server_feature: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("steward");
        r.register("reconciles", "Reconciles by result", m.reconciles.clone());
        r.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            m.reconcile_duration.clone(),
        );
        r.register(
            "api_requests",
            "Requests to Consul, Nomad and Vault by product, method and status code",
            m.api_requests.clone(),
        );
        r.register(
            "owned_objects",
            "Objects owned by Steward, by kind",
            m.owned_objects.clone(),
        );
        r.register("leader", "1 while this instance leads", m.leader.clone());
        r.register(
            "gc_blocked",
            "1 while garbage collection waits for an approval",
            m.gc_blocked.clone(),
        );
        r.register("specs", "Specs by phase", m.specs.clone());
        r.register(
            "gc_passes",
            "Garbage-collection passes by result",
            m.gc_passes.clone(),
        );
        r.register(
            "gc_deleted_objects",
            "Objects deleted by garbage collection",
            m.gc_deleted.clone(),
        );
        r.register(
            "status_writes",
            "Status write transactions",
            m.status_writes.clone(),
        );
        r.register(
            "cache_synced",
            "1 once the cache has held one complete listing",
            m.cache_synced.clone(),
        );
        r.register(
            "cache_consecutive_failures",
            "Failed reads of the cache in a row (0 while healthy)",
            m.cache_consecutive_failures.clone(),
        );
        r.register(
            "cache_failed_reads",
            "Failed reads of the cache",
            m.cache_failed_reads.clone(),
        );
        r.register(
            "server_supported",
            "1 when the server's version is at least Steward's minimum, 0 when older (start-up detection)",
            m.server_supported.clone(),
        );
        r.register(
            "server_feature",
            "1 when the server has a feature Steward relies on, 0 when it lacks it (start-up detection)",
            m.server_feature.clone(),
        );
        m
    }

    /// Sets the start-up detection gauges.
    pub fn observe_cluster(&self, detected: &crate::detect::Detected) {
        for s in &detected.servers {
            if let Some(ok) = s.supported {
                let label = FeatureLabel {
                    product: s.product.clone(),
                    feature: String::new(),
                };
                self.server_supported
                    .get_or_create(&label)
                    .set(i64::from(ok));
            }
        }
        for f in &detected.features {
            if let Some(ok) = f.available {
                let label = FeatureLabel {
                    product: f.product.clone(),
                    feature: f.feature.clone(),
                };
                self.server_feature.get_or_create(&label).set(i64::from(ok));
            }
        }
    }

    /// Sets the cache gauges from one cache's state.
    pub fn observe_cache(&self, state: &crate::cache::CacheState) {
        let label = CacheLabel {
            cache: state.name.to_owned(),
        };
        self.cache_synced
            .get_or_create(&label)
            .set(i64::from(state.synced));
        self.cache_consecutive_failures
            .get_or_create(&label)
            .set(i64::try_from(state.consecutive_failures).unwrap_or(i64::MAX));
        let counter = self.cache_failed_reads.get_or_create(&label);
        let seen = counter.get();
        if state.failures > seen {
            counter.inc_by(state.failures - seen);
        }
    }

    /// Counts one reconcile.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// The hashi observer counting requests into `steward_api_requests_total`.
    #[must_use]
    pub fn api_observer(&self) -> Observer {
        let family = self.api_requests.clone();
        Arc::new(move |o: &Observation<'_>| {
            family
                .get_or_create(&ApiLabels {
                    product: o.product.to_string(),
                    method: o.method.to_string(),
                    code: o
                        .status
                        .map_or_else(|| "error".to_owned(), |s| s.to_string()),
                })
                .inc();
        })
    }
}

/// The registry as Prometheus/OpenMetrics text.
#[must_use]
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(%error, "cannot encode metrics");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_its_name() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.reconciled("ok", 0.01);
        m.leader.set(1);
        m.specs
            .get_or_create(&PhaseLabel {
                phase: "Synced".into(),
            })
            .set(3);
        let observe = m.api_observer();
        observe(&Observation {
            product: steward_hashi::Product::Nomad,
            method: &http::Method::PUT,
            path: "/v1/jobs",
            status: Some(200),
        });
        observe(&Observation {
            product: steward_hashi::Product::Consul,
            method: &http::Method::GET,
            path: "/v1/kv/x",
            status: None,
        });
        let text = encode(&registry);
        for needle in [
            "steward_reconciles_total{result=\"ok\"} 1",
            "steward_reconcile_duration_seconds_count 1",
            "steward_leader 1",
            "steward_specs{phase=\"Synced\"} 3",
            "steward_api_requests_total{product=\"nomad\",method=\"PUT\",code=\"200\"} 1",
            "steward_api_requests_total{product=\"consul\",method=\"GET\",code=\"error\"} 1",
            "steward_gc_blocked 0",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
