//! HCL text: the Nomad job as a jobspec (for `steward render --format hcl`) and the Vault
//! policy.
//!
//! The jobspec is translated from the rendered job JSON, so both formats always say the
//! same thing: PascalCase fields become snake_case attributes (`MaxParallel` →
//! `max_parallel`; `CPU` → `cpu`, `MemoryMB` → `memory`, `MemoryMaxMB` → `memory_max`,
//! `PortLabel` → `port`), nanosecond durations become Go duration strings (`"10s"`,
//! `"5m"`), `TaskGroups`/`Tasks`/`DynamicPorts` become labelled `group`/`task`/`port`
//! blocks, `Meta` becomes a `meta = { "k" = "v" }` attribute (its keys contain dots,
//! which an HCL block cannot take), `Env` an `env { K = "v" }` block, and the periodic
//! `Spec` becomes `crons = [...]`. Attributes in a run are aligned on `=` like `nomad fmt`;
//! blocks are separated by a blank line. Strings escape `${` and `%{` so HCL never
//! interpolates what the JSON carries literally.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use steward_spec::Duration;

use crate::names::{self, SpecKey};
use crate::policy::PolicyPath;

/// One item of an HCL body.
enum Node {
    /// `key = value` (both already written as HCL).
    Attr(String, String),
    /// `ident "label" { body }`.
    Block(String, Vec<String>, Vec<Node>),
}

/// The policy text: the ownership marker line, then one `path` block per path.
#[must_use]
pub fn policy_hcl(key: &SpecKey, paths: &[PolicyPath]) -> String {
    let mut out = names::policy_marker(key);
    out.push('\n');
    let blocks: Vec<Node> = paths
        .iter()
        .map(|p| {
            let caps: Vec<Value> = p
                .capabilities
                .iter()
                .map(|c| Value::from(c.as_str()))
                .collect();
            Node::Block(
                "path".into(),
                vec![p.path.clone()],
                vec![Node::Attr(
                    "capabilities".into(),
                    inline_value(&Value::Array(caps)),
                )],
            )
        })
        .collect();
    write_body(&mut out, &blocks, 0);
    out
}

/// The jobspec for a rendered `Job` object (see the module docs for the mapping).
#[must_use]
pub fn job_hcl(job: &Value) -> String {
    let id = job.get("ID").and_then(Value::as_str).unwrap_or_default();
    let body = match job.as_object() {
        Some(obj) => body_of(obj, &["ID", "Name"]),
        None => Vec::new(),
    };
    let mut out = String::new();
    write_body(
        &mut out,
        &[Node::Block("job".into(), vec![id.to_owned()], body)],
        0,
    );
    out
}

/// Keys holding nanosecond durations.
const DURATION_KEYS: [&str; 5] = [
    "MinHealthyTime",
    "HealthyDeadline",
    "ProgressDeadline",
    "Interval",
    "Timeout",
];

/// The HCL body of a JSON object, leaving out `skip` keys (those used as block labels).
fn body_of(obj: &Map<String, Value>, skip: &[&str]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (key, value) in obj {
        if skip.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "TaskGroups" => labelled_blocks(&mut nodes, "group", "Name", value),
            "Tasks" => labelled_blocks(&mut nodes, "task", "Name", value),
            "DynamicPorts" => labelled_blocks(&mut nodes, "port", "Label", value),
            "Networks" => blocks(&mut nodes, "network", value),
            "Services" => blocks(&mut nodes, "service", value),
            "Checks" => blocks(&mut nodes, "check", value),
            "Upstreams" => blocks(&mut nodes, "upstreams", value),
            "Meta" => nodes.push(Node::Attr("meta".into(), object_value(value, 0))),
            "Env" => nodes.push(env(value)),
            "Config" => nodes.push(Node::Block("config".into(), Vec::new(), raw_body(value))),
            "Spec" => nodes.push(Node::Attr(
                "crons".into(),
                inline_value(&Value::Array(vec![value.clone()])),
            )),
            "SpecType" => {}
            k if DURATION_KEYS.contains(&k) => {
                let text = value.as_u64().map_or_else(|| inline_value(value), duration);
                nodes.push(Node::Attr(attr_name(k), text));
            }
            k => match value {
                Value::Object(inner) => {
                    nodes.push(Node::Block(attr_name(k), Vec::new(), body_of(inner, &[])))
                }
                other => nodes.push(Node::Attr(attr_name(k), inline_value(other))),
            },
        }
    }
    nodes
}

fn labelled_blocks(nodes: &mut Vec<Node>, ident: &str, label_key: &str, value: &Value) {
    for item in value.as_array().into_iter().flatten() {
        if let Some(obj) = item.as_object() {
            let label = obj
                .get(label_key)
                .and_then(Value::as_str)
                .unwrap_or_default();
            nodes.push(Node::Block(
                ident.into(),
                vec![label.to_owned()],
                body_of(obj, &[label_key]),
            ));
        }
    }
}

fn blocks(nodes: &mut Vec<Node>, ident: &str, value: &Value) {
    for item in value.as_array().into_iter().flatten() {
        if let Some(obj) = item.as_object() {
            nodes.push(Node::Block(ident.into(), Vec::new(), body_of(obj, &[])));
        }
    }
}

/// A block whose keys are written as they are (driver `config`).
fn raw_body(value: &Value) -> Vec<Node> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| Node::Attr(key_text(k), inline_value(v)))
        .collect()
}

/// `env { K = "v" }`, or `env = { "K" = "v" }` if a name is not an HCL identifier.
fn env(value: &Value) -> Node {
    let all_idents = value
        .as_object()
        .is_some_and(|m| m.keys().all(|k| is_identifier(k)));
    if all_idents {
        Node::Block("env".into(), Vec::new(), raw_body(value))
    } else {
        Node::Attr("env".into(), object_value(value, 0))
    }
}

/// The HCL attribute name of a JSON field.
fn attr_name(key: &str) -> String {
    match key {
        "CPU" => "cpu".into(),
        "MemoryMB" => "memory".into(),
        "MemoryMaxMB" => "memory_max".into(),
        "PortLabel" => "port".into(),
        other => snake_case(other),
    }
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn duration(nanos: u64) -> String {
    quote(&Duration::from_nanos(nanos).to_string())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An object key: bare when it is an identifier, quoted otherwise.
fn key_text(key: &str) -> String {
    if is_identifier(key) {
        key.to_owned()
    } else {
        quote(key)
    }
}

/// A value on one line (scalars and lists).
fn inline_value(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline_value).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(_) => object_value(value, 0),
    }
}

/// An object expression over several lines, keys aligned, closing brace at `indent`.
fn object_value(value: &Value, indent: usize) -> String {
    let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
        return "{}".into();
    };
    let keys: Vec<String> = map.keys().map(|k| key_text(k)).collect();
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut out = String::from("{\n");
    for (key, v) in keys.iter().zip(map.values()) {
        let pad = width - key.chars().count();
        let _ = writeln!(
            out,
            "{}{key}{} = {}",
            pad_str(indent + 1),
            " ".repeat(pad),
            inline_value(v)
        );
    }
    out.push_str(&pad_str(indent));
    out.push('}');
    out
}

/// A quoted HCL string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pad_str(indent: usize) -> String {
    "  ".repeat(indent)
}

fn write_body(out: &mut String, nodes: &[Node], indent: usize) {
    let mut i = 0;
    while i < nodes.len() {
        if i > 0 {
            out.push('\n');
        }
        match &nodes[i] {
            Node::Attr(..) => {
                // A run of single-line attributes, aligned on `=`; a multi-line
                // attribute stands alone, like a block.
                let multi = |n: &Node| matches!(n, Node::Attr(_, v) if v.contains('\n'));
                let end = if multi(&nodes[i]) {
                    i + 1
                } else {
                    nodes[i..]
                        .iter()
                        .position(|n| matches!(n, Node::Block(..)) || multi(n))
                        .map_or(nodes.len(), |p| i + p)
                };
                let run = &nodes[i..end];
                let width = run
                    .iter()
                    .map(|n| match n {
                        Node::Attr(k, v) if !v.contains('\n') => k.chars().count(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                for node in run {
                    if let Node::Attr(k, v) = node {
                        let pad = if v.contains('\n') {
                            0
                        } else {
                            width - k.chars().count()
                        };
                        let v = reindent(v, indent);
                        let _ = writeln!(out, "{}{k}{} = {v}", pad_str(indent), " ".repeat(pad));
                    }
                }
                i = end;
            }
            Node::Block(ident, labels, body) => {
                out.push_str(&pad_str(indent));
                out.push_str(ident);
                for label in labels {
                    out.push(' ');
                    out.push_str(&quote(label));
                }
                if body.is_empty() {
                    out.push_str(" {}\n");
                } else {
                    out.push_str(" {\n");
                    write_body(out, body, indent + 1);
                    out.push_str(&pad_str(indent));
                    out.push_str("}\n");
                }
                i += 1;
            }
        }
    }
}

/// Shifts the continuation lines of a multi-line value written at indent 0.
fn reindent(value: &str, indent: usize) -> String {
    if indent == 0 || !value.contains('\n') {
        return value.to_owned();
    }
    let pad = pad_str(indent);
    let mut lines = value.lines();
    let mut out = lines.next().unwrap_or_default().to_owned();
    for line in lines {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_against_interpolation() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            quote("${NOMAD_PORT_main} %{x} $5"),
            r#""$${NOMAD_PORT_main} %%{x} $5""#
        );
        assert_eq!(quote("line\nnext"), r#""line\nnext""#);
    }

    #[test]
    fn field_names_become_jobspec_attributes() {
        assert_eq!(attr_name("MaxParallel"), "max_parallel");
        assert_eq!(attr_name("CPU"), "cpu");
        assert_eq!(attr_name("MemoryMaxMB"), "memory_max");
        assert_eq!(attr_name("DestinationName"), "destination_name");
        assert_eq!(attr_name("PortLabel"), "port");
    }

    #[test]
    fn attribute_runs_are_aligned_and_blocks_separated() {
        let nodes = vec![
            Node::Attr("a".into(), "1".into()),
            Node::Attr("long_name".into(), "2".into()),
            Node::Block(
                "b".into(),
                vec!["x".into()],
                vec![Node::Attr("c".into(), "3".into())],
            ),
            Node::Block("e".into(), Vec::new(), Vec::new()),
        ];
        let mut out = String::new();
        write_body(&mut out, &nodes, 0);
        assert_eq!(
            out,
            "a         = 1\nlong_name = 2\n\nb \"x\" {\n  c = 3\n}\n\ne {}\n"
        );
        ::hcl::from_str::<::hcl::Body>(&out).unwrap();
    }
}
