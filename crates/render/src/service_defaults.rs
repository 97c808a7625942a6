//! The `service-defaults` entry (reference §4.2): the protocol of the main port.

use serde_json::{Map, Value, json};
use steward_spec::ServiceSpec;

use crate::desired::ConfigEntry;
use crate::names::{self, SpecKey};

/// Kind string of the entry.
pub const KIND: &str = "service-defaults";

/// `{"Kind", "Name", "Protocol": spec.effective_protocol(), "Meta"}`.
pub(crate) fn render_service_defaults(
    spec: &ServiceSpec,
    meta: &Map<String, Value>,
) -> ConfigEntry {
    let name = names::service_defaults(&SpecKey::of(spec));
    let body = json!({
        "Kind": KIND,
        "Name": name,
        "Protocol": spec.effective_protocol().as_str(),
        "Meta": meta,
    });
    ConfigEntry {
        kind: KIND.to_owned(),
        name,
        body,
    }
}
