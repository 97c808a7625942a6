//! The mass-deletion guard: the pure decisions of a garbage-collection pass (what is an
//! orphan set's digest, whether a set trips the guard, in which order kinds go) and the
//! state the API shares with the collector (the blocked set, the approval). No I/O; the
//! pass itself is [`crate::gc`].

use std::collections::BTreeSet;

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_render::ObjectKind;

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

/// How many specs one pass may remove without an approval: `max_share` of the specs
/// owning objects (`owning`, the removed ones included), rounded down, and at most
/// `max_count`; never less than one, so that removing one spec (with all its objects,
/// however many) is never blocked.
#[must_use]
pub fn allowed_specs(owning: usize, max_count: usize, max_share: f64) -> usize {
    // A share is at most 1 (the configuration is validated), so this is at most `owning`.
    let by_share = (max_share.clamp(0.0, 1.0) * owning as f64).floor() as usize;
    by_share.min(max_count).max(1)
}

/// Whether removing `removed` of `owning` specs (the specs owning objects, the removed
/// ones included) trips the mass-deletion guard.
#[must_use]
pub fn trips_guard(removed: usize, owning: usize, max_count: usize, max_share: f64) -> bool {
    removed > allowed_specs(owning.max(removed), max_count, max_share)
}

/// The specs owning `objects` (each owner key once, sorted).
#[must_use]
pub fn owners(objects: &[GcObject]) -> Vec<&str> {
    let set: BTreeSet<&str> = objects.iter().map(|o| o.owner.as_str()).collect();
    set.into_iter().collect()
}

/// Decides a pass over `orphans` (owned objects whose spec is gone) among `owned` (every
/// owned object the inventory found, the orphans included): delete, do nothing, or
/// block until `approved` equals the digest. The guard counts specs, not objects: one
/// spec may own one object or six, and removing it is one decision of its team.
#[must_use]
pub fn decide(
    orphans: &[GcObject],
    owned: &[GcObject],
    max_count: usize,
    max_share: f64,
    approved: Option<&str>,
) -> Decision {
    if orphans.is_empty() {
        return Decision::Nothing;
    }
    let removed = owners(orphans).len();
    if !trips_guard(removed, owners(owned).len(), max_count, max_share) {
        return Decision::Delete;
    }
    let d = digest(orphans);
    if approved == Some(d.as_str()) {
        Decision::Delete
    } else {
        Decision::Blocked { digest: d }
    }
}

/// The message of a blocked pass (event, log, `<prefix>/status/_gc`): what it would
/// remove, in specs and objects, the limits, and the command that approves exactly this
/// set.
#[must_use]
pub fn blocked_message(set: &BlockedSet, max_count: usize, max_share: f64) -> String {
    let allowed = allowed_specs(set.owning_specs, max_count, max_share);
    format!(
        "garbage collection would remove {} of {} specs ({} of {} owned objects); without \
         approval a pass removes at most {allowed} spec{} ({:.0}% of {} specs owning objects, at \
         most {max_count}, at least 1); nothing was deleted. Review with `steward gc \
         approve`, then approve exactly this set: steward gc approve --digest {}",
        set.specs.len(),
        set.owning_specs,
        set.count,
        set.owned,
        if allowed == 1 { "" } else { "s" },
        max_share * 100.0,
        set.owning_specs,
        set.digest,
    )
}

/// Reverse apply order: the position of a kind in deletions.
pub(crate) fn delete_rank(kind: ObjectKind) -> usize {
    ObjectKind::APPLY_ORDER
        .iter()
        .rev()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// A blocked pass, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedSet {
    /// Digest to approve.
    pub digest: String,
    /// The specs whose objects would be deleted (their keys are gone).
    pub specs: Vec<String>,
    /// Specs owning objects, those above included (the guard's denominator).
    pub owning_specs: usize,
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
    pub(crate) blocked: Mutex<Option<BlockedSet>>,
    pub(crate) approved: Mutex<Option<String>>,
    /// The GC status document as this leadership term last wrote it (`Some(None)` =
    /// deleted); `None` = not written in this term.
    pub(crate) written: Mutex<Option<Option<Vec<u8>>>>,
    /// The kinds the last pass left alone (their caches not synced and fresh), so that
    /// the log says it when it changes, not on every pass.
    pub(crate) skipped_kinds: Mutex<Vec<ObjectKind>>,
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
