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
        assert_eq!(versions, expected, "{key}: one version per spec change");
    }
    // Versions alone cannot show an identical re-register (it makes no version): count
    // the registrations that were answered 2xx. The faults here all fire before the
    // server handles a request, so a failed one never landed and every landed one was
    // answered: exactly one per spec change.
    let registered = env
        .log
        .all()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == "/v1/jobs")
        .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    assert_eq!(
        registered,
        pushed.len() + 1,
        "registered exactly once per spec change"
    );
    env.finish().await;
}

fn after_commit(
    product: Product,
    methods: &[&str],
    prefix: &str,
    kind: FaultRuleKind,
) -> FaultRule {
    FaultRule {
        id: 0,
        product,
        path_prefix: Some(prefix.to_owned()),
        methods: Some(methods.iter().map(|m| (*m).to_owned()).collect()),
        count: None,
        kind,
    }
}

/// Writes that land but whose answers are lost (a 500 or a reset after the commit):
/// every such write is found landed, never sent again. Only after-commit faults are
/// injected on writes, so every write request landed and the counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_answers_are_lost_are_never_sent_twice() {
    let mut env = Env::start().await;
    let faults = env.sim.faults().clone();
    let lost_500 = FaultRuleKind::ErrorAfterCommit {
        status: 500,
        rate: 0.35,
    };
    let lost_reset = FaultRuleKind::ResetAfterCommit { rate: 0.25 };
    for (product, methods, prefix) in [
        (Product::Nomad, &["PUT", "POST"][..], "/v1/jobs"),
        (Product::Consul, &["PUT"][..], "/v1/config"),
        (Product::Consul, &["PUT"][..], "/v1/txn"),
        (
            Product::Vault,
            &["PUT", "POST"][..],
            "/v1/sys/policies/acl/",
        ),
        (Product::Vault, &["PUT", "POST"][..], "/v1/auth/"),
    ] {
        faults.add(after_commit(product, methods, prefix, lost_500.clone()));
        faults.add(after_commit(product, methods, prefix, lost_reset.clone()));
    }
    env.operator("a").await;

    let mut keys = Vec::new();
    for name in ["web", "cart", "search"] {
        let key = format!("shop/{name}");
        env.put_spec(&key, &web("shop", name, "1.0.0")).await;
        keys.push(key);
    }
    for key in &keys {
        env.wait_synced_now(key, Duration::from_secs(60)).await;
    }
    let g = env.put_spec("shop/web", &web("shop", "web", "1.1.0")).await;
    env.wait_synced("shop/web", g).await;
    faults.clear();
    env.settle(Duration::from_millis(500)).await;

    let writes: Vec<_> = env
        .log
        .all()
        .into_iter()
        .filter(|r| r.is_object_write())
        .collect();
    let count = |method: &str, prefix: &str| {
        writes
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    };
    let lost = writes
        .iter()
        .filter(|r| r.status.is_none_or(|s| s >= 500))
        .count();
    assert!(lost >= 3, "the faults fired: {writes:?}");
    // Three creations and one update.
    assert_eq!(count("PUT", "/v1/jobs"), 4, "{writes:?}");
    // service-defaults, intentions and the http-route of each spec, created once.
    assert_eq!(count("PUT", "/v1/config"), 9, "{writes:?}");
    for name in ["web", "cart", "search"] {
        let policy = format!("/v1/sys/policies/acl/steward-shop-{name}");
        let role = format!("/v1/auth/jwt-nomad/role/steward-shop-{name}");
        assert_eq!(count("PUT", &policy), 1, "{writes:?}");
        assert_eq!(count("POST", &role) + count("PUT", &role), 1, "{writes:?}");
    }
    for key in &keys {
        let (ns, name) = key.split_once('/').unwrap();
        assert!(!env.job(ns, name).await.unwrap().view.stop, "{key}");
        let s = env.status(key).await.unwrap();
        assert_eq!(s.phase, steward_operator::Phase::Synced, "{key}");
    }
    env.finish().await;
}
