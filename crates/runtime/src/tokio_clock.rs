//! A governor clock on `tokio::time`, so rate limits follow paused time in tests.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// Time since the clock was made, read from `tokio::time::Instant`.
#[derive(Clone, Debug)]
pub(crate) struct TokioClock {
    start: Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A token bucket that waits with `tokio::time::sleep`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limiter: Limiter,
    clock: TokioClock,
}

impl TokenBucket {
    /// `qps` tokens per second, at most `burst` at once. `None` when `qps` is not a
    /// positive finite number (no limit).
    pub(crate) fn new(qps: f64, burst: u32) -> Option<Self> {
        if !(qps.is_finite() && qps > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / qps).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(burst.max(1))?;
        let quota = Quota::with_period(period)?.allow_burst(burst);
        let clock = TokioClock::new();
        Some(Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        })
    }

    /// Takes one token if one is available now.
    pub(crate) fn try_acquire(&self) -> bool {
        self.limiter.check().is_ok()
    }

    /// Takes one token, waiting until one is available.
    pub(crate) async fn acquire(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_a_burst_then_paces() {
        let bucket = TokenBucket::new(10.0, 3).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(Instant::now(), start, "the burst is free");
        for _ in 0..5 {
            bucket.acquire().await;
        }
        let spent = Instant::now() - start;
        assert!(
            spent >= Duration::from_millis(490) && spent <= Duration::from_millis(600),
            "{spent:?}"
        );
        assert!(TokenBucket::new(0.0, 1).is_none());
    }
}
