//! Blocking queries: the `index`/`wait` parameters and the wait itself.
//!
//! Rules reproduced from the real servers (reference §2.5, §6.1, §8.3):
//! `index=0` (or absent) answers at once; otherwise the request waits until the watched
//! data's index differs from `index` or `wait` (plus up to `wait/16` jitter) elapses.
//! Consul's default wait is 5 min, capped at 10 min; Nomad's default and cap are 5 min.
//! A snapshot restore moves every index backwards once. What a blocked watcher then
//! sees differs by product ([`OnRestore`]): Consul answers it at once with the lower
//! index, Nomad re-runs the query and keeps it blocked.

use crate::index::IndexClock;
use rand::Rng;
use std::collections::HashMap;
use std::time::Duration;

/// Consul's default blocking wait.
pub const CONSUL_DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's maximum blocking wait.
pub const CONSUL_MAX_WAIT: Duration = Duration::from_secs(600);
/// Nomad's default and maximum blocking wait.
pub const NOMAD_MAX_WAIT: Duration = Duration::from_secs(300);

/// The blocking parameters of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingParams {
    /// The index the client already has; 0 = do not block.
    pub index: u64,
    /// How long to wait at most, before jitter.
    pub wait: Duration,
}

/// Why blocking parameters were rejected; the text is what the real server answers
/// (400, plain text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `wait` is not a Go duration.
    #[error("Invalid wait time")]
    InvalidWait,
    /// `index` is not an unsigned integer.
    #[error("Invalid index")]
    InvalidIndex,
}

impl BlockingParams {
    /// Parses `index` and `wait` from a query map with the given default and cap.
    ///
    /// # Errors
    /// [`ParamError`] with the real server's message.
    pub fn parse(
        query: &HashMap<String, String>,
        default_wait: Duration,
        max_wait: Duration,
    ) -> Result<Self, ParamError> {
        let wait = match query.get("wait") {
            None => default_wait,
            Some(raw) if raw.is_empty() => default_wait,
            Some(raw) => parse_go_duration(raw).ok_or(ParamError::InvalidWait)?,
        };
        let index = match query.get("index") {
            None => 0,
            Some(raw) if raw.is_empty() => 0,
            Some(raw) => raw.parse::<u64>().map_err(|_| ParamError::InvalidIndex)?,
        };
        let wait = if wait.is_zero() {
            default_wait
        } else {
            wait.min(max_wait)
        };
        Ok(BlockingParams { index, wait })
    }

    /// Consul's rules: default 5 min, cap 10 min.
    ///
    /// # Errors
    /// [`ParamError`] with Consul's message.
    pub fn consul(query: &HashMap<String, String>) -> Result<Self, ParamError> {
        Self::parse(query, CONSUL_DEFAULT_WAIT, CONSUL_MAX_WAIT)
    }

    /// Nomad's rules: default and cap 5 min.
    ///
    /// # Errors
    /// [`ParamError`] with Nomad's message.
    pub fn nomad(query: &HashMap<String, String>) -> Result<Self, ParamError> {
        Self::parse(query, NOMAD_MAX_WAIT, NOMAD_MAX_WAIT)
    }

    /// The wait with the server's random jitter of up to `wait/16` added.
    pub fn wait_with_jitter(&self) -> Duration {
        let max_jitter = self.wait / 16;
        if max_jitter.is_zero() {
            return self.wait;
        }
        let nanos = rand::rng().random_range(0..=max_jitter.as_nanos() as u64);
        self.wait + Duration::from_nanos(nanos)
    }
}

/// What a blocked read does when a snapshot restore abandons the state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRestore {
    /// Consul (`blockingquery.Query`: "exit if the state store has been abandoned"):
    /// every blocked read answers at once, with the lower index.
    Answer,
    /// Nomad (`blockingRPC`): the abandon channel only re-runs the query, which keeps
    /// blocking while its index is not above the client's; a watcher that held a
    /// higher index is answered at its wait timeout, not with everyone else.
    Rerun,
}

/// Waits until `resource_index()` exceeds `params.index`, a snapshot restore ends the
/// wait (per `on_restore`), or the wait elapses, and returns the resource index to
/// report. `resource_index` is re-evaluated after every write in the product, so it
/// must read the current state (taking the state lock).
///
/// Returns at once when `params.index` is 0 or the resource index is already above it.
/// A client whose index is *above* the current one (it saw a higher index before a
/// restore) blocks like any other until the index passes it or the timeout, as the real
/// servers do.
pub async fn wait_for_change<F>(
    clock: &IndexClock,
    on_restore: OnRestore,
    params: BlockingParams,
    mut resource_index: F,
) -> u64
where
    F: FnMut() -> u64,
{
    let mut rx = clock.subscribe();
    rx.borrow_and_update();
    let restores = clock.restores();
    let first = resource_index();
    if params.index == 0 || first > params.index {
        return first;
    }
    let deadline = tokio::time::Instant::now() + params.wait_with_jitter();
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return resource_index();
                }
                rx.borrow_and_update();
                let now = resource_index();
                let restored = clock.restores() != restores;
                if now > params.index || (restored && on_restore == OnRestore::Answer) {
                    return now;
                }
            }
            () = tokio::time::sleep_until(deadline) => return resource_index(),
        }
    }
}

/// Parses a Go duration string (`300ms`, `10s`, `1h30m`, `1.5h`, `2us`, `0`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * nanos_per_unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

/// Formats a duration the way Go's `time.Duration.String()` does (`15s`, `1m30s`,
/// `500ms`, `0s`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_float(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_float(nanos as f64 / 1e6));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = (nanos % 60_000_000_000) as f64 / 1e9;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(seconds)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration("-1s"), None);
    }

    #[test]
    fn go_durations_format_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn consul_wait_defaults_to_five_minutes_and_caps_at_ten() {
        assert_eq!(
            BlockingParams::consul(&q(&[])).unwrap().wait,
            CONSUL_DEFAULT_WAIT
        );
        let p = BlockingParams::consul(&q(&[("index", "7"), ("wait", "1h")])).unwrap();
        assert_eq!(
            p,
            BlockingParams {
                index: 7,
                wait: CONSUL_MAX_WAIT
            }
        );
        let p = BlockingParams::nomad(&q(&[("index", "7"), ("wait", "1h")])).unwrap();
        assert_eq!(p.wait, NOMAD_MAX_WAIT);
    }

    #[test]
    fn bad_parameters_use_the_servers_messages() {
        let e = BlockingParams::consul(&q(&[("wait", "10")])).unwrap_err();
        assert_eq!(e.to_string(), "Invalid wait time");
        let e = BlockingParams::consul(&q(&[("index", "x")])).unwrap_err();
        assert_eq!(e.to_string(), "Invalid index");
    }

    #[test]
    fn jitter_stays_within_a_sixteenth() {
        let p = BlockingParams {
            index: 1,
            wait: Duration::from_secs(16),
        };
        for _ in 0..100 {
            let w = p.wait_with_jitter();
            assert!(w >= Duration::from_secs(16) && w <= Duration::from_secs(17));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn index_zero_answers_at_once() {
        let clock = IndexClock::new(5);
        let got = wait_for_change(
            &clock,
            OnRestore::Answer,
            BlockingParams {
                index: 0,
                wait: Duration::from_secs(60),
            },
            || 5,
        )
        .await;
        assert_eq!(got, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_returns_the_same_index() {
        let clock = IndexClock::new(5);
        let start = tokio::time::Instant::now();
        let got = wait_for_change(
            &clock,
            OnRestore::Answer,
            BlockingParams {
                index: 5,
                wait: Duration::from_secs(60),
            },
            || 5,
        )
        .await;
        assert_eq!(got, 5);
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_wakes_the_waiter_early() {
        let clock = std::sync::Arc::new(IndexClock::new(5));
        let writer = clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            writer.next();
        });
        let c = clock.clone();
        let start = tokio::time::Instant::now();
        let got = wait_for_change(
            &clock,
            OnRestore::Answer,
            BlockingParams {
                index: 5,
                wait: Duration::from_secs(60),
            },
            || c.current(),
        )
        .await;
        assert_eq!(got, 6);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    /// Restores the clock from 9 to 3 after 1 s, then writes twice (index 4, 5) at
    /// 2 s and 3 s; a watcher holding index 9 waits with `on_restore`.
    async fn wait_through_a_restore(on_restore: OnRestore) -> (u64, Duration) {
        let clock = std::sync::Arc::new(IndexClock::new(9));
        let restorer = clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            restorer.set(3);
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                restorer.next();
            }
        });
        let c = clock.clone();
        let start = tokio::time::Instant::now();
        let params = BlockingParams {
            index: 9,
            wait: Duration::from_secs(60),
        };
        let got = wait_for_change(&clock, on_restore, params, || c.current()).await;
        (got, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_consul_restore_answers_every_waiter_at_once_with_the_lower_index() {
        let (got, took) = wait_through_a_restore(OnRestore::Answer).await;
        assert_eq!(got, 3);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_nomad_restore_keeps_a_waiter_above_the_new_index_until_its_timeout() {
        let (got, took) = wait_through_a_restore(OnRestore::Rerun).await;
        // Neither the restore nor the writes after it (indexes 4 and 5, still below
        // the watcher's 9) answer it: the timeout does, with the current index.
        assert_eq!(got, 5);
        assert!(took >= Duration::from_secs(60), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_index_above_the_current_one_blocks_until_timeout() {
        // A fresh Nomad answers index 0; a client asking with index 1 must block, not spin.
        let clock = IndexClock::new(0);
        let start = tokio::time::Instant::now();
        let params = BlockingParams {
            index: 1,
            wait: Duration::from_secs(30),
        };
        let got = wait_for_change(&clock, OnRestore::Rerun, params, || 0).await;
        assert_eq!(got, 0);
        assert!(start.elapsed() >= Duration::from_secs(30));
    }
}
