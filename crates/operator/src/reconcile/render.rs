//! Loading, validating and rendering a spec, cached per key for the generation (and
//! replica count) last rendered: a key is reconciled many times per generation (every
//! deployment event), parsing it once is enough.

use std::sync::Arc;

use steward_render::names::SpecKey;
use steward_render::{Desired, RenderContext};
use steward_spec::Loaded;

use super::chain;
use crate::operator::Shared;
use crate::status::DiagnosticDoc;

/// What a key last rendered to.
#[derive(Debug, Clone)]
pub(crate) struct CachedRender {
    generation: u64,
    replicas: u32,
    desired: Arc<Desired>,
}

fn load(shared: &Shared, key: &str, generation: u64, text: &str) -> Arc<Loaded> {
    if let Some((g, loaded)) = shared.loads.lock().get(key)
        && *g == generation
    {
        return loaded.clone();
    }
    let file = format!("{}{key}", shared.config.specs_prefix());
    let loaded = Arc::new(steward_spec::load(&file, text, Some(&shared.config.policy)));
    shared
        .loads
        .lock()
        .insert(key.to_owned(), (generation, loaded.clone()));
    loaded
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
    let loaded = load(shared, key, generation, text);
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
    let cached = shared.renders.lock().get(key).cloned();
    let desired = match cached {
        Some(c) if c.generation == generation && c.replicas == plan.replicas => c.desired,
        _ => {
            let ctx = render_context(shared, generation, plan.replicas);
            match steward_render::render(spec, &ctx) {
                Ok(d) => {
                    let desired = Arc::new(d);
                    shared.renders.lock().insert(
                        key.to_owned(),
                        CachedRender {
                            generation,
                            replicas: plan.replicas,
                            desired: desired.clone(),
                        },
                    );
                    desired
                }
                Err(e) => {
                    return invalid(
                        "render",
                        "spec",
                        format!("the spec cannot be rendered: {}", chain(&e)),
                    );
                }
            }
        }
    };
    Rendered::Ok {
        key: spec_key,
        desired,
        replicas: plan.replicas,
        next_change: plan.next_change,
        batch,
    }
}
