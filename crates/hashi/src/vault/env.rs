//! `VaultConfig`: the standard `VAULT_*` variables and builder overrides.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    Address, ConfigError, EnvLookup, HttpSettings, Scheme, TlsConfig, TlsVars, env_bool, env_get,
    parse_env_duration, process_env, read_token_file,
};
use crate::error::Product;
use crate::retry::RetryPolicy;
use crate::secret::SecretToken;

const TLS_VARS: TlsVars = TlsVars {
    ca_file: "VAULT_CACERT",
    ca_pem: Some("VAULT_CACERT_BYTES"),
    ca_path: "VAULT_CAPATH",
    client_cert: "VAULT_CLIENT_CERT",
    client_key: "VAULT_CLIENT_KEY",
    server_name: "VAULT_TLS_SERVER_NAME",
};

/// Vault client configuration. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Server address (default `https://127.0.0.1:8200`).
    pub address: Address,
    /// Token (`X-Vault-Token`).
    pub token: Option<SecretToken>,
    /// Enterprise namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Timeouts and retries.
    pub http: HttpSettings,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            address: Address {
                scheme: Scheme::Https,
                authority: "127.0.0.1:8200".into(),
                path_prefix: String::new(),
                unix_socket: None,
            },
            token: None,
            namespace: None,
            tls: TlsConfig::default(),
            http: HttpSettings::default(),
        }
    }
}

impl VaultConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_map(process_env)
    }

    /// Reads `VAULT_ADDR` (overridden by `VAULT_AGENT_ADDR`, then `VAULT_PROXY_ADDR`, as
    /// in the Go client), `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`,
    /// `VAULT_CACERT_BYTES`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`,
    /// `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`, `VAULT_CLIENT_TIMEOUT` and
    /// `VAULT_MAX_RETRIES` through `env`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env_map(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env: EnvLookup<'_> = &env;
        let mut cfg = Self::default();
        let (var, addr) = if let Some(a) = env_get(env, "VAULT_PROXY_ADDR") {
            ("VAULT_PROXY_ADDR", Some(a))
        } else if let Some(a) = env_get(env, "VAULT_AGENT_ADDR") {
            ("VAULT_AGENT_ADDR", Some(a))
        } else {
            ("VAULT_ADDR", env_get(env, "VAULT_ADDR"))
        };
        if let Some(addr) = addr {
            let (a, _) = Address::parse(var, &addr, Scheme::Https, false)?;
            cfg.address = a;
        }
        cfg.token = env_get(env, "VAULT_TOKEN").map(|t| SecretToken::new(t.trim()));
        cfg.namespace = env_get(env, "VAULT_NAMESPACE");
        cfg.tls = TlsConfig::from_env(env, Product::Vault, TLS_VARS)?;
        if let Some(skip) = env_bool(env, "VAULT_SKIP_VERIFY")? {
            cfg.tls.insecure_skip_verify = skip;
        }
        if let Some(t) = env_get(env, "VAULT_CLIENT_TIMEOUT") {
            cfg.http.timeout = parse_env_duration("VAULT_CLIENT_TIMEOUT", &t)?;
        }
        if let Some(r) = env_get(env, "VAULT_MAX_RETRIES") {
            let n: u32 = r.trim().parse().map_err(|_| {
                ConfigError::invalid("VAULT_MAX_RETRIES", format!("{r:?} is not a count"))
            })?;
            cfg.http.retry.max_attempts = n.saturating_add(1);
        }
        Ok(cfg)
    }

    /// Overrides the address.
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable address.
    pub fn with_address(mut self, addr: &str) -> Result<Self, ConfigError> {
        self.address = Address::parse("address", addr, Scheme::Https, false)?.0;
        Ok(self)
    }

    /// Sets the token.
    pub fn with_token(mut self, token: impl Into<SecretToken>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Reads the token from a file.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the file cannot be read.
    pub fn with_token_file(mut self, path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        if let Some(t) = read_token_file(&path.into())? {
            self.token = Some(t);
        }
        Ok(self)
    }

    /// Sets a PEM CA bundle file.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Sets a PEM CA bundle given inline.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Sets the client certificate and key.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Sets the namespace header.
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.http.timeout = t;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.http.retry = retry;
        self
    }

    /// Sets how many point reads and writes may be in flight to the server at once
    /// ([`HttpSettings::max_point_requests`]; at least 1).
    pub fn with_max_point_requests(mut self, n: usize) -> Self {
        self.http.max_point_requests = n.max(1);
        self
    }

    pub(crate) fn endpoint(&self) -> crate::config::Endpoint {
        let mut default_headers = vec![("x-vault-request", "true".to_owned())];
        if let Some(ns) = &self.namespace {
            default_headers.push(("x-vault-namespace", ns.clone()));
        }
        crate::config::Endpoint {
            product: Product::Vault,
            address: self.address.clone(),
            token: self.token.clone(),
            basic_auth: None,
            tls: self.tls.clone(),
            http: self.http.clone(),
            default_query: Vec::new(),
            default_headers,
        }
    }
}
