//! Steward's edge control plane: an Envoy v3 xDS server (ADS, state of the world) that
//! programs edge Envoys from the specs' edge routes and the passing instances Consul
//! health lists.
//!
//! - [`translate`] (pure): edge specs + endpoints + listeners → a plan of Envoy resources
//!   and a verdict per spec (serving, conflict, rejected);
//! - [`resources`]: the plan as protobuf with content-hash versions per type;
//! - [`session`] (pure): one ADS stream's ACK/NACK state and what to push next;
//! - [`state`]: the shared [`Edge`] the operator and the health watches feed;
//! - [`server`]: the tonic ADS service;
//! - [`health`]: one Consul blocking-query watch per service in use;
//! - [`bootstrap`]: the Envoy bootstrap `steward edge envoy-bootstrap` prints.
#![deny(missing_docs)]

pub mod bench;
pub mod bootstrap;
pub mod envoy_bin;
pub mod health;
pub mod metrics;
pub mod resources;
pub mod server;
pub mod session;
pub mod state;
pub mod translate;

pub use metrics::Metrics;
pub use state::{AckState, Edge, EdgeEvent, ProxyStatus};
pub use translate::{EdgeListener, EdgeSpec, Endpoint, SpecVerdict};
