#![allow(clippy::unwrap_used)]

use super::*;
use crate::backoff::BackoffConfig;
use futures::channel::mpsc;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
#[error("step failed")]
struct StepFailed;

/// Test data: a log of (key, time) calls and a behaviour per call.
#[derive(Default)]
struct Data {
    calls: Mutex<Vec<(String, Instant)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    dropped: AtomicUsize,
}

struct DropCounter<'a>(&'a AtomicUsize, bool);
impl Drop for DropCounter<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn config(concurrency: usize) -> ControllerConfig {
    ControllerConfig {
        concurrency,
        queue: QueueConfig {
            backoff: BackoffConfig::new(Duration::from_millis(50), Duration::from_secs(1))
                .jitter(0.0),
            max_rate: 0.0,
            burst: 1,
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

fn times(data: &Data, key: &str, start: Instant) -> Vec<Duration> {
    data.calls
        .lock()
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, at)| *at - start)
        .collect()
}

async fn finish(task: tokio::task::JoinHandle<()>, shutdown: &CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn reconcile_runs_once_per_key_and_honours_requeue_after() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let controller = Controller::new(config(4), None).watches(rx, |k| vec![k]);
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            ctx.calls.lock().push((key.clone(), Instant::now()));
            if key == "ns/periodic" {
                Ok::<_, StepFailed>(Action::requeue(Duration::from_secs(10)))
            } else {
                Ok(Action::await_change())
            }
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    for k in ["ns/a", "ns/b", "ns/a", "ns/periodic", "ns/a"] {
        tx.unbounded_send(k.to_owned()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(times(&ctx, "ns/a", start), vec![Duration::ZERO]);
    assert_eq!(times(&ctx, "ns/b", start), vec![Duration::ZERO]);
    let s = Duration::from_secs;
    assert_eq!(times(&ctx, "ns/periodic", start), vec![s(0), s(10), s(20)]);
    // a later trigger runs the key again
    tx.unbounded_send("ns/a".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(times(&ctx, "ns/a", start), vec![s(0), s(25)]);
    finish(task, &shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_exponentially_and_success_resets() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let controller = Controller::new(config(1), None).watches(rx, |k| vec![k]);
    let queue = controller.queue();
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            let n = {
                let mut calls = ctx.calls.lock();
                calls.push((key, Instant::now()));
                calls.len()
            };
            // fail 4 times, succeed once, then fail again
            if n == 5 {
                Ok(Action::await_change())
            } else {
                Err(StepFailed)
            }
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    tx.unbounded_send("k".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ms = Duration::from_millis;
    // 0, +50, +100, +200, +400 (success)
    assert_eq!(
        times(&ctx, "k", start),
        vec![ms(0), ms(50), ms(150), ms(350), ms(750)]
    );
    assert_eq!(
        queue.failures(&"k".to_owned()),
        0,
        "success forgets the failures"
    );
    tx.unbounded_send("k".into()).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let t = times(&ctx, "k", start);
    assert_eq!(
        t.len(),
        7,
        "after the reset the first retry is 50 ms again: {t:?}"
    );
    assert_eq!(t[6] - t[5], ms(50));
    finish(task, &shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let controller = Controller::new(config(2), None).watches(rx, |k| vec![k]);
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            ctx.calls.lock().push((key, Instant::now()));
            let now = ctx.running.fetch_add(1, Ordering::SeqCst) + 1;
            ctx.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, StepFailed>(Action::await_change())
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    for i in 0..6 {
        tx.unbounded_send(format!("k{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(ctx.calls.lock().len(), 6);
    assert_eq!(ctx.max_running.load(Ordering::SeqCst), 2);
    finish(task, &shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn losing_leadership_cancels_in_flight_reconciles_and_pauses_the_queue() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let (lead_tx, lead_rx) = watch::channel(Leadership::Follower);
    let controller = Controller::new(config(4), None)
        .watches(rx, |k| vec![k])
        .with_leadership(lead_rx);
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let fences = Arc::new(Mutex::new(Vec::new()));
    let f2 = fences.clone();
    let task = tokio::spawn(controller.run(
        move |key: String, ctx: Arc<Context<Data>>, lease: Lease| {
            let fences = f2.clone();
            async move {
                fences.lock().push(lease.fence().map(|f| f.lock_index));
                ctx.calls.lock().push((key, Instant::now()));
                let mut guard = DropCounter(&ctx.dropped, false);
                tokio::time::sleep(Duration::from_secs(60)).await;
                guard.1 = true;
                Ok::<_, StepFailed>(Action::await_change())
            }
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    tx.unbounded_send("ns/a".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(ctx.calls.lock().is_empty(), "followers do not reconcile");

    let term1 = CancellationToken::new();
    lead_tx.send_replace(Leadership::Leader {
        session_id: "s1".into(),
        lock_index: 7,
        token: term1.clone(),
        key: "steward/leader".into(),
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ctx.calls.lock().len(), 1);
    // Leadership lost: the elector cancels the token first.
    term1.cancel();
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        ctx.dropped.load(Ordering::SeqCst),
        1,
        "in-flight reconcile dropped"
    );
    lead_tx.send_replace(Leadership::Follower);
    tx.unbounded_send("ns/b".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ctx.calls.lock().len(), 1, "nothing runs between terms");

    let term2 = CancellationToken::new();
    lead_tx.send_replace(Leadership::Leader {
        session_id: "s2".into(),
        lock_index: 8,
        token: term2.clone(),
        key: "steward/leader".into(),
    });
    tokio::time::sleep(Duration::from_secs(61)).await;
    let mut keys: Vec<String> = ctx
        .calls
        .lock()
        .iter()
        .skip(1)
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["ns/a".to_owned(), "ns/b".to_owned()],
        "cancelled key reruns"
    );
    assert_eq!(*fences.lock(), vec![Some(7), Some(8), Some(8)]);
    finish(task, &shutdown).await;
    assert_eq!(ctx.dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_in_flight_work_within_the_grace_period() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let resynced = Arc::new(AtomicUsize::new(0));
    let r2 = resynced.clone();
    let controller = Controller::new(config(4), None)
        .watches(rx, |k| vec![k])
        .resync_on_leadership(move || {
            r2.fetch_add(1, Ordering::SeqCst);
            vec!["from-resync".to_owned()]
        });
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            ctx.calls.lock().push((key.clone(), Instant::now()));
            let mut guard = DropCounter(&ctx.dropped, false);
            let d = if key == "slow" { 600 } else { 2 };
            tokio::time::sleep(Duration::from_secs(d)).await;
            guard.1 = true;
            Ok::<_, StepFailed>(Action::await_change())
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    tx.unbounded_send("quick".into()).unwrap();
    tx.unbounded_send("slow".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ctx.calls.lock().len(), 3);
    assert_eq!(resynced.load(Ordering::SeqCst), 1);
    let start = Instant::now();
    finish(task, &shutdown).await;
    // quick finished (1 s left), slow dropped at the 5 s grace
    assert_eq!(Instant::now() - start, Duration::from_secs(5));
    assert_eq!(ctx.dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn events_map_to_the_keys_their_mapper_names() {
    // An owned object's event names its owner; one about something unowned, nobody.
    let (tx, rx) = mpsc::unbounded::<(&'static str, Option<&'static str>)>();
    let controller = Controller::new(config(4), None).watches(rx, |(_object, owner)| {
        owner.map(|o| format!("ns/{o}")).into_iter().collect()
    });
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            ctx.calls.lock().push((key, Instant::now()));
            Ok::<_, StepFailed>(Action::await_change())
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    tx.unbounded_send(("job:a", Some("a"))).unwrap();
    tx.unbounded_send(("other", None)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.unbounded_send(("job:b", Some("b"))).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys: Vec<String> = ctx.calls.lock().iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec!["ns/a".to_owned(), "ns/b".to_owned()]);
    finish(task, &shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reconcile_is_retried_with_backoff() {
    let (tx, rx) = mpsc::unbounded::<String>();
    let controller = Controller::new(config(1), None).watches(rx, |k| vec![k]);
    let ctx = Arc::new(Context::new(Data::default()));
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(controller.run(
        |key: String, ctx: Arc<Context<Data>>, _lease| async move {
            let n = {
                let mut c = ctx.calls.lock();
                c.push((key, Instant::now()));
                c.len()
            };
            assert!(n > 1, "first attempt panics");
            Ok::<_, StepFailed>(Action::await_change())
        },
        |_k: &String, _e: &StepFailed, _ctx| Action::backoff(),
        ctx.clone(),
        shutdown.clone(),
    ));
    tx.unbounded_send("k".into()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        times(&ctx, "k", start),
        vec![Duration::ZERO, Duration::from_millis(50)]
    );
    finish(task, &shutdown).await;
}
