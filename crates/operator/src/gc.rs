//! Garbage collection: one mechanism for removed specs and orphans.
//!
//! A pass runs (on the leader only) shortly after spec deletions (debounced), every
//! `orphan_sweep_interval`, after an approval, and when this instance becomes leader.
//!
//! - Positive knowledge only: the spec cache must be synced and fresh (no failed read
//!   since its last successful one), or the pass is skipped; objects of a kind whose
//!   cache is not synced and fresh are left alone (not counted, not deleted) while the
//!   other kinds are collected, and orphan statuses are kept until every kind is known.
//!   Every owned Vault object's content must be known. A failed read is never "absent".
//! - Inventory: every object carrying Steward's ownership (config entry and job `Meta`,
//!   policy marker, role bound claims). Orphans: owned objects whose owner key has no
//!   spec.
//! - Guard (counted in specs, see [`crate::guard::allowed_specs`]): a pass that would
//!   remove more than max(1, floor(`gc_max_share` × the specs owning objects)) specs, or
//!   more than `gc_max_count`, is blocked: nothing is deleted, a Warning event is
//!   recorded, `steward_gc_blocked` is 1, `<prefix>/status/_gc` says `Blocked` with the
//!   counts, the digest of the deletion set and the approval command, and each removed
//!   spec's status says `Blocked` too. `POST /api/v1/gc/approve {"digest"}` approves
//!   exactly that set; a different set needs a new approval.
//! - A removed spec's status stays until its objects are gone: it says `Deleting` while
//!   the pass deletes them (with the failure, if one failed), so it never reads `Synced`
//!   for a spec that is gone.
//! - Deletion per owner in reverse apply order (routes → job → intentions →
//!   service-defaults → role → policy), each only after re-reading the live object and
//!   finding it still owned by that key, config entries with `cas`. A failed deletion
//!   stops that owner's later deletions; others go on; the pass is retried.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use steward_render::names::SpecKey;
use steward_render::{ObjectKind, ObjectRef};
use steward_runtime::leader::Fence;
use steward_runtime::{EventType, Leadership};
use tokio::sync::watch;

use crate::context::OperatorContext;
use crate::metrics::ResultLabel;
use crate::plan::{Live, Step, StepKind};
use crate::reconcile::{ReconcileError, chain};
use crate::writer::StatusOp;

use crate::guard::delete_rank;
pub use crate::guard::{
    ApproveError, BlockedSet, Decision, GC_STATUS_KEY, GcObject, GcState, allowed_specs,
    blocked_message, decide, digest, owners, trips_guard,
};
use crate::status::{self, Removal};

/// Every owned object of `kinds` in the caches, reading Vault contents not known yet
/// ([`crate::kinds::Kind::inventory`]). `None` when something could not be read (no
/// positive knowledge).
async fn inventory(shared: &OperatorContext, kinds: &[ObjectKind]) -> Option<Vec<GcObject>> {
    let mut out = Vec::new();
    for kind in crate::kinds::KINDS {
        if kinds.contains(&kind.kind()) {
            out.extend(kind.inventory(shared).await?);
        }
    }
    Some(out)
}

fn count(shared: &OperatorContext, result: &str) {
    shared
        .metrics
        .gc_passes
        .get_or_create(&ResultLabel {
            result: result.to_owned(),
        })
        .inc();
}

/// Updates `steward_owned_objects{kind}` from an inventory.
fn update_owned_metric(shared: &OperatorContext, owned: &[GcObject]) {
    let mut by_kind: BTreeMap<&str, i64> = crate::kinds::KINDS
        .iter()
        .map(|k| (k.kind().as_str(), 0))
        .collect();
    for o in owned {
        *by_kind.entry(o.kind.as_str()).or_default() += 1;
    }
    for (kind, n) in by_kind {
        shared
            .metrics
            .owned_objects
            .get_or_create(&crate::metrics::KindLabel {
                kind: kind.to_owned(),
            })
            .set(n);
    }
}

/// The outcome of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    /// Nothing to do, or everything deleted.
    Done,
    /// Skipped: caches not fresh.
    Skipped,
    /// Blocked by the guard.
    Blocked,
    /// Some deletion failed: retry soon.
    Failed,
}

/// One GC pass under `fence`.
pub(crate) async fn pass(shared: &OperatorContext, fence: Option<&Fence>) -> PassResult {
    if !shared.caches.specs.is_fresh() {
        tracing::info!("garbage collection skipped: the spec cache is not synced and fresh");
        count(shared, "skipped");
        return PassResult::Skipped;
    }
    // Objects of a kind whose cache is not synced and fresh are neither counted nor
    // deleted (positive knowledge only); the other kinds are still collected.
    let (kinds, unknown) = crate::kinds::gc_kinds(&shared.caches);
    let changed = {
        let mut last = shared.gc.skipped_kinds.lock();
        let changed = *last != unknown;
        last.clone_from(&unknown);
        changed
    };
    if changed && !unknown.is_empty() {
        tracing::warn!(
            skipped = %unknown.iter().map(ObjectKind::as_str).collect::<Vec<_>>().join(", "),
            "garbage collection leaves these kinds alone until their caches are synced and fresh"
        );
    } else if changed {
        tracing::info!("garbage collection covers every kind again");
    }
    let Some(owned) = inventory(shared, &kinds).await else {
        tracing::info!("garbage collection skipped: a Vault object could not be read");
        count(shared, "skipped");
        return PassResult::Skipped;
    };
    update_owned_metric(shared, &owned);
    let specs = &shared.caches.specs;
    let orphans: Vec<GcObject> = owned
        .iter()
        .filter(|o| !specs.contains(&o.owner))
        .cloned()
        .collect();
    let approved = shared.gc.approved.lock().clone();
    let decision = decide(
        &orphans,
        &owned,
        shared.config.gc_max_count,
        shared.config.gc_max_share,
        approved.as_deref(),
    );
    match decision {
        Decision::Nothing => {
            clear_blocked(shared, fence).await;
            delete_orphan_statuses(shared, fence, &BTreeSet::new()).await;
            count(shared, "done");
            PassResult::Done
        }
        Decision::Blocked { digest } => {
            block(shared, fence, &orphans, &owned, digest).await;
            count(shared, "blocked");
            PassResult::Blocked
        }
        Decision::Delete => {
            let mut by_owner: BTreeMap<String, Vec<GcObject>> = BTreeMap::new();
            for o in orphans {
                by_owner.entry(o.owner.clone()).or_default().push(o);
            }
            let mut failed = BTreeSet::new();
            let mut done = BTreeSet::new();
            for (owner, mut objects) in by_owner {
                done.insert(owner.clone());
                let deleting = Removal::Deleting {
                    objects: objects.len(),
                    failure: None,
                };
                mark_removed(shared, fence, &owner, &deleting).await;
                objects.sort_by_key(|o| delete_rank(o.kind));
                for o in &objects {
                    match delete_one(shared, o).await {
                        Ok(true) => {
                            shared.metrics.gc_deleted.inc();
                            let what =
                                crate::kinds::of(o.kind).removal(shared.config.purge_on_delete);
                            shared.recorder.record(
                                &owner,
                                EventType::Normal,
                                "Deleted",
                                format!("{} {} {what} (its spec was removed)", o.kind, o.name),
                                Some(format!("{} {}", o.kind, o.name)),
                            );
                        }
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(
                                spec = %owner,
                                object = %format!("{} {}", o.kind, o.name),
                                retryable = error.is_retryable(),
                                error = %chain(&error),
                                "garbage collection could not delete an orphan"
                            );
                            let retry = if error.is_retryable() {
                                "retried on the next pass"
                            } else {
                                "needs attention: retrying will not help until it changes"
                            };
                            shared.recorder.record(
                                &owner,
                                EventType::Warning,
                                "DeleteFailed",
                                format!("{} {}: {} ({retry})", o.kind, o.name, chain(&error)),
                                Some(format!("{} {}", o.kind, o.name)),
                            );
                            let failing = Removal::Deleting {
                                objects: objects.len(),
                                failure: Some(format!(
                                    "{} {}: {} ({retry})",
                                    o.kind,
                                    o.name,
                                    chain(&error)
                                )),
                            };
                            mark_removed(shared, fence, &owner, &failing).await;
                            failed.insert(owner.clone());
                            done.remove(&owner);
                            break;
                        }
                    }
                }
            }
            *shared.gc.approved.lock() = None;
            clear_blocked(shared, fence).await;
            delete_orphan_statuses(shared, fence, &done).await;
            if failed.is_empty() {
                count(shared, "done");
                PassResult::Done
            } else {
                count(shared, "failed");
                PassResult::Failed
            }
        }
    }
}

/// Deletes one orphan after re-reading it and finding it still owned by its owner,
/// through the reconciles' executor ([`crate::reconcile::execute`]): `Ok(false)` when
/// there was nothing to delete (gone, or no longer ours).
async fn delete_one(shared: &OperatorContext, o: &GcObject) -> Result<bool, DeleteError> {
    let owner = SpecKey::parse(&o.owner).ok_or(DeleteError::BadOwner)?;
    let object = ObjectRef {
        kind: o.kind,
        name: o.name.clone(),
    };
    let Some(op) = crate::kinds::of(o.kind)
        .gc_delete(shared, o, &owner)
        .await?
    else {
        return Ok(false); // gone, or no longer ours
    };
    let step = Step {
        object,
        kind: StepKind::Delete,
        op,
        changes: Vec::new(),
    };
    crate::reconcile::execute(shared, &owner, &step, &Live::default()).await?;
    Ok(true)
}

/// Why an orphan could not be deleted.
#[derive(Debug, thiserror::Error)]
enum DeleteError {
    /// The owner recorded on the object is not a spec key.
    #[error("the recorded owner is not a spec key")]
    BadOwner,
    /// The executor's error (request, CAS race...).
    #[error(transparent)]
    Write(#[from] ReconcileError),
}

impl DeleteError {
    /// Whether the next pass may succeed by trying again.
    fn is_retryable(&self) -> bool {
        match self {
            DeleteError::BadOwner => false,
            DeleteError::Write(e) => e.is_retryable(),
        }
    }
}

/// Deletes status documents of keys that have no spec and no owned object left: those
/// whose objects this pass deleted (`done`), and those no watch shows an object of.
async fn delete_orphan_statuses(
    shared: &OperatorContext,
    fence: Option<&Fence>,
    done: &BTreeSet<String>,
) {
    let c = &shared.caches;
    // A status is the last word on objects that may still exist: keep it while any kind
    // of object cannot be listed.
    if !crate::kinds::gc_kinds(c).1.is_empty() {
        return;
    }
    let owners: BTreeSet<String> = crate::kinds::KINDS
        .iter()
        .flat_map(|k| k.listed_owners(shared))
        .collect();
    for key in c.statuses.keys() {
        if key == GC_STATUS_KEY || c.specs.contains(&key) {
            continue;
        }
        if owners.contains(&key) && !done.contains(&key) {
            continue;
        }
        if c.statuses.current(&key).is_none() {
            continue; // deleted by us already
        }
        let full = format!("{}{key}", shared.config.status_prefix());
        match shared
            .writer
            .write(StatusOp::Delete { key: full }, fence)
            .await
        {
            Ok(_) => c.statuses.record_written(&key, 0, None),
            // Fenced: leadership moved on, the next leader does it.
            Err(crate::writer::WriteError::Fenced) => {}
            Err(error) => {
                tracing::warn!(%key, %error, "cannot delete an orphan status (retried on the next pass)")
            }
        }
    }
}

async fn block(
    shared: &OperatorContext,
    fence: Option<&Fence>,
    orphans: &[GcObject],
    owned: &[GcObject],
    digest: String,
) {
    shared.metrics.gc_blocked.set(1);
    let specs: Vec<String> = owners(orphans).into_iter().map(str::to_owned).collect();
    let set = BlockedSet {
        digest: digest.clone(),
        specs,
        owning_specs: owners(owned).len(),
        count: orphans.len(),
        owned: owned.len(),
        objects: orphans.to_vec(),
    };
    let changed = shared.gc.blocked.lock().as_ref() != Some(&set);
    *shared.gc.blocked.lock() = Some(set.clone());
    let message = blocked_message(&set, shared.config.gc_max_count, shared.config.gc_max_share);
    if changed {
        tracing::warn!(
            specs = set.specs.len(),
            objects = set.count,
            %digest,
            "{message}"
        );
        shared.recorder.record(
            GC_STATUS_KEY,
            EventType::Warning,
            "MassDeletionBlocked",
            message.clone(),
            None,
        );
    }
    let doc = json!({
        "phase": "Blocked",
        "message": message,
        "digest": digest,
        "specs": set.specs,
        "owningSpecs": set.owning_specs,
        "count": set.count,
        "owned": set.owned,
        "objects": orphans,
        "conditions": [{"type": "Blocked", "status": "True", "reason": "MassDeletion", "message": message}],
    });
    let value = serde_json::to_vec(&doc).unwrap_or_default();
    if current_gc_status(shared).as_deref() != Some(value.as_slice()) {
        let key = format!("{}{GC_STATUS_KEY}", shared.config.status_prefix());
        match shared
            .writer
            .write(
                StatusOp::Set {
                    key,
                    value: value.clone(),
                },
                fence,
            )
            .await
        {
            Ok(_) => *shared.gc.written.lock() = Some(Some(value)),
            Err(error) => tracing::warn!(%error, "cannot write the GC status"),
        }
    }
    // Each removed spec says it too, where its team looks (`steward status`, the API);
    // all at once, so the writer batches them into one transaction.
    let held = Removal::Blocked { message };
    futures::future::join_all(
        set.specs
            .iter()
            .map(|key| mark_removed(shared, fence, key, &held)),
    )
    .await;
}

/// Writes the status of the removed spec `key` (its key is gone, its objects remain):
/// `Deleting` or `Blocked` (see [`status::removed`]), when that changes the document.
async fn mark_removed(
    shared: &OperatorContext,
    fence: Option<&Fence>,
    key: &str,
    removal: &Removal,
) {
    let statuses = &shared.caches.statuses;
    // Before the statuses have listed, "no document" may be a document not seen yet:
    // never write a new one over it.
    if !statuses.health().is_synced() {
        return;
    }
    let current = statuses.current(key);
    let doc = status::removed(current.as_deref(), removal, jiff::Timestamp::now());
    if !status::needs_write(&doc, current.as_deref()) {
        return;
    }
    let Ok(value) = serde_json::to_vec(&doc) else {
        return;
    };
    let full = format!("{}{key}", shared.config.status_prefix());
    match shared
        .writer
        .write(StatusOp::Set { key: full, value }, fence)
        .await
    {
        Ok(index) => statuses.record_written(key, index, Some(Arc::new(doc))),
        Err(error) => {
            tracing::warn!(spec = %key, %error, "cannot write the status of a removed spec")
        }
    }
}

/// The GC status document as this leader knows it: what it wrote or deleted itself,
/// else what the (possibly held) status watch shows.
fn current_gc_status(shared: &OperatorContext) -> Option<Vec<u8>> {
    match &*shared.gc.written.lock() {
        Some(written) => written.clone(),
        None => shared
            .caches
            .statuses
            .stored(GC_STATUS_KEY)
            .and_then(|s| s.raw.as_ref().map(|raw| raw.as_bytes().to_vec())),
    }
}

async fn clear_blocked(shared: &OperatorContext, fence: Option<&Fence>) {
    shared.metrics.gc_blocked.set(0);
    *shared.gc.blocked.lock() = None;
    if current_gc_status(shared).is_some() {
        let key = format!("{}{GC_STATUS_KEY}", shared.config.status_prefix());
        match shared.writer.write(StatusOp::Delete { key }, fence).await {
            Ok(_) => *shared.gc.written.lock() = Some(None),
            Err(crate::writer::WriteError::Fenced) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot delete the GC status (retried on the next pass)")
            }
        }
    }
}

/// Runs GC passes while this instance leads, until the task is dropped.
pub(crate) async fn run(shared: Arc<OperatorContext>, mut leadership: watch::Receiver<Leadership>) {
    let kick = shared.gc_kick.clone();
    let mut wait = shared.config.orphan_sweep_interval;
    loop {
        tokio::select! {
            () = kick.notified() => {
                tokio::time::sleep(shared.config.gc_debounce).await;
            }
            () = tokio::time::sleep(wait) => {}
            changed = leadership.changed() => {
                if changed.is_err() {
                    // The elector stopped (shutdown): nobody leads any more.
                    std::future::pending::<()>().await;
                }
                if !leadership.borrow().is_leader() {
                    continue;
                }
                // A new leader sweeps once its caches are there.
                tokio::time::sleep(shared.config.gc_debounce).await;
            }
        }
        let current = leadership.borrow().clone();
        let Leadership::Leader { token, .. } = &current else {
            // What this instance wrote as leader may have been changed since.
            *shared.gc.written.lock() = None;
            wait = shared.config.orphan_sweep_interval;
            continue;
        };
        let fence = current.fence();
        let result = tokio::select! {
            () = token.cancelled() => continue,
            r = pass(&shared, fence.as_ref()) => r,
        };
        wait = match result {
            PassResult::Done | PassResult::Blocked => shared.config.orphan_sweep_interval,
            PassResult::Skipped | PassResult::Failed => shared
                .config
                .orphan_sweep_interval
                .min(Duration::from_secs(2)),
        };
    }
}

#[cfg(test)]
mod tests;
