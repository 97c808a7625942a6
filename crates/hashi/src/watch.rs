//! A stream of real changes over any blocking read.
//!
//! Applies the blocking-query index rule of [`crate::index`]: the first read is
//! non-blocking (index 0), an index below 1 is never blocked on, and an index that goes
//! backwards (snapshot restore) makes the next read a non-blocking relist. Every answer
//! is complete content, so the relist's answer goes through the same comparison as any
//! other. Waits below 1 ms are clamped by [`crate::request::render_wait`]. Errors are
//! yielded as items (the stream does not end) followed by the one jittered, capped
//! exponential [`Backoff`], which starts over after a healthy period. Answers whose
//! content did not change are swallowed; a token bucket bounds the loop, as a return
//! does not prove a change and a server may answer a wait at once.

use std::future::Future;
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;

use crate::backoff::{Backoff, BackoffConfig};
use crate::error::Result;
use crate::index::next_index;
use crate::response::Response;

/// Tuning of a watch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WatchConfig {
    /// Backoff after failed reads; set [`BackoffConfig::reset_after`] for the healthy
    /// period after which it starts over.
    pub backoff: BackoffConfig,
    /// Token-bucket rate limit of requests: one token per `min_interval`
    /// (zero disables the limit).
    pub min_interval: Duration,
    /// Token-bucket burst.
    pub burst: u32,
}

impl Default for WatchConfig {
    /// Backoff 250 ms doubling to 30 s with 50 % jitter, reset after 60 s healthy,
    /// at most one request per 50 ms after a burst of 5.
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(30))
                .reset_after(Duration::from_secs(60)),
            min_interval: Duration::from_millis(50),
            burst: 5,
        }
    }
}

struct State<F, H, K> {
    fetch: F,
    key_fn: H,
    config: WatchConfig,
    /// The index the next read is sent with (0 = non-blocking).
    index: u64,
    last_key: Option<K>,
    backoff: Backoff,
    sleep_before_next: Option<Duration>,
    tokens: f64,
    refilled_at: Instant,
}

impl<F, H, K> State<F, H, K> {
    async fn take_token(&mut self) {
        let interval = self.config.min_interval;
        if interval.is_zero() {
            return;
        }
        let burst = f64::from(self.config.burst.max(1));
        let now = Instant::now();
        let gained = now.duration_since(self.refilled_at).as_secs_f64() / interval.as_secs_f64();
        self.tokens = (self.tokens + gained).min(burst);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            let wait = interval.mul_f64(1.0 - self.tokens);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.refilled_at = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// Watches a blocking read, yielding only changes (compared with `T: PartialEq`).
///
/// `fetch(index)` performs one read with that blocking index (0 = non-blocking) and the
/// wait the caller wants. The stream never ends by itself; drop it to stop.
pub fn watch<T, F, Fut>(
    fetch: F,
    config: WatchConfig,
) -> impl Stream<Item = Result<Response<T>>> + Send
where
    T: PartialEq + Clone + Send + 'static,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<T>>> + Send,
{
    watch_by(fetch, config, |t: &T| t.clone())
}

/// Like [`watch`], but compares `key(&value)` (a hash, a list of modify indexes...)
/// instead of the whole value.
pub fn watch_by<T, K, F, Fut, H>(
    fetch: F,
    config: WatchConfig,
    key: H,
) -> impl Stream<Item = Result<Response<T>>> + Send
where
    T: Send + 'static,
    K: PartialEq + Send + 'static,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<T>>> + Send,
    H: FnMut(&T) -> K + Send + 'static,
{
    let state = State {
        fetch,
        key_fn: key,
        config,
        index: 0,
        last_key: None,
        backoff: Backoff::new(config.backoff),
        sleep_before_next: None,
        tokens: f64::from(config.burst.max(1)),
        refilled_at: Instant::now(),
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(d) = st.sleep_before_next.take() {
                tokio::time::sleep(d).await;
            }
            st.take_token().await;
            let sent = st.index;
            match (st.fetch)(sent).await {
                Ok(resp) => {
                    let next = next_index(sent, resp.meta.index);
                    if next.went_backwards() {
                        tracing::debug!(
                            previous = sent,
                            returned = resp.meta.index,
                            "watch index went backwards; relisting"
                        );
                    }
                    st.index = next.wait_index();
                    st.backoff.success();
                    let k = (st.key_fn)(&resp.value);
                    if st.last_key.as_ref() == Some(&k) {
                        tracing::trace!(index = resp.meta.index, "watch wake-up without change");
                        continue;
                    }
                    st.last_key = Some(k);
                    return Some((Ok(resp), st));
                }
                Err(e) => {
                    let delay = st.backoff.failure();
                    let failures = st.backoff.attempts();
                    // A read that keeps failing must be seen: at WARN on the 3rd failure
                    // in a row, then every time the count doubles.
                    if failures >= 3 && (failures == 3 || failures.is_power_of_two()) {
                        tracing::warn!(error = %e, ?delay, failures, "watch read keeps failing");
                    } else {
                        tracing::debug!(error = %e, ?delay, failures, "watch read failed");
                    }
                    st.sleep_before_next = Some(delay);
                    return Some((Err(e), st));
                }
            }
        }
    })
}
