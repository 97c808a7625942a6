//! The read-only view of one spec for the HTTP API: the rendered desired objects and
//! what a reconcile would do now (conflicts, or the planned writes with their changed
//! fields). It reads like a reconcile (caches, direct reads when stale) and writes
//! nothing.

use serde_json::{Value, json};

use super::chain;
use super::gather::{Gathered, gather};
use super::render::{Rendered, render_spec};
use crate::context::OperatorContext;
use crate::plan::{self, Plan, StepKind};

/// `(desired, diff)` of `key`; `None` when there is no such spec.
pub(crate) async fn describe_spec(shared: &OperatorContext, key: &str) -> Option<(Value, Value)> {
    let entry = shared.caches.specs.get(key)?;
    let now = jiff::Timestamp::now();
    let Rendered::Ok {
        key: spec_key,
        desired,
        ..
    } = render_spec(
        shared,
        key,
        entry.generation,
        entry.create_index,
        &entry.value,
        now,
    )
    else {
        return Some((Value::Null, json!({"error": "the spec is invalid"})));
    };
    let desired_json = serde_json::to_value(&*desired).unwrap_or(Value::Null);
    let diff = match gather(shared, &spec_key, &desired, None).await {
        Ok(Gathered::Live(live, _)) => {
            let conflicts = plan::conflicts(&spec_key, &desired, &live);
            let p = if conflicts.is_empty() {
                plan::plan(&spec_key, &desired, &live, &shared.config.jwt_auth_mount)
            } else {
                Plan::default()
            };
            let action = |k: StepKind| match k {
                StepKind::Create => "create",
                StepKind::Update => "update",
                StepKind::Delete => "delete",
            };
            json!({
                "conflicts": conflicts
                    .iter()
                    .map(|(o, m)| json!({"kind": o.kind.as_str(), "name": o.name, "message": m}))
                    .collect::<Vec<_>>(),
                "steps": p
                    .steps
                    .iter()
                    .map(|s| json!({
                        "kind": s.object.kind.as_str(),
                        "name": s.object.name,
                        "action": action(s.kind),
                        "changes": s.changes,
                    }))
                    .collect::<Vec<_>>(),
                "inSync": p
                    .in_sync
                    .iter()
                    .map(|o| json!({"kind": o.kind.as_str(), "name": o.name}))
                    .collect::<Vec<_>>(),
            })
        }
        Ok(Gathered::WaitForWatch) => {
            json!({"error": "a write of this spec's objects is not shown by the watches yet"})
        }
        Ok(Gathered::Waiting(waiting)) => json!({
            "error": "caches this spec needs have not synced",
            "waitingFor": waiting
                .iter()
                .map(|w| json!({"kind": w.kind.as_str(), "cache": w.cache, "error": w.error}))
                .collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": chain(&e)}),
    };
    Some((desired_json, diff))
}
