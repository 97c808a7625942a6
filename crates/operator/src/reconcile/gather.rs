//! Reading the live objects of one key: caches first, direct reads when a cache is
//! stale or does not hold what is needed.
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
use std::sync::Arc;

use serde_json::Value;
use steward_hashi::QueryOptions;
use steward_render::names::{self, SpecKey};
use steward_render::{Desired, ObjectKind, ObjectRef};

use super::{ReconcileError, api};
use crate::cache::Caches;
use crate::cache::entries::Cached;
use crate::cache::nomad::{CachedJob, job_key, stub_owner};
use crate::cache::vault::read_role;
use crate::context::OperatorContext;
use crate::plan::{Live, LiveEntry};
use crate::status::{ObjectState, StatusDoc};

/// What the last status of the same generation vouches for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trust<'a> {
    doc: &'a StatusDoc,
}

impl<'a> Trust<'a> {
    /// The stored status, when it describes exactly this rendering.
    pub(crate) fn of(
        stored: Option<&'a StatusDoc>,
        generation: u64,
        hash: &str,
        replicas: u32,
    ) -> Option<Self> {
        let doc = stored?;
        (doc.observed_generation == generation
            && doc.spec_hash.as_deref() == Some(hash)
            && doc.replicas == Some(replicas))
        .then_some(Self { doc })
    }

    fn in_sync(&self, kind: ObjectKind, name: &str) -> bool {
        matches!(
            self.doc.object_state(kind.as_str(), name),
            Some(ObjectState::Synced | ObjectState::Created | ObjectState::Updated)
        )
    }

    fn job_modify_index(&self) -> Option<u64> {
        self.doc.job_modify_index
    }
}

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
/// down) holds back only the specs that need it.
pub(crate) fn unsynced(caches: &Caches, desired: &Desired) -> Vec<Unsynced> {
    let kinds: BTreeSet<ObjectKind> = desired.objects().iter().map(|o| o.kind).collect();
    kinds
        .into_iter()
        .filter_map(|kind| {
            let health = caches.kind_health(kind);
            (!health.is_synced()).then(|| Unsynced {
                kind,
                cache: health.name(),
                error: health.error(),
            })
        })
        .collect()
}

/// The live objects of `key`, from the caches or direct reads, and which of them are
/// our own writes the watch has not shown yet; or the caches it waits for.
pub(crate) async fn gather(
    shared: &OperatorContext,
    key: &SpecKey,
    desired: &Desired,
    trust: Option<Trust<'_>>,
) -> Result<Gathered, ReconcileError> {
    let c = &shared.caches;
    let waiting = unsynced(c, desired);
    if !waiting.is_empty() {
        return Ok(Gathered::Waiting(waiting));
    }
    let mut live = Live::default();
    let mut pending = BTreeSet::new();
    let object = |kind: ObjectKind, name: &str| ObjectRef {
        kind,
        name: name.to_owned(),
    };

    // Consul config entries: the watches hold whole entries. A kind the spec does not
    // render is read only from a synced cache (to find what it owned before): an
    // unsynced one knows of nothing to delete, and nothing is deleted on uncertainty.
    let usable = |kind: ObjectKind, wanted: bool| wanted || c.kind_health(kind).is_synced();
    if usable(
        ObjectKind::ServiceDefaults,
        desired.service_defaults.is_some(),
    ) {
        let sd = names::service_defaults(key);
        let Ok(read) = read_entry(
            shared,
            object(ObjectKind::ServiceDefaults, &sd),
            desired.service_defaults.as_ref().map(|e| &e.body),
            &mut pending,
        )
        .await?
        else {
            return Ok(Gathered::WaitForWatch);
        };
        live.service_defaults = read;
    }
    if usable(
        ObjectKind::ServiceIntentions,
        desired.service_intentions.is_some(),
    ) {
        let si = names::service_intentions(key);
        let Ok(read) = read_entry(
            shared,
            object(ObjectKind::ServiceIntentions, &si),
            desired.service_intentions.as_ref().map(|e| &e.body),
            &mut pending,
        )
        .await?
        else {
            return Ok(Gathered::WaitForWatch);
        };
        live.service_intentions = read;
    }
    let mut routes: BTreeSet<String> = desired.http_routes.iter().map(|r| r.name.clone()).collect();
    if c.http_routes.health().is_synced() {
        routes.extend(c.http_routes.owned_by(&key.to_string()));
    }
    for name in routes {
        let wanted = desired
            .http_routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.body);
        let Ok(read) = read_entry(
            shared,
            object(ObjectKind::HttpRoute, &name),
            wanted,
            &mut pending,
        )
        .await?
        else {
            return Ok(Gathered::WaitForWatch);
        };
        if let Some(l) = read {
            live.http_routes.insert(name, l);
        }
    }

    // Nomad job.
    let ns = names::nomad_namespace(key);
    let id = names::job_id(key);
    let jkey = job_key(&ns, &id);
    let cached = if c.nomad.jobs_health().is_fresh() {
        c.nomad.job(&jkey)
    } else {
        CachedJob::Listed(Arc::default())
    };
    match cached {
        CachedJob::Absent => {}
        CachedJob::Written(w) => {
            pending.insert(object(ObjectKind::NomadJob, &id));
            if steward_render::value_digest(&desired.nomad_job.job) != w.digest {
                return Ok(Gathered::WaitForWatch);
            }
            // What we registered is what the spec wants.
            live.job_verified = Some(w.state.job_modify_index);
        }
        CachedJob::Listed(stub)
            if !stub.stop
                && stub.job_modify_index != 0
                && stub_owner(&stub).as_deref() == Some(key.to_string().as_str())
                && trust.and_then(|t| t.job_modify_index()) == Some(stub.job_modify_index) =>
        {
            live.job_verified = Some(stub.job_modify_index);
        }
        // The cache keeps no bodies: the diff needs this one.
        CachedJob::Listed(_) => {
            let r = shared
                .clients
                .nomad
                .get_job(&id, &QueryOptions::new().namespace(ns.clone()))
                .await
                .map_err(api(format!("nomad-job {jkey}")))?;
            live.job = r.value.map(|j| {
                c.nomad.store_body(&j);
                Arc::new(j)
            });
        }
    }

    // Vault policy and role.
    let vault = &shared.clients.vault;
    let policy = names::vault_policy(key);
    let policies_fresh = c.vault.policies_health().is_fresh();
    live.policy = if !usable(ObjectKind::VaultPolicy, desired.vault_policy.is_some())
        || (policies_fresh && !c.vault.has_policy(&policy))
    {
        None
    } else if let Some(text) = c.vault.policy(&policy).filter(|_| policies_fresh) {
        Some(text)
    } else if let Some(p) = desired.vault_policy.as_ref().filter(|p| {
        policies_fresh && trust.is_some_and(|t| t.in_sync(ObjectKind::VaultPolicy, &p.name))
    }) {
        Some(Arc::new(p.hcl.clone()))
    } else {
        let text = vault
            .get_policy(&policy)
            .await
            .map_err(api(format!("vault-policy {policy}")))?
            .map(|p| p.policy);
        c.vault.set_policy(&policy, text.clone());
        text.map(Arc::new)
    };
    let role = names::jwt_role(key);
    let mount = &shared.config.jwt_auth_mount;
    let roles_fresh = c.vault.roles_health().is_fresh();
    live.role =
        if !usable(ObjectKind::VaultRole, desired.vault_role.is_some())
            || (roles_fresh && !c.vault.has_role(&role))
        {
            None
        } else if let Some(body) = c.vault.role(&role).filter(|_| roles_fresh) {
            Some(body)
        } else if let Some(r) = desired.vault_role.as_ref().filter(|r| {
            roles_fresh && trust.is_some_and(|t| t.in_sync(ObjectKind::VaultRole, &r.name))
        }) {
            Some(Arc::new(r.body.clone()))
        } else {
            let body = read_role(vault, mount, &role)
                .await
                .map_err(api(format!("vault-role {role}")))?;
            c.vault.set_role(&role, body.clone());
            body.map(Arc::new)
        };
    Ok(Gathered::Live(live, pending))
}

/// The live entry `object`: from a fresh cache when its digest equals the desired
/// body's (then the desired body stands for it: in sync, nothing to read), else read.
/// One of our writes is not shown by the watch yet and differs from the spec now.
pub(crate) struct WaitForWatch;

async fn read_entry(
    shared: &OperatorContext,
    object: ObjectRef,
    desired: Option<&Value>,
    pending: &mut BTreeSet<ObjectRef>,
) -> Result<Result<Option<LiveEntry>, WaitForWatch>, ReconcileError> {
    let kind = object.kind;
    let Some(cache) = shared.caches.entries(kind.as_str()) else {
        return Ok(Ok(None));
    };
    if cache.health().is_fresh() {
        match cache.get(&object.name) {
            Cached::Entry(facts) => {
                if let Some(body) =
                    desired.filter(|d| steward_render::config_entry_digest(d) == facts.digest)
                {
                    return Ok(Ok(Some(LiveEntry {
                        body: Arc::new(body.clone()),
                        modify_index: facts.modify_index,
                    })));
                }
                // Differs (or is not ours to want): the diff needs the body.
            }
            Cached::Written(digest) => {
                pending.insert(object);
                // What we wrote is what the spec wants, or the index we would need for
                // another write is not known yet.
                return Ok(desired
                    .filter(|d| steward_render::config_entry_digest(d) == digest)
                    .map(|body| {
                        Some(LiveEntry {
                            body: Arc::new(body.clone()),
                            modify_index: 0,
                        })
                    })
                    .ok_or(WaitForWatch));
            }
            Cached::Absent => return Ok(Ok(None)),
        }
    }
    let r = shared
        .clients
        .consul
        .config_get_raw(kind.as_str(), &object.name, &QueryOptions::new())
        .await
        .map_err(api(format!("{kind} {}", object.name)))?;
    Ok(Ok(r.value.map(|body| LiveEntry {
        modify_index: body
            .get("ModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or_default(),
        body: Arc::new(body),
    })))
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
        let (kinds, unknown) = caches.gc_kinds();
        assert_eq!(unknown, vec![ObjectKind::HttpRoute]);
        assert_eq!(kinds.len(), ObjectKind::APPLY_ORDER.len() - 1);
    }

    #[test]
    fn a_cache_still_on_its_first_listing_holds_quietly() {
        let caches = Caches::new();
        let waiting = unsynced(&caches, &desired(HEAD));
        assert!(!waiting.is_empty());
        assert!(waiting.iter().all(|w| w.error.is_none()), "{waiting:?}");
        assert!(!caches.ready());
    }
}
