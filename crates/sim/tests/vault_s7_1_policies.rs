//! Reference §7.1 (ACL policy endpoints), with the §9 Vault observations and the
//! §8.15 pitfalls that concern policies.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::json;
use support::Vault;

const ORDER_API: &str = "path \"secret/data/trading/order-api/*\" {\n  capabilities = [\"read\"]\n}\n\npath \"secret/metadata/trading/order-api/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";

mod fixtures {
    use super::*;

    /// The captured sequence put → get → list (both forms) → delete → get-missing,
    /// against a server behaving like the one captured (exact key sets).
    #[tokio::test]
    async fn the_captured_policy_sequence_replays_with_the_same_shapes() {
        let v = Vault::version("1.7.3").await;
        v.check_fixture("policy-put", true).await;
        v.check_fixture("policy-get", true).await;
        v.check_fixture("policy-list", true).await;
        v.check_fixture("policy-list-method", true).await;
        v.check_fixture("policy-put-invalid-hcl", true).await;
        v.check_fixture("policy-delete", true).await;
        v.check_fixture("policy-get-missing", true).await;
        v.sim.shutdown().await;
    }

    /// The current default (1.18) keeps every captured field and adds `mount_type`.
    #[tokio::test]
    async fn a_current_version_keeps_the_captured_fields_and_adds_mount_type() {
        let v = Vault::start().await;
        v.check_fixture("policy-put", false).await;
        let r = v.check_fixture("policy-get", false).await;
        assert_eq!(r.json()["mount_type"], "system");
        v.check_fixture("policy-list-method", false).await;
        v.check_fixture("policy-delete", false).await;
        v.check_fixture("policy-get-missing", false).await;
        v.sim.shutdown().await;
    }
}

mod s7_1_endpoints {
    use super::*;

    #[tokio::test]
    async fn list_includes_default_and_root_and_both_list_forms_agree() {
        let v = Vault::start().await;
        let by_verb = v.root("LIST", "/v1/sys/policies/acl", None).await;
        let by_query = v.root("GET", "/v1/sys/policies/acl?list=true", None).await;
        let with_slash = v.root("LIST", "/v1/sys/policies/acl/", None).await;
        assert_eq!(by_verb.json()["data"]["keys"], json!(["default", "root"]));
        assert_eq!(by_query.json()["data"], by_verb.json()["data"]);
        assert_eq!(with_slash.json()["data"], by_verb.json()["data"]);
        v.put_policy("b-policy", ORDER_API).await;
        v.put_policy("a-policy", ORDER_API).await;
        let keys =
            v.root("LIST", "/v1/sys/policies/acl", None).await.json()["data"]["keys"].clone();
        assert_eq!(keys, json!(["a-policy", "b-policy", "default", "root"]));
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_plain_get_on_the_collection_is_unsupported() {
        let v = Vault::start().await;
        let r = v.root("GET", "/v1/sys/policies/acl", None).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.errors(), vec!["unsupported operation"]);
        let r = v.root("GET", "/v1/sys/policies/acl?list=false", None).await;
        assert_eq!(r.status, 405);
        let r = v.root("GET", "/v1/sys/policies/acl?list=maybe", None).await;
        assert_eq!(r.status, 400);
        assert!(r.errors().is_empty());
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn put_and_post_are_synonyms_and_overwrite_without_cas() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                "/v1/sys/policies/acl/p",
                Some(json!({"policy": ORDER_API})),
            )
            .await;
        assert_eq!(r.status, 204);
        assert!(r.text.is_empty());
        let other = "path \"x\" { capabilities = [\"read\"] }";
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/p",
                Some(json!({"policy": other})),
            )
            .await;
        assert_eq!(r.status, 204);
        let got = v.root("GET", "/v1/sys/policies/acl/p", None).await.json();
        assert_eq!(got["data"]["policy"], other);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_text_is_stored_as_given_comments_and_whitespace_included() {
        let v = Vault::start().await;
        let text = "# managed-by: steward; spec: trading/order-api\n\n\n   path \"a/*\"   {capabilities=[\"read\"]}   \n\n";
        v.put_policy("steward-trading-order-api", text).await;
        let got = v
            .root(
                "GET",
                "/v1/sys/policies/acl/steward-trading-order-api",
                None,
            )
            .await
            .json();
        assert_eq!(got["data"]["policy"], text);
        assert_eq!(
            v.sim.vault_policy("steward-trading-order-api").as_deref(),
            Some(text)
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn base64_and_json_policies_are_accepted() {
        use base64::Engine;
        let v = Vault::start().await;
        let encoded = base64::engine::general_purpose::STANDARD.encode(ORDER_API);
        v.put_policy("b64", &encoded).await;
        let got = v.root("GET", "/v1/sys/policies/acl/b64", None).await.json();
        assert_eq!(
            got["data"]["policy"], ORDER_API,
            "Vault stores the decoded text"
        );
        let json_policy = r#"{"path": {"secret/*": {"capabilities": ["read"]}}}"#;
        v.put_policy("json", json_policy).await;
        let got = v
            .root("GET", "/v1/sys/policies/acl/json", None)
            .await
            .json();
        assert_eq!(got["data"]["policy"], json_policy);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_empty_or_missing_policy_field_is_rejected() {
        let v = Vault::start().await;
        for body in [json!({}), json!({"policy": ""})] {
            let r = v.root("PUT", "/v1/sys/policies/acl/p", Some(body)).await;
            assert_eq!(r.status, 400);
            assert_eq!(r.errors(), vec!["'policy' parameter not supplied or empty"]);
        }
        let r = v
            .call(Some("root"), "PUT", "/v1/sys/policies/acl/p", None)
            .await;
        assert_eq!(r.status, 400);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn unrecognized_fields_are_ignored_with_a_warning() {
        let v = Vault::start().await;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/p",
                Some(json!({"policy": ORDER_API, "rulez": "x"})),
            )
            .await;
        assert_eq!(r.status, 200, "a warning turns 204 into 200");
        assert_eq!(
            r.json()["warnings"],
            json!(["Endpoint ignored these unrecognized parameters: [rulez]"])
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_malformed_body_is_a_400() {
        let v = Vault::start().await;
        let r = v
            .client
            .put(format!("{}/v1/sys/policies/acl/p", v.base))
            .header("X-Vault-Token", "root")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("failed to parse JSON input: ")
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn legacy_sys_policy_paths_use_rules_and_policies() {
        let v = Vault::start().await;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policy/legacy",
                Some(json!({"rules": ORDER_API})),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["warnings"],
            json!(["'rules' is deprecated, please use 'policy' instead"])
        );
        let got = v.root("GET", "/v1/sys/policy/legacy", None).await.json();
        assert_eq!(got["data"], json!({"name": "legacy", "rules": ORDER_API}));
        assert_eq!(
            got["rules"], ORDER_API,
            "legacy sys/ routes repeat data at the top level"
        );
        let list = v.root("GET", "/v1/sys/policy", None).await.json();
        assert_eq!(
            list["data"]["policies"],
            json!(["default", "legacy", "root"])
        );
        assert_eq!(list["data"]["keys"], list["data"]["policies"]);
        assert_eq!(list["policies"], list["data"]["policies"]);
        let r = v.root("DELETE", "/v1/sys/policy/legacy", None).await;
        assert_eq!(r.status, 204);
        assert!(v.sim.vault_policy("legacy").is_none());
        v.sim.shutdown().await;
    }
}

mod s7_1_names {
    use super::*;

    #[tokio::test]
    async fn names_are_lower_cased_on_write_read_and_delete_with_a_warning() {
        let v = Vault::start().await;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/Steward-App",
                Some(json!({"policy": ORDER_API})),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["warnings"],
            json!(["policy name was converted to steward-app"])
        );
        assert_eq!(v.sim.vault_policy_names(), vec!["default", "steward-app"]);
        let got = v
            .root("GET", "/v1/sys/policies/acl/STEWARD-APP", None)
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json()["data"]["name"], "steward-app");
        let r = v
            .root("DELETE", "/v1/sys/policies/acl/Steward-App", None)
            .await;
        assert_eq!(r.status, 204);
        assert!(v.sim.vault_policy("steward-app").is_none());
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn before_1_10_the_lower_casing_is_silent() {
        let v = Vault::version("1.9.0").await;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/UPPER",
                Some(json!({"policy": ORDER_API})),
            )
            .await;
        assert_eq!(r.status, 204);
        assert!(v.sim.vault_policy("upper").is_some());
        v.sim.shutdown().await;
    }
}

mod s7_1_protected {
    use super::*;

    #[tokio::test]
    async fn root_cannot_be_updated_or_deleted_and_reads_empty() {
        let v = Vault::start().await;
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/root",
                Some(json!({"policy": ORDER_API})),
            )
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec![r#"cannot update "root" policy"#.to_string()])
        );
        let r = v.root("DELETE", "/v1/sys/policies/acl/root", None).await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec![r#"cannot delete "root" policy"#.to_string()])
        );
        let r = v.root("DELETE", "/v1/sys/policies/acl/ROOT", None).await;
        assert_eq!(r.status, 400, "protection applies after lower-casing");
        let r = v.root("GET", "/v1/sys/policies/acl/root", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["data"], json!({"name": "root", "policy": ""}));
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn default_exists_with_the_real_text_can_be_updated_but_not_deleted() {
        let v = Vault::start().await;
        let r = v.root("GET", "/v1/sys/policies/acl/default", None).await;
        let text = r.json()["data"]["policy"].as_str().unwrap().to_string();
        assert!(text.starts_with(
            "\n# Allow tokens to look up their own properties\npath \"auth/token/lookup-self\""
        ));
        assert!(text.contains("path \"identity/oidc/provider/+/authorize\""));
        let r = v.root("DELETE", "/v1/sys/policies/acl/default", None).await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["cannot delete default policy".to_string()])
        );
        v.put_policy("default", ORDER_API).await;
        assert_eq!(v.sim.vault_policy("default").as_deref(), Some(ORDER_API));
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn deleting_a_missing_policy_is_204() {
        let v = Vault::start().await;
        let r = v
            .root("DELETE", "/v1/sys/policies/acl/never-existed", None)
            .await;
        assert_eq!(r.status, 204);
        assert!(r.text.is_empty());
        v.sim.shutdown().await;
    }
}

mod s7_4_validation {
    use super::*;

    async fn rejected(v: &Vault, text: &str) -> String {
        let r = v
            .root(
                "PUT",
                "/v1/sys/policies/acl/bad",
                Some(json!({"policy": text})),
            )
            .await;
        assert_eq!(r.status, 400, "{text}: {}", r.text);
        assert!(v.sim.vault_policy("bad").is_none());
        r.errors().remove(0)
    }

    #[tokio::test]
    async fn invalid_policies_are_rejected_with_vaults_messages() {
        let v = Vault::start().await;
        assert_eq!(
            rejected(&v, "path \"secret/*\" { capabilities = [\"read\"").await,
            "failed to parse policy: At 1:41: error parsing list, expected comma or list end, got: EOF"
        );
        assert_eq!(
            rejected(&v, "path \"secret/*\" { capabilities = [\"raed\"] }").await,
            "failed to parse policy: path \"secret/*\": invalid capability \"raed\""
        );
        assert_eq!(
            rejected(&v, "path \"secret/*\" {\n  capabilites = [\"read\"]\n}\n").await,
            "failed to parse policy: 1 error occurred:\n\t* path \"secret/*\": invalid key \"capabilites\" on line 2\n\n"
        );
        assert_eq!(
            rejected(&v, "path \"secret/+*\" { capabilities = [\"read\"] }").await,
            "failed to parse policy: path \"secret/+*\": invalid use of wildcards ('+*' is forbidden)"
        );
        assert_eq!(
            rejected(&v, "pathh \"x\" { capabilities = [\"read\"] }").await,
            "failed to parse policy: 1 error occurred:\n\t* invalid key \"pathh\" on line 0\n\n"
        );
        assert_eq!(
            rejected(&v, "path \"x\" { policy = \"admin\" }").await,
            "failed to parse policy: path \"x\": invalid policy \"admin\""
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn every_capability_of_current_vault_is_accepted() {
        let v = Vault::start().await;
        v.put_policy(
            "all",
            "path \"a/*\" { capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\", \"subscribe\", \"recover\"] }\npath \"b\" { capabilities = [\"deny\"] }",
        )
        .await;
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn globs_and_plus_segments_are_accepted_where_vault_accepts_them() {
        let v = Vault::start().await;
        // Vault only forbids `+*`; a `*` elsewhere or `+` inside a segment is literal.
        v.put_policy(
            "wild",
            "path \"secret/zip-*\" { capabilities = [\"read\"] }\npath \"secret/+/teamb\" { capabilities = [\"read\"] }\npath \"secret/a*b\" { capabilities = [\"read\"] }\npath \"+/x/+/*\" { capabilities = [\"list\"] }",
        )
        .await;
        v.sim.shutdown().await;
    }
}
