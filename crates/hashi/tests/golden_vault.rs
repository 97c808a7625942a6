//! Vault request builders and response parsers against captures from a real server.
#![allow(clippy::unwrap_used)]

mod common;

use common::load;
use steward_hashi::vault::{DEFAULT_JWT_MOUNT, HealthState, JwtRole, jwt, parse_list, policy, sys};
use steward_hashi::{Error, Product};

fn fx(name: &str) -> common::Fixture {
    load("vault", name)
}

#[test]
fn policy_put_get_delete() {
    let f = fx("policy-put");
    let text = f.request_body()["policy"].as_str().unwrap().to_owned();
    f.assert_request(&policy::put("steward-trading-order-api", &text).unwrap());
    // upper-case names are lower-cased like the server does
    assert_eq!(
        policy::put("Steward-Trading-Order-API", &text)
            .unwrap()
            .uri(),
        "/v1/sys/policies/acl/steward-trading-order-api"
    );
    let f = fx("policy-get");
    f.assert_request(&policy::get("steward-trading-order-api").unwrap());
    let p = policy::parse_get(&f.raw(Product::Vault)).unwrap().unwrap();
    assert_eq!(p.name, "steward-trading-order-api");
    assert!(
        p.policy
            .starts_with("path \"secret/data/trading/order-api/*\"")
    );
    assert!(
        policy::parse_get(&fx("policy-get-missing").raw(Product::Vault))
            .unwrap()
            .is_none()
    );
    fx("policy-delete").assert_request(&policy::delete("steward-trading-order-api").unwrap());
}

#[test]
fn policy_lists_use_the_list_verb_and_empty_is_404() {
    let f = fx("policy-list-method");
    let spec = policy::list();
    f.assert_request(&spec);
    assert!(spec.accept.contains(&404));
    assert_eq!(
        parse_list(&f.raw(Product::Vault)).unwrap(),
        ["default", "steward-trading-order-api", "root"]
    );
    assert_eq!(
        parse_list(&fx("policy-list").raw(Product::Vault))
            .unwrap()
            .len(),
        3
    );
    assert!(
        parse_list(&fx("jwt-role-list-empty").raw(Product::Vault))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn invalid_policy_keeps_the_server_text() {
    let err = fx("policy-put-invalid-hcl")
        .raw(Product::Vault)
        .status_error();
    match &err {
        Error::InvalidRequest {
            status: 400,
            message,
            ..
        } => {
            assert!(
                message.starts_with("failed to parse policy: At 1:41"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn jwt_roles() {
    let f = fx("jwt-role-write");
    let role: JwtRole = serde_json::from_value(f.request_body().clone()).unwrap();
    assert_eq!(role.token_period, Some(1800), "\"30m\" reads as 1800 s");
    let spec = jwt::put(DEFAULT_JWT_MOUNT, "steward-trading-order-api", &role).unwrap();
    assert_eq!(spec.method, f.method());
    assert_eq!(spec.uri(), f.uri());
    let body = spec.json_body().unwrap();
    assert_eq!(body["token_period"], 1800);
    assert_eq!(body["token_policies"][0], "steward-trading-order-api");
    assert_eq!(body["bound_claims"]["nomad_job_id"], "order-api");

    let f = fx("jwt-role-read");
    f.assert_request(&jwt::get(DEFAULT_JWT_MOUNT, "steward-trading-order-api").unwrap());
    let read = jwt::parse_get(&f.raw(Product::Vault)).unwrap().unwrap();
    assert_eq!(read.role_type, "jwt");
    assert_eq!(read.user_claim, "/nomad_job_id");
    assert_eq!(read.token_period, Some(1800));
    assert_eq!(read.token_type.as_deref(), Some("service"));
    assert_eq!(read.claim_mappings["nomad_task"], "nomad_task");
    assert!(
        read.extra.contains_key("clock_skew_leeway"),
        "unknown fields are kept"
    );
    assert!(
        jwt::parse_get(&fx("jwt-role-read-missing").raw(Product::Vault))
            .unwrap()
            .is_none()
    );

    fx("jwt-role-delete")
        .assert_request(&jwt::delete(DEFAULT_JWT_MOUNT, "steward-trading-order-api").unwrap());
    let f = fx("jwt-role-list");
    f.assert_request(&jwt::list(DEFAULT_JWT_MOUNT).unwrap());
    assert_eq!(
        parse_list(&f.raw(Product::Vault)).unwrap(),
        ["steward-trading-order-api"]
    );
    assert!(jwt::list("/bad").is_err());
}

#[test]
fn lookup_self_and_bad_token() {
    let f = fx("token-lookup-self");
    f.assert_request(&sys::lookup_self());
    let t = sys::parse_lookup_self(&f.raw(Product::Vault)).unwrap();
    assert_eq!(t.policies, ["root"]);
    assert_eq!(t.ttl, 0);
    assert!(t.expire_time.is_none());
    let err = fx("token-lookup-self-bad-token")
        .raw(Product::Vault)
        .status_error();
    assert!(matches!(err, Error::PermissionDenied { .. }));
    assert!(!err.to_string().contains("s.invalidtoken"));
}

#[test]
fn health_states() {
    let f = fx("sys-health");
    let spec = sys::health();
    f.assert_request(&spec);
    for s in [429, 472, 473, 501, 503] {
        assert!(spec.accept.contains(&s));
    }
    let h = sys::parse_health(&f.raw(Product::Vault)).unwrap();
    assert_eq!(h.state, HealthState::Active);
    assert_eq!(h.body.version, "1.7.3");
    assert!(h.state.is_serving());
    assert_eq!(HealthState::from_status(429), HealthState::Standby);
    assert_eq!(HealthState::from_status(472), HealthState::DrSecondary);
    assert_eq!(
        HealthState::from_status(473),
        HealthState::PerformanceStandby
    );
    assert_eq!(HealthState::from_status(501), HealthState::Uninitialized);
    assert_eq!(HealthState::from_status(503), HealthState::Sealed);
    assert!(!HealthState::Sealed.is_serving());
}
