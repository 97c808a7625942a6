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
use crate::cache::entries::Cached;
use crate::cache::nomad::{CachedJob, job_key, stub_owner};
use crate::cache::vault::read_role;
use crate::operator::Shared;
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

/// The live objects of `key`, from the caches or direct reads, and which of them are
/// our own writes the watch has not shown yet. `Ok(None)`: a cache has not synced yet.
pub(crate) async fn gather(
    shared: &Shared,
    key: &SpecKey,
    desired: &Desired,
    trust: Option<Trust<'_>>,
) -> Result<Option<(Live, BTreeSet<ObjectRef>)>, ReconcileError> {
    let c = &shared.caches;
    let synced = [
        c.service_defaults.health(),
        c.service_intentions.health(),
        c.http_routes.health(),
        c.nomad.jobs_health(),
        c.vault.policies_health(),
        c.vault.roles_health(),
    ]
    .iter()
    .all(|h| h.is_synced());
    if !synced {
        return Ok(None);
    }
    let mut live = Live::default();
    let mut pending = BTreeSet::new();
    let object = |kind: ObjectKind, name: &str| ObjectRef {
        kind,
        name: name.to_owned(),
    };

    // Consul config entries: the watches hold whole entries.
    let sd = names::service_defaults(key);
    live.service_defaults = read_entry(
        shared,
        object(ObjectKind::ServiceDefaults, &sd),
        &mut pending,
    )
    .await?;
    let si = names::service_intentions(key);
    live.service_intentions = read_entry(
        shared,
        object(ObjectKind::ServiceIntentions, &si),
        &mut pending,
    )
    .await?;
    let mut routes: BTreeSet<String> = desired.http_routes.iter().map(|r| r.name.clone()).collect();
    routes.extend(c.http_routes.owned_by(&key.to_string()));
    for name in routes {
        if let Some(l) =
            read_entry(shared, object(ObjectKind::HttpRoute, &name), &mut pending).await?
        {
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
        CachedJob::Stale(Arc::default())
    };
    match cached {
        CachedJob::Absent => {}
        CachedJob::Job(j) => live.job = Some(j),
        CachedJob::Written(j) => {
            pending.insert(object(ObjectKind::NomadJob, &id));
            live.job = Some(j);
        }
        CachedJob::Stale(stub)
            if !stub.stop
                && stub.job_modify_index != 0
                && stub_owner(&stub).as_deref() == Some(key.to_string().as_str())
                && trust.and_then(|t| t.job_modify_index()) == Some(stub.job_modify_index) =>
        {
            live.job_verified = Some(stub.job_modify_index);
        }
        CachedJob::Stale(_) => {
            let r = shared
                .clients
                .nomad
                .get_job(&id, &QueryOptions::new().namespace(ns.clone()))
                .await
                .map_err(api(format!("nomad-job {jkey}")))?;
            live.job = r.value.map(|j| {
                let j = Arc::new(j);
                c.nomad.store_body(j.clone());
                j
            });
        }
    }

    // Vault policy and role.
    let vault = &shared.clients.vault;
    let policy = names::vault_policy(key);
    let policies_fresh = c.vault.policies_health().is_fresh();
    live.policy = if policies_fresh && !c.vault.has_policy(&policy) {
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
        if roles_fresh && !c.vault.has_role(&role) {
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
    Ok(Some((live, pending)))
}

async fn read_entry(
    shared: &Shared,
    object: ObjectRef,
    pending: &mut BTreeSet<ObjectRef>,
) -> Result<Option<LiveEntry>, ReconcileError> {
    let kind = object.kind;
    let Some(cache) = shared.caches.entries(kind.as_str()) else {
        return Ok(None);
    };
    if cache.health().is_fresh() {
        return Ok(match cache.get(&object.name) {
            Cached::Entry(e) => Some(e),
            Cached::Written(body) => {
                pending.insert(object);
                Some(LiveEntry {
                    body,
                    modify_index: 0,
                })
            }
            Cached::Absent => None,
        });
    }
    let r = shared
        .clients
        .consul
        .config_get_raw(kind.as_str(), &object.name, &QueryOptions::new())
        .await
        .map_err(api(format!("{kind} {}", object.name)))?;
    Ok(r.value.map(|body| LiveEntry {
        modify_index: body
            .get("ModifyIndex")
            .and_then(Value::as_u64)
            .unwrap_or_default(),
        body: Arc::new(body),
    }))
}
