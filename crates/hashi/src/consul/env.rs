//! `ConsulConfig`: the standard `CONSUL_*` variables and builder overrides.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    Address, ConfigError, EnvLookup, HttpSettings, Scheme, TlsConfig, TlsVars, env_bool, env_get,
    process_env, read_token_file,
};
use crate::error::Product;
use crate::retry::RetryPolicy;
use crate::secret::{BasicAuth, SecretToken};

const TLS_VARS: TlsVars = TlsVars {
    ca_file: "CONSUL_CACERT",
    ca_pem: None,
    ca_path: "CONSUL_CAPATH",
    client_cert: "CONSUL_CLIENT_CERT",
    client_key: "CONSUL_CLIENT_KEY",
    server_name: "CONSUL_TLS_SERVER_NAME",
};

/// Consul client configuration. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct ConsulConfig {
    /// Server address (default `http://127.0.0.1:8500`).
    pub address: Address,
    /// ACL token (`X-Consul-Token`).
    pub token: Option<SecretToken>,
    /// Basic auth (`CONSUL_HTTP_AUTH`).
    pub basic_auth: Option<BasicAuth>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Enterprise namespace added to every request (`ns=`).
    pub namespace: Option<String>,
    /// Enterprise admin partition added to every request (`partition=`).
    pub partition: Option<String>,
    /// Datacenter added to every request (`dc=`).
    pub datacenter: Option<String>,
    /// Timeouts and retries.
    pub http: HttpSettings,
    force_https: bool,
    token_from_file_flag: bool,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        Self {
            address: Address::http("127.0.0.1:8500"),
            token: None,
            basic_auth: None,
            tls: TlsConfig::default(),
            namespace: None,
            partition: None,
            datacenter: None,
            http: HttpSettings::default(),
            force_https: false,
            token_from_file_flag: false,
        }
    }
}

impl ConsulConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_map(process_env)
    }

    /// Reads variables through `env` (for tests and embedding).
    ///
    /// Like the Go client: `CONSUL_HTTP_ADDR` (`host:port`, `http://`, `https://`,
    /// `unix://`, with an optional path prefix), `CONSUL_HTTP_SSL` upgrades to HTTPS,
    /// `CONSUL_HTTP_SSL_VERIFY=false` skips verification, `CONSUL_HTTP_TOKEN_FILE`
    /// beats `CONSUL_HTTP_TOKEN`, client cert and key only together. Unparseable
    /// booleans are errors (the Go client only logs a warning and ignores them).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env_map(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env: EnvLookup<'_> = &env;
        let mut cfg = Self::default();
        let ssl = env_bool(env, "CONSUL_HTTP_SSL")?.unwrap_or(false);
        cfg.force_https = ssl;
        let default_scheme = if ssl { Scheme::Https } else { Scheme::Http };
        let addr = env_get(env, "CONSUL_HTTP_ADDR").unwrap_or_else(|| "127.0.0.1:8500".into());
        let (address, auth) = Address::parse("CONSUL_HTTP_ADDR", &addr, default_scheme, ssl)?;
        cfg.address = address;
        cfg.basic_auth = auth;
        if let Some(a) = env_get(env, "CONSUL_HTTP_AUTH") {
            cfg.basic_auth = Some(BasicAuth::parse(&a));
        }
        cfg.token = env_get(env, "CONSUL_HTTP_TOKEN").map(SecretToken::new);
        if let Some(file) = env_get(env, "CONSUL_HTTP_TOKEN_FILE")
            && let Some(t) = read_token_file(&PathBuf::from(file))?
        {
            cfg.token = Some(t);
        }
        cfg.tls = TlsConfig::from_env(env, Product::Consul, TLS_VARS)?;
        if let Some(verify) = env_bool(env, "CONSUL_HTTP_SSL_VERIFY")? {
            cfg.tls.insecure_skip_verify = !verify;
        }
        cfg.namespace = env_get(env, "CONSUL_NAMESPACE");
        cfg.partition = env_get(env, "CONSUL_PARTITION");
        Ok(cfg)
    }

    /// Overrides the address (flag form; `CONSUL_HTTP_SSL` still upgrades to HTTPS).
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable address.
    pub fn with_address(mut self, addr: &str) -> Result<Self, ConfigError> {
        let default_scheme = if self.force_https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let (a, auth) = Address::parse("address", addr, default_scheme, self.force_https)?;
        self.address = a;
        if auth.is_some() {
            self.basic_auth = auth;
        }
        Ok(self)
    }

    /// Sets the token (flag): beats the env vars, loses to [`Self::with_token_file`].
    pub fn with_token(mut self, token: impl Into<SecretToken>) -> Self {
        if !self.token_from_file_flag {
            self.token = Some(token.into());
        }
        self
    }

    /// Reads the token from a file (flag): beats everything else.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the file cannot be read.
    pub fn with_token_file(mut self, path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        if let Some(t) = read_token_file(&path.into())? {
            self.token = Some(t);
            self.token_from_file_flag = true;
        }
        Ok(self)
    }

    /// Sets a PEM CA bundle file.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Sets a directory of PEM CA files.
    pub fn with_ca_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_path = Some(path.into());
        self
    }

    /// Sets the client certificate and key (PEM files).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Sets the TLS server name.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls.server_name = Some(name.into());
        self
    }

    /// Skips certificate verification (tests only).
    pub fn with_insecure_skip_verify(mut self, skip: bool) -> Self {
        self.tls.insecure_skip_verify = skip;
        self
    }

    /// Sets the namespace added to every request.
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets the datacenter added to every request.
    pub fn with_datacenter(mut self, dc: impl Into<String>) -> Self {
        self.datacenter = Some(dc.into());
        self
    }

    /// Sets the timeout of non-blocking requests.
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
        let mut default_query = Vec::new();
        if let Some(ns) = &self.namespace {
            default_query.push(("ns".to_owned(), ns.clone()));
        }
        if let Some(p) = &self.partition {
            default_query.push(("partition".to_owned(), p.clone()));
        }
        if let Some(dc) = &self.datacenter {
            default_query.push(("dc".to_owned(), dc.clone()));
        }
        crate::config::Endpoint {
            product: Product::Consul,
            address: self.address.clone(),
            token: self.token.clone(),
            basic_auth: self.basic_auth.clone(),
            tls: self.tls.clone(),
            http: self.http.clone(),
            default_query,
            default_headers: Vec::new(),
        }
    }
}
