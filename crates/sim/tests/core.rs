//! The plumbing shared by all products: listeners, faults, counters, admin API,
//! persistence.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use steward_sim::{FaultRuleKind, Product, Sim, SimConfig};

async fn get(url: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

#[tokio::test]
async fn three_servers_listen_on_loopback_ephemeral_ports() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    for addr in [sim.consul_addr(), sim.nomad_addr(), sim.vault_addr()] {
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
    }
    let ports = [
        sim.consul_addr().port(),
        sim.nomad_addr().port(),
        sim.vault_addr().port(),
    ];
    assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_errors_use_the_products_error_format_and_are_counted() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.faults().inject(
        Product::Consul,
        FaultRuleKind::Error {
            status: 503,
            rate: 1.0,
        },
    );
    let resp = get(&format!("{}/v1/status/leader", sim.consul_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        sim.stats()
            .count(Product::Consul, "GET", steward_sim::stats::INJECTED_ROUTE),
        1
    );
    sim.faults().clear();
    let resp = get(&format!("{}/v1/status/leader", sim.consul_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sim.stats()
            .count(Product::Consul, "GET", "/v1/status/leader"),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_reset_fault_closes_the_connection_without_a_response() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.faults()
        .inject(Product::Nomad, FaultRuleKind::Reset { rate: 1.0 });
    let err = get(&format!("{}/v1/status/leader", sim.nomad_url()))
        .await
        .unwrap_err();
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn after_commit_faults_apply_the_write_and_lose_its_answer() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let client = reqwest::Client::new();
    let kv = |k: &str| format!("{}/v1/kv/{k}", sim.consul_url());
    sim.faults().add(steward_sim::FaultRule {
        id: 0,
        product: Product::Consul,
        path_prefix: Some("/v1/kv/".into()),
        methods: Some(vec!["PUT".into()]),
        count: Some(1),
        kind: FaultRuleKind::ErrorAfterCommit {
            status: 500,
            rate: 1.0,
        },
    });
    let resp = client.put(kv("a")).body("1").send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let stored = client.get(format!("{}?raw", kv("a"))).send().await.unwrap();
    assert_eq!(stored.text().await.unwrap(), "1", "the write landed");

    sim.faults().add(steward_sim::FaultRule {
        id: 0,
        product: Product::Consul,
        path_prefix: Some("/v1/kv/".into()),
        methods: Some(vec!["PUT".into()]),
        count: Some(1),
        kind: FaultRuleKind::ResetAfterCommit { rate: 1.0 },
    });
    let err = client.put(kv("b")).body("2").send().await.unwrap_err();
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let stored = client.get(format!("{}?raw", kv("b"))).send().await.unwrap();
    assert_eq!(stored.text().await.unwrap(), "2", "the write landed");
    // Both count as handled requests of their route, with the status the client saw.
    assert_eq!(
        sim.stats().count(Product::Consul, "PUT", "/v1/kv/{*key}"),
        2
    );
    assert_eq!(
        sim.stats()
            .count(Product::Consul, "PUT", steward_sim::stats::INJECTED_ROUTE),
        0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stall_fault_outlasts_a_short_client_timeout() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.faults().inject(
        Product::Consul,
        FaultRuleKind::Stall {
            stall_ms: 2_000,
            rate: 1.0,
        },
    );
    let err = reqwest::Client::new()
        .get(format!("{}/v1/status/leader", sim.consul_url()))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_driven_through_the_admin_endpoint() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let client = reqwest::Client::new();
    let admin = format!("{}/_sim/v1/faults", sim.vault_url());
    let resp = client
        .post(&admin)
        .body(r#"{"kind":"error","product":"consul","status":429}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = get(&format!("{}/v1/status/leader", sim.consul_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let resp = client
        .post(&admin)
        .body(r#"{"kind":"vaultSealed","sealed":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sim.faults().vault_sealed());
    let view: serde_json::Value = get(&admin).await.unwrap().json().await.unwrap();
    assert_eq!(view["rules"][0]["status"], 429);
    assert_eq!(view["vaultSealed"], true);
    assert_eq!(client.delete(&admin).send().await.unwrap().status(), 204);
    assert!(!sim.faults().vault_sealed());
    let resp = client
        .post(&admin)
        .body(r#"{"kind":"nonsense"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let stats: serde_json::Value = get(&format!("{}/_sim/v1/stats", sim.nomad_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"].is_null() && r["product"] == "consul")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn leader_loss_fails_consistent_requests_but_not_agent_local_ones() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.faults()
        .lose_leader(Product::Consul, Some(Duration::from_secs(60)));
    let resp = get(&format!("{}/v1/kv/x", sim.consul_url())).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), "No cluster leader");
    let resp = get(&format!("{}/v1/status/leader", sim.consul_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.faults().restore_leader(Product::Consul);
    let resp = get(&format!("{}/v1/kv/x", sim.consul_url())).await.unwrap();
    assert_ne!(resp.status(), 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_reported_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"{\"format\":\"steward-sim-state\",\"vers").unwrap();
    let config = SimConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let err = Sim::start(config).await.err().unwrap();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"format\":\"steward-sim-state\",\"vers"
    );
}

#[tokio::test]
async fn a_foreign_state_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), b"{\"hello\": 1}").unwrap();
    let config = SimConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let err = Sim::start(config).await.err().unwrap();
    assert!(err.to_string().contains("marker"), "{err}");
}

#[tokio::test]
async fn state_is_written_on_shutdown_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SimConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let sim = Sim::start(config()).await.unwrap();
    sim.shutdown().await;
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["format"], "steward-sim-state");
    for product in ["consul", "nomad", "vault"] {
        assert!(saved.get(product).is_some(), "{product} missing");
    }
    let sim = Sim::start(config()).await.unwrap();
    sim.shutdown().await;
}
