//! `steward bench`: runs the operator against the simulator and measures how fast it
//! converges, what it asks of Consul, Nomad and Vault, and what it costs.
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
//! simulator's latency fault).
//!
//! Where the simulator runs ([`SimPlacement`]): by default `steward sim` as a child
//! process (faults and counters through its admin API `/_sim/v1/`), so the bench
//! process holds only the operators and the harness: its peak RSS (VmHWM) is the
//! operators' own (plus the harness's small share), and the child's peak RSS and CPU
//! are read from `/proc/<pid>` apart. `in-process` puts the simulator on its own runtime
//! inside the bench process (one RSS for both sides); `external` uses a running
//! `steward sim`, whose memory and CPU are not measured. Each operator and the harness
//! run on their own Tokio runtimes (threads `op-<name>`, the caller's), so CPU time is
//! attributed per side.
//!
//! A benchmark measures; it asserts nothing about time. Every wait is bounded by
//! [`BenchConfig::timeout`].
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod measure;
pub mod report;
mod scenario;
mod simproc;
pub mod specs;
mod world;

pub use config::{BenchConfig, Scenario, SimAddresses, SimPlacement};
pub use error::{Error, Result};
pub use report::{Report, ScenarioReport};
pub use scenario::run;
