//! Loading, validating and rendering a spec, remembered per key for the generation last
//! rendered: a key is reconciled many times per generation (every deployment event), and
//! parsing and rendering it once is enough. The memo holds the rendering until the next
//! scaling boundary (the replica count may change there); it is bounded
//! ([`crate::memo::RENDER_MEMO`] keys, the oldest forgotten first) and forgets a key whose spec is
//! gone ([`forget`]).

use std::sync::Arc;

use steward_render::names::SpecKey;
use steward_render::{Desired, RenderContext};

use super::chain;
use crate::context::OperatorContext;
use crate::memo::CachedRender;
use crate::status::DiagnosticDoc;

/// Forgets what was remembered of `key` (its spec is gone).
pub(crate) fn forget(shared: &OperatorContext, key: &str) {
    shared.renders.lock().forget(key);
    shared.parsed.lock().forget(key);
    shared.verified.lock().remove(key);
    shared.waits.forget(key);
    if let Some(key) = steward_render::names::SpecKey::parse(key) {
        shared.uncertain.forget(&key);
    }
}

/// The rendering context of the operator for one spec.
#[must_use]
pub(crate) fn render_context(
    shared: &OperatorContext,
    generation: u64,
    replicas: u32,
) -> RenderContext {
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
        /// Its edge routes, for the edge control plane (`None` without routes).
        edge: Option<Arc<steward_edge::EdgeSpec>>,
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

/// Loads (from the bytes stored in KV), validates and renders the spec of `key` at `now`.
pub(crate) fn render_spec(
    shared: &OperatorContext,
    key: &str,
    generation: u64,
    create_index: u64,
    value: &crate::cache::SpecText,
    now: jiff::Timestamp,
) -> Rendered {
    if let Some(c) = shared.renders.lock().get(key, generation, now) {
        return Rendered::Ok {
            key: c.key.clone(),
            desired: c.desired.clone(),
            replicas: c.replicas,
            next_change: c.valid_until,
            batch: c.batch,
            edge: c.edge.clone(),
        };
    }
    shared
        .renderings
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Parsed and validated once per generation (the guardrail policy is fixed for the
    // operator's life); an invalid spec is parsed again, to report its diagnostics.
    let memo = shared.parsed.lock().get(key, generation);
    let parsed = match memo {
        Some(spec) => spec,
        None => {
            shared
                .parses
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let file = format!("{}{key}", shared.config.specs_prefix());
            let loaded =
                steward_spec::load_bytes(&file, &value.bytes(), Some(&shared.config.policy));
            let Some(spec) = loaded.spec else {
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
            let specs = &shared.caches.specs;
            let mut memo = shared.parsed.lock();
            memo.insert(key, generation, &spec);
            if memo.len() > 2 * specs.len() + 64 {
                memo.retain(|k| specs.contains(k));
            }
            spec
        }
    };
    let spec = &parsed;
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
        Ok(mut d) => {
            // In `xds` mode the edge is Steward's own: no `http-route` entries.
            if !shared.config.edge.mode.api_gateway() {
                d.http_routes.clear();
            }
            Arc::new(d)
        }
        Err(e) => {
            return invalid(
                "render",
                "spec",
                format!("the spec cannot be rendered: {}", chain(&e)),
            );
        }
    };
    let edge = (!spec.spec.edge.routes.is_empty()).then(|| {
        Arc::new(steward_edge::EdgeSpec {
            key: spec_key.to_string(),
            create_index,
            service: steward_render::names::consul_service(&spec_key),
            port: spec.spec.port.unwrap_or(0),
            routes: spec.spec.edge.routes.clone(),
        })
    });
    shared.renders.lock().insert(
        key,
        CachedRender {
            generation,
            replicas: plan.replicas,
            valid_until: plan.next_change,
            batch,
            key: spec_key.clone(),
            desired: desired.clone(),
            edge: edge.clone(),
        },
    );
    Rendered::Ok {
        key: spec_key,
        desired,
        replicas: plan.replicas,
        next_change: plan.next_change,
        batch,
        edge,
    }
}
