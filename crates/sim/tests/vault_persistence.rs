//! Persistence of the Vault state (SIM.md): policies, roles, mounts and tokens
//! survive a restart; a malformed Vault section is refused; the index-reset fault
//! is harmless.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use std::time::Duration;
use steward_sim::{Error, Product, SimConfig};
use support::Vault;

fn config(dir: &std::path::Path) -> SimConfig {
    SimConfig {
        data_dir: Some(dir.to_path_buf()),
        persist_debounce: Duration::from_millis(20),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn policies_roles_mounts_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::with(config(dir.path())).await;
    let policy = "# managed-by: steward\npath \"a/*\" { capabilities = [\"read\"] }\n";
    v.put_policy("steward-a", policy).await;
    v.put_policy("default", policy).await;
    v.root(
        "POST",
        "/v1/sys/auth/jwt-extra",
        Some(json!({"type": "jwt", "description": "x"})),
    )
    .await;
    v.root("DELETE", "/v1/sys/auth/jwt-nomad", None).await;
    let r = v
        .root(
            "POST",
            "/v1/auth/jwt-extra/role/r",
            Some(json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "token_period": "30m"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let token = v.mint(&["steward-a"]).await;
    let health = v.call(None, "GET", "/v1/sys/health", None).await.json();
    let mounts = v.sim.vault_auth_mounts();
    let role = v.sim.vault_jwt_role("jwt-extra", "r");
    v.sim.shutdown().await;

    let v = Vault::with(config(dir.path())).await;
    assert_eq!(v.sim.vault_policy("steward-a").as_deref(), Some(policy));
    assert_eq!(v.sim.vault_policy("default").as_deref(), Some(policy));
    assert_eq!(
        v.sim.vault_auth_mounts(),
        mounts,
        "jwt-nomad stays disabled"
    );
    assert_eq!(v.sim.vault_jwt_role("jwt-extra", "r"), role);
    let r = v
        .root(
            "POST",
            "/v1/auth/token/lookup",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["data"]["policies"],
        json!(["default", "steward-a"])
    );
    let again = v.call(None, "GET", "/v1/sys/health", None).await.json();
    assert_eq!(again["cluster_id"], health["cluster_id"]);
    let list = v.root("GET", "/v1/sys/auth", None).await.json();
    assert_eq!(list["data"]["jwt-extra/"]["description"], "x");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_vault_section_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::with(config(dir.path())).await;
    v.put_policy("p", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    v.sim.shutdown().await;
    let path = steward_sim::persist::state_path(dir.path());
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["vault"]["policies"]["p"] = json!("path \"a\" { capabilities = [\"bogus\"] }");
    std::fs::write(&path, doc.to_string()).unwrap();
    let Err(err) = steward_sim::Sim::start(config(dir.path())).await else {
        panic!("a malformed state file was accepted");
    };
    assert!(
        matches!(&err, Error::CorruptState { reason, .. } if reason.contains("vault section") && reason.contains("invalid capability")),
        "{err}"
    );
    doc["vault"]["policies"]["p"] = json!("path \"a\" { capabilities = [\"read\"] }");
    doc["vault"]["surprise"] = json!(1);
    std::fs::write(&path, doc.to_string()).unwrap();
    let Err(err) = steward_sim::Sim::start(config(dir.path())).await else {
        panic!("a malformed state file was accepted");
    };
    assert!(matches!(err, Error::CorruptState { .. }), "{err}");
}

#[tokio::test]
async fn every_change_ticks_the_clock_and_identical_writes_do_not() {
    let v = Vault::start().await;
    let snapshot = |v: &Vault| -> u64 { v.sim.vault_index() };
    let before = snapshot(&v);
    v.put_policy("p", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    let after_write = snapshot(&v);
    assert!(after_write > before);
    v.put_policy("p", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    assert_eq!(
        snapshot(&v),
        after_write,
        "an identical write changes nothing"
    );
    v.root("LIST", "/v1/sys/policies/acl", None).await;
    assert_eq!(snapshot(&v), after_write, "reads change nothing");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn the_index_reset_fault_leaves_vault_working() {
    let v = Vault::start().await;
    v.put_policy("p", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    assert!(v.sim.faults().reset_indexes(Product::Vault));
    assert_eq!(
        v.root("GET", "/v1/sys/policies/acl/p", None).await.status,
        200
    );
    v.sim.shutdown().await;
}
