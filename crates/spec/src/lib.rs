//! ServiceSpec v1: types, loading with line/column diagnostics, guardrail policy,
//! scaling-window evaluation and JSON Schema. Pure: no I/O (callers pass text).
//!
//! ```
//! let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec: {image: 'nginx:1.27'}\n";
//! let loaded = steward_spec::load("web.yaml", text, None);
//! let spec = loaded.spec.expect("valid");
//! assert_eq!(spec.key(), "default/web");
//! assert_eq!(spec.spec.replicas, 1); // defaults are filled in
//! ```
#![deny(missing_docs)]

pub mod days;
pub mod diagnostic;
pub mod duration;
pub mod finding;
pub mod guardrails;
pub mod image;
pub mod limits;
pub mod load;
mod locate;
mod node;
pub mod path;
pub mod scaling;
pub mod schema;
mod structure;
mod suggest;
pub mod types;
mod tz;
pub mod validate;

pub use days::{DaySet, TimeOfDay};
pub use diagnostic::{Diagnostic, Severity, render_all};
pub use duration::Duration;
pub use finding::{Anchor, Finding};
pub use guardrails::{GuardrailPolicy, Limits, check_guardrails};
pub use image::ImageRef;
pub use load::{Loaded, LoadedPolicy, load, load_bytes, load_guardrail_policy};
pub use path::FieldPath;
pub use scaling::{ReplicaPlan, desired_replicas};
pub use schema::{guardrail_policy_schema, servicespec_schema};
pub use types::*;
pub use tz::time_zone;
pub use validate::validate_spec;
