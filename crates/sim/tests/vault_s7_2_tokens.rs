//! Reference §7.2 (`auth/token/lookup-self`) and the token endpoints that make
//! restricted tokens usable in tests (`create`, `lookup`, `revoke-self`,
//! `renew-self`), with the §9 observations on token errors.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use support::Vault;

mod fixtures {
    use super::*;

    #[tokio::test]
    async fn lookup_self_of_the_dev_root_token_matches_the_capture() {
        let v = Vault::version("1.7.3").await;
        let r = v.check_fixture("token-lookup-self", true).await;
        let data = &r.json()["data"];
        assert_eq!(data["accessor"].as_str().unwrap().len(), 24);
        assert!(data["issue_time"].as_str().unwrap().ends_with('Z'));
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_bogus_token_is_a_plain_permission_denied_before_1_17() {
        let v = Vault::version("1.7.3").await;
        v.check_fixture("token-lookup-self-bad-token", true).await;
        let v16 = Vault::version("1.16.2").await;
        v16.check_fixture("token-lookup-self-bad-token", true).await;
        v.sim.shutdown().await;
        v16.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_bogus_token_also_reports_invalid_token_from_1_17() {
        let v = Vault::start().await;
        let r = v.replay("token-lookup-self-bad-token").await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.errors(),
            vec!["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]
        );
        v.sim.shutdown().await;
    }
}

mod s7_2_lookup_self {
    use super::*;

    #[tokio::test]
    async fn root_lookup_self_has_every_documented_field() {
        let v = Vault::start().await;
        let r = v.root("GET", "/v1/auth/token/lookup-self", None).await;
        assert_eq!(r.status, 200);
        let body = r.json();
        assert_eq!(body["mount_type"], "token");
        let data = &body["data"];
        for field in [
            "accessor",
            "creation_time",
            "creation_ttl",
            "display_name",
            "entity_id",
            "expire_time",
            "explicit_max_ttl",
            "id",
            "issue_time",
            "meta",
            "num_uses",
            "orphan",
            "path",
            "policies",
            "renewable",
            "ttl",
            "type",
        ] {
            assert!(data.get(field).is_some(), "missing {field}");
        }
        assert_eq!(data["policies"], json!(["root"]));
        assert_eq!(data["ttl"], 0);
        assert_eq!(data["expire_time"], serde_json::Value::Null);
        assert_eq!(data["type"], "service");
        let again = v.root("POST", "/v1/auth/token/lookup-self", None).await;
        assert_eq!(
            again.json()["data"]["accessor"],
            data["accessor"],
            "POST works too"
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn no_token_is_a_400_missing_client_token() {
        let v = Vault::start().await;
        let r = v
            .call(None, "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["missing client token".to_string()])
        );
        let r = v.call(None, "LIST", "/v1/sys/policies/acl", None).await;
        assert_eq!(r.status, 400);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_bearer_header_is_accepted_like_x_vault_token() {
        let v = Vault::start().await;
        let r = v
            .client
            .get(format!("{}/v1/auth/token/lookup-self", v.base))
            .bearer_auth("root")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_configured_token_carries_its_policies_plus_default() {
        let v = Vault::with_tokens(&[("ops-token", "Steward-Operator, readers")]).await;
        let r = v
            .call(Some("ops-token"), "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json()["data"]["policies"],
            json!(["default", "readers", "steward-operator"])
        );
        v.sim.shutdown().await;
    }
}

mod token_store {
    use super::*;

    #[tokio::test]
    async fn created_tokens_carry_sorted_policies_with_default_and_a_ttl() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["Zeta", "alpha"], "ttl": "1h", "display_name": "ci run"})),
            )
            .await;
        assert_eq!(r.status, 200);
        let body = r.json();
        assert_eq!(body["data"], serde_json::Value::Null);
        let auth = &body["auth"];
        assert!(auth["client_token"].as_str().unwrap().starts_with("hvs."));
        assert_eq!(auth["policies"], json!(["alpha", "default", "zeta"]));
        assert_eq!(auth["token_policies"], auth["policies"]);
        assert_eq!(auth["lease_duration"], 3600);
        assert_eq!(auth["renewable"], true);
        assert_eq!(auth["orphan"], false);
        let token = auth["client_token"].as_str().unwrap();
        let me = v
            .call(Some(token), "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(me.status, 200, "the default policy allows lookup-self");
        let data = me.json()["data"].clone();
        assert_eq!(data["display_name"], "token-ci-run");
        assert!(data["ttl"].as_i64().unwrap() > 3590);
        assert!(data["expire_time"].is_string());
        assert_eq!(data["creation_ttl"], 3600);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn restricted_tokens_cannot_escalate() {
        let v = Vault::start().await;
        v.put_policy(
            "minter",
            r#"path "auth/token/create" { capabilities = ["update"] }"#,
        )
        .await;
        let minter = v.mint(&["minter"]).await;
        let r = v
            .call(
                Some(&minter),
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["other"]})),
            )
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (
                400,
                vec!["child policies must be subset of parent".to_string()]
            )
        );
        let r = v
            .call(
                Some(&minter),
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["root"]})),
            )
            .await;
        assert_eq!(r.status, 400);
        let r = v
            .call(
                Some(&minter),
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["minter"]})),
            )
            .await;
        assert_eq!(r.status, 200);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn lookup_and_revoke_self() {
        let v = Vault::start().await;
        let token = v.mint(&["p"]).await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/lookup",
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["data"]["id"], token.as_str());
        let r = v
            .root(
                "POST",
                "/v1/auth/token/lookup",
                Some(json!({"token": "nope"})),
            )
            .await;
        assert_eq!((r.status, r.errors()), (403, vec!["bad token".to_string()]));
        let r = v
            .call(Some(&token), "POST", "/v1/auth/token/revoke-self", None)
            .await;
        assert_eq!(r.status, 204);
        let r = v
            .call(Some(&token), "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(r.status, 403);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn revoke_and_revoke_accessor_end_a_token_and_its_children() {
        let v = Vault::start().await;
        let revoked = |token: String| {
            let v = &v;
            async move {
                let r = v
                    .call(Some(&token), "GET", "/v1/auth/token/lookup-self", None)
                    .await;
                assert_eq!(r.status, 403, "{token} still works");
            }
        };
        // revoke: by secret, children included; unknown tokens are a no-op 204.
        let policy = r#"path "auth/token/create" { capabilities = ["update"] }"#;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/creator",
                Some(json!({"policy": policy})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let parent = v.mint(&["creator"]).await;
        let r = v
            .call(
                Some(&parent),
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["creator"]})),
            )
            .await;
        let child = r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = v
            .root(
                "POST",
                "/v1/auth/token/revoke",
                Some(json!({"token": parent})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        revoked(parent).await;
        revoked(child).await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/revoke",
                Some(json!({"token": "nope"})),
            )
            .await;
        assert_eq!(r.status, 204);
        let r = v
            .root("POST", "/v1/auth/token/revoke", Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["missing token ID".to_string()])
        );
        // revoke-accessor: by the accessor a lookup shows.
        let token = v.mint(&["p"]).await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/lookup",
                Some(json!({"token": token})),
            )
            .await;
        let accessor = r.json()["data"]["accessor"].as_str().unwrap().to_string();
        let r = v
            .root(
                "POST",
                "/v1/auth/token/revoke-accessor",
                Some(json!({"accessor": accessor})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        revoked(token).await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/revoke-accessor",
                Some(json!({"accessor": accessor})),
            )
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["invalid accessor".to_string()])
        );
        let r = v
            .root("POST", "/v1/auth/token/revoke-accessor", Some(json!({})))
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["missing accessor".to_string()])
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn renew_self_extends_a_renewable_token_and_refuses_root() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["p"], "ttl": "10m"})),
            )
            .await;
        let token = r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = v
            .call(
                Some(&token),
                "POST",
                "/v1/auth/token/renew-self",
                Some(json!({"increment": "1h"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["auth"]["lease_duration"], 3600);
        let r = v.root("POST", "/v1/auth/token/renew-self", None).await;
        assert_eq!(r.status, 400);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn limited_use_tokens_run_out() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": ["p"], "num_uses": 2})),
            )
            .await;
        let token = r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..2 {
            let r = v
                .call(Some(&token), "GET", "/v1/auth/token/lookup-self", None)
                .await;
            assert_eq!(r.status, 200);
        }
        let r = v
            .call(Some(&token), "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(r.status, 403);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_handle_can_mint_tokens_directly() {
        let v = Vault::start().await;
        let token = v.sim.vault_create_token(&["reader"]);
        let r = v
            .call(Some(&token), "GET", "/v1/auth/token/lookup-self", None)
            .await;
        assert_eq!(r.json()["data"]["policies"], json!(["default", "reader"]));
        v.sim.shutdown().await;
    }
}
