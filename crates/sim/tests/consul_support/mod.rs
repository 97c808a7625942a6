//! Shared helpers for the Consul conformance tests: a small HTTP client against the
//! simulator, the golden fixtures, and JSON shape comparison.
#![allow(clippy::unwrap_used, dead_code)]

use serde_json::Value;
use std::time::Duration;
use steward_sim::{Sim, SimConfig, SimHandle};

/// Starts a simulator with the default configuration.
pub async fn start() -> SimHandle {
    Sim::start(SimConfig::default()).await.unwrap()
}

/// Starts a simulator after adjusting the configuration.
pub async fn start_with(f: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut cfg = SimConfig::default();
    f(&mut cfg);
    Sim::start(cfg).await.unwrap()
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    pub fn index(&self) -> u64 {
        self.header("x-consul-index")
            .unwrap_or_else(|| panic!("no X-Consul-Index: {self:?}"))
            .parse()
            .unwrap()
    }
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type")
    }
}

/// A client bound to the simulated Consul.
#[derive(Clone)]
pub struct Consul {
    pub base: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Consul {
    pub fn new(sim: &SimHandle) -> Consul {
        Consul {
            base: sim.consul_url(),
            token: None,
            client: reqwest::Client::new(),
        }
    }

    pub fn with_token(&self, token: &str) -> Consul {
        Consul {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Resp {
        let url = format!("{}{}", self.base, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .client
            .request(method, url)
            .timeout(Duration::from_secs(20));
        if let Some(t) = &self.token {
            rb = rb.header("X-Consul-Token", t);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }
    pub async fn put(&self, path: &str, body: &str) -> Resp {
        self.call("PUT", path, Some(body.as_bytes().to_vec())).await
    }
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Resp {
        self.call("PUT", path, Some(body)).await
    }
    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.call("PUT", path, Some(serde_json::to_vec(body).unwrap()))
            .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }
}

/// A golden fixture: `(request, response)`.
pub fn fixture(name: &str) -> (Value, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/consul");
    let read = |suffix: &str| -> Value {
        let p = format!("{dir}/{name}.{suffix}.json");
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .unwrap()
    };
    (read("request"), read("response"))
}

/// The body a fixture request sent, as bytes.
pub fn fixture_body(req: &Value) -> Vec<u8> {
    match &req["body"] {
        Value::Null => Vec::new(),
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap(),
    }
}

/// Replays a fixture request against the simulator.
pub async fn replay(c: &Consul, name: &str) -> (Resp, Value) {
    let (req, resp) = fixture(name);
    let method = req["method"].as_str().unwrap();
    let path = req["path"].as_str().unwrap();
    let body = match method {
        "GET" | "DELETE" => None,
        _ => Some(fixture_body(&req)),
    };
    (c.call(method, path, body).await, resp)
}

/// Asserts the same JSON shape: equal key sets in objects (recursively), equal array
/// lengths, equal value types. Values are not compared.
pub fn assert_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: Vec<&String> = a.keys().collect();
            let ek: Vec<&String> = e.keys().collect();
            let mut aks = ak.clone();
            let mut eks = ek.clone();
            aks.sort();
            eks.sort();
            assert_eq!(
                aks, eks,
                "keys differ at {path}\nactual: {actual}\nexpected: {expected}"
            );
            for (k, v) in e {
                assert_shape(&a[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(
                a.len(),
                e.len(),
                "array length differs at {path}: {actual} vs {expected}"
            );
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_shape(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("type differs at {path}: {actual} vs {expected}"),
    }
}

/// Removes volatile fields (IDs, indexes, timestamps) everywhere, for value comparison.
pub fn scrub(v: &Value) -> Value {
    const VOLATILE: &[&str] = &[
        "CreateIndex",
        "ModifyIndex",
        "ID",
        "Session",
        "LastTransitionTime",
    ];
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), scrub(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        other => other.clone(),
    }
}

/// Base64 of a string (KV values).
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Runs a future with a hard deadline (every wait in a test is bounded).
pub async fn bounded<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step took too long")
}
