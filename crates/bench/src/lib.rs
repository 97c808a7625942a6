//! `steward bench`: runs the operator against the in-process simulator and measures how
//! fast it converges, what it asks of Consul, Nomad and Vault, and what it costs.
//!
//! Scenarios ([`Scenario`]):
//!
//! - `cold`: N specs pushed at once into a running operator → time until all are Synced,
//!   requests by product and method, writes per spec;
//! - `change`: N loaded and converged, M single-spec edits one after another →
//!   latency from the KV write to the last owned write, to the status written, and to
//!   Synced; writes per changed object;
//! - `drift`: hand edits of owned Nomad jobs → time until the operator's repairing write;
//! - `steady`: N converged, an idle period → requests per minute by endpoint, writes;
//! - `failover`: two operators, the leader killed like a crashed process → time until
//!   the other leads and runs its first reconcile;
//! - `all`: every scenario above, in that order, on one loaded simulator.
//!
//! `rtt` injects a fixed latency into every simulated request of every product (the
//! simulator's latency fault). The simulator, each operator and the harness run on
//! their own Tokio runtimes (threads `sim-rt`, `op-<name>`, the caller's), so CPU time
//! is attributed per side; the process's peak RSS includes the simulator.
//!
//! A benchmark measures; it asserts nothing about time. Every wait is bounded by
//! [`BenchConfig::timeout`].
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod measure;
pub mod report;
mod scenario;
pub mod specs;
mod world;

pub use config::{BenchConfig, Scenario};
pub use error::{Error, Result};
pub use report::{Report, ScenarioReport};
pub use scenario::run;
