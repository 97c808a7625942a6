//! `steward status`: status documents read straight from Consul KV (no operator needed).

use std::collections::BTreeMap;

use anyhow::Context as _;
use jiff::Timestamp;
use serde_json::Value;
use steward_hashi::consul::KvPair;
use steward_hashi::{ConsulClient, QueryOptions};

use crate::args::{StatusArgs, StatusOutput};
use crate::exit::{Exit, fail};
use crate::push::plan::status_prefix;
use crate::style;
use crate::table::table;

/// Phases after which the operator will not change the status without a new
/// generation or a change in the cluster (what `push --wait` waits for).
pub const SETTLED_PHASES: [&str; 5] = ["Synced", "Degraded", "Invalid", "Conflict", "Blocked"];

/// The fields of a status document the CLI shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// `namespace/name` (or `_gc`).
    pub key: String,
    /// `phase`, or `Unknown`.
    pub phase: String,
    /// `observedGeneration`.
    pub observed_generation: Option<u64>,
    /// The most telling message (see [`view`]).
    pub message: String,
    /// Latest time found in the document (condition transitions, events).
    pub updated: Option<Timestamp>,
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn time_of(v: &Value, field: &str) -> Option<Timestamp> {
    v.get(field)?.as_str()?.parse().ok()
}

/// Whether a condition reports a problem: `Degraded` True, any other type not True.
fn is_bad(condition: &Value) -> bool {
    let status = str_of(condition, "status");
    if str_of(condition, "type") == "Degraded" {
        status == "True"
    } else {
        status != "True"
    }
}

/// Reads a status document: phase, observed generation, a message (the document's
/// `message`, else the first problem condition's, else the first diagnostic's, else the
/// latest event's) and the latest timestamp in it.
pub fn view(key: &str, doc: &Value) -> StatusView {
    let conditions = doc
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let events = doc
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let diagnostics = doc
        .get("diagnostics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let message = Some(str_of(doc, "message"))
        .filter(|m| !m.is_empty())
        .or_else(|| {
            conditions
                .iter()
                .filter(|c| is_bad(c))
                .map(|c| str_of(c, "message"))
                .find(|m| !m.is_empty())
        })
        .map(str::to_owned)
        .or_else(|| {
            diagnostics.first().map(|d| {
                let line = d.get("line").and_then(Value::as_u64).unwrap_or(0);
                let column = d.get("column").and_then(Value::as_u64).unwrap_or(0);
                format!("{line}:{column}: {}", str_of(d, "message"))
            })
        })
        .or_else(|| events.last().map(|e| str_of(e, "message").to_owned()))
        .unwrap_or_default();
    let updated = conditions
        .iter()
        .filter_map(|c| time_of(c, "lastTransitionTime"))
        .chain(events.iter().filter_map(|e| time_of(e, "time")))
        .chain(time_of(doc, "updatedAt"))
        .max();
    StatusView {
        key: key.to_owned(),
        phase: Some(str_of(doc, "phase"))
            .filter(|p| !p.is_empty())
            .unwrap_or("Unknown")
            .to_owned(),
        observed_generation: doc.get("observedGeneration").and_then(Value::as_u64),
        message,
        updated,
    }
}

/// `5s`, `3m`, `2h`, `4d` (kubectl style); `-` when unknown.
pub fn age(now: Timestamp, then: Option<Timestamp>) -> String {
    let Some(then) = then else {
        return "-".to_owned();
    };
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The spec key of a status KV key (`<prefix>/status/<ns>/<name>` → `<ns>/<name>`).
pub fn key_of<'a>(status_prefix: &str, kv_key: &'a str) -> Option<&'a str> {
    kv_key
        .strip_prefix(status_prefix)
        .filter(|k| !k.is_empty() && !k.ends_with('/'))
}

/// Decodes the status pairs under `status_prefix`, by spec key. Undecodable documents
/// are kept as a string value so they still show up.
pub fn decode(status_prefix: &str, pairs: &[KvPair]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .filter_map(|p| {
            let key = key_of(status_prefix, &p.key)?;
            let doc = serde_json::from_slice(&p.value).unwrap_or_else(|_| {
                serde_json::json!({
                    "phase": "Unknown",
                    "message": format!("status document is not JSON: {}", String::from_utf8_lossy(&p.value)),
                })
            });
            Some((key.to_owned(), doc))
        })
        .collect()
}

/// The table of every status.
pub fn list_table(now: Timestamp, docs: &BTreeMap<String, Value>, colours: bool) -> String {
    let rows: Vec<Vec<String>> = docs
        .iter()
        .map(|(key, doc)| {
            let v = view(key, doc);
            vec![
                v.key,
                style::word(&v.phase, colours),
                v.observed_generation
                    .map_or_else(|| "-".into(), |g| g.to_string()),
                age(now, v.updated),
                v.message,
            ]
        })
        .collect();
    table(&["KEY", "PHASE", "GENERATION", "AGE", "MESSAGE"], &rows)
}

fn array<'a>(doc: &'a Value, field: &str) -> &'a [Value] {
    doc.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The details of one status: conditions, objects, diagnostics, recent events.
pub fn detail(now: Timestamp, key: &str, doc: &Value, colours: bool) -> String {
    let v = view(key, doc);
    let mut out = format!(
        "Key:                 {}\nPhase:               {}\nObserved generation: {}\n",
        v.key,
        style::word(&v.phase, colours),
        v.observed_generation
            .map_or_else(|| "-".into(), |g| g.to_string()),
    );
    if !v.message.is_empty() {
        out.push_str(&format!("Message:             {}\n", v.message));
    }
    let section = |title: &str, body: String| {
        let indented: String = body.lines().map(|l| format!("  {l}\n")).collect();
        format!("\n{title}:\n{indented}")
    };
    let conditions: Vec<Vec<String>> = array(doc, "conditions")
        .iter()
        .map(|c| {
            vec![
                str_of(c, "type").to_owned(),
                str_of(c, "status").to_owned(),
                str_of(c, "reason").to_owned(),
                age(now, time_of(c, "lastTransitionTime")),
                str_of(c, "message").to_owned(),
            ]
        })
        .collect();
    if !conditions.is_empty() {
        out.push_str(&section(
            "Conditions",
            table(&["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], &conditions),
        ));
    }
    let objects: Vec<Vec<String>> = array(doc, "objects")
        .iter()
        .map(|o| {
            vec![
                str_of(o, "kind").to_owned(),
                str_of(o, "name").to_owned(),
                style::word(str_of(o, "state"), colours),
                str_of(o, "message").to_owned(),
            ]
        })
        .collect();
    if !objects.is_empty() {
        out.push_str(&section(
            "Objects",
            table(&["KIND", "NAME", "STATE", "MESSAGE"], &objects),
        ));
    }
    let diagnostics: Vec<String> = array(doc, "diagnostics")
        .iter()
        .map(|d| {
            let n = |f: &str| d.get(f).and_then(Value::as_u64).unwrap_or(0);
            let path = str_of(d, "path");
            let file = match str_of(d, "file") {
                "" => String::new(),
                f => format!("{f}:"),
            };
            format!(
                "{file}{}:{}: {}[{}]: {}{}",
                n("line"),
                n("column"),
                str_of(d, "severity"),
                str_of(d, "code"),
                str_of(d, "message"),
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" (at {path})")
                }
            )
        })
        .collect();
    if !diagnostics.is_empty() {
        out.push_str(&section("Diagnostics", diagnostics.join("\n")));
    }
    let events: Vec<Vec<String>> = array(doc, "events")
        .iter()
        .map(|e| {
            vec![
                age(now, time_of(e, "time")),
                str_of(e, "type").to_owned(),
                str_of(e, "reason").to_owned(),
                str_of(e, "message").to_owned(),
            ]
        })
        .collect();
    if !events.is_empty() {
        out.push_str(&section(
            "Events (oldest first)",
            table(&["AGE", "TYPE", "REASON", "MESSAGE"], &events),
        ));
    }
    out
}

/// Runs `steward status`.
///
/// # Errors
/// Consul unreachable or misconfigured (exit 2); an unknown key (exit 1).
pub async fn run(args: &StatusArgs) -> anyhow::Result<Exit> {
    let consul = ConsulClient::from_env().context("Consul client configuration (CONSUL_* env)")?;
    let prefix = status_prefix(&args.prefix);
    let pairs = consul
        .kv_list(&prefix, &QueryOptions::new())
        .await
        .with_context(|| format!("cannot read {prefix} from Consul"))?
        .value;
    let docs = decode(&prefix, &pairs);
    let colours = style::stdout_colours();
    let now = Timestamp::now();
    match &args.key {
        None => match args.output {
            StatusOutput::Json => {
                let list: Vec<Value> = docs
                    .iter()
                    .map(|(k, d)| serde_json::json!({"key": k, "status": d}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            StatusOutput::Table if docs.is_empty() => {
                eprintln!("no status documents under {prefix} (is the operator running?)");
            }
            StatusOutput::Table => print!("{}", list_table(now, &docs, colours)),
        },
        Some(key) => {
            let Some(doc) = docs.get(key.as_str()) else {
                return Err(fail(
                    Exit::Invalid,
                    anyhow::anyhow!("no status for {key} under {prefix}"),
                ));
            };
            match args.output {
                StatusOutput::Json => println!("{}", serde_json::to_string_pretty(doc)?),
                StatusOutput::Table => print!("{}", detail(now, key, doc, colours)),
            }
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn doc() -> Value {
        json!({
            "observedGeneration": 12,
            "phase": "Degraded",
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Valid", "message": "ok",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Degraded", "status": "True", "reason": "DeploymentFailed",
                 "message": "deployment failed: 0/3 healthy", "lastTransitionTime": "2026-01-01T00:05:00Z"}
            ],
            "objects": [{"kind": "nomad-job", "name": "web", "state": "Updated", "message": ""}],
            "events": [{"time": "2026-01-01T00:04:00Z", "type": "Normal", "reason": "JobRegistered", "message": "registered"}]
        })
    }

    #[test]
    fn the_view_picks_the_problem_message_and_latest_time() {
        let v = view("shop/web", &doc());
        assert_eq!(v.phase, "Degraded");
        assert_eq!(v.observed_generation, Some(12));
        assert_eq!(v.message, "deployment failed: 0/3 healthy");
        assert_eq!(v.updated, Some(ts("2026-01-01T00:05:00Z")));
        let empty = view("x/y", &json!({}));
        assert_eq!(empty.phase, "Unknown");
        assert_eq!(empty.message, "");
    }

    #[test]
    fn invalid_specs_show_their_first_diagnostic() {
        let d = json!({"phase": "Invalid", "observedGeneration": 3, "diagnostics": [
            {"file": "steward/specs/a/b", "line": 7, "column": 3, "message": "unknown field", "severity": "error", "code": "unknown-field", "path": "spec.x"}
        ]});
        assert_eq!(view("a/b", &d).message, "7:3: unknown field");
        let without_file = json!({"diagnostics": [{"line": 2, "column": 1, "message": "m", "severity": "error", "code": "c", "path": ""}]});
        let text = detail(ts("2026-01-01T00:00:00Z"), "a/b", &without_file, false);
        assert!(text.contains("  2:1: error[c]: m\n"), "{text}");
        let text = detail(ts("2026-01-01T00:00:00Z"), "a/b", &d, false);
        assert!(
            text.contains("steward/specs/a/b:7:3: error[unknown-field]: unknown field (at spec.x)"),
            "{text}"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = ts("2026-01-02T00:00:00Z");
        assert_eq!(age(now, None), "-");
        assert_eq!(age(now, Some(ts("2026-01-01T23:59:30Z"))), "30s");
        assert_eq!(age(now, Some(ts("2026-01-01T23:00:00Z"))), "60m");
        assert_eq!(age(now, Some(ts("2026-01-01T00:00:00Z"))), "24h");
        assert_eq!(age(now, Some(ts("2025-12-01T00:00:00Z"))), "32d");
    }

    #[test]
    fn status_keys_map_back_to_spec_keys() {
        assert_eq!(key_of("steward/status/", "steward/status/a/b"), Some("a/b"));
        assert_eq!(key_of("steward/status/", "steward/status/_gc"), Some("_gc"));
        assert_eq!(key_of("steward/status/", "steward/status/"), None);
        assert_eq!(key_of("steward/status/", "steward/specs/a/b"), None);
    }

    #[test]
    fn the_list_and_the_detail_show_every_part() {
        let now = ts("2026-01-01T00:10:00Z");
        let docs: BTreeMap<String, Value> = [("shop/web".to_owned(), doc())].into();
        let t = list_table(now, &docs, false);
        assert_eq!(
            t,
            "KEY       PHASE     GENERATION  AGE  MESSAGE\n\
             shop/web  Degraded  12          5m   deployment failed: 0/3 healthy\n"
        );
        let d = detail(now, "shop/web", &doc(), false);
        for part in [
            "Conditions:",
            "DeploymentFailed",
            "Objects:",
            "nomad-job",
            "Events (oldest first):",
            "JobRegistered",
        ] {
            assert!(d.contains(part), "{part} missing in\n{d}");
        }
    }
}
