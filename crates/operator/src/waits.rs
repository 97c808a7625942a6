//! How long each key has waited for something that may never come (a cache's first
//! listing, the deployment of its job), so that after [`WAIT_TIMEOUT`] its status names
//! what it waits for instead of waiting quietly forever. The start of each wait lives
//! here, in a bounded map of the operator's context; `decide` only gets it as a fact.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use steward_runtime::Action;
use tokio::time::Instant;

pub(crate) use crate::status::WAIT_TIMEOUT;
use crate::status::{Rollout, Verdict};

/// Most waits remembered: far more keys than wait at once on a healthy cluster. Beyond
/// that the longest wait is forgotten (it starts again on its key's next pass), so the
/// map stays bounded even if a key's removal were never seen.
pub(crate) const MAX_WAITS: usize = 16_384;

/// The shortest requeue toward a wait's deadline (a pass just before it would only
/// requeue again).
const MIN_DEADLINE_REQUEUE: Duration = Duration::from_millis(100);

/// What a key waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// A cache of a kind the spec renders has not listed.
    Cache,
    /// The job is registered and no deployment of its version is seen yet.
    Deployment,
}

/// When a key's current wait began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitStart {
    /// What it waits for.
    pub(crate) kind: WaitKind,
    /// Since when (the first pass of this generation that saw it waiting).
    pub(crate) since: Instant,
}

impl WaitStart {
    /// Whether this wait, for `kind`, has lasted [`WAIT_TIMEOUT`] at `now`.
    pub(crate) fn overdue(&self, kind: WaitKind, now: Instant) -> bool {
        self.kind == kind && now.saturating_duration_since(self.since) >= WAIT_TIMEOUT
    }

    /// `action`, but no later than this wait's deadline (while it is not overdue), so
    /// that the status says it on time rather than at the next safety-net pass.
    pub(crate) fn until_deadline(&self, action: Action, now: Instant) -> Action {
        let left = (self.since + WAIT_TIMEOUT).saturating_duration_since(now);
        if left.is_zero() {
            return action;
        }
        let left = left.max(MIN_DEADLINE_REQUEUE);
        match action {
            Action::Requeue(d) => Action::requeue(d.min(left)),
            Action::AwaitChange => Action::requeue(left),
            other => other,
        }
    }
}

/// What a pass that ends with `verdict` leaves the key waiting for (pure): a cache, the
/// deployment of its registered job, or nothing.
pub(crate) fn waiting_for(verdict: &Verdict) -> Option<WaitKind> {
    match verdict {
        Verdict::Waiting { .. } => Some(WaitKind::Cache),
        Verdict::Applied {
            failure: None,
            rollout: Rollout::Pending | Rollout::NoJob | Rollout::NotSeen(_),
            ..
        } => Some(WaitKind::Deployment),
        _ => None,
    }
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    start: WaitStart,
    /// The WARN log and Warning event of this wait were given.
    warned: bool,
}

/// The current wait of each key that waits (bounded: [`MAX_WAITS`]).
#[derive(Debug, Default)]
pub(crate) struct Waits {
    map: Mutex<HashMap<String, Entry>>,
}

impl Waits {
    /// The wait of `key` at `generation`, if one is remembered.
    pub(crate) fn start(&self, key: &str, generation: u64) -> Option<WaitStart> {
        self.map
            .lock()
            .get(key)
            .filter(|e| e.generation == generation)
            .map(|e| e.start)
    }

    /// Records what `key` waits for after a pass at `generation` (`None`: nothing, and
    /// the wait is forgotten). A wait for the same thing at the same generation keeps
    /// its start unless `restart` (the job was registered again in this pass).
    pub(crate) fn record(
        &self,
        key: &str,
        generation: u64,
        kind: Option<WaitKind>,
        restart: bool,
        now: Instant,
    ) {
        let mut map = self.map.lock();
        let Some(kind) = kind else {
            map.remove(key);
            return;
        };
        if let Some(e) = map.get(key)
            && e.generation == generation
            && e.start.kind == kind
            && !restart
        {
            return;
        }
        if !map.contains_key(key)
            && map.len() >= MAX_WAITS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.start.since)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let start = WaitStart { kind, since: now };
        map.insert(
            key.to_owned(),
            Entry {
                generation,
                start,
                warned: false,
            },
        );
    }

    /// True the first time it is asked for `key`'s current wait: its WARN log and
    /// Warning event are given once per wait, not on every pass.
    pub(crate) fn warn_once(&self, key: &str) -> bool {
        match self.map.lock().get_mut(key) {
            Some(e) if !e.warned => {
                e.warned = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets `key` (its spec is gone).
    pub(crate) fn forget(&self, key: &str) {
        self.map.lock().remove(key);
    }

    /// Keys remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_overdue_after_the_timeout_and_warns_once() {
        let waits = Waits::default();
        let t0 = Instant::now();
        waits.record("a/web", 3, Some(WaitKind::Cache), false, t0);
        tokio::time::advance(Duration::from_secs(59)).await;
        // Later passes of the same wait keep its start.
        waits.record("a/web", 3, Some(WaitKind::Cache), false, Instant::now());
        let start = waits.start("a/web", 3).unwrap();
        assert_eq!(start.since, t0);
        assert!(!start.overdue(WaitKind::Cache, Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(start.overdue(WaitKind::Cache, Instant::now()));
        assert!(
            !start.overdue(WaitKind::Deployment, Instant::now()),
            "another kind of wait"
        );
        assert!(waits.warn_once("a/web"));
        assert!(!waits.warn_once("a/web"), "once per wait");
        // Another generation is another wait.
        assert_eq!(waits.start("a/web", 4), None);
        waits.record("a/web", 4, Some(WaitKind::Cache), false, Instant::now());
        assert!(waits.warn_once("a/web"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_forgotten_when_it_ends_restarts_when_asked_and_stays_bounded() {
        let waits = Waits::default();
        let t0 = Instant::now();
        waits.record("a/web", 3, Some(WaitKind::Deployment), false, t0);
        tokio::time::advance(Duration::from_secs(30)).await;
        waits.record("a/web", 3, Some(WaitKind::Deployment), true, Instant::now());
        assert_eq!(waits.start("a/web", 3).unwrap().since, Instant::now());
        waits.record("a/web", 3, None, false, Instant::now());
        assert_eq!(waits.len(), 0, "it stopped waiting");
        waits.record("a/web", 3, Some(WaitKind::Cache), false, Instant::now());
        waits.forget("a/web");
        assert_eq!(waits.len(), 0, "its key is gone");
        for i in 0..=MAX_WAITS {
            waits.record(
                &format!("a/{i}"),
                1,
                Some(WaitKind::Cache),
                false,
                Instant::now(),
            );
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(waits.len(), MAX_WAITS);
        assert_eq!(waits.start("a/0", 1), None, "the longest wait went first");
        assert!(waits.start(&format!("a/{MAX_WAITS}"), 1).is_some());
    }

    #[test]
    fn a_wait_requeues_no_later_than_its_deadline() {
        let now = Instant::now();
        let start = WaitStart {
            kind: WaitKind::Deployment,
            since: now,
        };
        let later = now + Duration::from_secs(45);
        assert_eq!(
            start.until_deadline(Action::requeue(Duration::from_secs(30)), later),
            Action::requeue(Duration::from_secs(15))
        );
        assert_eq!(
            start.until_deadline(Action::await_change(), now),
            Action::requeue(WAIT_TIMEOUT)
        );
        let overdue = now + WAIT_TIMEOUT;
        assert_eq!(
            start.until_deadline(Action::requeue(Duration::from_secs(30)), overdue),
            Action::requeue(Duration::from_secs(30))
        );
    }
}
