//! Simulator throughput on loopback: Consul KV PUT and GET (requests per second,
//! latency p50/p99), blocking-query wake-up latency (from the start of a PUT to the
//! blocked GET returning), Nomad job registration throughput, and Vault policy reads.
//!
//! A benchmark that prints figures, not a test: `cargo bench -p steward-sim --bench
//! sim_throughput`. Every loop is bounded in count and time. Environment:
//! `SIM_BENCH_REQUESTS` (default 5000 per case), `SIM_BENCH_CONCURRENCY` (default 8),
//! `SIM_BENCH_WAKEUPS` (default 200), `SIM_BENCH_CASE_SECS` (time cap per case,
//! default 60).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use steward_sim::{Sim, SimConfig};

struct Settings {
    requests: usize,
    concurrency: usize,
    wakeups: usize,
    case_limit: Duration,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// The outcome of one case.
struct Figures {
    name: &'static str,
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    note: String,
}

impl Figures {
    fn print(&mut self) {
        self.latencies.sort();
        let pct = |p: usize| -> String {
            if self.latencies.is_empty() {
                return "-".into();
            }
            let i = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
            format!("{:.2} ms", self.latencies[i].as_secs_f64() * 1e3)
        };
        let rate = if self.elapsed.is_zero() {
            0.0
        } else {
            self.ok as f64 / self.elapsed.as_secs_f64()
        };
        println!(
            "{:<34} {:>7} ok {:>5} failed {:>10.0} req/s   p50 {:>10}   p99 {:>10}  {}",
            self.name,
            self.ok,
            self.failed,
            rate,
            pct(50),
            pct(99),
            self.note
        );
    }
}

/// Runs `requests` calls of `one(i)` with `concurrency` workers, stopping at the
/// time cap. `one` returns whether the call succeeded.
async fn run_case<F, Fut>(name: &'static str, s: &Settings, one: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + s.case_limit;
    let mut workers = Vec::new();
    for _ in 0..s.concurrency {
        let one = one.clone();
        let next = next.clone();
        let total = s.requests;
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                if one(i).await {
                    lat.push(t0.elapsed());
                } else {
                    failed += 1;
                }
            }
            (lat, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (lat, f) = w.await.unwrap();
        latencies.extend(lat);
        failed += f;
    }
    let elapsed = start.elapsed();
    let note = if latencies.len() + failed < s.requests {
        format!("(stopped at the {:?} cap)", s.case_limit)
    } else {
        String::new()
    };
    Figures {
        name,
        ok: latencies.len(),
        failed,
        elapsed,
        latencies,
        note,
    }
}

async fn kv_put(client: &reqwest::Client, base: &str, key: &str, value: String) -> bool {
    match client
        .put(format!("{base}/v1/kv/{key}"))
        .body(value)
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Wake-up latency: a blocked GET on a key, then a PUT; the time from the start of
/// the PUT to the GET returning with the new index.
async fn wakeups(client: &reqwest::Client, base: &str, s: &Settings) -> Figures {
    let start = Instant::now();
    let deadline = start + s.case_limit;
    let mut latencies = Vec::new();
    let mut failed = 0;
    let key = "bench/watch";
    if !kv_put(client, base, key, "0".into()).await {
        return Figures {
            name: "consul blocking-query wake-up",
            ok: 0,
            failed: s.wakeups,
            elapsed: start.elapsed(),
            latencies,
            note: "(KV PUT failed)".into(),
        };
    }
    for i in 0..s.wakeups {
        if Instant::now() >= deadline {
            break;
        }
        let index = match client.get(format!("{base}/v1/kv/{key}")).send().await {
            Ok(r) => r
                .headers()
                .get("x-consul-index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
            Err(_) => None,
        };
        let Some(index) = index else {
            failed += 1;
            continue;
        };
        let watcher = {
            let client = client.clone();
            let url = format!("{base}/v1/kv/{key}?index={index}&wait=10s");
            tokio::spawn(async move {
                let r = client
                    .get(url)
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await
                    .ok()?;
                let new_index = r
                    .headers()
                    .get("x-consul-index")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                r.bytes().await.ok()?;
                Some((Instant::now(), new_index))
            })
        };
        // Let the watcher reach the server and block.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        let put_ok = kv_put(client, base, key, format!("{}", i + 1)).await;
        match watcher.await {
            Ok(Some((returned, Some(new_index)))) if put_ok && new_index > index => {
                latencies.push(returned.saturating_duration_since(t0));
            }
            _ => failed += 1,
        }
    }
    Figures {
        name: "consul blocking-query wake-up",
        ok: latencies.len(),
        failed,
        elapsed: start.elapsed(),
        latencies,
        note: "(latency only; rate = wake-ups/s incl. 20 ms settle)".into(),
    }
}

fn job(id: &str, n: usize) -> serde_json::Value {
    serde_json::json!({
        "Job": {
            "ID": id,
            "Name": id,
            "Type": "service",
            "Namespace": "default",
            "Datacenters": ["dc1"],
            "Meta": {"bench": n.to_string()},
            "TaskGroups": [{
                "Name": id,
                "Count": 1,
                "Tasks": [{
                    "Name": "app",
                    "Driver": "raw_exec",
                    "Config": {"command": "/bin/sleep", "args": ["3600"]},
                    "Resources": {"CPU": 100, "MemoryMB": 64}
                }]
            }]
        }
    })
}

async fn bench() {
    let s = Settings {
        requests: env_usize("SIM_BENCH_REQUESTS", 5000),
        concurrency: env_usize("SIM_BENCH_CONCURRENCY", 8),
        wakeups: env_usize("SIM_BENCH_WAKEUPS", 200),
        case_limit: Duration::from_secs(env_usize("SIM_BENCH_CASE_SECS", 60) as u64),
    };
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(s.concurrency * 2)
        .build()
        .unwrap();
    println!(
        "steward-sim throughput on loopback: {} requests per case, {} concurrent, {} wake-ups",
        s.requests, s.concurrency, s.wakeups
    );

    let consul = sim.consul_url();
    let c = client.clone();
    let base = consul.clone();
    let mut put = run_case("consul KV PUT", &s, move |i| {
        let c = c.clone();
        let base = base.clone();
        async move { kv_put(&c, &base, &format!("bench/k{}", i % 100), format!("v{i}")).await }
    })
    .await;
    put.print();

    let c = client.clone();
    let base = consul.clone();
    let mut get = run_case("consul KV GET", &s, move |i| {
        let c = c.clone();
        let base = base.clone();
        async move {
            match c
                .get(format!("{base}/v1/kv/bench/k{}", i % 100))
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    get.print();

    wakeups(&client, &consul, &s).await.print();

    let nomad = sim.nomad_url();
    let c = client.clone();
    let mut register = run_case("nomad job register", &s, move |i| {
        let c = c.clone();
        let base = nomad.clone();
        async move {
            let id = format!("bench-{}", i % 200);
            match c
                .put(format!("{base}/v1/jobs"))
                .json(&job(&id, i))
                .send()
                .await
            {
                Ok(r) => r.status().is_success(),
                Err(_) => false,
            }
        }
    })
    .await;
    register.print();

    let vault = sim.vault_url();
    let policy =
        serde_json::json!({"policy": "path \"secret/data/bench/*\" { capabilities = [\"read\"] }"});
    let _ = client
        .put(format!("{vault}/v1/sys/policies/acl/bench"))
        .header("X-Vault-Token", "root")
        .json(&policy)
        .send()
        .await;
    let c = client.clone();
    let mut vault_read = run_case("vault policy GET", &s, move |_| {
        let c = c.clone();
        let base = vault.clone();
        async move {
            match c
                .get(format!("{base}/v1/sys/policies/acl/bench"))
                .header("X-Vault-Token", "root")
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    vault_read.print();

    sim.shutdown().await;
}

fn main() {
    // `cargo test --benches` runs bench targets with no arguments too; only measure
    // when invoked through `cargo bench` (which passes `--bench`).
    if !std::env::args().any(|a| a == "--bench") {
        println!("sim_throughput: run with `cargo bench -p steward-sim --bench sim_throughput`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}
