//! Paused-time tests of the watch helper against a scripted fake source.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use steward_hashi::{
    BackoffConfig, Error, Product, QueryMeta, Response, WatchConfig, watch, watch_by,
};
use tokio::time::Instant;

/// One scripted answer: `Ok((index, value))` or an error.
type Step = Result<(u64, &'static str), ()>;

#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    /// (index sent, time of the call)
    calls: Mutex<Vec<(u64, Instant)>>,
}

fn unavailable() -> Error {
    steward_hashi::error::classify_status(
        Product::Consul,
        &http::Method::GET,
        "/v1/kv/x",
        500,
        "No cluster leader".into(),
    )
}

fn source(steps: Vec<Step>) -> Arc<Script> {
    Arc::new(Script {
        steps: Mutex::new(steps.into()),
        calls: Mutex::new(Vec::new()),
    })
}

fn fetcher(
    script: Arc<Script>,
) -> impl FnMut(u64) -> futures::future::BoxFuture<'static, steward_hashi::Result<Response<String>>>
+ Send
+ 'static {
    move |index| {
        let script = script.clone();
        Box::pin(async move {
            script.calls.lock().unwrap().push((index, Instant::now()));
            let step = script.steps.lock().unwrap().pop_front();
            match step {
                Some(Ok((i, v))) => Ok(Response {
                    value: v.to_owned(),
                    meta: QueryMeta {
                        index: i,
                        known_leader: true,
                        last_contact: Duration::ZERO,
                    },
                }),
                Some(Err(())) => Err(unavailable()),
                // script exhausted: behave like a blocking query that never returns
                None => futures::future::pending().await,
            }
        })
    }
}

fn quiet() -> WatchConfig {
    WatchConfig {
        backoff: WatchConfig::default().backoff.jitter(0.0),
        min_interval: Duration::ZERO,
        ..WatchConfig::default()
    }
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(3600), s.next())
        .await
        .expect("stream yielded in time")
        .expect("stream did not end")
}

fn sent(script: &Script) -> Vec<u64> {
    script
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _)| *i)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn first_read_is_non_blocking_and_zero_is_treated_as_one() {
    // a fresh Nomad answers index 0: the next request must not spin on index 0
    let script = source(vec![Ok((0, "a")), Ok((0, "a")), Ok((3, "b"))]);
    let mut w = Box::pin(watch(fetcher(script.clone()), quiet()));
    assert_eq!(next(&mut w).await.unwrap().value, "a");
    assert_eq!(next(&mut w).await.unwrap().value, "b");
    assert_eq!(sent(&script), [0, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn unchanged_wakeups_are_suppressed() {
    let script = source(vec![Ok((5, "a")), Ok((5, "a")), Ok((6, "a")), Ok((9, "b"))]);
    let mut w = Box::pin(watch(fetcher(script.clone()), quiet()));
    let first = next(&mut w).await.unwrap();
    assert_eq!((first.value.as_str(), first.meta.index), ("a", 5));
    let second = next(&mut w).await.unwrap();
    assert_eq!((second.value.as_str(), second.meta.index), ("b", 9));
    assert_eq!(sent(&script), [0, 5, 5, 6]);
}

#[tokio::test(start_paused = true)]
async fn an_index_going_backwards_resets_to_zero() {
    let script = source(vec![
        Ok((50, "a")),
        Ok((10, "b")),
        Ok((10, "b")),
        Ok((11, "c")),
    ]);
    let mut w = Box::pin(watch(fetcher(script.clone()), quiet()));
    assert_eq!(next(&mut w).await.unwrap().value, "a");
    assert_eq!(next(&mut w).await.unwrap().value, "b");
    assert_eq!(next(&mut w).await.unwrap().value, "c");
    assert_eq!(sent(&script), [0, 50, 0, 10]);
}

#[tokio::test(start_paused = true)]
async fn errors_are_items_followed_by_capped_exponential_backoff() {
    let config = WatchConfig {
        backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_millis(400))
            .jitter(0.0),
        ..quiet()
    };
    let script = source(vec![
        Ok((1, "a")),
        Err(()),
        Err(()),
        Err(()),
        Err(()),
        Ok((2, "b")),
    ]);
    let mut w = Box::pin(watch(fetcher(script.clone()), config));
    assert_eq!(next(&mut w).await.unwrap().value, "a");
    for _ in 0..4 {
        let e = next(&mut w).await.unwrap_err();
        assert!(e.is_retryable());
    }
    assert_eq!(next(&mut w).await.unwrap().value, "b");
    let calls = script.calls.lock().unwrap().clone();
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_millis())
        .collect();
    assert_eq!(gaps, [0, 100, 200, 400, 400], "doubling, capped at 400 ms");
    // the index is kept across errors
    assert_eq!(sent(&script), [0, 1, 1, 1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn backoff_starts_over_after_a_healthy_period() {
    let config = WatchConfig {
        backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(10))
            .jitter(0.0)
            .reset_after(Duration::from_secs(30)),
        ..quiet()
    };
    let script = Arc::new(Script::default());
    let s2 = script.clone();
    // errors, then healthy answers spread over 60 s (scripted with sleeps), then an error
    let mut phase = 0u32;
    let fetch = move |index: u64| {
        let script = s2.clone();
        phase += 1;
        let p = phase;
        Box::pin(async move {
            script.calls.lock().unwrap().push((index, Instant::now()));
            match p {
                1 | 2 => Err(unavailable()),
                3 => Ok(Response {
                    value: "a".to_owned(),
                    meta: QueryMeta {
                        index: 2,
                        ..Default::default()
                    },
                }),
                4 => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Response {
                        value: "b".to_owned(),
                        meta: QueryMeta {
                            index: 3,
                            ..Default::default()
                        },
                    })
                }
                5 => Err(unavailable()),
                _ => futures::future::pending().await,
            }
        }) as futures::future::BoxFuture<'static, steward_hashi::Result<Response<String>>>
    };
    let mut w = Box::pin(watch(fetch, config));
    assert!(next(&mut w).await.is_err());
    assert!(next(&mut w).await.is_err());
    assert_eq!(next(&mut w).await.unwrap().value, "a");
    assert_eq!(next(&mut w).await.unwrap().value, "b");
    assert!(next(&mut w).await.is_err());
    // one more poll starts the 6th call after the backoff
    let _ = tokio::time::timeout(Duration::from_secs(5), w.next()).await;
    let calls = script.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 6);
    assert_eq!((calls[1].1 - calls[0].1).as_millis(), 100);
    assert_eq!((calls[2].1 - calls[1].1).as_millis(), 200);
    assert_eq!(
        (calls[5].1 - calls[4].1).as_millis(),
        100,
        "reset after 60 s healthy"
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_stays_within_bounds() {
    let config = WatchConfig {
        // half of each delay is random: it lands in [d/2, d]
        backoff: BackoffConfig::new(Duration::from_millis(200), Duration::from_secs(1)).jitter(0.5),
        min_interval: Duration::ZERO,
        ..WatchConfig::default()
    };
    let script = source(vec![Err(()), Err(()), Err(()), Ok((1, "a"))]);
    let mut w = Box::pin(watch(fetcher(script.clone()), config));
    for _ in 0..3 {
        assert!(next(&mut w).await.is_err());
    }
    assert_eq!(next(&mut w).await.unwrap().value, "a");
    let calls = script.calls.lock().unwrap().clone();
    let expect = [200u128, 400, 800];
    for (i, w) in calls.windows(2).enumerate() {
        let gap = (w[1].1 - w[0].1).as_millis();
        assert!(
            gap >= expect[i] / 2 && gap <= expect[i],
            "gap {gap} for {}",
            expect[i]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn requests_are_rate_limited_after_the_burst() {
    let config = WatchConfig {
        min_interval: Duration::from_millis(100),
        burst: 2,
        ..quiet()
    };
    let script = source(
        (1..=5)
            .map(|i| Ok((i, ["a", "b", "c", "d", "e"][i as usize - 1])))
            .collect(),
    );
    let mut w = Box::pin(watch(fetcher(script.clone()), config));
    for _ in 0..5 {
        next(&mut w).await.unwrap();
    }
    let calls = script.calls.lock().unwrap().clone();
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_millis())
        .collect();
    assert_eq!(gaps, [0, 100, 100, 100]);
}

#[tokio::test(start_paused = true)]
async fn watch_by_compares_a_key() {
    let script = source(vec![Ok((1, "a-1")), Ok((2, "a-2")), Ok((3, "b-3"))]);
    let mut w = Box::pin(watch_by(fetcher(script.clone()), quiet(), |v: &String| {
        v.split('-').next().unwrap().to_owned()
    }));
    assert_eq!(next(&mut w).await.unwrap().value, "a-1");
    assert_eq!(next(&mut w).await.unwrap().value, "b-3");
}
