//! Controller machinery built in-house in the manner of kube-runtime: watcher, store,
//! work queue, backoff, controller, leader election on a Consul session, event recorder.
//!
//! Data flow (see the design document): a [`watcher::watcher`] turns a list-with-blocking source
//! into change events, a [`watcher::reflector`] keeps a [`store::Store`] of the latest
//! objects, the [`controller::Controller`] maps events to keys on a
//! [`queue::WorkQueue`] and runs `reconcile(key)` with bounded concurrency while this
//! instance holds leadership ([`leader`]). Every piece is a state machine behind a small
//! trait so tests drive it without a network; the adapters to `steward-hashi` are thin.
//!
//! What the operator uses today: [`watcher::watcher`] (under its own caches, which keep
//! compact facts rather than a [`store::Store`] of whole objects), the
//! [`controller::Controller`] with its [`queue::WorkQueue`], [`leader`] election with
//! fenced status writes, and the [`events::Recorder`]. The [`store::Store`], the
//! reflector and the controller's `watches` mappers are not used by the operator yet
//! (see `docs/architecture.md`). An example of wiring every piece:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use futures::StreamExt as _;
//! use steward_runtime::controller::{map_keys, Action, Context, Controller, ControllerConfig, Lease};
//! use steward_runtime::leader::{fenced_txn, ConsulLock, FencedWrite, LeaderConfig, LeaderElector};
//! use steward_runtime::sources::{ConsulKvSource, NomadJobSource};
//! use steward_runtime::{reflector, watcher, Store, WatcherConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo(consul: steward_hashi::ConsulClient, nomad: steward_hashi::NomadClient) {
//! let shutdown = CancellationToken::new();
//! let mut registry = prometheus_client::registry::Registry::default();
//!
//! // Leader election: reconciles run only while this instance holds steward/leader.
//! let lock = Arc::new(ConsulLock::new(consul.clone()));
//! let elector = LeaderElector::new(lock.clone(), LeaderConfig::new("steward/leader"));
//! let leadership = elector.subscribe();
//! tokio::spawn(elector.run(shutdown.clone()));
//!
//! // Specs: watcher -> store; every spec key `steward/specs/<ns>/<name>` maps to `<ns>/<name>`.
//! let specs = Store::new();
//! let spec_reader = specs.reader();
//! let spec_events = reflector(specs, watcher(ConsulKvSource::new(consul.clone(), "steward/specs/"), WatcherConfig::default()));
//! // Owned Nomad jobs map back to their spec through ownership metadata.
//! let jobs = watcher(NomadJobSource::new(nomad), WatcherConfig::default());
//! let job_owner = |e: &steward_runtime::watcher::Event<String, steward_hashi::nomad::JobListStub>| match e {
//!     steward_runtime::watcher::Event::Applied(_, job) => job
//!         .meta
//!         .as_ref()
//!         .and_then(|m| m.get("steward.spec").cloned())
//!         .into_iter()
//!         .collect(),
//!     // job `<name>` in namespace `<ns>` belongs to spec `<ns>/<name>` (naming rules)
//!     steward_runtime::watcher::Event::Deleted(key) => vec![key.clone()],
//!     _ => Vec::new(),
//! };
//! let resync_reader = spec_reader.clone();
//! let controller = Controller::new(ControllerConfig::default(), Some(&mut registry))
//!     .with_leadership(leadership)
//!     .watches(spec_events, map_keys(|k: &String| k.strip_prefix("steward/specs/").map(str::to_owned)))
//!     .watches(jobs, job_owner)
//!     .resync_on_leadership(move || {
//!         resync_reader.keys().into_iter().filter_map(|k| k.strip_prefix("steward/specs/").map(str::to_owned)).collect()
//!     });
//!
//! struct Data { lock: Arc<ConsulLock> }
//! let ctx = Arc::new(Context::new(Data { lock }));
//! controller
//!     .run(
//!         |key: String, ctx: Arc<Context<Data>>, lease: Lease| async move {
//!             // ... read truth, render, diff, write in order, then a fenced status write:
//!             if let Some(fence) = lease.fence() {
//!                 let status = steward_hashi::consul::TxnOp::Set {
//!                     key: format!("steward/status/{key}"),
//!                     value: b"{}".to_vec(),
//!                     flags: 0,
//!                 };
//!                 match fenced_txn(&*ctx.lock, fence, [status]).await {
//!                     Ok(FencedWrite::Committed(_)) => {}
//!                     Ok(_) => return Err("deposed: status not written".to_owned()),
//!                     Err(e) => return Err(e.to_string()),
//!                 }
//!             }
//!             Ok::<_, String>(Action::requeue(Duration::from_secs(300)))
//!         },
//!         |_key: &String, _error: &String, _ctx| Action::backoff(),
//!         ctx,
//!         shutdown,
//!     )
//!     .await;
//! # }
//! ```
#![deny(missing_docs)]

/// The one backoff of Steward, defined in `steward-hashi` (the lowest crate every
/// retrying loop can use) and re-exported so `steward_runtime::backoff` paths keep
/// working.
pub use steward_hashi::backoff;
pub mod controller;
pub mod events;
pub mod leader;
pub mod queue;
pub mod sources;
pub mod store;
mod tokio_clock;
pub mod watcher;

pub use backoff::{Backoff, BackoffConfig};
pub use controller::{Action, Context, Controller, ControllerConfig, Lease};
pub use events::{EventType, Recorder};
pub use leader::{
    ConsulLock, Fence, FencedWrite, LeaderConfig, LeaderElector, Leadership, LockBackend,
    fenced_txn,
};
pub use queue::{QueueConfig, WorkQueue};
pub use sources::{ConsulConfigEntrySource, ConsulKvSource, NomadJobSource};
pub use store::{Reader, Store};
pub use watcher::{
    ListSource, Listing, ListingEntry, PollSource, WatcherConfig, reflector, watcher,
};
