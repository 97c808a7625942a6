//! Reference §7.6 (Nomad ↔ Vault: JWT auth roles) and the §9 observations on auth
//! mounts and JWT roles.
#![allow(clippy::unwrap_used)]

#[path = "vault_support/mod.rs"]
mod support;

use serde_json::{Value, json};
use steward_sim::SimConfig;
use support::Vault;

const ROLE: &str = "/v1/auth/jwt-nomad/role/steward-trading-order-api";

fn role_body() -> Value {
    json!({
        "role_type": "jwt",
        "bound_audiences": ["vault.io"],
        "user_claim": "/nomad_job_id",
        "bound_claims": {"nomad_namespace": "default", "nomad_job_id": "order-api"},
        "claim_mappings": {
            "nomad_namespace": "nomad_namespace",
            "nomad_job_id": "nomad_job_id",
            "nomad_task": "nomad_task"
        },
        "token_type": "service",
        "token_period": "30m",
        "token_policies": ["steward-trading-order-api"]
    })
}

/// A fresh server with no JWT mount, as in the captures (which enabled it).
async fn bare(version: &str) -> Vault {
    let mut config = SimConfig::default();
    config.vault.version = version.into();
    config.vault.jwt_mounts.clear();
    Vault::with(config).await
}

mod fixtures {
    use super::*;

    #[tokio::test]
    async fn the_captured_mount_and_role_sequence_replays_with_the_same_shapes() {
        let v = bare("1.7.3").await;
        v.check_fixture("auth-enable-jwt-nomad", true).await;
        v.check_fixture("auth-enable-jwt-nomad-again", true).await;
        v.check_fixture("auth-list", true).await;
        v.check_fixture("jwt-role-list-empty", true).await;
        v.check_fixture("jwt-role-read-missing", true).await;
        v.check_fixture("jwt-role-write", true).await;
        v.check_fixture("jwt-role-read", true).await;
        v.check_fixture("jwt-role-list", true).await;
        v.check_fixture("jwt-role-list-query", true).await;
        v.check_fixture("jwt-role-delete", true).await;
        v.check_fixture("jwt-role-read-missing", true).await;
        v.check_fixture("jwt-role-delete", true).await;
        v.sim.shutdown().await;
    }

    /// Since Vault 1.11 (vault-plugin-auth-jwt PR #202) a role write without warnings
    /// answers 204; everything else in the captures still holds.
    #[tokio::test]
    async fn current_versions_answer_role_writes_with_204() {
        let v = bare("1.18.3").await;
        v.check_fixture("auth-enable-jwt-nomad", false).await;
        v.check_fixture("auth-enable-jwt-nomad-again", false).await;
        let list = v.check_fixture("auth-list", false).await.json();
        assert_eq!(
            list["data"]["jwt-nomad/"]["deprecation_status"],
            "supported"
        );
        let r = v.replay("jwt-role-write").await;
        assert_eq!(r.status, 204);
        assert!(r.text.is_empty());
        let read = v.check_fixture("jwt-role-read", false).await.json();
        assert_eq!(read["mount_type"], "jwt");
        assert_eq!(read["data"]["user_claim_json_pointer"], false);
        assert_eq!(read["data"]["oauth2_metadata"], Value::Null);
        v.check_fixture("jwt-role-list", false).await;
        v.check_fixture("jwt-role-delete", false).await;
        v.sim.shutdown().await;
    }
}

mod mounts {
    use super::*;

    #[tokio::test]
    async fn jwt_nomad_is_enabled_by_default_for_steward_dev() {
        let v = Vault::start().await;
        assert_eq!(
            v.sim.vault_auth_mounts(),
            vec![
                ("jwt-nomad/".to_string(), "jwt".to_string()),
                ("token/".to_string(), "token".to_string())
            ]
        );
        let r = v.root("LIST", "/v1/auth/jwt-nomad/role", None).await;
        assert_eq!((r.status, r.errors().len()), (404, 0), "empty list");
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn enable_read_and_disable() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                "/v1/sys/auth/jwt-other",
                Some(json!({"type": "jwt", "description": "d"})),
            )
            .await;
        assert_eq!(r.status, 204);
        let r = v.root("GET", "/v1/sys/auth/jwt-other", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["data"]["description"], "d");
        assert!(
            r.json()["data"]["accessor"]
                .as_str()
                .unwrap()
                .starts_with("auth_jwt_")
        );
        let r = v.root("DELETE", "/v1/sys/auth/jwt-other", None).await;
        assert_eq!(r.status, 204);
        let r = v.root("DELETE", "/v1/sys/auth/jwt-other", None).await;
        assert_eq!(r.status, 204, "disabling nothing succeeds");
        let r = v.root("GET", "/v1/sys/auth/jwt-other", None).await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["No auth engine at jwt-other/".to_string()])
        );
        let r = v.root("GET", "/v1/auth/jwt-other/role/x", None).await;
        assert_eq!(r.status, 404);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn enable_errors_match_vault() {
        let v = Vault::start().await;
        let cases = [
            (
                "jwt-nomad",
                json!({"type": "jwt"}),
                "path is already in use at jwt-nomad/",
            ),
            (
                "token",
                json!({"type": "jwt"}),
                "path is already in use at token/",
            ),
            ("x", json!({}), "backend type must be specified as a string"),
            (
                "x",
                json!({"type": "nonsense"}),
                "plugin not found in the catalog: nonsense",
            ),
            (
                "x",
                json!({"type": "token"}),
                "token credential backend cannot be instantiated",
            ),
        ];
        for (path, body, msg) in cases {
            let r = v
                .root("POST", &format!("/v1/sys/auth/{path}"), Some(body))
                .await;
            assert_eq!(
                (r.status, r.errors()),
                (400, vec![msg.to_string()]),
                "{path}"
            );
        }
        let r = v.root("DELETE", "/v1/sys/auth/token", None).await;
        assert_eq!(r.status, 400);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn disabling_a_mount_drops_its_roles() {
        let v = Vault::start().await;
        assert_eq!(v.root("POST", ROLE, Some(role_body())).await.status, 204);
        v.root("DELETE", "/v1/sys/auth/jwt-nomad", None).await;
        v.root(
            "POST",
            "/v1/sys/auth/jwt-nomad",
            Some(json!({"type": "jwt"})),
        )
        .await;
        assert!(v.sim.vault_jwt_role_names("jwt-nomad").is_empty());
        v.sim.shutdown().await;
    }
}

mod roles {
    use super::*;

    #[tokio::test]
    async fn a_role_reads_back_with_zero_values_and_seconds() {
        let v = Vault::start().await;
        let r = v.root("POST", ROLE, Some(role_body())).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let data = v.root("GET", ROLE, None).await.json()["data"].clone();
        assert_eq!(data["token_period"], 1800);
        assert_eq!(data["bound_audiences"], json!(["vault.io"]));
        assert_eq!(data["bound_claims_type"], "string");
        assert_eq!(data["token_bound_cidrs"], json!([]));
        assert_eq!(data["allowed_redirect_uris"], Value::Null);
        assert_eq!(data["expiration_leeway"], 0);
        assert_eq!(data["token_ttl"], 0);
        assert_eq!(data["token_type"], "service");
        assert_eq!(
            v.sim
                .vault_jwt_role("jwt-nomad", "steward-trading-order-api"),
            Some(data)
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_string_audience_becomes_a_list_and_durations_accept_numbers() {
        let v = Vault::start().await;
        let mut body = role_body();
        body["bound_audiences"] = json!("vault.io, other");
        body["token_period"] = json!(600);
        body["token_ttl"] = json!("1h");
        body["token_max_ttl"] = json!("2h");
        body["token_policies"] = json!("a,b");
        assert_eq!(v.root("POST", ROLE, Some(body)).await.status, 204);
        let data = v.root("GET", ROLE, None).await.json()["data"].clone();
        assert_eq!(data["bound_audiences"], json!(["vault.io", "other"]));
        assert_eq!(data["token_period"], 600);
        assert_eq!(data["token_ttl"], 3600);
        assert_eq!(data["token_max_ttl"], 7200);
        assert_eq!(data["token_policies"], json!(["a", "b"]));
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn validation_matches_the_plugin() {
        let v = Vault::start().await;
        let with = |patch: Value| {
            let mut b = role_body();
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    b.as_object_mut().unwrap().remove(k);
                } else {
                    b[k] = val.clone();
                }
            }
            b
        };
        let cases = [
            (json!({"role_type": "saml"}), "invalid 'role_type': saml"),
            (
                json!({"user_claim": null}),
                "a user claim must be defined on the role",
            ),
            (
                json!({"bound_audiences": null, "bound_claims": null}),
                "must have at least one bound constraint when creating/updating a role",
            ),
            (
                json!({"token_type": "weird"}),
                "invalid 'token_type' value \"weird\"",
            ),
            (
                json!({"bound_claims_type": "regex"}),
                "invalid 'bound_claims_type': regex",
            ),
            (
                json!({"token_period": "abc"}),
                "error converting input abc for field \"token_period\": time: invalid duration \"abc\"",
            ),
            (
                json!({"claim_mappings": {"a": "role"}}),
                "metadata key \"role\" is reserved and may not be a mapping destination",
            ),
            (
                json!({"claim_mappings": {"a": "x", "b": "x"}}),
                "multiple keys are mapped to metadata key \"x\"",
            ),
            (
                json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ),
            (
                json!({"token_period": "800h"}),
                "'period' of '\"800h0m0s\"' is greater than the backend's maximum lease TTL of '\"768h0m0s\"'",
            ),
            (
                json!({"bound_claims_type": "glob", "bound_claims": {"a": 5}}),
                "claim is not a string or list: 5",
            ),
            (
                json!({"role_type": null}),
                "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
            ),
            (
                json!({"token_type": "batch"}),
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
            ),
        ];
        for (patch, msg) in cases {
            let r = v.root("POST", ROLE, Some(with(patch.clone()))).await;
            assert_eq!(
                (r.status, r.errors()),
                (400, vec![msg.to_string()]),
                "{patch}"
            );
        }
        assert!(v.sim.vault_jwt_role_names("jwt-nomad").is_empty());
        let ok = with(json!({"bound_audiences": null, "bound_subject": "x"}));
        assert_eq!(
            v.root("POST", ROLE, Some(ok)).await.status,
            204,
            "any bound constraint will do"
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn role_names_are_lower_cased_and_listed_sorted() {
        let v = Vault::start().await;
        for name in ["Zeta", "alpha", "mid.dle"] {
            let r = v
                .root(
                    "POST",
                    &format!("/v1/auth/jwt-nomad/role/{name}"),
                    Some(role_body()),
                )
                .await;
            assert_eq!(r.status, 204);
        }
        let list = v.root("LIST", "/v1/auth/jwt-nomad/role", None).await.json();
        assert_eq!(list["data"]["keys"], json!(["alpha", "mid.dle", "zeta"]));
        let r = v.root("GET", "/v1/auth/jwt-nomad/role/ZETA", None).await;
        assert_eq!(r.status, 200);
        let r = v.root("GET", "/v1/auth/jwt-nomad/role/-bad", None).await;
        assert_eq!(
            (r.status, r.errors()),
            (404, vec!["unsupported path".to_string()])
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_update_merges_into_the_stored_role() {
        let v = Vault::start().await;
        v.root("POST", ROLE, Some(role_body())).await;
        let r = v
            .root(
                "POST",
                ROLE,
                Some(json!({"role_type": "jwt", "token_policies": ["x"]})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let data = v.root("GET", ROLE, None).await.json()["data"].clone();
        assert_eq!(data["token_policies"], json!(["x"]));
        assert_eq!(
            data["user_claim"], "/nomad_job_id",
            "unchanged fields are kept"
        );
        assert_eq!(data["token_period"], 1800);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn warnings_turn_a_write_into_a_200() {
        let v = Vault::start().await;
        let mut body = role_body();
        body["token_max_ttl"] = json!("1000h");
        body["made_up"] = json!(1);
        let r = v.root("POST", ROLE, Some(body)).await;
        assert_eq!(r.status, 200);
        let warnings = r.json()["warnings"].clone();
        assert_eq!(warnings.as_array().unwrap().len(), 2, "{warnings}");
        assert_eq!(
            warnings[1],
            "Endpoint ignored these unrecognized parameters: [made_up]"
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn deprecated_fields_are_upgraded() {
        let v = Vault::start().await;
        let mut body = role_body();
        body.as_object_mut().unwrap().remove("token_policies");
        body.as_object_mut().unwrap().remove("token_period");
        body["policies"] = json!("B,a");
        body["period"] = json!("1h");
        assert_eq!(v.root("POST", ROLE, Some(body)).await.status, 204);
        let data = v.root("GET", ROLE, None).await.json()["data"].clone();
        assert_eq!(data["token_policies"], json!(["a", "b"]));
        assert_eq!(data["policies"], json!(["a", "b"]));
        assert_eq!(data["token_period"], 3600);
        assert_eq!(data["period"], 3600);
        v.sim.shutdown().await;
    }
}

mod config {
    use super::*;

    const CONFIG: &str = "/v1/auth/jwt-nomad/config";

    #[tokio::test]
    async fn an_unreachable_jwks_url_fails_with_400() {
        let v = Vault::start().await;
        let r = v
            .root(
                "POST",
                CONFIG,
                Some(json!({"jwks_url": "https://nomad.invalid:4646/.well-known/jwks.json"})),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.errors()[0].starts_with("error checking jwks URL: "),
            "{:?}",
            r.errors()
        );
        let r = v.root("GET", CONFIG, None).await;
        assert_eq!(r.status, 404, "nothing was stored");
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_simulated_nomad_jwks_endpoint_and_listed_urls_are_reachable() {
        let mut config = SimConfig::default();
        config.vault.reachable_jwks_urls =
            vec!["https://nomad.example/.well-known/jwks.json".into()];
        let v = Vault::with(config).await;
        let nomad = format!("{}/.well-known/jwks.json", v.sim.nomad_url());
        let r = v
            .root("POST", CONFIG, Some(json!({"jwks_url": nomad, "jwt_supported_algs": ["RS256", "EdDSA"], "default_role": "Nomad-Workloads"})))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let data = v.root("GET", CONFIG, None).await.json()["data"].clone();
        assert_eq!(data["jwks_url"], nomad.as_str());
        assert_eq!(data["default_role"], "nomad-workloads");
        let r = v
            .root(
                "POST",
                CONFIG,
                Some(json!({"jwks_url": "https://nomad.example/.well-known/jwks.json"})),
            )
            .await;
        assert_eq!(r.status, 204);
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn exactly_one_key_source_and_valid_pem_keys() {
        let v = Vault::start().await;
        let r = v.root("POST", CONFIG, Some(json!({}))).await;
        assert_eq!(
            r.errors(),
            vec![
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set"
            ]
        );
        let r = v
            .root(
                "POST",
                CONFIG,
                Some(json!({"jwt_validation_pubkeys": ["not a key"]})),
            )
            .await;
        assert_eq!(
            r.errors(),
            vec!["error parsing public key: data does not contain any valid public keys"]
        );
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let r = v
            .root(
                "POST",
                CONFIG,
                Some(json!({"jwt_validation_pubkeys": [pem], "bound_issuer": "nomad"})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = v
            .root(
                "POST",
                CONFIG,
                Some(json!({"oidc_discovery_url": "https://accounts.example"})),
            )
            .await;
        assert_eq!(
            r.status, 204,
            "discovery URLs are accepted without a request"
        );
        v.sim.shutdown().await;
    }

    #[tokio::test]
    async fn login_is_not_simulated_but_checks_its_arguments() {
        let v = Vault::start().await;
        let r = v
            .call(
                None,
                "POST",
                "/v1/auth/jwt-nomad/login",
                Some(json!({"jwt": "x"})),
            )
            .await;
        assert_eq!(
            (r.status, r.errors()),
            (400, vec!["missing role".to_string()])
        );
        v.sim.shutdown().await;
    }
}
