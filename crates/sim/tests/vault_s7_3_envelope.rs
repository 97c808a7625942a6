//! Reference §1.3 (Vault error bodies and status codes), §7.3 (response envelope)
//! and the §9 observation that every response carries `Cache-Control: no-store`.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use steward_sim::Product;
use support::Vault;

#[tokio::test]
async fn the_envelope_has_every_field_in_vaults_order() {
    let v = Vault::start().await;
    let r = v.root("GET", "/v1/sys/policies/acl/default", None).await;
    let body = r.json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec![
            "request_id",
            "lease_id",
            "renewable",
            "lease_duration",
            "data",
            "wrap_info",
            "warnings",
            "auth",
            "mount_type"
        ]
    );
    assert_eq!(body["lease_id"], "");
    assert_eq!(body["lease_duration"], 0);
    assert_eq!(body["wrap_info"], serde_json::Value::Null);
    assert_eq!(body["warnings"], serde_json::Value::Null);
    assert_eq!(body["auth"], serde_json::Value::Null);
    assert!(uuid::Uuid::parse_str(body["request_id"].as_str().unwrap()).is_ok());
    assert!(
        r.text.ends_with('\n'),
        "Go's json.Encoder ends with a newline"
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn older_versions_have_no_mount_type() {
    let v = Vault::version("1.12.0").await;
    let r = v.root("GET", "/v1/sys/policies/acl/default", None).await;
    assert!(r.json().get("mount_type").is_none());
    v.sim.shutdown().await;
}

#[tokio::test]
async fn every_response_carries_no_store_and_json_content_type() {
    let v = Vault::start().await;
    let cases = [
        v.root("GET", "/v1/sys/policies/acl/default", None).await,
        v.root(
            "PUT",
            "/v1/sys/policies/acl/x",
            Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
        )
        .await,
        v.root("GET", "/v1/sys/policies/acl/missing", None).await,
        v.root("GET", "/v1/sys/policies/acl", None).await,
        v.call(None, "GET", "/v1/sys/policies/acl/x", None).await,
        v.call(Some("bogus"), "GET", "/v1/sys/policies/acl/x", None)
            .await,
        v.call(None, "GET", "/v1/sys/health", None).await,
        v.call(None, "GET", "/v1/sys/seal-status", None).await,
        v.root("GET", "/v1/secret/data/x", None).await,
        v.root("GET", "/not-v1", None).await,
        v.root("BREW", "/v1/sys/policies/acl/x", None).await,
    ];
    for r in cases {
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("no-store"),
            "{r:?}"
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json"),
            "{r:?}"
        );
    }
    v.sim.shutdown().await;
}

#[tokio::test]
async fn errors_are_json_lists_with_vaults_statuses() {
    let v = Vault::start().await;
    let r = v.root("GET", "/v1/secret/data/x", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.errors(),
        vec![r#"no handler for route "secret/data/x". route entry not found."#]
    );
    let r = v.root("GET", "/v1/auth/jwt-nomad/nonsense", None).await;
    assert_eq!(
        (r.status, r.errors()),
        (404, vec!["unsupported path".to_string()])
    );
    let r = v.root("PATCH", "/v1/sys/policies/acl/default", None).await;
    assert_eq!(
        (r.status, r.errors()),
        (405, vec!["unsupported operation".to_string()])
    );
    let r = v.root("BREW", "/v1/sys/policies/acl/default", None).await;
    assert_eq!(r.status, 405);
    assert!(r.errors().is_empty());
    let r = v.root("GET", "/nope", None).await;
    assert_eq!(r.status, 404);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn the_list_verb_is_counted_under_its_own_name_and_route_template() {
    let v = Vault::start().await;
    v.root("LIST", "/v1/sys/policies/acl", None).await;
    v.root("LIST", "/v1/auth/jwt-nomad/role", None).await;
    v.root("GET", "/v1/sys/policies/acl/default", None).await;
    let stats = v.sim.stats();
    assert_eq!(
        stats.count(Product::Vault, "LIST", "/v1/sys/policies/acl"),
        1
    );
    assert_eq!(
        stats.count(Product::Vault, "LIST", "/v1/auth/{mount}/role"),
        1
    );
    assert_eq!(
        stats.count(Product::Vault, "GET", "/v1/sys/policies/acl/{*name}"),
        1
    );
    assert_eq!(stats.writes(Product::Vault), 0, "LIST is not a write");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn html_characters_are_escaped_like_go() {
    let v = Vault::start().await;
    v.put_policy(
        "html",
        "# <b>&</b>\npath \"a\" { capabilities = [\"read\"] }",
    )
    .await;
    let r = v.root("GET", "/v1/sys/policies/acl/html", None).await;
    assert!(r.text.contains("\\u003cb\\u003e\\u0026"), "{}", r.text);
    assert_eq!(
        r.json()["data"]["policy"],
        "# <b>&</b>\npath \"a\" { capabilities = [\"read\"] }"
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn percent_encoded_paths_are_decoded_like_go() {
    let v = Vault::start().await;
    v.put_policy("a-b", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    let r = v.root("GET", "/v1/sys/policies/acl/a%2Db", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["name"], "a-b");
    v.sim.shutdown().await;
}
