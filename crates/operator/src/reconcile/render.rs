//! Loading, validating and rendering a spec, remembered per key for the generation last
//! rendered: a key is reconciled many times per generation (every deployment event), and
//! parsing and rendering it once is enough. The memo holds the rendering until the next
//! scaling boundary (the replica count may change there); it is bounded
//! ([`RENDER_MEMO`] keys, the oldest forgotten first) and forgets a key whose spec is
//! gone ([`forget`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use steward_render::names::SpecKey;
use steward_render::{Desired, RenderContext};

use super::chain;
use crate::operator::Shared;
use crate::status::DiagnosticDoc;

/// How many keys' renderings are remembered: more than are in flight at once (the
/// reconcile concurrency, and the keys whose rollouts are running), far fewer than
/// 10,000 specs' worth of rendered jobs.
pub(crate) const RENDER_MEMO: usize = 256;

/// What a key last rendered to.
#[derive(Debug, Clone)]
struct CachedRender {
    generation: u64,
    replicas: u32,
    /// The rendering holds until then (the next scaling boundary).
    valid_until: Option<jiff::Timestamp>,
    batch: bool,
    key: SpecKey,
    desired: Arc<Desired>,
}

/// The bounded memo of renderings.
#[derive(Debug, Default)]
pub(crate) struct RenderMemo {
    map: HashMap<String, CachedRender>,
    /// Keys in insertion order, for eviction (may hold keys removed since).
    order: VecDeque<String>,
}

impl RenderMemo {
    fn get(&self, key: &str, generation: u64, now: jiff::Timestamp) -> Option<&CachedRender> {
        self.map
            .get(key)
            .filter(|c| c.generation == generation && c.valid_until.is_none_or(|t| now < t))
    }

    fn insert(&mut self, key: &str, render: CachedRender) {
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

/// Forgets what was remembered of `key` (its spec is gone).
pub(crate) fn forget(shared: &Shared, key: &str) {
    shared.renders.lock().forget(key);
    shared.verified.lock().remove(key);
}

/// The rendering context of the operator for one spec.
#[must_use]
pub(crate) fn render_context(shared: &Shared, generation: u64, replicas: u32) -> RenderContext {
    RenderContext {
        generation,
        replicas: Some(replicas),
        edge_gateway: shared.config.edge_gateway.clone(),
        jwt_auth_mount: shared.config.jwt_auth_mount.clone(),
        jwt_audience: shared.config.jwt_audience.clone(),
    }
}

/// A spec loaded, checked against its key and rendered.
pub(crate) enum Rendered {
    /// Invalid: the message and diagnostics.
    Invalid(String, Vec<DiagnosticDoc>),
    /// Rendered.
    Ok {
        /// The spec key.
        key: SpecKey,
        /// The desired objects.
        desired: Arc<Desired>,
        /// Replicas now.
        replicas: u32,
        /// Next scaling boundary.
        next_change: Option<jiff::Timestamp>,
        /// Whether it is a batch job.
        batch: bool,
    },
}

fn invalid(code: &str, path: &str, message: String) -> Rendered {
    Rendered::Invalid(
        message.clone(),
        vec![DiagnosticDoc {
            line: 1,
            column: 1,
            path: path.to_owned(),
            message,
            severity: "error".to_owned(),
            code: code.to_owned(),
        }],
    )
}

/// Loads, validates and renders the spec of `key` at `now`.
pub(crate) fn render_spec(
    shared: &Shared,
    key: &str,
    generation: u64,
    text: &str,
    now: jiff::Timestamp,
) -> Rendered {
    if let Some(c) = shared.renders.lock().get(key, generation, now) {
        return Rendered::Ok {
            key: c.key.clone(),
            desired: c.desired.clone(),
            replicas: c.replicas,
            next_change: c.valid_until,
            batch: c.batch,
        };
    }
    let file = format!("{}{key}", shared.config.specs_prefix());
    let loaded = steward_spec::load(&file, text, Some(&shared.config.policy));
    let Some(spec) = loaded.spec.as_ref() else {
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let first = loaded
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| format!(": {}:{} {}", d.line, d.column, d.message))
            .unwrap_or_default();
        return Rendered::Invalid(
            format!("the spec is invalid ({errors} error(s)){first}"),
            loaded.diagnostics.iter().map(DiagnosticDoc::from).collect(),
        );
    };
    let spec_key = SpecKey::of(spec);
    if SpecKey::parse(key).as_ref() != Some(&spec_key) {
        return invalid(
            "key-mismatch",
            "metadata",
            format!(
                "the KV key {key:?} does not match metadata.namespace/metadata.name {:?}: store the spec at {}{spec_key}",
                spec_key.to_string(),
                shared.config.specs_prefix()
            ),
        );
    }
    let plan = steward_spec::desired_replicas(spec, now);
    let batch = spec.is_batch();
    let ctx = render_context(shared, generation, plan.replicas);
    let desired = match steward_render::render(spec, &ctx) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            return invalid(
                "render",
                "spec",
                format!("the spec cannot be rendered: {}", chain(&e)),
            );
        }
    };
    shared.renders.lock().insert(
        key,
        CachedRender {
            generation,
            replicas: plan.replicas,
            valid_until: plan.next_change,
            batch,
            key: spec_key.clone(),
            desired: desired.clone(),
        },
    );
    Rendered::Ok {
        key: spec_key,
        desired,
        replicas: plan.replicas,
        next_change: plan.next_change,
        batch,
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
