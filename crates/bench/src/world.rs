//! The bench's world: the simulator (fast Nomad timings, the `edge` api-gateway, the
//! Nomad namespaces, `rtt` latency on every product) as a child process, on its own
//! runtime in-process, or external; the harness's own clients; and operators each on
//! their own runtime (so one can be killed like a crashed process). Patterned on the
//! end-to-end harness in `tests/src/lib.rs`.

use std::time::Duration;

use serde_json::json;
use steward_hashi::{
    BackoffConfig, ConsulClient, ConsulConfig, NomadClient, NomadConfig, QueryOptions, RetryPolicy,
    VaultClient, VaultConfig, WriteOptions,
};
use steward_operator::{Clients, Operator, OperatorConfig, OperatorHandle};
use steward_sim::{FaultRuleKind, Product, Sim, SimConfig, SimHandle};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{BenchConfig, SimPlacement};
use crate::error::{Error, Result};
use crate::measure::{self, OpLog, Rss, SimCpu};
use crate::simproc::{Admin, SimChild};
use crate::specs;

/// KV prefix of every operator of the bench.
pub(crate) const PREFIX: &str = "steward";

/// How long an allocation stays pending in the bench's simulator.
const ALLOC_START_DELAY_MS: u64 = 20;

/// Factor on `min_healthy_time` in the bench's simulator (100 ms for the specs' 10 s).
const MIN_HEALTHY_TIME_FACTOR: f64 = 0.01;

fn runtime(name: &str) -> Result<Runtime> {
    // Two workers each: the machine the targets are set for has two cores.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime {
            what: name.to_owned(),
            source,
        })
}

/// Clients pointed at the simulator, with the default (production) retry policy.
fn clients(consul: &str, nomad: &str, vault: &str) -> Result<Clients> {
    let c = |product: &'static str| move |source| Error::Client { product, source };
    Ok(Clients {
        consul: ConsulClient::new(
            ConsulConfig::default()
                .with_address(consul)
                .map_err(c("consul"))?,
        )
        .map_err(c("consul"))?,
        nomad: NomadClient::new(
            NomadConfig::default()
                .with_address(nomad)
                .map_err(c("nomad"))?,
        )
        .map_err(c("nomad"))?,
        vault: VaultClient::new(
            VaultConfig::default()
                .with_address(vault)
                .map_err(c("vault"))?
                .with_token("root"),
        )
        .map_err(c("vault"))?,
    })
}

/// The harness's clients retry quickly: its requests must get through (a request that
/// still fails ends the run with an error).
fn harness_clients(consul: &str, nomad: &str, vault: &str) -> Result<Clients> {
    let retry = RetryPolicy::new(
        8,
        BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(500)),
    );
    let c = |product: &'static str| move |source| Error::Client { product, source };
    Ok(Clients {
        consul: ConsulClient::new(
            ConsulConfig::default()
                .with_address(consul)
                .map_err(c("consul"))?
                .with_retry(retry),
        )
        .map_err(c("consul"))?,
        nomad: NomadClient::new(
            NomadConfig::default()
                .with_address(nomad)
                .map_err(c("nomad"))?
                .with_retry(retry),
        )
        .map_err(c("nomad"))?,
        vault: VaultClient::new(
            VaultConfig::default()
                .with_address(vault)
                .map_err(c("vault"))?
                .with_token("root")
                .with_retry(retry),
        )
        .map_err(c("vault"))?,
    })
}

/// The simulator configuration: allocations start in 20 ms and are healthy after 1 % of
/// `min_healthy_time` (100 ms for the specs' 10 s), as in the end-to-end tests, so a
/// deployment does not hide the operator's own latency.
fn sim_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.nomad.alloc_start_delay_ms = ALLOC_START_DELAY_MS;
    c.nomad.alloc_healthy_delay_ms = 0;
    c.nomad.min_healthy_time_factor = MIN_HEALTHY_TIME_FACTOR;
    c
}

/// The same settings as `steward sim` flags (for the child process, and to print for
/// whoever starts an external simulator).
#[must_use]
pub(crate) fn sim_flags() -> Vec<String> {
    vec![
        "--alloc-start-delay".to_owned(),
        format!("{ALLOC_START_DELAY_MS}ms"),
        "--min-healthy-time-factor".to_owned(),
        MIN_HEALTHY_TIME_FACTOR.to_string(),
    ]
}

/// Where the simulator runs and how the harness reaches it beyond the product APIs.
enum SimSide {
    /// On runtime `sim-rt` of this process.
    InProcess {
        rt: Option<Runtime>,
        sim: Option<SimHandle>,
    },
    /// A child process, driven through its admin API.
    Child {
        child: Option<SimChild>,
        admin: Admin,
    },
    /// Someone else's `steward sim`; `faults` are the rules the bench added (removed at
    /// the end, so the simulator is left as it was found).
    External { admin: Admin, faults: Vec<u64> },
}

/// An operator running on its own runtime.
struct RunningOperator {
    name: String,
    token: CancellationToken,
    rt: Option<Runtime>,
    done: Option<JoinHandle<steward_operator::Result<()>>>,
}

/// Simulator, harness clients, operators.
pub(crate) struct World {
    pub(crate) cfg: BenchConfig,
    sim: SimSide,
    urls: [String; 3],
    /// The harness's own clients (not observed: never counted as operator requests).
    pub(crate) clients: Clients,
    /// Every operator request.
    pub(crate) log: OpLog,
    operators: Vec<RunningOperator>,
    policy: steward_spec::GuardrailPolicy,
}

impl World {
    /// Starts (or, external, checks) the simulator and prepares it: gateway, namespaces,
    /// then the latency.
    pub(crate) async fn start(cfg: BenchConfig) -> Result<World> {
        let policy = specs::guardrails()?;
        let (mut side, urls) = match &cfg.sim {
            SimPlacement::InProcess => {
                let rt = runtime("sim-rt")?;
                let sim = rt
                    .spawn(Sim::start(sim_config()))
                    .await
                    .map_err(|e| Error::Task {
                        what: "simulator start".to_owned(),
                        message: e.to_string(),
                    })?
                    .map_err(Error::Sim)?;
                let urls = [sim.consul_url(), sim.nomad_url(), sim.vault_url()];
                let side = SimSide::InProcess {
                    rt: Some(rt),
                    sim: Some(sim),
                };
                (side, urls)
            }
            SimPlacement::Child { program } => {
                let program = match program {
                    Some(p) => p.clone(),
                    None => std::env::current_exe().map_err(|e| Error::SimProcess {
                        program: "steward".to_owned(),
                        message: format!("cannot find the running executable: {e}"),
                    })?,
                };
                let child = SimChild::spawn(&program, &sim_flags()).await?;
                let urls = child.urls.clone();
                let admin = Admin::new(&urls[0], &urls[1])?;
                let side = SimSide::Child {
                    child: Some(child),
                    admin,
                };
                (side, urls)
            }
            SimPlacement::External(a) => {
                let urls = [a.consul.clone(), a.nomad.clone(), a.vault.clone()];
                let admin = Admin::new(&urls[0], &urls[1])?;
                let side = SimSide::External {
                    admin,
                    faults: Vec::new(),
                };
                (side, urls)
            }
        };
        let clients = harness_clients(&urls[0], &urls[1], &urls[2])?;
        if let SimSide::External { .. } = side {
            // Specs, statuses or a leader lock of an earlier run would change what the
            // operator does: every figure would be off.
            let keys = clients
                .consul
                .kv_keys(&format!("{PREFIX}/"), None, &QueryOptions::new())
                .await
                .map_err(|source| Error::Request {
                    what: format!("GET /v1/kv/{PREFIX}/?keys"),
                    source,
                })?
                .value;
            if !keys.is_empty() {
                return Err(Error::NotFresh {
                    url: urls[0].clone(),
                    prefix: PREFIX.to_owned(),
                    keys: keys.len(),
                });
            }
        }
        let gateway = json!({
            "Kind": "api-gateway",
            "Name": "edge",
            "Listeners": [{"Name": "http", "Port": 8080, "Protocol": "http", "Hostname": "*"}],
        });
        clients
            .consul
            .config_put(&gateway, &WriteOptions::new())
            .await
            .map_err(|source| Error::Request {
                what: "PUT api-gateway edge".to_owned(),
                source,
            })?;
        // Namespaces exist beforehand, as in production (`create_nomad_namespaces` off).
        for i in 0..cfg.namespaces.max(1) {
            let name = specs::namespace(i, cfg.namespaces);
            match &side {
                SimSide::InProcess { sim: Some(sim), .. } => sim.create_nomad_namespace(&name),
                SimSide::InProcess { sim: None, .. } => {}
                SimSide::Child { admin, .. } | SimSide::External { admin, .. } => {
                    admin.create_namespace(&name).await?;
                }
            }
        }
        if !cfg.rtt.is_zero() {
            let fixed_ms = u64::try_from(cfg.rtt.as_millis()).unwrap_or(u64::MAX);
            for product in Product::ALL {
                match &mut side {
                    SimSide::InProcess { sim: Some(sim), .. } => {
                        sim.faults().inject(
                            product,
                            FaultRuleKind::Latency {
                                fixed_ms,
                                jitter_ms: 0,
                            },
                        );
                    }
                    SimSide::InProcess { sim: None, .. } => {}
                    SimSide::Child { admin, .. } => {
                        admin.inject_latency(product.as_str(), fixed_ms).await?;
                    }
                    SimSide::External { admin, faults } => {
                        faults.push(admin.inject_latency(product.as_str(), fixed_ms).await?);
                    }
                }
            }
        }
        Ok(World {
            cfg,
            sim: side,
            urls,
            clients,
            log: OpLog::new(PREFIX),
            operators: Vec::new(),
            policy,
        })
    }

    /// The simulator child's process id.
    fn sim_pid(&self) -> Option<u32> {
        match &self.sim {
            SimSide::Child {
                child: Some(child), ..
            } => Some(child.pid()),
            _ => None,
        }
    }

    /// Where the simulator's CPU time is found.
    pub(crate) fn sim_cpu(&self) -> SimCpu {
        match (&self.sim, self.sim_pid()) {
            (SimSide::InProcess { .. }, _) => SimCpu::InProcess,
            (_, Some(pid)) => SimCpu::Child(pid),
            (_, None) => SimCpu::Unseen,
        }
    }

    /// Resets the peak RSS of this process and of the simulator's child process, so a
    /// scenario reports its own peaks.
    pub(crate) fn reset_peak_rss(&self) {
        measure::reset_peak_rss(None);
        if let Some(pid) = self.sim_pid() {
            measure::reset_peak_rss(Some(pid));
        }
    }

    /// The memory of the simulator's child process (`None`: not a child process).
    pub(crate) fn sim_rss(&self) -> Option<Rss> {
        self.sim_pid().map(|pid| Rss::of(Some(pid)))
    }

    /// Requests the simulator answered so far (`None`: it cannot say).
    pub(crate) async fn sim_requests(&self) -> Result<Option<u64>> {
        match &self.sim {
            SimSide::InProcess { sim, .. } => Ok(sim
                .as_ref()
                .map(|s| s.stats().snapshot().iter().map(|r| r.count).sum())),
            SimSide::Child { admin, .. } | SimSide::External { admin, .. } => {
                admin.requests_answered().await.map(Some)
            }
        }
    }

    /// The operator configuration: production defaults, except no HTTP API, the
    /// repository's guardrails, and the bench's concurrency and leader timings.
    pub(crate) fn operator_config(&self, name: &str) -> OperatorConfig {
        let mut c = OperatorConfig {
            prefix: PREFIX.to_owned(),
            policy: self.policy.clone(),
            concurrency: self.cfg.concurrency.max(1),
            listen: None,
            instance_name: name.to_owned(),
            ..OperatorConfig::default()
        };
        c.leader.ttl = self.cfg.leader_ttl;
        c.leader.lock_delay = self.cfg.lock_delay;
        c
    }

    /// Starts operator `name` on its own runtime (threads `op-<name>`).
    pub(crate) fn start_operator(&mut self, name: &str) -> Result<OperatorHandle> {
        let rt = runtime(&format!("op-{name}"))?;
        let base = clients(&self.urls[0], &self.urls[1], &self.urls[2])?;
        let observer = self.log.observer(name);
        let observed = Clients {
            consul: base.consul.with_observer(observer.clone()),
            nomad: base.nomad.with_observer(observer.clone()),
            vault: base.vault.with_observer(observer),
        };
        let operator = Operator::new(self.operator_config(name), observed).map_err(|source| {
            Error::Operator {
                name: name.to_owned(),
                source,
            }
        })?;
        let handle = operator.handle();
        let token = CancellationToken::new();
        let t = token.clone();
        let done = rt.spawn(async move { operator.run(t).await });
        self.operators.push(RunningOperator {
            name: name.to_owned(),
            token,
            rt: Some(rt),
            done: Some(done),
        });
        Ok(handle)
    }

    /// Kills operator `name` like a crashed process: its runtime is dropped with every
    /// task mid-flight; its leader session stays until its TTL runs out.
    pub(crate) fn kill(&mut self, name: &str) {
        if let Some(pos) = self.operators.iter().position(|o| o.name == name) {
            let mut op = self.operators.remove(pos);
            if let Some(rt) = op.rt.take() {
                rt.shutdown_background();
            }
        }
    }

    /// Stops operator `name` cleanly (bounded): as leader it releases the lock and
    /// destroys its session.
    pub(crate) async fn stop(&mut self, name: &str) -> Result<()> {
        let Some(pos) = self.operators.iter().position(|o| o.name == name) else {
            return Ok(());
        };
        let mut op = self.operators.remove(pos);
        op.token.cancel();
        let outcome = match op.done.take() {
            Some(done) => match tokio::time::timeout(Duration::from_secs(15), done).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(source))) => Err(Error::Operator {
                    name: op.name.clone(),
                    source,
                }),
                Ok(Err(e)) => Err(Error::Task {
                    what: format!("operator {}", op.name),
                    message: e.to_string(),
                }),
                Err(_) => Err(Error::Task {
                    what: format!("operator {}", op.name),
                    message: "did not stop within 15 s".to_owned(),
                }),
            },
            None => Ok(()),
        };
        if let Some(rt) = op.rt.take() {
            rt.shutdown_background();
        }
        outcome
    }

    /// The names of the running operators.
    pub(crate) fn operator_names(&self) -> Vec<String> {
        self.operators.iter().map(|o| o.name.clone()).collect()
    }

    /// Stops every operator (bounded) and the simulator (a child is stopped and
    /// reaped). The first operator failure is returned.
    pub(crate) async fn shutdown(mut self) -> Result<()> {
        let mut failure = None;
        for mut op in std::mem::take(&mut self.operators) {
            op.token.cancel();
            if let Some(done) = op.done.take() {
                match tokio::time::timeout(Duration::from_secs(15), done).await {
                    Ok(Ok(Ok(()))) | Err(_) => {}
                    Ok(Ok(Err(source))) => {
                        failure.get_or_insert(Error::Operator {
                            name: op.name.clone(),
                            source,
                        });
                    }
                    Ok(Err(e)) => {
                        failure.get_or_insert(Error::Task {
                            what: format!("operator {}", op.name),
                            message: e.to_string(),
                        });
                    }
                }
            }
            if let Some(rt) = op.rt.take() {
                rt.shutdown_background();
            }
        }
        match &mut self.sim {
            SimSide::InProcess { rt, sim } => {
                if let (Some(sim), Some(r)) = (sim.take(), rt.as_ref()) {
                    let stopped = r.spawn(sim.shutdown());
                    let _ = tokio::time::timeout(Duration::from_secs(15), stopped).await;
                }
                if let Some(rt) = rt.take() {
                    rt.shutdown_background();
                }
            }
            SimSide::Child { child, .. } => {
                if let Some(child) = child.take() {
                    child.stop().await;
                }
            }
            SimSide::External { admin, faults } => {
                // Best effort: the figures are taken; a rule left behind is visible in
                // the simulator's `/_sim/v1/faults`.
                for id in std::mem::take(faults) {
                    let _ = admin.remove_fault(id).await;
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // An early return (an error) must not drop runtimes inside the caller's async
        // context, which panics: let them go in the background.
        for op in &mut self.operators {
            if let Some(rt) = op.rt.take() {
                rt.shutdown_background();
            }
        }
        if let SimSide::InProcess { rt, .. } = &mut self.sim
            && let Some(rt) = rt.take()
        {
            rt.shutdown_background();
        }
        // A simulator child is killed by its own drop (`kill_on_drop`).
    }
}
