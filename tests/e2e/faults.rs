//! Under server errors, rate limiting, latency, connection resets and index resets
//! (snapshot restores) everything still converges, nothing is deleted, nothing is
//! registered twice.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Env, web};
use steward_sim::{FaultRule, FaultRuleKind, Product};

fn rule(product: Product, kind: FaultRuleKind) -> FaultRule {
    FaultRule {
        id: 0,
        product,
        path_prefix: None,
        methods: None,
        count: None,
        kind,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_converges_under_faults_without_unintended_deletions() {
    let mut env = Env::start().await;
    let faults = env.sim.faults().clone();
    for product in [Product::Consul, Product::Nomad, Product::Vault] {
        faults.add(rule(
            product,
            FaultRuleKind::Error {
                status: 500,
                rate: 0.1,
            },
        ));
        faults.add(rule(
            product,
            FaultRuleKind::Error {
                status: 429,
                rate: 0.05,
            },
        ));
        faults.add(rule(product, FaultRuleKind::Reset { rate: 0.05 }));
        faults.add(rule(
            product,
            FaultRuleKind::Latency {
                fixed_ms: 2,
                jitter_ms: 15,
            },
        ));
    }
    faults.add(rule(
        Product::Consul,
        FaultRuleKind::Error {
            status: 503,
            rate: 0.05,
        },
    ));
    env.operator("a").await;

    let mut pushed = Vec::new();
    let dir = steward_e2e::repo_path("deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let key = steward_spec::load("x.yaml", &text, None)
            .spec
            .unwrap()
            .key();
        pushed.push((key.clone(), env.put_spec_retrying(&key, &text).await));
    }
    for name in ["web", "cart"] {
        let key = format!("shop/{name}");
        let g = env
            .put_spec_retrying(&key, &web("shop", name, "1.0.0"))
            .await;
        pushed.push((key, g));
    }
    // Snapshot restores in the middle of it all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(faults.reset_indexes(Product::Consul));
    assert!(faults.reset_indexes(Product::Nomad));

    // Generations move with the reset: wait for each spec's current one.
    for (key, _) in &pushed {
        env.wait_synced_now(key, Duration::from_secs(60)).await;
    }
    // An update under faults lands once.
    let g = env
        .put_spec_retrying("shop/web", &web("shop", "web", "1.1.0"))
        .await;
    env.wait_synced("shop/web", g).await;
    faults.clear();
    env.settle(Duration::from_millis(500)).await;

    let deletes: Vec<_> = env
        .log
        .all()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "unintended deletions: {deletes:?}");
    for (key, _) in &pushed {
        let (ns, name) = key.split_once('/').unwrap();
        let job = env.job(ns, name).await.unwrap();
        assert!(!job.view.stop, "{key}");
        let versions = env.job_versions(ns, name).await.len();
        let expected = if key == "shop/web" { 2 } else { 1 };
        assert_eq!(
            versions, expected,
            "{key}: registered exactly as often as the spec changed"
        );
    }
    env.finish().await;
}
