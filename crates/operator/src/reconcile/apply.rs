//! Executing the steps of a plan: the one executor of every object write, the
//! reconciles' and garbage collection's alike, with typed errors
//! ([`ReconcileError::is_retryable`]). Each step goes to its kind's module
//! ([`crate::kinds::Kind::execute`]: CAS writes, Vault re-reads, namespaces, gateway).

use steward_render::ObjectRef;
use steward_render::names::SpecKey;

use super::ReconcileError;
use crate::context::OperatorContext;
use crate::kinds::{self, Applied};
use crate::plan::{Live, Step};

/// Applies one step.
pub(crate) async fn execute(
    shared: &OperatorContext,
    key: &SpecKey,
    step: &Step,
    live: &Live,
) -> Result<Applied, ReconcileError> {
    kinds::of(step.object.kind)
        .execute(shared, key, step, live)
        .await
}

/// Reads every object a plan would create, all at once: `Create` steps come from caches
/// that may lag, and an object that exists after all must not be written over (and, when
/// someone else owns it, nothing at all may be written for the key). Returns the objects
/// that exist, with their owners.
pub(crate) async fn preflight(
    shared: &OperatorContext,
    key: &SpecKey,
    creates: &[&Step],
) -> Result<Vec<(ObjectRef, Option<SpecKey>)>, ReconcileError> {
    let reads = creates.iter().map(|step| async move {
        let owner = kinds::of(step.object.kind)
            .preflight(shared, key, step)
            .await?;
        Ok::<_, ReconcileError>(owner.map(|o| (step.object.clone(), o)))
    });
    let found = futures::future::join_all(reads).await;
    let mut out = Vec::new();
    for r in found {
        if let Some(hit) = r? {
            out.push(hit);
        }
    }
    Ok(out)
}
