//! Micro-benchmarks of the pure per-spec work of a reconcile: load (parse + validate),
//! render, hash, and diff of desired against live objects.
//!
//! `cargo bench -p steward-render --bench render`. Inputs are `deploy/examples`
//! (`order-api`: job, intentions, policy and role; `web-api`: job and two routes).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use steward_render::{
    RenderContext, diff_config_entry, diff_job, diff_policy, normalise, render, spec_hash,
};

const ORDER_API: &str = include_str!("../../../deploy/examples/order-api.yaml");
const WEB_API: &str = include_str!("../../../deploy/examples/web-api.yaml");

fn spec(text: &str) -> steward_spec::ServiceSpec {
    let loaded = steward_spec::load("spec.yaml", text, None);
    let rendered = loaded.render();
    loaded.spec.unwrap_or_else(|| panic!("{rendered}"))
}

fn benches(c: &mut Criterion) {
    let ctx = RenderContext {
        generation: 42,
        ..RenderContext::default()
    };
    for (name, text) in [("order-api", ORDER_API), ("web-api", WEB_API)] {
        c.bench_function(&format!("load/{name}"), |b| {
            b.iter(|| steward_spec::load("spec.yaml", black_box(text), None));
        });
        let s = spec(text);
        c.bench_function(&format!("render/{name}"), |b| {
            b.iter(|| render(black_box(&s), &ctx).unwrap());
        });
        c.bench_function(&format!("hash/{name}"), |b| {
            b.iter(|| spec_hash(black_box(&s), &ctx).unwrap());
        });
    }

    let desired = render(&spec(ORDER_API), &ctx).unwrap();
    let job = desired.nomad_job.job.clone();
    // What a converged reconcile compares: the live job equals the desired one.
    c.bench_function("diff/job converged", |b| {
        b.iter(|| diff_job(black_box(&job), black_box(&job)));
    });
    let mut drifted = job.clone();
    drifted["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("registry.example/x:hacked");
    c.bench_function("diff/job one change", |b| {
        b.iter(|| diff_job(black_box(&job), black_box(&drifted)));
    });
    c.bench_function("normalise/job", |b| {
        b.iter(|| normalise::normalise_job(black_box(&job)));
    });
    let intentions = desired.service_intentions.as_ref().unwrap().body.clone();
    c.bench_function("diff/intentions converged", |b| {
        b.iter(|| diff_config_entry(black_box(&intentions), black_box(&intentions)));
    });
    let policy = desired.vault_policy.as_ref().unwrap().hcl.clone();
    // Policies are compared as parsed HCL bodies, not text.
    c.bench_function("diff/policy converged", |b| {
        b.iter(|| diff_policy(black_box(&policy), black_box(&policy)));
    });
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
