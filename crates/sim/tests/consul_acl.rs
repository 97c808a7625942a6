//! Consul ACLs (reference §1.2, §1.3 403 bodies, §2.5 filtered lists).
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::json;
use steward_sim::{Product, TokenConfig};

const STEWARD_RULES: &str = r#"
key_prefix "steward/" { policy = "write" }
key_prefix "steward/secret/" { policy = "deny" }
session_prefix "" { policy = "write" }
service_prefix "" { policy = "write" intentions = "write" }
node_prefix "" { policy = "read" }
mesh = "write"
"#;

async fn start_acl() -> steward_sim::SimHandle {
    start_with(|c| {
        c.tokens = vec![
            TokenConfig {
                product: Product::Consul,
                secret: "mgmt-secret".into(),
                management: true,
                rules: String::new(),
            },
            TokenConfig {
                product: Product::Consul,
                secret: "steward-secret".into(),
                management: false,
                rules: STEWARD_RULES.into(),
            },
            TokenConfig {
                product: Product::Consul,
                secret: "reader-secret".into(),
                management: false,
                rules: r#"key_prefix "steward/specs/" { policy = "read" }"#.into(),
            },
        ];
    })
    .await
}

mod s1_2_tokens {
    use super::*;

    #[tokio::test]
    async fn without_a_token_the_anonymous_token_is_denied() {
        let sim = start_acl().await;
        let c = Consul::new(&sim);
        let r = c.get("/v1/kv/steward/x").await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.text(),
            "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on \"steward/x\""
        );
        assert_eq!(
            r.header("x-consul-default-acl-policy").as_deref(),
            Some("deny")
        );
        let r = c.with_token("no-such-token").get("/v1/kv/steward/x").await;
        assert_eq!((r.status, r.text().as_str()), (403, "ACL not found"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn denials_name_the_accessor_and_the_permission_never_the_secret() {
        let sim = start_acl().await;
        let c = Consul::new(&sim).with_token("steward-secret");
        assert_eq!(c.put("/v1/kv/steward/specs/a/b", "x").await.status, 200);
        let r = c.put("/v1/kv/other/x", "x").await;
        assert_eq!(r.status, 403);
        let text = r.text();
        assert!(
            text.starts_with("Permission denied: token with AccessorID '"),
            "{text}"
        );
        assert!(
            text.ends_with("' lacks permission 'key:write' on \"other/x\""),
            "{text}"
        );
        assert!(!text.contains("steward-secret"));
        let r = c.get("/v1/kv/steward/secret/x").await;
        assert_eq!(r.status, 403);
        // Bearer and ?token= work too.
        let bare = Consul::new(&sim);
        let r = reqwest::Client::new()
            .get(format!("{}/v1/kv/steward/specs/a/b", bare.base))
            .header("Authorization", "Bearer steward-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            bare.get("/v1/kv/steward/specs/a/b?token=steward-secret")
                .await
                .status,
            200
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_management_token_may_do_anything() {
        let sim = start_acl().await;
        let c = Consul::new(&sim).with_token("mgmt-secret");
        assert_eq!(c.put("/v1/kv/anything", "x").await.status, 200);
        assert_eq!(c.get("/v1/agent/self").await.status, 200);
        assert_eq!(
            c.put_json(
                "/v1/config",
                &json!({"Kind": "proxy-defaults", "Name": "global"})
            )
            .await
            .status,
            200
        );
        sim.shutdown().await;
    }
}

mod s2_5_filtered_lists {
    use super::*;

    #[tokio::test]
    async fn lists_drop_what_the_token_may_not_read_and_say_so() {
        let sim = start_acl().await;
        let admin = Consul::new(&sim).with_token("mgmt-secret");
        for k in ["steward/specs/a", "steward/specs/b", "steward/status/a"] {
            admin.put(&format!("/v1/kv/{k}"), "x").await;
        }
        let reader = Consul::new(&sim).with_token("reader-secret");
        let r = reader.get("/v1/kv/steward/?recurse").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json().as_array().unwrap().len(), 2);
        assert_eq!(
            r.header("x-consul-results-filtered-by-acls").as_deref(),
            Some("true")
        );
        let r = reader.get("/v1/kv/steward/?keys").await;
        assert_eq!(r.json(), json!(["steward/specs/a", "steward/specs/b"]));
        assert_eq!(
            r.header("x-consul-results-filtered-by-acls").as_deref(),
            Some("true")
        );
        let r = admin.get("/v1/kv/steward/?recurse").await;
        assert!(r.header("x-consul-results-filtered-by-acls").is_none());
        // A txn write the token may not do is a 409 naming the permission.
        let r = reader
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "set", "Key": "steward/specs/a", "Value": b64("y")}}]),
            )
            .await;
        assert_eq!(r.status, 409);
        assert!(
            r.json()["Errors"][0]["What"]
                .as_str()
                .unwrap()
                .contains("lacks permission 'key:write'")
        );
        sim.shutdown().await;
    }
}

mod s3_s4_sessions_and_config_entries {
    use super::*;

    #[tokio::test]
    async fn sessions_and_config_entries_check_their_own_permissions() {
        let sim = start_acl().await;
        let steward = Consul::new(&sim).with_token("steward-secret");
        let reader = Consul::new(&sim).with_token("reader-secret");
        assert_eq!(steward.put("/v1/session/create", "{}").await.status, 200);
        let r = reader.put("/v1/session/create", "{}").await;
        assert_eq!(r.status, 403);
        assert!(
            r.text()
                .contains("lacks permission 'session:write' on \"sim\"")
        );
        let r = steward
            .put_json(
                "/v1/config",
                &json!({"Kind": "service-intentions", "Name": "web",
                "Sources": [{"Name": "api", "Action": "allow"}]}),
            )
            .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let r = reader
            .put_json(
                "/v1/config",
                &json!({"Kind": "service-defaults", "Name": "web"}),
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(
            r.text()
                .contains("lacks permission 'service:write' on \"web\"")
        );
        let r = reader.get("/v1/config/service-intentions/web").await;
        assert_eq!(r.status, 403);
        let r = reader.get("/v1/config/service-intentions").await;
        assert_eq!((r.status, r.json()), (200, json!([])));
        assert_eq!(
            r.header("x-consul-results-filtered-by-acls").as_deref(),
            Some("true")
        );
        let r = steward
            .put_json(
                "/v1/config",
                &json!({"Kind": "proxy-defaults", "Name": "global"}),
            )
            .await;
        assert_eq!(r.status, 200);
        let r = reader
            .put_json(
                "/v1/config",
                &json!({"Kind": "proxy-defaults", "Name": "global"}),
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(r.text().ends_with("lacks permission 'mesh:write'"));
        sim.shutdown().await;
    }
}
