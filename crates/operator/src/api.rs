//! The HTTP API (axum):
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/healthz` | `ok` while the process serves |
//! | GET | `/readyz` | 200 once the specs and statuses have listed and every other cache has listed or fails with a known reason (`degraded`), else 503; JSON with each cache and its last error, and `cluster`: the servers' versions, the features found at start-up and what Steward does without the missing ones (`null` when detection did not run) |
//! | GET | `/metrics` | Prometheus/OpenMetrics text |
//! | GET | `/api/v1/specs` | every spec with its status |
//! | GET | `/api/v1/specs/{ns}/{name}` | status, rendered desired objects, current diff |
//! | GET | `/api/v1/events?key=ns/name` | server-sent events (buffered, then live) |
//! | GET | `/api/v1/events?key=ns/name&follow=false` | the buffered events as a JSON list |
//! | GET | `/api/v1/gc` | the blocked deletion set, if any |
//! | GET | `/api/v1/edge` | the edge mode; the connected Envoys with their sent and acked versions per type and last NACK; per spec with edge routes: its verdict and acks (404 `{"error"}` when the mode has no xDS) |
//! | POST | `/api/v1/gc/approve` | `{"digest": "..."}` approves exactly that deletion set |
//!
//! Every request that is not a `GET` or `HEAD` needs `Authorization: Bearer <token>`
//! with the operator's API token ([`crate::api_token`]): 401 without it or with another
//! token; 403 when the operator has no token (the API is then read-only). Reads need no
//! token and never show one (nor any server token).

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use steward_runtime::events::Event;
use tokio::sync::broadcast;

use crate::api_token::{Access, access};
use crate::gc::ApproveError;
use crate::handle::OperatorHandle;

/// Events returned by the non-follow form (and replayed before live ones).
const EVENT_REPLAY: usize = 1000;

/// The API router on `handle`.
pub fn router(handle: OperatorHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/specs", get(list_specs))
        .route("/api/v1/specs/{ns}/{name}", get(get_spec))
        .route("/api/v1/events", get(events))
        .route("/api/v1/gc", get(gc_state))
        .route("/api/v1/edge", get(edge_state))
        .route("/api/v1/gc/approve", post(gc_approve))
        .layer(middleware::from_fn_with_state(handle.clone(), authorize))
        .with_state(handle)
}

/// Lets reads through and requires the API token for everything else.
async fn authorize(
    State(h): State<OperatorHandle>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = h.shared().config.api_token.as_ref();
    let refuse = |status: StatusCode, error: &str| {
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"steward\""),
            );
        }
        response
    };
    match access(token, authorization) {
        Access::Granted => next.run(request).await,
        Access::ReadOnly => refuse(
            StatusCode::FORBIDDEN,
            "the API is read-only: this operator was started without an API token \
             (STEWARD_API_TOKEN or STEWARD_API_TOKEN_FILE)",
        ),
        Access::Missing => refuse(
            StatusCode::UNAUTHORIZED,
            "this request changes state and needs `Authorization: Bearer <token>` with the \
             operator's API token (`steward gc approve` sends STEWARD_API_TOKEN or \
             STEWARD_API_TOKEN_FILE)",
        ),
        Access::Wrong => refuse(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this operator's API token",
        ),
    }
}

async fn readyz(State(h): State<OperatorHandle>) -> Response {
    let caches = h.cache_health();
    // A cache that cannot sync holds back only the specs that need it: the instance is
    // ready, degraded, and says why.
    let degraded: Vec<_> = caches
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| {
            json!({
                "cache": c.name,
                "synced": c.synced,
                "error": c.error,
                "failingForSeconds": c.failing_for_seconds,
            })
        })
        .collect();
    let ready = h.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "leader": h.is_leader(),
            "degraded": degraded,
            "caches": caches,
            "edge": json!({
                "mode": h.config().edge.mode.as_str(),
                "xdsListen": h.config().edge.xds_listen,
                "degraded": h.config().edge.degraded,
            }),
            "cluster": h.cluster().map(|c| json!({
                "servers": c.servers,
                "features": c.features,
                "degradations": c.degradations(),
            })),
        })),
    )
        .into_response()
}

async fn metrics(State(h): State<OperatorHandle>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics_text(),
    )
        .into_response()
}

async fn list_specs(State(h): State<OperatorHandle>) -> Json<serde_json::Value> {
    let shared = h.shared();
    let specs: Vec<_> = shared
        .caches
        .specs
        .list()
        .iter()
        .map(|e| {
            json!({
                "key": e.key,
                "generation": e.generation,
                "status": h.status(&e.key),
            })
        })
        .collect();
    Json(json!({"specs": specs}))
}

async fn get_spec(
    State(h): State<OperatorHandle>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let key = format!("{ns}/{name}");
    let shared = h.shared();
    let entry = shared.caches.specs.get(&key);
    let status = h.status(&key);
    if entry.is_none() && status.is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no spec {key}")})),
        )
            .into_response();
    }
    let (desired, diff) = crate::reconcile::describe_spec(shared, &key)
        .await
        .unwrap_or((serde_json::Value::Null, serde_json::Value::Null));
    Json(json!({
        "key": key,
        "generation": entry.as_ref().map(|e| e.generation),
        // For reading only: a spec that is not UTF-8 is Invalid, with its diagnostic.
        "spec": entry.as_ref().map(|e| String::from_utf8_lossy(&e.value.bytes()).into_owned()),
        "status": status,
        "desired": desired,
        "diff": diff,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    key: Option<String>,
    follow: Option<bool>,
}

fn wanted(key: Option<&str>, e: &Event) -> bool {
    key.is_none_or(|k| e.key == k)
}

async fn events(State(h): State<OperatorHandle>, Query(q): Query<EventsQuery>) -> Response {
    let recorder = h.recorder();
    if q.follow == Some(false) {
        let list = match &q.key {
            Some(k) => recorder.for_key(k, EVENT_REPLAY),
            None => recorder.last(EVENT_REPLAY),
        };
        return Json(json!({"events": list})).into_response();
    }
    // Subscribe before reading the buffer so nothing falls in between.
    let live = recorder.subscribe();
    let replay = match &q.key {
        Some(k) => recorder.for_key(k, EVENT_REPLAY),
        None => recorder.last(EVENT_REPLAY),
    };
    Sse::new(event_stream(replay, live, q.key))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .event(e.reason.clone())
        .json_data(e)
        .unwrap_or_else(|_| SseEvent::default().data("{}"))
}

fn event_stream(
    replay: Vec<Event>,
    live: broadcast::Receiver<Event>,
    key: Option<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    let last_replayed = replay.last().cloned();
    let replayed = futures::stream::iter(replay.into_iter().map(|e| Ok(sse(&e))));
    let live = futures::stream::unfold(
        (live, key, last_replayed),
        |(mut rx, key, mut skip_until)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        // Events recorded between subscribing and reading the buffer
                        // were replayed already.
                        if let Some(last) = &skip_until {
                            if e.time <= last.time {
                                if e == *last {
                                    skip_until = None;
                                }
                                continue;
                            }
                            skip_until = None;
                        }
                        if wanted(key.as_deref(), &e) {
                            return Some((Ok(sse(&e)), (rx, key, skip_until)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let note = SseEvent::default()
                            .event("lagged")
                            .data(format!("{n} events skipped"));
                        return Some((Ok(note), (rx, key, skip_until)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    futures::StreamExt::chain(replayed, live)
}

async fn edge_state(State(h): State<OperatorHandle>) -> Response {
    let config = &h.config().edge;
    let Some(edge) = h.shared().edge.clone() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!(
                "the edge mode is {}: no xDS server runs (use --edge-mode xds or both)",
                config.mode.as_str()
            )})),
        )
            .into_response();
    };
    let snapshot = edge.snapshot();
    let versions: serde_json::Map<String, serde_json::Value> =
        steward_edge::resources::TypeKind::ALL
            .iter()
            .map(|k| (k.label().to_owned(), json!(snapshot.get(*k).version)))
            .collect();
    let specs: Vec<_> = edge
        .spec_keys()
        .into_iter()
        .map(|key| {
            json!({
                "key": key,
                "verdict": edge.verdict(&key),
                "acks": edge.ack_state(&key),
            })
        })
        .collect();
    Json(json!({
        "mode": config.mode.as_str(),
        "xdsListen": config.xds_listen,
        "degraded": config.degraded,
        "generation": snapshot.generation,
        "versions": versions,
        "proxies": edge.proxies(),
        "specs": specs,
    }))
    .into_response()
}

async fn gc_state(State(h): State<OperatorHandle>) -> Json<serde_json::Value> {
    Json(json!({"leader": h.is_leader(), "blocked": h.gc_blocked()}))
}

#[derive(Debug, Deserialize)]
struct Approve {
    digest: String,
}

async fn gc_approve(State(h): State<OperatorHandle>, Json(body): Json<Approve>) -> Response {
    match h.approve_gc(&body.digest) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"approved": body.digest}))).into_response(),
        Err(e) => {
            let status = match &e {
                ApproveError::NothingBlocked => StatusCode::NOT_FOUND,
                ApproveError::DigestMismatch { .. } => StatusCode::CONFLICT,
                ApproveError::NotLeader => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}
