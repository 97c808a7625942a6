//! The simulated Nomad HTTP API (Nomad 1.10+ behaviour; reference §6, §8, §9).
//!
//! - `jobs`: register, read, list, versions, plan, validate, stop/purge, summaries,
//!   evaluations, allocations, deployments ([`jobs`]).
//! - `misc`: namespaces, evaluations/allocations/deployments by ID, deployment
//!   promotion, status, agent, regions, `acl/token/self`, and the workload-identity
//!   JWKS at `/.well-known/jwks.json` ([`misc`]).
//! - `events`: the `/v1/event/stream` NDJSON stream over a bounded event buffer.
//! - The scheduling model ([`store`]): every registration creates an evaluation
//!   processed at the next index; service jobs get allocations that move pending →
//!   running → healthy on `tokio::time` timers kept in one deadline-ordered map, and
//!   deployments (rolling updates with `MaxParallel`, canaries, auto promote, auto
//!   revert) drive replacements. Running allocations register their services in the
//!   simulated Consul catalog.
//!
//! Jobs are kept as canonical JSON (exactly what `GET /v1/job/:id` returns), produced
//! by [`canon`] and compared with [`diff`].

mod acl;
pub(crate) mod canon;
mod catalog;
pub(crate) mod diff;
mod events;
mod http;
mod jobs;
pub(crate) mod json;
mod misc;
mod model;
mod parse;
mod periodic;
mod store;
mod validate;

use crate::Product;
use crate::index::IndexClock;
use crate::product::{ProductState, SimContext};
use axum::Router;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::{Ctx, Inner, JobKey};

/// Nomad-specific simulator settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NomadSimConfig {
    /// Datacenter of the single simulated client node.
    pub datacenter: String,
    /// Region of the server (jobs default to it).
    pub region: String,
    /// Node name of the single simulated client.
    pub node_name: String,
    /// Node ID of the single simulated client (UUID).
    pub node_id: String,
    /// Namespaces created at start besides `default`.
    pub namespaces: Vec<String>,
    /// Task drivers the simulated client has; tasks with other drivers cannot be
    /// placed (blocked evaluation, `missing drivers`), as on a real client.
    pub drivers: Vec<String>,
    /// How long an allocation stays `pending` before it runs (ms).
    pub alloc_start_delay_ms: u64,
    /// Minimum time from `running` to healthy (ms).
    pub alloc_healthy_delay_ms: u64,
    /// Factor applied to the group's `update.min_healthy_time` (and to deployment
    /// progress deadlines) so tests stay fast: a running allocation becomes healthy
    /// after `max(alloc_healthy_delay, min_healthy_time × factor)`.
    pub min_healthy_time_factor: f64,
    /// Address at which allocations' services listen (registered in Consul).
    pub service_address: String,
    /// First port of the dynamic port range.
    pub dynamic_port_min: u16,
    /// Last port of the dynamic port range.
    pub dynamic_port_max: u16,
    /// Event stream buffer size (frames, one per index).
    pub event_buffer_size: usize,
    /// Event stream heartbeat interval (ms; real Nomad: 10 s).
    pub event_heartbeat_ms: u64,
    /// Job versions kept per job (`job_tracked_versions`).
    pub job_tracked_versions: usize,
    /// The server has `vault.default_identity` (tasks with a Vault block get a
    /// `vault_<cluster>` workload identity).
    pub vault_default_identity: bool,
    /// The server has `consul.service_identity` (Consul services get a
    /// `consul-service_<...>` identity).
    pub consul_service_identity: bool,
    /// The server has `consul.task_identity` (tasks get a `consul_<cluster>`
    /// identity).
    pub consul_task_identity: bool,
    /// The scheduler configuration's `MemoryOversubscriptionEnabled`. Off by default,
    /// as on Nomad: registering a task with `memory_max` then answers a warning that
    /// it is ignored.
    pub memory_oversubscription: bool,
    /// The server's version reported by `/v1/agent/self`.
    pub version: String,
    /// `GET /v1/jobs?meta=true` returns each stub's `Meta`. Off: the stubs carry no
    /// `Meta`, as on Nomad versions before the parameter (reference §10).
    pub job_list_meta: bool,
    /// `namespace=*` means every namespace on the event stream and the deployment list.
    /// Off: it is taken as a namespace literally named `*`, as on Nomad < 1.2
    /// (hashicorp/nomad#10903): the stream sends only heartbeats and the list is empty.
    pub namespace_wildcard: bool,
}

impl Default for NomadSimConfig {
    fn default() -> Self {
        NomadSimConfig {
            datacenter: "dc1".into(),
            region: "global".into(),
            node_name: "sim".into(),
            node_id: "5e1a6b3c-0d2f-4e6a-9b1c-7f3e2d1c0b9a".into(),
            namespaces: Vec::new(),
            drivers: [
                "docker", "exec", "raw_exec", "java", "podman", "qemu", "exec2",
            ]
            .iter()
            .map(|d| d.to_string())
            .collect(),
            alloc_start_delay_ms: 500,
            alloc_healthy_delay_ms: 0,
            min_healthy_time_factor: 0.1,
            service_address: "127.0.0.1".into(),
            dynamic_port_min: 20000,
            dynamic_port_max: 32000,
            event_buffer_size: 1000,
            event_heartbeat_ms: 10_000,
            job_tracked_versions: 6,
            vault_default_identity: true,
            consul_service_identity: true,
            consul_task_identity: true,
            memory_oversubscription: false,
            version: "1.10.3".into(),
            job_list_meta: true,
            namespace_wildcard: true,
        }
    }
}

impl NomadSimConfig {
    pub(crate) fn start_delay(&self) -> Duration {
        Duration::from_millis(self.alloc_start_delay_ms)
    }
    pub(crate) fn healthy_delay(&self) -> Duration {
        Duration::from_millis(self.alloc_healthy_delay_ms)
    }
    /// A duration of the job scaled by `min_healthy_time_factor`.
    pub(crate) fn scaled(&self, d: Duration) -> Duration {
        let f = self.min_healthy_time_factor.max(0.0);
        Duration::from_secs_f64(d.as_secs_f64() * f)
    }
    /// How long a running allocation of this group takes to become healthy.
    pub(crate) fn health_time(&self, group: &Value) -> Duration {
        let mht = group["Update"]["MinHealthyTime"]
            .as_i64()
            .unwrap_or(0)
            .max(0) as u64;
        self.healthy_delay()
            .max(self.scaled(Duration::from_nanos(mht)))
    }
    /// The (scaled) healthy deadline of a group, when it has an update block.
    pub(crate) fn healthy_deadline(&self, group: &Value) -> Option<Duration> {
        let hd = group["Update"]["HealthyDeadline"].as_i64()?;
        (hd > 0).then(|| self.scaled(Duration::from_nanos(hd as u64)))
    }
    /// The (scaled) progress deadline of a group.
    pub(crate) fn progress_window(&self, group: &Value) -> Duration {
        let pd = group["Update"]["ProgressDeadline"]
            .as_i64()
            .unwrap_or(0)
            .max(0) as u64;
        self.scaled(Duration::from_nanos(pd))
            .max(self.start_delay() + self.health_time(group) + Duration::from_millis(50))
    }
}

/// The whole Nomad state.
pub struct NomadState {
    clock: IndexClock,
    cfg: NomadSimConfig,
    ctx: SimContext,
    acl: acl::Acl,
    inner: Mutex<Inner>,
    catalog: Arc<dyn catalog::Catalog>,
    wake: tokio::sync::Notify,
}

impl NomadState {
    pub(crate) fn new(ctx: &SimContext, consul: Arc<crate::consul::ConsulState>) -> Arc<Self> {
        let cfg = ctx.config.nomad.clone();
        let catalog: Arc<dyn catalog::Catalog> = consul_catalog(consul);
        Arc::new(NomadState {
            clock: IndexClock::new(1),
            inner: Mutex::new(Inner::new(&cfg)),
            acl: acl::Acl::from_config(ctx.config.tokens_for(Product::Nomad)),
            cfg,
            ctx: ctx.clone(),
            catalog,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Starts the scheduler: one task that sleeps until the earliest timer.
    pub(crate) fn start(self: &Arc<Self>, ctx: &SimContext) {
        let state = Arc::clone(self);
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            loop {
                let next = state.inner.lock().timers.keys().next().map(|k| k.0);
                let sleep = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = state.wake.notified() => continue,
                    () = sleep => {}
                }
                state.run_due_timers();
            }
        });
    }

    fn run_due_timers(&self) {
        let ops = {
            let mut inner = self.inner.lock();
            let cx = self.cx();
            // Fire in rounds: timers fired now may schedule zero-delay timers.
            for _ in 0..64 {
                let due = inner.due_timers(tokio::time::Instant::now());
                if due.is_empty() {
                    break;
                }
                for t in due {
                    inner.fire(&cx, t);
                }
            }
            std::mem::take(&mut inner.catalog_ops)
        };
        catalog::apply(self.catalog.as_ref(), ops);
    }

    pub(crate) fn cx(&self) -> Ctx<'_> {
        Ctx {
            clock: &self.clock,
            cfg: &self.cfg,
            faults: &self.ctx.faults,
        }
    }

    /// Runs `f` on the locked state, then applies catalog operations and wakes the
    /// scheduler.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Inner, &Ctx<'_>) -> R) -> R {
        let (r, ops) = {
            let mut inner = self.inner.lock();
            let cx = self.cx();
            let r = f(&mut inner, &cx);
            (r, std::mem::take(&mut inner.catalog_ops))
        };
        catalog::apply(self.catalog.as_ref(), ops);
        self.wake.notify_one();
        r
    }

    /// Runs `f` on the locked state (reads).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        f(&self.inner.lock())
    }

    fn leader_known(&self) -> bool {
        self.ctx.faults.leader_known(Product::Nomad)
    }
}

/// Wires allocations' service registrations to the simulated Consul catalog.
fn consul_catalog(consul: Arc<crate::consul::ConsulState>) -> Arc<dyn catalog::Catalog> {
    Arc::new(ConsulCatalog(consul))
}

/// Registers allocations' services in the simulated Consul agent.
struct ConsulCatalog(Arc<crate::consul::ConsulState>);

impl catalog::Catalog for ConsulCatalog {
    fn register(&self, i: catalog::ServiceInstance) {
        use crate::consul::{
            CatalogInstance, CheckRegistration, CheckStatus, ProxyRegistration, ServiceKind,
            UpstreamRegistration,
        };
        let status = |s: &str| match s {
            "passing" => CheckStatus::Passing,
            "warning" => CheckStatus::Warning,
            _ => CheckStatus::Critical,
        };
        let inst = CatalogInstance {
            node: None,
            id: i.id,
            name: i.name,
            address: i.address,
            port: i.port,
            tags: i.tags,
            meta: i.meta,
            kind: if i.kind == "connect-proxy" {
                ServiceKind::ConnectProxy
            } else {
                ServiceKind::Typical
            },
            proxy: i.proxy.map(|p| ProxyRegistration {
                destination_service_name: p.destination_service_name,
                destination_service_id: p.destination_service_id,
                local_service_address: p.local_service_address,
                local_service_port: p.local_service_port,
                upstreams: p
                    .upstreams
                    .into_iter()
                    .map(|u| UpstreamRegistration {
                        destination_name: u.destination_name,
                        local_bind_port: u.local_bind_port,
                        local_bind_address: String::new(),
                    })
                    .collect(),
                config: serde_json::Map::new(),
            }),
            checks: i
                .checks
                .into_iter()
                .map(|c| CheckRegistration {
                    id: c.check_id,
                    output: c.output,
                    ..CheckRegistration::new(&c.name, &c.kind, status(&c.status))
                })
                .collect(),
            sidecar: None,
        };
        self.0.register_instance(inst);
    }

    fn deregister(&self, service_id: &str) {
        self.0.deregister_instance(service_id);
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    index: u64,
    namespaces: Vec<model::Namespace>,
    jobs: Vec<store::JobEntry>,
    evals: Vec<model::Eval>,
    allocs: Vec<model::Alloc>,
    deployments: Vec<model::Deployment>,
    tables: store::Tables,
    next_port: u16,
    #[serde(default)]
    backends: Vec<(String, String, SocketAddr)>,
}

impl ProductState for NomadState {
    fn product(&self) -> Product {
        Product::Nomad
    }
    fn clock(&self) -> &IndexClock {
        &self.clock
    }
    fn snapshot(&self) -> Value {
        serde_json::to_value(self.snapshot_data())
            .unwrap_or_else(|e| json!({ "error": e.to_string() }))
    }
    fn snapshot_json(&self) -> Vec<u8> {
        // Copied under the lock (jobs are shared, not copied), serialised after it.
        let snap = self.snapshot_data();
        serde_json::to_vec(&snap).unwrap_or_default()
    }
    fn restore(&self, snapshot: Value) -> Result<(), String> {
        self.restore_snapshot(snapshot)
    }
    fn reset_indexes(&self) {
        self.reset_all_indexes();
    }
}

impl NomadState {
    /// What is persisted, copied under the state lock.
    fn snapshot_data(&self) -> Snapshot {
        let inner = self.inner.lock();
        Snapshot {
            index: self.clock.current(),
            namespaces: inner.namespaces.values().cloned().collect(),
            jobs: inner.jobs.values().cloned().collect(),
            evals: inner.evals.values().cloned().collect(),
            allocs: inner.allocs.values().cloned().collect(),
            deployments: inner.deployments.values().cloned().collect(),
            tables: inner.tables.clone(),
            next_port: inner.next_port,
            backends: inner
                .backends
                .iter()
                .map(|((ns, job), a)| (ns.clone(), job.clone(), *a))
                .collect(),
        }
    }

    fn restore_snapshot(&self, snapshot: Value) -> Result<(), String> {
        let snap: Snapshot =
            serde_json::from_value(snapshot).map_err(|e| format!("malformed nomad state: {e}"))?;
        let mut inner = Inner::new(&self.cfg);
        inner.namespaces.clear();
        for ns in snap.namespaces {
            inner.namespaces.insert(ns.name.clone(), ns);
        }
        if !inner.namespaces.contains_key("default") {
            return Err("malformed nomad state: the default namespace is missing".into());
        }
        for entry in snap.jobs {
            let ns = json::s(entry.job(), "Namespace").to_string();
            let id = json::s(entry.job(), "ID").to_string();
            if id.is_empty() {
                return Err("malformed nomad state: a job without ID".into());
            }
            inner.jobs.insert((ns, id), entry);
        }
        for e in snap.evals {
            inner
                .evals_by_job
                .entry((e.namespace.clone(), e.job_id.clone()))
                .or_default()
                .push(e.id.clone());
            inner.evals.insert(e.id.clone(), e);
        }
        for a in snap.allocs {
            inner
                .allocs_by_job
                .entry((a.namespace.clone(), a.job_id.clone()))
                .or_default()
                .push(a.id.clone());
            inner.allocs.insert(a.id.clone(), a);
        }
        for d in snap.deployments {
            inner
                .deployments_by_job
                .entry((d.namespace.clone(), d.job_id.clone()))
                .or_default()
                .push(d.id.clone());
            inner.deployments.insert(d.id.clone(), d);
        }
        inner.tables = snap.tables;
        inner.next_port = snap.next_port;
        for (ns, job, addr) in snap.backends {
            inner.backends.insert((ns, job), addr);
        }
        inner.rearm_timers(&self.cfg);
        *self.inner.lock() = inner;
        self.clock.set(snap.index);
        self.wake.notify_one();
        Ok(())
    }

    fn reset_all_indexes(&self) {
        let mut inner = self.inner.lock();
        let current = self.clock.current();
        let target = (current / 2).max(1);
        let shift = current - target;
        let lower = |v: &mut u64| *v = v.saturating_sub(shift).max(1);
        for e in inner.jobs.values_mut() {
            e.clear_caches();
            e.lower_indexes(|n| n.saturating_sub(shift).max(1));
            lower(&mut e.summary_create_index);
            lower(&mut e.summary_modify_index);
        }
        for e in inner.evals.values_mut() {
            lower(&mut e.create_index);
            lower(&mut e.modify_index);
            lower(&mut e.job_modify_index);
            lower(&mut e.snapshot_index);
        }
        for a in inner.allocs.values_mut() {
            lower(&mut a.create_index);
            lower(&mut a.modify_index);
            lower(&mut a.alloc_modify_index);
        }
        for d in inner.deployments.values_mut() {
            lower(&mut d.create_index);
            lower(&mut d.modify_index);
            lower(&mut d.job_create_index);
            lower(&mut d.job_modify_index);
            lower(&mut d.job_spec_modify_index);
        }
        for n in inner.namespaces.values_mut() {
            lower(&mut n.create_index);
            lower(&mut n.modify_index);
        }
        let t = &mut inner.tables;
        for v in [
            &mut t.jobs,
            &mut t.job_summary,
            &mut t.job_version,
            &mut t.evals,
            &mut t.allocs,
            &mut t.deployment,
            &mut t.namespaces,
        ] {
            if *v > 0 {
                *v = v.saturating_sub(shift).max(1);
            }
        }
        inner.events.clear();
        self.clock.set(target);
    }
}

/// The Nomad API routes.
pub(crate) fn router(state: Arc<NomadState>) -> Router {
    jobs::routes()
        .merge(misc::routes())
        .merge(events::routes())
        .with_state(state)
}

impl crate::SimHandle {
    /// Points the services of one Nomad job at a real backend: every allocation of
    /// the job that starts from now on registers its services in Consul with this
    /// address and port (instead of the configured service address and the
    /// allocation's dynamic port). `None` restores the default.
    pub fn set_service_backend(&self, namespace: &str, job: &str, backend: Option<SocketAddr>) {
        let key: JobKey = (namespace.to_string(), job.to_string());
        self.nomad.write(|inner, _| match backend {
            Some(addr) => {
                inner.backends.insert(key, addr);
            }
            None => {
                inner.backends.remove(&key);
            }
        });
    }

    /// Creates a Nomad namespace (like `PUT /v1/namespace/<name>` with a management
    /// token).
    pub fn create_nomad_namespace(&self, name: &str) {
        self.nomad.write(|inner, cx| {
            if !inner.namespaces.contains_key(name) {
                let idx = cx.clock.next();
                inner.namespaces.insert(
                    name.to_string(),
                    model::Namespace {
                        name: name.to_string(),
                        description: String::new(),
                        meta: None,
                        quota: String::new(),
                        create_index: idx,
                        modify_index: idx,
                    },
                );
                inner.tables.namespaces = idx;
            }
        });
    }

    /// The status of every allocation of a job, as `(name, client status, healthy)`,
    /// for assertions in tests.
    pub fn nomad_allocations(
        &self,
        namespace: &str,
        job: &str,
    ) -> Vec<(String, String, Option<bool>)> {
        let key: JobKey = (namespace.to_string(), job.to_string());
        self.nomad.read(|inner| {
            inner
                .job_allocs(&key)
                .into_iter()
                .map(|a| {
                    (
                        a.name.clone(),
                        a.client_status.clone(),
                        a.deployment_status.as_ref().and_then(|d| d.healthy),
                    )
                })
                .collect()
        })
    }

    /// Promotes the running deployment of a job (like
    /// `POST /v1/deployment/promote/<id>` with `All: true`); `false` when the job has
    /// no running deployment.
    pub fn promote_nomad_deployment(&self, namespace: &str, job: &str) -> bool {
        let key: JobKey = (namespace.to_string(), job.to_string());
        self.nomad.write(|inner, cx| {
            let id = inner
                .job_deployments(&key)
                .into_iter()
                .find(|d| d.active())
                .map(|d| d.id.clone());
            match id {
                Some(id) => {
                    let idx = cx.clock.next();
                    inner.promote(cx, &key, &id, idx);
                    true
                }
                None => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn fast() -> crate::SimConfig {
        let mut c = crate::SimConfig::default();
        c.nomad.alloc_start_delay_ms = 20;
        c.nomad.alloc_healthy_delay_ms = 20;
        c.nomad.min_healthy_time_factor = 0.0005;
        c
    }

    async fn put_job(sim: &crate::SimHandle, body: &Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/v1/jobs", sim.nomad_url()))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    fn job(image: &str) -> Value {
        json!({"Job": {
            "ID": "web", "Type": "service", "Datacenters": ["dc1"],
            "Update": {"MaxParallel": 1, "Canary": 1, "AutoPromote": false,
                       "MinHealthyTime": 1_000_000_000u64, "ProgressDeadline": 600_000_000_000u64},
            "TaskGroups": [{"Name": "web", "Count": 1,
                "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": image}}]}]
        }})
    }

    /// A deployment waiting for manual promotion with every allocation healthy is
    /// not late when its progress deadline passes, and must not re-check it in a
    /// tight loop afterwards (it used to re-arm every millisecond forever).
    #[tokio::test]
    async fn a_deployment_awaiting_promotion_does_not_spin_after_its_deadline() {
        let sim = crate::Sim::start(fast()).await.unwrap();
        put_job(&sim, &job("web:1")).await;
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        let awaiting = |sim: &crate::SimHandle| {
            sim.nomad.read(|i| {
                i.deployments.values().any(|d| {
                    d.active() && d.status_description.contains("requires manual promotion")
                })
            })
        };
        let stable = |sim: &crate::SimHandle| {
            sim.nomad.read(|i| {
                i.job(&("default".into(), "web".into()))
                    .map(|j| j["Stable"] == true)
            }) == Some(true)
        };
        while !stable(&sim) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        put_job(&sim, &job("web:2")).await;
        while !awaiting(&sim) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(awaiting(&sim), "no deployment awaiting promotion");
        // The progress window (600 s × 0.0005 = 0.3 s, at least start + health time)
        // passes; the canary is healthy, so the deployment is not late.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let before = sim.nomad.read(|i| i.timers_fired);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fired = sim.nomad.read(|i| i.timers_fired) - before;
        assert!(fired <= 2, "{fired} timers fired in 500 ms of idling");
        assert!(
            awaiting(&sim),
            "the deployment must still wait for promotion"
        );
        sim.shutdown().await;
    }
}
