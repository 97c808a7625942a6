//! Computing a status document from a reconcile's verdict, completing it against the
//! stored one, and deciding whether it changed. Pure.

use steward_render::ObjectRef;

use super::*;

fn object_status(o: &ObjectRef, state: ObjectState, message: Option<String>) -> ObjectStatus {
    ObjectStatus {
        kind: o.kind.as_str().to_owned(),
        name: o.name.clone(),
        state,
        message,
    }
}

/// Computes the status document (without events and transition times; see
/// [`finalize`]).
#[must_use]
pub fn compute(input: &StatusInput) -> StatusDoc {
    use ConditionStatus::{False, True, Unknown};
    let mut doc = StatusDoc {
        observed_generation: input.generation,
        phase: Phase::Pending,
        message: String::new(),
        spec_hash: input.spec_hash.clone(),
        replicas: input.replicas,
        next_scaling_change: input.next_scaling_change,
        job_modify_index: input.job_modify_index,
        conditions: Vec::new(),
        objects: Vec::new(),
        diagnostics: Vec::new(),
        events: Vec::new(),
    };
    match &input.verdict {
        Verdict::Invalid {
            message,
            diagnostics,
        } => {
            doc.phase = Phase::Invalid;
            doc.message.clone_from(message);
            doc.diagnostics.clone_from(diagnostics);
            doc.conditions = vec![
                condition(ACCEPTED, False, "InvalidSpec", message),
                condition(
                    RESOURCES_SYNCED,
                    Unknown,
                    "InvalidSpec",
                    "nothing is applied",
                ),
                condition(AVAILABLE, Unknown, "InvalidSpec", "nothing is applied"),
                condition(DEGRADED, Unknown, "InvalidSpec", "nothing is applied"),
            ];
        }
        Verdict::Conflict { conflicts, objects } => {
            let message = conflicts
                .iter()
                .map(|(o, why)| format!("{} {}: {why}", o.kind, o.name))
                .collect::<Vec<_>>()
                .join("; ");
            doc.phase = Phase::Conflict;
            doc.message = format!("not applied: {message}");
            doc.objects = objects
                .iter()
                .map(|o| match conflicts.iter().find(|(c, _)| c == o) {
                    Some((_, why)) => object_status(o, ObjectState::Conflict, Some(why.clone())),
                    None => object_status(o, ObjectState::Pending, None),
                })
                .collect();
            doc.conditions = vec![
                condition(ACCEPTED, True, "Valid", "the spec is valid"),
                condition(RESOURCES_SYNCED, False, "Conflict", &message),
                condition(AVAILABLE, Unknown, "Conflict", "nothing is applied"),
                condition(DEGRADED, Unknown, "Conflict", "nothing is applied"),
            ];
        }
        Verdict::Waiting {
            caches,
            objects,
            timed_out,
        } => {
            let after = WAIT_TIMEOUT.as_secs();
            let message = caches
                .iter()
                .map(|c| match &c.error {
                    Some(error) => format!(
                        "the {} cache cannot list {} objects: {error}",
                        c.cache, c.kind
                    ),
                    None if *timed_out => format!(
                        "the {} cache has not listed {} objects after {after} s (no error from its server)",
                        c.cache, c.kind
                    ),
                    None => format!("the {} cache has not listed yet", c.cache),
                })
                .collect::<Vec<_>>()
                .join("; ");
            doc.phase = Phase::Pending;
            doc.message = format!(
                "held until the live {} objects can be read: {message}",
                caches
                    .iter()
                    .map(|c| c.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            doc.objects = objects
                .iter()
                .map(|o| object_status(o, ObjectState::Pending, None))
                .collect();
            let held = "nothing is applied while the live state is unknown";
            // A failing cache says so at once (the server's answer); one that lists
            // without failing and without finishing only after the bounded wait.
            let (synced, reason) = if *timed_out && caches.iter().all(|c| c.error.is_none()) {
                (False, REASON_WAIT_TIMEOUT)
            } else {
                (Unknown, REASON_CACHE_UNAVAILABLE)
            };
            doc.conditions = vec![
                condition(ACCEPTED, True, "Valid", "the spec is valid"),
                condition(RESOURCES_SYNCED, synced, reason, &message),
                condition(AVAILABLE, Unknown, reason, held),
                condition(DEGRADED, Unknown, reason, held),
            ];
        }
        Verdict::Applied {
            objects,
            failure,
            rollout,
        } => {
            doc.objects = objects
                .iter()
                .map(|(o, s, m)| object_status(o, *s, m.clone()))
                .collect();
            let accepted = condition(ACCEPTED, True, "Valid", "the spec is valid");
            let (synced, available, degraded, phase, message) = match (failure, rollout) {
                (Some(error), _) => (
                    condition(RESOURCES_SYNCED, False, "ApplyFailed", error),
                    condition(
                        AVAILABLE,
                        Unknown,
                        "ApplyFailed",
                        "not every object is applied",
                    ),
                    condition(
                        DEGRADED,
                        Unknown,
                        "ApplyFailed",
                        "not every object is applied",
                    ),
                    Phase::Error,
                    format!("apply failed: {error}"),
                ),
                (None, Rollout::Reverted(m)) => (
                    condition(RESOURCES_SYNCED, False, "RolloutReverted", m),
                    condition(AVAILABLE, True, "RevertedVersionRunning", m),
                    condition(DEGRADED, True, "AutoReverted", m),
                    Phase::Degraded,
                    m.clone(),
                ),
                (None, Rollout::Failed(m)) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(AVAILABLE, False, "DeploymentFailed", m),
                    condition(DEGRADED, True, "DeploymentFailed", m),
                    Phase::Degraded,
                    m.clone(),
                ),
                (None, Rollout::Available(m)) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(AVAILABLE, True, "DeploymentSuccessful", m),
                    condition(DEGRADED, False, "Healthy", "the deployment is healthy"),
                    Phase::Synced,
                    "all objects converged and the deployment is healthy".to_owned(),
                ),
                (None, Rollout::Batch) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(AVAILABLE, True, "Registered", "the batch job is registered"),
                    condition(DEGRADED, False, "Healthy", "nothing failed"),
                    Phase::Synced,
                    "all objects converged".to_owned(),
                ),
                (None, Rollout::Running(m)) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(AVAILABLE, False, "DeploymentRunning", m),
                    condition(DEGRADED, False, "Healthy", "nothing failed"),
                    Phase::Progressing,
                    m.clone(),
                ),
                (None, Rollout::NotSeen(m)) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(AVAILABLE, False, REASON_WAIT_TIMEOUT, m),
                    condition(DEGRADED, False, "Healthy", "nothing failed"),
                    Phase::Progressing,
                    m.clone(),
                ),
                (None, Rollout::Pending | Rollout::NoJob) => (
                    condition(
                        RESOURCES_SYNCED,
                        True,
                        "Applied",
                        "every object matches the spec",
                    ),
                    condition(
                        AVAILABLE,
                        False,
                        "DeploymentPending",
                        "waiting for the deployment to start",
                    ),
                    condition(DEGRADED, False, "Healthy", "nothing failed"),
                    Phase::Progressing,
                    "waiting for the deployment".to_owned(),
                ),
            };
            doc.phase = phase;
            doc.message = message;
            doc.conditions = vec![accepted, synced, available, degraded];
        }
    }
    doc
}

/// The status of a removed spec (its key is gone, its objects remain) while garbage
/// collection deletes its objects or the guard holds them: the `stored` document (or a
/// new one) with phase `Deleting` or `Blocked`, a message saying why, and the
/// [`REMOVED`] condition (True since it first became so). The rest (objects, other
/// conditions, events) stays as the last reconcile left it.
#[must_use]
pub fn removed(stored: Option<&StatusDoc>, removal: &Removal, now: jiff::Timestamp) -> StatusDoc {
    let mut doc = stored.cloned().unwrap_or_else(|| StatusDoc {
        observed_generation: 0,
        phase: Phase::Pending,
        message: String::new(),
        spec_hash: None,
        replicas: None,
        next_scaling_change: None,
        job_modify_index: None,
        conditions: Vec::new(),
        objects: Vec::new(),
        diagnostics: Vec::new(),
        events: Vec::new(),
    });
    let plural = |n: usize| if n == 1 { "object" } else { "objects" };
    let (phase, reason, message) = match removal {
        Removal::Deleting {
            objects,
            failure: None,
        } => (
            Phase::Deleting,
            "GarbageCollecting",
            format!(
                "the spec was removed; garbage collection is deleting its {objects} {}",
                plural(*objects)
            ),
        ),
        Removal::Deleting {
            objects,
            failure: Some(failure),
        } => (
            Phase::Deleting,
            "DeleteFailed",
            format!(
                "the spec was removed; garbage collection could not delete all of its {objects} {}: {failure}",
                plural(*objects)
            ),
        ),
        Removal::Blocked { message } => (
            Phase::Blocked,
            "MassDeletionBlocked",
            format!("the spec was removed; its objects are kept: {message}"),
        ),
    };
    let since = doc
        .condition(REMOVED)
        .filter(|c| c.status == ConditionStatus::True)
        .and_then(|c| c.last_transition_time)
        .unwrap_or(now);
    doc.conditions.retain(|c| c.type_ != REMOVED);
    doc.conditions.push(Condition {
        type_: REMOVED.to_owned(),
        status: ConditionStatus::True,
        reason: reason.to_owned(),
        message: message.clone(),
        last_transition_time: Some(since),
    });
    doc.phase = phase;
    doc.message = message;
    doc
}

/// Completes `new` against the `stored` document: carries condition transition times
/// (set to `now` where the status changed), keeps same-generation object states
/// (`Created`/`Updated` do not decay to `Synced`), and sets the events to the stored
/// ones followed by `new_events`, keeping the last [`STATUS_EVENTS`].
#[must_use]
pub fn finalize(
    mut new: StatusDoc,
    stored: Option<&StatusDoc>,
    new_events: &[EventDoc],
    now: jiff::Timestamp,
) -> StatusDoc {
    for c in &mut new.conditions {
        let before = stored.and_then(|s| s.condition(&c.type_));
        c.last_transition_time = match before {
            Some(b) if b.status == c.status => b.last_transition_time.or(Some(now)),
            _ => Some(now),
        };
    }
    if let Some(s) = stored.filter(|s| s.observed_generation == new.observed_generation) {
        for o in &mut new.objects {
            if o.state != ObjectState::Synced {
                continue;
            }
            if let Some(prev) = s.object_state(&o.kind, &o.name)
                && matches!(prev, ObjectState::Created | ObjectState::Updated)
            {
                o.state = prev;
            }
        }
    }
    let mut events: Vec<EventDoc> = stored.map(|s| s.events.clone()).unwrap_or_default();
    events.extend(new_events.iter().cloned());
    let skip = events.len().saturating_sub(STATUS_EVENTS);
    new.events = events.into_iter().skip(skip).collect();
    new
}

/// Whether `new` must be written given what is stored (`None` = nothing stored).
#[must_use]
pub fn needs_write(new: &StatusDoc, stored: Option<&StatusDoc>) -> bool {
    stored != Some(new)
}
