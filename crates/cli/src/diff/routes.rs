//! Edge route changes: the rules of the live `http-route` entries against the desired
//! ones, matched by host and path. A route present on one side only is added or
//! removed (with its settings); one on both sides with other settings is changed (each
//! setting `old → new`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use steward_render::normalise::normalise_config_entry;

use super::model::{RouteChange, RouteVerb};

/// The settings of one route, in the order they are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings(Vec<(&'static str, String)>);

/// One route: host(s) and path, then its settings.
type Routes = Vec<((String, String), Settings)>;

fn duration_text(nanos: &Value) -> String {
    match nanos.as_u64() {
        Some(n) => humantime::format_duration(Duration::from_nanos(n)).to_string(),
        None => nanos.to_string(),
    }
}

fn settings_of(rule: &Value) -> Settings {
    let mut out = Vec::new();
    let services: Vec<String> = rule
        .get("Services")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|svc| {
                    let name = svc.get("Name")?.as_str()?;
                    Some(match svc.get("Weight").and_then(Value::as_u64) {
                        Some(w) if w != 1 => format!("{name} (weight {w})"),
                        _ => name.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(("service", services.join(", ")));
    let filters = rule.get("Filters").unwrap_or(&Value::Null);
    if let Some(path) = filters
        .get("URLRewrite")
        .and_then(|r| r.get("Path"))
        .and_then(Value::as_str)
    {
        out.push(("rewrite", path.to_owned()));
    }
    // Consul fills absent timeouts and retries with zeros, which mean "none": a zero
    // is shown as no setting on both sides.
    let nonzero = |v: &&Value| v.as_u64() != Some(0);
    if let Some(t) = filters
        .get("TimeoutFilter")
        .and_then(|t| t.get("RequestTimeout"))
        .filter(nonzero)
    {
        out.push(("timeout", duration_text(t)));
    }
    if let Some(idle) = filters
        .get("TimeoutFilter")
        .and_then(|t| t.get("IdleTimeout"))
        .filter(nonzero)
    {
        out.push(("idle timeout", duration_text(idle)));
    }
    let retries = filters
        .get("RetryFilter")
        .and_then(|r| r.get("NumRetries"))
        .and_then(Value::as_u64)
        .filter(|n| *n > 0);
    if let Some(n) = retries {
        out.push(("retries", n.to_string()));
    }
    let headers = filters
        .get("Headers")
        .and_then(Value::as_array)
        .is_some_and(|h| !h.is_empty());
    if headers {
        out.push(("header filters", "yes".to_owned()));
    }
    Settings(out)
}

fn path_of(rule: &Value) -> String {
    let path = rule
        .get("Matches")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .and_then(|m| m.get("Path"));
    let kind = path
        .and_then(|p| p.get("Match"))
        .and_then(Value::as_str)
        .unwrap_or("prefix");
    let value = path
        .and_then(|p| p.get("Value"))
        .and_then(Value::as_str)
        .unwrap_or("/");
    match kind {
        "exact" => format!("{value} (exact)"),
        "prefix" => value.to_owned(),
        other => format!("{value} ({other})"),
    }
}

fn routes_of(entries: &[Value]) -> Routes {
    let mut out = Vec::new();
    for entry in entries.iter().map(normalise_config_entry) {
        let hosts: Vec<&str> = entry
            .get("Hostnames")
            .and_then(Value::as_array)
            .map(|h| h.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let host = if hosts.is_empty() {
            "(any host)".to_owned()
        } else {
            hosts.join(", ")
        };
        for rule in entry
            .get("Rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(((host.clone(), path_of(rule)), settings_of(rule)));
        }
    }
    out
}

fn describe(settings: &Settings) -> String {
    settings
        .0
        .iter()
        .map(|(k, v)| match *k {
            "service" => format!("→ {v}"),
            _ => format!("{k} {v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn changed(before: &Settings, after: &Settings) -> String {
    let mut keys: Vec<&'static str> = after.0.iter().map(|(k, _)| *k).collect();
    for (k, _) in &before.0 {
        if !keys.contains(k) {
            keys.push(*k);
        }
    }
    let get = |s: &Settings, k: &str| {
        s.0.iter()
            .find(|(key, _)| *key == k)
            .map_or_else(|| "(none)".to_owned(), |(_, v)| v.clone())
    };
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (get(before, k), get(after, k));
            (a != b).then(|| format!("{k} {b} → {a}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Route changes from the `live` entries to the `desired` ones (both `http-route`
/// bodies as read or rendered): added and changed routes in the desired order, then
/// the removed ones in the live order.
pub fn route_changes(live: &[Value], desired: &[Value]) -> Vec<RouteChange> {
    let live = routes_of(live);
    let desired = routes_of(desired);
    let live_by: BTreeMap<&(String, String), &Settings> =
        live.iter().map(|(k, s)| (k, s)).collect();
    let desired_by: BTreeMap<&(String, String), &Settings> =
        desired.iter().map(|(k, s)| (k, s)).collect();
    let mut out = Vec::new();
    for (key, settings) in &desired {
        let (verb, detail) = match live_by.get(key) {
            None => (RouteVerb::Added, describe(settings)),
            Some(before) if *before != settings => (RouteVerb::Changed, changed(before, settings)),
            Some(_) => continue,
        };
        out.push(RouteChange {
            verb,
            host: key.0.clone(),
            path: key.1.clone(),
            detail,
        });
    }
    for (key, settings) in &live {
        if !desired_by.contains_key(key) {
            out.push(RouteChange {
                verb: RouteVerb::Removed,
                host: key.0.clone(),
                path: key.1.clone(),
                detail: describe(settings),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(host: &str, rules: Value) -> Value {
        json!({"Kind": "http-route", "Name": "storefront-web-api", "Hostnames": [host], "Rules": rules})
    }

    fn rule(kind: &str, path: &str, filters: Value) -> Value {
        json!({"Matches": [{"Path": {"Match": kind, "Value": path}}], "Filters": filters, "Services": [{"Name": "web-api", "Weight": 1}]})
    }

    fn words(live: &[Value], desired: &[Value]) -> Vec<String> {
        route_changes(live, desired)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn routes_are_added_changed_and_removed_by_host_and_path() {
        let live = entry(
            "shop.example.com",
            json!([
                rule(
                    "prefix",
                    "/api/",
                    json!({"URLRewrite": {"Path": "/"}, "TimeoutFilter": {"RequestTimeout": "5s"}, "RetryFilter": {"NumRetries": 2}})
                ),
                rule("prefix", "/old/", json!({})),
                rule(
                    "prefix",
                    "/",
                    json!({"TimeoutFilter": {"RequestTimeout": 15_000_000_000_u64}})
                ),
            ]),
        );
        let desired = entry(
            "shop.example.com",
            json!([
                rule("exact", "/health", json!({})),
                rule(
                    "prefix",
                    "/api/",
                    json!({"TimeoutFilter": {"RequestTimeout": "10s"}, "RetryFilter": {"NumRetries": 2}})
                ),
                rule(
                    "prefix",
                    "/",
                    json!({"TimeoutFilter": {"RequestTimeout": "15s"}})
                ),
            ]),
        );
        assert_eq!(
            words(&[live], &[desired]),
            [
                "+ shop.example.com/health (exact): → web-api",
                "~ shop.example.com/api/: timeout 5s → 10s, rewrite / → (none)",
                "- shop.example.com/old/: → web-api",
            ]
        );
    }

    #[test]
    fn a_new_spec_adds_every_route_and_a_removed_one_removes_them() {
        let desired = entry(
            "api.example.com",
            json!([rule(
                "prefix",
                "/orders",
                json!({"TimeoutFilter": {"RequestTimeout": "5s"}, "RetryFilter": {"NumRetries": 0}})
            )]),
        );
        assert_eq!(
            words(&[], std::slice::from_ref(&desired)),
            ["+ api.example.com/orders: → web-api, timeout 5s"]
        );
        assert_eq!(
            words(&[desired], &[]),
            ["- api.example.com/orders: → web-api, timeout 5s"]
        );
        // What Consul fills in for a route without timeouts or retries is no change.
        let filled = entry(
            "api.example.com",
            json!([rule(
                "prefix",
                "/orders",
                json!({"TimeoutFilter": {"RequestTimeout": "5s", "IdleTimeout": 0}, "RetryFilter": {"NumRetries": 0, "RetryOnConnectFailure": false}})
            )]),
        );
        let plain = entry(
            "api.example.com",
            json!([rule(
                "prefix",
                "/orders",
                json!({"TimeoutFilter": {"RequestTimeout": "5s"}})
            )]),
        );
        assert!(words(&[filled], &[plain]).is_empty());
    }
}
