//! Reading the live objects of one key: caches first, direct reads when a cache is
//! stale or does not hold what is needed. Each kind reads its own (`Kind::gather` in
//! `crate::kinds`); this holds back a spec whose kinds' caches have not synced, and
//! keeps what the last status vouches for.
//!
//! Two shortcuts keep a converged key free of reads (a restarted operator with 10,000
//! converged specs must not read 20,000 bodies), both tied to the last status of the
//! *same* generation, spec hash and replica count ([`Trust`]):
//! - the Nomad job: the job list shows the `JobModifyIndex` the status recorded as
//!   matching, so the job has not changed since: no body is read;
//! - Vault objects: the list has the name and the status recorded the object as in
//!   sync: the content is taken as desired until the rolling content check (or a
//!   change of the spec) reads it.

use std::collections::BTreeSet;

use steward_render::names::SpecKey;
use steward_render::{Desired, ObjectKind, ObjectRef};

use super::ReconcileError;
use crate::cache::Caches;
use crate::context::OperatorContext;
use crate::kinds::{self, Lookup};
use crate::plan::Live;

pub(crate) use crate::kinds::Trust;

/// A cache the spec needs that has not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsynced {
    /// The kind of object the spec renders and the cache holds.
    pub(crate) kind: ObjectKind,
    /// The cache's name.
    pub(crate) cache: &'static str,
    /// The server's last answer, while the cache's reads keep failing (`None`: it is
    /// still on its first listing).
    pub(crate) error: Option<String>,
}

/// What [`gather`] found.
#[derive(Debug)]
pub(crate) enum Gathered {
    /// The live objects, and which of them are our own writes the watch has not shown.
    Live(Live, BTreeSet<ObjectRef>),
    /// A cache of a kind the spec renders has not synced: nothing can be decided for
    /// this spec yet (specs that need no such object go on).
    Waiting(Vec<Unsynced>),
    /// One of our writes the watch has not shown yet differs from what the spec wants
    /// now: its index is unknown, so no check-and-set write can follow it yet.
    WaitForWatch,
}

/// The caches `desired` needs that have not synced. Only the kinds the spec renders
/// count: a cache that cannot sync (a kind the server lacks, permission denied, a server
/// down) holds back only the specs that need it. Every cache of a kind counts, not only
/// the one of its objects: a job's status is computed from its deployments too, and a
/// status computed before they are listed says something else than the one after
/// (a new leader would write each spec's status twice, for nothing).
pub(crate) fn unsynced(caches: &Caches, desired: &Desired) -> Vec<Unsynced> {
    let kinds: BTreeSet<ObjectKind> = desired.objects().iter().map(|o| o.kind).collect();
    kinds
        .into_iter()
        .flat_map(|kind| {
            kinds::of(kind)
                .caches(caches)
                .into_iter()
                .filter(|health| !health.is_synced())
                .map(move |health| Unsynced {
                    kind,
                    cache: health.name(),
                    error: health.error(),
                })
        })
        .collect()
}

/// The live objects of `key`, from the caches or direct reads, and which of them are
/// our own writes the watch has not shown yet; or the caches it waits for. Each kind
/// finds its own ([`crate::kinds::Kind::gather`]).
pub(crate) async fn gather(
    shared: &OperatorContext,
    key: &SpecKey,
    desired: &Desired,
    trust: Option<Trust<'_>>,
) -> Result<Gathered, ReconcileError> {
    let waiting = unsynced(&shared.caches, desired);
    if !waiting.is_empty() {
        return Ok(Gathered::Waiting(waiting));
    }
    let mut live = Live::default();
    let mut pending = BTreeSet::new();
    let uncertain = shared.uncertain.of(key);
    let cx = Lookup {
        shared,
        key,
        desired,
        trust,
        uncertain: &uncertain,
    };
    for kind in kinds::KINDS {
        if kind.gather(cx, &mut live, &mut pending).await?.is_err() {
            return Ok(Gathered::WaitForWatch);
        }
    }
    Ok(Gathered::Live(live, pending))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use steward_render::{RenderContext, render};
    use steward_runtime::watcher::Event;

    use super::*;
    use crate::cache::Changes;

    fn desired(yaml: &str) -> Desired {
        let loaded = steward_spec::load("t.yaml", yaml, None);
        let text = loaded.render();
        let spec = loaded.spec.unwrap_or_else(|| panic!("{text}"));
        render(&spec, &RenderContext::default()).unwrap()
    }

    const HEAD: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n";

    /// Every cache synced but http-route, which failed the way Consul < 1.15 answers.
    fn caches_without_routes() -> Caches {
        let caches = Caches::new();
        let (changes, _rx) = Changes::channel();
        for cache in [&caches.service_defaults, &caches.service_intentions] {
            cache.apply(&Event::Restarted(Vec::new()), &changes);
        }
        caches.nomad.jobs_health().mark_synced();
        caches.nomad.deployments_health().mark_synced();
        caches.vault.policies_health().mark_synced();
        caches.vault.roles_health().mark_synced();
        caches
            .http_routes
            .health()
            .failed("500 Internal Server Error: invalid config entry kind: http-route");
        caches
    }

    #[test]
    fn only_the_specs_that_render_a_kind_wait_for_its_cache() {
        let caches = caches_without_routes();
        let plain = desired(HEAD);
        assert!(unsynced(&caches, &plain).is_empty(), "no route: not held");
        let routed = desired(&format!(
            "{HEAD}  edge: {{routes: [{{host: web.shop.apps.internal, pathPrefix: /}}]}}\n"
        ));
        let waiting = unsynced(&caches, &routed);
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].kind, ObjectKind::HttpRoute);
        assert_eq!(waiting[0].cache, "http-route");
        assert!(
            waiting[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("invalid config entry kind")),
            "{waiting:?}"
        );
        // Garbage collection leaves http-route alone and collects the rest.
        let (collected, unknown) = kinds::gc_kinds(&caches);
        assert_eq!(unknown, vec![ObjectKind::HttpRoute]);
        assert_eq!(collected.len(), ObjectKind::APPLY_ORDER.len() - 1);
    }

    #[test]
    fn a_cache_still_on_its_first_listing_holds_quietly() {
        let caches = Caches::new();
        let waiting = unsynced(&caches, &desired(HEAD));
        assert!(!waiting.is_empty());
        assert!(waiting.iter().all(|w| w.error.is_none()), "{waiting:?}");
        assert!(!kinds::ready(&caches));
    }
}
