//! Server-side rendering of the dashboard at 10 000 specs (synthetic statuses shaped like
//! the operator's: three conditions, four objects, ten events each).
//!
//! `cargo bench -p steward-dashboard --bench pages`. `overview/10k` is what `GET /` costs
//! after the operator's state is read: copying every status (as
//! `OperatorHandle::statuses` does), building the rows, filtering, sorting by attention,
//! paginating and rendering the HTML; `overview/10k-filtered` adds a namespace and text
//! filter. `spec/order-api` is a spec page from `deploy/examples/order-api.yaml`'s real
//! rendering, with a planned update, ten events and the document; the live read behind
//! it (`describe`, the same as `GET /api/v1/specs/{ns}/{name}`) is not included.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use steward_dashboard::pages::{self, EventView, SpecPage};
use steward_dashboard::view::{self, Filter};
use steward_operator::status::{Condition, ConditionStatus, EventDoc, ObjectState, ObjectStatus};
use steward_operator::{Phase, StatusDoc};

const ORDER_API: &str = include_str!("../../../deploy/examples/order-api.yaml");
const SPECS: usize = 10_000;

fn at(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_796_000_000 + s).unwrap()
}

fn status(i: usize) -> StatusDoc {
    let phase = match i % 100 {
        0 => Phase::Error,
        1 => Phase::Degraded,
        2 | 3 => Phase::Progressing,
        4 => Phase::Invalid,
        _ => Phase::Synced,
    };
    let t = i64::try_from(i).unwrap();
    StatusDoc {
        observed_generation: 1000 + i as u64,
        phase,
        message: format!("spec {i}: all objects converged"),
        spec_hash: Some(format!("{i:064x}")),
        replicas: Some(3),
        next_scaling_change: None,
        job_modify_index: Some(77),
        conditions: ["Accepted", "ResourcesSynced", "Available"]
            .iter()
            .map(|c| Condition {
                type_: (*c).to_owned(),
                status: ConditionStatus::True,
                reason: "Converged".to_owned(),
                message: "every object matches the spec".to_owned(),
                last_transition_time: Some(at(t)),
            })
            .collect(),
        objects: [
            "vault-policy",
            "vault-role",
            "service-defaults",
            "nomad-job",
        ]
        .iter()
        .map(|k| ObjectStatus {
            kind: (*k).to_owned(),
            name: format!("svc-{i}"),
            state: ObjectState::Synced,
            message: None,
        })
        .collect(),
        diagnostics: vec![],
        events: (0..10)
            .map(|e| EventDoc {
                time: at(t + e),
                type_: "Normal".to_owned(),
                reason: "Updated".to_owned(),
                message: format!("nomad job ns/svc-{i} updated: TaskGroups[app].Count 2 → 3"),
                object: Some(format!("nomad job ns/svc-{i}")),
            })
            .collect(),
    }
}

fn spec_page() -> SpecPage {
    let loaded = steward_spec::load("order-api.yaml", ORDER_API, None);
    let spec = loaded.spec.unwrap();
    let ctx = steward_render::RenderContext {
        generation: 42,
        ..steward_render::RenderContext::default()
    };
    let desired = serde_json::to_value(steward_render::render(&spec, &ctx).unwrap()).unwrap();
    let diff = json!({
        "conflicts": [],
        "steps": [{"kind": "nomad-job", "name": "order-api", "action": "update",
                   "changes": [{"path": "TaskGroups[order-api].Tasks[app].Config.image",
                                "desired": "registry.example/order-api:1.4.3",
                                "live": "registry.example/order-api:1.4.2"}]}],
        "inSync": [{"kind": "vault-policy", "name": "steward-trading-order-api"},
                   {"kind": "vault-role", "name": "steward-trading-order-api"},
                   {"kind": "service-defaults", "name": "order-api"},
                   {"kind": "service-intentions", "name": "order-api"}],
    });
    let mut s = status(7);
    s.objects = [
        "vault-policy",
        "vault-role",
        "service-defaults",
        "service-intentions",
    ]
    .iter()
    .map(|k| ObjectStatus {
        kind: (*k).to_owned(),
        name: if k.starts_with("vault") {
            "steward-trading-order-api".to_owned()
        } else {
            "order-api".to_owned()
        },
        state: ObjectState::Synced,
        message: None,
    })
    .chain([ObjectStatus {
        kind: "nomad-job".to_owned(),
        name: "order-api".to_owned(),
        state: ObjectState::Updated,
        message: None,
    }])
    .collect();
    let events = s
        .events
        .iter()
        .map(|e| EventView {
            time: e.time,
            type_: e.type_.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            object: e.object.clone(),
        })
        .collect();
    SpecPage {
        key: "trading/order-api".to_owned(),
        document: Some((42, ORDER_API.to_owned())),
        objects: view::objects(Some(&s), &desired, &diff),
        plan_note: None,
        events,
        status: Some(s),
    }
}

fn benches(c: &mut Criterion) {
    let statuses: Vec<(String, StatusDoc)> = (0..SPECS)
        .map(|i| (format!("ns{}/svc-{i:05}", i % 20), status(i)))
        .collect();
    let specs: Vec<(String, u64)> = statuses
        .iter()
        .map(|(k, s)| (k.clone(), s.observed_generation))
        .collect();
    let now = at(100_000);
    let overview = |filter: Filter| {
        let rows = view::rows_of(specs.clone(), statuses.clone());
        let o = view::overview(rows, filter, 1);
        pages::overview(&o, None, now).into_string()
    };
    let html = overview(Filter::default());
    println!("overview at {SPECS} specs: {} bytes", html.len());
    c.bench_function("overview/10k", |b| {
        b.iter(|| black_box(overview(Filter::default())));
    });
    c.bench_function("overview/10k-filtered", |b| {
        b.iter(|| {
            black_box(overview(Filter {
                namespace: Some("ns3".to_owned()),
                phase: None,
                text: Some("svc-0".to_owned()),
            }))
        });
    });
    let page = spec_page();
    println!(
        "spec page: {} bytes",
        pages::spec(&page, now).into_string().len()
    );
    c.bench_function("spec/order-api", |b| {
        b.iter(|| black_box(pages::spec(black_box(&page), now).into_string()));
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(group);
