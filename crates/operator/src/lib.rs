//! The Steward operator: watches `ServiceSpec` documents in Consul KV and converges,
//! idempotently, the Nomad job, Consul config entries, Vault policy and JWT role each
//! spec implies; writes a status per spec, records events, garbage-collects what removed
//! specs owned, and serves an HTTP API with status, events and metrics.
//!
//! Entry points (what `steward run` / `steward dev` use):
//!
//! - [`OperatorConfig`]: every setting (`Default`, serde for a config file);
//! - [`Clients`]: the Consul, Nomad and Vault clients of `steward-hashi`;
//! - [`Operator::new`] → [`Operator::handle`], [`Operator::api_router`] →
//!   [`Operator::run`] until a `CancellationToken` is cancelled;
//! - [`OperatorHandle`]: statuses, events ([`steward_runtime::Recorder`]), metrics,
//!   leadership, GC approval.
//!
//! Inside, from the bottom of the module graph up: [`key`] (the work queue's
//! [`SpecKey`]), [`plan`] (pure ownership check and write plan), [`status`] (pure status
//! computation), [`rollout`] (deployment state), [`guard`] (the mass-deletion guard's
//! pure decisions and state), [`cache`] (watch caches of compact facts, publishing what
//! they change), [`triggers`] (the mappers from those changes to spec keys), [`metrics`], [`writer`] (batched, fenced status writes),
//! the operator's context (config, clients, caches, writer: what everything above
//! shares), [`reconcile`] (gather, plan, apply, status), [`gc`] (the collection pass),
//! the [`OperatorHandle`], [`api`] (HTTP), and the wiring in [`Operator`]. No module
//! imports one above it; `docs/architecture.md` has the data flow.
//!
//! Design notes (beyond the design document):
//!
//! - A difference in `Meta["steward.hash"]` alone is no reason to write: a new image
//!   rewrites the job and nothing else ([`plan`]).
//! - Vault creations, and creations of a kind whose cache is not fresh, are confirmed by
//!   direct reads just before writing (caches may lag): an object that exists after all
//!   is a conflict (foreign) or a lagging watch (ours), and nothing is written for the
//!   key in either case. Consul entries and Nomad jobs are created with CAS 0 instead
//!   of being read first.
//! - A cache that cannot sync (a kind the server lacks, permission denied, a server
//!   down) holds back only the specs that render its kind (phase `Pending`, reason
//!   `CacheUnavailable` naming the server's answer); it logs at WARN, shows in
//!   `/readyz` and `steward_cache_*` metrics, and garbage collection leaves its kind
//!   alone.
//! - A converged key costs no read: the status records the job's `JobModifyIndex` as
//!   verified, and Vault objects the status lists as in sync are taken as desired until
//!   the rolling content check reads them (see [`reconcile`]'s `gather`).
//! - When Nomad reverted the spec's version after a failed deployment, the job is not
//!   registered again until the spec changes (phase `Degraded`, reason `AutoReverted`);
//!   pushing the very same failed spec again therefore does not retry it.
//! - List watches are spaced by the size of their last answer (see [`cache::Observed`]).
#![deny(missing_docs)]

pub mod api;
pub mod cache;
pub mod config;
mod context;
pub mod error;
pub mod gc;
pub mod guard;
mod handle;
pub mod key;
mod memo;
pub mod metrics;
mod operator;
pub mod plan;
pub mod reconcile;
pub mod rollout;
pub mod status;
pub mod triggers;
pub mod writer;

pub use config::{LeaderSettings, OperatorConfig};
pub use context::Clients;
pub use error::{Error, Result};
pub use gc::{ApproveError, BlockedSet, GcObject};
pub use handle::OperatorHandle;
pub use key::SpecKey;
pub use operator::Operator;
pub use status::{Phase, StatusDoc};
