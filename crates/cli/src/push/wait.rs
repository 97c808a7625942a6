//! `push --wait`: blocking queries on the status prefix until every pushed spec's status
//! has caught up with the generation the push wrote and settled.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use steward_hashi::backoff::{Backoff, BackoffConfig};
use steward_hashi::{ConsulClient, QueryOptions, next_index};
use tokio::time::Instant;

use crate::status::{SETTLED_PHASES, StatusView, decode, view};

/// One spec to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `namespace/name`.
    pub key: String,
    /// The generation (ModifyIndex) the status must have observed.
    pub generation: u64,
}

/// Where one spec stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The status has observed the generation and its phase has settled.
    Settled(StatusView),
    /// Not yet: no status, an older generation, or a phase still moving.
    Waiting(Option<StatusView>),
}

impl Progress {
    /// Whether this spec is settled and `Synced`.
    pub fn is_synced(&self) -> bool {
        matches!(self, Progress::Settled(v) if v.phase == "Synced")
    }
}

/// Where every target stands given the status documents (by spec key). Pure.
pub fn evaluate(targets: &[Target], docs: &BTreeMap<String, Value>) -> Vec<(String, Progress)> {
    targets
        .iter()
        .map(|t| {
            let progress = match docs.get(&t.key).map(|d| view(&t.key, d)) {
                Some(v)
                    if v.observed_generation.is_some_and(|g| g >= t.generation)
                        && SETTLED_PHASES.contains(&v.phase.as_str()) =>
                {
                    Progress::Settled(v)
                }
                other => Progress::Waiting(other),
            };
            (t.key.clone(), progress)
        })
        .collect()
}

/// Whether every target has settled.
pub fn all_settled(progress: &[(String, Progress)]) -> bool {
    progress
        .iter()
        .all(|(_, p)| matches!(p, Progress::Settled(_)))
}

/// How the wait ended.
#[derive(Debug)]
pub struct WaitOutcome {
    /// Last known progress of every target.
    pub progress: Vec<(String, Progress)>,
    /// Whether the deadline passed first.
    pub timed_out: bool,
}

/// Longest single blocking query (Consul caps waits at 10 minutes).
const MAX_BLOCK: Duration = Duration::from_secs(300);

/// Shortest time from one status read to the next: a blocking read may come back at
/// once (after a relist, or from a server that does not block), and the loop must not
/// turn into a busy poll (reference §2.5).
const MIN_READ_INTERVAL: Duration = Duration::from_millis(50);

/// Pause after a read failed with a retryable error (the client's own retries came
/// first): the one backoff, from 250 ms up to 5 s, starting over after a success.
fn read_backoff() -> Backoff {
    Backoff::new(BackoffConfig::new(
        Duration::from_millis(250),
        Duration::from_secs(5),
    ))
}

/// Waits with blocking queries on `status_prefix` (recurse) until every target has
/// settled or `timeout` passes; `on_change` sees every new evaluation.
///
/// # Errors
/// A status read failed with a non-retryable error (retryable ones are retried by the
/// client and, past that, until the deadline).
pub async fn wait(
    consul: &ConsulClient,
    status_prefix: &str,
    targets: &[Target],
    timeout: Duration,
    mut on_change: impl FnMut(&[(String, Progress)]),
) -> anyhow::Result<WaitOutcome> {
    let deadline = Instant::now() + timeout;
    let mut index = 0u64;
    let mut backoff = read_backoff();
    let mut progress = evaluate(targets, &BTreeMap::new());
    loop {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        if remaining.is_zero() {
            return Ok(WaitOutcome {
                progress,
                timed_out: true,
            });
        }
        let opts = QueryOptions::blocking(index, remaining.min(MAX_BLOCK));
        let read = tokio::time::timeout(remaining, consul.kv_list(status_prefix, &opts)).await;
        let response = match read {
            Err(_) => {
                return Ok(WaitOutcome {
                    progress,
                    timed_out: true,
                });
            }
            Ok(Err(e)) if e.is_retryable() => {
                tokio::time::sleep(backoff.failure().min(remaining)).await;
                continue;
            }
            Ok(Err(e)) => return Err(anyhow::Error::new(e).context("cannot read statuses")),
            Ok(Ok(r)) => r,
        };
        backoff.success();
        // Each answer is the whole prefix, so it is evaluated even when the index went
        // backwards; the relist that follows is read at once and evaluated in turn.
        index = next_index(index, response.meta.index).wait_index();
        let next = evaluate(targets, &decode(status_prefix, &response.value));
        if next != progress {
            progress = next;
            on_change(&progress);
        }
        if all_settled(&progress) {
            return Ok(WaitOutcome {
                progress,
                timed_out: false,
            });
        }
        tokio::time::sleep_until((started + MIN_READ_INTERVAL).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_spec_settles_once_its_generation_is_observed_in_a_settled_phase() {
        let targets = [Target {
            key: "a/b".into(),
            generation: 10,
        }];
        let old = docs(&[("a/b", json!({"observedGeneration": 9, "phase": "Synced"}))]);
        assert!(!all_settled(&evaluate(&targets, &old)));
        let moving = docs(&[(
            "a/b",
            json!({"observedGeneration": 10, "phase": "Progressing"}),
        )]);
        assert!(!all_settled(&evaluate(&targets, &moving)));
        let done = docs(&[("a/b", json!({"observedGeneration": 11, "phase": "Synced"}))]);
        let p = evaluate(&targets, &done);
        assert!(all_settled(&p) && p[0].1.is_synced());
        let bad = docs(&[("a/b", json!({"observedGeneration": 10, "phase": "Invalid"}))]);
        let p = evaluate(&targets, &bad);
        assert!(all_settled(&p) && !p[0].1.is_synced());
    }

    #[test]
    fn a_missing_status_is_waiting() {
        let targets = [Target {
            key: "a/b".into(),
            generation: 1,
        }];
        assert_eq!(
            evaluate(&targets, &BTreeMap::new()),
            [("a/b".to_owned(), Progress::Waiting(None))]
        );
    }
}
