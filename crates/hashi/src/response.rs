//! Raw responses, blocking-query metadata and the `Response<T>` returned by reads.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use crate::error::{Error, Product, Result, classify_status};

/// Blocking-query metadata of a read (`X-Consul-*` / `X-Nomad-*` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-*-Index`: pass it as the next blocking index. 0 when the header is absent.
    pub index: u64,
    /// `X-*-KnownLeader`.
    pub known_leader: bool,
    /// `X-*-LastContact`: time since the serving server heard from the leader.
    pub last_contact: Duration,
}

/// A decoded read with its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Response<T> {
    /// The decoded value.
    pub value: T,
    /// Index, leader and contact metadata.
    pub meta: QueryMeta,
}

impl<T> Response<T> {
    /// Transforms the value, keeping the metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            value: f(self.value),
            meta: self.meta,
        }
    }
}

/// An HTTP answer before decoding, with the request it answers (for error context).
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// Product.
    pub product: Product,
    /// Method of the request.
    pub method: Method,
    /// Path of the request (no query).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Response headers (names are case-insensitive).
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl RawResponse {
    /// Builds a response (used by the executor and by tests with golden data).
    pub fn new(
        product: Product,
        method: Method,
        path: impl Into<String>,
        status: u16,
        headers: HeaderMap,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            product,
            method,
            path: path.into(),
            status,
            headers,
            body: body.into(),
        }
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decodes the body as JSON.
    ///
    /// # Errors
    /// [`Error::Decode`] when the body is not the expected JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e.to_string()))
    }

    /// The body as text (lossy UTF-8), trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }

    /// A [`Error::Decode`] for this response.
    pub fn decode_error(&self, message: impl Into<String>) -> Error {
        Error::Decode {
            product: self.product,
            method: self.method.clone(),
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// [`Error::FilteredByAcls`] when Consul says it left entries out of this answer
    /// because the token may not read them (`X-Consul-Results-Filtered-By-ACLs: true`).
    ///
    /// # Errors
    /// `FilteredByAcls`.
    pub fn reject_filtered_by_acls(&self) -> Result<()> {
        let filtered = self
            .headers
            .get("x-consul-results-filtered-by-acls")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if filtered {
            return Err(Error::FilteredByAcls {
                product: self.product,
                method: self.method.clone(),
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The server's error text: Consul/Nomad plain text, Vault `{"errors": [...]}` joined.
    pub fn error_message(&self) -> String {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body)
            && let Some(errors) = v.get("errors").and_then(|e| e.as_array())
        {
            return errors
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string())
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        let mut text = self.text();
        if text.len() > 4096 {
            let mut cut = 4096;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        text
    }

    /// The error a non-accepted status maps to.
    pub fn status_error(&self) -> Error {
        classify_status(
            self.product,
            &self.method,
            &self.path,
            self.status,
            self.error_message(),
        )
    }

    /// Parses the blocking-query metadata headers.
    ///
    /// # Errors
    /// [`Error::Decode`] when a header is present but unparseable.
    pub fn meta(&self) -> Result<QueryMeta> {
        let prefix = match self.product {
            Product::Consul => "x-consul-",
            Product::Nomad => "x-nomad-",
            Product::Vault => return Ok(QueryMeta::default()),
        };
        let get = |name: &str| -> Result<Option<&str>> {
            let full = format!("{prefix}{name}");
            match self.headers.get(full.as_str()) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.trim()))
                    .map_err(|_| self.decode_error(format!("header {full} is not text"))),
            }
        };
        let index = match get("index")? {
            None => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| self.decode_error(format!("bad {prefix}index header {v:?}")))?,
        };
        let known_leader = match get("knownleader")? {
            None => false,
            Some(v) => crate::config::parse_go_bool("knownleader", v)
                .map_err(|_| self.decode_error(format!("bad {prefix}knownleader header {v:?}")))?,
        };
        let last_contact =
            match get("lastcontact")? {
                None => Duration::ZERO,
                Some(v) => Duration::from_millis(v.parse::<u64>().map_err(|_| {
                    self.decode_error(format!("bad {prefix}lastcontact header {v:?}"))
                })?),
            };
        Ok(QueryMeta {
            index,
            known_leader,
            last_contact,
        })
    }

    /// Decodes the JSON body together with the metadata.
    ///
    /// # Errors
    /// [`Error::Decode`] for a bad body or header.
    pub fn json_with_meta<T: DeserializeOwned>(&self) -> Result<Response<T>> {
        Ok(Response {
            meta: self.meta()?,
            value: self.json()?,
        })
    }

    /// Decodes `true`/`false` (Consul KV and config writes).
    ///
    /// # Errors
    /// [`Error::Decode`] when the body is not a JSON boolean.
    pub fn bool(&self) -> Result<bool> {
        self.json::<bool>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(product: Product, headers: &[(&str, &str)]) -> RawResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawResponse::new(product, Method::GET, "/v1/x", 200, map, "[]")
    }

    #[test]
    fn meta_headers_parse_in_any_case() {
        let r = raw(
            Product::Consul,
            &[
                ("X-Consul-Index", "42"),
                ("X-Consul-Knownleader", "true"),
                ("x-consul-lastcontact", "17"),
            ],
        );
        assert_eq!(
            r.meta().unwrap(),
            QueryMeta {
                index: 42,
                known_leader: true,
                last_contact: Duration::from_millis(17)
            }
        );
        let r = raw(
            Product::Nomad,
            &[("X-NOMAD-INDEX", "9"), ("X-Nomad-KnownLeader", "false")],
        );
        let m = r.meta().unwrap();
        assert_eq!((m.index, m.known_leader), (9, false));
    }

    #[test]
    fn absent_meta_is_default_but_garbage_is_an_error() {
        assert_eq!(
            raw(Product::Consul, &[]).meta().unwrap(),
            QueryMeta::default()
        );
        let err = raw(Product::Consul, &[("X-Consul-Index", "abc")])
            .meta()
            .unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
        assert!(
            raw(Product::Nomad, &[("X-Nomad-KnownLeader", "maybe")])
                .meta()
                .is_err()
        );
        assert!(
            raw(Product::Consul, &[("X-Consul-LastContact", "-1")])
                .meta()
                .is_err()
        );
    }

    #[test]
    fn vault_error_bodies_are_joined() {
        let r = RawResponse::new(
            Product::Vault,
            Method::GET,
            "/v1/x",
            400,
            HeaderMap::new(),
            r#"{"errors":["a","b"]}"#,
        );
        assert_eq!(r.error_message(), "a; b");
        assert!(matches!(
            r.status_error(),
            Error::InvalidRequest { status: 400, .. }
        ));
    }
}
