//! Consul `http-route` entries on the edge gateway: one per host group, found by
//! ownership as well as by name (a spec's hosts change), and written only while the
//! gateway they attach to exists.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use steward_hashi::QueryOptions;
use steward_render::names::SpecKey;
use steward_render::{ConfigEntry, Desired, ObjectKind};
use tokio::time::Instant;

use super::config_entry::ConfigEntryKind;
use crate::cache::Caches;
use crate::cache::entries::EntryCache;
use crate::context::OperatorContext;
use crate::reconcile_error::{ReconcileError, api};

/// How long a confirmed edge gateway is trusted before it is read again.
const GATEWAY_TTL: Duration = Duration::from_secs(30);

/// The kind's module.
pub(super) static KIND: ConfigEntryKind = ConfigEntryKind {
    kind: ObjectKind::HttpRoute,
    cache,
    desired,
    key_names,
    before_put: Some(before_put),
};

fn cache(caches: &Caches) -> &Arc<EntryCache> {
    &caches.http_routes
}

fn desired(desired: &Desired) -> Vec<&ConfigEntry> {
    desired.http_routes.iter().collect()
}

fn key_names(key: &SpecKey, cache: &EntryCache) -> Vec<String> {
    cache.owned_by(&key.to_string())
}

fn before_put(shared: &OperatorContext) -> BoxFuture<'_, Result<(), ReconcileError>> {
    ensure_gateway(shared).boxed()
}

/// Makes sure the edge gateway routes attach to exists.
async fn ensure_gateway(shared: &OperatorContext) -> Result<(), ReconcileError> {
    let seen = || {
        shared
            .gateway_seen
            .lock()
            .is_some_and(|t| t.elapsed() < GATEWAY_TTL)
    };
    if seen() {
        return Ok(());
    }
    // One check at a time: the others find it done when they get the turn.
    let _turn = shared.first_checks.lock().await;
    if seen() {
        return Ok(());
    }
    let gw = &shared.config.edge_gateway;
    let found = shared
        .clients
        .consul
        .config_get_raw(&gw.kind, &gw.name, &QueryOptions::new())
        .await
        .map_err(api(format!("{} {}", gw.kind, gw.name)))?;
    if found.value.is_none() {
        return Err(ReconcileError::GatewayMissing {
            kind: gw.kind.clone(),
            name: gw.name.clone(),
        });
    }
    *shared.gateway_seen.lock() = Some(Instant::now());
    Ok(())
}
