//! Controller machinery built in-house in the manner of kube-runtime: watcher, work
//! queue, backoff, controller, leader election on a Consul session, event recorder.
//!
//! How the operator uses it (`docs/architecture.md` has the whole path):
//!
//! - A [`watcher::watcher`] turns a list-with-blocking source (a [`ListSource`]: the
//!   Consul KV prefix of [`sources::ConsulKvSource`], or a source of the operator's own
//!   that decodes only what it keeps) into change events. The operator's caches apply
//!   those events (and the Nomad event stream, and Vault polls) to what they keep: they
//!   are the store, keeping compact facts rather than whole objects.
//! - Every cache publishes what it changed (which object, its owners before and after,
//!   never a body) on a channel. [`Controller::watches`] takes that stream with a
//!   mapper from one change to the keys it concerns, as kube-runtime's
//!   `watches`/`owns` do: a spec change maps to its key, an owned object to its owner,
//!   a cache's first sync to every key.
//! - The [`Controller`] queues those keys on its [`WorkQueue`] (deduplicated, rate
//!   limited, per-key backoff) and runs `reconcile(key)` with bounded concurrency while
//!   this instance holds leadership ([`leader`]); statuses are written with
//!   [`fenced_txn`]. Events go to the [`Recorder`].
//!
//! Every piece is a state machine behind a small trait, so tests drive it without a
//! network; the adapters to `steward-hashi` are thin. The same wiring in small:
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use futures::StreamExt as _;
//! use parking_lot::RwLock;
//! use steward_runtime::controller::{Action, Context, Controller, ControllerConfig, Lease};
//! use steward_runtime::leader::{ConsulLock, FencedWrite, LeaderConfig, LeaderElector, fenced_txn};
//! use steward_runtime::sources::ConsulKvSource;
//! use steward_runtime::watcher::{Event, WatcherConfig, watcher};
//! use tokio_util::sync::CancellationToken;
//!
//! /// What the cache publishes: the spec keys whose generation moved or that went.
//! struct Changed(Vec<String>);
//!
//! # async fn demo(consul: steward_hashi::ConsulClient) {
//! let shutdown = CancellationToken::new();
//! let mut registry = prometheus_client::registry::Registry::default();
//!
//! // Leader election: reconciles run only while this instance holds steward/leader.
//! let lock = Arc::new(ConsulLock::new(consul.clone()));
//! let elector = LeaderElector::new(lock.clone(), LeaderConfig::new("steward/leader"));
//! let leadership = elector.subscribe();
//! tokio::spawn(elector.run(shutdown.clone()));
//!
//! // The cache: the watcher's events applied to what is kept (a generation per spec
//! // key), publishing what changed.
//! let specs: Arc<RwLock<BTreeMap<String, u64>>> = Arc::default();
//! let (publish, changes) = futures::channel::mpsc::unbounded::<Changed>();
//! let cache = specs.clone();
//! tokio::spawn(async move {
//!     let source = ConsulKvSource::new(consul, "steward/specs/");
//!     let events = watcher(source, WatcherConfig::default());
//!     futures::pin_mut!(events);
//!     let key = |kv_key: &str| kv_key.trim_start_matches("steward/specs/").to_owned();
//!     while let Some(event) = events.next().await {
//!         let changed = match event {
//!             Event::Restarted(all) => {
//!                 let mut map = cache.write();
//!                 map.clear();
//!                 for (k, pair) in &all {
//!                     map.insert(key(k), pair.modify_index);
//!                 }
//!                 map.keys().cloned().collect()
//!             }
//!             Event::Applied(k, pair) => {
//!                 cache.write().insert(key(&k), pair.modify_index);
//!                 vec![key(&k)]
//!             }
//!             Event::Deleted(k) => {
//!                 cache.write().remove(&key(&k));
//!                 vec![key(&k)]
//!             }
//!             Event::Error(_) => continue,
//!         };
//!         let _ = publish.unbounded_send(Changed(changed));
//!     }
//! });
//!
//! // The mapper turns a change into keys; a new leader looks at every key once.
//! let controller = Controller::new(ControllerConfig::default(), Some(&mut registry))
//!     .with_leadership(leadership)
//!     .watches(changes, |Changed(keys)| keys)
//!     .resync_on_leadership(move || specs.read().keys().cloned().collect());
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
pub use sources::ConsulKvSource;
pub use watcher::{ListSource, Listing, ListingEntry, WatcherConfig, watcher};
