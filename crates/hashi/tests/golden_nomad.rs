//! Nomad request builders and response parsers against captures from a real server.
#![allow(clippy::unwrap_used)]

mod common;

use common::load;
use serde_json::json;
use steward_hashi::nomad::{
    DiffType, EventDecoder, EventStreamOptions, RegisterOptions, alloc, events, job,
};
use steward_hashi::{Error, Idempotency, Product, QueryOptions, WriteOptions};

fn fx(name: &str) -> common::Fixture {
    load("nomad", name)
}

#[test]
fn register_builds_the_captured_body_and_decodes_the_answer() {
    let f = fx("job-register-order-api");
    let job = f.request_body()["Job"].clone();
    let spec = job::register(&job, &RegisterOptions::default()).unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::Unguarded);
    let r = job::parse_write(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(r.eval_id, "3ff64651-0318-ee80-8966-4b33a357f2e4");
    assert_eq!(
        (r.job_modify_index, r.eval_create_index, r.index),
        (11, 11, 11)
    );
}

#[test]
fn register_with_enforce_index_is_guarded_and_conflicts_are_cas_errors() {
    let f = fx("job-register-order-api-stale-enforce-index");
    let job = f.request_body()["Job"].clone();
    let opts = RegisterOptions {
        enforce_index: Some(5),
        ..Default::default()
    };
    let spec = job::register(&job, &opts).unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::CasGuarded);
    let err = f.raw(Product::Nomad).status_error();
    assert!(matches!(err, Error::CasConflict { .. }), "{err:?}");
    assert!(err.to_string().contains("conflicting job modify index: 11"));
    assert!(!err.is_retryable());
}

#[test]
fn register_sends_the_job_namespace_as_query_parameter() {
    let job = json!({"ID": "order-api", "Namespace": "trading", "TaskGroups": []});
    let spec = job::register(&job, &RegisterOptions::default()).unwrap();
    assert_eq!(spec.uri(), "/v1/jobs?namespace=trading");
    let opts = RegisterOptions {
        enforce_index: Some(0),
        preserve_counts: true,
        namespace: Some("other".into()),
        ..Default::default()
    };
    let spec = job::register(&job, &opts).unwrap();
    assert_eq!(spec.uri(), "/v1/jobs?namespace=other");
    let body = spec.json_body().unwrap();
    assert_eq!(body["EnforceIndex"], true);
    assert_eq!(body["JobModifyIndex"], 0);
    assert_eq!(body["PreserveCounts"], true);
    assert!(job::register(&json!({"Name": "x"}), &RegisterOptions::default()).is_err());
}

#[test]
fn plan_diff_keeps_the_structure() {
    let f = fx("job-plan-order-api-image-change");
    let job = f.request_body()["Job"].clone();
    let spec = job::plan(&job, true, None).unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::Read);
    let plan = job::parse_plan(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(plan.job_modify_index, 11);
    let diff = plan.diff.unwrap();
    assert_eq!(diff.diff_type, DiffType::Edited);
    assert!(!diff.is_unchanged());
    assert_eq!(diff.id, "order-api");
    let tg = &diff.task_groups[0];
    assert_eq!((tg.name.as_str(), tg.diff_type), ("api", DiffType::Edited));
    assert_eq!(tg.updates["create"], 2);
    let app = &tg.tasks[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.annotations, ["forces create/destroy update"]);
    let config = &app.objects[0];
    assert_eq!(config.name, "Config");
    let image = &config.fields[0];
    assert_eq!(image.name, "image");
    assert_eq!(image.diff_type, DiffType::Edited);
    assert_eq!(image.old, "registry.example/order-api:1.4.2");
    assert_eq!(image.new, "registry.example/order-api:1.5.0");
    assert_eq!(config.fields[1].diff_type, DiffType::None);
    assert_eq!(tg.tasks[1].diff_type, DiffType::None);
    let ann = plan.annotations.unwrap();
    assert_eq!(ann.desired_tg_updates["api"].place, 2);
    assert!(plan.failed_tg_allocs.contains_key("api"));
    assert_eq!(plan.created_evals.len(), 1);
}

#[test]
fn plan_identical_is_none_and_count_change_is_a_group_field() {
    let plan = job::parse_plan(&fx("job-plan-order-api-identical").raw(Product::Nomad)).unwrap();
    assert!(plan.diff.as_ref().unwrap().is_unchanged());
    let plan = job::parse_plan(&fx("job-plan-order-api-count-3").raw(Product::Nomad)).unwrap();
    let tg = &plan.diff.unwrap().task_groups[0];
    let count = &tg.fields[0];
    assert_eq!(
        (count.name.as_str(), count.old.as_str(), count.new.as_str()),
        ("Count", "2", "3")
    );
    assert_eq!(count.annotations, ["forces create"]);
}

#[test]
fn job_reads() {
    let f = fx("job-get-order-api");
    f.assert_request(&job::get("order-api", &QueryOptions::new()).unwrap());
    let r = job::parse_get(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(r.meta.index, 11);
    assert!(r.meta.known_leader);
    let j = r.value.unwrap();
    assert_eq!(j.view.id, "order-api");
    assert_eq!(j.view.namespace, "default");
    assert_eq!(j.view.meta["steward.spec"], "trading/order-api");
    assert_eq!(
        (j.view.version, j.view.job_modify_index, j.view.modify_index),
        (0, 11, 11)
    );
    assert!(!j.view.stop);
    assert_eq!(j.raw["TaskGroups"][0]["Name"], "api");

    let j = job::parse_get(&fx("job-get-order-api-after-stop").raw(Product::Nomad))
        .unwrap()
        .value
        .unwrap();
    assert!(j.view.stop);

    let r = job::parse_get(&fx("job-get-order-api-after-purge").raw(Product::Nomad)).unwrap();
    assert!(r.value.is_none());
    assert_eq!(r.meta.index, 22);

    let j = job::parse_get(&fx("job-get-nightly-settlement").raw(Product::Nomad)).unwrap();
    assert_eq!(j.value.unwrap().view.job_type, "batch");
}

#[test]
fn job_list_with_prefix_meta_and_all_namespaces() {
    let f = fx("jobs-list");
    f.assert_request(&job::list(None, false, &QueryOptions::new()).unwrap());
    let r = job::parse_list(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(r.meta.index, 14);
    assert_eq!(r.value[0].id, "order-api");
    assert_eq!(r.value[0].status, "pending");
    assert!(r.value[0].meta.is_none());
    assert!(r.value[0].extra.contains_key("JobSummary"));

    let f = fx("jobs-list-prefix-order");
    f.assert_request(&job::list(Some("order"), false, &QueryOptions::new()).unwrap());

    let spec = job::list(Some("order"), true, &QueryOptions::new().namespace("*")).unwrap();
    assert_eq!(spec.uri(), "/v1/jobs?prefix=order&meta=true&namespace=*");
}

#[test]
fn deregister_stop_and_purge() {
    let f = fx("job-stop-order-api");
    f.assert_request(&job::deregister("order-api", false, &WriteOptions::new()).unwrap());
    let r = job::parse_write(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(r.job_modify_index, 19);
    let f = fx("job-purge-order-api");
    f.assert_request(&job::deregister("order-api", true, &WriteOptions::new()).unwrap());
    let spec =
        job::deregister("order-api", true, &WriteOptions::new().namespace("trading")).unwrap();
    assert_eq!(spec.uri(), "/v1/job/order-api?purge=true&namespace=trading");
}

#[test]
fn versions_deployment_allocations_evaluations() {
    let f = fx("job-versions-order-api");
    f.assert_request(&job::versions("order-api", false, &QueryOptions::new()).unwrap());
    let r = job::parse_versions(&f.raw(Product::Nomad)).unwrap();
    let v = r.value.unwrap();
    assert!(!v.versions.is_empty());
    assert!(v.diffs.is_empty());
    assert_eq!(v.versions[0].view.id, "order-api");

    let f = fx("job-deployment-order-api");
    f.assert_request(&alloc::latest_deployment("order-api", &QueryOptions::new()).unwrap());
    let d = alloc::parse_latest_deployment(&f.raw(Product::Nomad))
        .unwrap()
        .value
        .unwrap();
    assert_eq!(d.status, "running");
    assert_eq!(d.job_spec_modify_index, 11);
    assert_eq!(d.task_groups["api"].desired_total, 2);
    let d =
        alloc::parse_latest_deployment(&fx("job-deployment-ticker-successful").raw(Product::Nomad))
            .unwrap()
            .value
            .unwrap();
    assert_eq!(d.status, "successful");

    let null = steward_hashi::RawResponse::new(
        Product::Nomad,
        http::Method::GET,
        "/v1/job/x/deployment",
        200,
        http::HeaderMap::new(),
        "null",
    );
    assert!(
        alloc::parse_latest_deployment(&null)
            .unwrap()
            .value
            .is_none(),
        "200 null is None"
    );

    let f = fx("job-allocations-order-api");
    f.assert_request(&alloc::allocations("order-api", false, &QueryOptions::new()).unwrap());
    assert!(
        alloc::parse_allocations(&f.raw(Product::Nomad))
            .unwrap()
            .value
            .is_empty()
    );
    let a = alloc::parse_allocations(&fx("job-allocations-ticker-running").raw(Product::Nomad))
        .unwrap();
    assert_eq!(a.value[0].client_status, "running");
    assert_eq!(a.value[0].task_group, "ticker");

    let f = fx("job-evaluations-order-api");
    f.assert_request(&alloc::evaluations("order-api", &QueryOptions::new()).unwrap());
    let e = alloc::parse_evaluations(&f.raw(Product::Nomad)).unwrap();
    assert_eq!(e.value.len(), 4);
    assert_eq!(e.value[0].status, "blocked");
}

#[test]
fn invalid_job_is_an_invalid_request() {
    let f = fx("job-validate-invalid");
    assert_eq!(f.status(), 200);
    let raw = steward_hashi::RawResponse::new(
        Product::Nomad,
        http::Method::PUT,
        "/v1/jobs",
        500,
        http::HeaderMap::new(),
        "1 error occurred:\n\t* Missing job task groups\n\n",
    );
    let err = raw.status_error();
    assert!(matches!(err, Error::InvalidRequest { status: 500, .. }));
    assert!(err.to_string().contains("Missing job task groups"));
}

#[test]
fn event_stream_request_and_decoder() {
    let spec = events::event_stream(&EventStreamOptions {
        topics: vec!["Job".into(), "Deployment".into()],
        index: 12,
        namespace: Some("*".into()),
        ..Default::default()
    });
    assert_eq!(
        spec.uri(),
        "/v1/event/stream?topic=Job&topic=Deployment&index=12&namespace=*"
    );
    let mut d = EventDecoder::new();
    let frame = r#"{"Index":13,"Events":[{"Topic":"Job","Type":"JobRegistered","Key":"order-api","Namespace":"default","Index":13,"Payload":{"Job":{"ID":"order-api"}}}]}"#;
    let mut out = d.push(b"{}\n{}\n");
    assert!(out.is_empty(), "heartbeats are dropped");
    // a frame split across chunks
    out.extend(d.push(&frame.as_bytes()[..20]));
    assert!(out.is_empty());
    out.extend(d.push(&frame.as_bytes()[20..]));
    out.extend(d.push(b"\n"));
    assert_eq!(out.len(), 1);
    let f = out.pop().unwrap().unwrap();
    assert_eq!(f.index, 13);
    assert_eq!(f.events[0].event_type, "JobRegistered");
    assert_eq!(f.events[0].payload.to_value()["Job"]["ID"], "order-api");
    assert!(d.push(b"not json\n")[0].is_err());
    d.push(br#"{"Index":14,"Events":[]}"#);
    assert_eq!(d.finish().unwrap().unwrap().index, 14);
}
