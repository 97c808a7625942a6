//! The `service-intentions` entry (reference §4.3) for the service as destination.
//!
//! Sources come from `allowFrom`, one per calling service, merged like this:
//!
//! - only L4 rules (no methods or paths): `Action`; if the rules disagree, `deny` wins.
//! - L7 rules: `Permissions`, one per rule in spec order (Consul evaluates them top to
//!   bottom, first match wins), then a catch-all permission `{"Action": "deny", "HTTP":
//!   {"PathPrefix": "/"}}`. Consul applies the cluster's default policy to requests no
//!   permission matches (not the `*` source's intention), so without it a source with
//!   only `allow` permissions would reach everything else under a default-allow cluster.
//! - L4 and L7 rules for one source (validation rejects this as `mixed-l4-l7`, but the
//!   renderer still gives it a meaning): Consul forbids `Action` next to `Permissions`,
//!   so the L4 rule becomes the catch-all instead, with its own action: the specific rules
//!   decide first and the L4 rule covers the rest ("allow web, but deny its DELETEs").
//!
//! Sources keep their first appearance order, exact names before `*` (the order Consul's
//! stable precedence sort gives them back in). When the spec has edge routes, the edge
//! gateway's service (the gateway name) is allowed unless `allowFrom` already mentions
//! it, since the gateway calls the service through the mesh. Unless `allowFrom` has its
//! own `*` rule, a final `{"Name": "*", "Action": "deny"}` makes "anything not listed is
//! denied" hold whatever the cluster's default intention policy is.

use serde_json::{Map, Value, json};
use steward_spec::{AllowFrom, IntentionAction, ServiceSpec};

use crate::context::RenderContext;
use crate::desired::ConfigEntry;
use crate::names::{self, SpecKey};

/// Kind string of the entry.
pub const KIND: &str = "service-intentions";
/// The wildcard source name.
pub const WILDCARD: &str = "*";

/// The entry for `spec` as destination.
pub(crate) fn render_intentions(
    spec: &ServiceSpec,
    ctx: &RenderContext,
    meta: &Map<String, Value>,
) -> ConfigEntry {
    let mut groups: Vec<(String, Vec<&AllowFrom>)> = Vec::new();
    for rule in &spec.spec.allow_from {
        match groups.iter_mut().find(|(name, _)| *name == rule.service) {
            Some((_, rules)) => rules.push(rule),
            None => groups.push((rule.service.clone(), vec![rule])),
        }
    }
    let mut sources: Vec<(String, Value)> = groups
        .iter()
        .map(|(name, rules)| (name.clone(), source(name, rules)))
        .collect();
    let gateway = &ctx.edge_gateway.name;
    if !spec.spec.edge.is_empty() && !groups.iter().any(|(name, _)| name == gateway) {
        sources.push((gateway.clone(), json!({"Name": gateway, "Action": "allow"})));
    }
    // Exact names first, `*` last; stable, like Consul's precedence sort.
    sources.sort_by_key(|(name, _)| name == WILDCARD);
    if !sources.iter().any(|(name, _)| name == WILDCARD) {
        sources.push((
            WILDCARD.to_owned(),
            json!({"Name": WILDCARD, "Action": "deny"}),
        ));
    }
    let name = names::service_intentions(&SpecKey::of(spec));
    let sources: Vec<Value> = sources.into_iter().map(|(_, v)| v).collect();
    let body = json!({
        "Kind": KIND,
        "Name": name,
        "Meta": meta,
        "Sources": sources,
    });
    ConfigEntry {
        kind: KIND.to_owned(),
        name,
        body,
    }
}

fn source(name: &str, rules: &[&AllowFrom]) -> Value {
    let l4: Vec<IntentionAction> = rules
        .iter()
        .filter(|r| !r.is_l7())
        .map(|r| r.action)
        .collect();
    let l4_action = (!l4.is_empty()).then(|| {
        if l4.contains(&IntentionAction::Deny) {
            IntentionAction::Deny
        } else {
            IntentionAction::Allow
        }
    });
    let mut permissions: Vec<Value> = rules
        .iter()
        .filter(|r| r.is_l7())
        .map(|r| permission(r))
        .collect();
    if permissions.is_empty() {
        let action = l4_action.unwrap_or(IntentionAction::Allow);
        return json!({"Name": name, "Action": action.as_str()});
    }
    let rest = l4_action.unwrap_or(IntentionAction::Deny);
    permissions.push(json!({"Action": rest.as_str(), "HTTP": {"PathPrefix": "/"}}));
    json!({"Name": name, "Permissions": permissions})
}

fn permission(rule: &AllowFrom) -> Value {
    let mut http = Map::new();
    if let Some(exact) = &rule.path_exact {
        http.insert("PathExact".into(), Value::from(exact.as_str()));
    } else if let Some(prefix) = &rule.path_prefix {
        http.insert("PathPrefix".into(), Value::from(prefix.as_str()));
    }
    if !rule.methods.is_empty() {
        let methods: Vec<&str> = rule.methods.iter().map(|m| m.as_str()).collect();
        http.insert("Methods".into(), json!(methods));
    }
    json!({"Action": rule.action.as_str(), "HTTP": http})
}
