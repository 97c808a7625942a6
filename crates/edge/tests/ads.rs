//! The ADS server over a real gRPC connection on loopback, with tonic clients playing
//! Envoy: several proxies, ACK state per proxy, NACK handling, stale nonces.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use prometheus_client::registry::Registry;
use prost::Message;
use serde_json::json;
use steward_edge::resources::TypeKind;
use steward_edge::{Edge, EdgeEvent, EdgeListener, EdgeSpec, Metrics};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

const WAIT: Duration = Duration::from_secs(10);

struct Proxy {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
    node: String,
}

impl Proxy {
    async fn connect(addr: std::net::SocketAddr, node: &str) -> Proxy {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connects");
        let (tx, rx) = mpsc::channel(16);
        let rx = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        Proxy {
            tx,
            rx,
            node: node.to_owned(),
        }
    }

    async fn send(&self, kind: TypeKind, version: &str, nonce: &str, names: &[&str]) {
        self.tx
            .send(DiscoveryRequest {
                version_info: version.into(),
                node: Some(Node {
                    id: self.node.clone(),
                    ..Default::default()
                }),
                resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
                type_url: kind.url().into(),
                response_nonce: nonce.into(),
                ..Default::default()
            })
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response in time")
            .expect("stream ok")
            .expect("not ended")
    }

    async fn ack(&self, resp: &DiscoveryResponse, names: &[&str]) {
        let kind = TypeKind::from_url(&resp.type_url).expect("known type");
        self.send(kind, &resp.version_info, &resp.nonce, names)
            .await;
    }

    /// Subscribes to everything and acks until routes arrive; returns the route response.
    async fn converge(&mut self) -> DiscoveryResponse {
        self.send(TypeKind::Cluster, "", "", &[]).await;
        self.send(TypeKind::Listener, "", "", &[]).await;
        loop {
            let resp = self.recv().await;
            let kind = TypeKind::from_url(&resp.type_url).expect("known type");
            match kind {
                TypeKind::Cluster => {
                    self.ack(&resp, &[]).await;
                    self.send(TypeKind::Endpoint, "", "", &["web"]).await;
                }
                TypeKind::Endpoint => self.ack(&resp, &["web"]).await,
                TypeKind::Listener => {
                    self.ack(&resp, &[]).await;
                    self.send(TypeKind::Route, "", "", &["steward-edge"]).await;
                }
                TypeKind::Route => {
                    self.ack(&resp, &["steward-edge"]).await;
                    return resp;
                }
            }
        }
    }
}

fn spec(key: &str, index: u64, service: &str, routes: serde_json::Value) -> EdgeSpec {
    EdgeSpec {
        key: key.into(),
        create_index: index,
        service: service.into(),
        port: 8080,
        routes: serde_json::from_value(routes).expect("routes"),
    }
}

async fn start() -> (Edge, std::net::SocketAddr, CancellationToken, Registry) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let edge = Edge::new(
        vec![EdgeListener {
            name: "edge-http".into(),
            address: "127.0.0.1:10080".parse().expect("addr"),
        }],
        metrics,
    );
    let shutdown = CancellationToken::new();
    let (addr, listener) = steward_edge::server::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("binds");
    tokio::spawn(steward_edge::server::serve(
        edge.clone(),
        listener,
        shutdown.clone(),
    ));
    let rebuilder = edge.clone();
    let token = shutdown.clone();
    tokio::spawn(async move { rebuilder.run_rebuilder(token).await });
    (edge, addr, shutdown, registry)
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metrics_text(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encodes");
    out
}

#[tokio::test]
async fn two_proxies_converge_and_each_has_its_own_acked_state() {
    let (edge, addr, shutdown, registry) = start().await;
    edge.upsert_spec(spec(
        "shop/web",
        1,
        "web",
        json!([{"host": "shop.example.com"}]),
    ));
    let mut a = Proxy::connect(addr, "edge-a").await;
    let mut b = Proxy::connect(addr, "edge-b").await;
    let ra = a.converge().await;
    let rb = b.converge().await;
    assert_eq!(ra.version_info, rb.version_info);
    let rc = RouteConfiguration::decode(ra.resources[0].value.as_slice()).expect("routes");
    assert_eq!(rc.virtual_hosts[0].name, "shop.example.com");

    wait_until("both proxies acked the spec", || {
        edge.ack_state("shop/web").acked == 2
    })
    .await;
    let proxies = edge.proxies();
    let mut nodes: Vec<_> = proxies.iter().map(|p| p.node_id.clone()).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["edge-a", "edge-b"]);
    assert!(
        proxies
            .iter()
            .all(|p| p.types["rds"].acked_version.as_deref() == Some(ra.version_info.as_str()))
    );
    let text = metrics_text(&registry);
    assert!(text.contains("steward_edge_connected_proxies 2"), "{text}");
    assert!(
        text.contains("steward_edge_pushes_total{type=\"rds\"} 2"),
        "{text}"
    );

    // A route edit reaches both; only routes are pushed.
    edge.upsert_spec(spec(
        "shop/web",
        1,
        "web",
        json!([{"host": "shop.example.com", "pathPrefix": "/v2/"}]),
    ));
    for p in [&mut a, &mut b] {
        let resp = p.recv().await;
        assert_eq!(TypeKind::from_url(&resp.type_url), Some(TypeKind::Route));
        p.ack(&resp, &["steward-edge"]).await;
    }
    wait_until("both proxies acked the edit", || {
        edge.ack_state("shop/web").all_acked()
    })
    .await;

    // One proxy leaves: the other is the only one counted.
    drop(a);
    wait_until("the gone proxy is dropped", || edge.proxies().len() == 1).await;
    assert_eq!(edge.ack_state("shop/web").proxies, 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_route_nack_withdraws_the_named_virtual_host_and_marks_its_spec() {
    let (edge, addr, shutdown, registry) = start().await;
    let mut events = edge.events();
    edge.upsert_spec(spec(
        "shop/web",
        1,
        "web",
        json!([{"host": "shop.example.com"}]),
    ));
    let mut p = Proxy::connect(addr, "edge-1").await;
    p.converge().await;

    edge.upsert_spec(spec(
        "bad/one",
        2,
        "one",
        json!([{"host": "bad.example.com"}]),
    ));
    // Clusters, endpoints (only `web` is asked for here), then routes.
    let mut routes = None;
    while routes.is_none() {
        let resp = p.recv().await;
        match TypeKind::from_url(&resp.type_url).expect("known") {
            TypeKind::Route => routes = Some(resp),
            TypeKind::Endpoint => p.ack(&resp, &["web"]).await,
            TypeKind::Cluster | TypeKind::Listener => p.ack(&resp, &[]).await,
        }
    }
    let routes = routes.expect("routes");
    let good = edge
        .proxies()
        .first()
        .and_then(|x| x.types["rds"].acked_version.clone())
        .expect("an acked version");
    // A stale nonce is ignored: no answer, no state change.
    p.send(TypeKind::Route, "whatever", "0", &["steward-edge"])
        .await;
    // Envoy refuses, naming the virtual host.
    p.tx.send(DiscoveryRequest {
        version_info: good.clone(),
        node: None,
        resource_names: vec!["steward-edge".into()],
        type_url: TypeKind::Route.url().into(),
        response_nonce: routes.nonce.clone(),
        error_detail: Some(Status {
            code: 3,
            message: "Proto constraint validation failed: virtual host bad.example.com: boom"
                .into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("send");

    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("received");
    assert_eq!(
        event,
        EdgeEvent::Nack {
            node_id: "edge-1".into(),
            kind: "rds",
            version: routes.version_info.clone(),
            message: "Proto constraint validation failed: virtual host bad.example.com: boom"
                .into(),
            specs: vec!["bad/one".into()],
        }
    );
    // The next route configuration leaves the refused host out; the good spec stays.
    let mut next = p.recv().await;
    while TypeKind::from_url(&next.type_url) != Some(TypeKind::Route) {
        p.ack(&next, &["web"]).await;
        next = p.recv().await;
    }
    let rc = RouteConfiguration::decode(next.resources[0].value.as_slice()).expect("routes");
    let hosts: Vec<_> = rc.virtual_hosts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(hosts, vec!["shop.example.com"]);
    let verdict = edge.verdict("bad/one").expect("verdict");
    assert!(verdict.serving.is_empty());
    assert!(
        verdict.rejected[0].reason.contains("Envoy edge-1 refused"),
        "{verdict:?}"
    );
    assert!(edge.verdict("shop/web").expect("verdict").all_serving());
    let proxy = edge.proxies().into_iter().next().expect("proxy");
    assert_eq!(
        proxy.last_nack().map(|n| n.version.clone()),
        Some(routes.version_info.clone())
    );
    assert_eq!(proxy.types["rds"].acked_version, Some(good));
    let text = metrics_text(&registry);
    assert!(
        text.contains("steward_edge_nacks_total{type=\"rds\"} 1"),
        "{text}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_verdict_change_names_the_keys_and_the_loser_serves_when_the_winner_goes() {
    let (edge, _addr, shutdown, _registry) = start().await;
    let mut changes = edge.verdict_changes();
    edge.upsert_spec(spec("a/old", 1, "old", json!([{"host": "x.example.com"}])));
    edge.upsert_spec(spec("b/new", 2, "new", json!([{"host": "x.example.com"}])));
    wait_until("both verdicts", || {
        edge.verdict("b/new")
            .is_some_and(|v| !v.conflicts.is_empty())
    })
    .await;
    assert_eq!(
        edge.verdict("b/new").expect("v").conflicts[0].winner,
        "a/old"
    );
    while changes.try_recv().is_ok() {}
    edge.remove_spec("a/old");
    let keys = tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change")
        .expect("received");
    assert!(keys.contains(&"b/new".to_owned()), "{keys:?}");
    assert!(keys.contains(&"a/old".to_owned()), "{keys:?}");
    assert!(edge.verdict("b/new").expect("v").all_serving());
    shutdown.cancel();
}
