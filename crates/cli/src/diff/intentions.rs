//! Intention changes in words: the `Sources` of the live `service-intentions` entry
//! against the desired ones, as "opens storefront/web-api → trading/order-api (GET
//! /orders)", "closes ...".
//!
//! Each source is reduced to its rules, in order: an L4 source is one rule on `all
//! traffic`; an L7 source one rule per permission, except the final catch-all deny
//! Steward appends (`PathPrefix /` with no method: "everything else is denied", which
//! says nothing new). Rules allowed on one side and not the other open or close; explicit
//! denies are added or removed; the same rules in another order are reordered (Consul
//! takes the first match). Denies of the `*` source are left out: Steward adds one to
//! every entry, and "anything not listed is denied" holds before and after.

use serde_json::Value;

use super::model::{IntentionChange, IntentionVerb};

/// The wildcard source.
const WILDCARD: &str = "*";

/// One rule of a source: allow or deny, and the requests it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    requests: String,
}

/// `GET, POST /orders`, `any method /orders`, `POST /settle (exact path)`, `all
/// requests`.
fn requests_of(http: &Value) -> String {
    let methods: Vec<&str> = http
        .get("Methods")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let text = |k: &str| {
        http.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let path = if let Some(exact) = text("PathExact") {
        Some(format!("{exact} (exact path)"))
    } else if let Some(regex) = text("PathRegex") {
        Some(format!("path matching {regex}"))
    } else {
        text("PathPrefix").filter(|p| *p != "/").map(str::to_owned)
    };
    let headers = http
        .get("Header")
        .and_then(Value::as_array)
        .is_some_and(|h| !h.is_empty());
    let mut out = match (methods.is_empty(), path) {
        (true, None) => "all requests".to_owned(),
        (true, Some(p)) => format!("any method {p}"),
        (false, None) => methods.join(", "),
        (false, Some(p)) => format!("{} {p}", methods.join(", ")),
    };
    if headers {
        out.push_str(", with header conditions");
    }
    out
}

fn rules_of(source: &Value) -> Vec<Rule> {
    let Some(permissions) = source
        .get("Permissions")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    else {
        let allow = source.get("Action").and_then(Value::as_str) != Some("deny");
        return vec![Rule {
            allow,
            requests: "all traffic".to_owned(),
        }];
    };
    let mut rules: Vec<Rule> = permissions
        .iter()
        .map(|p| Rule {
            allow: p.get("Action").and_then(Value::as_str) != Some("deny"),
            requests: requests_of(p.get("HTTP").unwrap_or(&Value::Null)),
        })
        .collect();
    if rules
        .last()
        .is_some_and(|r| !r.allow && r.requests == "all requests")
    {
        rules.pop();
    }
    rules
}

/// The sources of an entry, in order, by name.
fn sources_of(entry: Option<&Value>) -> Vec<(String, Vec<Rule>)> {
    entry
        .and_then(|e| e.get("Sources"))
        .and_then(Value::as_array)
        .map(|sources| {
            sources
                .iter()
                .filter_map(|s| {
                    let name = s.get("Name")?.as_str()?.to_owned();
                    Some((name, rules_of(s)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The changes from `live` to `desired` (each a `service-intentions` entry, `None` when
/// absent), for the destination shown as `destination`. `show` turns a Consul service
/// name into what to print (its spec key when known).
pub fn intention_changes(
    live: Option<&Value>,
    desired: Option<&Value>,
    destination: &str,
    show: &dyn Fn(&str) -> String,
) -> Vec<IntentionChange> {
    let live = sources_of(live);
    let desired = sources_of(desired);
    let mut names: Vec<&str> = desired.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in &live {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let find = |list: &[(String, Vec<Rule>)], name: &str| -> Vec<Rule> {
        list.iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for name in names {
        let (before, after) = (find(&live, name), find(&desired, name));
        let source = if name == WILDCARD {
            "any service".to_owned()
        } else {
            show(name)
        };
        let mut push = |verb, requests: &str| {
            out.push(IntentionChange {
                verb,
                source: source.clone(),
                destination: destination.to_owned(),
                requests: requests.to_owned(),
            });
        };
        let mut changed = false;
        for rule in after.iter().filter(|r| !before.contains(r)) {
            changed = true;
            match (rule.allow, name == WILDCARD) {
                (true, _) => push(IntentionVerb::Opens, &rule.requests),
                (false, false) => push(IntentionVerb::Denies, &rule.requests),
                (false, true) => {}
            }
        }
        for rule in before.iter().filter(|r| !after.contains(r)) {
            changed = true;
            match (rule.allow, name == WILDCARD) {
                (true, _) => push(IntentionVerb::Closes, &rule.requests),
                (false, false) => push(IntentionVerb::StopsDenying, &rule.requests),
                (false, true) => {}
            }
        }
        if !changed && before != after {
            let order: Vec<String> = after
                .iter()
                .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.requests))
                .collect();
            push(IntentionVerb::Reorders, &order.join(", then "));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn show(name: &str) -> String {
        match name {
            "web-api" => "storefront/web-api".to_owned(),
            other => other.to_owned(),
        }
    }

    fn words(live: Option<&Value>, desired: Option<&Value>) -> Vec<String> {
        intention_changes(live, desired, "trading/order-api", &show)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn entry(sources: Value) -> Value {
        json!({"Kind": "service-intentions", "Name": "order-api", "Sources": sources})
    }

    const CATCH_ALL: &str = r#"{"Action": "deny", "HTTP": {"PathPrefix": "/"}}"#;

    fn l7(name: &str, perms: Vec<Value>) -> Value {
        let mut p = perms;
        p.push(serde_json::from_str(CATCH_ALL).unwrap());
        json!({"Name": name, "Permissions": p})
    }

    #[test]
    fn a_new_entry_opens_each_allowed_rule_and_says_nothing_of_the_default_deny() {
        let desired = entry(json!([
            l7("web-api", vec![json!({"Action": "allow", "HTTP": {"PathPrefix": "/orders", "Methods": ["GET", "POST"]}})]),
            {"Name": "edge", "Action": "allow"},
            {"Name": "*", "Action": "deny"},
        ]));
        assert_eq!(
            words(None, Some(&desired)),
            [
                "opens storefront/web-api → trading/order-api (GET, POST /orders)",
                "opens edge → trading/order-api (all traffic)",
            ]
        );
    }

    #[test]
    fn removed_and_narrowed_rules_close_and_new_ones_open() {
        let live = entry(json!([
            l7("web-api", vec![json!({"Action": "allow", "HTTP": {"PathPrefix": "/orders", "Methods": ["GET"]}})]),
            {"Name": "batch", "Action": "allow"},
            {"Name": "*", "Action": "deny"},
        ]));
        let desired = entry(json!([
            l7("web-api", vec![json!({"Action": "allow", "HTTP": {"PathExact": "/orders", "Methods": ["GET"]}})]),
            {"Name": "*", "Action": "deny"},
        ]));
        assert_eq!(
            words(Some(&live), Some(&desired)),
            [
                "opens storefront/web-api → trading/order-api (GET /orders (exact path))",
                "closes storefront/web-api → trading/order-api (GET /orders)",
                "closes batch → trading/order-api (all traffic)",
            ]
        );
    }

    #[test]
    fn explicit_denies_and_order_changes_are_named() {
        let allow = json!({"Action": "allow", "HTTP": {"PathPrefix": "/"}, "Methods": null});
        let deny_delete = json!({"Action": "deny", "HTTP": {"Methods": ["DELETE"]}});
        let live = entry(json!([l7(
            "web-api",
            vec![allow.clone(), deny_delete.clone()]
        )]));
        let desired = entry(json!([l7(
            "web-api",
            vec![deny_delete.clone(), allow.clone()]
        )]));
        assert_eq!(
            words(Some(&live), Some(&desired)),
            [
                "reorders the rules of storefront/web-api → trading/order-api (deny DELETE, then allow all requests)"
            ]
        );
        let desired = entry(json!([{"Name": "web-api", "Action": "deny"}]));
        let live = entry(json!([l7("web-api", vec![deny_delete])]));
        assert_eq!(
            words(Some(&live), Some(&desired)),
            [
                "denies storefront/web-api → trading/order-api (all traffic)",
                "stops denying storefront/web-api → trading/order-api (DELETE)",
            ]
        );
    }

    #[test]
    fn a_wildcard_allow_is_any_service_and_identical_entries_say_nothing() {
        let open = entry(json!([{"Name": "*", "Action": "allow"}]));
        let closed = entry(json!([{"Name": "*", "Action": "deny"}]));
        assert_eq!(
            words(Some(&closed), Some(&open)),
            ["opens any service → trading/order-api (all traffic)"]
        );
        assert_eq!(
            words(Some(&open), None),
            ["closes any service → trading/order-api (all traffic)"]
        );
        assert!(words(Some(&open), Some(&open)).is_empty());
    }
}
