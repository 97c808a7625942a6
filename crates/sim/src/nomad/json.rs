//! Small helpers for working with job JSON (`serde_json::Value`) the way the Go
//! structs would: typed getters that remember the first decode error.

use serde_json::{Map, Value};

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// Reads typed fields out of request JSON, recording the first type mismatch with the
/// text Go's `encoding/json` would produce.
#[derive(Default)]
pub(crate) struct Dec {
    pub(crate) error: Option<String>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Dec {
    fn mismatch(&mut self, v: &Value, path: &str, go_type: &str) {
        if self.error.is_none() {
            self.error = Some(format!(
                "json: cannot unmarshal {} into Go struct field {} of type {}",
                json_kind(v),
                path,
                go_type
            ));
        }
    }

    /// The field, or `None` when absent or null.
    pub(crate) fn get<'a>(&self, o: &'a Value, key: &str) -> Option<&'a Value> {
        o.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn str_opt(&mut self, o: &Value, key: &str, path: &str) -> Option<String> {
        match self.get(o, key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), "string");
                None
            }
        }
    }

    pub(crate) fn str(&mut self, o: &Value, key: &str, path: &str, default: &str) -> String {
        self.str_opt(o, key, path)
            .unwrap_or_else(|| default.to_string())
    }

    pub(crate) fn int_opt(&mut self, o: &Value, key: &str, path: &str) -> Option<i64> {
        match self.get(o, key) {
            None => None,
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Some(i)
                } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                    Some(f as i64)
                } else {
                    self.mismatch(&Value::Number(n.clone()), &format!("{path}.{key}"), "int");
                    None
                }
            }
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), "int");
                None
            }
        }
    }

    pub(crate) fn int(&mut self, o: &Value, key: &str, path: &str, default: i64) -> i64 {
        self.int_opt(o, key, path).unwrap_or(default)
    }

    pub(crate) fn bool_opt(&mut self, o: &Value, key: &str, path: &str) -> Option<bool> {
        match self.get(o, key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), "bool");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, o: &Value, key: &str, path: &str, default: bool) -> bool {
        self.bool_opt(o, key, path).unwrap_or(default)
    }

    /// A list of strings; `None` when absent, null or empty.
    pub(crate) fn strs(&mut self, o: &Value, key: &str, path: &str) -> Option<Vec<String>> {
        match self.get(o, key) {
            None => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for v in a {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            self.mismatch(other, &format!("{path}.{key}"), "string");
                        }
                    }
                }
                if out.is_empty() { None } else { Some(out) }
            }
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), "[]string");
                None
            }
        }
    }

    /// A `map[string]string`; `None` when absent, null or empty.
    pub(crate) fn str_map(&mut self, o: &Value, key: &str, path: &str) -> Option<Obj> {
        match self.get(o, key) {
            None => None,
            Some(Value::Object(m)) => {
                let mut out = Obj::new();
                for (k, v) in m {
                    match v {
                        Value::String(_) => {
                            out.insert(k.clone(), v.clone());
                        }
                        other => self.mismatch(other, &format!("{path}.{key}"), "string"),
                    }
                }
                if out.is_empty() { None } else { Some(out) }
            }
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), "map[string]string");
                None
            }
        }
    }

    /// An object; `None` when absent or null.
    pub(crate) fn obj<'a>(&mut self, o: &'a Value, key: &str, path: &str) -> Option<&'a Value> {
        match self.get(o, key) {
            None => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), key);
                None
            }
        }
    }

    /// A list of objects; empty when absent or null.
    pub(crate) fn objs<'a>(&mut self, o: &'a Value, key: &str, path: &str) -> Vec<&'a Value> {
        match self.get(o, key) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        Value::Object(_) => out.push(v),
                        Value::Null => {}
                        other => self.mismatch(other, &format!("{path}.{key}"), key),
                    }
                }
                out
            }
            Some(v) => {
                self.mismatch(v, &format!("{path}.{key}"), &format!("[]*{key}"));
                Vec::new()
            }
        }
    }
}

/// `Some(list)` as a JSON array, `None` as null.
pub(crate) fn opt_strs(v: Option<Vec<String>>) -> Value {
    match v {
        Some(list) => Value::Array(list.into_iter().map(Value::String).collect()),
        None => Value::Null,
    }
}

/// `Some(map)` as an object, `None` as null.
pub(crate) fn opt_obj(v: Option<Obj>) -> Value {
    v.map(Value::Object).unwrap_or(Value::Null)
}

/// Field as a string (empty when absent or not a string).
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Field as an integer (0 when absent).
pub(crate) fn i(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

/// Field as an unsigned integer (0 when absent).
pub(crate) fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Field as a bool (false when absent).
pub(crate) fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Field as a slice of values (empty when absent or null).
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Sorts the keys of every object, recursively (the Go encoder emits struct fields in
/// declaration order and maps sorted; sorted keys are close enough and stable).
pub(crate) fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}
