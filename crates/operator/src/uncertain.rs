//! Writes whose outcome is unknown: the request was sent, and the answer was a 5xx or
//! never came (a reset, a timeout). The write may have landed. Until the watches have
//! surely caught up, the object is read from its server before anything is decided
//! about it, never taken from a cache, so a landed write is found and not sent again
//! (as Consul's and Nomad's own clients leave it to their callers: they never repeat a
//! write by themselves).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use steward_render::ObjectRef;
use steward_render::names::SpecKey;
use tokio::time::Instant;

/// How long an object is read directly after an uncertain write: far longer than a
/// watch takes to show a write (one blocking round trip), so afterwards the caches
/// tell the truth again.
pub const READ_DIRECTLY_FOR: Duration = Duration::from_secs(30);

/// The objects of each key whose last write had an unknown outcome, with when.
#[derive(Debug, Default)]
pub struct UncertainWrites {
    by_key: Mutex<HashMap<SpecKey, HashMap<ObjectRef, Instant>>>,
}

impl UncertainWrites {
    /// Records that a write of `object` for `key` may have landed unseen.
    pub fn record(&self, key: &SpecKey, object: &ObjectRef) {
        self.by_key
            .lock()
            .entry(key.clone())
            .or_default()
            .insert(object.clone(), Instant::now());
    }

    /// The objects of `key` to read directly now (forgetting the expired ones).
    #[must_use]
    pub fn of(&self, key: &SpecKey) -> BTreeSet<ObjectRef> {
        let mut all = self.by_key.lock();
        let Some(objects) = all.get_mut(key) else {
            return BTreeSet::new();
        };
        objects.retain(|_, at| at.elapsed() < READ_DIRECTLY_FOR);
        let out = objects.keys().cloned().collect();
        if objects.is_empty() {
            all.remove(key);
        }
        out
    }

    /// Forgets `key` (its spec is gone).
    pub fn forget(&self, key: &SpecKey) {
        self.by_key.lock().remove(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use steward_render::ObjectKind;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn objects_are_read_directly_for_a_while_after_an_uncertain_write() {
        let w = UncertainWrites::default();
        let key = SpecKey::parse("shop/web").unwrap();
        let other = SpecKey::parse("shop/cart").unwrap();
        let job = ObjectRef {
            kind: ObjectKind::NomadJob,
            name: "web".into(),
        };
        assert!(w.of(&key).is_empty());
        w.record(&key, &job);
        assert_eq!(w.of(&key), BTreeSet::from([job.clone()]));
        assert!(w.of(&other).is_empty());
        tokio::time::advance(READ_DIRECTLY_FOR - Duration::from_millis(1)).await;
        assert_eq!(w.of(&key).len(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(w.of(&key).is_empty());
        w.record(&key, &job);
        w.forget(&key);
        assert!(w.of(&key).is_empty());
    }
}
