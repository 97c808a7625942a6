//! Traffic: protocol, upstreams, intentions (`allowFrom`) and edge routes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// Protocol of the main port (Consul `service-defaults` `Protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (cleartext).
    Http2,
    /// gRPC.
    Grpc,
    /// Plain TCP: no L7 features.
    Tcp,
}

impl Protocol {
    /// The protocol name as Consul writes it.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        }
    }

    /// Whether L7 features (HTTP routes, L7 intentions) work with this protocol.
    #[must_use]
    pub const fn is_l7(&self) -> bool {
        !matches!(self, Protocol::Tcp)
    }
}

/// A service this one calls; the sidecar listens on `127.0.0.1:<localPort>` for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upstream {
    /// Consul service name (a DNS label); not this service itself. Required.
    pub service: String,
    /// Local listener port, 1..=65535, unique among upstreams and different from this
    /// service's own ports. Required.
    #[schemars(range(min = 1, max = 65535))]
    pub local_port: u16,
}

/// One source allowed (or denied) to call this service.
///
/// Without `methods`/`pathPrefix`/`pathExact` it is an L4 rule on the whole service;
/// with any of them an L7 rule (needs an HTTP-family protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowFrom {
    /// Calling Consul service (a DNS label, or `*` for every service); not this service
    /// itself. Required.
    pub service: String,
    /// `allow` or `deny`. Default: `allow`.
    #[serde(default)]
    pub action: IntentionAction,
    /// HTTP methods the rule applies to. Default: none (every method).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<HttpMethod>,
    /// Request path prefix the rule applies to (starts with `/`); excludes `pathExact`.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Exact request path the rule applies to (starts with `/`); excludes `pathPrefix`.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_exact: Option<String>,
}

impl AllowFrom {
    /// Whether this is an L7 rule (methods or a path).
    #[must_use]
    pub fn is_l7(&self) -> bool {
        !self.methods.is_empty() || self.path_prefix.is_some() || self.path_exact.is_some()
    }
}

/// Intention action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntentionAction {
    /// Allow the traffic.
    #[default]
    Allow,
    /// Deny the traffic.
    Deny,
}

impl IntentionAction {
    /// The action as Consul writes it.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            IntentionAction::Allow => "allow",
            IntentionAction::Deny => "deny",
        }
    }
}

/// An HTTP method (upper-case).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `CONNECT`.
    Connect,
    /// `TRACE`.
    Trace,
}

impl HttpMethod {
    /// The method as written on the wire.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Trace => "TRACE",
        }
    }
}

/// Edge gateway exposure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Edge {
    /// HTTP routes from the edge gateway to this service. Default: none.
    #[serde(default)]
    pub routes: Vec<EdgeRoute>,
}

impl Edge {
    /// Whether there are no routes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// One edge route: requests for `host` whose path matches go to this service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EdgeRoute {
    /// Host name (RFC 1123, lower-case, optionally starting with `*.` for every
    /// subdomain). Required.
    pub host: String,
    /// Path prefix to match (starts with `/`); excludes `pathExact`. Default: `/` when
    /// neither is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Exact path to match (starts with `/`); excludes `pathPrefix`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_exact: Option<String>,
    /// Replace the matched prefix with this path (starts with `/`) before forwarding.
    /// Default: none (path unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    /// Request timeout at the gateway, 1ms..=1h. Default: none (the gateway's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retries on connect failure or 5xx, 0..=10. Default: none (the gateway's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10))]
    pub retries: Option<u32>,
}

/// How an [`EdgeRoute`] matches paths, with the `/` prefix default applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch<'a> {
    /// Paths starting with this prefix.
    Prefix(&'a str),
    /// Exactly this path.
    Exact(&'a str),
}

impl EdgeRoute {
    /// The path match, defaulting to prefix `/` (exact wins if, invalidly, both are set).
    #[must_use]
    pub fn path_match(&self) -> PathMatch<'_> {
        match (&self.path_exact, &self.path_prefix) {
            (Some(exact), _) => PathMatch::Exact(exact),
            (None, Some(prefix)) => PathMatch::Prefix(prefix),
            (None, None) => PathMatch::Prefix("/"),
        }
    }
}
