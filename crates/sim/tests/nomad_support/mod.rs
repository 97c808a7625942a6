//! Shared helpers for the Nomad conformance tests.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use steward_sim::{Sim, SimConfig, SimHandle};

/// A response: status, headers, parsed JSON (or the text as a JSON string).
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn index(&self) -> u64 {
        self.header("x-nomad-index").unwrap().parse().unwrap()
    }
}

/// A small Nomad HTTP client.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(sim: &SimHandle) -> Api {
        Api {
            base: sim.nomad_url(),
            client: reqwest::Client::new(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .client
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(20));
        if let Some(t) = &self.token {
            req = req.header("X-Nomad-Token", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call("PUT", path, Some(body)).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }
}

/// A fixture file from `tests/fixtures/nomad/`.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/nomad/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The request body of a fixture.
pub fn request_body(name: &str) -> Value {
    fixture(&format!("{name}.request"))["body"].clone()
}

/// A configuration with short scheduler delays.
pub fn fast_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.nomad.alloc_start_delay_ms = 30;
    c.nomad.alloc_healthy_delay_ms = 30;
    c.nomad.min_healthy_time_factor = 0.002;
    c.nomad.event_heartbeat_ms = 300;
    c
}

pub async fn start() -> SimHandle {
    Sim::start(fast_config()).await.unwrap()
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keys whose values legitimately differ between runs (IDs, indexes, times).
pub const VOLATILE: &[&str] = &[
    "ID",
    "EvalID",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "JobCreateIndex",
    "JobSpecModifyIndex",
    "EvalCreateIndex",
    "Index",
    "SubmitTime",
    "CreateTime",
    "ModifyTime",
    "Status",
    "StatusDescription",
    "RequireProgressBy",
];

/// Checks that every field of `expected` is in `actual` with the same value,
/// recursively, except keys in `ignore`. Returns the mismatches.
pub fn subset_diff(
    expected: &Value,
    actual: &Value,
    path: &str,
    ignore: &[&str],
    out: &mut Vec<String>,
) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                if ignore.contains(&k.as_str()) {
                    continue;
                }
                match a.get(k) {
                    None => out.push(format!("{path}.{k}: missing (expected {ev})")),
                    Some(av) => subset_diff(ev, av, &format!("{path}.{k}"), ignore, out),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!("{path}: {} items, expected {}", a.len(), e.len()));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset_diff(ev, av, &format!("{path}[{i}]"), ignore, out);
            }
        }
        (e, a) => {
            if e != a {
                out.push(format!("{path}: {a}, expected {e}"));
            }
        }
    }
}
