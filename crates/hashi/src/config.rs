//! Configuration pieces shared by the three clients: addresses, TLS files, env parsing.
//!
//! Each product's `*Config::from_env()` reads the standard variables the way the official
//! Go client does; `from_env_map` takes a lookup function instead of the process env so
//! tests never mutate global state. Builder methods override single settings (for flags).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Product;
use crate::secret::{BasicAuth, SecretToken};

/// A way to read environment variables (`std::env::var` or a test map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment (empty values count as unset, as in the Go clients).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A configuration problem, found before any request is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable (or the matching override) has a value that cannot be used.
    #[error("{var}: {message}")]
    Invalid {
        /// Variable name (or setting name).
        var: String,
        /// Why it is unusable.
        message: String,
    },
    /// The address uses a scheme this client does not support.
    #[error("unsupported address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// Why.
        reason: String,
    },
    /// A file named by the configuration cannot be read.
    #[error("cannot read {what} {path:?}")]
    File {
        /// What the file is (token file, CA file...).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A client certificate was given without a key, or the other way round.
    #[error(
        "{product}: client certificate and client key must be given together ({given} was set alone)"
    )]
    CertKeyPair {
        /// Product.
        product: Product,
        /// Which one was given.
        given: &'static str,
    },
    /// A certificate, key or CA bundle cannot be used.
    #[error("{product}: TLS setup failed: {message}")]
    Tls {
        /// Product.
        product: Product,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<reqwest::Error>,
    },
}

impl ConfigError {
    pub(crate) fn invalid(var: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
pub fn parse_go_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(ConfigError::invalid(
            var,
            format!("{other:?} is not a boolean (use true/false/1/0)"),
        )),
    }
}

/// Reads a variable, treating the empty string as unset (the Go clients do the same).
pub(crate) fn env_get(env: EnvLookup<'_>, var: &str) -> Option<String> {
    env(var).filter(|v| !v.is_empty())
}

pub(crate) fn env_bool(env: EnvLookup<'_>, var: &str) -> Result<Option<bool>, ConfigError> {
    env_get(env, var)
        .map(|v| parse_go_bool(var, v.trim()))
        .transpose()
}

/// HTTP or HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where a server listens: scheme, `host:port`, an optional path prefix put before every
/// request path (`https://lb/consul` → `/consul/v1/...`), or a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Scheme.
    pub scheme: Scheme,
    /// `host[:port]` (for a Unix socket, `localhost`).
    pub authority: String,
    /// Prefix without trailing `/` (empty or starting with `/`).
    pub path_prefix: String,
    /// Unix socket path when the address was `unix://...`.
    pub unix_socket: Option<PathBuf>,
}

impl Address {
    /// An `http://host:port` address.
    pub fn http(authority: impl Into<String>) -> Self {
        Self {
            scheme: Scheme::Http,
            authority: authority.into(),
            path_prefix: String::new(),
            unix_socket: None,
        }
    }

    /// Base URL: scheme, authority and prefix, no trailing `/`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_prefix
        )
    }

    /// Parses `host:port`, `http://...`, `https://...` or `unix:///path`; a path after the
    /// host becomes the prefix. `force_https` (Consul's `CONSUL_HTTP_SSL`) upgrades
    /// `http://` and bare addresses to HTTPS, never the other way round.
    ///
    /// Userinfo (`user:pass@host`) is returned separately as basic-auth credentials.
    pub fn parse(
        var: &str,
        value: &str,
        default_scheme: Scheme,
        force_https: bool,
    ) -> Result<(Self, Option<BasicAuth>), ConfigError> {
        let value = value.trim();
        let (scheme, rest) = match value.split_once("://") {
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("unix", path)) => {
                if path.is_empty() {
                    return Err(ConfigError::Address {
                        address: value.to_owned(),
                        reason: "unix:// needs a socket path".into(),
                    });
                }
                let scheme = if force_https {
                    Scheme::Https
                } else {
                    Scheme::Http
                };
                return Ok((
                    Self {
                        scheme,
                        authority: "localhost".into(),
                        path_prefix: String::new(),
                        unix_socket: Some(PathBuf::from(path)),
                    },
                    None,
                ));
            }
            Some((other, _)) => {
                return Err(ConfigError::Address {
                    address: value.to_owned(),
                    reason: format!("unknown protocol scheme {other:?} (use http, https or unix)"),
                });
            }
            None => (default_scheme, value),
        };
        let scheme = if force_https { Scheme::Https } else { scheme };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (auth, authority) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(BasicAuth::parse(userinfo)), host),
            None => (None, authority),
        };
        if authority.is_empty() {
            return Err(ConfigError::invalid(var, format!("{value:?} has no host")));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(ConfigError::invalid(
                var,
                format!("{value:?} is not a valid address"),
            ));
        }
        Ok((
            Self {
                scheme,
                authority: authority.to_owned(),
                path_prefix: prefix.trim_end_matches('/').to_owned(),
                unix_socket: None,
            },
            auth,
        ))
    }
}

/// TLS settings common to the three products.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM CA bundle file (`*_CACERT`). Takes precedence over `ca_pem` and `ca_path`.
    pub ca_file: Option<PathBuf>,
    /// PEM CA bundle given inline (`VAULT_CACERT_BYTES`). Precedes `ca_path`.
    pub ca_pem: Option<Vec<u8>>,
    /// Directory of PEM CA files (`*_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// Client certificate PEM file (`*_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// Client key PEM file (`*_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// Name to verify the server certificate against (and send as SNI) instead of the
    /// host of the address (`*_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
    /// Skip server certificate verification (`CONSUL_HTTP_SSL_VERIFY=false`,
    /// `NOMAD_SKIP_VERIFY`, `VAULT_SKIP_VERIFY`). Dangerous; for tests.
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Reads the CA/cert/key/server-name variables with the given names.
    pub(crate) fn from_env(
        env: EnvLookup<'_>,
        product: Product,
        vars: TlsVars,
    ) -> Result<Self, ConfigError> {
        let tls = Self {
            ca_file: env_get(env, vars.ca_file).map(PathBuf::from),
            ca_pem: vars
                .ca_pem
                .and_then(|v| env_get(env, v))
                .map(String::into_bytes),
            ca_path: env_get(env, vars.ca_path).map(PathBuf::from),
            client_cert: env_get(env, vars.client_cert).map(PathBuf::from),
            client_key: env_get(env, vars.client_key).map(PathBuf::from),
            server_name: env_get(env, vars.server_name),
            insecure_skip_verify: false,
        };
        tls.check(product)?;
        Ok(tls)
    }

    /// Rejects a client certificate without a key and the other way round.
    pub fn check(&self, product: Product) -> Result<(), ConfigError> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => Err(ConfigError::CertKeyPair {
                product,
                given: "client certificate",
            }),
            (None, Some(_)) => Err(ConfigError::CertKeyPair {
                product,
                given: "client key",
            }),
            _ => Ok(()),
        }
    }
}

/// Names of the TLS variables of one product.
#[derive(Clone, Copy)]
pub(crate) struct TlsVars {
    pub ca_file: &'static str,
    pub ca_pem: Option<&'static str>,
    pub ca_path: &'static str,
    pub client_cert: &'static str,
    pub client_key: &'static str,
    pub server_name: &'static str,
}

/// Settings every client has besides address and credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    /// Timeout of a non-blocking request (blocking reads get `wait * 17/16 + slack`).
    pub timeout: Duration,
    /// Extra time given to blocking reads on top of `wait * 17/16`.
    pub blocking_slack: Duration,
    /// Retry policy for retryable failures.
    pub retry: crate::retry::RetryPolicy,
    /// Most point reads and writes in flight to this server at once; more wait for a
    /// turn. Each one in flight holds a pooled connection, and a pooled connection
    /// keeps its buffers (~20 KiB) until it idles out, so this bounds both the
    /// connections a burst opens and their memory. Servers limit connections per
    /// client address too: Nomad's `limits.http_max_conns_per_client` defaults to
    /// 100 (older Nomad closes the extra connections without an answer, newer ones
    /// answer 429) and Consul's to 200. Lists, blocking queries and streams are not
    /// counted (they go through their own pool and a blocking query can last
    /// minutes). Default 24: a cold start of 1,000 specs at a 5 ms round trip takes 1.9 s
    /// with it and 1.6 s without, with a third of the connections (BENCHMARKS.md).
    pub max_point_requests: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            blocking_slack: Duration::from_secs(10),
            retry: crate::retry::RetryPolicy::default(),
            max_point_requests: 24,
        }
    }
}

/// Everything the executor needs to talk to one server; built by the product configs.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub product: Product,
    pub address: Address,
    pub token: Option<SecretToken>,
    pub basic_auth: Option<BasicAuth>,
    pub tls: TlsConfig,
    pub http: HttpSettings,
    /// Query parameters added to every request unless the request sets them itself.
    pub default_query: Vec<(String, String)>,
    /// Headers added to every request.
    pub default_headers: Vec<(&'static str, String)>,
}

/// Reads a token file: trimmed content; empty content counts as no token.
pub(crate) fn read_token_file(path: &std::path::Path) -> Result<Option<SecretToken>, ConfigError> {
    let data = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        what: "token file",
        path: path.to_owned(),
        source,
    })?;
    let token = data.trim();
    Ok((!token.is_empty()).then(|| SecretToken::new(token)))
}

/// Parses a duration given as Go duration text (`10s`, `1m30s`) or bare seconds.
pub(crate) fn parse_env_duration(var: &str, value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    crate::util::parse_go_duration(v)
        .ok_or_else(|| ConfigError::invalid(var, format!("{v:?} is not a duration")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_bool_accepts_exactly_go_forms() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(parse_go_bool("X", t).unwrap());
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert!(!parse_go_bool("X", f).unwrap());
        }
        let err = parse_go_bool("CONSUL_HTTP_SSL", "yes").unwrap_err();
        assert!(err.to_string().contains("CONSUL_HTTP_SSL"));
    }

    #[test]
    fn address_forms() {
        let (a, _) = Address::parse("A", "127.0.0.1:8500", Scheme::Http, false).unwrap();
        assert_eq!(a.base_url(), "http://127.0.0.1:8500");
        let (a, _) =
            Address::parse("A", "https://consul.example:8501", Scheme::Http, false).unwrap();
        assert_eq!(a.scheme, Scheme::Https);
        let (a, _) =
            Address::parse("A", "https://lb.example/consul/", Scheme::Http, false).unwrap();
        assert_eq!(a.authority, "lb.example");
        assert_eq!(a.path_prefix, "/consul");
        assert_eq!(a.base_url(), "https://lb.example/consul");
        let (a, _) = Address::parse("A", "http://h:1", Scheme::Http, true).unwrap();
        assert_eq!(a.scheme, Scheme::Https, "SSL forces https even for http://");
        let (a, _) = Address::parse("A", "unix:///run/consul.sock", Scheme::Http, false).unwrap();
        assert_eq!(
            a.unix_socket.as_deref(),
            Some(std::path::Path::new("/run/consul.sock"))
        );
        let (a, auth) = Address::parse("A", "http://u:p@h:1", Scheme::Http, false).unwrap();
        assert_eq!(a.authority, "h:1");
        assert_eq!(auth.unwrap().username, "u");
        assert!(Address::parse("A", "ftp://h", Scheme::Http, false).is_err());
        assert!(Address::parse("A", "http://", Scheme::Http, false).is_err());
    }

    #[test]
    fn cert_and_key_must_come_together() {
        let tls = TlsConfig {
            client_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let err = tls.check(Product::Consul).unwrap_err();
        assert!(err.to_string().contains("together"), "{err}");
    }
}
