//! The HTTP API: health, readiness, metrics, specs with desired objects and diff, events
//! as JSON and as server-sent events.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use futures::StreamExt as _;
use http::{Request, StatusCode};
use serde_json::Value;
use steward_e2e::{Env, wait_for, web};
use tower::ServiceExt as _;

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get_json(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (status, text) = get(router, uri).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_health_status_diffs_events_and_metrics() {
    let mut env = Env::start().await;
    let handle = env.operator("a").await;
    let router = steward_operator::api::router(handle.clone());
    assert_eq!(
        get(&router, "/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );
    wait_for("readiness", steward_e2e::WAIT, || async {
        let (status, body) = get_json(&router, "/readyz").await;
        if status == StatusCode::OK && body["ready"] == true {
            Ok(())
        } else {
            Err(body.to_string())
        }
    })
    .await;

    // Follow the events of the key before anything happens.
    let stream = router
        .clone()
        .oneshot(
            Request::get("/api/v1/events?key=shop/web")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut sse = stream.into_body().into_data_stream();

    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;

    let mut seen = String::new();
    tokio::time::timeout(steward_e2e::WAIT, async {
        while !seen.contains("event: Synced") {
            let chunk = sse.next().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no Synced event in the stream: {seen}"));
    assert!(seen.contains("event: Created"), "{seen}");
    assert!(seen.contains("\"key\":\"shop/web\""), "{seen}");

    let (status, body) = get_json(&router, "/api/v1/events?key=shop/web&follow=false").await;
    assert_eq!(status, StatusCode::OK);
    let reasons: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "Created").count(),
        6,
        "{reasons:?}"
    );

    // The KV shows the Synced status as soon as its transaction commits; the operator's
    // own view follows when the transaction's answer arrives.
    wait_for(
        "the API to show the Synced status",
        steward_e2e::WAIT,
        || async {
            let (_, body) = get_json(&router, "/api/v1/specs").await;
            if body["specs"][0]["status"]["phase"] == "Synced" {
                Ok(())
            } else {
                Err(body.to_string())
            }
        },
    )
    .await;
    let (status, body) = get_json(&router, "/api/v1/specs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["specs"][0]["key"], "shop/web");
    assert_eq!(body["specs"][0]["generation"], g);
    assert_eq!(body["specs"][0]["status"]["phase"], "Synced");

    let (status, body) = get_json(&router, "/api/v1/specs/shop/web").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["observedGeneration"], g);
    assert_eq!(body["desired"]["nomad_job"]["id"], "web");
    assert!(
        body["spec"]
            .as_str()
            .unwrap()
            .contains("registry.example/web:1.0.0")
    );
    assert_eq!(
        body["diff"]["steps"].as_array().unwrap().len(),
        0,
        "{}",
        body["diff"]
    );
    assert_eq!(
        body["diff"]["inSync"].as_array().unwrap().len(),
        6,
        "{}",
        body["diff"]
    );
    let (status, _) = get_json(&router, "/api/v1/specs/shop/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, text) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "steward_leader 1",
        "steward_specs{phase=\"Synced\"} 1",
        "steward_api_requests_total{product=\"nomad\",method=\"PUT\",code=\"200\"}",
        "steward_reconciles_total{result=\"ok\"}",
        "steward_reconcile_duration_seconds_bucket",
        "steward_gc_blocked 0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // A stale approval is refused; GC state is visible.
    let (status, body) = get_json(&router, "/api/v1/gc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["blocked"], Value::Null);
    tokio::time::sleep(Duration::from_millis(10)).await;
    env.finish().await;
}
