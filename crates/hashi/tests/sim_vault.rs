//! Vault client against the simulator.
#![allow(clippy::unwrap_used)]

mod simutil;

use simutil::{bounded, sim, vault, vault_with};
use steward_hashi::vault::{DEFAULT_JWT_MOUNT, HealthState, JwtRole};
use steward_hashi::{Error, RequestSpec};

const HCL: &str = "# managed-by: steward; spec: trading/order-api\npath \"secret/data/trading/order-api/*\" {\n  capabilities = [\"read\"]\n}\n";

#[tokio::test]
async fn policies() {
    let h = sim().await;
    let v = vault(&h);
    bounded(v.put_policy("Steward-Trading-Order-API", HCL))
        .await
        .unwrap();
    let p = bounded(v.get_policy("steward-trading-order-api"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.name, "steward-trading-order-api");
    assert_eq!(p.policy, HCL);
    let names = bounded(v.list_policies()).await.unwrap();
    assert!(names.contains(&"steward-trading-order-api".to_owned()));
    assert!(names.contains(&"default".to_owned()));
    let err = bounded(v.put_policy("broken", "path \"secret/*\" { capabilities = [\"read\""))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { status: 400, .. }),
        "{err:?}"
    );
    bounded(v.delete_policy("steward-trading-order-api"))
        .await
        .unwrap();
    bounded(v.delete_policy("steward-trading-order-api"))
        .await
        .unwrap();
    assert!(
        bounded(v.get_policy("steward-trading-order-api"))
            .await
            .unwrap()
            .is_none()
    );
    let err = bounded(v.delete_policy("root")).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { status: 400, .. }),
        "{err:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn jwt_roles() {
    let h = sim().await;
    let v = vault(&h);
    // enable the auth method as `nomad setup vault` would
    let enable = RequestSpec::new(http::Method::POST, "/v1/sys/auth/jwt-nomad")
        .json(serde_json::json!({"type": "jwt"}));
    let _ = bounded(v.transport().send(&enable)).await;
    assert!(
        bounded(v.list_jwt_roles(DEFAULT_JWT_MOUNT))
            .await
            .unwrap()
            .is_empty()
    );
    let role: JwtRole = serde_json::from_value(serde_json::json!({
        "role_type": "jwt", "bound_audiences": ["vault.io"], "user_claim": "/nomad_job_id",
        "user_claim_json_pointer": true,
        "bound_claims": {"nomad_namespace": "trading", "nomad_job_id": "order-api"},
        "claim_mappings": {"nomad_job_id": "nomad_job_id"},
        "token_type": "service", "token_period": "30m",
        "token_policies": ["steward-trading-order-api"]
    }))
    .unwrap();
    bounded(v.put_jwt_role(DEFAULT_JWT_MOUNT, "steward-trading-order-api", &role))
        .await
        .unwrap();
    let read = bounded(v.get_jwt_role(DEFAULT_JWT_MOUNT, "steward-trading-order-api"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.token_policies, ["steward-trading-order-api"]);
    assert_eq!(read.token_period, Some(1800));
    assert_eq!(
        bounded(v.list_jwt_roles(DEFAULT_JWT_MOUNT)).await.unwrap(),
        ["steward-trading-order-api"]
    );
    bounded(v.delete_jwt_role(DEFAULT_JWT_MOUNT, "steward-trading-order-api"))
        .await
        .unwrap();
    bounded(v.delete_jwt_role(DEFAULT_JWT_MOUNT, "steward-trading-order-api"))
        .await
        .unwrap();
    assert!(
        bounded(v.get_jwt_role(DEFAULT_JWT_MOUNT, "steward-trading-order-api"))
            .await
            .unwrap()
            .is_none()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn token_lookup_and_bad_token() {
    let h = sim().await;
    let info = bounded(vault(&h).lookup_self()).await.unwrap();
    assert!(info.policies.contains(&"root".to_owned()));
    let secret = "s.bogus-token-0123456789";
    let err = bounded(vault_with(&h, secret).lookup_self())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(secret));
    h.shutdown().await;
}

#[tokio::test]
async fn health_and_sealed() {
    let h = sim().await;
    let v = vault(&h);
    assert_eq!(
        bounded(v.health()).await.unwrap().state,
        HealthState::Active
    );
    h.faults().set_vault_sealed(true);
    let health = bounded(v.health()).await.unwrap();
    assert_eq!(health.state, HealthState::Sealed);
    assert!(health.body.sealed);
    let err = bounded(v.get_policy("default")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    h.faults().set_vault_sealed(false);
    assert!(bounded(v.get_policy("default")).await.unwrap().is_some());
    h.shutdown().await;
}
