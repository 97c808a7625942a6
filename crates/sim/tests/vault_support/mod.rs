//! Helpers shared by the `vault_*` conformance tests: a simulator with a Vault
//! client, raw requests (including the LIST verb), and comparison against the
//! captured fixtures in `tests/fixtures/vault/`.
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use steward_sim::{Sim, SimConfig, SimHandle, TokenConfig};

/// A running simulator and a client for its Vault API.
pub struct Vault {
    pub sim: SimHandle,
    pub client: reqwest::Client,
    pub base: String,
}

/// A response, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON (`Value::Null` when empty).
    pub fn json(&self) -> Value {
        if self.text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
        }
    }

    /// A header value as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The `errors` list of an error body.
    pub fn errors(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {}", self.text))
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    }
}

impl Vault {
    /// A simulator with default settings.
    pub async fn start() -> Vault {
        Vault::with(SimConfig::default()).await
    }

    /// A simulator emulating another Vault version.
    pub async fn version(version: &str) -> Vault {
        let mut config = SimConfig::default();
        config.vault.version = version.to_string();
        Vault::with(config).await
    }

    /// A simulator with extra Vault tokens: `(secret, rules)`.
    pub async fn with_tokens(tokens: &[(&str, &str)]) -> Vault {
        let mut config = SimConfig::default();
        for (secret, rules) in tokens {
            config.tokens.push(vault_token(secret, rules));
        }
        Vault::with(config).await
    }

    /// A simulator with the given configuration.
    pub async fn with(config: SimConfig) -> Vault {
        let sim = Sim::start(config).await.unwrap();
        let base = sim.vault_url();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Vault { sim, client, base }
    }

    /// Sends `method path` with the root token.
    pub async fn root(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(Some("root"), method, path, body).await
    }

    /// Sends `method path` with an optional token.
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Reply {
            status,
            headers,
            text,
        }
    }

    /// Writes a policy with the root token and asserts success.
    pub async fn put_policy(&self, name: &str, text: &str) {
        let r = self
            .root(
                "PUT",
                &format!("/v1/sys/policies/acl/{name}"),
                Some(serde_json::json!({ "policy": text })),
            )
            .await;
        assert!(r.status == 204 || r.status == 200, "{r:?}");
    }

    /// Mints a token with `policies` through `auth/token/create`.
    pub async fn mint(&self, policies: &[&str]) -> String {
        let r = self
            .root(
                "POST",
                "/v1/auth/token/create",
                Some(serde_json::json!({ "policies": policies })),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Replays a fixture request (method, path, body, token header).
    pub async fn replay(&self, name: &str) -> Reply {
        let req = fixture(&format!("{name}.request.json"));
        let token = req["headers"]["X-Vault-Token"].as_str();
        let body = (!req["body"].is_null()).then(|| req["body"].clone());
        self.call(
            token,
            req["method"].as_str().unwrap(),
            req["path"].as_str().unwrap(),
            body,
        )
        .await
    }

    /// Replays a fixture and compares the response with the captured one.
    pub async fn check_fixture(&self, name: &str, exact_keys: bool) -> Reply {
        let actual = self.replay(name).await;
        let expected = fixture(&format!("{name}.response.json"));
        assert_shape(name, &actual, &expected, exact_keys);
        actual
    }
}

/// A Vault token entry for `SimConfig::tokens`.
pub fn vault_token(secret: &str, rules: &str) -> TokenConfig {
    TokenConfig {
        product: steward_sim::Product::Vault,
        secret: secret.to_string(),
        management: false,
        rules: rules.to_string(),
    }
}

/// Reads `tests/fixtures/vault/<file>`.
pub fn fixture(file: &str) -> Value {
    let path = format!("{}/tests/fixtures/vault/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Values that legitimately differ between servers and runs.
const VOLATILE: &[&str] = &[
    "request_id",
    "accessor",
    "uuid",
    "creation_time",
    "issue_time",
    "server_time_utc",
    "cluster_name",
    "cluster_id",
    "version",
];

/// Compares status, Content-Type, Cache-Control and the body shape: the same keys
/// (or at least the fixture's keys unless `exact_keys`), the same JSON types, and the
/// same values except for volatile fields.
pub fn assert_shape(name: &str, actual: &Reply, expected: &Value, exact_keys: bool) {
    assert_eq!(
        actual.status,
        expected["status"].as_u64().unwrap() as u16,
        "{name}: status ({})",
        actual.text
    );
    assert_eq!(
        actual.header("content-type").as_deref(),
        expected["headers"]["Content-Type"].as_str(),
        "{name}: Content-Type"
    );
    assert_eq!(
        actual.header("cache-control").as_deref(),
        Some("no-store"),
        "{name}: Cache-Control"
    );
    match expected["body_format"].as_str().unwrap() {
        "empty" => assert!(actual.text.is_empty(), "{name}: body {}", actual.text),
        "json" => compare(name, "$", &actual.json(), &expected["body"], exact_keys),
        other => panic!("{name}: unexpected body_format {other}"),
    }
}

fn compare(name: &str, at: &str, actual: &Value, expected: &Value, exact_keys: bool) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: {at}.{k} missing in {actual}"));
                if VOLATILE.contains(&k.as_str()) {
                    assert_eq!(
                        std::mem::discriminant(av),
                        std::mem::discriminant(ev),
                        "{name}: type of {at}.{k}"
                    );
                    continue;
                }
                compare(name, &format!("{at}.{k}"), av, ev, exact_keys);
            }
            if exact_keys {
                let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
                assert!(
                    extra.is_empty(),
                    "{name}: unexpected keys {extra:?} at {at}"
                );
            }
        }
        _ => assert_eq!(actual, expected, "{name}: value at {at}"),
    }
}
