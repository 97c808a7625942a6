//! Pure rendering of a ServiceSpec into the Nomad, Consul and Vault objects Steward owns,
//! and normalisation and diff of the live objects servers return. No I/O.
//!
//! - [`render`] gives the [`Desired`] objects of a spec; [`spec_hash`] its fingerprint.
//! - [`names`] is the only place names and ownership labels are made and read back.
//! - [`diff_job`], [`diff_config_entry`], [`diff_policy`], [`diff_role`] compare a desired
//!   object with the live one; an empty result means nothing to write.
//! - [`hcl`] writes the job as a Nomad jobspec and the policy as HCL.
#![deny(missing_docs)]

mod compare;
pub mod context;
pub mod desired;
pub mod diff;
pub mod error;
pub mod hash;
pub mod hcl;
pub mod http_route;
pub mod intentions;
pub mod job;
pub mod names;
pub mod normalise;
pub mod policy;
mod render;
pub mod role;
pub mod service_defaults;

pub use context::{GatewayRef, RenderContext};
pub use desired::{ConfigEntry, Desired, NomadJob, ObjectKind, ObjectRef, VaultPolicy, VaultRole};
pub use diff::{FieldChange, diff_config_entry, diff_job, diff_policy, diff_role};
pub use error::{Error, Result};
pub use hash::{config_entry_digest, spec_hash, value_digest};
pub use render::render;
