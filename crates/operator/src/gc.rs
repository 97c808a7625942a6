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
//! - Guard: more than `gc_max_count` orphans, or more than `gc_max_share` of all owned
//!   objects, blocks the pass: nothing is deleted, a Warning event is recorded,
//!   `steward_gc_blocked` is 1 and `<prefix>/status/_gc` says `Blocked` with the count and
//!   a digest of the deletion set. `POST /api/v1/gc/approve {"digest"}` approves exactly
//!   that set; a different set needs a new approval.
//! - Deletion per owner in reverse apply order (routes → job → intentions →
//!   service-defaults → role → policy), each only after re-reading the live object and
//!   finding it still owned by that key, config entries with `cas`. A failed deletion
//!   stops that owner's later deletions; others go on; the pass is retried.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steward_hashi::{QueryOptions, WriteOptions};
use steward_render::ObjectKind;
use steward_render::names::{self, SpecKey};
use steward_runtime::leader::Fence;
use steward_runtime::{EventType, Leadership};
use tokio::sync::watch;

use crate::cache::vault::read_role;
use crate::metrics::ResultLabel;
use crate::operator::Shared;
use crate::reconcile::{chain, owner_string};
use crate::writer::StatusOp;

/// The key of the GC status document below `<prefix>/status/`.
pub const GC_STATUS_KEY: &str = "_gc";

/// One owned object found by the inventory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GcObject {
    /// The owning spec key.
    pub owner: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Name (job ID for jobs: the namespace is the owner's).
    pub name: String,
}

/// What a pass decides (pure; see [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No orphans.
    Nothing,
    /// Delete the orphans.
    Delete,
    /// Too many: wait for an approval of this digest.
    Blocked {
        /// Digest of the deletion set.
        digest: String,
    },
}

/// The digest of a deletion set: SHA-256 over the sorted `owner kind name` lines.
#[must_use]
pub fn digest(orphans: &[GcObject]) -> String {
    let mut sorted: Vec<&GcObject> = orphans.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for o in sorted {
        h.update(format!("{} {} {}\n", o.owner, o.kind, o.name).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Whether deleting `orphans` of `owned` objects trips the mass-deletion guard.
#[must_use]
pub fn trips_guard(orphans: usize, owned: usize, max_count: usize, max_share: f64) -> bool {
    if orphans == 0 {
        return false;
    }
    let share = orphans as f64 / owned.max(orphans) as f64;
    orphans > max_count || share > max_share
}

/// Decides a pass: delete, do nothing, or block until `approved` equals the digest.
#[must_use]
pub fn decide(
    orphans: &[GcObject],
    owned: usize,
    max_count: usize,
    max_share: f64,
    approved: Option<&str>,
) -> Decision {
    if orphans.is_empty() {
        return Decision::Nothing;
    }
    if !trips_guard(orphans.len(), owned, max_count, max_share) {
        return Decision::Delete;
    }
    let d = digest(orphans);
    if approved == Some(d.as_str()) {
        Decision::Delete
    } else {
        Decision::Blocked { digest: d }
    }
}

/// Reverse apply order: the position of a kind in deletions.
fn delete_rank(kind: ObjectKind) -> usize {
    ObjectKind::APPLY_ORDER
        .iter()
        .rev()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// A blocked pass, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockedSet {
    /// Digest to approve.
    pub digest: String,
    /// Objects that would be deleted.
    pub count: usize,
    /// Objects owned in total.
    pub owned: usize,
    /// The objects.
    pub objects: Vec<GcObject>,
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// Nothing is blocked.
    #[error("no garbage collection is blocked")]
    NothingBlocked,
    /// The digest is not the blocked set's.
    #[error("digest {given} does not match the blocked deletion set {current}")]
    DigestMismatch {
        /// What was sent.
        given: String,
        /// The blocked set's digest.
        current: String,
    },
    /// This instance does not lead.
    #[error("this instance is not the leader; send the approval to the leader")]
    NotLeader,
}

/// The GC state shared with the API.
#[derive(Debug, Default)]
pub struct GcState {
    blocked: Mutex<Option<BlockedSet>>,
    approved: Mutex<Option<String>>,
    /// The GC status document as this leadership term last wrote it (`Some(None)` =
    /// deleted); `None` = not written in this term.
    written: Mutex<Option<Option<Vec<u8>>>>,
}

impl GcState {
    /// The blocked set, if a pass is blocked.
    #[must_use]
    pub fn blocked(&self) -> Option<BlockedSet> {
        self.blocked.lock().clone()
    }

    /// Approves the blocked set with this digest.
    ///
    /// # Errors
    /// [`ApproveError`] when nothing or another set is blocked.
    pub fn approve(&self, digest: &str) -> Result<(), ApproveError> {
        let blocked = self.blocked.lock();
        match blocked.as_ref() {
            None => Err(ApproveError::NothingBlocked),
            Some(b) if b.digest != digest => Err(ApproveError::DigestMismatch {
                given: digest.to_owned(),
                current: b.digest.clone(),
            }),
            Some(_) => {
                *self.approved.lock() = Some(digest.to_owned());
                Ok(())
            }
        }
    }
}

/// Every owned object in the caches, reading Vault contents not known yet.
/// `None` when something could not be read (no positive knowledge).
async fn inventory(shared: &Shared, kinds: &[ObjectKind]) -> Option<Vec<GcObject>> {
    let c = &shared.caches;
    let mut out = Vec::new();
    for (kind, cache) in [
        (ObjectKind::ServiceDefaults, &c.service_defaults),
        (ObjectKind::ServiceIntentions, &c.service_intentions),
        (ObjectKind::HttpRoute, &c.http_routes),
    ] {
        if !kinds.contains(&kind) {
            continue;
        }
        out.extend(
            cache
                .owned()
                .into_iter()
                .map(|(owner, name)| GcObject { owner, kind, name }),
        );
    }
    let jobs = if kinds.contains(&ObjectKind::NomadJob) {
        c.nomad.owned()
    } else {
        Vec::new()
    };
    for (owner, jkey, stopped) in jobs {
        if stopped && !shared.config.purge_on_delete {
            continue;
        }
        let name = jkey
            .split_once('/')
            .map_or(jkey.clone(), |(_, id)| id.to_owned());
        out.push(GcObject {
            owner,
            kind: ObjectKind::NomadJob,
            name,
        });
    }
    // Vault has no metadata: the owner is in the content. A name that a current spec
    // would use is that spec's (reading 20,000 contents to learn what the names already
    // say would make every new leader's first pass a storm); only other names are read
    // to find out whether, and by whom, they are owned.
    let vault = &shared.clients.vault;
    let mount = &shared.config.jwt_auth_mount;
    let user = |name: &str| {
        c.names
            .keys_for(name)
            .into_iter()
            .find(|k| c.specs.contains(k))
    };
    let policies = if kinds.contains(&ObjectKind::VaultPolicy) {
        c.vault.policy_names()
    } else {
        Vec::new()
    };
    for name in policies {
        let owner = match (c.vault.policy(&name), user(&name)) {
            (Some(_), _) => c.vault.policy_owner(&name),
            (None, Some(key)) => Some(key),
            (None, None) => {
                let text = vault.get_policy(&name).await.ok()?.map(|p| p.policy);
                c.vault.set_policy(&name, text);
                c.vault.policy_owner(&name)
            }
        };
        if let Some(owner) = owner {
            out.push(GcObject {
                owner,
                kind: ObjectKind::VaultPolicy,
                name,
            });
        }
    }
    let roles = if kinds.contains(&ObjectKind::VaultRole) {
        c.vault.role_names()
    } else {
        Vec::new()
    };
    for name in roles {
        let owner = match (c.vault.role(&name), user(&name)) {
            (Some(_), _) => c.vault.role_owner(&name),
            (None, Some(key)) => Some(key),
            (None, None) => {
                let body = read_role(vault, mount, &name).await.ok()?;
                c.vault.set_role(&name, body);
                c.vault.role_owner(&name)
            }
        };
        if let Some(owner) = owner {
            out.push(GcObject {
                owner,
                kind: ObjectKind::VaultRole,
                name,
            });
        }
    }
    Some(out)
}

fn count(shared: &Shared, result: &str) {
    shared
        .metrics
        .gc_passes
        .get_or_create(&ResultLabel {
            result: result.to_owned(),
        })
        .inc();
}

/// Updates `steward_owned_objects{kind}` from an inventory.
fn update_owned_metric(shared: &Shared, owned: &[GcObject]) {
    let mut by_kind: BTreeMap<&str, i64> = ObjectKind::APPLY_ORDER
        .iter()
        .map(|k| (k.as_str(), 0))
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
pub(crate) async fn pass(shared: &Shared, fence: Option<&Fence>) -> PassResult {
    if !shared.caches.specs.is_fresh() {
        tracing::info!("garbage collection skipped: the spec cache is not synced and fresh");
        count(shared, "skipped");
        return PassResult::Skipped;
    }
    // Objects of a kind whose cache is not synced and fresh are neither counted nor
    // deleted (positive knowledge only); the other kinds are still collected.
    let (kinds, unknown) = shared.caches.gc_kinds();
    if !unknown.is_empty() {
        tracing::info!(
            skipped = %unknown.iter().map(ObjectKind::as_str).collect::<Vec<_>>().join(", "),
            "garbage collection leaves these kinds alone: their caches are not synced and fresh"
        );
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
        owned.len(),
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
            block(shared, fence, &orphans, owned.len(), digest).await;
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
                objects.sort_by_key(|o| delete_rank(o.kind));
                for o in &objects {
                    if let Err(message) = delete_one(shared, o).await {
                        shared.recorder.record(
                            &owner,
                            EventType::Warning,
                            "DeleteFailed",
                            format!("{} {}: {message}", o.kind, o.name),
                            Some(format!("{} {}", o.kind, o.name)),
                        );
                        failed.insert(owner.clone());
                        done.remove(&owner);
                        break;
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

/// Deletes one orphan after re-reading it and finding it still owned by its owner.
async fn delete_one(shared: &Shared, o: &GcObject) -> Result<(), String> {
    let owner = SpecKey::parse(&o.owner).ok_or_else(|| "bad owner key".to_owned())?;
    let c = &shared.caches;
    let recorded = |what: &str| {
        shared.metrics.gc_deleted.inc();
        shared.recorder.record(
            &o.owner,
            EventType::Normal,
            "Deleted",
            format!("{} {} {what} (its spec was removed)", o.kind, o.name),
            Some(format!("{} {}", o.kind, o.name)),
        );
    };
    match o.kind {
        ObjectKind::ServiceDefaults | ObjectKind::ServiceIntentions | ObjectKind::HttpRoute => {
            let consul = &shared.clients.consul;
            let kind = o.kind.as_str();
            let live = consul
                .config_get_raw(kind, &o.name, &QueryOptions::new())
                .await
                .map_err(|e| chain(&e))?;
            let Some(body) = live.value else {
                return Ok(());
            };
            if owner_string(&body).as_deref() != Some(o.owner.as_str()) {
                return Ok(()); // no longer ours
            }
            let index = body
                .get("ModifyIndex")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            let ok = consul
                .config_delete(kind, &o.name, &WriteOptions::cas(index))
                .await
                .map_err(|e| chain(&e))?;
            if !ok {
                return Err("changed concurrently (check-and-set lost)".to_owned());
            }
            if let Some(cache) = c.entries(kind) {
                cache.record_write(&o.name, index, None);
            }
            recorded("deleted");
        }
        ObjectKind::NomadJob => {
            let nomad = &shared.clients.nomad;
            let ns = names::nomad_namespace(&owner);
            let live = nomad
                .get_job(&o.name, &QueryOptions::new().namespace(ns.clone()))
                .await
                .map_err(|e| chain(&e))?;
            let Some(job) = live.value else {
                return Ok(());
            };
            if owner_string(&job.raw).as_deref() != Some(o.owner.as_str()) {
                return Ok(());
            }
            let purge = shared.config.purge_on_delete;
            if job.view.stop && !purge {
                return Ok(());
            }
            nomad
                .deregister_job(&o.name, purge, &WriteOptions::new().namespace(ns))
                .await
                .map_err(|e| chain(&e))?;
            recorded(if purge { "purged" } else { "stopped" });
        }
        ObjectKind::VaultRole => {
            let vault = &shared.clients.vault;
            let mount = &shared.config.jwt_auth_mount;
            let live = read_role(vault, mount, &o.name)
                .await
                .map_err(|e| chain(&e))?;
            if live
                .as_ref()
                .and_then(|b| names::owner_of_role(&o.name, b))
                .as_ref()
                != Some(&owner)
            {
                c.vault.set_role(&o.name, live);
                return Ok(());
            }
            vault
                .delete_jwt_role(mount, &o.name)
                .await
                .map_err(|e| chain(&e))?;
            c.vault.set_role(&o.name, None);
            recorded("deleted");
        }
        ObjectKind::VaultPolicy => {
            let vault = &shared.clients.vault;
            let live = vault
                .get_policy(&o.name)
                .await
                .map_err(|e| chain(&e))?
                .map(|p| p.policy);
            if live
                .as_deref()
                .and_then(|t| names::owner_of_policy(&o.name, t))
                .as_ref()
                != Some(&owner)
            {
                c.vault.set_policy(&o.name, live);
                return Ok(());
            }
            vault.delete_policy(&o.name).await.map_err(|e| chain(&e))?;
            c.vault.set_policy(&o.name, None);
            recorded("deleted");
        }
    }
    Ok(())
}

/// Deletes status documents of keys that have no spec and no owned object left: those
/// whose objects this pass deleted (`done`), and those no watch shows an object of.
async fn delete_orphan_statuses(shared: &Shared, fence: Option<&Fence>, done: &BTreeSet<String>) {
    let c = &shared.caches;
    // A status is the last word on objects that may still exist: keep it while any kind
    // of object cannot be listed.
    if !c.gc_kinds().1.is_empty() {
        return;
    }
    let owners: BTreeSet<String> = c
        .service_defaults
        .owned()
        .into_iter()
        .chain(c.service_intentions.owned())
        .chain(c.http_routes.owned())
        .map(|(o, _)| o)
        .chain(
            c.nomad
                .owned()
                .into_iter()
                .filter(|(_, _, stopped)| !stopped || shared.config.purge_on_delete)
                .map(|(o, _, _)| o),
        )
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
            Err(error) => tracing::debug!(%key, %error, "cannot delete an orphan status"),
        }
    }
}

async fn block(
    shared: &Shared,
    fence: Option<&Fence>,
    orphans: &[GcObject],
    owned: usize,
    digest: String,
) {
    shared.metrics.gc_blocked.set(1);
    let set = BlockedSet {
        digest: digest.clone(),
        count: orphans.len(),
        owned,
        objects: orphans.to_vec(),
    };
    let changed = shared.gc.blocked.lock().as_ref() != Some(&set);
    *shared.gc.blocked.lock() = Some(set.clone());
    let message = format!(
        "garbage collection would delete {} of {owned} owned objects (limits: {} objects, {:.0}%); nothing was deleted. Approve with POST /api/v1/gc/approve {{\"digest\": \"{digest}\"}}",
        orphans.len(),
        shared.config.gc_max_count,
        shared.config.gc_max_share * 100.0
    );
    if changed {
        tracing::warn!("{message}");
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
        "count": orphans.len(),
        "owned": owned,
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
}

/// The GC status document as this leader knows it: what it wrote or deleted itself,
/// else what the (possibly held) status watch shows.
fn current_gc_status(shared: &Shared) -> Option<Vec<u8>> {
    match &*shared.gc.written.lock() {
        Some(written) => written.clone(),
        None => shared
            .caches
            .statuses
            .stored(GC_STATUS_KEY)
            .and_then(|s| s.raw.as_ref().map(|raw| raw.as_bytes().to_vec())),
    }
}

async fn clear_blocked(shared: &Shared, fence: Option<&Fence>) {
    shared.metrics.gc_blocked.set(0);
    *shared.gc.blocked.lock() = None;
    if current_gc_status(shared).is_some() {
        let key = format!("{}{GC_STATUS_KEY}", shared.config.status_prefix());
        match shared.writer.write(StatusOp::Delete { key }, fence).await {
            Ok(_) => *shared.gc.written.lock() = Some(None),
            Err(error) => tracing::debug!(%error, "cannot delete the GC status"),
        }
    }
}

/// Runs GC passes while this instance leads, until the task is dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut leadership: watch::Receiver<Leadership>) {
    let kick = shared.triggers.gc_notify();
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn o(owner: &str, kind: ObjectKind, name: &str) -> GcObject {
        GcObject {
            owner: owner.into(),
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn the_guard_trips_on_count_or_share() {
        assert!(!trips_guard(0, 100, 10, 0.2));
        assert!(!trips_guard(5, 100, 10, 0.2));
        assert!(trips_guard(11, 1000, 10, 0.2), "count");
        assert!(trips_guard(6, 20, 10, 0.2), "share 30%");
        assert!(!trips_guard(4, 20, 10, 0.2), "share 20% is allowed");
        assert!(trips_guard(3, 3, 10, 0.2), "everything");
    }

    #[test]
    fn a_blocked_set_is_deleted_only_with_its_own_digest() {
        let orphans = vec![
            o("a/x", ObjectKind::NomadJob, "x"),
            o("a/x", ObjectKind::ServiceDefaults, "x"),
        ];
        let blocked = decide(&orphans, 2, 10, 0.2, None);
        let Decision::Blocked { digest: d } = blocked else {
            panic!("{blocked:?}")
        };
        assert_eq!(
            d,
            digest(&orphans.iter().rev().cloned().collect::<Vec<_>>()),
            "order-independent"
        );
        assert_eq!(decide(&orphans, 2, 10, 0.2, Some(&d)), Decision::Delete);
        let mut more = orphans.clone();
        more.push(o("b/y", ObjectKind::NomadJob, "y"));
        assert!(matches!(
            decide(&more, 3, 10, 0.2, Some(&d)),
            Decision::Blocked { .. }
        ));
        assert_eq!(decide(&[], 3, 10, 0.2, None), Decision::Nothing);
        assert_eq!(decide(&orphans[..1], 100, 10, 0.2, None), Decision::Delete);
    }

    #[test]
    fn deletions_go_in_reverse_apply_order() {
        let mut kinds = ObjectKind::APPLY_ORDER.to_vec();
        kinds.sort_by_key(|k| delete_rank(*k));
        assert_eq!(
            kinds,
            vec![
                ObjectKind::HttpRoute,
                ObjectKind::NomadJob,
                ObjectKind::ServiceIntentions,
                ObjectKind::ServiceDefaults,
                ObjectKind::VaultRole,
                ObjectKind::VaultPolicy,
            ]
        );
    }

    #[test]
    fn approvals_need_the_blocked_digest() {
        let state = GcState::default();
        assert_eq!(state.approve("x"), Err(ApproveError::NothingBlocked));
        *state.blocked.lock() = Some(BlockedSet {
            digest: "abc".into(),
            count: 1,
            owned: 1,
            objects: Vec::new(),
        });
        assert!(matches!(
            state.approve("x"),
            Err(ApproveError::DigestMismatch { .. })
        ));
        state.approve("abc").unwrap();
        assert_eq!(state.approved.lock().as_deref(), Some("abc"));
    }
}
