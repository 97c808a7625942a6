//! The operator in `xds` edge mode: specs' routes reach the edge control plane (no
//! `http-route` entries), the verdict becomes the `EdgeRoutes` condition, and a
//! conflict's loser serves again when the winner goes.
#![allow(clippy::unwrap_used)]

use steward_e2e::{Env, WAIT, spec, wait_for};
use steward_operator::EdgeMode;
use steward_operator::status::{EDGE_ROUTES, REASON_EDGE_CONFLICT};

fn routed(name: &str) -> String {
    spec(
        "storefront",
        name,
        "image: registry.example/storefront/web:1.0\nreplicas: 0\nport: 8080\nedge:\n  routes:\n    - {host: shop.example.com, pathPrefix: /api/}\n",
    )
}

async fn edge_condition(env: &Env, key: &str) -> Result<(String, String, String), String> {
    let doc = env.status(key).await.ok_or("no status yet")?;
    let c = doc
        .conditions
        .iter()
        .find(|c| c.type_ == EDGE_ROUTES)
        .ok_or_else(|| format!("no {EDGE_ROUTES} condition: {:?}", doc.conditions))?;
    Ok((
        format!("{:?}", c.status),
        c.reason.clone(),
        c.message.clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_mode_owns_no_http_route_and_reports_conflicts_by_age() {
    let mut env = Env::start().await;
    let mut config = env.config();
    config.edge.mode = EdgeMode::Xds;
    config.edge.xds_listen = Some("127.0.0.1:0".parse().unwrap());
    let _op = env.operator_with("a", config).await;

    env.put_spec("storefront/first", &routed("first")).await;
    let (status, reason, _) = wait_for("first serves", WAIT, || async {
        let c = edge_condition(&env, "storefront/first").await?;
        if c.1 == "Serving" {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Serving"));
    let doc = env.status("storefront/first").await.unwrap();
    assert!(
        doc.objects.iter().all(|o| o.kind != "http-route"),
        "{:?}",
        doc.objects
    );

    env.put_spec("storefront/second", &routed("second")).await;
    let (_, _, message) = wait_for("second loses", WAIT, || async {
        let c = edge_condition(&env, "storefront/second").await?;
        if c.1 == REASON_EDGE_CONFLICT {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert!(message.contains("storefront/first"), "{message}");

    env.delete_spec("storefront/first").await;
    wait_for("second serves once first is gone", WAIT, || async {
        let c = edge_condition(&env, "storefront/second").await?;
        if c.1 == "Serving" {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
}

/// The path end to end, through KV and the operator (not the edge library
/// directly): a real Envoy started from `steward edge envoy-bootstrap`'s output reaches a
/// real backend registered in the simulator's catalog, follows a route edit live, and
/// answers 404 once the spec is deleted.
mod real_envoy {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::Stdio;
    use std::time::Duration;

    use serde_json::json;
    use steward_e2e::{Env, WAIT, spec};
    use steward_edge::bootstrap::{BootstrapOptions, render};
    use steward_operator::EdgeMode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::process::Command;

    const HOST: &str = "shop.example.com";

    async fn free_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    /// A one-line HTTP/1.1 backend: `backend saw <path>`.
    async fn backend() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
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
                    let body = format!("backend saw {path}");
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

    /// Polls (bounded by `WAIT`) until `GET path` answers `status` with `body` in it.
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

    fn web(route: &str) -> String {
        spec(
            "storefront",
            "web",
            &format!(
                "image: registry.example/storefront/web:1.0\nreplicas: 0\nport: 8080\nedge:\n  routes:\n    - {{host: {HOST}, {route}}}\n"
            ),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pushed_spec_reaches_a_real_backend_through_envoy_follows_edits_and_goes_on_delete() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let envoy = match steward_edge::envoy_bin::find(&root) {
            Ok(path) => path,
            Err(why) => panic!("this test needs Envoy (scripts/install-test-deps.sh): {why}"),
        };
        let mut env = Env::start().await;
        let xds = free_port().await;
        let mut config = env.config();
        config.edge.mode = EdgeMode::Xds;
        config.edge.xds_listen = Some(xds);
        let _op = env.operator_with("a", config).await;

        // The backend: a passing instance of the spec's service in the catalog.
        let backend = backend().await;
        let register = json!({
            "Node": "node-1",
            "Address": "127.0.0.1",
            "Service": {"ID": "web-1", "Service": "web", "Address": "127.0.0.1", "Port": backend.port()},
            "Checks": [{"CheckID": "web-1-alive", "Name": "alive", "Status": "passing", "ServiceID": "web-1"}],
        });
        let resp = reqwest::Client::new()
            .put(format!("{}/v1/catalog/register", env.sim.consul_url()))
            .json(&register)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());

        env.put_spec("storefront/web", &web("pathPrefix: /api/, rewrite: /"))
            .await;

        let listen = free_port().await;
        let admin = free_port().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("envoy.yaml");
        std::fs::write(
            &file,
            render(&BootstrapOptions {
                xds,
                listen,
                admin,
                node_id: "edge-e2e".into(),
            }),
        )
        .unwrap();
        let _envoy = Command::new(envoy)
            .arg("-c")
            .arg(&file)
            .args(["--disable-hot-restart", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("Envoy starts");

        expect(listen, "/api/orders", 200, "backend saw /orders").await;

        // A route edit applies live: the new prefix routes, the old one is gone.
        env.put_spec("storefront/web", &web("pathPrefix: /v2/"))
            .await;
        expect(listen, "/v2/orders", 200, "backend saw /v2/orders").await;
        expect(listen, "/api/orders", 404, "").await;

        // The spec is deleted: its route is gone.
        env.delete_spec("storefront/web").await;
        expect(listen, "/v2/orders", 404, "").await;
    }
}
