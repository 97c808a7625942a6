//! What the three Consul config entry kinds share: a blocking list watch keeping each
//! entry's facts (modify index, owner, digest of the owned content), `Meta` ownership,
//! check-and-set writes and deletes. Each kind's module fills in a [`ConfigEntryKind`].

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use steward_hashi::{QueryOptions, WriteOptions};
use steward_render::names::SpecKey;
use steward_render::{ConfigEntry, Desired, ObjectKind, ObjectRef, diff_config_entry};

use super::{
    Applied, Kind, Looked, Lookup, WaitForWatch, Watch, created_or_updated, foreign_op, list_rate,
};
use crate::cache::entries::{Cached, EntryCache, EntryFactsSource};
use crate::cache::{Caches, Health};
use crate::context::OperatorContext;
use crate::guard::GcObject;
use crate::kinds::describe;
use crate::objects::owner_string;
use crate::objects::{
    Live, LiveEntry, LiveObject, Step, StepKind, WriteOp, material, owner_of_body, upsert_step,
};
use crate::reconcile_error::{ReconcileError, api};
use crate::status::ObjectState;

/// A hook run before every write of the kind (the route's gateway check).
pub(super) type BeforePut =
    for<'a> fn(&'a OperatorContext) -> BoxFuture<'a, Result<(), ReconcileError>>;

/// One config entry kind.
pub(crate) struct ConfigEntryKind {
    /// The kind.
    pub(super) kind: ObjectKind,
    /// Its watch cache.
    pub(super) cache: fn(&Caches) -> &Arc<EntryCache>,
    /// Its entries in a rendering.
    pub(super) desired: fn(&Desired) -> Vec<&ConfigEntry>,
    /// The names a key's entries of this kind may have beyond those it renders now
    /// (found in a synced cache, so that what it owned before can be deleted).
    pub(super) key_names: fn(&SpecKey, &EntryCache) -> Vec<String>,
    /// Run before every write.
    pub(super) before_put: Option<BeforePut>,
}

impl ConfigEntryKind {
    fn entry<'d>(&self, desired: &'d Desired, name: &str) -> Option<&'d ConfigEntry> {
        (self.desired)(desired).into_iter().find(|e| e.name == name)
    }

    /// The live entry `object`: from a fresh cache when its digest equals the desired
    /// body's (then the desired body stands for it: in sync, nothing to read), else read
    /// (always when `direct`: its last write had an unknown outcome).
    async fn read_entry(
        &self,
        shared: &OperatorContext,
        object: ObjectRef,
        desired: Option<&Value>,
        pending: &mut BTreeSet<ObjectRef>,
        direct: bool,
    ) -> Result<Result<Option<LiveEntry>, WaitForWatch>, ReconcileError> {
        let kind = object.kind;
        let cache = (self.cache)(&shared.caches);
        if cache.health().is_fresh() && !direct {
            match cache.get(&object.name) {
                Cached::Entry(facts) => {
                    if let Some(body) =
                        desired.filter(|d| steward_render::config_entry_digest(d) == facts.digest)
                    {
                        return Ok(Ok(Some(LiveEntry {
                            body: Arc::new(body.clone()),
                            modify_index: facts.modify_index,
                            same_as_desired: true,
                        })));
                    }
                    // Differs (or is not ours to want): the diff needs the body.
                }
                Cached::Written(digest) => {
                    pending.insert(object);
                    // What we wrote is what the spec wants, or the index we would need
                    // for another write is not known yet.
                    return Ok(desired
                        .filter(|d| steward_render::config_entry_digest(d) == digest)
                        .map(|body| {
                            Some(LiveEntry {
                                body: Arc::new(body.clone()),
                                modify_index: 0,
                                same_as_desired: true,
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
            modify_index: modify_index(&body),
            body: Arc::new(body),
            same_as_desired: false,
        })))
    }

    async fn gather_entries(
        &self,
        cx: Lookup<'_>,
        live: &mut Live,
        pending: &mut BTreeSet<ObjectRef>,
    ) -> Looked {
        let cache = (self.cache)(&cx.shared.caches);
        let wanted = (self.desired)(cx.desired);
        // A kind the spec does not render is read only from a synced cache (to find what
        // it owned before): an unsynced one knows of nothing to delete, and nothing is
        // deleted on uncertainty.
        let mut names: BTreeSet<String> = wanted.iter().map(|e| e.name.clone()).collect();
        if cache.health().is_synced() {
            names.extend((self.key_names)(cx.key, cache));
        }
        for name in names {
            let object = ObjectRef {
                kind: self.kind,
                name: name.clone(),
            };
            let body = wanted.iter().find(|e| e.name == name).map(|e| &e.body);
            let Ok(read) = self
                .read_entry(
                    cx.shared,
                    object.clone(),
                    body,
                    pending,
                    cx.read_directly(self.kind, &name),
                )
                .await?
            else {
                return Ok(Err(WaitForWatch));
            };
            if let Some(l) = read {
                live.insert(object, LiveObject::Entry(l));
            }
        }
        Ok(Ok(()))
    }

    async fn execute_entry(
        &self,
        shared: &OperatorContext,
        key: &SpecKey,
        step: &Step,
    ) -> Result<Applied, ReconcileError> {
        let object = describe(&step.object, key);
        let consul = &shared.clients.consul;
        let cache = (self.cache)(&shared.caches);
        match &step.op {
            WriteOp::PutEntry {
                name, body, cas, ..
            } => {
                if let Some(before) = self.before_put {
                    before(shared).await?;
                }
                let ok = consul
                    .config_put(body, &WriteOptions::cas(*cas))
                    .await
                    .map_err(api(object.clone()))?;
                if !ok {
                    return Err(ReconcileError::CasLost { object });
                }
                cache.record_write(name, *cas, Some(body));
                Ok(created_or_updated(*cas != 0).into())
            }
            WriteOp::DeleteEntry { kind, name, cas } => {
                let ok = consul
                    .config_delete(kind, name, &WriteOptions::cas(*cas))
                    .await
                    .map_err(api(object.clone()))?;
                if !ok {
                    return Err(ReconcileError::CasLost { object });
                }
                cache.record_write(name, *cas, None);
                Ok(ObjectState::Deleted.into())
            }
            other => Err(foreign_op(object, other)),
        }
    }

    async fn preflight_entry(
        &self,
        shared: &OperatorContext,
        key: &SpecKey,
        step: &Step,
    ) -> Result<Option<Option<SpecKey>>, ReconcileError> {
        let WriteOp::PutEntry { kind, name, .. } = &step.op else {
            return Ok(None);
        };
        Ok(shared
            .clients
            .consul
            .config_get_raw(kind, name, &QueryOptions::new())
            .await
            .map_err(api(describe(&step.object, key)))?
            .value
            .map(|body| owner_of_body(&body)))
    }

    async fn gc_delete_entry(
        &self,
        shared: &OperatorContext,
        o: &GcObject,
    ) -> Result<Option<WriteOp>, ReconcileError> {
        let kind = o.kind.as_str();
        let live = shared
            .clients
            .consul
            .config_get_raw(kind, &o.name, &QueryOptions::new())
            .await
            .map_err(api(format!("{} {}", o.kind, o.name)))?;
        let Some(body) = live.value else {
            return Ok(None);
        };
        if owner_string(&body).as_deref() != Some(o.owner.as_str()) {
            return Ok(None); // no longer ours
        }
        Ok(Some(WriteOp::DeleteEntry {
            kind: kind.to_owned(),
            name: o.name.clone(),
            cas: modify_index(&body),
        }))
    }
}

/// An entry's `ModifyIndex` (0 when the server left it out).
fn modify_index(body: &Value) -> u64 {
    body.get("ModifyIndex")
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

impl Kind for ConfigEntryKind {
    fn kind(&self) -> ObjectKind {
        self.kind
    }

    fn health<'c>(&self, caches: &'c Caches) -> &'c Health {
        (self.cache)(caches).health()
    }

    fn watches(&self, ctx: &Arc<OperatorContext>) -> Vec<Watch> {
        // A blocking watch of the kind's whole list, at most 2 lists a second.
        let cache = (self.cache)(&ctx.caches).clone();
        let consul = ctx.clients.consul.clone();
        let source = EntryFactsSource::new(consul, cache.clone(), ctx.config.watch_wait);
        let changes = ctx.changes.clone();
        let task = async move { cache.run(source, list_rate(2.0, 3), changes).await };
        vec![Watch::new("config-entry-watch", task)]
    }

    fn desired(&self, desired: &Desired) -> Vec<String> {
        (self.desired)(desired)
            .into_iter()
            .map(|e| e.name.clone())
            .collect()
    }

    fn owner(&self, _key: &SpecKey, _name: &str, live: &LiveObject) -> Option<SpecKey> {
        match live {
            LiveObject::Entry(l) => owner_of_body(&l.body),
            _ => None,
        }
    }

    fn compare(&self, desired: &Desired, name: &str, live: Option<&LiveObject>) -> Option<Step> {
        let desired = self.entry(desired, name)?;
        let live = live.and_then(|l| match l {
            LiveObject::Entry(e) => Some(e),
            _ => None,
        });
        entry_step(self.kind, desired, live)
    }

    fn delete(&self, name: &str, live: &LiveObject, _jwt_mount: &str) -> Option<Step> {
        let LiveObject::Entry(live) = live else {
            return None;
        };
        Some(Step {
            object: ObjectRef {
                kind: self.kind,
                name: name.to_owned(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeleteEntry {
                kind: self.kind.as_str().to_owned(),
                name: name.to_owned(),
                cas: live.modify_index,
            },
        })
    }

    fn gather<'a>(
        &'a self,
        cx: Lookup<'a>,
        live: &'a mut Live,
        pending: &'a mut BTreeSet<ObjectRef>,
    ) -> BoxFuture<'a, Looked> {
        self.gather_entries(cx, live, pending).boxed()
    }

    fn preflight<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Option<Option<SpecKey>>, ReconcileError>> {
        self.preflight_entry(shared, key, step).boxed()
    }

    fn execute<'a>(
        &'a self,
        shared: &'a OperatorContext,
        key: &'a SpecKey,
        step: &'a Step,
        _live: &'a Live,
    ) -> BoxFuture<'a, Result<Applied, ReconcileError>> {
        self.execute_entry(shared, key, step).boxed()
    }

    fn inventory<'a>(
        &'a self,
        shared: &'a OperatorContext,
    ) -> BoxFuture<'a, Option<Vec<GcObject>>> {
        let kind = self.kind;
        let owned = (self.cache)(&shared.caches)
            .owned()
            .into_iter()
            .map(|(owner, name)| GcObject { owner, kind, name })
            .collect();
        futures::future::ready(Some(owned)).boxed()
    }

    fn listed_owners(&self, shared: &OperatorContext) -> Vec<String> {
        (self.cache)(&shared.caches)
            .owned()
            .into_iter()
            .map(|(owner, _)| owner)
            .collect()
    }

    fn gc_delete<'a>(
        &'a self,
        shared: &'a OperatorContext,
        o: &'a GcObject,
        _owner: &'a SpecKey,
    ) -> BoxFuture<'a, Result<Option<WriteOp>, ReconcileError>> {
        self.gc_delete_entry(shared, o).boxed()
    }
}

/// The write that brings the entry to `desired`: a create (`cas=0`) when absent, an
/// update at the live `ModifyIndex` when its owned content differs beyond the spec hash.
pub(super) fn entry_step(
    kind: ObjectKind,
    desired: &ConfigEntry,
    live: Option<&LiveEntry>,
) -> Option<Step> {
    let object = ObjectRef {
        kind,
        name: desired.name.clone(),
    };
    let put = |cas| WriteOp::PutEntry {
        kind: desired.kind.clone(),
        name: desired.name.clone(),
        body: desired.body.clone(),
        cas,
    };
    // A live entry the cache vouched for by digest is the desired body itself: no
    // field-by-field diff (it normalises both sides) for a converged entry.
    let changes = live.map(|l| {
        if l.same_as_desired {
            Vec::new()
        } else {
            material(diff_config_entry(&desired.body, &l.body))
        }
    });
    upsert_step(object, changes, |_| put(live.map_or(0, |l| l.modify_index)))
}
