//! Why a reconcile (or one write of garbage collection) failed, and whether trying
//! again may help. Below the kinds, the plan and the reconcile, which all return it.

use crate::writer::WriteError;

/// Why a reconcile failed (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A request to Consul, Nomad or Vault failed.
    #[error("{object}: request failed")]
    Api {
        /// The object (`nomad-job shop/web`).
        object: String,
        /// The cause.
        #[source]
        source: steward_hashi::Error,
    },
    /// A check-and-set write lost a race (someone changed the object meanwhile).
    #[error("{object}: changed concurrently (check-and-set lost); retrying")]
    CasLost {
        /// The object.
        object: String,
    },
    /// The Nomad namespace of the job does not exist and may not be created.
    #[error(
        "Nomad namespace {namespace:?} does not exist: create it (`nomad namespace apply {namespace}`) or enable create_nomad_namespaces"
    )]
    NamespaceMissing {
        /// The namespace.
        namespace: String,
    },
    /// The edge gateway routes attach to does not exist.
    #[error(
        "edge gateway {kind} {name:?} does not exist: create it (Steward attaches routes to it but does not own it)"
    )]
    GatewayMissing {
        /// Gateway kind.
        kind: String,
        /// Gateway name.
        name: String,
    },
    /// Right before writing, the object turned out to be owned by someone else.
    #[error("{object}: {message}")]
    Conflict {
        /// The object.
        object: String,
        /// Who owns it.
        message: String,
    },
    /// The status could not be written.
    #[error("status of {key}")]
    Status {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: WriteError,
    },
}

impl ReconcileError {
    /// Whether trying again may help: a lost check-and-set race or a request that
    /// failed in a retryable way does; a missing namespace or gateway, a foreign owner or
    /// a request the server rejected does not until something else changes.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Api { source, .. } => source.is_retryable(),
            ReconcileError::CasLost { .. } => true,
            ReconcileError::Status { .. } => true,
            ReconcileError::NamespaceMissing { .. }
            | ReconcileError::GatewayMissing { .. }
            | ReconcileError::Conflict { .. } => false,
        }
    }
}

impl ReconcileError {
    /// Whether the failed request may have been applied all the same: it was sent and
    /// the answer was a 5xx or never came. (A refused connection, a 4xx or a lost
    /// check-and-set race were surely not applied.)
    #[must_use]
    pub fn may_have_landed(&self) -> bool {
        match self {
            ReconcileError::Api { source, .. } => source
                .status()
                .map_or(!source.is_connect(), |status| status >= 500),
            _ => false,
        }
    }
}

pub(crate) fn api(object: String) -> impl FnOnce(steward_hashi::Error) -> ReconcileError {
    move |source| ReconcileError::Api { object, source }
}
