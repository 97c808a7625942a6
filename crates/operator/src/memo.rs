//! The memos of `reconcile::render`: a key is reconciled many times per generation, and
//! parsing and rendering it once is enough.
//!
//! - [`RenderMemo`]: the renderings of the keys reconciled last (a rendering is ~23 KB
//!   of JSON values, so only [`RENDER_MEMO`] keys, 32);
//! - [`ParsedMemo`]: every key's validated spec at its generation, kept as compressed
//!   JSON (~0.5 KB), so that a spec is parsed and checked once per generation even when
//!   its rendering has been forgotten (at 10,000 specs a cold start reconciles each key
//!   twice, 10,000 keys apart). Bounded by the specs that exist: a key is forgotten when
//!   its spec goes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use steward_render::Desired;
use steward_render::names::SpecKey;
use steward_spec::ServiceSpec;

use crate::packed::Packed;

/// How many keys' renderings are remembered. A key is reconciled again soon after its
/// writes (its rollout's deployment updates, its own writes seen by the watches); a
/// cold start reconciles every key twice, the whole queue apart, so no bounded memo
/// helps there (2.02 renderings per spec at 1,000 specs with 96 keys). A rendering is
/// ~23 KB of JSON values: 32 keys are ~0.7 MiB (96 were ~2.2 MiB, 256 ~6 MiB, against
/// a 40 MiB goal for the whole operator at 1,000 specs), and a miss costs a rendering
/// only, not a parse ([`ParsedMemo`]).
pub(crate) const RENDER_MEMO: usize = 32;

/// The validated spec of each key at the generation last parsed (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ParsedMemo {
    map: HashMap<String, (u64, Packed)>,
}

impl ParsedMemo {
    /// The spec of `key` at `generation`, if it was parsed and passed validation.
    pub(crate) fn get(&self, key: &str, generation: u64) -> Option<ServiceSpec> {
        let (kept, packed) = self.map.get(key)?;
        if *kept != generation {
            return None;
        }
        serde_json::from_slice(&packed.unpack()?).ok()
    }

    /// Remembers the validated `spec` of `key` at `generation`.
    pub(crate) fn insert(&mut self, key: &str, generation: u64, spec: &ServiceSpec) {
        let Ok(json) = serde_json::to_vec(spec) else {
            return;
        };
        let packed = Packed::pack(&json);
        match self.map.get_mut(key) {
            Some(entry) => *entry = (generation, packed),
            None => {
                self.map.insert(key.to_owned(), (generation, packed));
            }
        }
    }

    /// Forgets `key` (its spec is gone).
    pub(crate) fn forget(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Keys remembered.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Keeps only the keys `exists` says still have a spec: a spec deleted while this
    /// instance did not lead is never reconciled here, so `forget` never sees it.
    pub(crate) fn retain(&mut self, exists: impl Fn(&str) -> bool) {
        self.map.retain(|k, _| exists(k));
    }
}

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
    fn a_parsed_spec_comes_back_equal_for_its_generation_only() {
        let text = include_str!("../../../deploy/examples/order-api.yaml");
        let spec = steward_spec::load("order-api.yaml", text, None)
            .spec
            .unwrap();
        let mut memo = ParsedMemo::default();
        memo.insert("trading/order-api", 4, &spec);
        assert_eq!(memo.get("trading/order-api", 4), Some(spec.clone()));
        assert_eq!(memo.get("trading/order-api", 5), None, "another generation");
        assert_eq!(memo.get("trading/other", 4), None);
        memo.forget("trading/order-api");
        assert_eq!(memo.get("trading/order-api", 4), None);
        memo.insert("a/kept", 1, &spec);
        memo.insert("a/gone", 1, &spec);
        memo.retain(|k| k == "a/kept");
        assert_eq!(memo.len(), 1);
        assert!(memo.get("a/kept", 1).is_some());
    }

    #[test]
    fn every_example_spec_survives_the_parsed_memo_unchanged() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let Some(spec) = steward_spec::load("x.yaml", &text, None).spec else {
                continue;
            };
            let mut memo = ParsedMemo::default();
            memo.insert("k", 1, &spec);
            assert_eq!(memo.get("k", 1).as_ref(), Some(&spec), "{}", path.display());
            seen += 1;
        }
        assert!(
            seen >= 5,
            "only {seen} examples loaded from {}",
            dir.display()
        );
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
