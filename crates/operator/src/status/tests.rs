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
            timed_out: false,
        },
    });
    assert_eq!(doc.phase, Phase::Pending);
    assert!(doc.waiting_for_cache());
    assert!(doc.wait_timeout().is_none(), "a failure is not a timeout");
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

fn waiting(timed_out: bool) -> StatusInput {
    StatusInput {
        generation: 4,
        spec_hash: Some("h".into()),
        replicas: Some(1),
        next_scaling_change: None,
        job_modify_index: None,
        verdict: Verdict::Waiting {
            caches: vec![WaitingFor {
                kind: "nomad-job".into(),
                cache: "nomad-deployments".into(),
                error: None,
            }],
            objects: vec![job()],
            timed_out,
        },
    }
}

#[test]
fn a_cache_that_never_lists_is_a_wait_timeout_naming_the_cache() {
    let quiet = compute(&waiting(false));
    assert!(quiet.wait_timeout().is_none());
    let doc = compute(&waiting(true));
    assert_eq!(doc.phase, Phase::Pending);
    assert!(doc.waiting_for_cache());
    let synced = doc.condition(RESOURCES_SYNCED).unwrap();
    assert_eq!(
        (synced.status, synced.reason.as_str()),
        (ConditionStatus::False, REASON_WAIT_TIMEOUT)
    );
    assert_eq!(
        synced.message,
        "the nomad-deployments cache has not listed nomad-job objects after 60 s (no error from its server)"
    );
    assert_eq!(doc.wait_timeout(), Some(synced));
}

#[test]
fn a_deployment_not_seen_in_time_is_a_wait_timeout_while_progressing() {
    let m = "no deployment of job web version 3 seen after 60 s";
    let doc = compute(&applied(ObjectState::Synced, Rollout::NotSeen(m.into())));
    assert_eq!(doc.phase, Phase::Progressing);
    assert_eq!(doc.message, m);
    let available = doc.condition(AVAILABLE).unwrap();
    assert_eq!(
        (
            available.status,
            available.reason.as_str(),
            available.message.as_str()
        ),
        (ConditionStatus::False, REASON_WAIT_TIMEOUT, m)
    );
    assert_eq!(doc.wait_timeout(), Some(available));
    assert!(!doc.waiting_for_cache());
    let pending = compute(&applied(ObjectState::Synced, Rollout::Pending));
    assert!(pending.wait_timeout().is_none());
}

#[test]
fn a_removed_spec_says_deleting_or_blocked_never_synced() {
    let now = ts("2026-01-01T00:00:00Z");
    let later = ts("2026-01-01T00:05:00Z");
    let synced = finalize(
        compute(&applied(
            ObjectState::Synced,
            Rollout::Available("ok".into()),
        )),
        None,
        &[],
        now,
    );
    assert_eq!(synced.phase, Phase::Synced);
    let blocked = removed(
        Some(&synced),
        &Removal::Blocked {
            message: "garbage collection would remove 7 of 7 specs; approve: steward gc approve --digest abc".into(),
        },
        now,
    );
    assert_eq!(blocked.phase, Phase::Blocked);
    assert!(
        blocked
            .message
            .starts_with("the spec was removed; its objects are kept: "),
        "{}",
        blocked.message
    );
    assert!(
        blocked.message.ends_with("steward gc approve --digest abc"),
        "{}",
        blocked.message
    );
    let cond = blocked.condition(REMOVED).unwrap();
    assert_eq!(
        (cond.status, cond.reason.as_str()),
        (ConditionStatus::True, "MassDeletionBlocked")
    );
    // The rest is as the last reconcile left it.
    assert_eq!(blocked.objects, synced.objects);
    assert_eq!(blocked.observed_generation, synced.observed_generation);
    assert_eq!(blocked.conditions.len(), synced.conditions.len() + 1);
    // The same removal again changes nothing (no rewrite on every pass).
    let again = removed(Some(&blocked), &Removal::Blocked { message: "garbage collection would remove 7 of 7 specs; approve: steward gc approve --digest abc".into() }, later);
    assert!(!needs_write(&again, Some(&blocked)));
    let deleting = removed(
        Some(&blocked),
        &Removal::Deleting {
            objects: 5,
            failure: None,
        },
        later,
    );
    assert_eq!(deleting.phase, Phase::Deleting);
    assert_eq!(
        deleting.message,
        "the spec was removed; garbage collection is deleting its 5 objects"
    );
    let cond = deleting.condition(REMOVED).unwrap();
    assert_eq!(cond.reason, "GarbageCollecting");
    assert_eq!(
        cond.last_transition_time,
        Some(now),
        "still True since it was blocked"
    );
    assert_eq!(
        deleting
            .conditions
            .iter()
            .filter(|c| c.type_ == REMOVED)
            .count(),
        1
    );
    let failed = removed(
        Some(&deleting),
        &Removal::Deleting {
            objects: 1,
            failure: Some("nomad-job web: 500 boom".into()),
        },
        later,
    );
    assert_eq!(failed.phase, Phase::Deleting);
    assert!(
        failed
            .message
            .ends_with("its 1 object: nomad-job web: 500 boom"),
        "{}",
        failed.message
    );
    // A removed key without a status gets one.
    let fresh = removed(
        None,
        &Removal::Deleting {
            objects: 2,
            failure: None,
        },
        now,
    );
    assert_eq!(fresh.phase, Phase::Deleting);
}

mod edge_routes_condition {
    use steward_edge::translate::{ConflictLoss, PathPlan, Rejection, RouteRef};
    use steward_edge::{AckState, SpecVerdict};

    use super::super::*;

    fn route(index: usize) -> RouteRef {
        RouteRef {
            index,
            host: "shop.example.com".into(),
            path: PathPlan::Prefix("/api/".into()),
        }
    }

    fn acks(proxies: usize, acked: usize) -> AckState {
        AckState {
            proxies,
            acked,
            pending: (acked..proxies).map(|i| format!("edge-{i}")).collect(),
        }
    }

    #[test]
    fn a_lost_conflict_is_false_and_names_the_winner() {
        let v = SpecVerdict {
            conflicts: vec![ConflictLoss {
                route: route(1),
                winner: "shop/older".into(),
            }],
            ..SpecVerdict::default()
        };
        let c = edge_routes(&v, &acks(1, 1), None);
        assert_eq!(c.status, ConditionStatus::False);
        assert_eq!(c.reason, REASON_EDGE_CONFLICT);
        assert!(c.message.contains("edge.routes[1]"), "{}", c.message);
        assert!(c.message.contains("shop/older"), "{}", c.message);
    }

    #[test]
    fn a_rejected_route_is_false_with_the_reason() {
        let v = SpecVerdict {
            rejected: vec![Rejection {
                route: route(0),
                reason: "Envoy edge-1 refused the route: bad".into(),
            }],
            ..SpecVerdict::default()
        };
        let c = edge_routes(&v, &acks(1, 1), None);
        assert_eq!(c.status, ConditionStatus::False);
        assert_eq!(c.reason, "EdgeRouteRejected");
        assert!(c.message.contains("refused the route: bad"));
    }

    #[test]
    fn serving_is_unknown_until_every_envoy_acked_then_true() {
        let v = SpecVerdict {
            serving: vec![route(0)],
            ..SpecVerdict::default()
        };
        let pushing = edge_routes(&v, &acks(2, 1), None);
        assert_eq!(pushing.status, ConditionStatus::Unknown);
        assert!(pushing.message.contains("1 of 2"), "{}", pushing.message);
        assert!(pushing.message.contains("edge-1"), "{}", pushing.message);
        let done = edge_routes(&v, &acks(2, 2), Some("Consul lacks http-route"));
        assert_eq!(done.status, ConditionStatus::True);
        assert_eq!(done.reason, "Serving");
        assert!(done.message.contains("Consul lacks http-route"));
        // The routes are named, for `steward status ns/name`.
        assert!(
            done.message
                .starts_with("1 route(s) (shop.example.com pathPrefix /api/)"),
            "{}",
            done.message
        );
    }
}
