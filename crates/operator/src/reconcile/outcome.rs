//! The pure parts of a reconcile's outcome: which event a step's result is, whether a
//! step repairs drift, where the rollout stands, and when to look at the key again.
//! No I/O: [`super::run`] gathers what these need and writes what they decide.

use std::time::Duration;

use steward_render::{FieldChange, ObjectKind};
use steward_runtime::{Action, EventType};

use steward_render::ObjectRef;

use super::decide::Apply;
use crate::plan::{Step, StepKind};
use crate::rollout::{JobState, rollout};
use crate::status::{
    self, ConditionStatus, ObjectState, Phase, Rollout, StatusDoc, StatusInput, Verdict,
};
use steward_hashi::nomad::Deployment;

/// Safety net while a deployment runs (deployment events normally wake the key).
pub(crate) const PROGRESS_REQUEUE: Duration = Duration::from_secs(30);

/// An event to record: type, reason, message.
pub(crate) type EventText = (EventType, &'static str, String);

pub(crate) use crate::objects::summarise;

/// Only group counts change: a scaling window, not drift.
pub(crate) fn only_count(changes: &[FieldChange]) -> bool {
    !changes.is_empty() && changes.iter().all(|c| c.path.ends_with(".Count"))
}

/// Requeue just after the next scaling boundary.
pub(crate) fn scaling_requeue(
    next: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Option<Action> {
    let next = next?;
    let nanos = next.as_nanosecond().saturating_sub(now.as_nanosecond());
    let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)) + Duration::from_millis(50);
    Some(Action::requeue(wait))
}

/// The event a step about to run stands for when the last status of the same generation
/// had the object in sync: a repaired hand edit (`Drift`), a deleted object recreated, or
/// a scaling window's new count (`Scaled`). `object` describes the object.
pub(crate) fn drift_event(
    step: &Step,
    object: &str,
    previous: Option<&StatusDoc>,
    replicas: u32,
) -> Option<EventText> {
    let prev = previous?;
    let was_ok = prev
        .object_state(step.object.kind.as_str(), &step.object.name)
        .is_some_and(|s| {
            matches!(
                s,
                ObjectState::Synced | ObjectState::Created | ObjectState::Updated
            )
        });
    if !was_ok || step.kind == StepKind::Delete {
        return None;
    }
    if step.object.kind == ObjectKind::NomadJob
        && only_count(&step.changes)
        && prev.replicas != Some(replicas)
    {
        let was = prev
            .replicas
            .map_or_else(|| "unset".to_owned(), |r| r.to_string());
        return Some((
            EventType::Normal,
            "Scaled",
            format!("{object}: the scaling window asks for {replicas} replicas (was {was})"),
        ));
    }
    let message = match step.kind {
        StepKind::Create => format!("{object} was deleted outside Steward; recreating it"),
        _ => format!(
            "{object} drifted from the spec ({}); reverting it",
            summarise(&step.changes)
        ),
    };
    Some((EventType::Warning, "Drift", message))
}

/// The event of a step that wrote (`Created`, `Updated`, `Deleted`), naming the changed
/// fields; `None` when nothing was written.
pub(crate) fn applied_event(step: &Step, object: &str, state: ObjectState) -> Option<EventText> {
    let (reason, verb) = match state {
        ObjectState::Created => ("Created", "created"),
        ObjectState::Updated => ("Updated", "updated"),
        ObjectState::Deleted => ("Deleted", "deleted"),
        _ => return None,
    };
    let detail = if step.changes.is_empty() {
        String::new()
    } else {
        format!(": {}", summarise(&step.changes))
    };
    Some((
        EventType::Normal,
        reason,
        format!("{object} {verb}{detail}"),
    ))
}

/// The Warning event for what Nomad said while accepting a write (its register
/// answer's `Warnings`, e.g. `memory_max` ignored while oversubscription is off): the
/// job runs, but not quite as the spec asks, and nothing else would tell the team.
pub(crate) fn warnings_event(object: &str, warnings: &str) -> Option<EventText> {
    let text = warnings.trim();
    if text.is_empty() {
        return None;
    }
    // Nomad's text is "<n> warning(s):\n\n* a\n* b"; one line reads better in a status.
    let points: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("* "))
        .collect();
    let detail = if points.is_empty() {
        text.to_owned()
    } else {
        points.join("; ")
    };
    Some((
        EventType::Warning,
        "NomadWarning",
        format!("{object} accepted with warnings: {detail}"),
    ))
}

/// A failure the last status already reports (a retry that fails the same way is not
/// news, and must not rewrite the status on every backoff step).
pub(crate) fn repeated_failure(stored: Option<&StatusDoc>, text: &str) -> bool {
    stored.is_some_and(|s| s.phase == Phase::Error && s.message.ends_with(text))
}

/// Where the rollout stands after the writes: held by a revert, just registered, or as
/// the job (`job`: its best known state) and its deployments say.
pub(crate) fn rollout_after(
    held: Option<&str>,
    job_written: bool,
    job: Option<JobState>,
    deployments: &[std::sync::Arc<Deployment>],
    batch: bool,
    previous: Option<&StatusDoc>,
) -> Rollout {
    match (held, job_written) {
        (Some(m), _) => Rollout::Reverted(m.to_owned()),
        (None, true) => Rollout::Pending,
        (None, false) => {
            let available_before = previous.is_some_and(|p| {
                p.condition(status::AVAILABLE)
                    .is_some_and(|c| c.status == ConditionStatus::True)
            });
            rollout(job, deployments, batch, available_before)
        }
    }
}

/// What a key whose rollout stayed pending for [`status::WAIT_TIMEOUT`] waits for: a
/// deployment of the job's version (or of its `JobModifyIndex`, when only the job list
/// is known), or the job itself.
pub(crate) fn not_seen(job: &str, state: Option<JobState>) -> String {
    let after = status::WAIT_TIMEOUT.as_secs();
    match state {
        None => format!("job {job} not seen in Nomad's job list after {after} s"),
        Some(s) if s.stop => format!("job {job} still seen stopped after {after} s"),
        Some(JobState {
            version: Some(v), ..
        }) => format!("no deployment of job {job} version {v} seen after {after} s"),
        Some(s) => format!(
            "no deployment of job {job} (JobModifyIndex {}) seen after {after} s",
            s.job_modify_index
        ),
    }
}

/// When to look at the key again after a pass that ended in `phase`: at the next
/// scaling boundary, and while a deployment runs at least every
/// [`PROGRESS_REQUEUE`]; else only when something changes.
pub(crate) fn next_action(scaling: Option<Action>, phase: Phase) -> Action {
    let action = scaling.unwrap_or_else(Action::await_change);
    if phase != Phase::Progressing {
        return action;
    }
    match action {
        Action::Requeue(d) => Action::requeue(d.min(PROGRESS_REQUEUE)),
        _ => Action::requeue(PROGRESS_REQUEUE),
    }
}

/// What running an [`Apply`]'s writes did.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    /// Each written object's state afterwards (deleted ones left out), with the error
    /// of the failed one.
    pub(crate) results: Vec<(ObjectRef, ObjectState, Option<String>)>,
    /// The failed write's error, as one line.
    pub(crate) failure: Option<String>,
    /// Set when the job's write ran: the register answer's `JobModifyIndex`.
    pub(crate) job_index: Option<Option<u64>>,
    /// The job was registered in this pass.
    pub(crate) job_written: bool,
}

/// The job as the caches show it once the writes are done.
#[derive(Debug, Default)]
pub(crate) struct JobAfter {
    /// Our registration the job list has not shown yet.
    pub(crate) unseen_write: bool,
    /// Its best known state.
    pub(crate) state: Option<JobState>,
    /// Its deployments, newest first.
    pub(crate) deployments: Vec<std::sync::Arc<Deployment>>,
}

/// The status of a pass that ran its writes: every object with what happened to it, in
/// the spec's order, the failure, and where the rollout stands.
pub(crate) fn summarise_applied(
    apply: &Apply,
    executed: Executed,
    job: &JobAfter,
    previous: Option<&StatusDoc>,
) -> StatusInput {
    let mut objects: Vec<(ObjectRef, ObjectState, Option<String>)> = apply
        .in_sync
        .iter()
        .map(|o| (o.clone(), ObjectState::Synced, None))
        .collect();
    if let Some(message) = &apply.held {
        objects.push((
            apply.job.clone(),
            ObjectState::Pending,
            Some(message.clone()),
        ));
    }
    objects.extend(executed.results);
    objects.sort_by_key(|(o, _, _)| {
        apply
            .order
            .iter()
            .position(|x| x == o)
            .unwrap_or(usize::MAX)
    });
    // Right after our own registration nothing is known of its rollout yet: the last
    // status's availability does not carry over to it.
    let rollout = rollout_after(
        apply.held.as_deref(),
        executed.job_written,
        job.state,
        &job.deployments,
        apply.batch,
        previous.filter(|_| !job.unseen_write),
    );
    // Waited too long for a deployment: say which one (a registration in this very pass
    // starts a new wait).
    let rollout = match rollout {
        Rollout::Pending | Rollout::NoJob if apply.deployment_overdue && !executed.job_written => {
            Rollout::NotSeen(not_seen(&apply.job.name, job.state))
        }
        other => other,
    };
    let mut input = apply.base.clone();
    if let Some(index) = executed.job_index {
        input.job_modify_index = index;
    }
    input.verdict = Verdict::Applied {
        objects,
        failure: executed.failure,
        rollout,
    };
    input
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use steward_render::ObjectRef;

    use super::*;
    use crate::plan::WriteOp;
    use crate::status::ObjectStatus;

    #[test]
    fn nomads_register_warnings_become_one_warning_event() {
        assert_eq!(warnings_event("nomad job web", ""), None);
        let text = "2 warning(s):\n\n* Memory oversubscription is not enabled; Task \"web.app\" memory_max value will be ignored. Update the Scheduler Configuration to allow oversubscription.\n* Group \"web\" has warnings: x";
        let (type_, reason, message) = warnings_event("nomad job web", text).unwrap();
        assert_eq!((type_, reason), (EventType::Warning, "NomadWarning"));
        assert_eq!(
            message,
            "nomad job web accepted with warnings: Memory oversubscription is not enabled; Task \"web.app\" memory_max value will be ignored. Update the Scheduler Configuration to allow oversubscription.; Group \"web\" has warnings: x"
        );
    }

    fn change(path: &str) -> FieldChange {
        FieldChange {
            path: path.into(),
            desired: None,
            live: None,
        }
    }

    fn job_step(kind: StepKind, changes: Vec<FieldChange>) -> Step {
        Step {
            object: ObjectRef {
                kind: ObjectKind::NomadJob,
                name: "web".into(),
            },
            kind,
            op: WriteOp::DeregisterJob {
                namespace: "a".into(),
                id: "web".into(),
                purge: false,
            },
            changes,
        }
    }

    fn synced_status(replicas: u32) -> StatusDoc {
        StatusDoc {
            observed_generation: 3,
            phase: Phase::Synced,
            message: String::new(),
            spec_hash: None,
            replicas: Some(replicas),
            next_scaling_change: None,
            job_modify_index: None,
            conditions: Vec::new(),
            objects: vec![ObjectStatus {
                kind: "nomad-job".into(),
                name: "web".into(),
                state: ObjectState::Synced,
                message: None,
            }],
            diagnostics: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn count_only_changes_are_scaling() {
        assert!(only_count(&[change("TaskGroups[web].Count")]));
        assert!(!only_count(&[
            change("TaskGroups[web].Count"),
            change("Meta")
        ]));
        assert!(!only_count(&[]));
    }

    #[test]
    fn scaling_requeues_just_after_the_boundary() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let next: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(
            scaling_requeue(Some(next), now),
            Some(Action::requeue(Duration::from_millis(60_050)))
        );
        assert_eq!(scaling_requeue(None, now), None);
    }

    #[test]
    fn a_step_on_an_object_that_was_in_sync_is_drift_or_scaling() {
        let prev = synced_status(2);
        let edit = job_step(
            StepKind::Update,
            vec![change("TaskGroups[web].Tasks[main].Config.image")],
        );
        let (type_, reason, message) =
            drift_event(&edit, "nomad-job a/web", Some(&prev), 2).unwrap();
        assert_eq!((type_, reason), (EventType::Warning, "Drift"));
        assert!(message.contains("drifted from the spec"), "{message}");
        let scaled = job_step(StepKind::Update, vec![change("TaskGroups[web].Count")]);
        let (type_, reason, message) =
            drift_event(&scaled, "nomad-job a/web", Some(&prev), 5).unwrap();
        assert_eq!((type_, reason), (EventType::Normal, "Scaled"));
        assert!(message.contains("asks for 5 replicas (was 2)"), "{message}");
        let gone = job_step(StepKind::Create, Vec::new());
        let (_, reason, message) = drift_event(&gone, "nomad-job a/web", Some(&prev), 2).unwrap();
        assert_eq!(reason, "Drift");
        assert!(message.contains("deleted outside Steward"), "{message}");
        // A new generation (no previous status of it) or a deletion is no drift.
        assert_eq!(drift_event(&edit, "x", None, 2), None);
        assert_eq!(
            drift_event(&job_step(StepKind::Delete, Vec::new()), "x", Some(&prev), 2),
            None
        );
    }

    #[test]
    fn writes_are_events_naming_the_fields_and_non_writes_are_not() {
        let step = job_step(StepKind::Update, vec![change("Meta")]);
        let (_, reason, message) =
            applied_event(&step, "nomad-job a/web", ObjectState::Updated).unwrap();
        assert_eq!(reason, "Updated");
        assert!(
            message.starts_with("nomad-job a/web updated: "),
            "{message}"
        );
        assert_eq!(applied_event(&step, "x", ObjectState::Synced), None);
    }

    #[test]
    fn a_running_deployment_is_looked_at_again_within_the_safety_net() {
        assert_eq!(next_action(None, Phase::Synced), Action::await_change());
        assert_eq!(
            next_action(None, Phase::Progressing),
            Action::requeue(PROGRESS_REQUEUE)
        );
        assert_eq!(
            next_action(
                Some(Action::requeue(Duration::from_secs(5))),
                Phase::Progressing
            ),
            Action::requeue(Duration::from_secs(5))
        );
        assert_eq!(
            next_action(
                Some(Action::requeue(Duration::from_secs(500))),
                Phase::Synced
            ),
            Action::requeue(Duration::from_secs(500))
        );
    }

    #[test]
    fn a_failure_the_status_already_reports_is_not_news() {
        let mut s = synced_status(1);
        assert!(!repeated_failure(Some(&s), "boom"));
        s.phase = Phase::Error;
        s.message = "apply failed: vault-policy x: boom".into();
        assert!(repeated_failure(Some(&s), "boom"));
        assert!(!repeated_failure(None, "boom"));
    }

    #[test]
    fn the_rollout_is_held_pending_or_read_from_the_deployments() {
        assert_eq!(
            rollout_after(Some("reverted"), true, None, &[], false, None),
            Rollout::Reverted("reverted".into())
        );
        assert_eq!(
            rollout_after(None, true, None, &[], false, None),
            Rollout::Pending
        );
        assert_eq!(
            rollout_after(None, false, None, &[], false, None),
            Rollout::NoJob
        );
    }
}
