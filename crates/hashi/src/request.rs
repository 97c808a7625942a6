//! Pure request descriptions ([`RequestSpec`]) and the query/write options.

use std::time::Duration;

use http::Method;

use crate::error::{Error, Product, Result};
use crate::util::{encode_query, go_duration};

/// The body of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(serde_json::Value),
    /// Raw bytes (Consul KV values).
    Bytes(Vec<u8>),
}

/// Whether sending a request twice is safe; decides retries (reference §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// A read (or a dry run such as a Nomad plan): retried on retryable failures.
    Read,
    /// A write guarded by check-and-set (`cas`, `EnforceIndex`, a fenced txn). A
    /// duplicate could not clobber a newer value, but it is still sent again only when
    /// the server surely did not apply the first (nothing sent, or 429): after a 5xx or
    /// a reset the write may have landed, and the caller must look before writing again
    /// (as Consul's and Nomad's own clients leave it to their callers).
    CasGuarded,
    /// A blind write: retried only when the connection failed before anything was sent.
    Unguarded,
}

/// One HTTP request, described without doing I/O. The executor adds the base URL,
/// auth headers and the configured default query parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSpec {
    /// HTTP method (`LIST` for Vault lists).
    pub method: Method,
    /// Percent-encoded path starting with `/v1/`.
    pub path: String,
    /// Query parameters in order; an empty value renders as a bare flag (`?recurse`).
    pub query: Vec<(String, String)>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
    /// Retry class.
    pub idempotency: Idempotency,
    /// Non-2xx statuses that are normal answers for this call and go to the parser
    /// instead of becoming errors (KV 404, txn 409, Vault health codes...).
    pub accept: Vec<u16>,
    /// For blocking reads: the wait the server may hold the request (sets the timeout).
    pub blocking_wait: Option<Duration>,
}

impl RequestSpec {
    /// A request with no query, headers or body, classed as a read.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            idempotency: Idempotency::Read,
            accept: Vec::new(),
            blocking_wait: None,
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `PUT path` (unguarded until said otherwise).
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path).idempotency(Idempotency::Unguarded)
    }

    /// `DELETE path` (unguarded until said otherwise).
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path).idempotency(Idempotency::Unguarded)
    }

    /// Adds `key=value`.
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds a bare flag (`?recurse`).
    pub fn flag(mut self, key: &str) -> Self {
        self.query.push((key.to_owned(), String::new()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, value: serde_json::Value) -> Self {
        self.body = Body::Json(value);
        self
    }

    /// Sets a raw body.
    pub fn bytes(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(value.into());
        self
    }

    /// Sets the retry class.
    pub fn idempotency(mut self, i: Idempotency) -> Self {
        self.idempotency = i;
        self
    }

    /// Hands these statuses to the parser instead of turning them into errors.
    pub fn accept(mut self, statuses: &[u16]) -> Self {
        self.accept.extend_from_slice(statuses);
        self
    }

    /// The value of a query parameter, if set.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when the query has this key (flag or value).
    pub fn has_query(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }

    /// The rendered query string without `?` (empty when there is none).
    pub fn query_string(&self) -> String {
        render_query(&self.query)
    }

    /// Path and query, as they go on the wire: `/v1/kv/a?recurse&index=5`.
    pub fn uri(&self) -> String {
        let q = self.query_string();
        if q.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{q}", self.path)
        }
    }

    /// The JSON body, if any (for tests and logging).
    pub fn json_body(&self) -> Option<&serde_json::Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            _ => None,
        }
    }
}

pub(crate) fn render_query(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                encode_query(k)
            } else {
                format!("{}={}", encode_query(k), encode_query(v))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Default and maximum blocking wait of a product (reference §2.5, §6.1).
pub(crate) fn wait_limits(product: Product) -> (Duration, Duration) {
    match product {
        Product::Consul => (Duration::from_secs(300), Duration::from_secs(600)),
        Product::Nomad | Product::Vault => (Duration::from_secs(300), Duration::from_secs(300)),
    }
}

/// Renders a wait as whole milliseconds, clamping anything in (0, 1 ms) up to `1ms`
/// (what the Go clients' `durToMsec` does).
pub fn render_wait(wait: Duration) -> String {
    let ms = wait.as_millis();
    let ms = if ms == 0 && !wait.is_zero() { 1 } else { ms };
    format!("{ms}ms")
}

/// Options of a read: blocking index and wait, consistency, namespace, filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Blocking index (`X-*-Index` of the previous answer); 0 = do not block.
    pub index: u64,
    /// How long the server may block (`wait`); server default when `None`.
    pub wait: Option<Duration>,
    /// Any server may answer (`?stale`).
    pub stale: bool,
    /// The leader must confirm leadership first (`?consistent`, Consul only).
    pub consistent: bool,
    /// Namespace (`ns` for Consul Enterprise, `namespace` for Nomad; `*` = all).
    pub namespace: Option<String>,
    /// Filter expression (`filter`).
    pub filter: Option<String>,
    /// Consul datacenter (`dc`).
    pub datacenter: Option<String>,
    /// Nomad region (`region`).
    pub region: Option<String>,
}

impl QueryOptions {
    /// Non-blocking default-consistency read.
    pub fn new() -> Self {
        Self::default()
    }

    /// A blocking read from `index`, waiting at most `wait`.
    pub fn blocking(index: u64, wait: Duration) -> Self {
        Self {
            index,
            wait: Some(wait),
            ..Self::default()
        }
    }

    /// Sets the blocking index.
    pub fn with_index(mut self, index: u64) -> Self {
        self.index = index;
        self
    }

    /// Sets the wait.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Allows any server to answer.
    pub fn stale(mut self) -> Self {
        self.stale = true;
        self
    }

    /// Requires a leader-confirmed answer.
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets a filter expression.
    pub fn filter(mut self, f: impl Into<String>) -> Self {
        self.filter = Some(f.into());
        self
    }

    /// Sets the Consul datacenter.
    pub fn datacenter(mut self, dc: impl Into<String>) -> Self {
        self.datacenter = Some(dc.into());
        self
    }

    /// Sets the Nomad region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Adds these options to `spec` for `product`.
    ///
    /// # Errors
    /// `InvalidArgument` for `stale` together with `consistent`, or options the product
    /// does not have (Nomad has no `consistent`, Vault no blocking queries).
    pub fn apply(&self, product: Product, mut spec: RequestSpec) -> Result<RequestSpec> {
        if self.stale && self.consistent {
            return Err(Error::invalid_argument(
                "stale and consistent are mutually exclusive",
            ));
        }
        match product {
            Product::Consul => {
                if let Some(dc) = &self.datacenter {
                    spec = spec.query("dc", dc);
                }
                if let Some(ns) = &self.namespace {
                    spec = spec.query("ns", ns);
                }
                if self.consistent {
                    spec = spec.flag("consistent");
                }
            }
            Product::Nomad => {
                if self.consistent {
                    return Err(Error::invalid_argument("nomad has no consistent reads"));
                }
                if let Some(r) = &self.region {
                    spec = spec.query("region", r);
                }
                if let Some(ns) = &self.namespace {
                    spec = spec.query("namespace", ns);
                }
            }
            Product::Vault => {
                if self.index != 0 || self.wait.is_some() || self.stale || self.consistent {
                    return Err(Error::invalid_argument("vault has no blocking queries"));
                }
                return Ok(spec);
            }
        }
        if self.stale {
            spec = spec.flag("stale");
        }
        if let Some(f) = &self.filter {
            spec = spec.query("filter", f);
        }
        if self.index > 0 {
            let (default_wait, max_wait) = wait_limits(product);
            spec = spec.query("index", self.index);
            if let Some(w) = self.wait {
                spec = spec.query("wait", render_wait(w));
            }
            let effective = self
                .wait
                .unwrap_or(default_wait)
                .min(max_wait)
                .max(Duration::from_millis(1));
            spec.blocking_wait = Some(effective);
        }
        Ok(spec)
    }
}

/// Options of a write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Check-and-set index: 0 = create only, N = only if the current `ModifyIndex` is N.
    pub cas: Option<u64>,
    /// Namespace (see [`QueryOptions::namespace`]).
    pub namespace: Option<String>,
    /// Consul datacenter.
    pub datacenter: Option<String>,
    /// Nomad region.
    pub region: Option<String>,
}

impl WriteOptions {
    /// A blind write.
    pub fn new() -> Self {
        Self::default()
    }

    /// A check-and-set write.
    pub fn cas(index: u64) -> Self {
        Self {
            cas: Some(index),
            ..Self::default()
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Adds namespace/dc/region parameters (not `cas`, which each endpoint places).
    pub(crate) fn apply_scope(&self, product: Product, mut spec: RequestSpec) -> RequestSpec {
        match product {
            Product::Consul => {
                if let Some(dc) = &self.datacenter {
                    spec = spec.query("dc", dc);
                }
                if let Some(ns) = &self.namespace {
                    spec = spec.query("ns", ns);
                }
            }
            Product::Nomad => {
                if let Some(r) = &self.region {
                    spec = spec.query("region", r);
                }
                if let Some(ns) = &self.namespace {
                    spec = spec.query("namespace", ns);
                }
            }
            Product::Vault => {}
        }
        spec
    }
}

/// Formats a duration for a JSON body field that Go reads as a duration string.
pub(crate) fn duration_text(d: Duration) -> String {
    go_duration(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_render_bare_and_values_encoded() {
        let s = RequestSpec::get("/v1/kv/a")
            .flag("keys")
            .query("separator", "/")
            .query("filter", "Meta.x == \"y\"");
        assert_eq!(
            s.uri(),
            "/v1/kv/a?keys&separator=/&filter=Meta.x%20%3D%3D%20%22y%22"
        );
    }

    #[test]
    fn blocking_options_render_index_and_wait_in_ms() {
        let spec = QueryOptions::blocking(48, Duration::from_secs(1))
            .apply(Product::Consul, RequestSpec::get("/v1/kv/k"))
            .unwrap();
        assert_eq!(spec.uri(), "/v1/kv/k?index=48&wait=1000ms");
        assert_eq!(spec.blocking_wait, Some(Duration::from_secs(1)));
    }

    #[test]
    fn waits_under_one_ms_clamp_to_one_ms() {
        assert_eq!(render_wait(Duration::from_micros(10)), "1ms");
        assert_eq!(render_wait(Duration::from_millis(250)), "250ms");
        let spec = QueryOptions::blocking(3, Duration::from_nanos(5))
            .apply(Product::Nomad, RequestSpec::get("/v1/jobs"))
            .unwrap();
        assert_eq!(spec.query_value("wait"), Some("1ms"));
    }

    #[test]
    fn index_zero_does_not_block() {
        let spec = QueryOptions::new()
            .with_wait(Duration::from_secs(5))
            .apply(Product::Consul, RequestSpec::get("/v1/kv/k"))
            .unwrap();
        assert_eq!(spec.uri(), "/v1/kv/k");
        assert_eq!(spec.blocking_wait, None);
    }

    #[test]
    fn blocking_without_wait_uses_server_default_for_timeout() {
        let spec = QueryOptions::new()
            .with_index(7)
            .apply(Product::Consul, RequestSpec::get("/v1/kv/k"))
            .unwrap();
        assert_eq!(spec.uri(), "/v1/kv/k?index=7");
        assert_eq!(spec.blocking_wait, Some(Duration::from_secs(300)));
        let spec = QueryOptions::blocking(7, Duration::from_secs(3600))
            .apply(Product::Nomad, RequestSpec::get("/v1/jobs"))
            .unwrap();
        assert_eq!(
            spec.blocking_wait,
            Some(Duration::from_secs(300)),
            "nomad caps at 5 min"
        );
    }

    #[test]
    fn stale_and_consistent_together_is_an_error_before_sending() {
        let err = QueryOptions::new()
            .stale()
            .consistent()
            .apply(Product::Consul, RequestSpec::get("/v1/kv/k"))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
    }

    #[test]
    fn consul_and_nomad_scope_parameters() {
        let q = QueryOptions::new()
            .stale()
            .namespace("team")
            .datacenter("dc2")
            .filter("x");
        let c = q.apply(Product::Consul, RequestSpec::get("/v1/x")).unwrap();
        assert_eq!(c.uri(), "/v1/x?dc=dc2&ns=team&stale&filter=x");
        let n = QueryOptions::new()
            .namespace("*")
            .region("eu")
            .apply(Product::Nomad, RequestSpec::get("/v1/jobs"))
            .unwrap();
        assert_eq!(n.uri(), "/v1/jobs?region=eu&namespace=*");
        assert!(
            QueryOptions::new()
                .consistent()
                .apply(Product::Nomad, RequestSpec::get("/v1/jobs"))
                .is_err()
        );
    }
}
