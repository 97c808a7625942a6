#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn unlimited(backoff: BackoffConfig) -> QueueConfig {
    QueueConfig {
        backoff,
        max_rate: 0.0,
        burst: 1,
    }
}

fn queue() -> WorkQueue<&'static str> {
    WorkQueue::new(
        unlimited(BackoffConfig::new(ms(50), ms(1000)).jitter(0.0)),
        None,
    )
}

async fn get_within<K: QueueKey>(q: &WorkQueue<K>, bound: Duration) -> Option<K> {
    tokio::time::timeout(bound, q.get()).await.ok().flatten()
}

#[tokio::test(start_paused = true)]
async fn queue_never_hands_out_a_key_twice_at_once() {
    let q = queue();
    q.add("a");
    q.add("a");
    assert_eq!(q.len(), 1, "duplicates coalesce");
    assert_eq!(q.try_get(), Some("a"));
    q.add("a");
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_get(), None, "a is processing");
    assert!(get_within(&q, Duration::from_secs(5)).await.is_none());
    q.done(&"a");
    assert_eq!(
        q.try_get(),
        Some("a"),
        "re-added while processing: handed out after done"
    );
    q.done(&"a");
    assert_eq!(q.try_get(), None);
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn add_after_keeps_the_earliest_deadline() {
    let q = queue();
    let start = Instant::now();
    q.add_after("late-then-early", Duration::from_secs(10));
    q.add_after("late-then-early", Duration::from_secs(1));
    q.add_after("early-then-late", Duration::from_secs(2));
    q.add_after("early-then-late", Duration::from_secs(20));
    assert_eq!(
        q.deadline(&"late-then-early"),
        Some(start + Duration::from_secs(1))
    );
    assert_eq!(
        q.deadline(&"early-then-late"),
        Some(start + Duration::from_secs(2))
    );
    assert_eq!(q.try_get(), None);
    let k = get_within(&q, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (k, Instant::now() - start),
        ("late-then-early", Duration::from_secs(1))
    );
    let k = get_within(&q, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (k, Instant::now() - start),
        ("early-then-late", Duration::from_secs(2))
    );
    // an immediate add beats a pending delay
    q.add_after("x", Duration::from_secs(30));
    q.add("x");
    assert_eq!(q.try_get(), Some("x"));
}

#[tokio::test(start_paused = true)]
async fn requeue_after_is_honoured_while_processing() {
    let q = queue();
    q.add("k");
    let start = Instant::now();
    assert_eq!(q.try_get(), Some("k"));
    q.requeue_after("k", Duration::from_secs(3));
    q.done(&"k");
    assert_eq!(q.try_get(), None);
    assert_eq!(get_within(&q, Duration::from_secs(10)).await, Some("k"));
    assert_eq!(Instant::now() - start, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_per_key_up_to_the_cap_and_forget_resets() {
    let q = queue();
    let delays: Vec<Duration> = (0..7).map(|_| q.add_rate_limited("k")).collect();
    assert_eq!(
        delays,
        vec![
            ms(50),
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1000),
            ms(1000)
        ]
    );
    assert_eq!(q.failures(&"k"), 7);
    assert_eq!(q.add_rate_limited("other"), ms(50), "backoff is per key");
    q.forget(&"k");
    assert_eq!(q.add_rate_limited("k"), ms(50));
}

#[tokio::test(start_paused = true)]
async fn the_global_rate_limit_paces_hand_outs() {
    let q = WorkQueue::new(
        QueueConfig {
            backoff: BackoffConfig::default(),
            max_rate: 10.0,
            burst: 2,
        },
        None,
    );
    for k in 0..6 {
        q.add(k);
    }
    let start = Instant::now();
    for _ in 0..6 {
        let k = get_within(&q, Duration::from_secs(5)).await.unwrap();
        q.done(&k);
    }
    assert_eq!(Instant::now() - start, ms(400), "2 free, then 4 at 10/s");
}

#[tokio::test(start_paused = true)]
async fn shutdown_wakes_waiters_and_stops_hand_outs() {
    let q = queue();
    let q2 = q.clone();
    let waiter = tokio::spawn(async move { q2.get().await });
    tokio::time::sleep(ms(10)).await;
    q.shutdown();
    let got = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, None);
    q.add("late");
    assert!(q.is_shutdown() && q.is_empty());
    assert_eq!(q.try_get(), None);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_getter_wakes_on_add() {
    let q = queue();
    let q2 = q.clone();
    let waiter = tokio::spawn(async move { get_within(&q2, Duration::from_secs(60)).await });
    tokio::time::sleep(ms(10)).await;
    q.add("now");
    let got = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Some("now"));
}

#[tokio::test(start_paused = true)]
async fn metrics_are_registered_and_follow_the_queue() {
    let mut registry = Registry::default();
    let q = WorkQueue::new(QueueConfig::default(), Some(&mut registry));
    q.add("a");
    q.add("b");
    q.add("a");
    let k = q.try_get().unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    q.add_rate_limited(k);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for needle in [
        "workqueue_depth 2",
        "workqueue_adds_total 2",
        "workqueue_retries_total 1",
        "workqueue_in_flight 1",
        "workqueue_longest_running_processor_seconds 2.0",
        "workqueue_queue_duration_seconds_count 1",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    q.done(&k);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("workqueue_work_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("workqueue_longest_running_processor_seconds 0.0"),
        "{text}"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    AddAfter(u8, u64),
    Get,
    Done(usize, bool),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6).prop_map(Op::Add),
        2 => (0u8..6, 0u64..3000).prop_map(|(k, d)| Op::AddAfter(k, d)),
        4 => Just(Op::Get),
        3 => (0usize..8, prop::bool::weighted(0.6)).prop_map(|(i, ok)| Op::Done(i, ok)),
        2 => (0u64..4000).prop_map(Op::Advance),
    ]
}

/// Runs one op sequence against the queue and a model; panics on any divergence.
async fn check_against_model(ops: Vec<Op>) {
    let backoff = BackoffConfig::new(ms(50), ms(2000)).jitter(0.5);
    let q: WorkQueue<u8> = WorkQueue::new(unlimited(backoff), None);
    let mut pending: HashMap<u8, Instant> = HashMap::new();
    let mut in_flight: Vec<u8> = Vec::new();
    let mut failures: HashMap<u8, u32> = HashMap::new();
    // keys added (or requeued) after their last hand-out: each must be handed out again
    let mut owed: HashSet<u8> = HashSet::new();

    let schedule = |pending: &mut HashMap<u8, Instant>, k: u8, at: Instant| {
        let e = pending.entry(k).or_insert(at);
        *e = (*e).min(at);
    };

    for op in ops {
        let now = Instant::now();
        match op {
            Op::Add(k) => {
                q.add(k);
                schedule(&mut pending, k, now);
                owed.insert(k);
            }
            Op::AddAfter(k, d) => {
                q.add_after(k, ms(d));
                schedule(&mut pending, k, now + ms(d));
                owed.insert(k);
            }
            Op::Get => {
                let eligible: Vec<(u8, Instant)> = pending
                    .iter()
                    .filter(|(k, at)| **at <= now && !in_flight.contains(k))
                    .map(|(k, at)| (*k, *at))
                    .collect();
                match q.try_get() {
                    None => assert!(eligible.is_empty(), "a due key was not handed out"),
                    Some(k) => {
                        assert!(!in_flight.contains(&k), "key {k} handed out concurrently");
                        let at = eligible
                            .iter()
                            .find(|(e, _)| *e == k)
                            .map(|(_, at)| *at)
                            .expect("handed out a key that is not due");
                        let earliest = eligible.iter().map(|(_, at)| *at).min().unwrap();
                        assert_eq!(at, earliest, "earliest deadline first");
                        pending.remove(&k);
                        owed.remove(&k);
                        in_flight.push(k);
                    }
                }
            }
            Op::Done(i, ok) => {
                if in_flight.is_empty() {
                    continue;
                }
                let k = in_flight.remove(i % in_flight.len());
                if ok {
                    q.forget(&k);
                    failures.remove(&k);
                } else {
                    let n = failures.entry(k).or_insert(0);
                    let delay = q.add_rate_limited(k);
                    let base = backoff.base_delay(*n);
                    assert!(delay <= backoff.max, "delay {delay:?} over the cap");
                    assert!(delay <= base, "delay {delay:?} over base {base:?}");
                    assert!(
                        delay >= base.mul_f64(0.5),
                        "delay {delay:?} under half of {base:?}"
                    );
                    *n += 1;
                    schedule(&mut pending, k, now + delay);
                    owed.insert(k);
                }
                q.done(&k);
            }
            Op::Advance(d) => tokio::time::advance(ms(d)).await,
        }
        assert_eq!(q.len(), pending.len(), "pending set size");
        assert_eq!(q.in_flight(), in_flight.len());
        for (k, at) in &pending {
            assert_eq!(q.deadline(k), Some(*at), "deadline of {k}");
        }
    }

    // Finish everything in flight, then drain through the async path: every owed key
    // must come out, none twice at once.
    for k in in_flight.drain(..) {
        q.forget(&k);
        q.done(&k);
    }
    while !pending.is_empty() {
        let k = get_within(&q, Duration::from_secs(3600))
            .await
            .expect("a pending key was lost");
        let at = pending
            .remove(&k)
            .expect("handed out a key that was not pending");
        assert!(at <= Instant::now(), "handed out before its deadline");
        owed.remove(&k);
        q.done(&k);
    }
    assert!(owed.is_empty(), "keys never handed out: {owed:?}");
    assert!(q.is_empty());
    assert_eq!(q.try_get(), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_behaves_like_its_model(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(check_against_model(ops));
    }
}
