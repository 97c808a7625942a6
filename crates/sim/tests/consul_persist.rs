//! Consul state across restarts (SIM.md persistence contract): KV, sessions, config
//! entries and the catalog come back with their indexes, and the clock continues.
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::json;
use std::path::Path;

async fn start_in(dir: &Path) -> steward_sim::SimHandle {
    let dir = dir.to_path_buf();
    start_with(move |c| c.data_dir = Some(dir)).await
}

#[tokio::test]
async fn kv_sessions_config_entries_and_catalog_survive_a_restart_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_in(dir.path()).await;
    let c = Consul::new(&sim);
    c.put("/v1/kv/steward/specs/trading/web?flags=5", "spec")
        .await;
    c.put("/v1/kv/steward/specs/trading/gone", "x").await;
    c.delete("/v1/kv/steward/specs/trading/gone").await;
    let sid = c
        .put(
            "/v1/session/create",
            "{\"Name\":\"leader\",\"TTL\":\"30s\"}",
        )
        .await
        .json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    c.put(&format!("/v1/kv/steward/leader?acquire={sid}"), "me")
        .await;
    c.put_json(
        "/v1/config",
        &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    c.put_json("/v1/config", &json!({"Kind": "service-intentions", "Name": "web",
        "Sources": [{"Name": "api", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]})).await;
    c.put_json(
        "/v1/config",
        &json!({"Kind": "http-route", "Name": "trading-web",
        "Parents": [{"Name": "edge"}], "Rules": [{"Services": [{"Name": "web"}]}]}),
    )
    .await;
    c.put_json(
        "/v1/agent/service/register",
        &json!({"ID": "web-1", "Name": "web", "Port": 80, "Address": "127.0.0.1"}),
    )
    .await;

    let kv = c.get("/v1/kv/steward/?recurse").await;
    let sessions = c.get("/v1/session/list").await.json();
    let intentions = c.get("/v1/config/service-intentions/web").await.json();
    let route = c.get("/v1/config/http-route/trading-web").await.json();
    let health = c.get("/v1/health/service/web").await.json();
    let clock = sim.consul_index();
    sim.shutdown().await;

    let sim = start_in(dir.path()).await;
    let c = Consul::new(&sim);
    assert_eq!(sim.consul_index(), clock);
    let kv2 = c.get("/v1/kv/steward/?recurse").await;
    assert_eq!(kv2.json(), kv.json());
    assert_eq!(kv2.index(), kv.index(), "the tombstone survived too");
    assert_eq!(c.get("/v1/session/list").await.json(), sessions);
    assert_eq!(
        c.get("/v1/config/service-intentions/web").await.json(),
        intentions
    );
    assert_eq!(
        c.get("/v1/config/http-route/trading-web").await.json(),
        route
    );
    assert_eq!(c.get("/v1/health/service/web").await.json(), health);
    // The session still holds its lock and can be renewed; the clock continues.
    assert_eq!(
        c.put(&format!("/v1/session/renew/{sid}"), "").await.status,
        200
    );
    assert_eq!(
        c.get("/v1/kv/steward/leader").await.json()[0]["Session"],
        json!(sid)
    );
    c.put("/v1/kv/steward/after", "x").await;
    assert_eq!(c.get("/v1/kv/steward/after").await.index(), clock + 1);
    // Graph rules still apply to restored entries.
    let r = c
        .put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "tcp"}),
        )
        .await;
    assert_eq!(r.status, 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_consul_section_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_in(dir.path()).await;
    sim.shutdown().await;
    let path = dir.path().join("state.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["consul"]["data"]["kv"] = json!({"k": {"value": "!!!not base64", "flags": 0}});
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let dir2 = dir.path().to_path_buf();
    let err = steward_sim::Sim::start(steward_sim::SimConfig {
        data_dir: Some(dir2),
        ..Default::default()
    })
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("consul section"), "{msg}");
    assert!(msg.contains("malformed consul state"), "{msg}");
}
