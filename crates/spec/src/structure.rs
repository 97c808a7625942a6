//! Structural checks: walks the node tree against the generated JSON Schema.
//!
//! Reports unknown fields (with "did you mean"), wrong types, missing required fields,
//! values outside enums and ranges, and malformed durations / day sets / times, all at
//! once. It also builds a JSON value that the typed structs can always be deserialised
//! from: broken optional values are dropped (their default applies), broken required
//! values are replaced by placeholders, and every broken path is remembered so that
//! later semantic findings about it are suppressed as consequences.

use serde_json::{Map, Value};

use crate::days::{DAYS_FORMAT, DaySet, TIME_FORMAT, TimeOfDay};
use crate::duration::{self, Duration};
use crate::finding::Finding;
use crate::node::{Kind, Node, Resolved, parse_int};
use crate::path::FieldPath;
use crate::suggest::suggest;

/// The outcome of the structural walk.
pub(crate) struct Checked {
    /// JSON the typed structs deserialise from.
    pub value: Value,
    /// Structural problems.
    pub findings: Vec<Finding>,
    /// Paths whose values were missing, dropped or replaced.
    pub broken: Vec<FieldPath>,
}

/// Walks `root` against `schema` (a root schema with `$defs`).
pub(crate) fn check(root: &Node, schema: &Value) -> Checked {
    let mut walker = Walker {
        root: schema,
        findings: Vec::new(),
        broken: Vec::new(),
    };
    let path = FieldPath::root();
    let value = match walker.value(root, schema, &path, None) {
        Some(value) => value,
        None => walker.placeholder(schema),
    };
    Checked {
        value,
        findings: walker.findings,
        broken: walker.broken,
    }
}

struct Walker<'s> {
    root: &'s Value,
    findings: Vec<Finding>,
    broken: Vec<FieldPath>,
}

/// A schema with `$ref`/`anyOf` resolved to the shape a value must have.
struct Shape<'s> {
    schema: &'s Value,
    /// Name of the last `$defs` entry passed through (names enum error codes).
    def: Option<&'s str>,
    nullable: bool,
    /// Allowed string values (from `enum` or a `oneOf` of `const`s).
    choices: Vec<&'s str>,
}

impl<'s> Walker<'s> {
    fn shape(&self, mut schema: &'s Value) -> Shape<'s> {
        let mut def = None;
        let mut nullable = false;
        for _ in 0..32 {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                match self.root.get("$defs").and_then(|d| d.get(name)) {
                    Some(target) => {
                        def = Some(name);
                        schema = target;
                        continue;
                    }
                    None => break,
                }
            }
            let alternatives = schema
                .get("anyOf")
                .or_else(|| schema.get("oneOf"))
                .and_then(Value::as_array);
            if let Some(alternatives) = alternatives {
                let consts: Vec<&str> = alternatives
                    .iter()
                    .filter_map(|a| a.get("const").and_then(Value::as_str))
                    .collect();
                if consts.len() == alternatives.len() {
                    return Shape {
                        schema,
                        def,
                        nullable,
                        choices: consts,
                    };
                }
                nullable |= alternatives.iter().any(is_null_schema);
                match alternatives.iter().find(|a| !is_null_schema(a)) {
                    Some(first) => {
                        schema = first;
                        continue;
                    }
                    None => break,
                }
            }
            break;
        }
        nullable |= types(schema).contains(&"null");
        let choices = schema
            .get("enum")
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Shape {
            schema,
            def,
            nullable,
            choices,
        }
    }

    fn fail(&mut self, finding: Finding) -> Option<Value> {
        self.broken.push(finding.path.clone());
        self.findings.push(finding);
        None
    }

    fn wrong_type(&mut self, node: &Node, expected: &str, path: &FieldPath) -> Option<Value> {
        let mut message = format!("expected {expected}, found {}", node.describe());
        if expected == "a sequence"
            && let Kind::Scalar(s) = &node.kind
        {
            message.push_str(&format!(" (write a list, e.g. `[{}]`)", s.text));
        }
        self.fail(Finding::error(path.clone(), "wrong-type", message))
    }

    /// Checks `node` against `schema`; `None` means the value is unusable (already reported).
    fn value(
        &mut self,
        node: &Node,
        schema: &'s Value,
        path: &FieldPath,
        field: Option<&str>,
    ) -> Option<Value> {
        let shape = self.shape(schema);
        if node.is_null() {
            if shape.nullable {
                return Some(Value::Null);
            }
            let expected = describe_shape(&shape);
            return self.wrong_type(node, &expected, path);
        }
        if !shape.choices.is_empty() {
            return self.string(node, &shape, path, field);
        }
        let kinds = types(shape.schema);
        match kinds.iter().copied().find(|t| *t != "null") {
            Some("object") => self.object(node, shape.schema, path),
            Some("array") => self.array(node, shape.schema, path),
            Some("string") => self.string(node, &shape, path, field),
            Some("integer") => self.integer(node, shape.schema, path),
            Some("number") => self.number(node, path),
            Some("boolean") => self.boolean(node, path),
            _ => Some(generic(node)),
        }
    }

    fn object(&mut self, node: &Node, schema: &'s Value, path: &FieldPath) -> Option<Value> {
        let Kind::Map(entries) = &node.kind else {
            return self.wrong_type(node, "a mapping", path);
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let property = |name: &str| properties.and_then(|p| p.get(name));
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let additional = schema.get("additionalProperties");
        let mut out = Map::new();
        for entry in entries {
            let child = path.key(entry.key.clone());
            if let Some(property) = property(&entry.key) {
                if entry.value.is_null() && !required.contains(&entry.key.as_str()) {
                    continue; // an empty optional value means "not set": the default applies
                }
                if let Some(value) = self.value(&entry.value, property, &child, Some(&entry.key)) {
                    out.insert(entry.key.clone(), value);
                }
                continue;
            }
            match additional {
                Some(Value::Bool(false)) => {
                    let names: Vec<&str> = properties
                        .into_iter()
                        .flat_map(|p| p.keys().map(String::as_str))
                        .collect();
                    let message = match suggest(&entry.key, &names) {
                        Some(best) => {
                            // The intended field is missing as a consequence (unless it is
                            // also written): keep quiet about it.
                            if !entries.iter().any(|e| e.key == best) {
                                self.broken.push(path.key(best));
                            }
                            format!("unknown field `{}`, did you mean `{best}`?", entry.key)
                        }
                        None => format!(
                            "unknown field `{}`; expected one of {}",
                            entry.key,
                            quote_list(&names)
                        ),
                    };
                    self.fail(Finding::error(child, "unknown-field", message).at_key());
                }
                Some(extra @ Value::Object(_)) => {
                    if let Some(value) = self.value(&entry.value, extra, &child, None) {
                        out.insert(entry.key.clone(), value);
                    }
                }
                _ => {
                    out.insert(entry.key.clone(), generic(&entry.value));
                }
            }
        }
        for name in required {
            if out.contains_key(name) {
                continue;
            }
            let child = path.key(name);
            let present = entries.iter().any(|e| e.key == name && !e.value.is_null());
            if !present && !self.broken.contains(&child) {
                let message = if path.is_root() {
                    format!("missing required field `{name}`")
                } else {
                    format!("missing required field `{name}` in `{path}`")
                };
                self.fail(Finding::error(child.clone(), "missing-field", message));
            }
            self.broken.push(child);
            if let Some(property) = property(name) {
                out.insert(name.to_owned(), self.placeholder(property));
            }
        }
        Some(Value::Object(out))
    }

    fn array(&mut self, node: &Node, schema: &'s Value, path: &FieldPath) -> Option<Value> {
        let Kind::Seq(items) = &node.kind else {
            return self.wrong_type(node, "a sequence", path);
        };
        let item_schema = schema.get("items");
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let value = match item_schema {
                Some(item_schema) => match self.value(item, item_schema, &path.index(i), None) {
                    Some(value) => value,
                    // Keep indices stable so later paths still match the document.
                    None => self.placeholder(item_schema),
                },
                None => generic(item),
            };
            out.push(value);
        }
        Some(Value::Array(out))
    }

    fn string(
        &mut self,
        node: &Node,
        shape: &Shape<'s>,
        path: &FieldPath,
        field: Option<&str>,
    ) -> Option<Value> {
        let Kind::Scalar(scalar) = &node.kind else {
            let expected = describe_shape(shape);
            return self.wrong_type(node, &expected, path);
        };
        let text = scalar.text.as_str();
        if !shape.choices.is_empty() && !shape.choices.contains(&text) {
            let code = match shape.def {
                Some(def) => format!("invalid-{}", kebab(def)),
                None => "invalid-value".to_owned(),
            };
            let mut message = format!(
                "unknown value `{text}`; expected one of {}",
                quote_list(&shape.choices)
            );
            if let Some(best) = suggest(text, &shape.choices) {
                message = format!("unknown value `{text}`, did you mean `{best}`?");
            }
            return self.fail(Finding::error(path.clone(), &code, message));
        }
        if let Some(expected) = shape.schema.get("const").and_then(Value::as_str)
            && text != expected
        {
            let name = field.unwrap_or("value");
            let code = format!("invalid-{}", kebab(name));
            let message = format!("`{name}` must be `{expected}`, found `{text}`");
            return self.fail(Finding::error(path.clone(), &code, message));
        }
        if let Some(format) = shape.schema.get("format").and_then(Value::as_str)
            && let Err((code, message)) = check_format(format, text)
        {
            return self.fail(Finding::error(path.clone(), code, message));
        }
        Some(Value::String(text.to_owned()))
    }

    fn integer(&mut self, node: &Node, schema: &Value, path: &FieldPath) -> Option<Value> {
        let parsed = match &node.kind {
            Kind::Scalar(s) if s.resolve() == Resolved::Int => parse_int(&s.text),
            _ => return self.wrong_type(node, "an integer", path),
        };
        let bound = |key: &str| schema.get(key).and_then(Value::as_i64).map(i128::from);
        let (min, max) = (bound("minimum"), bound("maximum"));
        let in_range = parsed
            .filter(|v| min.is_none_or(|m| *v >= m) && max.is_none_or(|m| *v <= m))
            .and_then(|v| i64::try_from(v).ok());
        match in_range {
            Some(v) => Some(Value::from(v)),
            None => {
                let text = match &node.kind {
                    Kind::Scalar(s) => s.text.clone(),
                    _ => String::new(),
                };
                let range = match (min, max) {
                    (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => "a 64-bit integer".to_owned(),
                };
                let message = match path.last_key() {
                    Some(field) => format!("`{field}` must be {range}, found {text}"),
                    None => format!("value must be {range}, found {text}"),
                };
                self.fail(Finding::error(path.clone(), "out-of-range", message))
            }
        }
    }

    fn number(&mut self, node: &Node, path: &FieldPath) -> Option<Value> {
        match &node.kind {
            Kind::Scalar(s) if matches!(s.resolve(), Resolved::Int | Resolved::Float) => {
                match s
                    .text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => Some(Value::Number(n)),
                    None => self.wrong_type(node, "a finite number", path),
                }
            }
            _ => self.wrong_type(node, "a number", path),
        }
    }

    fn boolean(&mut self, node: &Node, path: &FieldPath) -> Option<Value> {
        match &node.kind {
            Kind::Scalar(s) => match s.resolve() {
                Resolved::Bool(b) => Some(Value::Bool(b)),
                _ => self.wrong_type(node, "a boolean (`true` or `false`)", path),
            },
            _ => self.wrong_type(node, "a boolean (`true` or `false`)", path),
        }
    }

    /// A value of the schema's type that deserialises, standing in for a broken one.
    fn placeholder(&self, schema: &'s Value) -> Value {
        let shape = self.shape(schema);
        if let Some(first) = shape.choices.first() {
            return Value::String((*first).to_owned());
        }
        if shape.nullable {
            return Value::Null;
        }
        if let Some(value) = shape.schema.get("const") {
            return value.clone();
        }
        match types(shape.schema).first().copied() {
            Some("string") => Value::String(
                match shape.schema.get("format").and_then(Value::as_str) {
                    Some(duration::FORMAT) => "0s",
                    Some(DAYS_FORMAT) => "daily",
                    Some(TIME_FORMAT) => "00:00",
                    _ => "",
                }
                .to_owned(),
            ),
            Some("integer") => Value::from(
                shape
                    .schema
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            ),
            Some("number") => Value::from(0),
            Some("boolean") => Value::Bool(false),
            Some("array") => Value::Array(Vec::new()),
            Some("object") => {
                let mut out = Map::new();
                let required = shape.schema.get("required").and_then(Value::as_array);
                let properties = shape.schema.get("properties");
                for name in required.into_iter().flatten().filter_map(Value::as_str) {
                    if let Some(property) = properties.and_then(|p| p.get(name)) {
                        out.insert(name.to_owned(), self.placeholder(property));
                    }
                }
                Value::Object(out)
            }
            _ => Value::Null,
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn describe_shape(shape: &Shape<'_>) -> String {
    if !shape.choices.is_empty() {
        return format!("one of {}", quote_list(&shape.choices));
    }
    match types(shape.schema).iter().copied().find(|t| *t != "null") {
        Some("object") => "a mapping".to_owned(),
        Some("array") => "a sequence".to_owned(),
        Some("string") => match shape.schema.get("format").and_then(Value::as_str) {
            Some(duration::FORMAT) => "a duration like `10s`".to_owned(),
            Some(DAYS_FORMAT) => "days like `Mon-Fri`".to_owned(),
            Some(TIME_FORMAT) => "a time like \"08:30\"".to_owned(),
            _ => "a string".to_owned(),
        },
        Some("integer") => "an integer".to_owned(),
        Some("number") => "a number".to_owned(),
        Some("boolean") => "a boolean (`true` or `false`)".to_owned(),
        _ => "a value".to_owned(),
    }
}

/// Checks the string formats this crate defines.
fn check_format(format: &str, text: &str) -> Result<(), (&'static str, String)> {
    match format {
        duration::FORMAT => Duration::parse(text)
            .map(|_| ())
            .map_err(|e| ("invalid-duration", e.to_string())),
        DAYS_FORMAT => DaySet::parse(text)
            .map(|_| ())
            .map_err(|e| ("invalid-days", e.to_string())),
        TIME_FORMAT => TimeOfDay::parse(text)
            .map(|_| ())
            .map_err(|e| ("invalid-time", e.to_string())),
        _ => Ok(()),
    }
}

/// Converts a node without schema guidance (plain scalars resolved by YAML 1.2 rules).
fn generic(node: &Node) -> Value {
    match &node.kind {
        Kind::Scalar(s) => match s.resolve() {
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int => parse_int(&s.text)
                .and_then(|v| i64::try_from(v).ok())
                .map_or_else(|| Value::String(s.text.clone()), Value::from),
            Resolved::Float => s
                .text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(s.text.clone()), Value::Number),
            Resolved::Str => Value::String(s.text.clone()),
        },
        Kind::Seq(items) => Value::Array(items.iter().map(generic).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), generic(&e.value)))
                .collect(),
        ),
    }
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `HttpMethod` → `http-method`, `apiVersion` → `api-version`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::node::parse;
    use serde_json::json;

    fn run(doc: &str, schema: &Value) -> Checked {
        check(&parse(doc).root.unwrap(), schema)
    }

    fn codes(checked: &Checked) -> Vec<(String, String)> {
        checked
            .findings
            .iter()
            .map(|f| (f.path.to_string(), f.code.clone()))
            .collect()
    }

    #[test]
    fn converts_scalars_by_the_expected_type() {
        let schema = json!({"type": "object", "additionalProperties": false, "properties": {
            "a": {"type": "string"}, "b": {"type": "integer", "minimum": 0},
            "c": {"type": ["boolean", "null"]}, "d": {"type": "array", "items": {"type": "string"}}}});
        let checked = run("a: 8080\nb: 0x10\nc: ~\nd: [1, x]\n", &schema);
        assert!(checked.findings.is_empty());
        assert_eq!(
            checked.value,
            json!({"a": "8080", "b": 16, "d": ["1", "x"]})
        );
    }

    #[test]
    fn reports_every_structural_problem_and_keeps_indices() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "required": ["name", "items"],
            "properties": {"name": {"type": "string"}, "count": {"type": "integer", "maximum": 5},
                "items": {"type": "array", "items": {"type": "integer"}},
                "mode": {"type": "string", "enum": ["fast", "slow"]}}});
        let checked = run(
            "nmae: x\ncount: 9\nitems: [1, two, 3]\nmode: fats\n",
            &schema,
        );
        assert_eq!(
            codes(&checked),
            [
                ("nmae".to_owned(), "unknown-field".to_owned()),
                ("count".to_owned(), "out-of-range".to_owned()),
                ("items[1]".to_owned(), "wrong-type".to_owned()),
                ("mode".to_owned(), "invalid-value".to_owned()),
            ]
        );
        assert!(checked.findings[0].message.contains("did you mean `name`"));
        assert!(checked.findings[3].message.contains("did you mean `fast`"));
        // `name` is missing only because of the typo: reported once, as the typo.
        assert_eq!(checked.value["name"], json!(""));
        assert_eq!(checked.value["items"], json!([1, 0, 3]));
        assert!(checked.broken.contains(&FieldPath::parse("name")));
    }

    #[test]
    fn quoted_numbers_are_strings_and_say_so() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let checked = run("n: \"3\"\n", &schema);
        assert_eq!(checked.findings[0].code, "wrong-type");
        assert!(
            checked.findings[0].message.contains("remove the quotes"),
            "{}",
            checked.findings[0].message
        );
    }

    #[test]
    fn kebab_cases_names() {
        assert_eq!(kebab("HttpMethod"), "http-method");
        assert_eq!(kebab("apiVersion"), "api-version");
        assert_eq!(kebab("kind"), "kind");
    }
}
