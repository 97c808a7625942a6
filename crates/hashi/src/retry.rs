//! Retry policy of the executor: how many attempts, spaced by the one
//! [`BackoffConfig`] (backon drives the loop, the delays come from here).

use std::iter::Take;
use std::time::Duration;

use crate::backoff::{BackoffConfig, Delays};
use crate::error::Error;
use crate::request::Idempotency;

/// How often and how patiently a failed request is sent again.
///
/// Only retryable errors ([`Error::is_retryable`]) are retried, and writes only when
/// CAS-guarded (reference §1.4); a blind write is retried only when the connection
/// failed before anything was sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// Delays between attempts. Only `initial`, `max`, `multiplier` and `jitter`
    /// matter: each request starts from a fresh count, so `reset_after` has nothing to
    /// reset.
    pub backoff: BackoffConfig,
}

impl Default for RetryPolicy {
    /// 3 attempts, 100 ms doubling up to 2 s, 50 % jitter.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(2)),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// `max_attempts` with delays from `backoff`.
    pub fn new(max_attempts: u32, backoff: BackoffConfig) -> Self {
        Self {
            max_attempts,
            backoff,
        }
    }

    /// The delays before each retry of one request (`max_attempts - 1` of them); a
    /// backon backoff, as any iterator of durations is.
    pub fn delays(&self) -> Take<Delays> {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff.delays().take(retries)
    }

    /// Whether `error` from a request of class `idempotency` may be retried.
    pub fn should_retry(idempotency: Idempotency, error: &Error) -> bool {
        match idempotency {
            Idempotency::Read => error.is_retryable(),
            Idempotency::CasGuarded => {
                error.is_connect() || matches!(error, Error::Overloaded { .. })
            }
            Idempotency::Unguarded => error.is_connect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::{Product, classify_status};
    use http::Method;

    #[test]
    fn only_reads_retry_server_errors_and_guarded_writes_retry_what_was_not_applied() {
        let e = classify_status(
            Product::Consul,
            &Method::PUT,
            "/v1/kv/a",
            500,
            "rpc error".into(),
        );
        assert!(RetryPolicy::should_retry(Idempotency::Read, &e));
        // The write may have landed: the caller looks before writing again.
        assert!(!RetryPolicy::should_retry(Idempotency::CasGuarded, &e));
        assert!(!RetryPolicy::should_retry(Idempotency::Unguarded, &e));
        let limited = classify_status(
            Product::Nomad,
            &Method::PUT,
            "/v1/jobs",
            429,
            "rate limited".into(),
        );
        assert!(RetryPolicy::should_retry(Idempotency::CasGuarded, &limited));
        assert!(!RetryPolicy::should_retry(Idempotency::Unguarded, &limited));
        let e = classify_status(
            Product::Consul,
            &Method::GET,
            "/v1/kv/a",
            403,
            "denied".into(),
        );
        assert!(!RetryPolicy::should_retry(Idempotency::Read, &e));
    }

    #[test]
    fn default_backoff_is_three_attempts_capped() {
        use backon::BackoffBuilder;
        let mut p = RetryPolicy::default();
        p.backoff = p.backoff.jitter(0.0);
        let delays: Vec<u128> = p.delays().build().map(|d| d.as_millis()).collect();
        assert_eq!(delays, vec![100, 200]);
        assert_eq!(RetryPolicy::none().delays().build().count(), 0);
        let capped = RetryPolicy::new(
            6,
            BackoffConfig::new(Duration::from_millis(100), Duration::from_millis(300)).jitter(0.0),
        );
        let delays: Vec<u128> = capped.delays().map(|d| d.as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 300, 300, 300]);
    }

    #[test]
    fn jittered_retry_delays_only_shorten() {
        let p = RetryPolicy::new(10, RetryPolicy::default().backoff);
        for (attempt, d) in (0..).zip(p.delays()) {
            let base = p.backoff.base_delay(attempt);
            assert!(d <= base && d >= base / 2, "{d:?} vs {base:?}");
        }
    }
}
