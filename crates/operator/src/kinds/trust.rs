//! What the last status of the same generation vouches for, so that a converged key
//! costs no read (see `reconcile/gather.rs`).

use steward_render::ObjectKind;

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

    /// Whether the status recorded the object as matching this rendering.
    pub(crate) fn in_sync(&self, kind: ObjectKind, name: &str) -> bool {
        matches!(
            self.doc.object_state(kind.as_str(), name),
            Some(ObjectState::Synced | ObjectState::Created | ObjectState::Updated)
        )
    }

    /// The job's `JobModifyIndex` the status recorded as matching.
    pub(crate) fn job_modify_index(&self) -> Option<u64> {
        self.doc.job_modify_index
    }
}
