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
//! [`SpecKey`]), `objects` (the object model: live objects, writes, steps, owners),
//! [`status`] (pure status computation), [`rollout`] (deployment state), [`guard`] (the
//! mass-deletion guard's pure decisions and state), [`cache`] (watch caches of compact
//! facts, publishing what they change), [`triggers`] (the mappers from those changes to
//! spec keys), [`metrics`], [`writer`] (batched, fenced status writes),
//! the operator's context (config, clients, caches, writer: what everything above
//! shares), `kinds` (one module per object kind, see below), [`plan`] (the pure write
//! plan, in the order across kinds), [`reconcile`] (gather → decide → execute →
//! summarise), [`gc`] (the collection pass),
//! the [`OperatorHandle`], [`api`] (HTTP), and the wiring in [`Operator`]. No module
//! imports one above it; `docs/architecture.md` has the data flow.
//!
//! One module per object kind (`kinds/`: Nomad job, `service-defaults`,
//! `service-intentions`, `http-route`, Vault policy, Vault JWT role), each implementing
//! one trait, `kinds::Kind`, whose methods are:
//!
//! - `kind`: which [`steward_render::ObjectKind`] it is; `describe`: how messages
//!   name one of its objects; `removal`: what a garbage collection delete does to it;
//! - `health`: its cache's health (readiness: a spec that renders the kind waits for it
//!   to sync; garbage collection needs it fresh); `caches`: every cache its watches
//!   keep (`/readyz`, metrics); `watches`: the cache source, the watch loops that keep
//!   its cache (spawned by the wiring); `reads_before_create`: whether a
//!   creation is read first (Vault's always, others' when the cache is stale);
//! - `desired`: the names of its objects in a rendering; `owner`: who owns a live one;
//!   `compare`: normalise and diff desired and live into a create or update step (or
//!   in sync); `delete`: the step for an owned object the spec no longer renders (pure);
//! - `gather`: the live lookup (cache facts first, a point read where they cannot
//!   vouch, the last status's trust, our own writes the watch has not shown);
//!   `preflight`: the read before a creation; `execute`: one check-and-set write or
//!   delete;
//! - `inventory`, `listed_owners` and `gc_delete`: garbage collection's ownership
//!   inventory, and the re-read and owner check before a delete that goes through the
//!   same `execute`.
//!
//! The operator goes through one registry, `kinds::KINDS` (apply order), and
//! `kinds::of`: adding a kind is one module plus one registration line (and, in
//! `steward-render`, the `ObjectKind` variant and its rendering). The order across
//! kinds stays in [`plan`].
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
pub mod api_token;
pub mod cache;
pub mod config;
mod context;
pub mod detect;
pub mod error;
pub mod gc;
pub mod guard;
mod handle;
pub mod key;
mod kinds;
mod memo;
pub mod metrics;
mod objects;
mod operator;
pub mod packed;
pub mod plan;
pub mod reconcile;
mod reconcile_error;
pub mod rollout;
pub mod status;
pub mod triggers;
mod uncertain;
mod waits;
pub mod writer;

pub use config::{EdgeMode, EdgeSettings, LeaderSettings, OperatorConfig};
pub use context::Clients;
pub use error::{Error, Result};
pub use gc::{ApproveError, BlockedSet, GcObject};
pub use handle::OperatorHandle;
pub use key::SpecKey;
pub use operator::Operator;
pub use status::{Phase, StatusDoc};
