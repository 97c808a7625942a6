//! In-process simulator of the Consul, Nomad and Vault HTTP APIs.
//!
//! The simulator is Steward's embedded default (`steward dev`) and its test bed, so it
//! behaves like the real servers on every endpoint Steward uses: status codes, headers,
//! error bodies, JSON field names and index semantics (see the API reference, sections
//! 8 and 9). Three HTTP servers (one per product) listen on loopback; each product has
//! one index counter shared by all its tables, as the real servers do.
//!
//! ```no_run
//! # async fn demo() -> Result<(), steward_sim::Error> {
//! let sim = steward_sim::Sim::start(steward_sim::SimConfig::default()).await?;
//! println!("consul at http://{}", sim.consul_addr());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod acl;
pub mod admin;
pub mod blocking;
pub mod config;
pub mod consul;
mod error;
pub mod faults;
pub mod index;
pub mod nomad;
pub mod persist;
pub mod product;
mod server;
pub mod stats;
pub mod vault;

pub use config::{SimConfig, TokenConfig};
pub use error::{Error, Result};
pub use faults::{FaultController, FaultRule, FaultRuleKind};
pub use product::Product;
pub use server::{Sim, SimHandle};
pub use stats::{RequestStats, StatKey};
