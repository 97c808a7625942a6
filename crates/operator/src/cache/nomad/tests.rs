#![allow(clippy::unwrap_used)]

use serde_json::json;
use steward_hashi::nomad::Event as NomadEvent;

use super::*;

fn stub(ns: &str, id: &str, jmi: u64, owner: Option<&str>) -> JobStub {
    JobStub {
        id: id.into(),
        namespace: ns.into(),
        job_modify_index: jmi,
        modify_index: jmi,
        owner: owner.map(str::to_owned),
        ..JobStub::default()
    }
}

fn job(ns: &str, id: &str, jmi: u64) -> Value {
    json!({"ID": id, "Namespace": ns, "JobModifyIndex": jmi, "ModifyIndex": jmi,
           "Meta": {"steward.managed-by": "steward", "steward.spec": format!("{ns}/{id}")}})
}

#[test]
fn facts_of_bodies_are_used_only_at_the_listed_version() {
    let cache = NomadCache::new();
    let (changes, mut rx) = Changes::channel();
    cache.apply_list(
        &Event::Restarted(vec![("a/web".into(), stub("a", "web", 10, Some("a/web")))]),
        &changes,
    );
    assert_eq!(
        rx.try_recv(),
        Some(Change::Replaced {
            source: Source::NomadJobList,
            owners: vec!["a/web".into()]
        })
    );
    assert!(matches!(cache.job("a/web"), CachedJob::Listed(_)));
    assert_eq!(cache.job_state("a/web"), None, "no body seen yet");
    let mut body = job("a", "web", 10);
    body["Version"] = json!(3);
    body["Stable"] = json!(true);
    body["Meta"]["steward.hash"] = json!("h3");
    let frame = EventFrame {
        index: 11,
        events: vec![NomadEvent {
            topic: "Job".into(),
            event_type: "JobRegistered".into(),
            key: "web".into(),
            namespace: "a".into(),
            index: 11,
            payload: steward_hashi::nomad::Payload::from_value(&json!({"Job": body})),
        }],
    };
    cache.apply_frame(&frame, &changes);
    assert_eq!(
        rx.try_recv(),
        Some(Change::object(
            Source::NomadJobEvent,
            ObjectChange::new("a/web", None, Some("a/web"))
        )),
        "the job is published with its owner"
    );
    let state = cache.job_state("a/web").unwrap();
    assert_eq!(
        (state.job_modify_index, state.version, state.stable),
        (10, Some(3), true)
    );
    assert_eq!(cache.version_hash("a/web", 3), Some(Some("h3".to_owned())));
    assert_eq!(cache.owned(), vec![("a/web".into(), "a/web".into(), false)]);
    // The list moves on: the facts are stale until a newer body arrives.
    cache.apply_list(
        &Event::Applied("a/web".into(), stub("a", "web", 12, Some("a/web"))),
        &changes,
    );
    assert_eq!(cache.job_state("a/web"), None);
    // Older facts never replace newer ones.
    cache.store_body(&Job::from_value(job("a", "web", 12)).unwrap());
    cache.store_body(&Job::from_value(job("a", "web", 10)).unwrap());
    assert_eq!(cache.job_state("a/web").unwrap().job_modify_index, 12);
    cache.apply_list(&Event::Deleted("a/web".into()), &changes);
    assert!(matches!(cache.job("a/web"), CachedJob::Absent));
    assert_eq!(
        cache.version_hash("a/web", 3),
        None,
        "forgotten with the job"
    );
}

#[test]
fn our_registration_shows_until_the_list_catches_up() {
    let cache = NomadCache::new();
    let (changes, _rx) = Changes::channel();
    cache.apply_list(&Event::Restarted(vec![]), &changes);
    let mine = WrittenJob {
        state: JobState {
            job_modify_index: 5,
            version: None,
            stable: false,
            stop: false,
        },
        digest: steward_render::value_digest(&job("a", "web", 0)),
    };
    cache.record_write("a/web", None, Some(mine));
    assert!(matches!(cache.job("a/web"), CachedJob::Written(w) if w == mine));
    cache.apply_list(
        &Event::Applied("a/web".into(), stub("a", "web", 5, Some("a/web"))),
        &changes,
    );
    assert!(matches!(cache.job("a/web"), CachedJob::Listed(_)));
}

#[test]
fn deployments_keep_the_newest_per_job() {
    let cache = NomadCache::new();
    let (changes, _rx) = Changes::channel();
    let dep = |id: &str, create: u64, modify: u64, status: &str| Deployment {
        id: id.into(),
        namespace: "a".into(),
        job_id: "web".into(),
        create_index: create,
        modify_index: modify,
        status: status.into(),
        ..Deployment::default()
    };
    cache.replace_deployments(
        (1..=6)
            .map(|i| dep(&format!("d{i}"), i, i, "successful"))
            .collect(),
        &changes,
    );
    let got = cache.deployments("a/web");
    assert_eq!(got.len(), DEPLOYMENTS_PER_JOB);
    assert_eq!(got[0].id, "d6");
    cache.upsert_deployment("a/web", dep("d7", 7, 7, "running"));
    cache.upsert_deployment("a/web", dep("d7", 7, 9, "successful"));
    cache.upsert_deployment("a/web", dep("d7", 7, 8, "running"));
    let got = cache.deployments("a/web");
    assert_eq!(
        (got[0].id.as_str(), got[0].status.as_str()),
        ("d7", "successful")
    );
}

/// The job list source the operator watches, under the runtime's watcher, against the
/// simulator: a fresh Nomad (index 0) is not polled in a loop, and jobs come and go
/// with their ownership `Meta`. (It replaces the runtime's own Nomad job source, which
/// the operator never used.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_watch_does_not_spin_on_a_fresh_server_and_follows_jobs() {
    use futures::StreamExt as _;
    use steward_hashi::nomad::RegisterOptions;
    use steward_hashi::{NomadConfig, WriteOptions};
    use steward_sim::{Product, Sim, SimConfig};

    async fn next_matching<S>(
        stream: &mut S,
        pred: impl Fn(&Event<String, JobStub>) -> bool,
    ) -> Event<String, JobStub>
    where
        S: futures::Stream<Item = Event<String, JobStub>> + Unpin,
    {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let e = stream.next().await.expect("watchers never end");
                if pred(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("the expected event within the bound")
    }

    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let nomad = NomadClient::new(
        NomadConfig::default()
            .with_address(&sim.nomad_url())
            .unwrap(),
    )
    .unwrap();
    let source = JobListSource::new(nomad.clone(), Duration::from_secs(1));
    let mut events = Box::pin(watcher(source, WatcherConfig::default()));
    let first = next_matching(&mut events, |_| true).await;
    assert!(
        matches!(&first, Event::Restarted(v) if v.is_empty()),
        "{first:?}"
    );

    // Idle for 3 s: a watcher spinning on index 0 would make hundreds of calls.
    let before = sim.stats().count(Product::Nomad, "GET", "/v1/jobs");
    let idle = tokio::time::timeout(Duration::from_secs(3), events.next()).await;
    assert!(idle.is_err(), "no event without a change: {idle:?}");
    let calls = sim.stats().count(Product::Nomad, "GET", "/v1/jobs") - before;
    assert!(calls <= 6, "{calls} list calls in 3 s");

    let body = json!({
        "ID": "web", "Name": "web", "Namespace": "default", "Type": "service",
        "Datacenters": ["dc1"],
        "Meta": {"steward.managed-by": "steward", "steward.spec": "default/web"},
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": "nginx:1"},
                       "Resources": {"CPU": 100, "MemoryMB": 128}}]
        }]
    });
    nomad
        .register_job(&body, &RegisterOptions::default())
        .await
        .unwrap();
    let e = next_matching(&mut events, |e| matches!(e, Event::Applied(..))).await;
    let Event::Applied(key, stub) = e else {
        unreachable!()
    };
    assert_eq!(key, "default/web");
    assert_eq!(
        stub_owner(&stub).as_deref(),
        Some("default/web"),
        "listed with meta=true"
    );
    nomad
        .deregister_job("web", true, &WriteOptions::new())
        .await
        .unwrap();
    let e = next_matching(&mut events, |e| matches!(e, Event::Deleted(_))).await;
    assert!(
        matches!(&e, Event::Deleted(k) if k == "default/web"),
        "{e:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}

#[test]
fn list_stubs_keep_only_the_owner_of_their_meta() {
    let stubs: Vec<JobStub> = serde_json::from_value(json!([
        {"ID": "web", "Namespace": "a", "JobModifyIndex": 7,
         "Meta": {"other": "x", "steward.managed-by": "steward", "steward.spec": "a/web"}},
        {"ID": "hand", "Namespace": "a", "Meta": {"steward.spec": "a/hand"}},
        {"ID": "foreign", "Namespace": "a",
         "Meta": {"steward.managed-by": "someone", "steward.spec": "a/foreign"}},
        {"ID": "bad", "Namespace": "a",
         "Meta": {"steward.managed-by": "steward", "steward.spec": "not a key"}},
        {"ID": "null", "Namespace": "a", "Meta": null},
        {"ID": "none", "Namespace": "a"},
    ]))
    .unwrap();
    let owners: Vec<Option<String>> = stubs.iter().map(stub_owner).collect();
    assert_eq!(
        owners,
        [Some("a/web".to_owned()), None, None, None, None, None]
    );
    assert_eq!(stubs[0].job_modify_index, 7);
    // As the map of strings it replaces: a non-string value is an error.
    assert!(serde_json::from_value::<JobStub>(json!({"ID": "x", "Meta": {"k": 1}})).is_err());
}
