//! Thin typed clients for the Consul, Nomad and Vault HTTP APIs.
//!
//! Shape (as in kube-core/kube-client): every endpoint has a pure request builder that
//! returns a [`RequestSpec`] and a pure response parser that takes a [`RawResponse`];
//! one executor ([`transport`]) sends requests with reqwest, applies tokens, TLS,
//! timeouts and retries. Reads return [`Response<T>`] with the blocking-query
//! [`QueryMeta`]; [`watch`] turns any blocking read into a stream of real changes.
//!
//! Two rules every loop in Steward shares live here, as the lowest crate all of them
//! use: the blocking-query index rule ([`index::next_index`]) and the one jittered,
//! capped exponential backoff ([`backoff::BackoffConfig`], [`backoff::Backoff`]).
#![deny(missing_docs)]

pub mod backoff;
pub mod config;
pub mod consul;
pub mod error;
pub mod index;
pub mod nomad;
pub mod request;
pub mod response;
pub mod retry;
pub mod secret;
mod tls;
pub mod transport;
pub mod vault;
pub mod versions;
pub mod watch;

mod util;

pub use backoff::{Backoff, BackoffConfig};
pub use config::ConfigError;
pub use consul::{ConsulClient, ConsulConfig};
pub use error::{Error, Product, Result};
pub use index::{NextIndex, next_index};
pub use nomad::{NomadClient, NomadConfig};
pub use request::{Body, Idempotency, QueryOptions, RequestSpec, WriteOptions};
pub use response::{QueryMeta, RawResponse, Response};
pub use retry::RetryPolicy;
pub use secret::SecretToken;
pub use transport::{Observation, Observer};
pub use vault::{VaultClient, VaultConfig};
pub use watch::{WatchConfig, watch, watch_by};
