//! End-to-end harness: the simulator in-process (fast Nomad timings, an `edge`
//! api-gateway), one or more operators each in its own runtime thread (so a test can
//! kill one like a crashed process), spec pushes, and bounded waits on statuses.
//!
//! Every wait is bounded and panics with what it last saw. A panic anywhere in the
//! process (a simulator or operator task included) fails the test at [`Env::finish`], and
//! an operator whose `run` returned an error fails it at [`RunningOperator::stop`].
#![deny(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use steward_hashi::nomad::Job;
use steward_hashi::{
    BackoffConfig, ConsulClient, ConsulConfig, NomadClient, NomadConfig, Observation, QueryOptions,
    RetryPolicy, VaultClient, VaultConfig, WriteOptions,
};
use steward_operator::{Clients, Operator, OperatorConfig, OperatorHandle, Phase, StatusDoc};
use steward_sim::{Product, Sim, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

static PANICKED: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// The API token of the operators [`Env::config`] makes.
pub const API_TOKEN: &str = "e2e-api-token-0123456789";

/// Default bound of every wait.
pub const WAIT: Duration = Duration::from_secs(30);

fn install_panic_hook() {
    HOOK.call_once(|| {
        // `STEWARD_E2E_LOG=steward_operator=debug` shows what the operators do.
        if let Ok(filter) = std::env::var("STEWARD_E2E_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Waits until `probe` returns `Some`, polling every 25 ms, for at most `timeout`;
/// panics naming `what` and showing `last` (the last probe's description) otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `f` until it succeeds (at most 50 times, 20 ms apart): the test's own requests
/// must get through fault injection too.
pub async fn retry<T, E: std::fmt::Display, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut last = String::new();
    for _ in 0..50 {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} kept failing: {last}");
}

/// One request an operator made, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which operator (its name).
    pub operator: String,
    /// Product.
    pub product: steward_hashi::Product,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status (`None`: no answer).
    pub status: Option<u16>,
    /// When the answer (or the failure) came.
    pub at: tokio::time::Instant,
}

impl Request {
    /// A request that may change state: not a read, dry run, session renewal or lock
    /// acquisition.
    #[must_use]
    pub fn is_write(&self) -> bool {
        let mutating = matches!(self.method.as_str(), "PUT" | "POST" | "DELETE");
        mutating && !self.path.ends_with("/plan") && !self.path.starts_with("/v1/session/")
    }

    /// A write other than the leader lock and the status documents.
    #[must_use]
    pub fn is_object_write(&self) -> bool {
        self.is_write() && self.path != "/v1/txn" && !self.path.starts_with("/v1/kv/steward/leader")
    }
}

/// Every request of every operator, in order.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<Request>>>,
}

impl RequestLog {
    /// Everything so far.
    #[must_use]
    pub fn all(&self) -> Vec<Request> {
        self.entries.lock().clone()
    }

    /// The number of requests so far (a position to look from).
    #[must_use]
    pub fn mark(&self) -> usize {
        self.entries.lock().len()
    }

    /// The requests since `mark`.
    #[must_use]
    pub fn since(&self, mark: usize) -> Vec<Request> {
        self.entries
            .lock()
            .get(mark..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    fn observer(&self, operator: &str) -> steward_hashi::Observer {
        let entries = self.entries.clone();
        let operator = operator.to_owned();
        Arc::new(move |o: &Observation<'_>| {
            entries.lock().push(Request {
                operator: operator.clone(),
                product: o.product,
                method: o.method.to_string(),
                path: o.path.to_owned(),
                status: o.status,
                at: tokio::time::Instant::now(),
            });
        })
    }
}

/// Write counters of the simulator, per product and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writes(BTreeMap<(Product, String, String), u64>);

impl Writes {
    /// Writes to one product since `before`.
    #[must_use]
    pub fn delta(&self, before: &Writes, product: Product) -> u64 {
        self.rows_since(before)
            .into_iter()
            .filter(|((p, _, _), _)| *p == product)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every counter that grew since `before`: `((product, method, route), growth)`.
    #[must_use]
    pub fn rows_since(&self, before: &Writes) -> Vec<((Product, String, String), u64)> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let old = before.0.get(k).copied().unwrap_or(0);
                (*v > old).then(|| (k.clone(), v - old))
            })
            .collect()
    }
}

/// The path of a file in the repository.
#[must_use]
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// The platform policy every test uses (`deploy/guardrails.yaml`).
#[must_use]
pub fn guardrails() -> steward_spec::GuardrailPolicy {
    let path = repo_path("deploy/guardrails.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = steward_spec::load_guardrail_policy("guardrails.yaml", &text);
    let rendered = loaded.render();
    loaded.policy.unwrap_or_else(|| panic!("{rendered}"))
}

/// Fast retries for test clients.
#[must_use]
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(
        4,
        BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(200)),
    )
}

/// The ACL tokens one party holds: Consul's and Nomad's secrets (`None`: send none,
/// which is everything while that product's ACLs are off) and Vault's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// `X-Consul-Token`.
    pub consul: Option<String>,
    /// `X-Nomad-Token`.
    pub nomad: Option<String>,
    /// `X-Vault-Token`.
    pub vault: String,
}

impl Default for Tokens {
    /// No Consul or Nomad token, Vault's root token: the simulator with ACLs off.
    fn default() -> Self {
        Self {
            consul: None,
            nomad: None,
            vault: "root".to_owned(),
        }
    }
}

/// Clients pointed at the simulator, without Consul and Nomad tokens and with Vault's
/// root token.
#[must_use]
pub fn clients(consul: &str, nomad: &str, vault: &str) -> Clients {
    clients_with(consul, nomad, vault, &Tokens::default())
}

/// Clients pointed at the simulator, sending `tokens`.
#[must_use]
pub fn clients_with(consul: &str, nomad: &str, vault: &str, tokens: &Tokens) -> Clients {
    let mut consul_config = ConsulConfig::default()
        .with_address(consul)
        .unwrap()
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(5));
    if let Some(t) = &tokens.consul {
        consul_config = consul_config.with_token(t.as_str());
    }
    let mut nomad_config = NomadConfig::default()
        .with_address(nomad)
        .unwrap()
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(5));
    if let Some(t) = &tokens.nomad {
        nomad_config = nomad_config.with_token(t.as_str());
    }
    Clients {
        consul: ConsulClient::new(consul_config).unwrap(),
        nomad: NomadClient::new(nomad_config).unwrap(),
        vault: VaultClient::new(
            VaultConfig::default()
                .with_address(vault)
                .unwrap()
                .with_token(tokens.vault.as_str())
                .with_retry(fast_retry())
                .with_timeout(Duration::from_secs(5)),
        )
        .unwrap(),
    }
}

/// The simulator configuration of the tests: allocations start in 20 ms and become
/// healthy after 1 % of `min_healthy_time` (100 ms for the default 10 s).
#[must_use]
pub fn sim_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.nomad.alloc_start_delay_ms = 20;
    c.nomad.alloc_healthy_delay_ms = 0;
    c.nomad.min_healthy_time_factor = 0.01;
    c.nomad.event_heartbeat_ms = 1000;
    c
}

/// One test's world: the simulator, clients of the test itself, and the operators.
pub struct Env {
    /// The simulator.
    pub sim: SimHandle,
    /// The test's own clients (not observed).
    pub clients: Clients,
    /// Requests of every operator.
    pub log: RequestLog,
    /// The tokens the operators started from now on use (ACLs off: the default).
    pub operator_tokens: Tokens,
    operators: Vec<RunningOperator>,
}

impl Env {
    /// Starts the simulator with [`sim_config`] and creates the `edge` api-gateway.
    pub async fn start() -> Env {
        Self::start_with(sim_config()).await
    }

    /// Starts the simulator with `config` and creates the `edge` api-gateway.
    pub async fn start_with(config: SimConfig) -> Env {
        Self::start_with_tokens(config, Tokens::default()).await
    }

    /// Starts the simulator with `config` (whose ACL tokens include `admin`'s), and
    /// creates the `edge` api-gateway with `admin`'s tokens, which the test's own
    /// clients keep.
    pub async fn start_with_tokens(config: SimConfig, admin: Tokens) -> Env {
        install_panic_hook();
        let sim = tokio::time::timeout(WAIT, Sim::start(config))
            .await
            .unwrap()
            .unwrap();
        let clients = clients_with(
            &sim.consul_url(),
            &sim.nomad_url(),
            &sim.vault_url(),
            &admin,
        );
        let gateway = json!({
            "Kind": "api-gateway",
            "Name": "edge",
            "Listeners": [{"Name": "http", "Port": 8080, "Protocol": "http", "Hostname": "*"}],
        });
        assert!(
            clients
                .consul
                .config_put(&gateway, &WriteOptions::new())
                .await
                .unwrap()
        );
        Env {
            sim,
            clients,
            log: RequestLog::default(),
            operator_tokens: Tokens::default(),
            operators: Vec::new(),
        }
    }

    /// The operator configuration of the tests: `deploy/guardrails.yaml`, fast Vault
    /// polling, a 1 s leader lock-delay, quick GC, namespaces created on demand.
    #[must_use]
    pub fn config(&self) -> OperatorConfig {
        let mut c = OperatorConfig {
            policy: guardrails(),
            concurrency: 8,
            vault_poll_interval: Duration::from_millis(100),
            vault_checks_per_poll: 4,
            gc_debounce: Duration::from_millis(100),
            orphan_sweep_interval: Duration::from_secs(2),
            // Short, so a watch parked above an index that a snapshot restore lowered
            // notices quickly (the servers answer such a wait only at its timeout).
            watch_wait: Duration::from_secs(3),
            create_nomad_namespaces: true,
            listen: None,
            api_token: Some(
                steward_operator::api_token::ApiToken::new(API_TOKEN)
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            ..OperatorConfig::default()
        };
        c.leader.ttl = Duration::from_secs(10);
        c.leader.lock_delay = Duration::from_secs(1);
        c.leader.retry_pause = Duration::from_millis(200);
        c.leader.monitor_wait = Duration::from_secs(5);
        c
    }

    /// Starts an operator named `name` with [`Env::config`].
    pub async fn operator(&mut self, name: &str) -> OperatorHandle {
        let config = self.config();
        self.operator_with(name, config).await
    }

    /// Starts an operator named `name` with `config` in its own runtime thread.
    pub async fn operator_with(&mut self, name: &str, config: OperatorConfig) -> OperatorHandle {
        let op = RunningOperator::start(
            name,
            config,
            [
                self.sim.consul_url(),
                self.sim.nomad_url(),
                self.sim.vault_url(),
            ],
            self.operator_tokens.clone(),
            self.log.clone(),
        );
        let handle = op.handle.clone();
        self.operators.push(op);
        handle
    }

    /// Stops the operator `name` cleanly (asserting its `run` returned `Ok`).
    pub async fn stop(&mut self, name: &str) {
        let pos = self.operators.iter().position(|o| o.name == name).unwrap();
        let op = self.operators.remove(pos);
        op.stop().await;
    }

    /// Kills the operator `name` like a crashed process: every task stops at once, its
    /// session stays until it expires. Returns the session it led with, if it led.
    pub fn kill(&mut self, name: &str) -> Option<String> {
        let pos = self.operators.iter().position(|o| o.name == name).unwrap();
        let op = self.operators.remove(pos);
        let session = match &*op.handle.leadership().borrow() {
            steward_runtime::Leadership::Leader { session_id, .. } => Some(session_id.clone()),
            steward_runtime::Leadership::Follower => None,
        };
        op.kill();
        session
    }

    /// Stores a spec document at `steward/specs/<key>`; returns its generation.
    pub async fn put_spec(&self, key: &str, text: &str) -> u64 {
        self.put_spec_bytes(key, text.as_bytes()).await
    }

    /// Stores any bytes (UTF-8 or not) at `steward/specs/<key>`; returns the generation.
    pub async fn put_spec_bytes(&self, key: &str, value: &[u8]) -> u64 {
        let kv = format!("steward/specs/{key}");
        let consul = &self.clients.consul;
        let (w, q) = (WriteOptions::new(), QueryOptions::new());
        retry("the spec write", || consul.kv_put(&kv, value, None, &w)).await;
        let pair = retry("the spec read", || consul.kv_get(&kv, &q)).await;
        pair.value.unwrap().modify_index
    }

    /// The current generation (KV `ModifyIndex`) of the spec `key` (it moves when
    /// Consul's indexes are reset by a snapshot restore).
    pub async fn generation(&self, key: &str) -> Option<u64> {
        let kv = format!("steward/specs/{key}");
        let consul = &self.clients.consul;
        let q = QueryOptions::new();
        retry("the spec read", || consul.kv_get(&kv, &q))
            .await
            .value
            .map(|p| p.modify_index)
    }

    /// Waits until `key` is `Synced` at its current generation, whatever that is.
    pub async fn wait_synced_now(&self, key: &str, timeout: Duration) -> StatusDoc {
        wait_for(
            &format!("{key}: Synced at its current generation"),
            timeout,
            || async {
                let generation = self.generation(key).await;
                match self.status(key).await {
                    Some(s)
                        if s.phase == Phase::Synced
                            && Some(s.observed_generation) == generation =>
                    {
                        Ok(s)
                    }
                    Some(s) => Err(format!(
                        "phase {:?} gen {} (spec at {generation:?}) message {:?}",
                        s.phase, s.observed_generation, s.message
                    )),
                    None => Err("no status".to_owned()),
                }
            },
        )
        .await
    }

    /// [`Env::put_spec`] (which retries anyway; named for tests under faults).
    pub async fn put_spec_retrying(&self, key: &str, text: &str) -> u64 {
        self.put_spec(key, text).await
    }

    /// Deletes the spec at `steward/specs/<key>`.
    pub async fn delete_spec(&self, key: &str) {
        let kv = format!("steward/specs/{key}");
        let consul = &self.clients.consul;
        let w = WriteOptions::new();
        retry("the spec delete", || consul.kv_delete(&kv, &w)).await;
    }

    /// The status document of `key` as stored in KV.
    pub async fn status(&self, key: &str) -> Option<StatusDoc> {
        let v = self.status_json(key).await?;
        serde_json::from_value(v).ok()
    }

    /// The raw JSON stored at `steward/status/<key>`.
    pub async fn status_json(&self, key: &str) -> Option<Value> {
        let kv = format!("steward/status/{key}");
        let consul = &self.clients.consul;
        let q = QueryOptions::new();
        let pair = retry("the status read", || consul.kv_get(&kv, &q))
            .await
            .value?;
        serde_json::from_slice(&pair.value).ok()
    }

    /// Waits until the stored status of `key` satisfies `pred`.
    pub async fn wait_status(
        &self,
        key: &str,
        what: &str,
        pred: impl Fn(&StatusDoc) -> bool,
    ) -> StatusDoc {
        self.wait_status_for(key, what, WAIT, pred).await
    }

    /// [`Env::wait_status`] with its own bound.
    pub async fn wait_status_for(
        &self,
        key: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&StatusDoc) -> bool,
    ) -> StatusDoc {
        wait_for(&format!("{key}: {what}"), timeout, || async {
            match self.status(key).await {
                Some(s) if pred(&s) => Ok(s),
                Some(s) => Err(format!(
                    "phase {:?} gen {} message {:?} objects {:?}",
                    s.phase, s.observed_generation, s.message, s.objects
                )),
                None => Err("no status".to_owned()),
            }
        })
        .await
    }

    /// Waits until `key` is `Synced` at `generation`.
    pub async fn wait_synced(&self, key: &str, generation: u64) -> StatusDoc {
        self.wait_status(key, &format!("Synced at generation {generation}"), |s| {
            s.phase == Phase::Synced && s.observed_generation == generation
        })
        .await
    }

    /// Waits until `key` is in `phase` at `generation`.
    pub async fn wait_phase(&self, key: &str, phase: Phase, generation: u64) -> StatusDoc {
        self.wait_status(key, &format!("{phase:?} at generation {generation}"), |s| {
            s.phase == phase && s.observed_generation == generation
        })
        .await
    }

    /// The simulator's write counters now.
    #[must_use]
    pub fn writes(&self) -> Writes {
        Writes(
            self.sim
                .stats()
                .snapshot()
                .into_iter()
                .filter(|r| r.key.is_write())
                .map(|r| ((r.key.product, r.key.method, r.key.route), r.count))
                .collect(),
        )
    }

    /// The Nomad job `<ns>/<id>`.
    pub async fn job(&self, ns: &str, id: &str) -> Option<Job> {
        let nomad = &self.clients.nomad;
        let opts = QueryOptions::new().namespace(ns);
        retry("the job read", || nomad.get_job(id, &opts))
            .await
            .value
    }

    /// The versions of the Nomad job `<ns>/<id>`, newest first.
    pub async fn job_versions(&self, ns: &str, id: &str) -> Vec<Job> {
        let nomad = &self.clients.nomad;
        let opts = QueryOptions::new().namespace(ns);
        retry("the job versions read", || {
            nomad.job_versions(id, false, &opts)
        })
        .await
        .value
        .map(|v| v.versions)
        .unwrap_or_default()
    }

    /// A config entry.
    pub async fn entry(&self, kind: &str, name: &str) -> Option<Value> {
        let consul = &self.clients.consul;
        let q = QueryOptions::new();
        retry("the config entry read", || {
            consul.config_get_raw(kind, name, &q)
        })
        .await
        .value
    }

    /// A Vault policy's text.
    pub async fn policy(&self, name: &str) -> Option<String> {
        let vault = &self.clients.vault;
        retry("the policy read", || vault.get_policy(name))
            .await
            .map(|p| p.policy)
    }

    /// Waits until no operator wrote anything for `quiet` (bounded by [`WAIT`]).
    pub async fn settle(&self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut mark = self.log.mark();
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let new = self.log.since(mark);
            mark += new.len();
            if new.iter().any(Request::is_write) {
                quiet_since = tokio::time::Instant::now();
            }
            if quiet_since.elapsed() >= quiet {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operators did not go quiet within {WAIT:?}"
            );
        }
    }

    /// Stops every operator (asserting each returned `Ok`), shuts the simulator down,
    /// and fails the test if anything panicked.
    pub async fn finish(mut self) {
        for op in std::mem::take(&mut self.operators) {
            op.stop().await;
        }
        self.sim.shutdown().await;
        assert!(
            !PANICKED.load(Ordering::SeqCst),
            "a task panicked during the test (see the output above)"
        );
    }
}

type RunResult = Option<Result<(), steward_operator::Error>>;

/// An operator running in its own runtime thread.
pub struct RunningOperator {
    /// Its name (the request log's `operator`).
    pub name: String,
    /// Its handle.
    pub handle: OperatorHandle,
    shutdown: CancellationToken,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<RunResult>>,
}

impl RunningOperator {
    fn start(
        name: &str,
        config: OperatorConfig,
        urls: [String; 3],
        tokens: Tokens,
        log: RequestLog,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread_name = format!("operator-{name}");
        let op_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                let result = rt.block_on(async move {
                    let [consul, nomad, vault] = urls;
                    let base = clients_with(&consul, &nomad, &vault, &tokens);
                    let observer = log.observer(&op_name);
                    let c = Clients {
                        consul: base.consul.with_observer(observer.clone()),
                        nomad: base.nomad.with_observer(observer.clone()),
                        vault: base.vault.with_observer(observer),
                    };
                    let operator = Operator::new(config, c).unwrap();
                    handle_tx.send(operator.handle()).unwrap();
                    tokio::select! {
                        r = operator.run(token) => Some(r),
                        _ = kill_rx => None,
                    }
                });
                // A killed operator's tasks die here, mid-flight, like a crashed process.
                rt.shutdown_background();
                result
            })
            .unwrap();
        let handle = handle_rx.recv_timeout(WAIT).unwrap();
        Self {
            name: name.to_owned(),
            handle,
            shutdown,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    /// Stops it and asserts that `run` returned `Ok`.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let thread = self.thread.take().unwrap();
        let result = tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap();
        match result {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => panic!("operator {} failed: {e}", self.name),
            Ok(None) => {}
            Err(_) => panic!("operator {} thread panicked", self.name),
        }
    }

    /// Kills it: the runtime is dropped with every task mid-flight.
    pub fn kill(mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A ServiceSpec document: a docker service `ns/name` with the given `spec` body lines
/// (YAML, indented by two spaces each).
#[must_use]
pub fn spec(ns: &str, name: &str, body: &str) -> String {
    let mut out = format!(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
    );
    for line in body.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A typical web service: image tag `tag`, port 8080, HTTP check, two replicas, one
/// L7 caller, secrets and one edge route.
#[must_use]
pub fn web(ns: &str, name: &str, tag: &str) -> String {
    spec(
        ns,
        name,
        &format!(
            "image: registry.example/{name}:{tag}\nreplicas: 2\nport: 8080\ncheck: {{http: /healthz}}\nupdate: {{autoRevert: true}}\nallowFrom:\n  - {{service: caller, methods: [GET]}}\nsecrets:\n  - {{path: secret/data/{ns}/{name}/*, capabilities: [read]}}\nedge:\n  routes:\n    - {{host: {name}.{ns}.apps.internal, pathPrefix: /}}\n"
        ),
    )
}
