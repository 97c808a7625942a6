//! Event recorder: a bounded ring buffer for queries plus a broadcast channel for live
//! followers (the HTTP API's server-sent events).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

/// Severity of an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    /// Something expected happened (created, updated, synced).
    Normal,
    /// Something needs attention (a failed step, a conflict, a guard that tripped).
    Warning,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When it was recorded.
    pub time: jiff::Timestamp,
    /// The spec key (`<ns>/<name>`) it concerns.
    pub key: String,
    /// Severity.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// A short CamelCase reason (`JobRegistered`, `PolicyWriteFailed`).
    pub reason: String,
    /// A human-readable message.
    pub message: String,
    /// The object involved (`nomad job trading/order-api`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

/// Default ring buffer size.
pub const DEFAULT_CAPACITY: usize = 1000;

struct Inner {
    ring: Mutex<VecDeque<Event>>,
    capacity: usize,
    live: broadcast::Sender<Event>,
}

/// Records events. Cheap to clone; clones share the buffer.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("len", &self.inner.ring.lock().len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl Recorder {
    /// A recorder keeping the last `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (live, _) = broadcast::channel(capacity.min(4096));
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
                live,
            }),
        }
    }

    /// Records an event now and sends it to live followers.
    pub fn record(
        &self,
        key: impl Into<String>,
        type_: EventType,
        reason: impl Into<String>,
        message: impl Into<String>,
        object: Option<String>,
    ) -> Event {
        let event = Event {
            time: jiff::Timestamp::now(),
            key: key.into(),
            type_,
            reason: reason.into(),
            message: message.into(),
            object,
        };
        // Warnings are what the platform team must see even without following the
        // stream: they reach the log at WARN (callers do not record the same failure
        // twice in a row); normal events at DEBUG.
        match event.type_ {
            EventType::Warning => tracing::warn!(
                key = %event.key,
                reason = %event.reason,
                object = event.object.as_deref().unwrap_or(""),
                "{}",
                event.message
            ),
            EventType::Normal => tracing::debug!(
                key = %event.key,
                reason = %event.reason,
                object = event.object.as_deref().unwrap_or(""),
                "{}",
                event.message
            ),
        }
        self.push(event.clone());
        event
    }

    /// Records a [`EventType::Normal`] event.
    pub fn normal(
        &self,
        key: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Event {
        self.record(key, EventType::Normal, reason, message, None)
    }

    /// Records a [`EventType::Warning`] event.
    pub fn warning(
        &self,
        key: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Event {
        self.record(key, EventType::Warning, reason, message, None)
    }

    /// Stores an already built event and sends it to live followers.
    pub fn push(&self, event: Event) {
        {
            let mut ring = self.inner.ring.lock();
            if ring.len() == self.inner.capacity {
                ring.pop_front();
            }
            ring.push_back(event.clone());
        }
        // No follower is not an error.
        let _ = self.inner.live.send(event);
    }

    /// A live follower: receives every event recorded from now on. A follower that
    /// falls behind by more than the channel size gets `Lagged` and skips ahead.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.live.subscribe()
    }

    /// The last `n` events, oldest first.
    pub fn last(&self, n: usize) -> Vec<Event> {
        let ring = self.inner.ring.lock();
        let skip = ring.len().saturating_sub(n);
        ring.iter().skip(skip).cloned().collect()
    }

    /// The last `n` events of one key, oldest first.
    pub fn for_key(&self, key: &str, n: usize) -> Vec<Event> {
        let ring = self.inner.ring.lock();
        let mut out: Vec<Event> = ring
            .iter()
            .rev()
            .filter(|e| e.key == key)
            .take(n)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Number of buffered events.
    pub fn len(&self) -> usize {
        self.inner.ring.lock().len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ring buffer size.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_ring_keeps_the_last_events_and_queries_by_key() {
        let r = Recorder::new(3);
        for i in 0..5 {
            let key = if i % 2 == 0 { "ns/a" } else { "ns/b" };
            r.normal(key, "Step", format!("m{i}"));
        }
        assert_eq!(r.len(), 3);
        let msgs = |v: Vec<Event>| v.into_iter().map(|e| e.message).collect::<Vec<_>>();
        assert_eq!(msgs(r.last(10)), vec!["m2", "m3", "m4"]);
        assert_eq!(msgs(r.last(2)), vec!["m3", "m4"]);
        assert_eq!(msgs(r.for_key("ns/a", 10)), vec!["m2", "m4"]);
        assert_eq!(msgs(r.for_key("ns/a", 1)), vec!["m4"]);
        assert!(r.for_key("ns/zz", 5).is_empty());
    }

    #[tokio::test]
    async fn live_followers_receive_new_events() {
        let r = Recorder::default();
        assert_eq!(r.capacity(), DEFAULT_CAPACITY);
        r.normal("ns/a", "Before", "not seen by the follower");
        let mut rx = r.subscribe();
        r.warning("ns/a", "PolicyWriteFailed", "vault said no");
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.reason.as_str(), e.type_),
            ("PolicyWriteFailed", EventType::Warning)
        );
    }

    #[test]
    fn events_serialize_with_a_type_field() {
        let r = Recorder::default();
        let mut e = r.normal("ns/a", "Synced", "ok");
        e.object = Some("nomad job ns/a".into());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["key"], "ns/a");
        assert_eq!(v["object"], "nomad job ns/a");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
