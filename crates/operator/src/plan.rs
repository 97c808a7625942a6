//! Pure decisions of one reconcile: who owns each live object (conflict detection), and
//! the ordered list of writes that moves the live objects to the desired ones.
//!
//! Ordering (see the design): Vault policy → Vault role → service-defaults →
//! service-intentions → Nomad job → http-route(s); objects the spec no longer has are
//! deleted afterwards in the reverse order. One exception: when the service protocol goes
//! from an HTTP family to `tcp`, Consul rejects the `service-defaults` write while L7
//! intentions or routes still need HTTP, so the intentions are written and the routes
//! deleted first, and `service-defaults` follows.
//!
//! A difference in `Meta["steward.hash"]` alone is not a reason to write: that key
//! records the spec hash of the last write to the object, and a spec change that leaves
//! an object's content unchanged (a new image changes the job only) must not rewrite the
//! other objects.

use serde_json::Value;
use steward_render::names::SpecKey;
use steward_render::{Desired, ObjectKind, ObjectRef};

use crate::kinds;
pub use crate::objects::{
    Live, LiveEntry, LiveObject, Step, StepKind, WriteOp, owner_message, owner_of_body,
};

/// The ordered writes of one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Writes, in the order to apply them.
    pub steps: Vec<Step>,
    /// Desired objects that already match.
    pub in_sync: Vec<ObjectRef>,
}

impl Plan {
    /// True when nothing needs writing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Every desired object that exists live without being owned by `key`, with a message
/// naming its owner. Any conflict means no write at all for the key.
#[must_use]
pub fn conflicts(key: &SpecKey, desired: &Desired, live: &Live) -> Vec<(ObjectRef, String)> {
    let mut out = Vec::new();
    for kind in kinds::KINDS {
        for name in kind.desired(desired) {
            let object = ObjectRef {
                kind: kind.kind(),
                name,
            };
            let Some(found) = live.get(&object) else {
                continue;
            };
            let owner = kind.owner(key, &object.name, found);
            if owner.as_ref() != Some(key) {
                out.push((object, owner_message(owner.as_ref())));
            }
        }
    }
    out
}

fn is_l7(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

fn protocol(body: &Value) -> String {
    body.get("Protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase()
}

/// Whether the service protocol goes from an HTTP family to a non-HTTP one (see the
/// module docs): the one cross-kind rule of the order.
fn downgrade(desired: &Desired, live: &Live) -> bool {
    let Some(d) = &desired.service_defaults else {
        return false;
    };
    let object = ObjectRef {
        kind: ObjectKind::ServiceDefaults,
        name: d.name.clone(),
    };
    matches!(live.get(&object), Some(LiveObject::Entry(l))
        if is_l7(&protocol(&l.body)) && !is_l7(&protocol(&d.body)))
}

/// The ordered writes that make `live` equal `desired` for `key` (see the module docs).
/// Call only when [`conflicts`] found none. `jwt_mount` is the auth mount of roles the
/// spec no longer wants.
///
/// Each kind decides its own objects (`crate::kinds`); this orders them: the writes
/// in apply order, then the deletions of owned objects the spec no longer has in
/// reverse order.
#[must_use]
pub fn plan(key: &SpecKey, desired: &Desired, live: &Live, jwt_mount: &str) -> Plan {
    let mut in_sync = Vec::new();
    let mut writes: Vec<(ObjectKind, Vec<Step>)> = Vec::new();
    let mut deletes: Vec<(ObjectKind, Vec<Step>)> = Vec::new();
    for kind in kinds::KINDS {
        let wanted = kind.desired(desired);
        let mut steps = Vec::new();
        for name in &wanted {
            let object = ObjectRef {
                kind: kind.kind(),
                name: name.clone(),
            };
            match kind.compare(desired, name, live.get(&object)) {
                Some(step) => steps.push(step),
                None => in_sync.push(object),
            }
        }
        writes.push((kind.kind(), steps));
        // Objects the spec no longer has, only those owned by this key.
        let gone: Vec<Step> = live
            .of_kind(kind.kind())
            .filter(|(name, l)| {
                !wanted.iter().any(|w| w == name) && kind.owner(key, name, l).as_ref() == Some(key)
            })
            .filter_map(|(name, l)| kind.delete(name, l, jwt_mount))
            .collect();
        deletes.push((kind.kind(), gone));
    }
    deletes.reverse();

    let mut route_deletes = Vec::new();
    let downgrade = downgrade(desired, live);
    if downgrade {
        for (kind, steps) in &mut deletes {
            if *kind == ObjectKind::HttpRoute {
                route_deletes.append(steps);
            }
        }
    }
    let mut steps = Vec::new();
    let mut defaults = Vec::new();
    for (kind, mut kind_steps) in writes {
        if downgrade && kind == ObjectKind::ServiceDefaults {
            // Intentions (no more L7 permissions) and route deletions before the
            // protocol goes to tcp.
            defaults = kind_steps;
            continue;
        }
        steps.append(&mut kind_steps);
        if kind == ObjectKind::ServiceIntentions {
            steps.append(&mut route_deletes);
            steps.append(&mut defaults);
        }
    }
    for (_, mut kind_steps) in deletes {
        steps.append(&mut kind_steps);
    }
    Plan { steps, in_sync }
}

#[cfg(test)]
mod tests;
