//! Starting the simulator and building clients pointed at it.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use steward_hashi::{
    BackoffConfig, ConsulClient, ConsulConfig, NomadClient, NomadConfig, RetryPolicy, VaultClient,
    VaultConfig,
};
use steward_sim::{Sim, SimConfig, SimHandle};

pub async fn sim() -> SimHandle {
    sim_with(SimConfig::default()).await
}

pub async fn sim_with(config: SimConfig) -> SimHandle {
    bounded(Sim::start(config)).await.unwrap()
}

/// Every wait in these tests is bounded.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("operation finished within 30 s")
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(
        3,
        BackoffConfig::new(Duration::from_millis(10), Duration::from_millis(50)),
    )
}

pub fn consul(h: &SimHandle) -> ConsulClient {
    consul_with(h, None)
}

pub fn consul_with(h: &SimHandle, token: Option<&str>) -> ConsulClient {
    let mut c = ConsulConfig::default()
        .with_address(&format!("http://{}", h.consul_addr()))
        .unwrap()
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(5));
    if let Some(t) = token {
        c = c.with_token(t);
    }
    ConsulClient::new(c).unwrap()
}

pub fn nomad(h: &SimHandle) -> NomadClient {
    nomad_with(h, None)
}

pub fn nomad_with(h: &SimHandle, token: Option<&str>) -> NomadClient {
    let mut c = NomadConfig::default()
        .with_address(&format!("http://{}", h.nomad_addr()))
        .unwrap()
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(5));
    if let Some(t) = token {
        c = c.with_token(t);
    }
    NomadClient::new(c).unwrap()
}

pub fn vault(h: &SimHandle) -> VaultClient {
    vault_with(h, "root")
}

pub fn vault_with(h: &SimHandle, token: &str) -> VaultClient {
    let c = VaultConfig::default()
        .with_address(&format!("http://{}", h.vault_addr()))
        .unwrap()
        .with_token(token)
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(5));
    VaultClient::new(c).unwrap()
}

/// A small service job like the renderer produces.
pub fn job(id: &str, ns: &str, image: &str, count: u64) -> serde_json::Value {
    serde_json::json!({
        "ID": id, "Name": id, "Namespace": ns, "Type": "service", "Datacenters": ["dc1"],
        "Meta": {"steward.managed-by": "steward", "steward.spec": format!("{ns}/{id}")},
        "TaskGroups": [{
            "Name": id, "Count": count,
            "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": image},
                       "Resources": {"CPU": 100, "MemoryMB": 128}}]
        }]
    })
}
