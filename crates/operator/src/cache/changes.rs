//! What a cache publishes when it applies a change: which object changed and its
//! owner-relevant facts before and after, never a body. The caches do not decide which
//! spec keys to reconcile; the trigger mappers of the wiring (`crate::triggers`) do,
//! the way kube-runtime's `watches`/`owns` map a watched object to its owner.

use tokio::sync::mpsc;

use crate::key::SpecKey;

/// The watch a change was seen by: the mappers have one rule per watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A config entry list watch (`service-defaults`, `service-intentions`,
    /// `http-route`).
    ConfigEntries(&'static str),
    /// The Nomad job list.
    NomadJobList,
    /// A job body on the Nomad event stream.
    NomadJobEvent,
    /// A deployment on the Nomad event stream (or the deployments' listing).
    NomadDeployments,
    /// A Vault policy or role name listed or no longer listed.
    VaultNames,
    /// A Vault policy or role whose content the rolling check found changed.
    VaultContent,
}

/// One object that came, changed or went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// Its name in its cache (an entry name, `<ns>/<id>` of a job, a Vault name).
    pub name: Box<str>,
    /// Its owner before the change (from the ownership `Meta` or the policy marker).
    pub old_owner: Option<SpecKey>,
    /// Its owner after the change (`None` when it went or nobody owns it).
    pub new_owner: Option<SpecKey>,
}

impl ObjectChange {
    /// `name` changed owner from `old_owner` to `new_owner` (both may be equal).
    #[must_use]
    pub fn new(name: &str, old_owner: Option<&str>, new_owner: Option<&str>) -> Self {
        Self {
            name: Box::from(name),
            old_owner: old_owner.map(SpecKey::from),
            new_owner: new_owner.map(SpecKey::from),
        }
    }
}

/// A change one cache applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Specs created or changed (their generation moved), and specs deleted.
    Specs {
        /// Created or changed.
        applied: Vec<SpecKey>,
        /// Deleted.
        deleted: Vec<SpecKey>,
    },
    /// Every shard of the spec watch has listed (garbage collection may now decide).
    SpecsSynced,
    /// A status document was deleted by someone other than this leader.
    StatusDeleted(SpecKey),
    /// A cache replaced its whole content (a first listing, a relisting of the
    /// deployments): the owners of what it held before and of what it holds now.
    Replaced {
        /// The watch.
        source: Source,
        /// The owners, before and after (may repeat).
        owners: Vec<SpecKey>,
    },
    /// Objects that came, changed or went.
    Objects {
        /// The watch.
        source: Source,
        /// The objects.
        objects: Vec<ObjectChange>,
    },
}

impl Change {
    /// One object's change.
    #[must_use]
    pub fn object(source: Source, change: ObjectChange) -> Self {
        Change::Objects {
            source,
            objects: vec![change],
        }
    }
}

/// Where the caches publish their changes (cheap to clone). Publishing never blocks
/// and never fails: once the receiving end is gone (shutdown) changes are dropped.
#[derive(Debug, Clone)]
pub struct Changes {
    tx: mpsc::UnboundedSender<Change>,
}

/// The receiving end of [`Changes`] (the controller's trigger stream).
#[derive(Debug)]
pub struct ChangeReceiver {
    rx: mpsc::UnboundedReceiver<Change>,
}

impl Changes {
    /// A publisher and its receiving end.
    #[must_use]
    pub fn channel() -> (Self, ChangeReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, ChangeReceiver { rx })
    }

    /// Publishes `change`; an empty one is not sent.
    pub fn publish(&self, change: Change) {
        let empty = match &change {
            Change::Specs { applied, deleted } => applied.is_empty() && deleted.is_empty(),
            Change::Replaced { owners, .. } => owners.is_empty(),
            Change::Objects { objects, .. } => objects.is_empty(),
            Change::SpecsSynced | Change::StatusDeleted(_) => false,
        };
        if !empty {
            // The receiver is gone only at shutdown, when nothing is reconciled any more.
            let _ = self.tx.send(change);
        }
    }
}

impl ChangeReceiver {
    /// The next change published, if any (tests).
    pub fn try_recv(&mut self) -> Option<Change> {
        self.rx.try_recv().ok()
    }

    /// The changes as a stream, ending when every [`Changes`] is dropped.
    pub fn into_stream(self) -> impl futures::Stream<Item = Change> + Send + 'static {
        futures::stream::unfold(self.rx, |mut rx| async move {
            let change = rx.recv().await?;
            Some((change, rx))
        })
    }
}
