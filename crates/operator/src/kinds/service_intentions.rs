//! Consul `service-intentions`: one per spec with a port, the service as destination
//! (anything not allowed is denied).

use std::sync::Arc;

use steward_render::names::{self, SpecKey};
use steward_render::{ConfigEntry, Desired, ObjectKind};

use super::config_entry::ConfigEntryKind;
use crate::cache::Caches;
use crate::cache::entries::EntryCache;

/// The kind's module.
pub(super) static KIND: ConfigEntryKind = ConfigEntryKind {
    kind: ObjectKind::ServiceIntentions,
    cache,
    desired,
    key_names,
    before_put: None,
};

fn cache(caches: &Caches) -> &Arc<EntryCache> {
    &caches.service_intentions
}

fn desired(desired: &Desired) -> Vec<&ConfigEntry> {
    desired.service_intentions.iter().collect()
}

fn key_names(key: &SpecKey, _cache: &EntryCache) -> Vec<String> {
    vec![names::service_intentions(key)]
}
