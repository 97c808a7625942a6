#![allow(clippy::unwrap_used)]

use steward_render::ObjectKind;

use super::*;

fn job() -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::NomadJob,
        name: "web".into(),
    }
}

fn applied(state: ObjectState, rollout: Rollout) -> StatusInput {
    StatusInput {
        generation: 7,
        spec_hash: Some("h".into()),
        replicas: Some(2),
        next_scaling_change: None,
        job_modify_index: Some(5),
        verdict: Verdict::Applied {
            objects: vec![(job(), state, None)],
            failure: None,
            rollout,
        },
    }
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn phases_follow_the_rollout() {
    let cases = [
        (Rollout::Available("ok".into()), Phase::Synced),
        (Rollout::Batch, Phase::Synced),
        (Rollout::Running("2/3".into()), Phase::Progressing),
        (Rollout::Pending, Phase::Progressing),
        (Rollout::Failed("bad".into()), Phase::Degraded),
        (Rollout::Reverted("reverted".into()), Phase::Degraded),
    ];
    for (rollout, phase) in cases {
        let doc = compute(&applied(ObjectState::Synced, rollout.clone()));
        assert_eq!(doc.phase, phase, "{rollout:?}");
        assert_eq!(doc.conditions.len(), 4);
    }
    let reverted = compute(&applied(
        ObjectState::Synced,
        Rollout::Reverted("rolled back to version 0".into()),
    ));
    let degraded = reverted.condition(DEGRADED).unwrap();
    assert_eq!(
        (degraded.status, degraded.reason.as_str()),
        (ConditionStatus::True, "AutoReverted")
    );
}

#[test]
fn a_spec_held_by_a_cache_names_the_kind_and_the_server_answer() {
    let route = ObjectRef {
        kind: ObjectKind::HttpRoute,
        name: "a-web".into(),
    };
    let doc = compute(&StatusInput {
        generation: 4,
        spec_hash: Some("h".into()),
        replicas: Some(1),
        next_scaling_change: None,
        job_modify_index: None,
        verdict: Verdict::Waiting {
            caches: vec![WaitingFor {
                kind: "http-route".into(),
                cache: "http-route".into(),
                error: Some(
                    "consul: 500 Internal Server Error: invalid config entry kind: http-route"
                        .into(),
                ),
            }],
            objects: vec![job(), route],
        },
    });
    assert_eq!(doc.phase, Phase::Pending);
    assert!(doc.waiting_for_cache());
    let synced = doc.condition(RESOURCES_SYNCED).unwrap();
    assert_eq!(synced.status, ConditionStatus::Unknown);
    assert_eq!(synced.reason, REASON_CACHE_UNAVAILABLE);
    assert!(
        synced
            .message
            .contains("invalid config entry kind: http-route"),
        "{}",
        synced.message
    );
    assert!(doc.message.contains("http-route"), "{}", doc.message);
    assert!(doc.objects.iter().all(|o| o.state == ObjectState::Pending));
    assert_eq!(doc.objects.len(), 2);
    // An applied spec is not waiting.
    let applied = compute(&applied(ObjectState::Synced, Rollout::Batch));
    assert!(!applied.waiting_for_cache());
}

#[test]
fn a_failed_step_is_phase_error_whatever_the_rollout() {
    let mut input = applied(ObjectState::Error, Rollout::Available("ok".into()));
    if let Verdict::Applied { failure, .. } = &mut input.verdict {
        *failure = Some("consul said no".into());
    }
    let doc = compute(&input);
    assert_eq!(doc.phase, Phase::Error);
    assert_eq!(
        doc.condition(RESOURCES_SYNCED).unwrap().message,
        "consul said no"
    );
}

#[test]
fn invalid_and_conflict_keep_their_details() {
    let doc = compute(&StatusInput {
        generation: 3,
        spec_hash: None,
        replicas: None,
        next_scaling_change: None,
        job_modify_index: None,
        verdict: Verdict::Invalid {
            message: "1 error".into(),
            diagnostics: vec![DiagnosticDoc {
                line: 4,
                column: 3,
                path: "spec.imagee".into(),
                message: "unknown field".into(),
                severity: "error".into(),
                code: "unknown-field".into(),
            }],
        },
    });
    assert_eq!(doc.phase, Phase::Invalid);
    assert_eq!(doc.diagnostics[0].line, 4);
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(v["diagnostics"][0]["column"], 3);
    assert_eq!(v["conditions"][0]["type"], "Accepted");
    assert_eq!(v["conditions"][0]["status"], "False");

    let doc = compute(&StatusInput {
        generation: 3,
        spec_hash: Some("h".into()),
        replicas: Some(1),
        next_scaling_change: None,
        job_modify_index: None,
        verdict: Verdict::Conflict {
            conflicts: vec![(job(), "owned by nobody (created by hand)".into())],
            objects: vec![job()],
        },
    });
    assert_eq!(doc.phase, Phase::Conflict);
    assert_eq!(doc.objects[0].state, ObjectState::Conflict);
    assert!(doc.message.contains("created by hand"));
}

#[test]
fn an_unchanged_status_needs_no_write_and_keeps_its_times() {
    let first = finalize(
        compute(&applied(
            ObjectState::Created,
            Rollout::Available("ok".into()),
        )),
        None,
        &[],
        ts("2026-01-01T00:00:00Z"),
    );
    // The next pass finds the object in sync: same generation keeps `Created`.
    let second = finalize(
        compute(&applied(
            ObjectState::Synced,
            Rollout::Available("ok".into()),
        )),
        Some(&first),
        &[],
        ts("2026-01-01T00:05:00Z"),
    );
    assert!(!needs_write(&second, Some(&first)));
    assert_eq!(second.objects[0].state, ObjectState::Created);
    assert_eq!(
        second.conditions[0].last_transition_time,
        Some(ts("2026-01-01T00:00:00Z"))
    );
    // A status change moves the transition time of that condition only.
    let third = finalize(
        compute(&applied(
            ObjectState::Synced,
            Rollout::Failed("boom".into()),
        )),
        Some(&second),
        &[],
        ts("2026-01-01T00:10:00Z"),
    );
    assert!(needs_write(&third, Some(&second)));
    assert_eq!(
        third.condition(AVAILABLE).unwrap().last_transition_time,
        Some(ts("2026-01-01T00:10:00Z"))
    );
    assert_eq!(
        third.condition(ACCEPTED).unwrap().last_transition_time,
        Some(ts("2026-01-01T00:00:00Z"))
    );
}

#[test]
fn a_new_generation_resets_object_states_and_events_are_capped() {
    let first = finalize(
        compute(&applied(ObjectState::Updated, Rollout::Batch)),
        None,
        &[],
        ts("2026-01-01T00:00:00Z"),
    );
    let mut next = applied(ObjectState::Synced, Rollout::Batch);
    next.generation = 8;
    let events: Vec<EventDoc> = (0..15)
        .map(|i| EventDoc {
            time: ts("2026-01-01T00:00:00Z"),
            type_: "Normal".into(),
            reason: format!("E{i}"),
            message: String::new(),
            object: None,
        })
        .collect();
    let second = finalize(
        compute(&next),
        Some(&first),
        &events,
        ts("2026-01-02T00:00:00Z"),
    );
    assert_eq!(second.objects[0].state, ObjectState::Synced);
    assert_eq!(second.events.len(), STATUS_EVENTS);
    assert_eq!(second.events[0].reason, "E5");
    assert_eq!(second.events[9].reason, "E14");
}

#[test]
fn documents_round_trip_through_json() {
    let doc = finalize(
        compute(&applied(
            ObjectState::Created,
            Rollout::Running("1/2 healthy".into()),
        )),
        None,
        &[],
        ts("2026-01-01T00:00:00Z"),
    );
    let text = serde_json::to_string(&doc).unwrap();
    let back: StatusDoc = serde_json::from_str(&text).unwrap();
    assert_eq!(back, doc);
    assert!(text.contains("\"observedGeneration\":7"));
    assert!(text.contains("\"phase\":\"Progressing\""));
}
