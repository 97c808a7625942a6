//! Vault client: ACL policies, JWT auth roles, token lookup and health.
//!
//! Every request carries `X-Vault-Request: true`; payloads are read from the `data`
//! field of the response envelope.

mod env;
pub mod jwt;
pub mod policy;
pub mod sys;

use http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use env::VaultConfig;
pub use jwt::{DEFAULT_JWT_MOUNT, JwtRole};
pub use policy::Policy;
pub use sys::{HealthBody, HealthState, TokenInfo, VaultHealth};

use crate::config::ConfigError;
use crate::error::Result;
use crate::request::RequestSpec;
use crate::response::RawResponse;
use crate::transport::Transport;
use crate::util::null_default;

/// The `LIST` method Vault uses for listings.
pub fn list_method() -> Method {
    // "LIST" is a valid token; the fallback never happens.
    Method::from_bytes(b"LIST").unwrap_or(Method::GET)
}

/// A `LIST <path>` request whose empty answer (404) reads as `[]`.
pub fn list_spec(path: &str) -> RequestSpec {
    RequestSpec::new(list_method(), path).accept(&[404])
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

/// Decodes `data` of a Vault response envelope.
///
/// # Errors
/// `Decode` when the body is not an envelope or `data` is missing.
pub fn parse_data<T: DeserializeOwned>(raw: &RawResponse) -> Result<T> {
    raw.json::<Envelope<T>>()?
        .data
        .ok_or_else(|| raw.decode_error("response has no data"))
}

#[derive(Deserialize)]
struct Keys {
    #[serde(default, deserialize_with = "null_default")]
    keys: Vec<String>,
}

/// Decodes `data.keys` of a list; 404 is an empty list.
///
/// # Errors
/// `Decode` for a bad envelope.
pub fn parse_list(raw: &RawResponse) -> Result<Vec<String>> {
    if raw.status == 404 {
        return Ok(Vec::new());
    }
    Ok(parse_data::<Keys>(raw)?.keys)
}

/// Accepts an empty 204 or a 200 envelope (warnings).
fn parse_empty(_raw: &RawResponse) -> Result<()> {
    Ok(())
}

/// Typed Vault HTTP API client. Cheap to clone; `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct VaultClient {
    transport: Transport,
}

impl VaultClient {
    /// Builds a client.
    ///
    /// # Errors
    /// [`ConfigError`] for unusable TLS files or settings.
    pub fn new(config: VaultConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(config.endpoint())?,
        })
    }

    /// Builds a client from the `VAULT_*` environment variables.
    ///
    /// # Errors
    /// [`ConfigError`] for unusable variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(VaultConfig::from_env()?)
    }

    /// The same client, also reporting every request attempt to `observer` (metrics).
    #[must_use]
    pub fn with_observer(&self, observer: crate::transport::Observer) -> Self {
        Self {
            transport: self.transport.with_observer(observer),
        }
    }

    /// The executor.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Writes an ACL policy (the name is lower-cased).
    ///
    /// # Errors
    /// `InvalidRequest` for bad HCL (server text kept), transport or status errors.
    pub async fn put_policy(&self, name: &str, policy: &str) -> Result<()> {
        self.transport
            .call(policy::put(name, policy)?, parse_empty)
            .await
    }

    /// Reads an ACL policy; `None` when absent (or hidden from this token).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn get_policy(&self, name: &str) -> Result<Option<Policy>> {
        self.transport
            .call(policy::get(name)?, policy::parse_get)
            .await
    }

    /// Deletes an ACL policy (no error when absent).
    ///
    /// # Errors
    /// Transport or status errors (`root`/`default` are refused with 400).
    pub async fn delete_policy(&self, name: &str) -> Result<()> {
        self.transport
            .call(policy::delete(name)?, parse_empty)
            .await
    }

    /// Lists ACL policy names.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn list_policies(&self) -> Result<Vec<String>> {
        self.transport.call(policy::list(), parse_list).await
    }

    /// Writes a JWT auth role on `mount` (usually [`DEFAULT_JWT_MOUNT`]).
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn put_jwt_role(&self, mount: &str, name: &str, role: &JwtRole) -> Result<()> {
        self.transport
            .call(jwt::put(mount, name, role)?, parse_empty)
            .await
    }

    /// Reads a JWT auth role; `None` when absent.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn get_jwt_role(&self, mount: &str, name: &str) -> Result<Option<JwtRole>> {
        self.transport
            .call(jwt::get(mount, name)?, jwt::parse_get)
            .await
    }

    /// Deletes a JWT auth role (no error when absent).
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn delete_jwt_role(&self, mount: &str, name: &str) -> Result<()> {
        self.transport
            .call(jwt::delete(mount, name)?, parse_empty)
            .await
    }

    /// Lists JWT auth role names on `mount`.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn list_jwt_roles(&self, mount: &str) -> Result<Vec<String>> {
        self.transport.call(jwt::list(mount)?, parse_list).await
    }

    /// Describes the client's own token.
    ///
    /// # Errors
    /// `PermissionDenied` for a bad token, transport or decode errors.
    pub async fn lookup_self(&self) -> Result<TokenInfo> {
        self.transport
            .call(sys::lookup_self(), sys::parse_lookup_self)
            .await
    }

    /// Health of the node (sealed, standby... are states, not errors).
    ///
    /// # Errors
    /// Transport or decode errors.
    pub async fn health(&self) -> Result<VaultHealth> {
        self.transport.call(sys::health(), sys::parse_health).await
    }
}
