//! The executor against a scripted local server: retries, status mapping, timeouts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use steward_hashi::{
    BackoffConfig, ConsulClient, ConsulConfig, Error, QueryOptions, RetryPolicy, WriteOptions,
};

/// A server that answers `fail_status` to the first `failures` requests, then like Consul.
async fn server(failures: usize, fail_status: u16) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let h = h.clone();
        async move {
            let n = h.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                return (StatusCode::from_u16(fail_status).unwrap(), "No cluster leader").into_response();
            }
            if req.method() == axum::http::Method::PUT {
                return ([("content-type", "application/json")], "true").into_response();
            }
            (
                [("content-type", "application/json"), ("X-Consul-Index", "5")],
                r#"[{"Key":"a","CreateIndex":5,"ModifyIndex":5,"LockIndex":0,"Flags":0,"Value":null}]"#,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

fn client(addr: std::net::SocketAddr) -> ConsulClient {
    ConsulClient::new(
        ConsulConfig::default()
            .with_address(&addr.to_string())
            .unwrap()
            .with_retry(RetryPolicy::new(
                3,
                BackoffConfig::new(Duration::from_millis(5), Duration::from_millis(20)),
            )),
    )
    .unwrap()
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_retry_until_success() {
    let (addr, hits) = server(2, 500).await;
    let r = bounded(client(addr).kv_get("a", &QueryOptions::new()))
        .await
        .unwrap();
    assert_eq!(r.value.unwrap().key, "a");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn reads_give_up_after_max_attempts() {
    let (addr, hits) = server(10, 503).await;
    let err = bounded(client(addr).kv_get("a", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unavailable {
            status: Some(503),
            ..
        }
    ));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn writes_are_sent_once_after_a_5xx_and_cas_writes_again_after_a_429() {
    let (addr, hits) = server(1, 500).await;
    let c = client(addr);
    assert!(
        bounded(c.kv_put("a", b"x", None, &WriteOptions::new()))
            .await
            .is_err()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A 5xx may follow a write that landed: even a check-and-set write is not repeated
    // (the caller looks first).
    let (addr, hits) = server(1, 500).await;
    assert!(
        bounded(client(addr).kv_put("a", b"x", None, &WriteOptions::cas(5)))
            .await
            .is_err()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A 429 was refused before anything happened.
    let (addr, hits) = server(1, 429).await;
    assert!(
        bounded(client(addr).kv_put("a", b"x", None, &WriteOptions::cas(5)))
            .await
            .unwrap()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let (addr, hits) = server(1, 429).await;
    assert!(
        bounded(client(addr).kv_put("a", b"x", None, &WriteOptions::new()))
            .await
            .is_err()
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a blind write is never repeated"
    );
}

#[tokio::test]
async fn non_retryable_statuses_are_not_retried() {
    for status in [400, 403, 501] {
        let (addr, hits) = server(5, status).await;
        let err = bounded(client(addr).kv_get("a", &QueryOptions::new()))
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{status}: {err:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}");
    }
}

#[tokio::test]
async fn connection_refused_is_retried_even_for_blind_writes_and_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = bounded(client(addr).kv_put("a", b"x", None, &WriteOptions::new()))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(err.to_string().contains("connection failed"), "{err}");
}

#[tokio::test]
async fn garbage_meta_headers_are_decode_errors() {
    let app = axum::Router::new().fallback(|| async {
        (
            [
                ("content-type", "application/json"),
                ("X-Consul-Index", "not-a-number"),
            ],
            "[]",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let err = bounded(client(addr).kv_list("a", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

/// A server that holds every request until `release` is set, counting the point reads
/// (`GET /v1/kv/a`) and the listings (`?recurse`) in flight.
struct HeldServer {
    addr: std::net::SocketAddr,
    points: Arc<AtomicUsize>,
    most_points: Arc<AtomicUsize>,
    lists: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

async fn held_server() -> HeldServer {
    let (release, released) = tokio::sync::watch::channel(false);
    let points = Arc::new(AtomicUsize::new(0));
    let most_points = Arc::new(AtomicUsize::new(0));
    let lists = Arc::new(AtomicUsize::new(0));
    let (p, m, l) = (points.clone(), most_points.clone(), lists.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (p, m, l, mut released) = (p.clone(), m.clone(), l.clone(), released.clone());
        async move {
            let list = req.uri().query().is_some_and(|q| q.contains("recurse"));
            let counter = if list { &l } else { &p };
            let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if !list {
                m.fetch_max(now, Ordering::SeqCst);
            }
            let _ = released.wait_for(|r| *r).await;
            counter.fetch_sub(1, Ordering::SeqCst);
            // A single read and a listing answer alike: an array of pairs.
            let body = r#"[{"Key":"a","CreateIndex":5,"ModifyIndex":5,"LockIndex":0,"Flags":0,"Value":null}]"#;
            ([("content-type", "application/json"), ("X-Consul-Index", "5")], body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    HeldServer {
        addr,
        points,
        most_points,
        lists,
        release,
    }
}

/// Waits (at most 10 s, in 10 ms steps) until `counter` reads `want`.
async fn until_count(counter: &AtomicUsize, want: usize) {
    for _ in 0..1000 {
        if counter.load(Ordering::SeqCst) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never saw {want} requests in flight");
}

#[tokio::test]
async fn point_requests_wait_for_a_turn_and_listings_do_not() {
    let server = held_server().await;
    let consul = ConsulClient::new(
        ConsulConfig::default()
            .with_address(&server.addr.to_string())
            .unwrap()
            .with_max_point_requests(2),
    )
    .unwrap();
    let reads: Vec<_> = (0..6)
        .map(|_| {
            let consul = consul.clone();
            tokio::spawn(async move { consul.kv_get("a", &QueryOptions::new()).await })
        })
        .collect();
    until_count(&server.points, 2).await;
    // The other four wait for a turn, not for the server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.points.load(Ordering::SeqCst), 2);
    // A listing is not held back by the point reads holding every turn.
    let list = {
        let consul = consul.clone();
        tokio::spawn(async move { consul.kv_list("a", &QueryOptions::new()).await })
    };
    until_count(&server.lists, 1).await;
    server.release.send(true).unwrap();
    for read in reads {
        let pair = bounded(read).await.unwrap().unwrap();
        assert_eq!(pair.value.unwrap().key, "a");
    }
    assert_eq!(bounded(list).await.unwrap().unwrap().value.len(), 1);
    assert_eq!(server.most_points.load(Ordering::SeqCst), 2);
}
