//! Golden-fixture helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use steward_hashi::{Product, RawResponse, RequestSpec};

/// One captured request/response pair.
pub struct Fixture {
    pub name: String,
    pub request: Value,
    pub response: Value,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn load(product: &str, name: &str) -> Fixture {
    let read = |suffix: &str| -> Value {
        let path = dir().join(product).join(format!("{name}.{suffix}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    };
    Fixture {
        name: name.to_owned(),
        request: read("request"),
        response: read("response"),
    }
}

impl Fixture {
    pub fn method(&self) -> Method {
        Method::from_bytes(self.request["method"].as_str().unwrap().as_bytes()).unwrap()
    }

    /// Path and query exactly as captured.
    pub fn uri(&self) -> &str {
        self.request["path"].as_str().unwrap()
    }

    pub fn request_body(&self) -> &Value {
        &self.request["body"]
    }

    pub fn status(&self) -> u16 {
        self.response["status"].as_u64().unwrap() as u16
    }

    /// The captured response as the executor would hand it to a parser.
    pub fn raw(&self, product: Product) -> RawResponse {
        let mut headers = HeaderMap::new();
        for (k, v) in self.response["headers"].as_object().unwrap() {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
            );
        }
        let body = match self.response["body_format"].as_str().unwrap() {
            "json" => serde_json::to_vec(&self.response["body"]).unwrap(),
            "text" => self.response["body"].as_str().unwrap().as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let path = self.uri().split('?').next().unwrap().to_owned();
        RawResponse::new(product, self.method(), path, self.status(), headers, body)
    }

    /// Asserts that a built request matches the captured method, path+query and body.
    pub fn assert_request(&self, spec: &RequestSpec) {
        assert_eq!(spec.method, self.method(), "{}: method", self.name);
        assert_eq!(spec.uri(), self.uri(), "{}: uri", self.name);
        let body = self.request_body();
        match &spec.body {
            steward_hashi::Body::Empty => assert!(body.is_null(), "{}: body", self.name),
            steward_hashi::Body::Json(v) => assert_eq!(v, body, "{}: body", self.name),
            steward_hashi::Body::Bytes(b) => {
                assert_eq!(
                    b.as_slice(),
                    body.as_str().unwrap().as_bytes(),
                    "{}: body",
                    self.name
                )
            }
        }
    }
}
