//! Work queue in the manner of client-go's workqueue and kube-runtime's scheduler.
//!
//! Guarantees:
//! - a key is pending at most once (adds coalesce; [`WorkQueue::add_after`] keeps the
//!   earliest deadline);
//! - a key is never handed out twice at the same time: a key added while it is being
//!   processed waits and is handed out again after [`WorkQueue::done`];
//! - per-key jittered exponential backoff on errors ([`WorkQueue::add_rate_limited`]),
//!   reset by [`WorkQueue::forget`];
//! - a global token bucket bounds how fast keys are handed out;
//! - after [`WorkQueue::shutdown`] nothing more is handed out.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backoff::BackoffConfig;
use crate::tokio_clock::TokenBucket;

/// Bounds a queue key needs.
pub trait QueueKey: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static {}
impl<T: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static> QueueKey for T {}

/// Queue settings.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Per-key backoff after errors.
    pub backoff: BackoffConfig,
    /// Most keys handed out per second, across all keys (≤ 0 = unlimited).
    pub max_rate: f64,
    /// Keys that may be handed out back to back before `max_rate` applies.
    pub burst: u32,
}

impl Default for QueueConfig {
    /// Backoff 50 ms → 5 min with 50 % jitter; 50 keys per second after a burst of 100.
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::new(Duration::from_millis(50), Duration::from_secs(300)),
            max_rate: 50.0,
            burst: 100,
        }
    }
}

/// A heap entry ordered by deadline, then insertion order (keys need no `Ord`).
struct Due<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<K> Eq for Due<K> {}
impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Due<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct State<K> {
    /// Pending keys and their deadline (the dirty set).
    scheduled: HashMap<K, Instant>,
    /// Deadlines; entries whose deadline no longer matches `scheduled` are stale.
    heap: BinaryHeap<Reverse<Due<K>>>,
    seq: u64,
    /// Keys handed out and not yet done, with the time they were handed out.
    processing: HashMap<K, Instant>,
    /// Consecutive failures per key.
    failures: HashMap<K, u32>,
    shutdown: bool,
}

impl<K: QueueKey> State<K> {
    fn push(&mut self, key: K, at: Instant) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.seq,
            key,
        }));
    }

    /// Schedules `key` at `at` unless it is already due earlier. True when added anew.
    fn schedule(&mut self, key: K, at: Instant) -> bool {
        match self.scheduled.get_mut(&key) {
            Some(current) if *current <= at => false,
            Some(current) => {
                *current = at;
                if !self.processing.contains_key(&key) {
                    self.push(key, at);
                }
                false
            }
            None => {
                self.scheduled.insert(key.clone(), at);
                if !self.processing.contains_key(&key) {
                    self.push(key, at);
                }
                true
            }
        }
    }

    /// Drops stale heap heads; true when a key is ready at `now`.
    fn has_ready(&mut self, now: Instant) -> bool {
        while let Some(Reverse(top)) = self.heap.peek() {
            let live = self.scheduled.get(&top.key) == Some(&top.at)
                && !self.processing.contains_key(&top.key);
            if !live {
                self.heap.pop();
                continue;
            }
            return top.at <= now;
        }
        false
    }

    /// The earliest live deadline (after [`State::has_ready`] cleaned the head).
    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    fn take(&mut self, now: Instant) -> Option<(K, Instant)> {
        if !self.has_ready(now) {
            return None;
        }
        let Reverse(due) = self.heap.pop()?;
        self.scheduled.remove(&due.key);
        self.processing.insert(due.key.clone(), now);
        Some((due.key, due.at))
    }
}

#[derive(Debug)]
struct Metrics {
    depth: Gauge,
    adds: Counter,
    retries: Counter,
    queue_latency: Histogram,
    work_duration: Histogram,
    in_flight: Gauge,
}

impl Metrics {
    fn new() -> Self {
        Self {
            depth: Gauge::default(),
            adds: Counter::default(),
            retries: Counter::default(),
            queue_latency: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            work_duration: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            in_flight: Gauge::default(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "workqueue_depth",
            "Keys waiting in the work queue",
            self.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Keys added to the work queue",
            self.adds.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Keys requeued with backoff after an error",
            self.retries.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "Time a key waited after its deadline before being handed out",
            self.queue_latency.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "Time from handing a key out to done",
            self.work_duration.clone(),
        );
        registry.register(
            "workqueue_in_flight",
            "Keys being processed",
            self.in_flight.clone(),
        );
    }
}

struct Shared<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    limiter: Option<TokenBucket>,
    backoff: BackoffConfig,
    metrics: Metrics,
}

/// Computes the longest-running processor gauge at scrape time.
struct LongestRunning<K> {
    shared: Weak<Shared<K>>,
}

impl<K> fmt::Debug for LongestRunning<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LongestRunning")
    }
}

impl<K: QueueKey> prometheus_client::collector::Collector for LongestRunning<K> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let seconds = self
            .shared
            .upgrade()
            .map(|s| WorkQueue { shared: s }.longest_running().as_secs_f64())
            .unwrap_or(0.0);
        let gauge = ConstGauge::new(seconds);
        let metric = encoder.encode_descriptor(
            "workqueue_longest_running_processor_seconds",
            "How long the longest-running key has been processing",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

/// The work queue. Cheap to clone; clones share the queue.
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: QueueKey> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("WorkQueue")
            .field("pending", &s.scheduled.len())
            .field("processing", &s.processing.len())
            .field("shutdown", &s.shutdown)
            .finish()
    }
}

impl<K: QueueKey> WorkQueue<K> {
    /// An empty queue. Its metrics go into `registry` when one is given.
    pub fn new(config: QueueConfig, registry: Option<&mut Registry>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                scheduled: HashMap::new(),
                heap: BinaryHeap::new(),
                seq: 0,
                processing: HashMap::new(),
                failures: HashMap::new(),
                shutdown: false,
            }),
            notify: Notify::new(),
            limiter: TokenBucket::new(config.max_rate, config.burst),
            backoff: config.backoff,
            metrics: Metrics::new(),
        });
        if let Some(registry) = registry {
            shared.metrics.register(registry);
            registry.register_collector(Box::new(LongestRunning {
                shared: Arc::downgrade(&shared),
            }));
        }
        Self { shared }
    }

    fn schedule(&self, key: K, at: Instant, count_add: bool) {
        let mut s = self.shared.state.lock();
        if s.shutdown {
            return;
        }
        let added = s.schedule(key, at);
        if added && count_add {
            self.shared.metrics.adds.inc();
        }
        self.shared
            .metrics
            .depth
            .set(gauge_value(s.scheduled.len()));
        drop(s);
        self.shared.notify.notify_waiters();
    }

    /// Queues `key` now. A key already pending is not queued twice.
    pub fn add(&self, key: K) {
        self.schedule(key, Instant::now(), true);
    }

    /// Queues `key` after `delay`; a pending key keeps the earlier of the two deadlines.
    pub fn add_after(&self, key: K, delay: Duration) {
        self.schedule(key, Instant::now() + delay, true);
    }

    /// Like [`WorkQueue::add_after`], for a reconcile asking to run again later (not
    /// counted as an add).
    pub fn requeue_after(&self, key: K, delay: Duration) {
        self.schedule(key, Instant::now() + delay, false);
    }

    /// Requeues `key` after its next per-key backoff delay (counts one more failure)
    /// and returns that delay.
    pub fn add_rate_limited(&self, key: K) -> Duration {
        let delay = {
            let mut s = self.shared.state.lock();
            let attempts = s.failures.entry(key.clone()).or_insert(0);
            let delay = self.shared.backoff.delay(*attempts);
            *attempts = attempts.saturating_add(1);
            delay
        };
        self.shared.metrics.retries.inc();
        self.schedule(key, Instant::now() + delay, false);
        delay
    }

    /// Forgets the failures of `key` (after a success): its next backoff starts over.
    pub fn forget(&self, key: &K) {
        self.shared.state.lock().failures.remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.shared
            .state
            .lock()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Marks `key` as processed. If it was added again meanwhile it becomes eligible.
    pub fn done(&self, key: &K) {
        let mut s = self.shared.state.lock();
        let Some(started) = s.processing.remove(key) else {
            return;
        };
        self.shared.metrics.work_duration.observe(
            Instant::now()
                .saturating_duration_since(started)
                .as_secs_f64(),
        );
        self.shared
            .metrics
            .in_flight
            .set(gauge_value(s.processing.len()));
        if let Some(at) = s.scheduled.get(key).copied() {
            s.push(key.clone(), at);
        }
        drop(s);
        self.shared.notify.notify_waiters();
    }

    /// Hands out the next due key without waiting; `None` when nothing is due, the
    /// rate limit has no token, or the queue is shut down.
    pub fn try_get(&self) -> Option<K> {
        let now = Instant::now();
        {
            let mut s = self.shared.state.lock();
            if s.shutdown || !s.has_ready(now) {
                return None;
            }
        }
        if let Some(limiter) = &self.shared.limiter
            && !limiter.try_acquire()
        {
            return None;
        }
        let mut s = self.shared.state.lock();
        if s.shutdown {
            return None;
        }
        self.take_locked(&mut s, now)
    }

    fn take_locked(&self, s: &mut State<K>, now: Instant) -> Option<K> {
        let (key, due) = s.take(now)?;
        let m = &self.shared.metrics;
        m.queue_latency
            .observe(now.saturating_duration_since(due).as_secs_f64());
        m.depth.set(gauge_value(s.scheduled.len()));
        m.in_flight.set(gauge_value(s.processing.len()));
        Some(key)
    }

    /// Waits for the next due key that is not being processed. `None` once the queue
    /// is shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let mut notified = pin!(self.shared.notify.notified());
            notified.as_mut().enable();
            let next = {
                let mut s = self.shared.state.lock();
                if s.shutdown {
                    return None;
                }
                if s.has_ready(Instant::now()) {
                    None
                } else {
                    Some(s.next_deadline())
                }
            };
            match next {
                None => {
                    if let Some(limiter) = &self.shared.limiter {
                        limiter.acquire().await;
                    }
                    let mut s = self.shared.state.lock();
                    if s.shutdown {
                        return None;
                    }
                    if let Some(key) = self.take_locked(&mut s, Instant::now()) {
                        return Some(key);
                    }
                }
                Some(Some(at)) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                Some(None) => notified.await,
            }
        }
    }

    /// Stops handing out keys: [`WorkQueue::get`] returns `None` from now on and adds
    /// are ignored. Keys in flight may still call [`WorkQueue::done`].
    pub fn shutdown(&self) {
        self.shared.state.lock().shutdown = true;
        self.shared.notify.notify_waiters();
    }

    /// True after [`WorkQueue::shutdown`].
    pub fn is_shutdown(&self) -> bool {
        self.shared.state.lock().shutdown
    }

    /// Pending keys (due or not), excluding those only being processed.
    pub fn len(&self) -> usize {
        self.shared.state.lock().scheduled.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The deadline of a pending key.
    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.shared.state.lock().scheduled.get(key).copied()
    }

    /// Keys being processed.
    pub fn in_flight(&self) -> usize {
        self.shared.state.lock().processing.len()
    }

    /// True when `key` is being processed.
    pub fn is_processing(&self, key: &K) -> bool {
        self.shared.state.lock().processing.contains_key(key)
    }

    /// How long the longest-running key has been processing.
    pub fn longest_running(&self) -> Duration {
        let now = Instant::now();
        self.shared
            .state
            .lock()
            .processing
            .values()
            .map(|since| now.saturating_duration_since(*since))
            .max()
            .unwrap_or_default()
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
