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

async fn post_approve(router: &axum::Router, authorization: Option<&str>) -> (StatusCode, String) {
    let mut request =
        Request::post("/api/v1/gc/approve").header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(r#"{"digest":"0000"}"#)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"steward\""));
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_api_token_and_reads_never_show_a_secret() {
    let mut env = Env::start().await;
    let with_token = steward_operator::api::router(env.operator("a").await);
    let mut config = env.config();
    config.api_token = None;
    let read_only = steward_operator::api::router(env.operator_with("b", config).await);
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;

    let (status, body) = post_approve(&with_token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, body) = post_approve(&with_token, Some("Bearer not-the-token-at-all")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = post_approve(&with_token, Some(steward_e2e::API_TOKEN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no scheme: {body}");
    // The right token reaches the handler: nothing is blocked (or, on the follower, it
    // is not the leader).
    let bearer = format!("Bearer {}", steward_e2e::API_TOKEN);
    let (status, body) = post_approve(&with_token, Some(&bearer)).await;
    assert!(
        [StatusCode::NOT_FOUND, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
        "{status} {body}"
    );
    // Without a token the API is read-only, whatever the request carries.
    let (status, body) = post_approve(&read_only, Some(&bearer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("read-only"), "{body}");

    for uri in [
        "/readyz",
        "/metrics",
        "/api/v1/specs",
        "/api/v1/specs/shop/web",
        "/api/v1/events?key=shop/web&follow=false",
        "/api/v1/gc",
    ] {
        for router in [&with_token, &read_only] {
            let (status, body) = get(router, uri).await;
            assert!(
                status.is_success() || status == StatusCode::NOT_FOUND,
                "{uri}: {status}"
            );
            assert!(
                !body.contains(steward_e2e::API_TOKEN),
                "{uri} shows the API token"
            );
            // The operators' Vault token (`root` in these tests).
            assert!(
                !body.contains("\"root\""),
                "{uri} shows the Vault token: {body}"
            );
        }
    }
    env.finish().await;
}

/// The alert rules in `deploy/prometheus/steward-rules.yml` name only metrics the
/// operator exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_name_metrics_the_operator_exports() {
    let rules = std::fs::read_to_string(steward_e2e::repo_path(
        "deploy/prometheus/steward-rules.yml",
    ))
    .unwrap();
    let mut env = Env::start().await;
    // Every family has samples once detection ran and a spec was reconciled.
    let c = &env.clients;
    let answers = steward_operator::detect::probe(&c.consul, &c.nomad, &c.vault, "jwt-nomad").await;
    let mut config = env.config();
    config.cluster = Some(steward_operator::detect::assess(&answers, "jwt-nomad"));
    let router = steward_operator::api::router(env.operator_with("a", config).await);
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    let (status, metrics) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let families: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut named = std::collections::BTreeSet::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        let mut rest = line;
        while let Some(at) = rest.find("steward_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            named.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    assert!(named.len() >= 8, "{named:?}");
    for name in &named {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            families.contains(family),
            "{name} (family {family}) is not exported; families: {families:?}"
        );
    }
    env.finish().await;
}
