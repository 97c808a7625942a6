//! `steward bench edge`: translation time and memory at 10k routes, and, with a real
//! Envoy and 1k routes, the time from a spec edit or an endpoint change to Envoy's ACK.
//! A benchmark measures; it asserts nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bootstrap::{BootstrapOptions, render};
use crate::resources::{Snapshot, TypeKind};
use crate::translate::{EdgeSpec, Endpoint, Input, translate};
use crate::{Edge, Metrics};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Routes (one spec, host and cluster each) of the translation and memory figures.
    pub translate_routes: usize,
    /// Routes loaded into the real Envoy.
    pub envoy_routes: usize,
    /// Edits (and endpoint changes) timed.
    pub samples: usize,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Bound of every wait.
    pub timeout: Duration,
}

/// Milliseconds: median, 90th percentile, worst.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms.get(i).copied().unwrap_or(f64::NAN)
        };
        Self {
            samples: ms.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Routes translated.
    pub translate_routes: usize,
    /// Translation (specs + endpoints → plan and verdicts).
    pub translate: Latency,
    /// Encoding the plan as protobuf with versions.
    pub encode: Latency,
    /// Resident memory the edge added holding that many routes (specs, plan, verdicts,
    /// snapshot), MiB.
    pub memory_mib: f64,
    /// Routes the real Envoy holds.
    pub envoy_routes: usize,
    /// Spec edit → Envoy's ACK of the route configuration carrying it.
    pub spec_edit_to_ack: Latency,
    /// Endpoint change → Envoy's ACK of the endpoints carrying it.
    pub endpoint_change_to_ack: Latency,
}

impl BenchReport {
    /// A plain table.
    #[must_use]
    pub fn table(&self) -> String {
        let row = |name: &str, l: &Latency| {
            format!(
                "{name:<44} p50 {:>8.2} ms  p90 {:>8.2} ms  max {:>8.2} ms  (n={})\n",
                l.p50_ms, l.p90_ms, l.max_ms, l.samples
            )
        };
        let mut out = String::new();
        out.push_str(&row(
            &format!("translate {} routes+clusters", self.translate_routes),
            &self.translate,
        ));
        out.push_str(&row(
            &format!("encode {} routes+clusters", self.translate_routes),
            &self.encode,
        ));
        out.push_str(&format!(
            "{:<44} {:.1} MiB\n",
            format!("edge memory at {} routes", self.translate_routes),
            self.memory_mib
        ));
        out.push_str(&row(
            &format!("spec edit -> Envoy ACK ({} routes)", self.envoy_routes),
            &self.spec_edit_to_ack,
        ));
        out.push_str(&row(
            &format!(
                "endpoint change -> Envoy ACK ({} routes)",
                self.envoy_routes
            ),
            &self.endpoint_change_to_ack,
        ));
        out
    }
}

fn spec(i: usize, prefix: &str) -> EdgeSpec {
    let route = serde_json::json!([{"host": format!("svc-{i}.example.com"), "pathPrefix": prefix, "timeout": "5s", "retries": 2}]);
    EdgeSpec {
        key: format!("bench/svc-{i}"),
        create_index: i as u64 + 1,
        service: format!("svc-{i}"),
        port: 8080,
        routes: serde_json::from_value(route).unwrap_or_default(),
    }
}

fn endpoints(i: usize, port: u16) -> Vec<Endpoint> {
    vec![Endpoint {
        address: format!("127.0.{}.{}", (i / 250) % 250, i % 250 + 1),
        port,
    }]
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs the benchmark.
///
/// # Errors
/// A sentence saying what could not be measured (Envoy did not start or ack in time).
pub async fn run(config: &BenchConfig) -> Result<BenchReport, String> {
    // Translation and encoding, pure.
    let specs: BTreeMap<String, EdgeSpec> = (0..config.translate_routes)
        .map(|i| {
            let s = spec(i, "/");
            (s.key.clone(), s)
        })
        .collect();
    let eps: BTreeMap<String, Vec<Endpoint>> = (0..config.translate_routes)
        .map(|i| (format!("svc-{i}"), endpoints(i, 8080)))
        .collect();
    let mut translate_ms = Vec::new();
    let mut encode_ms = Vec::new();
    for round in 0..5u64 {
        let t = std::time::Instant::now();
        let tr = translate(Input {
            specs: &specs,
            endpoints: &eps,
            listeners: &[],
            quarantine: &BTreeMap::new(),
        });
        translate_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = std::time::Instant::now();
        let snap = Snapshot::from_plan(&tr.plan, round);
        encode_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(snap);
    }

    // Memory of an edge holding them.
    let before = rss_mib();
    let edge = Edge::new(Vec::new(), Metrics::unregistered());
    for s in specs.into_values() {
        edge.upsert_spec(s);
    }
    for (service, e) in eps {
        edge.set_endpoints(&service, e);
    }
    edge.rebuild();
    let memory_mib = rss_mib() - before;
    drop(edge);

    let (spec_edit_to_ack, endpoint_change_to_ack) = with_envoy(config).await?;
    Ok(BenchReport {
        translate_routes: config.translate_routes,
        translate: Latency::of(translate_ms),
        encode: Latency::of(encode_ms),
        memory_mib,
        envoy_routes: config.envoy_routes,
        spec_edit_to_ack,
        endpoint_change_to_ack,
    })
}

async fn free_port() -> Result<std::net::SocketAddr, String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

/// Waits for an ACK of `kind` at a generation above `after`.
async fn acked(
    acks: &mut tokio::sync::broadcast::Receiver<(TypeKind, u64)>,
    kind: TypeKind,
    after: u64,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, acks.recv()).await {
            Err(_) => return Err(format!("Envoy did not ack {} in {timeout:?}", kind.label())),
            Ok(Ok((k, g))) if k == kind && g > after => return Ok(()),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

async fn with_envoy(config: &BenchConfig) -> Result<(Latency, Latency), String> {
    let edge = Edge::new(Vec::new(), Metrics::unregistered());
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (xds, listener) = crate::server::bind(free_port().await?)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(crate::server::serve(
        edge.clone(),
        listener,
        shutdown.clone(),
    ));
    {
        let (edge, token) = (edge.clone(), shutdown.clone());
        tokio::spawn(async move { edge.run_rebuilder(token).await });
    }
    for i in 0..config.envoy_routes {
        edge.upsert_spec(spec(i, "/"));
        edge.set_endpoints(&format!("svc-{i}"), endpoints(i, 8080));
    }
    edge.rebuild();
    let mut acks = edge.acks();

    let dir = std::env::temp_dir().join(format!("steward-bench-edge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("envoy.yaml");
    std::fs::write(
        &file,
        render(&BootstrapOptions {
            xds,
            listen: free_port().await?,
            admin: free_port().await?,
            node_id: "bench".into(),
        }),
    )
    .map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(&config.envoy)
        .arg("-c")
        .arg(&file)
        .args(["--disable-hot-restart", "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start Envoy {}: {e}", config.envoy.display()))?;

    // Converged: routes of the current snapshot acked.
    let generation = edge.snapshot().generation;
    acked(
        &mut acks,
        TypeKind::Route,
        generation.saturating_sub(1),
        config.timeout,
    )
    .await?;

    let mut edits = Vec::new();
    for n in 0..config.samples {
        let i = (n * 7919) % config.envoy_routes.max(1);
        let before = edge.snapshot().generation;
        let t = Instant::now();
        edge.upsert_spec(spec(i, &format!("/v{n}/")));
        acked(&mut acks, TypeKind::Route, before, config.timeout).await?;
        edits.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut changes = Vec::new();
    for n in 0..config.samples {
        let i = (n * 7919) % config.envoy_routes.max(1);
        let before = edge.snapshot().generation;
        let t = Instant::now();
        edge.set_endpoints(
            &format!("svc-{i}"),
            endpoints(i, 9000 + u16::try_from(n % 1000).unwrap_or(0)),
        );
        acked(&mut acks, TypeKind::Endpoint, before, config.timeout).await?;
        changes.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((Latency::of(edits), Latency::of(changes)))
}
