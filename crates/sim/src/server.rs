//! Listeners, the per-request fault and statistics plumbing, and the handle.

use crate::config::SimConfig;
use crate::faults::{FaultController, Outcome};
use crate::product::{ProductState, SimContext, error_response, injected_error_message};
use crate::stats::{INJECTED_ROUTE, RequestStats, UNMATCHED_ROUTE};
use crate::{Error, Product, Result, consul, nomad, persist, vault};
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Entry point: `Sim::start(config)`.
pub struct Sim;

/// A running simulator. Dropping it stops the servers; [`SimHandle::shutdown`] also
/// waits for them and writes the state file one last time.
#[allow(dead_code)] // product handles are used by the product modules' control methods
pub struct SimHandle {
    consul_addr: SocketAddr,
    nomad_addr: SocketAddr,
    vault_addr: SocketAddr,
    faults: FaultController,
    stats: RequestStats,
    config: Arc<SimConfig>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pub(crate) consul: Arc<consul::ConsulState>,
    pub(crate) nomad: Arc<nomad::NomadState>,
    pub(crate) vault: Arc<vault::VaultState>,
}

impl Sim {
    /// Starts the three servers (and restores state from `config.data_dir`).
    ///
    /// # Errors
    /// A listener cannot be bound, or the state file cannot be read or is corrupt.
    pub async fn start(config: SimConfig) -> Result<SimHandle> {
        let config = Arc::new(config);
        let faults = FaultController::new(config.seed);
        let stats = RequestStats::default();
        let cancel = CancellationToken::new();
        let ctx = SimContext {
            config: config.clone(),
            faults: faults.clone(),
            cancel: cancel.clone(),
        };

        let consul_state = consul::ConsulState::new(&ctx);
        let nomad_state = nomad::NomadState::new(&ctx, consul_state.clone());
        let vault_state = vault::VaultState::new(&ctx);
        let states: Vec<Arc<dyn ProductState>> = vec![
            consul_state.clone(),
            nomad_state.clone(),
            vault_state.clone(),
        ];
        for s in &states {
            let weak: std::sync::Weak<dyn ProductState> = Arc::downgrade(s);
            faults.register_state(weak, s.product());
        }

        if let Some(dir) = &config.data_dir
            && let Some(saved) = persist::load(dir)?
        {
            for (product, snapshot) in saved {
                let state = states.iter().find(|s| s.product() == product);
                if let Some(state) = state {
                    state
                        .restore(snapshot)
                        .map_err(|reason| Error::CorruptState {
                            path: persist::state_path(dir),
                            reason: format!("{product} section: {reason}"),
                        })?;
                }
            }
        }

        let consul_listener = bind(Product::Consul, config.consul_addr).await?;
        let nomad_listener = bind(Product::Nomad, config.nomad_addr).await?;
        let vault_listener = bind(Product::Vault, config.vault_addr).await?;
        let local = |p: Product, l: &TcpListener| {
            l.local_addr().map_err(|source| Error::Bind {
                product: p,
                addr: config.consul_addr,
                source,
            })
        };
        let consul_addr = local(Product::Consul, &consul_listener)?;
        let nomad_addr = local(Product::Nomad, &nomad_listener)?;
        let vault_addr = local(Product::Vault, &vault_listener)?;

        consul_state.start(&ctx);
        nomad_state.start(&ctx);
        vault_state.start(&ctx);

        let mut tasks = Vec::new();
        let routers = [
            (
                Product::Consul,
                consul_listener,
                consul::router(consul_state.clone()),
            ),
            (
                Product::Nomad,
                nomad_listener,
                nomad::router(nomad_state.clone()),
            ),
            (
                Product::Vault,
                vault_listener,
                vault::router(vault_state.clone()),
            ),
        ];
        for (product, listener, router) in routers {
            let router =
                instrument(router).merge(crate::admin::router(faults.clone(), stats.clone()));
            let server = ServerCtx {
                product,
                router,
                faults: faults.clone(),
                stats: stats.clone(),
            };
            tasks.push(tokio::spawn(accept_loop(
                listener,
                Arc::new(server),
                cancel.clone(),
            )));
        }
        if let Some(dir) = config.data_dir.clone() {
            tasks.push(tokio::spawn(persist::run_writer(
                dir,
                states,
                config.persist_debounce,
                cancel.clone(),
            )));
        }
        tracing::info!(%consul_addr, %nomad_addr, %vault_addr, "simulator listening");
        Ok(SimHandle {
            consul_addr,
            nomad_addr,
            vault_addr,
            faults,
            stats,
            config,
            cancel,
            tasks,
            consul: consul_state,
            nomad: nomad_state,
            vault: vault_state,
        })
    }
}

impl SimHandle {
    /// Where the Consul HTTP API listens.
    pub fn consul_addr(&self) -> SocketAddr {
        self.consul_addr
    }
    /// Where the Nomad HTTP API listens.
    pub fn nomad_addr(&self) -> SocketAddr {
        self.nomad_addr
    }
    /// Where the Vault HTTP API listens.
    pub fn vault_addr(&self) -> SocketAddr {
        self.vault_addr
    }
    /// `http://<consul_addr>`, as `CONSUL_HTTP_ADDR` would hold it.
    pub fn consul_url(&self) -> String {
        format!("http://{}", self.consul_addr)
    }
    /// `http://<nomad_addr>`, as `NOMAD_ADDR` would hold it.
    pub fn nomad_url(&self) -> String {
        format!("http://{}", self.nomad_addr)
    }
    /// `http://<vault_addr>`, as `VAULT_ADDR` would hold it.
    pub fn vault_url(&self) -> String {
        format!("http://{}", self.vault_addr)
    }
    /// The fault controller.
    pub fn faults(&self) -> &FaultController {
        &self.faults
    }
    /// The request counters.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }
    /// The configuration the simulator was started with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    /// Makes the simulated Consul answer these config-entry kinds as an older Consul
    /// answers a kind it does not have (reference §10), replacing the previous set
    /// (`ConsulSimConfig::unsupported_config_kinds` at start); `&[]` makes every kind
    /// available again. Reads of such a kind answer 500 `invalid config entry kind:
    /// <kind>` (blocked reads of it end with that answer at once), writes and deletes
    /// 400 with the same message. Stored entries of the kind are kept.
    pub fn set_unsupported_config_kinds(&self, kinds: &[&str]) {
        self.consul.set_unsupported_config_kinds(kinds);
    }
    /// Stops the servers and background tasks, waits for them, and (with a data
    /// directory) writes the state file one last time.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn bind(product: Product, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        product,
        addr,
        source,
    })
}

struct ServerCtx {
    product: Product,
    router: Router,
    faults: FaultController,
    stats: RequestStats,
}

/// Route template of a handled request, carried from the router to the counters.
#[derive(Clone)]
struct RouteLabel(String);

/// Records the matched route template in the response so the counters can use it.
fn instrument(router: Router) -> Router {
    router.route_layer(axum::middleware::from_fn(
        |req: Request, next: Next| async move {
            let label = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string());
            let mut response = next.run(req).await;
            if let Some(label) = label {
                response.extensions_mut().insert(RouteLabel(label));
            }
            response
        },
    ))
}

async fn accept_loop(listener: TcpListener, server: Arc<ServerCtx>, cancel: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(product = %server.product, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let server = server.clone();
                async move { handle(server, req).await }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug)]
struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ConnectionReset {}

async fn handle(
    server: Arc<ServerCtx>,
    req: hyper::Request<Incoming>,
) -> std::result::Result<Response, ConnectionReset> {
    let product = server.product;
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let req = req.map(Body::new);
    if path.starts_with("/_sim/") {
        return Ok(server
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {}));
    }

    let decision = server.faults.decide(product, &method, &path);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match decision.outcome {
        Outcome::Pass | Outcome::ErrorAfterCommit(_) | Outcome::ResetAfterCommit => {}
        Outcome::Stall(d) => tokio::time::sleep(d).await,
        Outcome::Reset => {
            server.stats.record(product, &method, INJECTED_ROUTE, 0);
            return Err(ConnectionReset);
        }
        Outcome::Error(status) => {
            server
                .stats
                .record(product, &method, INJECTED_ROUTE, status);
            return Ok(error_response(
                product,
                status,
                injected_error_message(product, status),
            ));
        }
    }

    if let Some(response) = state_fault_response(&server, &req, &path) {
        server
            .stats
            .record(product, &method, INJECTED_ROUTE, response.status().as_u16());
        return Ok(response);
    }

    let response = server
        .router
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    // The request was handled either way: it counts under its own route, with the
    // status the client saw (0: no answer).
    match decision.outcome {
        Outcome::ErrorAfterCommit(status) => {
            server.stats.record(product, &method, &route, status);
            Ok(error_response(
                product,
                status,
                injected_error_message(product, status),
            ))
        }
        Outcome::ResetAfterCommit => {
            server.stats.record(product, &method, &route, 0);
            Err(ConnectionReset)
        }
        _ => {
            server
                .stats
                .record(product, &method, &route, response.status().as_u16());
            Ok(response)
        }
    }
}

/// Leader loss (Consul, Nomad) and sealed Vault answer before the product sees the
/// request, as the real servers' RPC layers do.
fn state_fault_response(server: &ServerCtx, req: &Request, path: &str) -> Option<Response> {
    match server.product {
        Product::Consul | Product::Nomad => {
            if server.faults.leader_known(server.product) {
                return None;
            }
            // Agent-local endpoints answer without a leader; stale reads are served
            // by any server (they report KnownLeader: false themselves).
            let local = path.starts_with("/v1/status/") || path.starts_with("/v1/agent/");
            let stale = req.uri().query().is_some_and(|q| {
                q.split('&')
                    .any(|kv| kv == "stale" || kv.starts_with("stale="))
            });
            let read = req.method() == http::Method::GET;
            if local || (stale && read) {
                return None;
            }
            Some(error_response(server.product, 500, "No cluster leader"))
        }
        Product::Vault => {
            let exempt = matches!(
                path,
                "/v1/sys/health" | "/v1/sys/seal-status" | "/v1/sys/init"
            );
            if server.faults.vault_sealed() && !exempt {
                return Some(error_response(Product::Vault, 503, "Vault is sealed"));
            }
            None
        }
    }
}
