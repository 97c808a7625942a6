//! Reference §8 pitfalls that concern Vault: 8.15 (names, protected policies, empty
//! lists, 404s, roles) and 8.18 (overload answers in Vault's error format).
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use steward_sim::{FaultRuleKind, Product};
use support::Vault;

const POLICY: &str = "path \"secret/data/x/*\" { capabilities = [\"read\"] }";

/// 8.15: "policy names are lower-cased".
#[tokio::test]
async fn p8_15_a_mixed_case_name_is_stored_lower_case() {
    let v = Vault::start().await;
    v.put_policy("Steward-Trading-Api", POLICY).await;
    let keys = v.root("LIST", "/v1/sys/policies/acl", None).await.json()["data"]["keys"].clone();
    assert!(
        keys.as_array()
            .unwrap()
            .contains(&json!("steward-trading-api"))
    );
    assert!(
        !keys
            .as_array()
            .unwrap()
            .contains(&json!("Steward-Trading-Api"))
    );
    v.sim.shutdown().await;
}

/// 8.15: "`root`/`default` are protected".
#[tokio::test]
async fn p8_15_root_and_default_are_protected() {
    let v = Vault::start().await;
    assert_eq!(
        v.root("DELETE", "/v1/sys/policies/acl/root", None)
            .await
            .status,
        400
    );
    assert_eq!(
        v.root("DELETE", "/v1/sys/policies/acl/default", None)
            .await
            .status,
        400
    );
    let r = v
        .root(
            "PUT",
            "/v1/sys/policies/acl/root",
            Some(json!({"policy": POLICY})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        v.root("GET", "/v1/sys/policies/acl/default", None)
            .await
            .status
            == 200
    );
    v.sim.shutdown().await;
}

/// 8.15: "empty LIST → 404 `{"errors":[]}`".
#[tokio::test]
async fn p8_15_an_empty_list_is_404_with_an_empty_error_list() {
    let v = Vault::start().await;
    for r in [
        v.root("LIST", "/v1/auth/jwt-nomad/role", None).await,
        v.root("GET", "/v1/auth/jwt-nomad/role?list=true", None)
            .await,
        v.root("LIST", "/v1/auth/jwt-nomad/role/", None).await,
    ] {
        assert_eq!(r.status, 404);
        assert_eq!(r.json(), json!({"errors": []}));
    }
    v.sim.shutdown().await;
}

/// 8.15: "a GET 404 may mean forbidden": a 404 carries no reason, so a client cannot
/// tell a missing object from one it may not see; the simulator answers 403 for
/// paths the token has no grant on and an empty 404 for missing objects.
#[tokio::test]
async fn p8_15_a_404_carries_no_reason() {
    let v = Vault::with_tokens(&[(
        "t",
        r#"path "sys/policies/acl/*" { capabilities = ["read"] }"#,
    )])
    .await;
    let missing = v
        .call(Some("t"), "GET", "/v1/sys/policies/acl/nope", None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"errors": []}));
    let role = v.root("GET", "/v1/auth/jwt-nomad/role/nope", None).await;
    assert_eq!(role.json(), json!({"errors": []}));
    v.sim.shutdown().await;
}

/// 8.15: "on Nomad ≥ 1.10 a policy reaches tasks only through the JWT role named by
/// `vault.role`": writing the policy creates no role; the role names the policy.
#[tokio::test]
async fn p8_15_a_policy_alone_grants_nothing_to_workloads() {
    let v = Vault::start().await;
    v.put_policy("steward-trading-order-api", POLICY).await;
    assert!(v.sim.vault_jwt_role_names("jwt-nomad").is_empty());
    let r = v
        .root(
            "POST",
            "/v1/auth/jwt-nomad/role/steward-trading-order-api",
            Some(json!({
                "role_type": "jwt",
                "bound_audiences": "vault.io",
                "user_claim": "/nomad_job_id",
                "user_claim_json_pointer": true,
                "token_type": "service",
                "token_period": "30m",
                "token_policies": ["steward-trading-order-api"]
            })),
        )
        .await;
    assert_eq!(r.status, 204);
    let role = v
        .sim
        .vault_jwt_role("jwt-nomad", "steward-trading-order-api")
        .unwrap();
    assert_eq!(role["token_policies"], json!(["steward-trading-order-api"]));
    assert_eq!(role["user_claim_json_pointer"], true);
    v.sim.shutdown().await;
}

/// 8.18: injected overload answers use Vault's JSON error format.
#[tokio::test]
async fn p8_18_injected_429_and_503_are_vault_json_errors() {
    let v = Vault::start().await;
    let id = v.sim.faults().inject(
        Product::Vault,
        FaultRuleKind::Error {
            status: 429,
            rate: 1.0,
        },
    );
    let r = v.root("LIST", "/v1/sys/policies/acl", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.errors().len(), 1);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    v.sim.faults().remove(id);
    assert_eq!(
        v.root("LIST", "/v1/sys/policies/acl", None).await.status,
        200
    );
    v.sim.shutdown().await;
}
