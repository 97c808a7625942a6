//! Simulator at Steward's scale: what a cold start of N specs asks of Consul, Nomad and
//! Vault, over loopback HTTP, with the operator's blocking watches open, followed by
//! an idle period and a full job listing.
//!
//! A benchmark that prints figures, not a test: `cargo bench -p steward-sim --bench
//! sim_scale`. Every loop is bounded in count and time.
//!
//! Phases (each prints wall time, requests, req/s, p50/p99 latency, CPU seconds of the
//! simulator's and of the client's threads, RSS):
//! 1. `kv specs`: the spec keys `steward/specs/<ns>/<name>` in `/v1/txn` batches of 64;
//! 2. `apply`: per spec, Vault policy PUT + JWT role POST, Consul `service-defaults`,
//!    `service-intentions` and `http-route` PUTs (parent: the pre-created `edge`
//!    api-gateway), and a Nomad job registration (the render golden for
//!    `order-api`, renamed); `SIM_SCALE_CONCURRENCY` specs in flight;
//! 3. `kv status`: the status keys `steward/status/<ns>/<name>` in txns of 64;
//! 4. `settle`: until every allocation registered its service in the Consul catalog
//!    (allocations start after the simulator's start delay) and Nomad's job index has
//!    not moved for 2 s (deployments done);
//! 5. `idle`: nothing but the three blocking watches for `SIM_SCALE_IDLE_SECS`;
//! 6. `list jobs`: `GET /v1/jobs?namespace=*&meta=true`, a few times.
//!
//! Meanwhile three watchers keep blocking queries open like Steward's runtime does
//! (at most 5 lists per second after a burst of 5): KV `steward/specs/?recurse`,
//! `/v1/config/service-intentions`, and Nomad `/v1/jobs?namespace=*`.
//!
//! The simulator runs on its own 2-thread Tokio runtime (threads `sim-rt`) and the
//! client on another (threads `bench-rt`), so CPU time is attributed per side from
//! `/proc/self/stat` and `/proc/self/task/*/stat`. Environment: `SIM_SCALE_N` (specs, default 10000),
//! `SIM_SCALE_CONCURRENCY` (default 32), `SIM_SCALE_COUNT` (allocations per job,
//! default 1), `SIM_SCALE_IDLE_SECS` (default 30), `SIM_SCALE_PHASE_SECS` (time cap
//! per phase, default 180), `SIM_SCALE_NAMESPACES` (default 10),
//! `SIM_SCALE_WATCH_WAIT_SECS` (the watches' `wait`, default 300 like Steward's),
//! `SIM_SCALE_PERSIST=1` (keep the simulator state in a temporary data directory).
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use steward_sim::{Sim, SimConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
struct Settings {
    n: usize,
    concurrency: usize,
    count: usize,
    idle: Duration,
    phase_cap: Duration,
    namespaces: usize,
    watch_wait: Duration,
}

// ----- process figures -----------------------------------------------------------------

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// CPU seconds used so far by the simulator, by the client (the benchmark's own
/// threads: `bench-rt` workers and the main thread) and by the whole process.
/// The simulator's share is the process total minus the client threads, which live
/// until the end (the simulator's blocking-pool threads come and go, and the time of
/// exited threads only remains in the process total).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    sim: f64,
    client: f64,
    total: f64,
}

impl Cpu {
    fn now() -> Cpu {
        let total = proc_stat_cpu("/proc/self/stat").unwrap_or(0.0);
        let mut client = 0.0;
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for task in dir.flatten() {
                let path = task.path();
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                if !comm.starts_with("sim-rt") {
                    client += proc_stat_cpu(&path.join("stat").to_string_lossy()).unwrap_or(0.0);
                }
            }
        }
        Cpu {
            sim: (total - client).max(0.0),
            client,
            total,
        }
    }

    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            sim: self.sim - earlier.sim,
            client: self.client - earlier.client,
            total: self.total - earlier.total,
        }
    }
}

/// utime + stime of a `stat` file, in seconds.
fn proc_stat_cpu(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), i.e. 12 and 13 after the state field (index 0).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// (current RSS, peak RSS) in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ----- phase bookkeeping ---------------------------------------------------------------

struct Phase {
    name: &'static str,
    started: Instant,
    cpu: Cpu,
    latencies: Vec<Duration>,
    failed: usize,
    note: String,
}

impl Phase {
    fn start(name: &'static str) -> Phase {
        Phase {
            name,
            started: Instant::now(),
            cpu: Cpu::now(),
            latencies: Vec::new(),
            failed: 0,
            note: String::new(),
        }
    }

    fn finish(mut self) -> Duration {
        let wall = self.started.elapsed();
        let cpu = Cpu::now().since(self.cpu);
        let (rss, peak) = rss_mib();
        self.latencies.sort();
        let pct = |p: usize| -> String {
            if self.latencies.is_empty() {
                return "-".into();
            }
            let i = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
            format!("{:.2}ms", self.latencies[i].as_secs_f64() * 1e3)
        };
        let reqs = self.latencies.len() + self.failed;
        let rate = if wall.is_zero() {
            0.0
        } else {
            reqs as f64 / wall.as_secs_f64()
        };
        println!(
            "{:<11} wall {:>7.2}s  reqs {:>6} (failed {:>3})  {:>7.0} req/s  p50 {:>9}  p99 {:>9}  \
             cpu sim {:>6.2}s client {:>6.2}s total {:>6.2}s  rss {:>6.0} MiB (peak {:>6.0})  {}",
            self.name,
            wall.as_secs_f64(),
            reqs,
            self.failed,
            rate,
            pct(50),
            pct(99),
            cpu.sim,
            cpu.client,
            cpu.total,
            rss,
            peak,
            self.note
        );
        wall
    }
}

// ----- request bodies ------------------------------------------------------------------

fn spec_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn spec_ns(s: &Settings, i: usize) -> String {
    format!("team-{}", i % s.namespaces.max(1))
}

fn meta(ns: &str, name: &str) -> Value {
    json!({
        "steward.managed-by": "steward",
        "steward.spec": format!("{ns}/{name}"),
        "steward.generation": "7",
        "steward.hash": "fb4d785ed3cac744834a33af1e9320c1b012ee9a15381d3af2d4f003d6707265",
    })
}

const SPEC_YAML: &str = include_str!("../../../deploy/examples/order-api.yaml");

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn spec_value(ns: &str, name: &str) -> String {
    SPEC_YAML.replace("order-api", name).replace("trading", ns)
}

fn status_value(ns: &str, name: &str) -> String {
    json!({
        "spec": format!("{ns}/{name}"),
        "generation": 7,
        "observedGeneration": 7,
        "hash": "fb4d785ed3cac744834a33af1e9320c1b012ee9a15381d3af2d4f003d6707265",
        "phase": "Progressing",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "DeploymentRunning",
             "message": "waiting for the Nomad deployment", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Applied", "status": "True", "reason": "Applied",
             "message": "all resources applied", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ],
        "resources": {
            "nomad": {"job": name, "namespace": ns, "jobModifyIndex": 0},
            "consul": ["service-defaults", "service-intentions", "http-route"],
            "vault": {"policy": format!("steward-{ns}-{name}"), "role": format!("steward-{ns}-{name}")}
        }
    })
    .to_string()
}

/// The render golden for `deploy/examples/order-api.yaml`, renamed.
fn job(ns: &str, name: &str, count: usize) -> Value {
    json!({"Job": {
        "ID": name,
        "Name": name,
        "Namespace": ns,
        "Type": "service",
        "Datacenters": ["*"],
        "Meta": meta(ns, name),
        "TaskGroups": [{
            "Name": name,
            "Count": count,
            "Networks": [{"Mode": "bridge", "DynamicPorts": [{"Label": "main", "To": 8080}]}],
            "Services": [{
                "Name": name,
                "PortLabel": "8080",
                "Tags": [format!("team={ns}")],
                "Connect": {"SidecarService": {"Proxy": {"Upstreams": [
                    {"DestinationName": "price-feed", "LocalBindPort": 9001},
                    {"DestinationName": "market-data-cache", "LocalBindPort": 9002},
                    {"DestinationName": "ledger-reader", "LocalBindPort": 9003}
                ]}}},
                "Checks": [{
                    "Name": format!("{name}-health"),
                    "Type": "http",
                    "Path": "/healthz",
                    "Expose": true,
                    "Interval": 10_000_000_000u64,
                    "Timeout": 2_000_000_000u64
                }]
            }],
            "Update": {
                "MaxParallel": 1, "Canary": 0, "AutoRevert": true, "AutoPromote": false,
                "MinHealthyTime": 10_000_000_000u64, "HealthyDeadline": 300_000_000_000u64,
                "ProgressDeadline": 600_000_000_000u64
            },
            "Tasks": [{
                "Name": "app",
                "Driver": "docker",
                "Config": {"image": format!("registry.example/{name}:1.4.2"), "ports": ["main"]},
                "Env": {"LOG_LEVEL": "info", "PRICE_FEED_ADDR": "127.0.0.1:9001"},
                "Resources": {"CPU": 500, "MemoryMB": 512},
                "Vault": {"Role": format!("steward-{ns}-{name}")}
            }]
        }]
    }})
}

fn policy_hcl(ns: &str, name: &str) -> String {
    format!(
        "# managed-by: steward; spec: {ns}/{name}\n\
         path \"secret/data/{ns}/{name}/*\" {{\n  capabilities = [\"read\"]\n}}\n\n\
         path \"secret/metadata/{ns}/{name}/*\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n\n\
         path \"secret/data/{ns}/shared/*\" {{\n  capabilities = [\"read\"]\n}}\n\n\
         path \"secret/metadata/{ns}/shared/*\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n"
    )
}

fn jwt_role(ns: &str, name: &str) -> Value {
    json!({
        "role_type": "jwt",
        "bound_audiences": ["vault.io"],
        "user_claim": "/nomad_job_id",
        "user_claim_json_pointer": true,
        "bound_claims": {"nomad_namespace": ns, "nomad_job_id": name},
        "claim_mappings": {
            "nomad_namespace": "nomad_namespace",
            "nomad_job_id": "nomad_job_id",
            "nomad_task": "nomad_task"
        },
        "token_type": "service",
        "token_period": "30m",
        "token_policies": [format!("steward-{ns}-{name}")]
    })
}

fn service_defaults(ns: &str, name: &str) -> Value {
    json!({"Kind": "service-defaults", "Name": name, "Protocol": "http", "Meta": meta(ns, name)})
}

fn service_intentions(ns: &str, name: &str) -> Value {
    json!({
        "Kind": "service-intentions",
        "Name": name,
        "Meta": meta(ns, name),
        "Sources": [
            {"Name": "web-api", "Permissions": [
                {"Action": "allow", "HTTP": {"PathPrefix": "/orders", "Methods": ["GET", "POST"]}},
                {"Action": "deny", "HTTP": {"PathPrefix": "/"}}
            ]},
            {"Name": "nightly-settlement", "Permissions": [
                {"Action": "allow", "HTTP": {"PathPrefix": "/settle", "Methods": ["POST"]}},
                {"Action": "deny", "HTTP": {"PathPrefix": "/"}}
            ]},
            {"Name": "*", "Action": "deny"}
        ]
    })
}

fn http_route(ns: &str, name: &str) -> Value {
    json!({
        "Kind": "http-route",
        "Name": format!("{ns}-{name}"),
        "Meta": meta(ns, name),
        "Parents": [{"Kind": "api-gateway", "Name": "edge", "SectionName": "http"}],
        "Hostnames": [format!("{name}.example.com")],
        "Rules": [{
            "Matches": [{"Path": {"Match": "prefix", "Value": "/api/"}}],
            "Filters": {
                "URLRewrite": {"Path": "/"},
                "TimeoutFilter": {"RequestTimeout": "5s"},
                "RetryFilter": {"NumRetries": 2, "RetryOn": ["5xx"], "RetryOnConnectFailure": true}
            },
            "Services": [{"Name": name, "Weight": 1}]
        }]
    })
}

// ----- HTTP --------------------------------------------------------------------------

struct Endpoints {
    client: reqwest::Client,
    consul: String,
    nomad: String,
    vault: String,
    /// Jobs registered successfully (each allocation registers a service + sidecar).
    jobs_registered: AtomicUsize,
}

/// Sends a request and reads the body; `Ok(elapsed)` on a 2xx.
async fn send(req: reqwest::RequestBuilder) -> Result<Duration, String> {
    let t0 = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(t0.elapsed())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Runs `one(i)` for `i in 0..total` with `concurrency` workers, bounded by `cap`.
/// `one` returns the latencies of its requests and its failures.
async fn run_bounded<F, Fut>(
    phase: &mut Phase,
    total: usize,
    concurrency: usize,
    cap: Duration,
    one: F,
) where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Vec<Duration>, Vec<String>)> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + cap;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let one = one.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let (l, e) = one(i).await;
                lat.extend(l);
                errors.extend(e);
            }
            (lat, errors)
        }));
    }
    let mut first_errors = Vec::new();
    for w in workers {
        let (lat, errors) = w.await.unwrap();
        phase.latencies.extend(lat);
        phase.failed += errors.len();
        for e in errors {
            if first_errors.len() < 3 {
                first_errors.push(e);
            }
        }
    }
    if next.load(Ordering::Relaxed) < total + concurrency.max(1) {
        phase
            .note
            .push_str(&format!("(stopped at the {cap:?} cap) "));
    }
    if !first_errors.is_empty() {
        phase
            .note
            .push_str(&format!("first errors: {first_errors:?}"));
    }
}

fn record(r: Result<Duration, String>, lat: &mut Vec<Duration>, errors: &mut Vec<String>) {
    match r {
        Ok(d) => lat.push(d),
        Err(e) => errors.push(e),
    }
}

/// KV txns of 64 set operations over `keys(i)` for `i in 0..n`.
async fn kv_txn_phase(phase: &mut Phase, ep: &Arc<Endpoints>, s: &Settings, kind: &'static str) {
    let batches = s.n.div_ceil(64);
    let ep = ep.clone();
    let st = s.clone();
    run_bounded(phase, batches, s.concurrency, s.phase_cap, move |b| {
        let ep = ep.clone();
        let st = st.clone();
        async move {
            let ops: Vec<Value> = (b * 64..((b + 1) * 64).min(st.n))
                .map(|i| {
                    let (ns, name) = (spec_ns(&st, i), spec_name(i));
                    let value = if kind == "specs" {
                        spec_value(&ns, &name)
                    } else {
                        status_value(&ns, &name)
                    };
                    json!({"KV": {"Verb": "set", "Key": format!("steward/{kind}/{ns}/{name}"),
                                  "Value": b64(value.as_bytes())}})
                })
                .collect();
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            let r = send(
                ep.client
                    .put(format!("{}/v1/txn", ep.consul))
                    .json(&Value::Array(ops)),
            )
            .await;
            record(r, &mut lat, &mut errors);
            (lat, errors)
        }
    })
    .await;
}

/// What Steward applies for one spec.
async fn apply_one(ep: &Endpoints, s: &Settings, i: usize) -> (Vec<Duration>, Vec<String>) {
    let (ns, name) = (spec_ns(s, i), spec_name(i));
    let role = format!("steward-{ns}-{name}");
    let mut lat = Vec::with_capacity(6);
    let mut errors = Vec::new();
    let c = &ep.client;
    let r = send(
        c.put(format!("{}/v1/sys/policies/acl/{role}", ep.vault))
            .header("X-Vault-Token", "root")
            .json(&json!({"policy": policy_hcl(&ns, &name)})),
    )
    .await;
    record(r, &mut lat, &mut errors);
    let r = send(
        c.post(format!("{}/v1/auth/jwt-nomad/role/{role}", ep.vault))
            .header("X-Vault-Token", "root")
            .json(&jwt_role(&ns, &name)),
    )
    .await;
    record(r, &mut lat, &mut errors);
    for entry in [
        service_defaults(&ns, &name),
        service_intentions(&ns, &name),
        http_route(&ns, &name),
    ] {
        let r = send(c.put(format!("{}/v1/config", ep.consul)).json(&entry)).await;
        record(r, &mut lat, &mut errors);
    }
    let r = send(
        c.put(format!("{}/v1/jobs", ep.nomad))
            .json(&job(&ns, &name, s.count)),
    )
    .await;
    if r.is_ok() {
        ep.jobs_registered.fetch_add(1, Ordering::Relaxed);
    }
    record(r, &mut lat, &mut errors);
    (lat, errors)
}

// ----- watchers ----------------------------------------------------------------------

#[derive(Default)]
struct WatchCounters {
    responses: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// A blocking-query loop like Steward's watcher: list, then block on the returned
/// index; at most 5 lists per second after a burst of 5.
fn spawn_watcher(
    client: reqwest::Client,
    url: String,
    index_header: &'static str,
    counters: Arc<WatchCounters>,
    stop: Arc<AtomicBool>,
    wait: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut index = 0u64;
        let mut tokens = 5.0f64;
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * 5.0).min(5.0);
            last = now;
            if tokens < 1.0 {
                tokio::time::sleep(Duration::from_secs_f64((1.0 - tokens) / 5.0)).await;
                continue;
            }
            tokens -= 1.0;
            let sep = if url.contains('?') { '&' } else { '?' };
            let r = client
                .get(format!("{url}{sep}index={index}&wait={}s", wait.as_secs()))
                .timeout(wait * 2 + Duration::from_secs(30))
                .send()
                .await;
            let ok = match r {
                // A KV prefix with no keys answers 404 with the index to block on.
                Ok(resp) if resp.status().is_success() || resp.status() == 404 => {
                    let new_index = resp
                        .headers()
                        .get(index_header)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    match resp.bytes().await {
                        Ok(body) => {
                            counters
                                .bytes
                                .fetch_add(body.len() as u64, Ordering::Relaxed);
                            counters.responses.fetch_add(1, Ordering::Relaxed);
                            index = new_index.unwrap_or(0);
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if !ok {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    })
}

// ----- the benchmark ---------------------------------------------------------------------

async fn bench(s: Settings, consul: String, nomad: String, vault: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(s.concurrency * 2)
        .build()
        .unwrap();
    let ep = Arc::new(Endpoints {
        client: client.clone(),
        consul,
        nomad,
        vault,
        jobs_registered: AtomicUsize::new(0),
    });

    // The edge gateway (listener `http`).
    let gw = json!({"Kind": "api-gateway", "Name": "edge",
        "Listeners": [{"Name": "http", "Port": 8443, "Protocol": "http"}]});
    if let Err(e) = send(client.put(format!("{}/v1/config", ep.consul)).json(&gw)).await {
        println!("api-gateway edge not created: {e}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let watches = [
        (
            "kv steward/specs/ recurse",
            format!("{}/v1/kv/steward/specs/?recurse", ep.consul),
            "x-consul-index",
        ),
        (
            "config service-intentions",
            format!("{}/v1/config/service-intentions", ep.consul),
            "x-consul-index",
        ),
        (
            "nomad jobs",
            format!("{}/v1/jobs?namespace=*", ep.nomad),
            "x-nomad-index",
        ),
    ];
    let mut watchers = Vec::new();
    let mut counters = Vec::new();
    for (name, url, header) in watches {
        let c = Arc::new(WatchCounters::default());
        counters.push((name, c.clone()));
        watchers.push(spawn_watcher(
            client.clone(),
            url,
            header,
            c,
            stop.clone(),
            s.watch_wait,
        ));
    }
    let print_watchers = |label: &str| {
        let parts: Vec<String> = counters
            .iter()
            .map(|(name, c)| {
                format!(
                    "{name}: {} responses, {:.1} MiB, {} errors",
                    c.responses.load(Ordering::Relaxed),
                    c.bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
                    c.errors.load(Ordering::Relaxed)
                )
            })
            .collect();
        println!("  watchers {label}: {}", parts.join("; "));
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cold = Instant::now();
    let cold_cpu = Cpu::now();

    let mut phase = Phase::start("kv specs");
    kv_txn_phase(&mut phase, &ep, &s, "specs").await;
    phase.finish();

    let mut phase = Phase::start("apply");
    {
        let ep = ep.clone();
        let st = s.clone();
        run_bounded(&mut phase, s.n, s.concurrency, s.phase_cap, move |i| {
            let ep = ep.clone();
            let st = st.clone();
            async move { apply_one(&ep, &st, i).await }
        })
        .await;
    }
    phase.finish();

    let mut phase = Phase::start("kv status");
    kv_txn_phase(&mut phase, &ep, &s, "status").await;
    phase.finish();

    let cold_wall = cold.elapsed();
    let cold_cpu = Cpu::now().since(cold_cpu);
    println!(
        "COLD START  {} specs in {:.2}s  cpu sim {:.2}s client {:.2}s total {:.2}s",
        s.n,
        cold_wall.as_secs_f64(),
        cold_cpu.sim,
        cold_cpu.client,
        cold_cpu.total
    );
    print_watchers("after cold start");

    // Settle: every allocation registered (service + sidecar per allocation).
    let mut phase = Phase::start("settle");
    let want = ep.jobs_registered.load(Ordering::Relaxed) * 2;
    let deadline = Instant::now() + s.phase_cap;
    let mut seen = 0;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let r = client
            .get(format!("{}/v1/catalog/services", ep.consul))
            .send()
            .await;
        if let Ok(r) = r
            && let Ok(v) = r.json::<Value>().await
        {
            phase.latencies.push(t0.elapsed());
            seen = v
                .as_object()
                .map(|m| m.len())
                .unwrap_or(0)
                .saturating_sub(1);
            if seen >= want {
                break;
            }
        } else {
            phase.failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Then until deployments are done: the job list index stays put for 2 s.
    let mut last = (0u64, Instant::now());
    while Instant::now() < deadline && last.1.elapsed() < Duration::from_secs(2) {
        let t0 = Instant::now();
        let r = client
            .get(format!("{}/v1/jobs?namespace=*&prefix=~none", ep.nomad))
            .send()
            .await;
        let index = r.ok().and_then(|r| {
            r.headers()
                .get("x-nomad-index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        });
        match index {
            Some(i) => {
                phase.latencies.push(t0.elapsed());
                if i != last.0 {
                    last = (i, Instant::now());
                }
            }
            None => phase.failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    phase.note = format!(
        "{seen}/{want} service names in the catalog, Nomad index {}",
        last.0
    );
    phase.finish();

    // Idle.
    let mut phase = Phase::start("idle");
    let before: Vec<u64> = counters
        .iter()
        .map(|(_, c)| c.responses.load(Ordering::Relaxed))
        .collect();
    tokio::time::sleep(s.idle).await;
    let during: Vec<u64> = counters
        .iter()
        .zip(before)
        .map(|((_, c), b)| c.responses.load(Ordering::Relaxed) - b)
        .collect();
    let idle_cpu = Cpu::now().since(phase.cpu);
    phase.note = format!(
        "sim CPU {:.2}% of one core; watcher responses {during:?}",
        idle_cpu.sim / s.idle.as_secs_f64().max(1e-9) * 100.0
    );
    phase.finish();

    // List every job with its Meta.
    let mut phase = Phase::start("list jobs");
    let mut bytes = 0;
    let mut items = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        match client
            .get(format!("{}/v1/jobs?namespace=*&meta=true", ep.nomad))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => {
                    phase.latencies.push(t0.elapsed());
                    bytes = b.len();
                    items = serde_json::from_slice::<Value>(&b)
                        .ok()
                        .and_then(|v| v.as_array().map(Vec::len))
                        .unwrap_or(0);
                }
                Err(_) => phase.failed += 1,
            },
            _ => phase.failed += 1,
        }
    }
    phase.note = format!(
        "{items} jobs, {:.1} MiB per listing",
        bytes as f64 / 1048576.0
    );
    phase.finish();
    print_watchers("at the end");

    stop.store(true, Ordering::Relaxed);
    for w in watchers {
        // Blocked watchers would return only at the end of their wait.
        w.abort();
        let _ = w.await;
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with no arguments too; only measure
    // when invoked through `cargo bench` (which passes `--bench`).
    if !std::env::args().any(|a| a == "--bench") {
        println!("sim_scale: run with `cargo bench -p steward-sim --bench sim_scale`");
        return;
    }
    let s = Settings {
        n: env_usize("SIM_SCALE_N", 10_000).max(1),
        concurrency: env_usize("SIM_SCALE_CONCURRENCY", 32).max(1),
        count: env_usize("SIM_SCALE_COUNT", 1),
        idle: Duration::from_secs(env_usize("SIM_SCALE_IDLE_SECS", 30) as u64),
        phase_cap: Duration::from_secs(env_usize("SIM_SCALE_PHASE_SECS", 180).max(1) as u64),
        namespaces: env_usize("SIM_SCALE_NAMESPACES", 10).max(1),
        watch_wait: Duration::from_secs(env_usize("SIM_SCALE_WATCH_WAIT_SECS", 300).max(1) as u64),
    };
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sim-rt")
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-rt")
        .enable_all()
        .build()
        .unwrap();
    // With `SIM_SCALE_PERSIST=1` the simulator keeps its state in a temporary data
    // directory (`steward dev --data-dir`): the debounced state-file writer runs too.
    let data_dir = (std::env::var("SIM_SCALE_PERSIST").as_deref() == Ok("1"))
        .then(|| tempfile::tempdir().unwrap());
    let config = SimConfig {
        data_dir: data_dir.as_ref().map(|d| d.path().to_path_buf()),
        ..SimConfig::default()
    };
    let sim = sim_rt.block_on(Sim::start(config)).unwrap();
    for k in 0..s.namespaces {
        sim.create_nomad_namespace(&format!("team-{k}"));
    }
    println!(
        "steward-sim scale: {} specs, {} in flight, {} allocation(s) per job, {:?} idle, \
         watch wait {:?}, state {}; simulator on 2 threads, client on 2 threads, {} cores",
        s.n,
        s.concurrency,
        s.count,
        s.idle,
        s.watch_wait,
        if data_dir.is_some() {
            "persisted"
        } else {
            "in memory"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    client_rt.block_on(bench(s, sim.consul_url(), sim.nomad_url(), sim.vault_url()));
    let statuses = sim.stats().statuses();
    println!("  simulator answers by status: {statuses:?}");
    sim_rt.block_on(sim.shutdown());
    if let Some(dir) = &data_dir {
        let size = std::fs::metadata(dir.path().join("state.json"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("  state file: {:.1} MiB", size as f64 / 1048576.0);
    }
}
