//! `NomadConfig`: the standard `NOMAD_*` variables and builder overrides.

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
    ca_file: "NOMAD_CACERT",
    ca_pem: None,
    ca_path: "NOMAD_CAPATH",
    client_cert: "NOMAD_CLIENT_CERT",
    client_key: "NOMAD_CLIENT_KEY",
    server_name: "NOMAD_TLS_SERVER_NAME",
};

/// Nomad client configuration. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct NomadConfig {
    /// Server address (default `http://127.0.0.1:4646`).
    pub address: Address,
    /// ACL token (`X-Nomad-Token`).
    pub token: Option<SecretToken>,
    /// Basic auth (`NOMAD_HTTP_AUTH`).
    pub basic_auth: Option<BasicAuth>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Region added to every request (`region=`).
    pub region: Option<String>,
    /// Namespace added to every request that does not name one (`namespace=`).
    pub namespace: Option<String>,
    /// Timeouts and retries.
    pub http: HttpSettings,
}

impl Default for NomadConfig {
    fn default() -> Self {
        Self {
            address: Address::http("127.0.0.1:4646"),
            token: None,
            basic_auth: None,
            tls: TlsConfig::default(),
            region: None,
            namespace: None,
            http: HttpSettings::default(),
        }
    }
}

impl NomadConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_map(process_env)
    }

    /// Reads `NOMAD_ADDR`, `NOMAD_TOKEN`, `NOMAD_REGION`, `NOMAD_NAMESPACE`,
    /// `NOMAD_HTTP_AUTH`, `NOMAD_CACERT`, `NOMAD_CAPATH`, `NOMAD_CLIENT_CERT`,
    /// `NOMAD_CLIENT_KEY`, `NOMAD_TLS_SERVER_NAME` and `NOMAD_SKIP_VERIFY` through `env`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that is unusable.
    pub fn from_env_map(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env: EnvLookup<'_> = &env;
        let mut cfg = Self::default();
        if let Some(addr) = env_get(env, "NOMAD_ADDR") {
            let (a, auth) = Address::parse("NOMAD_ADDR", &addr, Scheme::Http, false)?;
            cfg.address = a;
            cfg.basic_auth = auth;
        }
        if let Some(a) = env_get(env, "NOMAD_HTTP_AUTH") {
            cfg.basic_auth = Some(BasicAuth::parse(&a));
        }
        cfg.token = env_get(env, "NOMAD_TOKEN").map(SecretToken::new);
        cfg.region = env_get(env, "NOMAD_REGION");
        cfg.namespace = env_get(env, "NOMAD_NAMESPACE");
        cfg.tls = TlsConfig::from_env(env, Product::Nomad, TLS_VARS)?;
        if let Some(skip) = env_bool(env, "NOMAD_SKIP_VERIFY")? {
            cfg.tls.insecure_skip_verify = skip;
        }
        Ok(cfg)
    }

    /// Overrides the address.
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable address.
    pub fn with_address(mut self, addr: &str) -> Result<Self, ConfigError> {
        let (a, auth) = Address::parse("address", addr, Scheme::Http, false)?;
        self.address = a;
        if auth.is_some() {
            self.basic_auth = auth;
        }
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

    /// Sets the client certificate and key.
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

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the default namespace.
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
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
        if let Some(r) = &self.region {
            default_query.push(("region".to_owned(), r.clone()));
        }
        if let Some(ns) = &self.namespace {
            default_query.push(("namespace".to_owned(), ns.clone()));
        }
        crate::config::Endpoint {
            product: Product::Nomad,
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
