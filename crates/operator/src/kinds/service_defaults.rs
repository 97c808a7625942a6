//! Consul `service-defaults`: one per spec with a port, named after the service; its
//! protocol change to `tcp` is the one cross-kind ordering rule (`crate::plan`).

use std::sync::Arc;

use steward_render::names::{self, SpecKey};
use steward_render::{ConfigEntry, Desired, ObjectKind};

use super::config_entry::ConfigEntryKind;
use crate::cache::Caches;
use crate::cache::entries::EntryCache;

/// The kind's module.
pub(super) static KIND: ConfigEntryKind = ConfigEntryKind {
    kind: ObjectKind::ServiceDefaults,
    cache,
    desired,
    key_names,
    before_put: None,
};

fn cache(caches: &Caches) -> &Arc<EntryCache> {
    &caches.service_defaults
}

fn desired(desired: &Desired) -> Vec<&ConfigEntry> {
    desired.service_defaults.iter().collect()
}

fn key_names(key: &SpecKey, _cache: &EntryCache) -> Vec<String> {
    vec![names::service_defaults(key)]
}
