//! The mass-deletion guard: a wiped spec prefix deletes nothing until the exact deletion
//! set is approved through the HTTP API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use steward_e2e::{Env, wait_for, web};
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
    let digest = gc["digest"].as_str().unwrap().to_owned();
    assert_eq!(gc["conditions"][0]["reason"], "MassDeletion");
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
