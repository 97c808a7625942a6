//! Consul client: KV, transactions, sessions, config entries, health and catalog.
//!
//! Each submodule holds the pure request builders and response parsers of one area;
//! [`ConsulClient`] pairs them with the executor.

pub mod catalog;
pub mod config_entry;
mod env;
pub mod kv;
pub mod session;
pub mod txn;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use catalog::{AgentSelf, CatalogRegistration, ServiceEntry};
pub use config_entry::{
    ConfigEntry, HttpRoute, IntentionPermission, IntentionSource, ServiceDefaults,
    ServiceIntentions,
};
pub use env::ConsulConfig;
pub use kv::KvPair;
pub use session::{SessionBehavior, SessionCreate, SessionInfo};
pub use txn::{TxnError, TxnOp, TxnOutcome};

use crate::config::ConfigError;
use crate::error::Result;
use crate::request::{QueryOptions, WriteOptions};
use crate::response::Response;
use crate::transport::Transport;

/// Typed Consul HTTP API client. Cheap to clone; `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct ConsulClient {
    transport: Transport,
}

impl ConsulClient {
    /// Builds a client (loads CA/cert files, checks the configuration).
    ///
    /// # Errors
    /// [`ConfigError`] for unusable TLS files or settings.
    pub fn new(config: ConsulConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(config.endpoint())?,
        })
    }

    /// Builds a client from the `CONSUL_*` environment variables.
    ///
    /// # Errors
    /// [`ConfigError`] for unusable variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(ConsulConfig::from_env()?)
    }

    /// The same client, also reporting every request attempt to `observer` (metrics).
    #[must_use]
    pub fn with_observer(&self, observer: crate::transport::Observer) -> Self {
        Self {
            transport: self.transport.with_observer(observer),
        }
    }

    /// The executor (for requests this client has no method for).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Reads one key; `None` when it does not exist (with the index to block on).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_get(&self, key: &str, opts: &QueryOptions) -> Result<Response<Option<KvPair>>> {
        self.transport
            .call(kv::get(key, opts)?, kv::parse_get)
            .await
    }

    /// Reads every key under `prefix` (empty when none).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_list(
        &self,
        prefix: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<KvPair>>> {
        self.transport
            .call(kv::list(prefix, opts)?, kv::parse_list)
            .await
    }

    /// Lists key names under `prefix`, collapsed at `separator`.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<String>>> {
        self.transport
            .call(kv::keys(prefix, separator, opts)?, kv::parse_keys)
            .await
    }

    /// Writes a key; with `opts.cas` the answer is the CAS outcome (`false` = lost).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        flags: Option<u64>,
        opts: &WriteOptions,
    ) -> Result<bool> {
        self.transport
            .call(kv::put(key, value, flags, opts)?, kv::parse_bool)
            .await
    }

    /// Acquires the lock on `key` for `session` and writes `value`.
    ///
    /// # Errors
    /// Transport, status or decode errors (an unknown session is a server error).
    pub async fn kv_acquire(
        &self,
        key: &str,
        value: &[u8],
        session: &str,
        flags: Option<u64>,
    ) -> Result<bool> {
        let spec = kv::acquire(key, value, session, flags, &WriteOptions::new())?;
        self.transport.call(spec, kv::parse_bool).await
    }

    /// Releases the lock on `key` held by `session`, writing `value`.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_release(
        &self,
        key: &str,
        value: &[u8],
        session: &str,
        flags: Option<u64>,
    ) -> Result<bool> {
        let spec = kv::release(key, value, session, flags, &WriteOptions::new())?;
        self.transport.call(spec, kv::parse_bool).await
    }

    /// Deletes a key (`opts.cas` makes it conditional).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_delete(&self, key: &str, opts: &WriteOptions) -> Result<bool> {
        self.transport
            .call(kv::delete(key, opts)?, kv::parse_bool)
            .await
    }

    /// Deletes every key under `prefix`.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn kv_delete_tree(&self, prefix: &str) -> Result<bool> {
        self.transport
            .call(
                kv::delete_tree(prefix, &WriteOptions::new())?,
                kv::parse_bool,
            )
            .await
    }

    /// Runs a transaction; a rollback is a [`TxnOutcome::RolledBack`] value.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn txn(&self, ops: &[TxnOp], opts: &QueryOptions) -> Result<Response<TxnOutcome>> {
        self.transport
            .call(txn::txn(ops, opts)?, txn::parse_txn)
            .await
    }

    /// Creates a session and returns its ID.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn session_create(&self, session: &SessionCreate) -> Result<String> {
        self.transport
            .call(
                session::create(session, &WriteOptions::new())?,
                session::parse_create,
            )
            .await
    }

    /// Renews a session; adopt the returned TTL. An unknown session is
    /// [`crate::Error::SessionNotFound`].
    ///
    /// # Errors
    /// `SessionNotFound`, transport, status or decode errors.
    pub async fn session_renew(&self, id: &str) -> Result<SessionInfo> {
        self.transport
            .call(session::renew(id, &WriteOptions::new())?, |raw| {
                session::parse_renew(raw, id)
            })
            .await
    }

    /// Destroys a session (`true` even when already gone).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn session_destroy(&self, id: &str) -> Result<bool> {
        self.transport
            .call(session::destroy(id, &WriteOptions::new())?, |r| r.bool())
            .await
    }

    /// Reads a session; `None` when unknown.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn session_info(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Option<SessionInfo>>> {
        self.transport
            .call(session::info(id, opts)?, session::parse_info)
            .await
    }

    /// Lists sessions.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn session_list(&self, opts: &QueryOptions) -> Result<Response<Vec<SessionInfo>>> {
        self.transport
            .call(session::list(opts)?, session::parse_list)
            .await
    }

    /// Upserts a config entry (typed or raw JSON); with `opts.cas` the answer is the
    /// CAS outcome.
    ///
    /// # Errors
    /// Transport, status or decode errors; protocol rule violations are
    /// `InvalidRequest` with the server text.
    pub async fn config_put<T: Serialize + ?Sized>(
        &self,
        entry: &T,
        opts: &WriteOptions,
    ) -> Result<bool> {
        self.transport
            .call(config_entry::put(entry, opts)?, config_entry::parse_bool)
            .await
    }

    /// Reads a typed config entry; `None` when absent (metadata either way).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn config_get<T: ConfigEntry>(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Option<T>>> {
        self.transport
            .call(
                config_entry::get(T::KIND, name, opts)?,
                config_entry::parse_get::<T>,
            )
            .await
    }

    /// Reads a config entry of any kind as JSON.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn config_get_raw(
        &self,
        kind: &str,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Option<Value>>> {
        self.transport
            .call(
                config_entry::get(kind, name, opts)?,
                config_entry::parse_get::<Value>,
            )
            .await
    }

    /// Lists typed config entries of `T`'s kind.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn config_list<T: ConfigEntry>(
        &self,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<T>>> {
        self.transport
            .call(
                config_entry::list(T::KIND, opts)?,
                config_entry::parse_list::<T>,
            )
            .await
    }

    /// Lists config entries of any kind as JSON.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn config_list_raw(
        &self,
        kind: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<Value>>> {
        self.transport
            .call(
                config_entry::list(kind, opts)?,
                config_entry::parse_list::<Value>,
            )
            .await
    }

    /// Deletes a config entry; with `opts.cas` the answer is the CAS outcome, without
    /// it always `true`.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn config_delete(&self, kind: &str, name: &str, opts: &WriteOptions) -> Result<bool> {
        self.transport
            .call(
                config_entry::delete(kind, name, opts)?,
                config_entry::parse_delete,
            )
            .await
    }

    /// Lists instances of a service (only passing ones with `passing_only`).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn health_service(
        &self,
        name: &str,
        passing_only: bool,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<ServiceEntry>>> {
        self.transport
            .call(
                catalog::health_service(name, passing_only, opts)?,
                catalog::parse_health_service,
            )
            .await
    }

    /// Registers a node/service in the catalog.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn catalog_register(&self, reg: &CatalogRegistration) -> Result<bool> {
        self.transport
            .call(catalog::catalog_register(reg, &WriteOptions::new())?, |r| {
                r.bool()
            })
            .await
    }

    /// Deregisters a service (or the node).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn catalog_deregister(&self, node: &str, service_id: Option<&str>) -> Result<bool> {
        self.transport
            .call(
                catalog::catalog_deregister(node, service_id, &WriteOptions::new())?,
                |r| r.bool(),
            )
            .await
    }

    /// Lists service names with their tags.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn catalog_services(
        &self,
        opts: &QueryOptions,
    ) -> Result<Response<BTreeMap<String, Vec<String>>>> {
        self.transport
            .call(
                catalog::catalog_services(opts)?,
                catalog::parse_catalog_services,
            )
            .await
    }

    /// The Raft leader address, `None` when there is none.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn status_leader(&self) -> Result<Option<String>> {
        self.transport
            .call(catalog::status_leader(), catalog::parse_status_leader)
            .await
    }

    /// The agent's self description.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn agent_self(&self) -> Result<AgentSelf> {
        self.transport
            .call(catalog::agent_self(), catalog::parse_agent_self)
            .await
    }
}
