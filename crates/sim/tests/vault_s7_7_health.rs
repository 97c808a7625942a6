//! Reference §7.7 (sealed, standby, health): `sys/health` codes and overrides,
//! `sys/seal-status`, and the sealed fault.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use support::Vault;

#[tokio::test]
async fn health_matches_the_capture() {
    let v = Vault::version("1.7.3").await;
    v.check_fixture("sys-health", true).await;
    v.sim.shutdown().await;
}

#[tokio::test]
async fn current_versions_add_the_1_16_fields() {
    let v = Vault::start().await;
    let r = v.check_fixture("sys-health", false).await;
    let body = r.json();
    assert_eq!(body["version"], "1.18.3");
    assert_eq!(body["enterprise"], false);
    for field in [
        "echo_duration_ms",
        "clock_skew_ms",
        "replication_primary_canary_age_ms",
    ] {
        assert_eq!(body[field], 0, "{field}");
    }
    assert!(
        body["cluster_name"]
            .as_str()
            .unwrap()
            .starts_with("vault-cluster-")
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn health_needs_no_token_and_ignores_a_bad_one() {
    let v = Vault::start().await;
    assert_eq!(
        v.call(None, "GET", "/v1/sys/health", None).await.status,
        200
    );
    assert_eq!(
        v.call(Some("bogus"), "GET", "/v1/sys/health", None)
            .await
            .status,
        200
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn status_code_overrides_and_bad_parameters() {
    let v = Vault::start().await;
    let r = v
        .call(
            None,
            "GET",
            "/v1/sys/health?activecode=299&standbyok=true",
            None,
        )
        .await;
    assert_eq!(r.status, 299);
    assert_eq!(r.json()["sealed"], false);
    let r = v
        .call(None, "GET", "/v1/sys/health?activecode=204", None)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    for bad in ["activecode=abc", "standbyok=maybe", "sealedcode="] {
        let r = v
            .call(None, "GET", &format!("/v1/sys/health?{bad}"), None)
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json(), json!({"errors": []}));
    }
    let r = v.call(None, "POST", "/v1/sys/health", None).await;
    assert_eq!(r.status, 405);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn head_returns_the_status_without_a_body() {
    let v = Vault::start().await;
    let r = v.call(None, "HEAD", "/v1/sys/health", None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.is_empty());
    v.sim.faults().set_vault_sealed(true);
    let r = v.call(None, "HEAD", "/v1/sys/health", None).await;
    assert_eq!(r.status, 503);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_sealed_vault_answers_503_everywhere_but_health_and_seal_status() {
    let v = Vault::start().await;
    v.sim.faults().set_vault_sealed(true);
    let r = v.call(None, "GET", "/v1/sys/health", None).await;
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(body["sealed"], true);
    assert!(
        body.get("cluster_name").is_none(),
        "a sealed node does not know its cluster"
    );
    let r = v
        .call(None, "GET", "/v1/sys/health?sealedcode=200", None)
        .await;
    assert_eq!(r.status, 200);
    let r = v.call(None, "GET", "/v1/sys/seal-status", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sealed"], true);
    let r = v.root("LIST", "/v1/sys/policies/acl", None).await;
    assert_eq!(
        (r.status, r.errors()),
        (503, vec!["Vault is sealed".to_string()])
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    v.sim.faults().set_vault_sealed(false);
    let r = v.root("LIST", "/v1/sys/policies/acl", None).await;
    assert_eq!(r.status, 200);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn seal_status_and_init_describe_a_dev_server() {
    let v = Vault::start().await;
    let body = v
        .call(None, "GET", "/v1/sys/seal-status", None)
        .await
        .json();
    assert_eq!(body["type"], "shamir");
    assert_eq!((body["t"].clone(), body["n"].clone()), (json!(1), json!(1)));
    assert_eq!(body["storage_type"], "inmem");
    assert_eq!(body["initialized"], true);
    let health = v.call(None, "GET", "/v1/sys/health", None).await.json();
    assert_eq!(body["cluster_id"], health["cluster_id"]);
    let init = v.call(None, "GET", "/v1/sys/init", None).await;
    assert_eq!(init.json(), json!({"initialized": true}));
    v.sim.shutdown().await;
}
