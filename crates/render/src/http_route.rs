//! `http-route` entries (reference §4.6) attaching the service to the edge gateway.
//!
//! An entry applies its `Hostnames` to all of its rules, so routes are grouped by host
//! (first appearance order) and each group becomes one entry: named `<ns>-<name>` when
//! there is one group, and [`names::http_route_for_host`] when there are several. Each
//! route is one rule; rules are ordered most specific first (exact paths, then prefixes
//! from longest to shortest, spec order among equals) so a `/` prefix never shadows
//! `/api/` whatever order the gateway evaluates them in:
//!
//! - `Matches`: `[{"Path": {"Match": "prefix"|"exact", "Value": ...}}]` (`prefix` `/` when
//!   the route gives no path);
//! - `Filters` (omitted when empty): `URLRewrite {Path}` for `rewrite`,
//!   `TimeoutFilter {RequestTimeout}` for `timeout` (a Go duration string),
//!   `RetryFilter` for `retries` (`{NumRetries, RetryOn: ["5xx"], RetryOnConnectFailure:
//!   true}`; `retries: 0` sends just `{NumRetries: 0}`);
//! - `Services`: `[{"Name": <service>, "Weight": 1}]`.

use serde_json::{Map, Value, json};
use steward_spec::{EdgeRoute, PathMatch, ServiceSpec};

use crate::context::RenderContext;
use crate::desired::ConfigEntry;
use crate::names::{self, SpecKey};

/// Kind string of the entry.
pub const KIND: &str = "http-route";

/// One entry per host group; empty without routes.
pub(crate) fn render_http_routes(
    spec: &ServiceSpec,
    ctx: &RenderContext,
    meta: &Map<String, Value>,
) -> Vec<ConfigEntry> {
    let key = SpecKey::of(spec);
    let mut groups: Vec<(&str, Vec<&EdgeRoute>)> = Vec::new();
    for route in &spec.spec.edge.routes {
        match groups.iter_mut().find(|(host, _)| *host == route.host) {
            Some((_, routes)) => routes.push(route),
            None => groups.push((route.host.as_str(), vec![route])),
        }
    }
    let single = groups.len() == 1;
    let service = names::consul_service(&key);
    let gw = &ctx.edge_gateway;
    let mut parent = Map::new();
    parent.insert("Kind".into(), Value::from(gw.kind.as_str()));
    parent.insert("Name".into(), Value::from(gw.name.as_str()));
    if let Some(section) = &gw.section_name {
        parent.insert("SectionName".into(), Value::from(section.as_str()));
    }
    groups
        .into_iter()
        .map(|(host, routes)| {
            let name = if single {
                names::http_route(&key)
            } else {
                names::http_route_for_host(&key, host)
            };
            let mut routes = routes;
            routes.sort_by_key(|r| specificity(r));
            let rules: Vec<Value> = routes.iter().map(|r| rule(r, &service)).collect();
            let body = json!({
                "Kind": KIND,
                "Name": name,
                "Meta": meta,
                "Parents": [parent],
                "Hostnames": [host],
                "Rules": rules,
            });
            ConfigEntry {
                kind: KIND.to_owned(),
                name,
                body,
            }
        })
        .collect()
}

/// Sort key: exact matches first, then longer prefixes first.
fn specificity(route: &EdgeRoute) -> (u8, std::cmp::Reverse<usize>) {
    match route.path_match() {
        PathMatch::Exact(p) => (0, std::cmp::Reverse(p.len())),
        PathMatch::Prefix(p) => (1, std::cmp::Reverse(p.len())),
    }
}

fn rule(route: &EdgeRoute, service: &str) -> Value {
    let path = match route.path_match() {
        PathMatch::Prefix(p) => json!({"Match": "prefix", "Value": p}),
        PathMatch::Exact(p) => json!({"Match": "exact", "Value": p}),
    };
    let mut filters = Map::new();
    if let Some(rewrite) = &route.rewrite {
        filters.insert("URLRewrite".into(), json!({"Path": rewrite}));
    }
    if let Some(timeout) = &route.timeout {
        filters.insert(
            "TimeoutFilter".into(),
            json!({"RequestTimeout": timeout.to_string()}),
        );
    }
    if let Some(retries) = route.retries {
        let retry = if retries == 0 {
            json!({"NumRetries": 0})
        } else {
            json!({"NumRetries": retries, "RetryOn": ["5xx"], "RetryOnConnectFailure": true})
        };
        filters.insert("RetryFilter".into(), retry);
    }
    let mut rule = Map::new();
    rule.insert("Matches".into(), json!([{"Path": path}]));
    if !filters.is_empty() {
        rule.insert("Filters".into(), Value::Object(filters));
    }
    rule.insert("Services".into(), json!([{"Name": service, "Weight": 1}]));
    Value::Object(rule)
}
