//! The mass-deletion guard: a wiped spec prefix deletes nothing until the exact deletion
//! set is approved through the HTTP API; the guard counts specs, so removing one spec is
//! collected unasked; a removed spec's status says `Blocked` or `Deleting`, never
//! `Synced`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use steward_e2e::{Env, wait_for, web};
use steward_operator::{OperatorHandle, Phase};
use tower::ServiceExt as _;

async fn post_approve(router: &axum::Router, digest: &str) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(
            Request::post("/api/v1/gc/approve")
                .header("content-type", "application/json")
                .header(
                    "authorization",
                    format!("Bearer {}", steward_e2e::API_TOKEN),
                )
                .body(Body::from(json!({"digest": digest}).to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_prefix_is_blocked_until_the_deletion_set_is_approved() {
    let mut env = Env::start().await;
    let handle = env.operator("a").await;
    let router = steward_operator::api::router(handle.clone());
    let keys = ["shop/web", "shop/cart", "shop/search"];
    for key in keys {
        let (ns, name) = key.split_once('/').unwrap();
        let g = env.put_spec(key, &web(ns, name, "1.0.0")).await;
        env.wait_synced(key, g).await;
    }
    env.settle(Duration::from_millis(300)).await;
    let mark = env.log.mark();

    // CI goes wrong and wipes every spec.
    assert!(
        env.clients
            .consul
            .kv_delete_tree("steward/specs/")
            .await
            .unwrap()
    );
    let gc = wait_for(
        "the GC status to say Blocked",
        steward_e2e::WAIT,
        || async {
            match env.status_json("_gc").await {
                Some(v) if v["phase"] == "Blocked" => Ok(v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(gc["count"], 18, "{gc}");
    assert_eq!(gc["owned"], 18);
    assert_eq!(gc["specs"], json!(["shop/cart", "shop/search", "shop/web"]));
    assert_eq!(gc["owningSpecs"], 3);
    let digest = gc["digest"].as_str().unwrap().to_owned();
    assert_eq!(gc["conditions"][0]["reason"], "MassDeletion");
    let message = gc["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("garbage collection would remove 3 of 3 specs (18 of 18 owned objects)"),
        "{message}"
    );
    assert!(
        message.ends_with(&format!("steward gc approve --digest {digest}")),
        "{message}"
    );
    assert!(handle.metrics_text().contains("steward_gc_blocked 1"));
    assert!(
        handle
            .recorder()
            .for_key("_gc", 10)
            .iter()
            .any(|e| e.reason == "MassDeletionBlocked")
    );

    // Nothing is deleted while blocked, sweep after sweep.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        env.log.since(mark).iter().all(|r| r.method != "DELETE"),
        "{:?}",
        env.log.since(mark)
    );
    for key in keys {
        let name = key.split_once('/').unwrap().1;
        assert!(!env.job("shop", name).await.unwrap().view.stop);
        assert!(env.entry("service-defaults", name).await.is_some());
        assert!(env.policy(&format!("steward-shop-{name}")).await.is_some());
    }

    // A wrong digest is refused; the right one deletes exactly that set.
    let (status, body) = post_approve(&router, "0000").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = post_approve(&router, &digest).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(
        "every object to be collected",
        steward_e2e::WAIT,
        || async {
            let mut left = Vec::new();
            for key in keys {
                let name = key.split_once('/').unwrap().1;
                if !env.job("shop", name).await.unwrap().view.stop {
                    left.push(format!("job {name}"));
                }
                if env.entry("service-defaults", name).await.is_some() {
                    left.push(format!("service-defaults {name}"));
                }
                if env.policy(&format!("steward-shop-{name}")).await.is_some() {
                    left.push(format!("policy {name}"));
                }
                if env.status_json(key).await.is_some() {
                    left.push(format!("status {key}"));
                }
            }
            if env.status_json("_gc").await.is_some() {
                left.push("the _gc status".into());
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        },
    )
    .await;
    let deletes = env
        .log
        .since(mark)
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 18 - 3 + 3, "15 config/vault deletes + 3 job stops");
    assert!(handle.metrics_text().contains("steward_gc_blocked 0"));
    // Nothing is blocked any more: a stale approval is refused.
    let (status, _) = post_approve(&router, &digest).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    env.finish().await;
}

/// Pushes the 7 examples of `deploy/examples/` and waits until each is `Synced`; returns
/// their keys.
async fn push_examples(env: &Env) -> Vec<String> {
    let dir = steward_e2e::repo_path("deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    let mut pushed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let key = steward_spec::load("x.yaml", &text, None)
            .spec
            .unwrap()
            .key();
        let g = env.put_spec(&key, &text).await;
        pushed.push((key, g));
    }
    for (key, g) in &pushed {
        env.wait_synced(key, *g).await;
    }
    pushed.into_iter().map(|(k, _)| k).collect()
}

/// What is left of the spec `key` once it is removed: its running job, its
/// `service-defaults` entry (when it has one) and its status document.
async fn left_of(env: &Env, key: &str) -> Vec<String> {
    let (ns, name) = key.split_once('/').unwrap();
    let mut left = Vec::new();
    if env.job(ns, name).await.is_some_and(|j| !j.view.stop) {
        left.push(format!("job {key}"));
    }
    if env.entry("service-defaults", name).await.is_some() {
        left.push(format!("service-defaults {name}"));
    }
    if env.policy(&format!("steward-{ns}-{name}")).await.is_some() {
        left.push(format!("policy {key}"));
    }
    if env.status_json(key).await.is_some() {
        left.push(format!("status {key}"));
    }
    left
}

/// The spec `key` as `GET /api/v1/specs/{ns}/{name}` shows it.
async fn api_spec(handle: &OperatorHandle, key: &str) -> Value {
    let router = steward_operator::api::router(handle.clone());
    let response = router
        .oneshot(
            Request::get(format!("/api/v1/specs/{key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{key}");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_one_of_the_seven_examples_is_collected_without_approval() {
    let mut env = Env::start().await;
    // The defaults of the guard (20 %, 10), as a new user runs them.
    let handle = env.operator("a").await;
    let keys = push_examples(&env).await;
    env.settle(Duration::from_millis(300)).await;

    // order-api has a job, config entries, a Vault policy and role: under the old rule
    // (a share of objects) deleting it was blocked.
    let removed = "trading/order-api";
    assert!(keys.iter().any(|k| k == removed), "{keys:?}");
    env.delete_spec(removed).await;
    wait_for(
        "the removed spec's objects and status to be collected",
        steward_e2e::WAIT,
        || async {
            let left = left_of(&env, removed).await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        },
    )
    .await;
    assert!(
        env.status_json("_gc").await.is_none(),
        "nothing was blocked"
    );
    assert!(handle.metrics_text().contains("steward_gc_blocked 0"));
    assert!(
        handle
            .recorder()
            .for_key("_gc", 10)
            .iter()
            .all(|e| e.reason != "MassDeletionBlocked")
    );
    // The other six are untouched.
    for key in keys.iter().filter(|k| *k != removed) {
        assert_eq!(env.status(key).await.unwrap().phase, Phase::Synced, "{key}");
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiping_the_seven_examples_is_blocked_and_their_statuses_say_so_until_approved() {
    let mut env = Env::start().await;
    let handle = env.operator("a").await;
    let router = steward_operator::api::router(handle.clone());
    let keys = push_examples(&env).await;
    env.settle(Duration::from_millis(300)).await;

    assert!(
        env.clients
            .consul
            .kv_delete_tree("steward/specs/")
            .await
            .unwrap()
    );
    let gc = wait_for(
        "the GC status to say Blocked",
        steward_e2e::WAIT,
        || async {
            match env.status_json("_gc").await {
                Some(v) if v["phase"] == "Blocked" => Ok(v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(gc["specs"].as_array().unwrap().len(), 7, "{gc}");
    assert_eq!(gc["owningSpecs"], 7, "{gc}");
    let digest = gc["digest"].as_str().unwrap().to_owned();
    let command = format!("steward gc approve --digest {digest}");
    assert!(gc["message"].as_str().unwrap().contains(&command), "{gc}");

    // Each removed spec says Blocked, with the command, in KV (`steward status`) and in
    // the API; none says Synced.
    for key in &keys {
        let s = env
            .wait_status(key, "Blocked by the guard", |s| s.phase == Phase::Blocked)
            .await;
        assert!(s.message.contains(&command), "{key}: {}", s.message);
        let removed = s.condition("Removed").unwrap();
        assert_eq!(removed.reason, "MassDeletionBlocked");
        // The operator records its write once the transaction's answer is back, a moment
        // after KV shows it.
        wait_for("the API to show Blocked", steward_e2e::WAIT, || async {
            let api = api_spec(&handle, key).await;
            if api["status"]["phase"] == "Blocked" {
                Ok(())
            } else {
                Err(format!("{key}: {api}"))
            }
        })
        .await;
    }
    // Sweep after sweep, nothing is deleted and nothing is rewritten.
    let before = env.status_json("storefront/web-api").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.status_json("storefront/web-api").await, before);
    for key in &keys {
        let (ns, name) = key.split_once('/').unwrap();
        assert!(!env.job(ns, name).await.unwrap().view.stop, "{key}");
    }

    let (status, body) = post_approve(&router, &digest).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(
        "every removed spec to be collected",
        steward_e2e::WAIT,
        || async {
            let mut left = Vec::new();
            for key in &keys {
                left.extend(left_of(&env, key).await);
            }
            if env.status_json("_gc").await.is_some() {
                left.push("the _gc status".into());
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        },
    )
    .await;
    assert!(handle.metrics_text().contains("steward_gc_blocked 0"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_spec_whose_objects_cannot_be_deleted_says_deleting_with_the_failure() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    // Nomad refuses to stop the job (a token without the grant).
    let refuse = env.sim.faults().add(steward_sim::FaultRule {
        id: 0,
        product: steward_sim::Product::Nomad,
        path_prefix: Some("/v1/job/web".into()),
        methods: Some(vec!["DELETE".into()]),
        count: None,
        kind: steward_sim::FaultRuleKind::Error {
            status: 403,
            rate: 1.0,
        },
    });
    env.delete_spec("shop/web").await;
    let s = env
        .wait_status("shop/web", "Deleting with the failure", |s| {
            s.phase == Phase::Deleting && s.message.contains("could not delete")
        })
        .await;
    assert!(s.message.contains("nomad-job web"), "{}", s.message);
    let removed = s.condition("Removed").unwrap();
    assert_eq!(removed.reason, "DeleteFailed");
    // The route went first (reverse apply order); the job and what comes after it stay.
    assert!(env.entry("http-route", "shop-web").await.is_none());
    assert!(env.entry("service-defaults", "web").await.is_some());

    // Once Nomad lets it, the next pass finishes the job and the status goes.
    assert!(env.sim.faults().remove(refuse));
    wait_for(
        "the removed spec to be collected",
        steward_e2e::WAIT,
        || async {
            let left = left_of(&env, "shop/web").await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        },
    )
    .await;
    env.finish().await;
}
