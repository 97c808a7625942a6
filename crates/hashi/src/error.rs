//! The one error type of the clients, with [`Error::is_retryable`].

use std::fmt;

use http::Method;

use crate::config::ConfigError;

/// Which product a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// HashiCorp Consul.
    Consul,
    /// HashiCorp Nomad.
    Nomad,
    /// HashiCorp Vault.
    Vault,
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Product::Consul => "consul",
            Product::Nomad => "nomad",
            Product::Vault => "vault",
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a client call can fail with. Messages never contain a token: server text
/// is scrubbed of the configured token before it is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is unusable (bad env var, unreadable CA file...).
    #[error("invalid configuration")]
    Config(#[from] ConfigError),

    /// The caller passed arguments that cannot make a valid request (nothing was sent).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },

    /// The object does not exist (for calls where absence is not a normal answer).
    #[error("{product} {method} {path}: not found: {message}")]
    NotFound {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path (no query).
        path: String,
        /// Server text.
        message: String,
    },

    /// A check-and-set guard failed (Nomad `EnforceIndex`, a generic 409).
    /// Consul KV/config CAS failures are *values* (`false`), not this error.
    #[error("{product} {method} {path}: check-and-set conflict: {message}")]
    CasConflict {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// Server text.
        message: String,
    },

    /// Consul does not know the session (renew answered 404): leadership is lost.
    #[error("consul session {id} not found")]
    SessionNotFound {
        /// Session ID.
        id: String,
    },

    /// The token is missing, unknown, expired or lacks the permission.
    #[error("{product} {method} {path}: permission denied: {message}")]
    PermissionDenied {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// Server text (scrubbed of the token).
        message: String,
    },

    /// Consul answered a listing with `X-Consul-Results-Filtered-By-ACLs: true`: the
    /// token may read only part of it. The answer is no complete view, so it is refused
    /// rather than returned: taken as one, the hidden entries would look absent.
    #[error(
        "{product} {method} {path}: results filtered by ACLs: the token lacks read access to part of this listing"
    )]
    FilteredByAcls {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
    },

    /// The server rejected the request as invalid (4xx, or a 5xx that reports a
    /// validation failure such as an invalid Nomad job or a Consul protocol rule).
    #[error("{product} {method} {path}: invalid request (HTTP {status}): {message}")]
    InvalidRequest {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Server text, kept verbatim (scrubbed of the token).
        message: String,
    },

    /// The server could not serve the request now: 5xx (except 501), no leader, sealed,
    /// or a connection/timeout error (`status` is `None` then).
    #[error("{product} {method} {path}: unavailable{}: {message}", fmt_status(*.status))]
    Unavailable {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// HTTP status, `None` for transport errors.
        status: Option<u16>,
        /// Server text or a description of the transport failure.
        message: String,
        /// The transport error, if any.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The server is rate limiting (429).
    #[error("{product} {method} {path}: overloaded (HTTP {status}): {message}")]
    Overloaded {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Server text.
        message: String,
    },

    /// The TLS handshake failed (unknown CA, wrong host name, client certificate
    /// refused...). Not retryable: the configuration must change.
    #[error("{product} {method} {path}: TLS handshake failed: {message}")]
    Tls {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// What rustls reported.
        message: String,
        /// The transport error.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The response could not be decoded (body or a present-but-unparseable meta header).
    #[error("{product} {method} {path}: cannot decode response: {message}")]
    Decode {
        /// Product.
        product: Product,
        /// HTTP method.
        method: Method,
        /// Request path.
        path: String,
        /// What could not be decoded (scrubbed of the token).
        message: String,
    },
}

fn fmt_status(status: Option<u16>) -> String {
    match status {
        Some(s) => format!(" (HTTP {s})"),
        None => String::new(),
    }
}

impl Error {
    /// True when trying the same request again later may succeed: connection errors,
    /// timeouts, 429, and 5xx except 501 (no leader, sealed, RPC errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { status, .. } => *status != Some(501),
            Error::Overloaded { .. } => true,
            _ => false,
        }
    }

    /// True when the error is a transport failure that happened before any byte of the
    /// request could reach the server (connection refused, DNS...), so even an
    /// unguarded write may be sent again.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Unavailable { source: Some(e), .. } if e.is_connect())
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::InvalidRequest { status, .. } | Error::Overloaded { status, .. } => {
                Some(*status)
            }
            Error::Unavailable { status, .. } => *status,
            Error::PermissionDenied { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// The product the failed request went to, when known.
    pub fn product(&self) -> Option<Product> {
        match self {
            Error::NotFound { product, .. }
            | Error::CasConflict { product, .. }
            | Error::PermissionDenied { product, .. }
            | Error::FilteredByAcls { product, .. }
            | Error::InvalidRequest { product, .. }
            | Error::Unavailable { product, .. }
            | Error::Overloaded { product, .. }
            | Error::Tls { product, .. }
            | Error::Decode { product, .. } => Some(*product),
            Error::SessionNotFound { .. } => Some(Product::Consul),
            _ => None,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }
}

/// Maps a non-success HTTP answer to an [`Error`]. Pure; `message` is the (already
/// scrubbed) server text.
pub fn classify_status(
    product: Product,
    method: &Method,
    path: &str,
    status: u16,
    message: String,
) -> Error {
    let method = method.clone();
    let path = path.to_owned();
    let lower = message.to_ascii_lowercase();
    match status {
        403 => Error::PermissionDenied {
            product,
            method,
            path,
            message,
        },
        // Vault answers 400 `missing client token` when no token was sent.
        400 if product == Product::Vault && lower.contains("missing client token") => {
            Error::PermissionDenied {
                product,
                method,
                path,
                message,
            }
        }
        404 => Error::NotFound {
            product,
            method,
            path,
            message,
        },
        409 => Error::CasConflict {
            product,
            method,
            path,
            message,
        },
        429 => Error::Overloaded {
            product,
            method,
            status,
            path,
            message,
        },
        // Vault Enterprise: replication state not yet present; its client retries.
        412 if product == Product::Vault => Error::Unavailable {
            product,
            method,
            path,
            status: Some(status),
            message,
            source: None,
        },
        500 if product == Product::Nomad && is_nomad_enforce_index_conflict(&message) => {
            Error::CasConflict {
                product,
                method,
                path,
                message,
            }
        }
        500 if is_validation_failure(product, &lower) => Error::InvalidRequest {
            product,
            method,
            path,
            status,
            message,
        },
        s if s >= 500 => Error::Unavailable {
            product,
            method,
            path,
            status: Some(status),
            message,
            source: None,
        },
        _ => Error::InvalidRequest {
            product,
            method,
            path,
            status,
            message,
        },
    }
}

/// Nomad `EnforceIndex` violations: `Enforcing job modify index N: job already exists`,
/// `... conflicting job modify index: M`, `... job does not exist`.
fn is_nomad_enforce_index_conflict(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("enforcing job modify index")
        || lower.contains("conflicting job modify index")
        || lower.contains("job already exists")
        || lower.contains("job does not exist")
}

/// 500 answers that report a rejected request rather than a server problem: Nomad job
/// validation (go-multierror text), Consul config-entry graph rules, session TTL bounds,
/// unknown sessions and unknown config-entry kinds. Sending them again cannot help.
fn is_validation_failure(product: Product, lower: &str) -> bool {
    if lower.contains("no cluster leader") || lower.contains("rpc error") {
        return false;
    }
    let common = lower.contains("error occurred:") || lower.contains("errors occurred:");
    match product {
        Product::Nomad => {
            common
                || lower.contains("validation failed")
                || lower.contains("job validation")
                || lower.contains("failed to parse")
                || lower.contains("nonexistent namespace")
        }
        Product::Consul => {
            common
                || lower.contains("does not permit advanced routing")
                || lower.contains("which does not match defined listener protocol")
                || lower.contains("incompatible with l7")
                || lower.contains("invalid session ttl")
                || lower.contains("invalid session")
                || lower.contains("invalid config entry kind")
                || lower.contains("invalid kind")
                || lower.contains("protocol \"tcp\"")
        }
        Product::Vault => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(product: Product, status: u16, msg: &str) -> Error {
        classify_status(product, &Method::GET, "/v1/x", status, msg.to_owned())
    }

    #[test]
    fn statuses_map_to_variants_and_retryability() {
        assert!(matches!(
            c(Product::Consul, 403, "Permission denied"),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(
            c(Product::Consul, 404, ""),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            c(Product::Consul, 400, "Invalid wait time"),
            Error::InvalidRequest { status: 400, .. }
        ));
        let e = c(Product::Consul, 429, "rate limited");
        assert!(matches!(e, Error::Overloaded { .. }) && e.is_retryable());
        let e = c(Product::Consul, 500, "No cluster leader");
        assert!(
            matches!(
                e,
                Error::Unavailable {
                    status: Some(500),
                    ..
                }
            ) && e.is_retryable()
        );
        let e = c(Product::Vault, 503, "Vault is sealed");
        assert!(e.is_retryable());
        let e = c(Product::Vault, 501, "Vault is not initialized");
        assert!(matches!(e, Error::Unavailable { .. }) && !e.is_retryable());
        assert!(c(Product::Vault, 412, "").is_retryable());
        assert!(!c(Product::Consul, 400, "x").is_retryable());
        assert!(!c(Product::Consul, 403, "x").is_retryable());
    }

    #[test]
    fn nomad_enforce_index_failures_are_cas_conflicts() {
        for msg in [
            "Enforcing job modify index 5: job exists with conflicting job modify index: 11",
            "Enforcing job modify index 0: job already exists",
            "Enforcing job modify index 3: job does not exist",
        ] {
            let e = c(Product::Nomad, 500, msg);
            assert!(matches!(e, Error::CasConflict { .. }), "{msg}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn validation_500s_are_invalid_requests_not_retryable() {
        let e = c(
            Product::Nomad,
            500,
            "1 error occurred:\n\t* Missing job task groups\n\n",
        );
        assert!(matches!(e, Error::InvalidRequest { status: 500, .. }));
        assert!(!e.is_retryable());
        let e = c(
            Product::Nomad,
            500,
            "job \"ticker\" is in nonexistent namespace \"trading\"",
        );
        assert!(matches!(e, Error::InvalidRequest { .. }));
        let e = c(
            Product::Consul,
            500,
            "service \"price-feed\" has protocol \"tcp\", which is incompatible with L7 intentions permissions",
        );
        assert!(matches!(e, Error::InvalidRequest { .. }));
        let e = c(
            Product::Consul,
            500,
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
        );
        assert!(matches!(e, Error::InvalidRequest { .. }));
        // but a leader loss stays retryable even in multierror form
        let e = c(Product::Nomad, 500, "1 error occurred: No cluster leader");
        assert!(e.is_retryable());
    }

    #[test]
    fn vault_missing_token_is_permission_denied() {
        let e = c(Product::Vault, 400, "missing client token");
        assert!(matches!(e, Error::PermissionDenied { .. }));
    }

    #[test]
    fn messages_name_product_method_path() {
        let e = c(Product::Consul, 403, "Permission denied");
        assert_eq!(
            e.to_string(),
            "consul GET /v1/x: permission denied: Permission denied"
        );
        assert_eq!(e.status(), Some(403));
        assert_eq!(e.product(), Some(Product::Consul));
    }
}
