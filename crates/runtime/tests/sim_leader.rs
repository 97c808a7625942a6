//! Leader election with two contenders against the simulator: exactly one leader at any
//! instant, hand-over only after the lock-delay, the deposed leader's token cancelled
//! before the new leader starts, fenced writes of a deposed leader rejected, clean
//! shutdown releasing the lock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use steward_hashi::consul::TxnOp;
use steward_hashi::{ConsulClient, ConsulConfig, QueryOptions, RetryPolicy};
use steward_runtime::backoff::BackoffConfig;
use steward_runtime::leader::{
    ConsulLock, FencedWrite, LeaderConfig, LeaderElector, Leadership, fenced_txn,
};
use steward_sim::{Sim, SimConfig};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const KEY: &str = "steward/leader";
const LOCK_DELAY: Duration = Duration::from_secs(2);

fn client(url: &str) -> ConsulClient {
    let config = ConsulConfig::default()
        .with_address(url)
        .unwrap()
        .with_retry(RetryPolicy::none())
        .with_timeout(Duration::from_secs(30));
    ConsulClient::new(config).unwrap()
}

fn config(name: &str) -> LeaderConfig {
    let mut c = LeaderConfig::new(KEY);
    c.session_name = format!("steward-{name}");
    c.value = name.as_bytes().to_vec();
    c.ttl = Duration::from_secs(10);
    c.lock_delay = LOCK_DELAY;
    c.retry_pause = Duration::from_millis(100);
    c.monitor_wait = Duration::from_secs(5);
    c.backoff = BackoffConfig::new(Duration::from_millis(50), Duration::from_millis(500));
    c
}

struct Contender {
    rx: watch::Receiver<Leadership>,
    backend: Arc<ConsulLock>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn contend(url: &str, name: &str) -> Contender {
    let backend = Arc::new(ConsulLock::new(client(url)));
    let elector = LeaderElector::new(backend.clone(), config(name));
    let rx = elector.subscribe();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(elector.run(shutdown.clone()));
    Contender {
        rx,
        backend,
        shutdown,
        task,
    }
}

/// Waits (bounded) until `pred` holds for the pair of leadership states.
async fn until(
    a: &Contender,
    b: &Contender,
    bound: Duration,
    pred: impl Fn(&Leadership, &Leadership) -> bool,
) {
    let deadline = Instant::now() + bound;
    loop {
        if pred(&a.rx.borrow(), &b.rx.borrow()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn status_write() -> TxnOp {
    TxnOp::Set {
        key: "steward/status/ns/a".into(),
        value: br#"{"phase":"Synced"}"#.to_vec(),
        flags: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contenders_hand_over_only_after_the_lock_delay() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let url = sim.consul_url();
    let admin = client(&url);
    let a = contend(&url, "a");
    let b = contend(&url, "b");

    // Sample both receivers continuously: never two leaders.
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (ra, rb) = (a.rx.clone(), b.rx.clone());
        let (stop, violations, samples) = (stop.clone(), violations.clone(), samples.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if ra.borrow().is_leader() && rb.borrow().is_leader() {
                    violations.fetch_add(1, Ordering::SeqCst);
                }
                samples.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    until(&a, &b, Duration::from_secs(20), |x, y| {
        x.is_leader() || y.is_leader()
    })
    .await;
    let (leader, other) = if a.rx.borrow().is_leader() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let first = leader.rx.borrow().clone();
    let fence = first.fence().unwrap();
    let token = first.token().unwrap().clone();
    let deposed_backend = leader.backend.clone();
    assert!(fence.lock_index >= 1);

    // The leader's fenced status write goes through.
    let w = fenced_txn(&*leader.backend, &fence, [status_write()])
        .await
        .unwrap();
    assert!(matches!(w, FencedWrite::Committed(_)), "{w:?}");
    // A fence naming another session is rejected (409 rolled back at the guard).
    let mut forged = fence.clone();
    forged.session = "00000000-0000-0000-0000-000000000000".into();
    let w = fenced_txn(&*other.backend, &forged, [status_write()])
        .await
        .unwrap();
    assert_eq!(w, FencedWrite::Fenced);

    // Kill the leader's session through the HTTP API.
    let killed_at = Instant::now();
    assert!(admin.session_destroy(&fence.session).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), token.cancelled())
        .await
        .expect("the deposed leader's token is cancelled");
    let cancelled_at = Instant::now();
    assert!(
        cancelled_at - killed_at < LOCK_DELAY,
        "deposed after {:?}",
        cancelled_at - killed_at
    );
    // Follower is published right after the cancellation; nobody leads during the
    // lock-delay.
    until(&a, &b, Duration::from_millis(500), |x, y| {
        !x.is_leader() && !y.is_leader()
    })
    .await;
    assert!(Instant::now() - killed_at < LOCK_DELAY);

    until(&a, &b, Duration::from_secs(20), |x, y| {
        x.is_leader() || y.is_leader()
    })
    .await;
    let new_at = Instant::now();
    assert!(
        new_at - killed_at >= LOCK_DELAY,
        "handed over after {:?}",
        new_at - killed_at
    );
    assert!(token.is_cancelled() && cancelled_at < new_at);
    let (leader2, other2) = if a.rx.borrow().is_leader() {
        (a, b)
    } else {
        (b, a)
    };
    let second = leader2.rx.borrow().fence().unwrap();
    assert_ne!(second.session, fence.session);
    assert!(
        second.lock_index > fence.lock_index,
        "LockIndex grows per term"
    );

    // The deposed leader's fenced write fails; the new leader's succeeds.
    let w = fenced_txn(&*deposed_backend, &fence, [status_write()])
        .await
        .unwrap();
    assert_eq!(w, FencedWrite::Fenced);
    let w = fenced_txn(&*leader2.backend, &second, [status_write()])
        .await
        .unwrap();
    assert!(matches!(w, FencedWrite::Committed(_)), "{w:?}");

    // Clean shutdown of the leader releases the lock and destroys its session: the
    // other contender takes over without waiting for a lock-delay.
    let released_at = Instant::now();
    leader2.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), leader2.task)
        .await
        .unwrap()
        .unwrap();
    let info = admin
        .session_info(&second.session, &QueryOptions::new())
        .await
        .unwrap();
    assert!(info.value.is_none(), "the session is destroyed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !other2.rx.borrow().is_leader() {
        assert!(
            Instant::now() < deadline,
            "no take-over after a clean release"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        Instant::now() - released_at < LOCK_DELAY,
        "a release starts no lock-delay"
    );
    let third = other2.rx.borrow().fence().unwrap();
    other2.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), other2.task)
        .await
        .unwrap()
        .unwrap();
    assert!(!other2.rx.borrow().is_leader());
    let key = admin
        .kv_get(KEY, &QueryOptions::new())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        key.session, None,
        "the lock is free after the last shutdown"
    );
    assert_eq!(key.lock_index, third.lock_index);

    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert_eq!(violations.load(Ordering::SeqCst), 0, "two leaders at once");
    assert!(samples.load(Ordering::SeqCst) > 100);
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}
