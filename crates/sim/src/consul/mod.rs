//! The simulated Consul HTTP API (1.16+ behaviour, reference §1–§5, §8, §9).
//!
//! Areas, one file each: [`kv`] (KV store), [`txn`] (`/v1/txn`), [`session`]
//! (sessions, TTLs, lock-delay), [`config_entry`] (config entries with server-side
//! normalisation and graph validation), [`catalog`] (catalog, agent, health; and the
//! internal registration API the Nomad module calls — see its module docs), [`acl`]
//! (tokens and rules; `acl/token/self`). [`store`] holds every table behind one lock with one index
//! clock; [`web`] has what all endpoints share (headers, errors, blocking waits).

mod acl;
pub mod catalog;
mod config_entry;
mod kv;
mod session;
mod store;
mod txn;
mod web;

pub use config_entry::ALL_KINDS as CONFIG_ENTRY_KINDS;

pub use catalog::{
    CatalogInstance, CheckRegistration, CheckStatus, ProxyRegistration, ServiceKind,
    SidecarRegistration, UpstreamRegistration,
};

use crate::index::IndexClock;
use crate::product::{ProductState, SimContext};
use crate::{FaultController, Product};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::any;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::Notify;
use web::{ApiError, Req};

/// Consul-specific simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsulSimConfig {
    /// Datacenter name reported by the agent (other `?dc=` values get 500
    /// `No path to datacenter`).
    pub datacenter: String,
    /// Node name of the single simulated agent/server.
    pub node_name: String,
    /// Address of that node.
    pub node_address: String,
    /// Version reported by `/v1/agent/self`.
    pub version: String,
    /// `kv_max_value_size`: larger KV values get 413.
    pub kv_max_value_size: usize,
    /// `txn_max_req_len`: larger `/v1/txn` bodies get 413.
    pub txn_max_req_len: usize,
    /// `session_ttl_min`: shorter session TTLs are refused (tests may lower it).
    pub session_ttl_min: Duration,
    /// `tombstone_ttl`: how long KV tombstones are kept before reaping.
    pub tombstone_ttl: Duration,
    /// Config-entry kinds this server answers as it answers a kind it has never heard
    /// of, as an older Consul does (reference §10: Consul < 1.15 has no `api-gateway`
    /// or `http-route`). Reads of such a kind answer 500 `invalid config entry kind:
    /// <kind>`, writes and deletes the 400 an unknown kind gets. Empty: every kind is
    /// known. [`crate::SimHandle::set_unsupported_config_kinds`] changes it at run time.
    pub unsupported_config_kinds: Vec<String>,
}

impl Default for ConsulSimConfig {
    fn default() -> Self {
        ConsulSimConfig {
            datacenter: "dc1".into(),
            node_name: "sim".into(),
            node_address: "127.0.0.1".into(),
            version: "1.21.4".into(),
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
            session_ttl_min: Duration::from_secs(10),
            tombstone_ttl: Duration::from_secs(15 * 60),
            unsupported_config_kinds: Vec::new(),
        }
    }
}

/// The whole Consul state.
pub struct ConsulState {
    pub(crate) clock: IndexClock,
    pub(crate) store: Mutex<Store>,
    pub(crate) cfg: ConsulSimConfig,
    pub(crate) faults: FaultController,
    pub(crate) acl: acl::Acl,
    /// Wakes the session TTL task when a deadline changes.
    pub(crate) timers: Notify,
    /// Config-entry kinds answered as unknown (starts as
    /// `ConsulSimConfig::unsupported_config_kinds`). Outside `store`: it is a property
    /// of the server's version, not data, so snapshots neither save nor restore it.
    pub(crate) unsupported_config_kinds: RwLock<BTreeSet<String>>,
}

impl ConsulState {
    pub(crate) fn new(ctx: &SimContext) -> Arc<Self> {
        let state = Arc::new(ConsulState {
            clock: IndexClock::new(0),
            store: Mutex::new(Store::default()),
            cfg: ctx.config.consul.clone(),
            faults: ctx.faults.clone(),
            acl: acl::Acl::from_config(ctx.config.tokens_for(Product::Consul)),
            timers: Notify::new(),
            unsupported_config_kinds: RwLock::new(
                ctx.config
                    .consul
                    .unsupported_config_kinds
                    .iter()
                    .cloned()
                    .collect(),
            ),
        });
        state.bootstrap_catalog();
        state
    }

    /// Starts background work: session TTL expiry and tombstone reaping.
    pub(crate) fn start(self: &Arc<Self>, ctx: &SimContext) {
        let cancel = ctx.cancel.clone();
        let state = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = session::run_ttl_timers(state) => {}
            }
        });
        let cancel = ctx.cancel.clone();
        let state = self.clone();
        tokio::spawn(async move {
            let every = (state.cfg.tombstone_ttl / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(30));
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every) => {
                        let ttl = state.cfg.tombstone_ttl;
                        state.reap_tombstones(Some(ttl));
                    }
                }
            }
        });
    }

    /// Removes tombstones older than `older_than` (all of them with `None`), as
    /// Consul's tombstone GC does; prefix reads may then report lower indexes.
    pub(crate) fn reap_tombstones(&self, older_than: Option<Duration>) -> usize {
        let mut store = self.store.lock();
        let now = tokio::time::Instant::now();
        let reap: Vec<String> = store
            .data
            .tombstones
            .keys()
            .filter(|k| match older_than {
                None => true,
                Some(ttl) => store
                    .tomb_created
                    .get(*k)
                    .is_none_or(|t| now.duration_since(*t) >= ttl),
            })
            .cloned()
            .collect();
        for k in &reap {
            store.data.tombstones.remove(k);
            store.tomb_created.remove(k);
            store.publish(store::Change::KvTree(k.clone()));
        }
        drop(store);
        if !reap.is_empty() {
            self.clock.touch();
        }
        reap.len()
    }
}

/// The persisted form of the Consul state.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Snapshot {
    index: u64,
    data: store::Data,
}

/// The same, borrowed, so saving does not clone the tables.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRef<'a> {
    index: u64,
    data: &'a store::Data,
}

impl ProductState for ConsulState {
    fn product(&self) -> Product {
        Product::Consul
    }

    fn clock(&self) -> &IndexClock {
        &self.clock
    }

    fn snapshot(&self) -> serde_json::Value {
        let store = self.store.lock();
        let snap = SnapshotRef {
            index: self.clock.current(),
            data: &store.data,
        };
        serde_json::to_value(&snap).unwrap_or_default()
    }

    fn snapshot_json(&self) -> Vec<u8> {
        let store = self.store.lock();
        let snap = SnapshotRef {
            index: self.clock.current(),
            data: &store.data,
        };
        serde_json::to_vec(&snap).unwrap_or_default()
    }

    fn restore(&self, snapshot: serde_json::Value) -> Result<(), String> {
        let snap: Snapshot =
            serde_json::from_value(snapshot).map_err(|e| format!("malformed consul state: {e}"))?;
        let mut store = self.store.lock();
        let mut fresh = Store {
            data: snap.data,
            ..Store::default()
        };
        let max = fresh.max_index();
        if max > snap.index {
            return Err(format!(
                "malformed consul state: stored index {max} is above the saved clock {}",
                snap.index
            ));
        }
        fresh.rebuild_derived();
        config_entry::rebuild_indexes(&mut fresh);
        // A new leader restarts every session TTL timer from scratch.
        let now = tokio::time::Instant::now();
        for s in fresh.data.sessions.values_mut() {
            s.deadline = session::ttl_deadline(&s.ttl, now);
        }
        fresh.changes = std::mem::take(&mut store.changes);
        *store = fresh;
        store.publish(store::Change::All);
        self.clock.set(snap.index);
        drop(store);
        self.timers.notify_one();
        Ok(())
    }

    fn reset_indexes(&self) {
        let mut store = self.store.lock();
        store.reset_indexes(&self.clock);
    }
}

type St = State<Arc<ConsulState>>;

fn req_of(q: Option<String>, headers: &::http::HeaderMap) -> Req {
    Req::new(q.as_deref(), headers)
}

async fn kv_route(
    State(s): St,
    method: ::http::Method,
    key: Option<Path<String>>,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = req_of(q, &headers);
    let key = key.map(|Path(k)| k).unwrap_or_default();
    let r = match method {
        ::http::Method::GET => kv::get(&s, &req, &key).await,
        ::http::Method::PUT => kv::put(&s, &req, &key, &body),
        ::http::Method::DELETE => kv::delete(&s, &req, &key),
        m => return web::method_not_allowed(&s, &m),
    };
    web::finish(&s, r)
}

async fn txn_route(
    State(s): St,
    method: ::http::Method,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = req_of(q, &headers);
    if method != ::http::Method::PUT {
        return web::method_not_allowed(&s, &method);
    }
    web::finish(&s, txn::txn(&s, &req, &body))
}

async fn session_route(
    State(s): St,
    method: ::http::Method,
    Path(args): Path<Vec<(String, String)>>,
    uri: ::http::Uri,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = req_of(q, &headers);
    let arg = args.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let path = uri.path();
    let op = path
        .strip_prefix("/v1/session/")
        .and_then(|p| p.split('/').next())
        .unwrap_or_default();
    let r = match (op, &method) {
        ("create", &::http::Method::PUT) => session::create(&s, &req, &body),
        ("renew", &::http::Method::PUT) => session::renew(&s, &req, &arg),
        ("destroy", &::http::Method::PUT) => session::destroy(&s, &req, &arg),
        ("info", &::http::Method::GET) => session::info(&s, &req, &arg).await,
        ("node", &::http::Method::GET) => session::node(&s, &req, &arg).await,
        ("list", &::http::Method::GET) => session::list(&s, &req).await,
        _ => return web::method_not_allowed(&s, &method),
    };
    web::finish(&s, r)
}

async fn config_put_route(
    State(s): St,
    method: ::http::Method,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = req_of(q, &headers);
    if method != ::http::Method::PUT && method != ::http::Method::POST {
        return web::method_not_allowed(&s, &method);
    }
    web::finish(&s, config_entry::apply(&s, &req, &body))
}

async fn config_route(
    State(s): St,
    method: ::http::Method,
    Path(args): Path<Vec<(String, String)>>,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
) -> Response {
    let req = req_of(q, &headers);
    let kind = args.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let name = args.get(1).map(|(_, v)| v.clone());
    let r = match (&method, name) {
        (&::http::Method::GET, None) => config_entry::list(&s, &req, &kind).await,
        (&::http::Method::GET, Some(name)) => config_entry::get(&s, &req, &kind, &name).await,
        (&::http::Method::DELETE, Some(name)) => config_entry::delete(&s, &req, &kind, &name),
        (&::http::Method::DELETE, None) => Err(ApiError::new(
            404,
            "Must provide both a kind and name to delete",
        )),
        _ => return web::method_not_allowed(&s, &method),
    };
    web::finish(&s, r)
}

async fn catalog_route(
    State(s): St,
    method: ::http::Method,
    args: Option<Path<Vec<(String, String)>>>,
    uri: ::http::Uri,
    RawQuery(q): RawQuery,
    headers: ::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = req_of(q, &headers);
    let arg = args
        .and_then(|Path(a)| a.into_iter().next().map(|(_, v)| v))
        .unwrap_or_default();
    let path = uri.path().to_string();
    let get = method == ::http::Method::GET;
    let put = method == ::http::Method::PUT;
    let r = if path == "/v1/catalog/register" && put {
        catalog::catalog_register(&s, &req, &body)
    } else if path == "/v1/catalog/deregister" && put {
        catalog::catalog_deregister(&s, &req, &body)
    } else if path == "/v1/catalog/services" && get {
        catalog::catalog_services(&s, &req).await
    } else if path == "/v1/catalog/nodes" && get {
        catalog::catalog_nodes(&s, &req).await
    } else if path == "/v1/catalog/datacenters" && get {
        catalog::catalog_datacenters(&s, &req)
    } else if path.starts_with("/v1/catalog/node/") && get {
        catalog::catalog_node(&s, &req, &arg).await
    } else if path.starts_with("/v1/catalog/service/") && get {
        catalog::catalog_service(&s, &req, &arg).await
    } else if path.starts_with("/v1/health/service/") && get {
        catalog::health_service(&s, &req, &arg, false).await
    } else if path.starts_with("/v1/health/connect/") && get {
        catalog::health_service(&s, &req, &arg, true).await
    } else if path.starts_with("/v1/health/checks/") && get {
        catalog::health_checks(&s, &req, &arg).await
    } else if path == "/v1/agent/self" && get {
        catalog::agent_self(&s, &req)
    } else if path == "/v1/acl/token/self" && get {
        match s.acl.token_self(req.token.as_deref()) {
            Ok(v) => Ok(web::json(&s, &req, &v)),
            Err((status, msg)) => Err(web::ApiError::new(status, msg)),
        }
    } else if path == "/v1/agent/services" && get {
        catalog::agent_services(&s, &req)
    } else if path == "/v1/agent/service/register" && put {
        catalog::agent_register(&s, &req, &body)
    } else if path.starts_with("/v1/agent/service/deregister/") && put {
        catalog::agent_deregister(&s, &req, &arg)
    } else if path == "/v1/status/leader" && get {
        catalog::status_leader(&s, &req)
    } else if path == "/v1/status/peers" && get {
        catalog::status_peers(&s, &req)
    } else if path == "/v1/connect/intentions" && get {
        config_entry::legacy_intentions(&s, &req).await
    } else {
        return web::method_not_allowed(&s, &method);
    };
    web::finish(&s, r)
}

/// The Consul API routes (templates, so request counters group them).
pub(crate) fn router(state: Arc<ConsulState>) -> Router {
    Router::new()
        .route("/v1/kv/{*key}", any(kv_route))
        .route("/v1/kv/", any(kv_route))
        .route("/v1/txn", any(txn_route))
        .route("/v1/session/create", any(session_route))
        .route("/v1/session/renew/{id}", any(session_route))
        .route("/v1/session/destroy/{id}", any(session_route))
        .route("/v1/session/info/{id}", any(session_route))
        .route("/v1/session/node/{node}", any(session_route))
        .route("/v1/session/list", any(session_route))
        .route("/v1/config", any(config_put_route))
        .route("/v1/config/{kind}", any(config_route))
        .route("/v1/config/{kind}/{*name}", any(config_route))
        .route("/v1/catalog/register", any(catalog_route))
        .route("/v1/catalog/deregister", any(catalog_route))
        .route("/v1/catalog/services", any(catalog_route))
        .route("/v1/catalog/nodes", any(catalog_route))
        .route("/v1/catalog/datacenters", any(catalog_route))
        .route("/v1/catalog/node/{name}", any(catalog_route))
        .route("/v1/catalog/service/{name}", any(catalog_route))
        .route("/v1/health/service/{name}", any(catalog_route))
        .route("/v1/health/connect/{name}", any(catalog_route))
        .route("/v1/health/checks/{name}", any(catalog_route))
        .route("/v1/agent/self", any(catalog_route))
        .route("/v1/acl/token/self", any(catalog_route))
        .route("/v1/agent/services", any(catalog_route))
        .route("/v1/agent/service/register", any(catalog_route))
        .route("/v1/agent/service/deregister/{id}", any(catalog_route))
        .route("/v1/status/leader", any(catalog_route))
        .route("/v1/status/peers", any(catalog_route))
        .route("/v1/connect/intentions", any(catalog_route))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}

/// Test and embedding controls for the simulated Consul.
impl crate::SimHandle {
    /// Consul's current index (the last one handed out).
    pub fn consul_index(&self) -> u64 {
        self.consul.clock.current()
    }

    /// Reaps every KV tombstone now (Consul's tombstone GC), so prefix reads may
    /// report lower indexes (reference §8.2). Returns how many were removed.
    pub fn consul_reap_tombstones(&self) -> usize {
        self.consul.reap_tombstones(None)
    }

    /// Invalidates a session now, as if its TTL had lapsed. `false` when unknown.
    pub fn consul_expire_session(&self, id: &str) -> bool {
        session::invalidate(&self.consul, id)
    }

    /// Registers a service instance through the agent (see [`CatalogInstance`]).
    pub fn consul_register_instance(&self, inst: CatalogInstance) -> u64 {
        self.consul.register_instance(inst)
    }

    /// Deregisters a service instance with its checks and sidecar.
    pub fn consul_deregister_instance(&self, service_id: &str) -> bool {
        self.consul.deregister_instance(service_id)
    }

    /// Sets a check's status (a critical check invalidates sessions tied to it).
    pub fn consul_set_check_status(
        &self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
    ) -> bool {
        self.consul.set_check_status(check_id, status, output)
    }
}
