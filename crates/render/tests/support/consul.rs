//! What Consul returns for a written config entry (reference §4, §8.8, §9).
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};

use super::{SEC, default, obj_mut, sort_keys};

/// Go's `time.Duration.String()` for a whole number of nanoseconds (`1m0s`, `1.5s`,
/// `500ms`), the way Consul writes durations back.
pub fn go_duration(nanos: u64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let frac = |value: u64, unit: u64| -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", frac(nanos, 1_000));
    }
    if nanos < SEC {
        return format!("{}ms", frac(nanos, 1_000_000));
    }
    let hours = nanos / (3_600 * SEC);
    let minutes = (nanos / (60 * SEC)) % 60;
    let seconds = frac(nanos % (60 * SEC), SEC);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// What `GET /v1/config/<kind>/<name>` returns after `PUT /v1/config` of `entry`
/// (reference §4, §8.8, §9): indexes added, empty `Meta` dropped, service-defaults'
/// empty `TransparentProxy`/`MeshGateway`/`Expose`, intention sources with `Precedence`
/// (9 exact, 8 `*`) and `Type: consul` re-sorted by precedence, http-route zero-valued
/// match and filter fields, durations in Go's format, and a controller-written `Status`.
pub fn normalise_like_consul(entry: &Value) -> Value {
    let mut entry = entry.clone();
    let e = obj_mut(&mut entry);
    if e.get("Meta")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        e.remove("Meta");
    }
    if let Some(meta) = e.get("Meta").cloned() {
        e.insert("Meta".into(), sort_keys(&meta));
    }
    match e["Kind"].as_str().unwrap() {
        "service-defaults" => {
            for k in ["TransparentProxy", "MeshGateway", "Expose"] {
                default(e, k, json!({}));
            }
        }
        "service-intentions" => {
            let sources = e.get_mut("Sources").and_then(Value::as_array_mut).unwrap();
            for source in sources.iter_mut() {
                let s = obj_mut(source);
                let precedence = if s["Name"] == "*" { 8 } else { 9 };
                s.insert("Precedence".into(), json!(precedence));
                s.insert("Type".into(), json!("consul"));
            }
            sources.sort_by_key(|s| std::cmp::Reverse(s["Precedence"].as_u64().unwrap()));
        }
        "http-route" => {
            for parent in e
                .get_mut("Parents")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                default(obj_mut(parent), "Namespace", json!(""));
                default(obj_mut(parent), "Partition", json!(""));
            }
            for rule in e
                .get_mut("Rules")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let r = obj_mut(rule);
                for m in r
                    .get_mut("Matches")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let m = obj_mut(m);
                    default(m, "Headers", json!([]));
                    default(m, "Method", json!(""));
                    default(m, "Query", json!([]));
                }
                let filters = r.entry("Filters").or_insert_with(|| json!({}));
                let f = obj_mut(filters);
                default(f, "Headers", json!([]));
                for k in ["URLRewrite", "RetryFilter", "TimeoutFilter", "JWT"] {
                    default(f, k, Value::Null);
                }
                if let Some(timeout) = f.get_mut("TimeoutFilter").and_then(Value::as_object_mut) {
                    for v in timeout.values_mut() {
                        let d = steward_spec::Duration::parse(v.as_str().unwrap()).unwrap();
                        *v = json!(go_duration(d.as_nanos()));
                    }
                }
                default(r, "ResponseFilters", json!({"Headers": []}));
                for s in r
                    .get_mut("Services")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let s = obj_mut(s);
                    default(s, "Filters", json!({"Headers": [], "URLRewrite": null}));
                    default(s, "Namespace", json!(""));
                    default(s, "Partition", json!(""));
                }
            }
            e.insert(
                "Status".into(),
                json!({"Conditions": [
                    {"Type": "Accepted", "Status": "True", "Reason": "Accepted", "Message": "route is valid",
                     "Resource": {"Kind": "", "Name": "", "SectionName": ""}, "LastTransitionTime": "2026-11-26T08:00:00Z"},
                    {"Type": "Bound", "Status": "True", "Reason": "Bound", "Message": "successfully bound route",
                     "Resource": {"Kind": "api-gateway", "Name": "edge", "SectionName": "http"}, "LastTransitionTime": "2026-11-26T08:00:00Z"}
                ]}),
            );
        }
        other => panic!("unexpected kind {other}"),
    }
    e.insert("CreateIndex".into(), json!(35));
    e.insert("ModifyIndex".into(), json!(35));
    entry
}
