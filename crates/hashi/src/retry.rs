//! Retry policy of the executor (jittered exponential backoff with backon).

use std::time::Duration;

use backon::ExponentialBuilder;

use crate::error::Error;
use crate::request::Idempotency;

/// How often and how patiently a failed request is sent again.
///
/// Only retryable errors ([`Error::is_retryable`]) are retried, and writes only when
/// CAS-guarded (reference §1.4); a blind write is retried only when the connection
/// failed before anything was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// First delay.
    pub min_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Add random jitter to each delay.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 3 attempts, 100 ms doubling up to 2 s, jittered.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: true,
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

    /// The backon builder for this policy.
    pub fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter { b.with_jitter() } else { b }
    }

    /// Whether `error` from a request of class `idempotency` may be retried.
    pub fn should_retry(idempotency: Idempotency, error: &Error) -> bool {
        match idempotency {
            Idempotency::Read | Idempotency::CasGuarded => error.is_retryable(),
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
    fn only_guarded_or_read_requests_retry_server_errors() {
        let e = classify_status(
            Product::Consul,
            &Method::PUT,
            "/v1/kv/a",
            500,
            "rpc error".into(),
        );
        assert!(RetryPolicy::should_retry(Idempotency::Read, &e));
        assert!(RetryPolicy::should_retry(Idempotency::CasGuarded, &e));
        assert!(!RetryPolicy::should_retry(Idempotency::Unguarded, &e));
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
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let delays: Vec<u128> = p.backoff().build().map(|d| d.as_millis()).collect();
        assert_eq!(delays, vec![100, 200]);
        assert_eq!(RetryPolicy::none().backoff().build().count(), 0);
    }
}
