//! Endpoints from Consul health: one blocking-query watch of
//! `/v1/health/service/<name>?passing` per service in use, started and stopped as
//! services enter and leave the edge's plan.
//!
//! A failed or malformed answer keeps the last good endpoints: it is logged at WARN (at
//! once, then at most once a minute per service while it goes on), counted in
//! `steward_edge_endpoint_watch_failures_total` and shown in the verdict of the specs of
//! that service.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use steward_hashi::consul::catalog::ServiceEntry;
use steward_hashi::{ConsulClient, QueryOptions, WatchConfig};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::state::Edge;
use crate::translate::Endpoint;

/// How often a failing watch logs at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Tuning of the health watches.
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    /// Wait of each blocking query.
    pub wait: Duration,
    /// Backoff and rate limit of each watch.
    pub watch: WatchConfig,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(300),
            watch: WatchConfig::default(),
        }
    }
}

/// The endpoints of a health answer: the service address, or the node's when the
/// service has none.
#[must_use]
pub fn endpoints_of(entries: &[ServiceEntry]) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = entries
        .iter()
        .map(|e| Endpoint {
            address: if e.service.address.is_empty() {
                e.node.address.clone()
            } else {
                e.service.address.clone()
            },
            port: e.service.port,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Keeps one watch per service the edge uses until `shutdown`.
pub async fn run(
    edge: Edge,
    consul: ConsulClient,
    config: HealthConfig,
    shutdown: CancellationToken,
) {
    let mut services = edge.services();
    let mut running: BTreeMap<String, CancellationToken> = BTreeMap::new();
    loop {
        let wanted = services.borrow_and_update().clone();
        running.retain(|name, token| {
            let keep = wanted.contains(name);
            if !keep {
                token.cancel();
                edge.forget_service(name);
                tracing::debug!(service = name, "endpoint watch stopped");
            }
            keep
        });
        for name in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let token = shutdown.child_token();
            running.insert(name.clone(), token.clone());
            tracing::debug!(service = name, "endpoint watch started");
            tokio::spawn(watch_service(
                edge.clone(),
                consul.clone(),
                name,
                config,
                token,
            ));
        }
        edge.metrics()
            .endpoint_watches
            .set(i64::try_from(running.len()).unwrap_or(i64::MAX));
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = services.changed() => if changed.is_err() { return },
        }
    }
}

async fn watch_service(
    edge: Edge,
    consul: ConsulClient,
    name: String,
    config: HealthConfig,
    stop: CancellationToken,
) {
    let fetch_name = name.clone();
    let wait = config.wait;
    let stream = steward_hashi::watch(
        move |index| {
            let consul = consul.clone();
            let name = fetch_name.clone();
            async move {
                consul
                    .health_service(&name, true, &QueryOptions::blocking(index, wait))
                    .await
            }
        },
        config.watch,
    );
    let mut stream = std::pin::pin!(stream);
    let mut last_warn: Option<Instant> = None;
    let mut failing = false;
    loop {
        let item = tokio::select! {
            () = stop.cancelled() => return,
            item = stream.next() => item,
        };
        let Some(item) = item else { return };
        match item {
            Ok(answer) => {
                if failing {
                    tracing::info!(service = name, "Consul health answers again");
                    failing = false;
                    last_warn = None;
                }
                edge.set_endpoints(&name, endpoints_of(&answer.value));
            }
            Err(error) => {
                failing = true;
                edge.metrics().endpoint_watch_failures.inc();
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warn = Some(Instant::now());
                    tracing::warn!(
                        service = name,
                        error = %error,
                        "Consul health read failed; the edge keeps this service's last good endpoints"
                    );
                }
                edge.set_endpoint_error(&name, error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use steward_hashi::consul::catalog::{HealthNode, ServiceInstance};

    use super::*;

    fn entry(node_addr: &str, svc_addr: &str, port: u16) -> ServiceEntry {
        ServiceEntry {
            node: HealthNode {
                address: node_addr.into(),
                ..Default::default()
            },
            service: ServiceInstance {
                address: svc_addr.into(),
                port,
                ..Default::default()
            },
            checks: Vec::new(),
        }
    }

    #[test]
    fn the_service_address_wins_over_the_nodes_and_duplicates_go() {
        let got = endpoints_of(&[
            entry("10.0.0.1", "", 80),
            entry("10.0.0.1", "127.0.0.1", 81),
            entry("10.0.0.1", "", 80),
        ]);
        assert_eq!(
            got,
            vec![
                Endpoint {
                    address: "10.0.0.1".into(),
                    port: 80
                },
                Endpoint {
                    address: "127.0.0.1".into(),
                    port: 81
                },
            ]
        );
    }
}
