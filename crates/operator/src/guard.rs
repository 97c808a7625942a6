//! The mass-deletion guard: the pure decisions of a garbage-collection pass (what is an
//! orphan set's digest, whether a set trips the guard, in which order kinds go) and the
//! state the API shares with the collector (the blocked set, the approval). No I/O; the
//! pass itself is [`crate::gc`].

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
pub(crate) fn delete_rank(kind: ObjectKind) -> usize {
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
