//! The bounded memo of renderings (see `reconcile::render`): a key is reconciled many
//! times per generation, and parsing and rendering it once is enough.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use steward_render::Desired;
use steward_render::names::SpecKey;

/// How many keys' renderings are remembered: more than are in flight at once (the
/// reconcile concurrency, and the keys whose rollouts are running), far fewer than
/// 10,000 specs' worth of rendered jobs.
pub(crate) const RENDER_MEMO: usize = 256;

/// What a key last rendered to.
#[derive(Debug, Clone)]
pub(crate) struct CachedRender {
    pub(crate) generation: u64,
    pub(crate) replicas: u32,
    /// The rendering holds until then (the next scaling boundary).
    pub(crate) valid_until: Option<jiff::Timestamp>,
    pub(crate) batch: bool,
    pub(crate) key: SpecKey,
    pub(crate) desired: Arc<Desired>,
    /// What the edge control plane serves of it (specs with edge routes).
    pub(crate) edge: Option<Arc<steward_edge::EdgeSpec>>,
}

/// The bounded memo of renderings.
#[derive(Debug, Default)]
pub(crate) struct RenderMemo {
    map: HashMap<String, CachedRender>,
    /// Keys in insertion order, for eviction (may hold keys removed since).
    order: VecDeque<String>,
}

impl RenderMemo {
    pub(crate) fn get(
        &self,
        key: &str,
        generation: u64,
        now: jiff::Timestamp,
    ) -> Option<&CachedRender> {
        self.map
            .get(key)
            .filter(|c| c.generation == generation && c.valid_until.is_none_or(|t| now < t))
    }

    pub(crate) fn insert(&mut self, key: &str, render: CachedRender) {
        if self.map.insert(key.to_owned(), render).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.map.len() > RENDER_MEMO {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
        // Keys removed by `forget` leave stale names behind; compact now and then.
        if self.order.len() > 2 * RENDER_MEMO {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    /// Forgets `key` (its spec is gone).
    pub(crate) fn forget(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Keys remembered.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn render(generation: u64, until: Option<&str>) -> CachedRender {
        CachedRender {
            generation,
            replicas: 1,
            valid_until: until.map(|t| t.parse().unwrap()),
            batch: false,
            key: SpecKey::new("a", "web"),
            desired: Arc::new(Desired {
                key: "a/web".into(),
                hash: "h".into(),
                nomad_job: steward_render::NomadJob {
                    namespace: "a".into(),
                    id: "web".into(),
                    job: serde_json::Value::Null,
                },
                service_defaults: None,
                service_intentions: None,
                http_routes: Vec::new(),
                vault_policy: None,
                vault_role: None,
            }),
            edge: None,
        }
    }

    #[test]
    fn the_memo_holds_a_generation_until_the_next_scaling_boundary() {
        let mut memo = RenderMemo::default();
        let before: jiff::Timestamp = "2026-01-01T08:00:00Z".parse().unwrap();
        let after: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        memo.insert("a/web", render(5, Some("2026-01-01T09:00:00Z")));
        assert!(memo.get("a/web", 5, before).is_some());
        assert!(memo.get("a/web", 5, after).is_none(), "past the boundary");
        assert!(memo.get("a/web", 6, before).is_none(), "another generation");
        memo.forget("a/web");
        assert!(memo.get("a/web", 5, before).is_none());
    }

    #[test]
    fn the_memo_is_bounded_and_forgets_the_oldest() {
        let mut memo = RenderMemo::default();
        let now: jiff::Timestamp = "2026-01-01T08:00:00Z".parse().unwrap();
        for i in 0..RENDER_MEMO + 10 {
            memo.insert(&format!("a/s{i}"), render(1, None));
        }
        assert_eq!(memo.len(), RENDER_MEMO);
        assert!(memo.get("a/s0", 1, now).is_none());
        assert!(
            memo.get(&format!("a/s{}", RENDER_MEMO + 9), 1, now)
                .is_some()
        );
        for i in 0..3 * RENDER_MEMO {
            memo.forget(&format!("a/s{i}"));
            memo.insert(&format!("b/s{i}"), render(1, None));
        }
        assert!(
            memo.order.len() <= 2 * RENDER_MEMO + 1,
            "{}",
            memo.order.len()
        );
    }
}
