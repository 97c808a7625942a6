//! Nomad client against the simulator.
#![allow(clippy::unwrap_used)]

mod simutil;

use std::time::Duration;

use futures::StreamExt;
use simutil::{bounded, job, nomad, sim};
use steward_hashi::nomad::{DiffType, EventStreamOptions, RegisterOptions};
use steward_hashi::{Error, QueryOptions, WatchConfig, WriteOptions};

#[tokio::test]
async fn register_read_list_plan_versions_deregister() {
    let h = sim().await;
    let n = nomad(&h);
    let j = job(
        "order-api",
        "default",
        "registry.example/order-api:1.4.2",
        2,
    );
    let plan = bounded(n.plan_job(&j, None)).await.unwrap();
    assert_eq!(plan.job_modify_index, 0);
    assert_eq!(plan.diff.unwrap().diff_type, DiffType::Added);

    let created = bounded(n.register_job(
        &j,
        &RegisterOptions {
            enforce_index: Some(0),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert!(!created.eval_id.is_empty());
    let got = bounded(n.get_job("order-api", &QueryOptions::new()))
        .await
        .unwrap();
    let stored = got.value.unwrap();
    assert_eq!(stored.view.meta["steward.spec"], "default/order-api");
    assert_eq!(stored.view.version, 0);
    assert!(got.meta.index > 0);

    let same = bounded(n.plan_job(&j, None)).await.unwrap();
    assert!(same.diff.as_ref().unwrap().is_unchanged());
    assert_eq!(same.job_modify_index, stored.view.job_modify_index);

    let changed = job(
        "order-api",
        "default",
        "registry.example/order-api:1.5.0",
        2,
    );
    let plan = bounded(n.plan_job(&changed, None)).await.unwrap();
    let diff = plan.diff.unwrap();
    assert_eq!(diff.diff_type, DiffType::Edited);
    assert_eq!(diff.task_groups[0].tasks[0].diff_type, DiffType::Edited);

    let err = bounded(n.register_job(
        &changed,
        &RegisterOptions {
            enforce_index: Some(stored.view.job_modify_index + 7),
            ..Default::default()
        },
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, Error::CasConflict { .. }), "{err:?}");
    let err = bounded(n.register_job(
        &changed,
        &RegisterOptions {
            enforce_index: Some(0),
            ..Default::default()
        },
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::CasConflict { .. }),
        "create-only on an existing job: {err:?}"
    );
    bounded(n.register_job(
        &changed,
        &RegisterOptions {
            enforce_index: Some(plan.job_modify_index),
            ..Default::default()
        },
    ))
    .await
    .unwrap();

    let list = bounded(n.list_jobs(Some("order"), true, &QueryOptions::new().namespace("*")))
        .await
        .unwrap();
    assert_eq!(list.value.len(), 1);
    assert_eq!(
        list.value[0].meta.as_ref().unwrap()["steward.managed-by"],
        "steward"
    );
    let versions = bounded(n.job_versions("order-api", false, &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(versions.versions[0].view.version, 1);
    let _deployment = bounded(n.latest_deployment("order-api", &QueryOptions::new()))
        .await
        .unwrap();
    let _allocs = bounded(n.job_allocations("order-api", false, &QueryOptions::new()))
        .await
        .unwrap();
    let evals = bounded(n.job_evaluations("order-api", &QueryOptions::new()))
        .await
        .unwrap();
    assert!(!evals.value.is_empty());

    bounded(n.deregister_job("order-api", false, &WriteOptions::new()))
        .await
        .unwrap();
    let stopped = bounded(n.get_job("order-api", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert!(stopped.view.stop);
    bounded(n.deregister_job("order-api", true, &WriteOptions::new()))
        .await
        .unwrap();
    assert!(
        bounded(n.get_job("order-api", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none()
    );
    assert!(
        bounded(n.job_versions("order-api", false, &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none()
    );
    assert!(
        bounded(n.latest_deployment("unknown", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none()
    );
    assert!(
        bounded(n.job_allocations("unknown", false, &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_empty()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_invalid_job_is_an_invalid_request() {
    let h = sim().await;
    let n = nomad(&h);
    let bad =
        serde_json::json!({"ID": "broken", "Name": "broken", "Type": "service", "TaskGroups": []});
    let err = bounded(n.register_job(&bad, &RegisterOptions::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert!(!err.is_retryable());
    h.shutdown().await;
}

#[tokio::test]
async fn job_namespace_is_kept() {
    let h = sim().await;
    let n = nomad(&h);
    let err = bounded(n.register_job(
        &job("ticker", "trading", "busybox", 1),
        &RegisterOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { .. }),
        "unknown namespace: {err:?}"
    );
    let ns = steward_hashi::RequestSpec::put("/v1/namespace/trading")
        .json(serde_json::json!({"Name": "trading"}));
    bounded(n.transport().send(&ns)).await.unwrap();
    bounded(n.register_job(
        &job("ticker", "trading", "busybox", 1),
        &RegisterOptions::default(),
    ))
    .await
    .unwrap();
    let in_ns = bounded(n.get_job("ticker", &QueryOptions::new().namespace("trading")))
        .await
        .unwrap();
    assert_eq!(in_ns.value.unwrap().view.namespace, "trading");
    assert!(
        bounded(n.get_job("ticker", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn job_list_watch_does_not_spin_on_a_fresh_server_and_sees_registrations() {
    let h = sim().await;
    let n = nomad(&h);
    let mut w = Box::pin(n.watch_jobs(
        None,
        true,
        QueryOptions::new().namespace("*"),
        Duration::from_secs(5),
        WatchConfig::default(),
    ));
    let first = bounded(w.next()).await.unwrap().unwrap();
    assert!(first.value.is_empty());
    let before = h.stats().total(steward_sim::Product::Nomad);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = h.stats().total(steward_sim::Product::Nomad);
    assert!(
        after - before <= 2,
        "the watch blocks instead of spinning ({} requests)",
        after - before
    );
    n.register_job(
        &job("web", "default", "nginx", 1),
        &RegisterOptions::default(),
    )
    .await
    .unwrap();
    let second = bounded(w.next()).await.unwrap().unwrap();
    assert_eq!(second.value[0].id, "web");
    h.shutdown().await;
}

#[tokio::test]
async fn event_stream_reports_registrations() {
    let h = sim().await;
    let n = nomad(&h);
    let mut events = Box::pin(
        bounded(n.event_stream(&EventStreamOptions {
            topics: vec!["Job".into()],
            ..Default::default()
        }))
        .await
        .unwrap(),
    );
    n.register_job(
        &job("web", "default", "nginx", 1),
        &RegisterOptions::default(),
    )
    .await
    .unwrap();
    let frame = bounded(async {
        loop {
            let f = events.next().await.unwrap().unwrap();
            if f.events.iter().any(|e| e.event_type == "JobRegistered") {
                return f;
            }
        }
    })
    .await;
    let ev = frame
        .events
        .iter()
        .find(|e| e.event_type == "JobRegistered")
        .unwrap();
    assert_eq!(ev.key, "web");
    assert_eq!(ev.payload.to_value()["Job"]["ID"], "web");
    h.shutdown().await;
}
