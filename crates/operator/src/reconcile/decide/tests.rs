#![allow(clippy::unwrap_used)]

use steward_hashi::nomad::Job;
use steward_render::{RenderContext, render};

use super::*;
use crate::objects::test_support::{self, WEB, at, entry};
use crate::plan::{LiveObject, WriteOp};
use crate::status::{ObjectState, ObjectStatus, Phase, Rollout};

fn desired() -> Arc<Desired> {
    let loaded = steward_spec::load("t.yaml", WEB, None);
    let spec = loaded.spec.unwrap();
    Arc::new(render(&spec, &RenderContext::default()).unwrap())
}

fn key() -> SpecKey {
    SpecKey::new("shop", "web")
}

fn job_of(d: &Desired, version: u64, modify_index: u64) -> Arc<Job> {
    let mut value = d.nomad_job.job.clone();
    value["Version"] = version.into();
    value["JobModifyIndex"] = modify_index.into();
    Arc::new(Job::from_value(value).unwrap())
}

/// Everything exactly as desired (as if the server echoed our writes).
fn converged(d: &Desired) -> Live {
    test_support::converged(d, job_of(d, 0, 42))
}

fn set_job(live: &mut Live, job: Arc<Job>) {
    live.insert(at(ObjectKind::NomadJob, "web"), LiveObject::Job(job));
}

fn facts(live: Live) -> Facts {
    facts_with(Gathered::Live(live, BTreeSet::new()))
}

fn facts_with(gathered: Gathered) -> Facts {
    Facts {
        generation: 3,
        stored: None,
        now: jiff::Timestamp::UNIX_EPOCH,
        wait: None,
        clock: tokio::time::Instant::now(),
        spec: SpecFacts::Rendered(Box::new(RenderedFacts {
            key: key(),
            desired: desired(),
            replicas: 1,
            next_change: None,
            batch: false,
            gathered,
            read_first: BTreeSet::from([ObjectKind::VaultPolicy, ObjectKind::VaultRole]),
            jwt_mount: "jwt-nomad".to_owned(),
            deployments: Vec::new(),
            version_hashes: Vec::new(),
            checked: Checked::default(),
        })),
    }
}

fn rendered(f: &mut Facts) -> &mut RenderedFacts {
    match &mut f.spec {
        SpecFacts::Rendered(r) => r,
        SpecFacts::Invalid(..) => panic!("not rendered"),
    }
}

fn outcome(f: &Facts) -> Outcome {
    match decide(f) {
        Decision::Outcome(o) => o,
        Decision::Read(r) => panic!("asked to read {r:?}"),
    }
}

fn apply(f: &Facts) -> Apply {
    match outcome(f) {
        Outcome::Apply(a) => *a,
        other => panic!("expected writes, got {other:?}"),
    }
}

fn kinds(a: &Apply) -> Vec<(ObjectKind, StepKind)> {
    a.writes
        .iter()
        .map(|w| (w.step.object.kind, w.step.kind))
        .collect()
}

#[test]
fn an_invalid_spec_writes_only_its_status_and_waits_for_a_change() {
    let f = Facts {
        generation: 2,
        stored: None,
        now: jiff::Timestamp::UNIX_EPOCH,
        wait: None,
        clock: tokio::time::Instant::now(),
        spec: SpecFacts::Invalid("bad".to_owned(), Vec::new()),
    };
    let Outcome::Status(input, action) = outcome(&f) else {
        panic!("expected a status");
    };
    assert!(matches!(input.verdict, Verdict::Invalid { .. }));
    assert_eq!(input.generation, 2);
    assert_eq!(action, Action::await_change());
}

#[test]
fn a_new_spec_reads_its_vault_objects_first_then_creates_everything_in_order() {
    let mut f = facts(Live::default());
    // Vault has no check-and-set and its names are polled: both are checked first;
    // the Consul entries and the job are created with CAS 0, unread.
    let Decision::Read(Read::Absent(steps)) = decide(&f) else {
        panic!("expected a check read");
    };
    let checked: Vec<ObjectKind> = steps.iter().map(|s| s.object.kind).collect();
    assert_eq!(
        checked,
        vec![ObjectKind::VaultPolicy, ObjectKind::VaultRole]
    );

    rendered(&mut f).checked.found = Some(Vec::new());
    let a = apply(&f);
    assert_eq!(
        kinds(&a),
        vec![
            (ObjectKind::VaultPolicy, StepKind::Create),
            (ObjectKind::VaultRole, StepKind::Create),
            (ObjectKind::ServiceDefaults, StepKind::Create),
            (ObjectKind::ServiceIntentions, StepKind::Create),
            (ObjectKind::NomadJob, StepKind::Create),
            (ObjectKind::HttpRoute, StepKind::Create),
        ]
    );
    assert!(a.writes.iter().all(|w| w.drift.is_none()));
    assert_eq!(a.base.job_modify_index, None);
    assert_eq!(a.writes[4].object, "nomad-job shop/web");
}

#[test]
fn a_stale_cache_makes_its_creations_read_first() {
    let mut f = facts(Live::default());
    rendered(&mut f).read_first.insert(ObjectKind::NomadJob);
    let Decision::Read(Read::Absent(steps)) = decide(&f) else {
        panic!("expected a check read");
    };
    assert!(steps.iter().any(|s| s.object.kind == ObjectKind::NomadJob));
    assert!(
        !steps
            .iter()
            .any(|s| s.object.kind == ObjectKind::ServiceDefaults)
    );
}

#[test]
fn a_checked_creation_found_foreign_is_a_conflict_and_found_ours_waits_for_the_watch() {
    let mut f = facts(Live::default());
    let policy = ObjectRef {
        kind: ObjectKind::VaultPolicy,
        name: desired().vault_policy.as_ref().unwrap().name.clone(),
    };
    rendered(&mut f).checked.found = Some(vec![(policy.clone(), None)]);
    let Outcome::Status(input, action) = outcome(&f) else {
        panic!("expected a status");
    };
    let Verdict::Conflict { conflicts, .. } = &input.verdict else {
        panic!("expected a conflict");
    };
    assert_eq!(conflicts[0].0, policy);
    assert!(conflicts[0].1.contains("not managed by Steward"));
    assert_eq!(action, Action::requeue(PREFLIGHT_REQUEUE));

    rendered(&mut f).checked.found = Some(vec![(policy, Some(key()))]);
    assert_eq!(outcome(&f), Outcome::Requeue(SHORT_REQUEUE));
}

#[test]
fn a_converged_spec_writes_nothing_and_records_the_jobs_index() {
    let d = desired();
    let a = apply(&facts(converged(&d)));
    assert!(a.writes.is_empty(), "{:?}", kinds(&a));
    assert_eq!(a.in_sync.len(), 6);
    assert_eq!(a.base.job_modify_index, Some(42));
    assert!(a.held.is_none());
}

#[test]
fn an_object_owned_elsewhere_stops_every_write() {
    let d = desired();
    let mut live = converged(&d);
    let sd = at(
        ObjectKind::ServiceDefaults,
        &d.service_defaults.as_ref().unwrap().name,
    );
    let Some(LiveObject::Entry(e)) = live.get(&sd) else {
        panic!("no service-defaults");
    };
    let mut body = (*e.body).clone();
    body["Meta"] =
        serde_json::json!({"steward.managed-by": "steward", "steward.spec": "other/svc"});
    live.insert(sd, entry(&body, 10));
    let Outcome::Status(input, action) = outcome(&facts(live)) else {
        panic!("expected a status");
    };
    let Verdict::Conflict { conflicts, objects } = &input.verdict else {
        panic!("expected a conflict");
    };
    assert_eq!(conflicts.len(), 1);
    assert!(conflicts[0].1.contains("other/svc"), "{}", conflicts[0].1);
    assert_eq!(objects.len(), 6);
    assert_eq!(action, Action::await_change());
}

#[test]
fn a_cache_on_its_first_listing_requeues_quietly_and_a_failing_one_says_so() {
    let unsynced = |error: Option<&str>| {
        Gathered::Waiting(vec![Unsynced {
            kind: ObjectKind::HttpRoute,
            cache: "http-route",
            error: error.map(str::to_owned),
        }])
    };
    assert_eq!(
        outcome(&facts_with(unsynced(None))),
        Outcome::Requeue(SYNC_REQUEUE)
    );
    let Outcome::Status(input, action) = outcome(&facts_with(unsynced(Some("500 nope")))) else {
        panic!("expected a status");
    };
    let Verdict::Waiting { caches, .. } = &input.verdict else {
        panic!("expected waiting");
    };
    assert_eq!(caches[0].kind, "http-route");
    assert_eq!(caches[0].error.as_deref(), Some("500 nope"));
    assert_eq!(action, Action::requeue(UNSYNCED_REQUEUE));
    assert_eq!(
        outcome(&facts_with(Gathered::WaitForWatch)),
        Outcome::Requeue(SHORT_REQUEUE)
    );
}

#[test]
fn a_write_the_watch_has_not_shown_holds_the_next_write_of_that_object() {
    let d = desired();
    let mut live = converged(&d);
    let mut changed = (*job_of(&d, 0, 42)).clone();
    changed.raw["TaskGroups"][0]["Count"] = 7.into();
    set_job(&mut live, Arc::new(Job::from_value(changed.raw).unwrap()));
    let job = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: "web".to_owned(),
    };
    let f = facts_with(Gathered::Live(live.clone(), BTreeSet::from([job])));
    assert_eq!(outcome(&f), Outcome::Requeue(SHORT_REQUEUE));
    // Not pending: the job is updated.
    let a = apply(&facts(live));
    assert_eq!(kinds(&a), vec![(ObjectKind::NomadJob, StepKind::Update)]);
}

fn deployment(version: u64, status: &str, create_index: u64) -> Arc<Deployment> {
    Arc::new(Deployment {
        id: format!("d{version}-0000"),
        job_version: version,
        status: status.to_owned(),
        create_index,
        ..Deployment::default()
    })
}

/// The live job runs version 1 (an older rendering); version 2 (the spec's) failed.
fn reverted_facts() -> Facts {
    let d = desired();
    let mut live = converged(&d);
    let mut old = d.nomad_job.job.clone();
    old["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = "registry.example/web:0.9".into();
    old["Meta"]["steward.hash"] = "old".into();
    old["Version"] = 1.into();
    old["JobModifyIndex"] = 50.into();
    set_job(&mut live, Arc::new(Job::from_value(old).unwrap()));
    let mut f = facts(live);
    let r = rendered(&mut f);
    r.deployments = vec![deployment(2, "failed", 20), deployment(1, "successful", 10)];
    f
}

#[test]
fn a_reverted_version_is_not_registered_again() {
    let mut f = reverted_facts();
    assert_eq!(decide(&f), Decision::Read(Read::JobVersions));
    let hash = desired().hash.clone();
    let r = rendered(&mut f);
    r.checked.versions = true;
    r.version_hashes = vec![(1, Some("old".to_owned())), (2, Some(hash))];
    let a = apply(&f);
    assert!(a.writes.is_empty(), "{:?}", kinds(&a));
    assert!(a.held.as_deref().unwrap().contains("failed"));
}

#[test]
fn versions_nomad_no_longer_keeps_do_not_hold_the_update() {
    let mut f = reverted_facts();
    let r = rendered(&mut f);
    r.checked.versions = true;
    r.version_hashes = vec![(2, None)];
    let a = apply(&f);
    assert_eq!(kinds(&a), vec![(ObjectKind::NomadJob, StepKind::Update)]);
    assert!(a.held.is_none());
}

#[test]
fn a_job_written_by_others_without_a_known_failure_asks_nomad_for_the_latest_deployment() {
    let mut f = reverted_facts();
    rendered(&mut f).deployments.clear();
    f.stored = Some(Arc::new(StatusDoc {
        observed_generation: 3,
        phase: Phase::Synced,
        message: String::new(),
        spec_hash: None,
        replicas: Some(1),
        next_scaling_change: None,
        job_modify_index: Some(49),
        conditions: Vec::new(),
        objects: vec![ObjectStatus {
            kind: "nomad-job".into(),
            name: "web".into(),
            state: ObjectState::Synced,
            message: None,
        }],
        events: Vec::new(),
        diagnostics: Vec::new(),
    }));
    assert_eq!(decide(&f), Decision::Read(Read::LatestDeployment));
    rendered(&mut f).checked.latest_deployment = true;
    // Still no failure known: the update goes ahead, reported as drift.
    let a = apply(&f);
    assert_eq!(kinds(&a), vec![(ObjectKind::NomadJob, StepKind::Update)]);
    let (_, reason, message) = a.writes[0].drift.clone().unwrap();
    assert_eq!(reason, "Drift");
    assert!(message.contains("nomad-job shop/web"), "{message}");
}

#[test]
fn with_every_read_answered_decide_never_asks_again() {
    for mut f in [facts(Live::default()), reverted_facts()] {
        let r = rendered(&mut f);
        r.checked = Checked {
            found: Some(Vec::new()),
            latest_deployment: true,
            versions: true,
        };
        r.read_first = ObjectKind::APPLY_ORDER.into_iter().collect();
        assert!(matches!(decide(&f), Decision::Outcome(_)));
    }
}

#[test]
fn the_applied_status_lists_objects_in_spec_order_with_the_failure() {
    let d = desired();
    let live = converged(&d);
    let si = at(
        ObjectKind::ServiceIntentions,
        &d.service_intentions.as_ref().unwrap().name,
    );
    let mut without = Live::default();
    for kind in ObjectKind::APPLY_ORDER {
        for (name, l) in live.of_kind(kind) {
            if kind != ObjectKind::ServiceIntentions {
                without.insert(at(kind, name), l.clone());
            }
        }
    }
    let live = without;
    let a = apply(&facts(live));
    assert_eq!(
        kinds(&a),
        vec![(ObjectKind::ServiceIntentions, StepKind::Create)]
    );
    assert_eq!(a.writes[0].step.object, si);
    let executed = super::super::outcome::Executed {
        results: vec![(si.clone(), ObjectState::Error, Some("boom".to_owned()))],
        failure: Some("boom".to_owned()),
        job_index: None,
        job_written: false,
    };
    let job = super::super::outcome::JobAfter::default();
    let input = super::super::outcome::summarise_applied(&a, executed, &job, None);
    let Verdict::Applied {
        objects,
        failure,
        rollout,
    } = &input.verdict
    else {
        panic!("expected applied");
    };
    let order: Vec<ObjectKind> = objects.iter().map(|(o, _, _)| o.kind).collect();
    assert_eq!(order, ObjectKind::APPLY_ORDER.to_vec());
    assert_eq!(
        objects[3],
        (si, ObjectState::Error, Some("boom".to_owned()))
    );
    assert_eq!(failure.as_deref(), Some("boom"));
    assert_eq!(*rollout, Rollout::NoJob);
    assert_eq!(input.job_modify_index, Some(42));
    // Unused here, but the writes' op says what a create is.
    assert!(matches!(
        a.writes[0].step.op,
        WriteOp::PutEntry { cas: 0, .. }
    ));
}

/// `f` having waited `waited` for `kind` at its generation.
fn waited(mut f: Facts, kind: WaitKind, waited: Duration) -> Facts {
    f.wait = Some(WaitStart {
        kind,
        since: f.clock,
    });
    f.clock += waited;
    f
}

#[test]
fn a_cache_that_has_not_listed_for_the_wait_timeout_is_named_in_the_status() {
    let quiet = || {
        facts_with(Gathered::Waiting(vec![Unsynced {
            kind: ObjectKind::NomadJob,
            cache: "nomad-deployments",
            error: None,
        }]))
    };
    let just_before = waited(
        quiet(),
        WaitKind::Cache,
        status::WAIT_TIMEOUT - Duration::from_millis(1),
    );
    assert_eq!(outcome(&just_before), Outcome::Requeue(SYNC_REQUEUE));
    // Waiting for something else (a deployment, before the caches went) does not count.
    let other = waited(quiet(), WaitKind::Deployment, status::WAIT_TIMEOUT);
    assert_eq!(outcome(&other), Outcome::Requeue(SYNC_REQUEUE));
    let Outcome::Status(input, action) =
        outcome(&waited(quiet(), WaitKind::Cache, status::WAIT_TIMEOUT))
    else {
        panic!("expected a status");
    };
    let Verdict::Waiting {
        caches, timed_out, ..
    } = &input.verdict
    else {
        panic!("expected waiting");
    };
    assert!(*timed_out);
    assert_eq!(caches[0].cache, "nomad-deployments");
    assert_eq!(action, Action::requeue(UNSYNCED_REQUEUE));
    let doc = status::compute(&input);
    let synced = doc.wait_timeout().unwrap();
    assert!(
        synced
            .message
            .contains("nomad-deployments cache has not listed"),
        "{}",
        synced.message
    );
}

#[test]
fn a_deployment_not_seen_for_the_wait_timeout_is_named_in_the_status() {
    use super::super::outcome::{Executed, JobAfter, summarise_applied};
    use crate::rollout::JobState;
    let d = desired();
    // Converged, registered, and no deployment of version 4 seen.
    let job = JobAfter {
        unseen_write: false,
        state: Some(JobState {
            job_modify_index: 42,
            version: Some(4),
            stable: false,
            stop: false,
        }),
        deployments: Vec::new(),
    };
    let summarise = |f: &Facts, executed: Executed| {
        let a = apply(f);
        summarise_applied(&a, executed, &job, None)
    };
    let rollout_of = |input: &StatusInput| match &input.verdict {
        Verdict::Applied { rollout, .. } => rollout.clone(),
        other => panic!("expected applied, got {other:?}"),
    };
    let early = waited(
        facts(converged(&d)),
        WaitKind::Deployment,
        Duration::from_secs(59),
    );
    assert!(!apply(&early).deployment_overdue);
    assert_eq!(
        rollout_of(&summarise(&early, Executed::default())),
        Rollout::Pending
    );
    let late = waited(
        facts(converged(&d)),
        WaitKind::Deployment,
        status::WAIT_TIMEOUT,
    );
    assert!(apply(&late).deployment_overdue);
    assert_eq!(
        rollout_of(&summarise(&late, Executed::default())),
        Rollout::NotSeen("no deployment of job web version 4 seen after 60 s".into())
    );
    // Registered again in this very pass: a new wait begins.
    let registered = Executed {
        job_written: true,
        ..Executed::default()
    };
    assert_eq!(rollout_of(&summarise(&late, registered)), Rollout::Pending);
    // A cache wait's start says nothing of the deployment.
    let cache = waited(facts(converged(&d)), WaitKind::Cache, status::WAIT_TIMEOUT);
    assert!(!apply(&cache).deployment_overdue);
}
