//! The one I/O executor: turns a [`RequestSpec`] into a reqwest call with base URL,
//! auth headers, default parameters, timeout and retries, and maps failures to [`Error`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{ConfigError, Endpoint, Scheme};
use crate::error::{Error, Product, Result};
use crate::request::{Body, RequestSpec, render_query};
use crate::response::RawResponse;
use crate::retry::RetryPolicy;

/// A request ready to send: full URL, headers (auth values marked sensitive), timeout.
#[derive(Clone)]
pub struct Prepared {
    /// Method.
    pub method: Method,
    /// Full URL with query.
    pub url: String,
    /// Headers, including auth.
    pub headers: HeaderMap,
    /// Timeout of the whole request (`None` for streams).
    pub timeout: Option<Duration>,
    /// Sent through the pool of lists, blocking queries and streams ([`is_bulk`]),
    /// without waiting for a turn.
    pub bulk: bool,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // HeaderMap prints sensitive values as `Sensitive`.
        f.debug_struct("Prepared")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("bulk", &self.bulk)
            .finish()
    }
}

/// What an [`Observer`] sees of one request attempt (retries are observed one by one).
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The product the request went to.
    pub product: Product,
    /// HTTP method.
    pub method: &'a Method,
    /// Request path (no query).
    pub path: &'a str,
    /// HTTP status of the answer; `None` when no answer arrived (connection error,
    /// timeout).
    pub status: Option<u16>,
}

/// Whether `spec` may be answered with a large body: a list, a blocking query (it
/// answers with the whole list again), a recursive KV read or a stream. Those go
/// through a connection pool of their own. hyper keeps a connection's read buffer at
/// the largest size it grew to (up to ~400 KiB), so a pooled connection that once
/// carried a 10,000-entry list keeps that much while it serves small point reads and
/// writes afterwards; with one pool for everything, at 10,000 specs ~300 pooled
/// connections held ~40 MiB of such buffers (heaptrack, BENCHMARKS.md). Apart, the
/// large buffers stay on the few connections of the watches.
pub(crate) fn is_bulk(spec: &RequestSpec) -> bool {
    if spec.blocking_wait.is_some() || spec.method.as_str() == "LIST" {
        return true;
    }
    if spec
        .query
        .iter()
        .any(|(k, _)| matches!(k.as_str(), "recurse" | "index" | "list" | "keys"))
    {
        return true;
    }
    if spec.method != Method::GET {
        return false;
    }
    let segments: Vec<&str> = spec.path.trim_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        [
            "v1",
            "jobs" | "deployments" | "allocations" | "evaluations" | "namespaces"
        ] | ["v1", "config", _]
            | ["v1", "event", "stream"]
            | ["v1", "job", _, "versions" | "deployments" | "allocations"]
    )
}

/// A hook called after every request attempt, e.g. to count requests in metrics. It runs
/// on the request's task: keep it short and non-blocking.
pub type Observer = Arc<dyn Fn(&Observation<'_>) + Send + Sync>;

struct Inner {
    endpoint: Endpoint,
    /// Point reads and writes: small answers.
    client: reqwest::Client,
    /// Lists, blocking queries and streams ([`is_bulk`]): its own connection pool.
    bulk_client: reqwest::Client,
    /// Turns for point requests ([`HttpSettings::max_point_requests`]), shared by
    /// every transport made from this one.
    ///
    /// [`HttpSettings::max_point_requests`]: crate::config::HttpSettings::max_point_requests
    point_turns: Arc<tokio::sync::Semaphore>,
    base_url: String,
    observers: Vec<Observer>,
}

/// Sends requests to one server. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("product", &self.inner.endpoint.product)
            .field("base_url", &self.inner.base_url)
            .field(
                "token",
                &self.inner.endpoint.token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn token_header(product: Product) -> &'static str {
    match product {
        Product::Consul => "x-consul-token",
        Product::Nomad => "x-nomad-token",
        Product::Vault => "x-vault-token",
    }
}

impl Transport {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, ConfigError> {
        let built = crate::tls::build_client(&endpoint)?;
        let bulk = crate::tls::build_client(&endpoint)?;
        let base_url = format!(
            "{}://{}{}",
            endpoint.address.scheme.as_str(),
            built.authority,
            endpoint.address.path_prefix
        );
        let turns = endpoint.http.max_point_requests.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                client: built.client,
                bulk_client: bulk.client,
                point_turns: Arc::new(tokio::sync::Semaphore::new(turns)),
                base_url,
                observers: Vec::new(),
            }),
        })
    }

    /// A transport sharing this one's connection pool and settings that also calls
    /// `observer` after every request attempt (observers added earlier still run).
    #[must_use]
    pub fn with_observer(&self, observer: Observer) -> Self {
        let mut observers = self.inner.observers.clone();
        observers.push(observer);
        Self {
            inner: Arc::new(Inner {
                endpoint: self.inner.endpoint.clone(),
                client: self.inner.client.clone(),
                bulk_client: self.inner.bulk_client.clone(),
                point_turns: self.inner.point_turns.clone(),
                base_url: self.inner.base_url.clone(),
                observers,
            }),
        }
    }

    fn observe(&self, spec: &RequestSpec, status: Option<u16>) {
        if self.inner.observers.is_empty() {
            return;
        }
        let observation = Observation {
            product: self.product(),
            method: &spec.method,
            path: &spec.path,
            status,
        };
        for observer in &self.inner.observers {
            observer(&observation);
        }
    }

    /// The product this transport talks to.
    pub fn product(&self) -> Product {
        self.inner.endpoint.product
    }

    /// Base URL (scheme, authority, prefix).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Builds the URL, headers and timeout for `spec`. Pure apart from reading config.
    ///
    /// # Errors
    /// `InvalidArgument` when a header name or value is not valid HTTP.
    pub fn prepare(&self, spec: &RequestSpec) -> Result<Prepared> {
        let ep = &self.inner.endpoint;
        let mut query = spec.query.clone();
        for (k, v) in &ep.default_query {
            if !spec.has_query(k) {
                query.push((k.clone(), v.clone()));
            }
        }
        let q = render_query(&query);
        let url = if q.is_empty() {
            format!("{}{}", self.inner.base_url, spec.path)
        } else {
            format!("{}{}?{q}", self.inner.base_url, spec.path)
        };
        let mut headers = HeaderMap::new();
        let mut insert = |name: &str, value: &str, sensitive: bool| -> Result<()> {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::invalid_argument(format!("bad header name {name:?}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| Error::invalid_argument(format!("bad value for header {name}")))?;
            value.set_sensitive(sensitive);
            headers.insert(name, value);
            Ok(())
        };
        for (k, v) in &ep.default_headers {
            insert(k, v, false)?;
        }
        if let Some(token) = ep.token.as_ref().filter(|t| !t.is_empty()) {
            insert(token_header(ep.product), token.expose(), true)?;
        }
        if let Some(auth) = &ep.basic_auth {
            use base64::Engine as _;
            let raw = match &auth.password {
                Some(p) => format!("{}:{}", auth.username, p.expose()),
                None => auth.username.clone(),
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            insert("authorization", &format!("Basic {encoded}"), true)?;
        }
        for (k, v) in &spec.headers {
            insert(k, v, false)?;
        }
        if matches!(spec.body, Body::Json(_)) {
            insert("content-type", "application/json", false)?;
        }
        // hyper grows an HTTP/1.1 connection's read buffer to the largest answer it
        // read and keeps a buffer that size while the connection waits for its next
        // answer, which for a blocking query is minutes. At 1,000 specs the shard
        // watches of specs and statuses held ~6 MB that way (heaptrack, BENCHMARKS.md).
        // So a list closes its connection once answered, and the buffer goes with it;
        // lists are few (a blocking query answers only on a change), so the extra
        // connection set-ups cost little. Over TLS the connection may be HTTP/2, which
        // forbids this header and shares one connection anyway.
        let bulk = is_bulk(spec);
        if ep.address.scheme == Scheme::Http && bulk {
            insert("connection", "close", false)?;
        }
        let timeout = match spec.blocking_wait {
            Some(w) => w + w / 16 + ep.http.blocking_slack,
            None => ep.http.timeout,
        };
        Ok(Prepared {
            method: spec.method.clone(),
            url,
            headers,
            timeout: Some(timeout),
            bulk,
        })
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = match &self.inner.endpoint.token {
            Some(t) => t.scrub(text),
            None => text.to_owned(),
        };
        if let Some(p) = self
            .inner
            .endpoint
            .basic_auth
            .as_ref()
            .and_then(|a| a.password.as_ref())
        {
            out = p.scrub(&out);
        }
        out
    }

    fn transport_error(&self, spec: &RequestSpec, e: reqwest::Error) -> Error {
        let product = self.product();
        let chain = error_chain(&e);
        let message = self.scrub(&chain);
        if let Some(tls) = find_tls_error(&e) {
            return Error::Tls {
                product,
                method: spec.method.clone(),
                path: spec.path.clone(),
                message: self.scrub(&tls),
                source: Some(e),
            };
        }
        let kind = if e.is_timeout() {
            "request timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "transport error"
        };
        Error::Unavailable {
            product,
            method: spec.method.clone(),
            path: spec.path.clone(),
            status: None,
            message: format!("{kind}: {message}"),
            source: Some(e),
        }
    }

    async fn send_once(&self, spec: &RequestSpec, prepared: &Prepared) -> Result<RawResponse> {
        // A point request waits for a turn and keeps it until its body is read; the
        // semaphore is never closed, so the error arm cannot happen.
        let _turn = if prepared.bulk {
            None
        } else {
            self.inner.point_turns.acquire().await.ok()
        };
        let client = if prepared.bulk {
            &self.inner.bulk_client
        } else {
            &self.inner.client
        };
        let mut req = client
            .request(prepared.method.clone(), &prepared.url)
            .headers(prepared.headers.clone());
        if let Some(t) = prepared.timeout {
            req = req.timeout(t);
        }
        req = match &spec.body {
            Body::Empty => req,
            Body::Json(v) => req.body(serde_json::to_vec(v).map_err(|e| {
                Error::invalid_argument(format!("cannot encode request body: {e}"))
            })?),
            Body::Bytes(b) => req.body(b.clone()),
        };
        let resp = req.send().await.map_err(|e| {
            self.observe(spec, None);
            self.transport_error(spec, e)
        })?;
        let status = resp.status().as_u16();
        self.observe(spec, Some(status));
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(spec, e))?;
        let raw = RawResponse::new(
            self.product(),
            spec.method.clone(),
            spec.path.clone(),
            status,
            headers,
            body,
        );
        if raw.is_success() || spec.accept.contains(&status) {
            Ok(raw)
        } else {
            let message = self.scrub(&raw.error_message());
            Err(crate::error::classify_status(
                raw.product,
                &raw.method,
                &raw.path,
                status,
                message,
            ))
        }
    }

    /// Sends `spec`, retrying per the configured [`RetryPolicy`]. Non-2xx statuses that
    /// the spec does not accept become errors.
    ///
    /// # Errors
    /// Any [`Error`] from the server or the connection.
    pub async fn send(&self, spec: &RequestSpec) -> Result<RawResponse> {
        let prepared = self.prepare(spec)?;
        let policy = self.inner.endpoint.http.retry;
        let product = self.product();
        let attempt = || self.send_once(spec, &prepared);
        attempt
            .retry(policy.delays())
            .sleep(tokio::time::sleep)
            .when(|e| RetryPolicy::should_retry(spec.idempotency, e))
            .notify(|e, delay| {
                tracing::debug!(%product, method = %spec.method, path = %spec.path,
                    error = %e, ?delay, "retrying request");
            })
            .await
    }

    /// Sends `spec` and decodes the answer with `parse`; decode errors are scrubbed of
    /// the token like server messages.
    ///
    /// # Errors
    /// Any [`Error`] from [`Transport::send`] or from `parse`.
    pub async fn call<T>(
        &self,
        spec: RequestSpec,
        parse: impl FnOnce(&RawResponse) -> Result<T>,
    ) -> Result<T> {
        let raw = self.send(&spec).await?;
        parse(&raw).map_err(|e| match e {
            Error::Decode {
                product,
                method,
                path,
                message,
            } => Error::Decode {
                product,
                method,
                path,
                message: self.scrub(&message),
            },
            other => other,
        })
    }

    /// Opens a long-lived streaming response (no total timeout, no retries).
    ///
    /// # Errors
    /// Connection errors and non-2xx statuses.
    pub async fn open_stream(&self, spec: &RequestSpec) -> Result<reqwest::Response> {
        let mut prepared = self.prepare(spec)?;
        prepared.timeout = None;
        let resp = self
            .inner
            .bulk_client
            .request(prepared.method.clone(), &prepared.url)
            .headers(prepared.headers.clone())
            .send()
            .await
            .map_err(|e| {
                self.observe(spec, None);
                self.transport_error(spec, e)
            })?;
        self.observe(spec, Some(resp.status().as_u16()));
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        let raw = RawResponse::new(
            self.product(),
            spec.method.clone(),
            spec.path.clone(),
            status,
            headers,
            body,
        );
        let message = self.scrub(&raw.error_message());
        Err(crate::error::classify_status(
            raw.product,
            &raw.method,
            &raw.path,
            status,
            message,
        ))
    }

    pub(crate) fn stream_error(&self, spec: &RequestSpec, e: reqwest::Error) -> Error {
        self.transport_error(spec, e)
    }
}

/// The error and its causes, joined with `: ` (reqwest's Display alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The rustls error (bad certificate, alert) somewhere in the chain, as text. I/O errors
/// wrap their inner error without exposing it through `source()`, so they are opened too.
fn find_tls_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(found) = io.get_ref().and_then(|inner| find_tls_error(inner))
    {
        return Some(found);
    }
    e.source().and_then(find_tls_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Address, HttpSettings, TlsConfig};
    use crate::secret::{BasicAuth, SecretToken};

    #[test]
    fn lists_blocking_queries_and_streams_use_the_bulk_pool_point_requests_do_not() {
        let bulk = [
            RequestSpec::get("/v1/jobs"),
            RequestSpec::get("/v1/config/service-defaults"),
            RequestSpec::get("/v1/event/stream"),
            RequestSpec::get("/v1/job/web/deployments"),
            RequestSpec::get("/v1/kv/steward/specs/shop").query("recurse", ""),
            RequestSpec::new(Method::from_bytes(b"LIST").unwrap(), "/v1/sys/policies/acl"),
            RequestSpec::get("/v1/kv/steward/specs/shop").query("index", "42"),
        ];
        for spec in &bulk {
            assert!(is_bulk(spec), "{} {} is a list", spec.method, spec.path);
        }
        let point = [
            RequestSpec::get("/v1/job/web"),
            RequestSpec::get("/v1/config/service-defaults/web"),
            RequestSpec::put("/v1/jobs"),
            RequestSpec::put("/v1/txn"),
            RequestSpec::get("/v1/kv/steward/status/shop/web"),
            RequestSpec::get("/v1/sys/policies/acl/steward-shop-web"),
        ];
        for spec in &point {
            assert!(
                !is_bulk(spec),
                "{} {} is a point request",
                spec.method,
                spec.path
            );
        }
    }

    fn transport(product: Product) -> Transport {
        Transport::new(Endpoint {
            product,
            address: Address::parse(
                "A",
                "http://127.0.0.1:8500/prefix",
                crate::config::Scheme::Http,
                false,
            )
            .unwrap()
            .0,
            token: Some(SecretToken::new("super-secret-token")),
            basic_auth: Some(BasicAuth::parse("user:hunter22hunter")),
            tls: TlsConfig::default(),
            http: HttpSettings::default(),
            default_query: vec![("ns".into(), "team".into())],
            default_headers: vec![("x-extra", "1".into())],
        })
        .unwrap()
    }

    #[test]
    fn prepare_adds_prefix_defaults_and_auth_headers() {
        let t = transport(Product::Consul);
        let p = t
            .prepare(&RequestSpec::get("/v1/kv/a").flag("recurse"))
            .unwrap();
        assert_eq!(
            p.url,
            "http://127.0.0.1:8500/prefix/v1/kv/a?recurse&ns=team"
        );
        assert_eq!(p.headers["x-consul-token"], "super-secret-token");
        assert!(p.headers["x-consul-token"].is_sensitive());
        assert!(
            p.headers["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        assert_eq!(p.headers["x-extra"], "1");
        assert_eq!(p.timeout, Some(Duration::from_secs(60)));
        // a list closes its plain-HTTP connection once answered; a point read does not
        assert_eq!(p.headers["connection"], "close");
        assert!(p.bulk);
        let point = t.prepare(&RequestSpec::get("/v1/kv/a")).unwrap();
        assert!(!point.headers.contains_key("connection"));
        assert!(!point.bulk);
        // the request's own namespace wins over the default
        let p = t
            .prepare(&RequestSpec::get("/v1/kv/a").query("ns", "other"))
            .unwrap();
        assert_eq!(p.url, "http://127.0.0.1:8500/prefix/v1/kv/a?ns=other");
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let t = transport(Product::Nomad);
        let p = t.prepare(&RequestSpec::get("/v1/jobs")).unwrap();
        assert_eq!(p.headers["x-nomad-token"], "super-secret-token");
        for text in [format!("{t:?}"), format!("{p:?}")] {
            assert!(!text.contains("super-secret-token"), "{text}");
            assert!(!text.contains("hunter22hunter"), "{text}");
        }
    }

    #[test]
    fn blocking_timeout_is_above_wait_times_17_over_16() {
        let t = transport(Product::Consul);
        let spec = crate::request::QueryOptions::blocking(5, Duration::from_secs(160))
            .apply(Product::Consul, RequestSpec::get("/v1/kv/a"))
            .unwrap();
        let p = t.prepare(&spec).unwrap();
        assert_eq!(p.timeout, Some(Duration::from_secs(160 + 10 + 10)));
    }

    #[test]
    fn server_messages_are_scrubbed() {
        let t = transport(Product::Consul);
        assert_eq!(
            t.scrub("token super-secret-token denied"),
            "token <redacted> denied"
        );
    }
}
