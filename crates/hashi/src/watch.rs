//! A stream of real changes over any blocking read.
//!
//! Applies the blocking-query index rules of the HashiCorp clients: the first read is
//! non-blocking (index 0); after it an index below 1 is treated as 1 (a fresh Nomad
//! answers index 0 and would otherwise make the loop spin); an index that goes
//! backwards resets to 0 (snapshot restore). Waits below 1 ms are clamped by
//! [`crate::request::render_wait`]. Errors are yielded as items (the stream does not
//! end) followed by a jittered, capped exponential backoff that starts over after a
//! healthy period. Answers whose content did not change are swallowed.

use std::future::Future;
use std::time::Duration;

use futures::Stream;
use rand::Rng as _;
use tokio::time::Instant;

use crate::error::Result;
use crate::response::Response;

/// Tuning of a watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// First backoff after an error.
    pub backoff_min: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// Randomise each backoff within `[d/2, d]`.
    pub jitter: bool,
    /// After this long without errors the backoff starts again from `backoff_min`.
    pub healthy_reset: Duration,
    /// Token-bucket rate limit of requests: one token per `min_interval`
    /// (zero disables the limit).
    pub min_interval: Duration,
    /// Token-bucket burst.
    pub burst: u32,
}

impl Default for WatchConfig {
    /// Backoff 250 ms doubling to 30 s with jitter, reset after 60 s healthy,
    /// at most one request per 50 ms after a burst of 5.
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            jitter: true,
            healthy_reset: Duration::from_secs(60),
            min_interval: Duration::from_millis(50),
            burst: 5,
        }
    }
}

impl WatchConfig {
    /// The backoff before retry number `failures` (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let base = self
            .backoff_min
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        if self.jitter && !base.is_zero() {
            let half = base / 2;
            let extra =
                rand::rng().random_range(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
            half + Duration::from_nanos(extra)
        } else {
            base
        }
    }
}

/// The next blocking index after a read that returned `returned` when the previous
/// read had returned `previous` (0 before the first read). Pure; see the module docs.
/// The comparison uses the returned indexes, not the sent one, so a server that keeps
/// answering 0 (sent as 1) is not mistaken for one whose index went backwards.
pub fn next_index(previous: u64, returned: u64) -> u64 {
    if returned < previous {
        0
    } else {
        returned.max(1)
    }
}

struct State<F, H, K> {
    fetch: F,
    key_fn: H,
    config: WatchConfig,
    index: u64,
    last_returned: u64,
    last_key: Option<K>,
    failures: u32,
    healthy_since: Option<Instant>,
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
        last_returned: 0,
        last_key: None,
        failures: 0,
        healthy_since: None,
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
                    st.index = next_index(st.last_returned, resp.meta.index);
                    st.last_returned = resp.meta.index;
                    if st.healthy_since.is_none() {
                        st.healthy_since = Some(Instant::now());
                    }
                    let k = (st.key_fn)(&resp.value);
                    if st.last_key.as_ref() == Some(&k) {
                        tracing::trace!(index = resp.meta.index, "watch wake-up without change");
                        continue;
                    }
                    st.last_key = Some(k);
                    return Some((Ok(resp), st));
                }
                Err(e) => {
                    let healthy_long = st
                        .healthy_since
                        .is_some_and(|t| t.elapsed() >= st.config.healthy_reset);
                    if healthy_long {
                        st.failures = 0;
                    }
                    st.healthy_since = None;
                    st.failures = st.failures.saturating_add(1);
                    let delay = st.config.backoff(st.failures);
                    tracing::debug!(error = %e, ?delay, failures = st.failures, "watch read failed");
                    st.sleep_before_next = Some(delay);
                    return Some((Err(e), st));
                }
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn index_rules() {
        assert_eq!(
            next_index(0, 0),
            1,
            "index 0 is treated as 1 after the first read"
        );
        assert_eq!(next_index(0, 42), 42);
        assert_eq!(next_index(42, 42), 42);
        assert_eq!(next_index(42, 50), 50);
        assert_eq!(next_index(42, 7), 0, "backwards resets to 0");
        assert_eq!(
            next_index(0, 0),
            1,
            "a server that keeps answering 0 is not backwards"
        );
        assert_eq!(next_index(1, 0), 0, "0 after a real 1 is backwards");
    }

    #[test]
    fn backoff_doubles_and_caps_without_jitter() {
        let c = WatchConfig {
            jitter: false,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..WatchConfig::default()
        };
        let d: Vec<_> = (1..=6).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jittered_backoff_stays_within_half_to_full() {
        let c = WatchConfig::default();
        for n in 1..10 {
            let full = WatchConfig { jitter: false, ..c }.backoff(n);
            let d = c.backoff(n);
            assert!(d >= full / 2 && d <= full, "{d:?} vs {full:?}");
        }
    }
}
