//! Reference §7.4 (policy language) as enforced on requests: most specific match,
//! `deny`, `+` and `*`, LIST, create versus update, sudo; and the §9 403 bodies.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use support::Vault;

const DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

const OPERATOR: &str = r#"
# What Steward's operator token needs in Vault.
path "sys/policies/acl" { capabilities = ["list"] }
path "sys/policies/acl/steward-*" { capabilities = ["create", "read", "update", "delete"] }
path "auth/jwt-nomad/role" { capabilities = ["list"] }
path "auth/jwt-nomad/role/steward-*" { capabilities = ["create", "read", "update", "delete"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"#;

async fn operator() -> Vault {
    Vault::with_tokens(&[("operator", OPERATOR)]).await
}

#[tokio::test]
async fn a_valid_token_without_the_grant_gets_the_multi_error_403() {
    let v = Vault::with_tokens(&[("nobody", "no-such-policy")]).await;
    let r = v
        .call(Some("nobody"), "LIST", "/v1/sys/policies/acl", None)
        .await;
    assert_eq!((r.status, r.errors()), (403, vec![DENIED.to_string()]));
    v.sim.shutdown().await;
}

#[tokio::test]
async fn the_operator_token_can_do_its_job_and_nothing_else() {
    let v = operator().await;
    let policy = json!({"policy": "path \"secret/data/a/*\" { capabilities = [\"read\"] }"});
    let ok = [
        ("LIST", "/v1/sys/policies/acl", None),
        ("GET", "/v1/sys/policies/acl?list=true", None),
        (
            "PUT",
            "/v1/sys/policies/acl/steward-trading-api",
            Some(policy.clone()),
        ),
        ("GET", "/v1/sys/policies/acl/steward-trading-api", None),
        ("DELETE", "/v1/sys/policies/acl/steward-trading-api", None),
        ("GET", "/v1/auth/token/lookup-self", None),
    ];
    for (method, path, body) in ok {
        let r = v.call(Some("operator"), method, path, body).await;
        assert!(r.status < 400, "{method} {path}: {} {}", r.status, r.text);
    }
    let denied = [
        ("PUT", "/v1/sys/policies/acl/admin", Some(policy.clone())),
        ("GET", "/v1/sys/policies/acl/default", None),
        ("DELETE", "/v1/sys/policies/acl/default", None),
        ("GET", "/v1/sys/auth", None),
        (
            "POST",
            "/v1/sys/auth/jwt-other",
            Some(json!({"type": "jwt"})),
        ),
        ("POST", "/v1/auth/token/create", Some(json!({}))),
        ("GET", "/v1/secret/data/x", None),
    ];
    for (method, path, body) in denied {
        let r = v.call(Some("operator"), method, path, body).await;
        assert_eq!(
            (r.status, r.errors()),
            (403, vec![DENIED.to_string()]),
            "{method} {path}"
        );
    }
    v.sim.shutdown().await;
}

#[tokio::test]
async fn acl_checks_use_the_path_as_requested_before_lower_casing() {
    let v = operator().await;
    let r = v
        .call(
            Some("operator"),
            "PUT",
            "/v1/sys/policies/acl/Steward-X",
            Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(r.status, 403, "the grant is on lower-case steward-*");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn list_needs_list_and_read_needs_read() {
    let v = Vault::with_tokens(&[(
        "lister",
        r#"path "sys/policies/acl" { capabilities = ["read"] }
           path "sys/policies/acl/*" { capabilities = ["list"] }"#,
    )])
    .await;
    // LIST of sys/policies/acl/ falls back to the exact rule without the slash,
    // which only has read.
    let r = v
        .call(Some("lister"), "LIST", "/v1/sys/policies/acl", None)
        .await;
    assert_eq!(r.status, 403);
    let r = v
        .call(Some("lister"), "GET", "/v1/sys/policies/acl/default", None)
        .await;
    assert_eq!(r.status, 403, "list on the glob does not grant read");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn the_most_specific_pattern_wins_even_over_a_broader_deny() {
    let v = Vault::with_tokens(&[(
        "t",
        r#"path "sys/policies/acl/*" { capabilities = ["deny"] }
           path "sys/policies/acl/team-*" { capabilities = ["read"] }
           path "sys/policies/acl/team-secret" { capabilities = ["deny"] }"#,
    )])
    .await;
    v.put_policy("team-a", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    v.put_policy("team-secret", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    v.put_policy("other", "path \"a\" { capabilities = [\"read\"] }")
        .await;
    let status = |p: &'static str| {
        let v = &v;
        async move {
            v.call(Some("t"), "GET", &format!("/v1/sys/policies/acl/{p}"), None)
                .await
                .status
        }
    };
    assert_eq!(
        status("team-a").await,
        200,
        "longer prefix beats the deny glob"
    );
    assert_eq!(
        status("team-secret").await,
        403,
        "exact deny beats the prefix"
    );
    assert_eq!(status("other").await, 403);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn deny_wins_between_policies_naming_the_same_pattern() {
    let v = Vault::start().await;
    v.put_policy(
        "grant",
        r#"path "sys/policies/acl/*" { capabilities = ["read", "sudo"] }"#,
    )
    .await;
    v.put_policy(
        "revoke",
        r#"path "sys/policies/acl/*" { capabilities = ["deny"] }"#,
    )
    .await;
    let both = v.mint(&["grant", "revoke"]).await;
    let grant_only = v.mint(&["grant"]).await;
    let r = v
        .call(Some(&both), "GET", "/v1/sys/policies/acl/default", None)
        .await;
    assert_eq!(r.status, 403);
    let r = v
        .call(
            Some(&grant_only),
            "GET",
            "/v1/sys/policies/acl/default",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn plus_matches_exactly_one_segment() {
    let v = Vault::start().await;
    v.put_policy(
        "plus",
        r#"path "auth/+/role/steward-*" { capabilities = ["read", "list"] }
           path "auth/jwt-nomad/role" { capabilities = ["list"] }"#,
    )
    .await;
    let t = v.mint(&["plus"]).await;
    let r = v
        .call(Some(&t), "GET", "/v1/auth/jwt-nomad/role/steward-x", None)
        .await;
    assert_eq!(r.status, 404, "allowed, and the role does not exist");
    let r = v
        .call(Some(&t), "GET", "/v1/auth/jwt-nomad/role/other", None)
        .await;
    assert_eq!(r.status, 403);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn policy_changes_take_effect_immediately_for_existing_tokens() {
    let v = Vault::start().await;
    let t = v.mint(&["later"]).await;
    let r = v
        .call(Some(&t), "GET", "/v1/sys/policies/acl/default", None)
        .await;
    assert_eq!(r.status, 403);
    v.put_policy(
        "later",
        r#"path "sys/policies/acl/default" { capabilities = ["read"] }"#,
    )
    .await;
    let r = v
        .call(Some(&t), "GET", "/v1/sys/policies/acl/default", None)
        .await;
    assert_eq!(r.status, 200);
    v.root("DELETE", "/v1/sys/policies/acl/later", None).await;
    let r = v
        .call(Some(&t), "GET", "/v1/sys/policies/acl/default", None)
        .await;
    assert_eq!(r.status, 403, "a deleted policy grants nothing");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn role_writes_need_create_for_new_roles_and_update_for_existing_ones() {
    let v = Vault::start().await;
    v.put_policy(
        "creator",
        r#"path "auth/jwt-nomad/role/*" { capabilities = ["create"] }"#,
    )
    .await;
    v.put_policy(
        "updater",
        r#"path "auth/jwt-nomad/role/*" { capabilities = ["update"] }"#,
    )
    .await;
    let creator = v.mint(&["creator"]).await;
    let updater = v.mint(&["updater"]).await;
    let role = json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault.io"});
    let path = "/v1/auth/jwt-nomad/role/r1";
    let r = v
        .call(Some(&updater), "POST", path, Some(role.clone()))
        .await;
    assert_eq!(r.status, 403, "a new role is a create");
    let r = v
        .call(Some(&creator), "POST", path, Some(role.clone()))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = v
        .call(Some(&creator), "POST", path, Some(role.clone()))
        .await;
    assert_eq!(r.status, 403, "an existing role is an update");
    let r = v.call(Some(&updater), "PUT", path, Some(role)).await;
    assert_eq!(r.status, 204);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn enabling_auth_methods_needs_sudo() {
    let v = Vault::start().await;
    v.put_policy(
        "no-sudo",
        r#"path "sys/auth/*" { capabilities = ["create", "update", "read"] }"#,
    )
    .await;
    v.put_policy(
        "sudo",
        r#"path "sys/auth/*" { capabilities = ["update", "sudo"] }"#,
    )
    .await;
    let plain = v.mint(&["no-sudo"]).await;
    let sudo = v.mint(&["sudo"]).await;
    let body = json!({"type": "jwt"});
    let r = v
        .call(
            Some(&plain),
            "POST",
            "/v1/sys/auth/jwt-a",
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = v
        .call(Some(&sudo), "POST", "/v1/sys/auth/jwt-a", Some(body))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn management_tokens_are_root() {
    let mut config = steward_sim::SimConfig::default();
    let mut t = support::vault_token("mgmt", "");
    t.management = true;
    config.tokens.push(t);
    let v = Vault::with(config).await;
    let r = v.call(Some("mgmt"), "GET", "/v1/sys/auth", None).await;
    assert_eq!(r.status, 200);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_403_for_restricted_tokens_and_404_for_root() {
    let v = operator().await;
    let r = v
        .call(Some("operator"), "GET", "/v1/nothing/here", None)
        .await;
    assert_eq!(r.status, 403);
    let r = v.root("GET", "/v1/nothing/here", None).await;
    assert_eq!(r.status, 404);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn capabilities_self_reports_the_winning_rule() {
    let v = operator().await;
    let r = v
        .call(
            Some("operator"),
            "POST",
            "/v1/sys/capabilities-self",
            Some(json!({"paths": ["sys/policies/acl/steward-x", "sys/policies/acl/other"]})),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "configured tokens carry default, which grants it"
    );
    let data = r.json()["data"].clone();
    assert_eq!(
        data["sys/policies/acl/steward-x"],
        json!(["read", "update", "delete", "create"])
    );
    assert_eq!(data["sys/policies/acl/other"], json!(["deny"]));
    assert!(data.get("capabilities").is_none(), "only for a single path");
    v.sim.shutdown().await;
    let v = Vault::start().await;
    v.put_policy(
        "p",
        r#"path "secret/+/x" { capabilities = ["read", "list"] }"#,
    )
    .await;
    let t = v.mint(&["p"]).await;
    let r = v
        .call(
            Some(&t),
            "POST",
            "/v1/sys/capabilities-self",
            Some(json!({"paths": "secret/a/x"})),
        )
        .await;
    assert_eq!(r.status, 200, "the default policy grants it");
    assert_eq!(r.json()["data"]["secret/a/x"], json!(["read", "list"]));
    assert_eq!(r.json()["data"]["capabilities"], json!(["read", "list"]));
    let r = v
        .root(
            "POST",
            "/v1/sys/capabilities",
            Some(json!({"token": t, "paths": ["nope"]})),
        )
        .await;
    assert_eq!(r.json()["data"]["nope"], json!(["deny"]));
    let r = v
        .root(
            "POST",
            "/v1/sys/capabilities-self",
            Some(json!({"paths": ["nope"]})),
        )
        .await;
    assert_eq!(r.json()["data"]["nope"], json!(["root"]));
    v.sim.shutdown().await;
}
