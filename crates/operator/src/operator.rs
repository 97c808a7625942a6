//! The operator: wiring of caches, controller, leader election, status writer, garbage
//! collection and HTTP API, and the handle the CLI and tests use.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use steward_runtime::backoff::BackoffConfig;
use steward_runtime::leader::{ConsulLock, LeaderConfig, LeaderElector};
use steward_runtime::{Action, Context, Controller, ControllerConfig, QueueConfig, Recorder};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cache::kv_shards::ShardedKvConfig;
use crate::cache::{Caches, ChangeReceiver, Changes};
use crate::config::OperatorConfig;
use crate::context::{Clients, OperatorContext};
use crate::error::{Error, Result};
use crate::gc;
use crate::guard::GcState;
use crate::handle::OperatorHandle;
use crate::key::SpecKey;
use crate::metrics::Metrics;
use crate::triggers::{self, Mappers};
use crate::writer::{StatusWriter, WriterTask};

/// What `run` consumes (taken once).
struct RunParts {
    elector: LeaderElector<ConsulLock>,
    lock: Arc<ConsulLock>,
    controller: Controller<SpecKey>,
    changes: ChangeReceiver,
    writer_task: WriterTask,
}

/// One operator instance. Create it with [`Operator::new`], take [`Operator::handle`] and
/// [`Operator::api_router`] as needed, then [`Operator::run`] it until shutdown.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use steward_operator::{Clients, Operator, OperatorConfig};
/// let clients = Clients {
///     consul: steward_hashi::ConsulClient::from_env()?,
///     nomad: steward_hashi::NomadClient::from_env()?,
///     vault: steward_hashi::VaultClient::from_env()?,
/// };
/// let operator = Operator::new(OperatorConfig::default(), clients)?;
/// let handle = operator.handle();
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// operator.run(shutdown).await?;
/// # let _ = handle; Ok(()) }
/// ```
pub struct Operator {
    shared: Arc<OperatorContext>,
    parts: Mutex<Option<RunParts>>,
    /// Routes served beside the API (the dashboard): [`Operator::add_routes`].
    extra_routes: Mutex<axum::Router>,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("prefix", &self.shared.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// Builds an operator (no I/O, no task started). The clients are wrapped with an
    /// observer counting every request in `steward_api_requests_total`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable configuration.
    pub fn new(config: OperatorConfig, clients: Clients) -> Result<Self> {
        config.validate()?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let edge = config.edge.mode.xds().then(|| {
            steward_edge::Edge::new(
                config.edge.listeners.clone(),
                steward_edge::Metrics::register(&mut registry),
            )
        });
        let observer = metrics.api_observer();
        let clients = Clients {
            consul: clients.consul.with_observer(observer.clone()),
            nomad: clients.nomad.with_observer(observer.clone()),
            vault: clients.vault.with_observer(observer),
        };
        let lock = Arc::new(ConsulLock::new(clients.consul.clone()));
        let mut leader = LeaderConfig::new(config.leader_key());
        leader.session_name = format!("steward-leader ({})", config.instance_name);
        leader.value = config.instance_name.as_bytes().to_vec();
        leader.ttl = config.leader.ttl;
        leader.lock_delay = config.leader.lock_delay;
        leader.retry_pause = config.leader.retry_pause;
        leader.monitor_wait = config.leader.monitor_wait;
        let elector = LeaderElector::new(lock.clone(), leader);
        let leadership = elector.subscribe();
        let rate = config.max_reconcile_rate;
        let controller = Controller::new(
            ControllerConfig {
                concurrency: config.concurrency,
                queue: QueueConfig {
                    backoff: BackoffConfig::new(
                        Duration::from_millis(100),
                        Duration::from_secs(60),
                    ),
                    max_rate: rate,
                    burst: if rate > 0.0 { rate.ceil() as u32 } else { 1 },
                },
                shutdown_grace: Duration::from_secs(5),
            },
            Some(&mut registry),
        );
        let (changes, change_rx) = Changes::channel();
        let (writer, writer_task) = StatusWriter::new();
        let shared = Arc::new(OperatorContext {
            config,
            clients,
            caches: Caches::new(),
            metrics,
            registry: Arc::new(registry),
            recorder: Recorder::default(),
            writer,
            changes,
            queue: controller.queue(),
            gc_kick: Arc::new(Notify::new()),
            gc: GcState::default(),
            leadership,
            renders: Mutex::new(crate::memo::RenderMemo::default()),
            parsed: Mutex::new(crate::memo::ParsedMemo::default()),
            gateway_seen: Mutex::new(None),
            first_checks: tokio::sync::Mutex::new(()),
            reconciles: AtomicU64::new(0),
            renderings: AtomicU64::new(0),
            parses: AtomicU64::new(0),
            verified: Mutex::new(HashMap::new()),
            uncertain: crate::uncertain::UncertainWrites::default(),
            waits: crate::waits::Waits::default(),
            cluster: parking_lot::RwLock::new(None),
            edge,
        });
        if let Some(detected) = shared.config.cluster.clone() {
            crate::handle::OperatorHandle::new(shared.clone()).set_cluster(detected);
        }
        Ok(Self {
            shared,
            extra_routes: Mutex::new(axum::Router::new()),
            parts: Mutex::new(Some(RunParts {
                elector,
                lock,
                controller,
                changes: change_rx,
                writer_task,
            })),
        })
    }

    /// A cheap handle on the operator's state (statuses, events, metrics, leadership,
    /// GC approval).
    #[must_use]
    pub fn handle(&self) -> OperatorHandle {
        OperatorHandle::new(self.shared.clone())
    }

    /// The HTTP API (see [`crate::api`]); serve it yourself when `config.listen` is
    /// `None`, or merge it into a larger router.
    pub fn api_router(&self) -> axum::Router {
        crate::api::router(self.handle()).merge(self.extra_routes.lock().clone())
    }

    /// Serves `routes` beside the API (on `config.listen`, and in
    /// [`Operator::api_router`]): how the binary adds the dashboard, which depends on
    /// this crate. They do not pass the API's token check; they guard their own actions.
    ///
    /// # Panics
    /// When `routes` overlaps a route already there (axum refuses the merge).
    pub fn add_routes(&self, routes: axum::Router) {
        let mut extra = self.extra_routes.lock();
        *extra = std::mem::take(&mut *extra).merge(routes);
    }

    /// Runs until `shutdown` is cancelled: watches, leader election, the controller
    /// (while leader), garbage collection (while leader), the status writer and, when
    /// `config.listen` is set, the HTTP API. On shutdown the leader lock is released.
    /// Call it once.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] on a second call, [`Error::Listen`] when the API cannot
    /// bind, [`Error::TaskFailed`] when a background task panicked (everything is
    /// stopped then).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let parts = self.parts.lock().take().ok_or(Error::AlreadyRunning)?;
        let RunParts {
            elector,
            lock,
            controller,
            changes,
            writer_task,
        } = parts;
        let s = self.shared.clone();
        let stop = shutdown.child_token();
        let listener = match s.config.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Listen { addr, source })?,
            ),
            None => None,
        };

        let mut tasks: JoinSet<&'static str> = JoinSet::new();
        let elector_task = tokio::spawn(elector.run(stop.clone()));
        {
            let metrics = s.metrics.clone();
            tasks.spawn(async move {
                writer_task.run(lock, metrics).await;
                "status-writer"
            });
        }
        spawn_watches(&s, &mut tasks);
        if let Some(edge) = s.edge.clone() {
            spawn_edge(&s, edge, &stop, &mut tasks).await?;
        }
        {
            let s2 = s.clone();
            let rx = s.leadership.clone();
            tasks.spawn(async move {
                gc::run(s2, rx).await;
                "garbage-collector"
            });
        }
        {
            let s2 = s.clone();
            let mut rx = s.leadership.clone();
            tasks.spawn(async move {
                loop {
                    let leader = rx.borrow_and_update().is_leader();
                    s2.metrics.leader.set(i64::from(leader));
                    if !leader {
                        // Our unseen writes belong to the term that ended.
                        s2.caches.statuses.clear_written();
                        s2.caches.service_defaults.clear_overlay();
                        s2.caches.service_intentions.clear_overlay();
                        s2.caches.http_routes.clear_overlay();
                        s2.caches.nomad.clear_overlay();
                    }
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
        if let Some(listener) = listener {
            let router = self.api_router();
            let stop2 = stop.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop2.cancelled().await })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "HTTP API server failed");
                }
                std::future::pending::<()>().await;
                "http-api"
            });
        }

        let ctx = Arc::new(Context::with_recorder(s.clone(), s.recorder.clone()));
        let controller = watch_triggers(
            &s,
            controller.with_leadership(s.leadership.clone()),
            changes,
        )
        .run(
            crate::reconcile::reconcile,
            |_key: &SpecKey, _error: &crate::reconcile::ReconcileError, _ctx| Action::backoff(),
            ctx,
            stop.clone(),
        );
        let mut failure = None;
        tokio::pin!(controller);
        tokio::select! {
            () = &mut controller => {}
            ended = tasks.join_next() => {
                // Background tasks run until they are aborted: one that panicked, or
                // that ended before shutdown, has failed.
                let stopping = stop.is_cancelled();
                failure = match ended {
                    Some(Err(e)) if e.is_panic() || !stopping => Some(Error::TaskFailed {
                        task: "background",
                        message: panic_message(e),
                    }),
                    Some(Ok(task)) if !stopping => Some(Error::TaskFailed {
                        task,
                        message: "ended unexpectedly".to_owned(),
                    }),
                    _ => None,
                };
                stop.cancel();
                controller.await;
            }
        }
        stop.cancel();
        // Let the elector release the lock (bounded), then stop everything else.
        match tokio::time::timeout(Duration::from_secs(5), elector_task).await {
            Ok(Err(e)) if failure.is_none() => {
                failure = Some(Error::TaskFailed {
                    task: "leader-elector",
                    message: panic_message(e),
                });
            }
            _ => {}
        }
        tasks.abort_all();
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r
                && e.is_panic()
                && failure.is_none()
            {
                failure = Some(Error::TaskFailed {
                    task: "background",
                    message: panic_message(e),
                });
            }
        }
        s.metrics.leader.set(0);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The edge control plane's tasks: the xDS server, the rebuild loop, the Consul health
/// watches, the re-queueing of specs whose edge verdict or acks changed, and NACKs as
/// events.
async fn spawn_edge(
    s: &Arc<OperatorContext>,
    edge: steward_edge::Edge,
    stop: &CancellationToken,
    tasks: &mut JoinSet<&'static str>,
) -> Result<()> {
    let Some(addr) = s.config.edge.xds_listen else {
        return Err(Error::Config {
            message: "edge.xds_listen: the edge mode includes xds but no address is set".to_owned(),
        });
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    tracing::info!(%addr, mode = s.config.edge.mode.as_str(), "xDS server listening");
    {
        let (edge, stop) = (edge.clone(), stop.clone());
        tasks.spawn(async move {
            if let Err(error) = steward_edge::server::serve(edge, listener, stop).await {
                tracing::error!(error = %chain(&error), "xDS server failed");
            }
            std::future::pending::<()>().await;
            "xds-server"
        });
    }
    {
        let (edge, stop) = (edge.clone(), stop.clone());
        tasks.spawn(async move {
            edge.run_rebuilder(stop).await;
            std::future::pending::<()>().await;
            "edge-rebuilder"
        });
    }
    {
        let (edge, stop) = (edge.clone(), stop.clone());
        let consul = s.clients.consul.clone();
        let config = steward_edge::health::HealthConfig {
            wait: s.config.watch_wait.min(Duration::from_secs(300)),
            ..steward_edge::health::HealthConfig::default()
        };
        tasks.spawn(async move {
            steward_edge::health::run(edge, consul, config, stop).await;
            std::future::pending::<()>().await;
            "edge-health"
        });
    }
    {
        let (edge, s2) = (edge.clone(), s.clone());
        let mut changes = edge.verdict_changes();
        tasks.spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(keys) => {
                        for key in keys {
                            s2.queue.add(SpecKey::from(key));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        for key in edge.spec_keys() {
                            s2.queue.add(SpecKey::from(key));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            std::future::pending::<()>().await;
            "edge-verdicts"
        });
    }
    {
        let s2 = s.clone();
        let mut events = edge.events();
        tasks.spawn(async move {
            loop {
                match events.recv().await {
                    Ok(steward_edge::EdgeEvent::Nack {
                        node_id,
                        kind,
                        version,
                        message,
                        specs,
                    }) => {
                        let text =
                            format!("Envoy {node_id} refused {kind} version {version}: {message}");
                        if specs.is_empty() {
                            s2.recorder.warning("edge", "EdgeNack", text.clone());
                        }
                        for key in specs {
                            s2.recorder.warning(key, "EdgeNack", text.clone());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            std::future::pending::<()>().await;
            "edge-events"
        });
    }
    Ok(())
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".to_owned();
    }
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panicked".to_owned()),
        Err(_) => "failed".to_owned(),
    }
}

/// The controller's triggers: the caches' changes through the mappers, every spec
/// when a cache of live objects first syncs, and every spec when this instance becomes
/// leader.
fn watch_triggers(
    s: &Arc<OperatorContext>,
    controller: Controller<SpecKey>,
    changes: ChangeReceiver,
) -> Controller<SpecKey> {
    let mappers = Mappers::new(s.caches.names.clone(), s.gc_kick.clone());
    let mut controller =
        controller.watches(changes.into_stream(), move |change| mappers.keys(change));
    // Specs held because a cache they need had not synced go on as soon as it has.
    for kind in crate::kinds::KINDS {
        let s2 = s.clone();
        let synced = futures::stream::once(async move {
            kind.health(&s2.caches).wait_synced().await;
            s2
        });
        controller = controller.watches(synced, |s2| triggers::all_specs(&s2.caches));
    }
    let s2 = s.clone();
    controller.resync_on_leadership(move || triggers::all_specs(&s2.caches))
}

fn spawn_watches(s: &Arc<OperatorContext>, tasks: &mut JoinSet<&'static str>) {
    let cfg = &s.config;
    let consul = s.clients.consul.clone();
    let wait = cfg.watch_wait;
    // Every answer of a list watch is the whole list (10,000 specs are megabytes), so
    // lists are rate-limited: specs drive the work and stay quick; statuses are our own
    // writes (the leader keeps what it wrote) and may lag; the rest may lag a little
    // (our own writes are overlaid until seen).
    //
    // The spec watch may list up to 50 times a second: its cost under churn is already
    // bounded by `Observed`'s spacing per listed spec, and the runtime's default of 5
    // lists a second made every spec edit wait for a token once edits came more often
    // than 5 a second (change latency p50 74 ms at 1,000 specs; 9 ms without it).
    let limited = crate::kinds::list_rate;
    let c = &s.caches;
    {
        // One watch per namespace (see `cache::kv_shards`): an edit re-reads its own
        // namespace, not all 10,000 documents.
        let cache = c.specs.clone();
        let config = ShardedKvConfig {
            wait,
            shards: limited(50.0, 10),
            shard: limited(50.0, 10),
            per_entry: Duration::from_micros(20),
            leader_hold: None,
        };
        let (client, prefix, t, n) = (
            consul.clone(),
            cfg.specs_prefix(),
            s.changes.clone(),
            c.names.clone(),
        );
        tasks.spawn(async move {
            cache.run(client, prefix, config, t, n).await;
            "spec-watch"
        });
    }
    {
        // Sharded like the specs; while leading, each shard relists at most every
        // LEADER_HOLD (the leader keeps what it writes).
        let cache = c.statuses.clone();
        let config = ShardedKvConfig {
            wait,
            shards: limited(0.5, 2),
            shard: limited(0.5, 2),
            per_entry: Duration::from_micros(200),
            leader_hold: Some((s.leadership.clone(), crate::cache::statuses::LEADER_HOLD)),
        };
        let (client, prefix, t) = (consul.clone(), cfg.status_prefix(), s.changes.clone());
        tasks.spawn(async move {
            cache.run(client, prefix, config, t).await;
            "status-watch"
        });
    }
    // The live objects' caches: each kind says which watches keep it.
    for kind in crate::kinds::KINDS {
        for watch in kind.watches(s) {
            let (name, task) = (watch.name, watch.task);
            tasks.spawn(async move {
                task.await;
                name
            });
        }
    }
}
