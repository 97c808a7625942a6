//! The one jittered, capped exponential backoff of Steward.
//!
//! Everything that waits after a failure takes its delays from [`BackoffConfig`]: the
//! executor's request retries ([`crate::RetryPolicy`]), the [`crate::watch`] helper,
//! and, re-exported by `steward-runtime`, its watcher, work queue and leader election,
//! the operator's event-stream follower and the CLI's `push --wait`. It lives here
//! because this is the lowest crate all of them depend on.

use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

/// Parameters of a [`Backoff`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Delay after the first failure (before jitter).
    pub initial: Duration,
    /// Upper bound of every delay, jitter included.
    pub max: Duration,
    /// Growth factor per consecutive failure (≥ 1).
    pub multiplier: f64,
    /// Share of the delay that is randomised, in `0.0..=1.0`: a delay `d` becomes a
    /// uniform value in `[d * (1 - jitter), d]`. Jitter only ever shortens a delay, so
    /// the cap holds; 0 makes the delays deterministic.
    pub jitter: f64,
    /// After this long without a failure (counted from the first success that follows
    /// a failure) the attempt count starts again from zero. `None` = the first success
    /// resets it.
    pub reset_after: Option<Duration>,
}

impl Default for BackoffConfig {
    /// 50 ms doubling up to 5 min, 50 % jitter, reset by the first success.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.5,
            reset_after: None,
        }
    }
}

impl BackoffConfig {
    /// A config with these bounds and the defaults for the rest.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// Sets the jitter share (clamped to `0.0..=1.0`).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Sets the healthy period after which the attempt count resets.
    pub fn reset_after(mut self, period: Duration) -> Self {
        self.reset_after = Some(period);
        self
    }

    /// The un-jittered delay before retry number `attempt` (0 = after the first
    /// failure), capped at [`BackoffConfig::max`].
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        // powi saturates to +inf for large exponents, which the min below absorbs.
        let factor = multiplier.powi(i32::try_from(attempt).unwrap_or(i32::MAX));
        let secs = self.initial.as_secs_f64() * factor;
        let max = self.max.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max
        } else {
            Duration::from_secs_f64(secs).min(self.max)
        }
    }

    /// The jittered delay before retry number `attempt`, with `unit` a sample of
    /// `[0, 1)`: `base * (1 - jitter * unit)`. Pure, so tests can pin the jitter.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter)
    }

    /// The jittered delay before retry number `attempt`, with a random jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let unit = if self.jitter > 0.0 {
            rand::rng().random::<f64>()
        } else {
            0.0
        };
        self.delay_with(attempt, unit)
    }

    /// The jittered delays before retries 0, 1, 2... (endless; `take` what a policy
    /// allows). Any `Iterator<Item = Duration>` is a backon backoff, so this is what the
    /// executor's retries sleep on.
    pub fn delays(&self) -> Delays {
        Delays {
            config: *self,
            attempt: 0,
        }
    }
}

/// The endless iterator of [`BackoffConfig::delays`].
#[derive(Clone, Debug)]
pub struct Delays {
    config: BackoffConfig,
    attempt: u32,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.config.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        Some(delay)
    }
}

/// Consecutive-failure state of one retried activity.
///
/// ```
/// # use std::time::Duration;
/// # use steward_hashi::backoff::{Backoff, BackoffConfig};
/// let mut b = Backoff::new(BackoffConfig::new(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.0));
/// assert_eq!(b.failure(), Duration::from_millis(10));
/// assert_eq!(b.failure(), Duration::from_millis(20));
/// b.reset();
/// assert_eq!(b.failure(), Duration::from_millis(10));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    healthy_since: Option<Instant>,
}

impl Backoff {
    /// A backoff with no failures yet.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            attempt: 0,
            healthy_since: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Records a failure and returns how long to wait before the next try. A healthy
    /// spell of [`BackoffConfig::reset_after`] that ends in this failure resets the
    /// count first, even if it held a single success (a blocking read that succeeded
    /// once and then waited for minutes was healthy all along).
    pub fn failure(&mut self) -> Duration {
        if let (Some(period), Some(since)) = (self.config.reset_after, self.healthy_since)
            && Instant::now().saturating_duration_since(since) >= period
        {
            self.attempt = 0;
        }
        self.healthy_since = None;
        let delay = self.config.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Records a success. The attempt count resets at once, or once the activity has
    /// been healthy for [`BackoffConfig::reset_after`] (a flapping source keeps its
    /// backoff instead of hammering the server between short healthy spells).
    pub fn success(&mut self) {
        if self.attempt == 0 {
            return;
        }
        match self.config.reset_after {
            None => self.reset(),
            Some(period) => {
                let now = Instant::now();
                let since = *self.healthy_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= period {
                    self.reset();
                }
            }
        }
    }

    /// Forgets every failure.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.healthy_since = None;
    }

    /// Consecutive failures recorded since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let c = BackoffConfig::new(ms(50), ms(1000)).jitter(0.0);
        let delays: Vec<_> = (0..8).map(|a| c.base_delay(a)).collect();
        assert_eq!(
            delays,
            vec![
                ms(50),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000),
                ms(1000)
            ]
        );
        assert_eq!(c.base_delay(u32::MAX), ms(1000));
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_share() {
        let c = BackoffConfig::new(ms(100), ms(400)).jitter(0.5);
        assert_eq!(c.delay_with(0, 0.0), ms(100));
        assert_eq!(c.delay_with(0, 1.0), ms(50));
        for attempt in 0..20 {
            for _ in 0..50 {
                let d = c.delay(attempt);
                let base = c.base_delay(attempt);
                assert!(d <= base && d >= base / 2, "{d:?} vs {base:?}");
                assert!(d <= ms(400));
            }
        }
    }

    #[test]
    fn a_bad_multiplier_degrades_to_constant_delays() {
        let mut c = BackoffConfig::new(ms(30), ms(1000)).jitter(0.0);
        c.multiplier = f64::NAN;
        assert_eq!(c.base_delay(5), ms(30));
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_only_after_the_healthy_period() {
        let config = BackoffConfig::new(ms(10), ms(10_000))
            .jitter(0.0)
            .reset_after(Duration::from_secs(5));
        let mut b = Backoff::new(config);
        assert_eq!(b.failure(), ms(10));
        assert_eq!(b.failure(), ms(20));
        b.success();
        assert_eq!(b.attempts(), 2, "one success is not a healthy period");
        tokio::time::advance(Duration::from_secs(4)).await;
        b.success();
        assert_eq!(b.attempts(), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        b.success();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.failure(), ms(10));
        // a failure in the middle of a healthy spell starts the spell again
        b.success();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(b.failure(), ms(20));
        b.success();
        tokio::time::advance(Duration::from_secs(4)).await;
        b.success();
        assert_eq!(b.attempts(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_after_a_long_healthy_spell_starts_over() {
        let config = BackoffConfig::new(ms(10), ms(10_000))
            .jitter(0.0)
            .reset_after(Duration::from_secs(5));
        let mut b = Backoff::new(config);
        assert_eq!(b.failure(), ms(10));
        assert_eq!(b.failure(), ms(20));
        // one success, then a long quiet spell (a blocking read) that ends in a failure
        b.success();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(b.failure(), ms(10));
    }

    #[test]
    fn delays_follow_the_config_and_never_end() {
        let c = BackoffConfig::new(ms(100), ms(300)).jitter(0.0);
        let d: Vec<_> = c.delays().take(4).collect();
        assert_eq!(d, vec![ms(100), ms(200), ms(300), ms(300)]);
        let jittered = BackoffConfig::new(ms(100), ms(300));
        for (attempt, d) in (0..).zip(jittered.delays().take(20)) {
            let base = jittered.base_delay(attempt);
            assert!(d <= base && d >= base / 2, "{d:?} vs {base:?}");
        }
    }

    #[test]
    fn without_reset_period_the_first_success_resets() {
        let mut b = Backoff::new(BackoffConfig::new(ms(10), ms(100)).jitter(0.0));
        b.failure();
        b.failure();
        b.success();
        assert_eq!(b.attempts(), 0);
    }
}
