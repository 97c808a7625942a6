//! The structural comparison the diffs are built from.
//!
//! Equivalence rules shared by every object:
//! - a Go zero value (`null`, `false`, `0`, `""`, `[]`, an object of zero values) equals
//!   an absent field: servers fill zero values in and drop them again (`omitempty`);
//! - numbers compare by value, object keys in any order;
//! - "open" comparison looks only at the fields the desired side sets (server-filled
//!   fields are ignored); "closed" comparison looks at the fields of both sides (a map
//!   Steward fully owns: a field added or removed on the server is a change);
//! - lists of objects compare element by element when their lengths match (a length
//!   change is one change of the whole list); lists of scalars compare as a whole;
//!   lists of named things are matched by name (see [`Differ::named`]).

use serde_json::{Map, Value};

use crate::diff::FieldChange;

/// Collects [`FieldChange`]s.
#[derive(Debug, Default)]
pub(crate) struct Differ {
    pub(crate) changes: Vec<FieldChange>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// The object at `v`, or an empty one (absent, `null` or not an object).
pub(crate) fn obj(v: Option<&Value>) -> &Map<String, Value> {
    v.and_then(Value::as_object).unwrap_or(&EMPTY)
}

/// The items at `v`, or none.
pub(crate) fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Whether `v` is a Go zero value (see the module docs).
pub(crate) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.values().all(is_zero),
    }
}

fn zeroish(v: Option<&Value>) -> bool {
    v.is_none_or(is_zero)
}

/// Deep equality with numbers compared by value.
pub(crate) fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_i64(), y.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `path.key`, or `path["key"]` when the key is not a plain word.
pub(crate) fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (true, false) => format!("[{key:?}]"),
        (false, true) => format!("{path}.{key}"),
        (false, false) => format!("{path}[{key:?}]"),
    }
}

fn is_objects(items: &[Value]) -> bool {
    items.iter().any(Value::is_object)
}

impl Differ {
    /// Records a change (`null` is reported as absent).
    pub(crate) fn change(&mut self, path: &str, desired: Option<&Value>, live: Option<&Value>) {
        let some = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
        self.changes.push(FieldChange {
            path: path.to_owned(),
            desired: some(desired),
            live: some(live),
        });
    }

    /// Compares the fields `desired` sets, recursively; fields only `live` has are ignored.
    pub(crate) fn open(&mut self, path: &str, desired: Option<&Value>, live: Option<&Value>) {
        self.compare(path, desired, live, false);
    }

    /// Compares the fields of both sides, recursively.
    pub(crate) fn closed(&mut self, path: &str, desired: Option<&Value>, live: Option<&Value>) {
        self.compare(path, desired, live, true);
    }

    fn compare(&mut self, path: &str, d: Option<&Value>, l: Option<&Value>, closed: bool) {
        if zeroish(d) && zeroish(l) {
            return;
        }
        match (d, l) {
            (Some(Value::Object(dm)), Some(Value::Object(lm))) => {
                for (k, dv) in dm {
                    self.compare(&join(path, k), Some(dv), lm.get(k), closed);
                }
                if closed {
                    for (k, lv) in lm.iter().filter(|(k, _)| !dm.contains_key(*k)) {
                        self.compare(&join(path, k), None, Some(lv), closed);
                    }
                }
            }
            (Some(Value::Array(da)), Some(Value::Array(la)))
                if da.len() == la.len() && (is_objects(da) || is_objects(la)) =>
            {
                for (i, (dv, lv)) in da.iter().zip(la).enumerate() {
                    self.compare(&format!("{path}[{i}]"), Some(dv), Some(lv), closed);
                }
            }
            (Some(dv), Some(lv)) if values_eq(dv, lv) => {}
            _ => self.change(path, d, l),
        }
    }

    /// Open comparison of two objects, plus the `owned` fields even where `desired`
    /// leaves them out (so a field added on the server is a change), skipping `custom`
    /// fields, which the caller compares itself.
    pub(crate) fn fields(
        &mut self,
        path: &str,
        desired: &Map<String, Value>,
        live: &Map<String, Value>,
        owned: &[&str],
        custom: &[&str],
    ) {
        for (k, dv) in desired {
            if !custom.contains(&k.as_str()) {
                self.open(&join(path, k), Some(dv), live.get(k));
            }
        }
        for k in owned {
            if !desired.contains_key(*k) && !custom.contains(k) {
                self.open(&join(path, k), None, live.get(*k));
            }
        }
    }

    /// Compares two lists of named things, matched by `id`: one change per item missing
    /// on either side (live-only items for which `ignore` holds are skipped: things the
    /// server injects); `item` compares the pairs, with path `path[name]`.
    pub(crate) fn named(
        &mut self,
        path: &str,
        desired: Option<&Value>,
        live: Option<&Value>,
        id: impl Fn(&Value) -> Option<String>,
        ignore: impl Fn(&str, &Value) -> bool,
        mut item: impl FnMut(&mut Self, &str, &Value, &Value),
    ) {
        let (da, la) = (arr(desired), arr(live));
        let name = |v: &Value, i: usize| id(v).unwrap_or_else(|| format!("#{i}"));
        let live_names: Vec<String> = la.iter().enumerate().map(|(i, v)| name(v, i)).collect();
        let mut desired_names = Vec::with_capacity(da.len());
        for (i, dv) in da.iter().enumerate() {
            let n = name(dv, i);
            let p = format!("{path}[{n}]");
            match live_names.iter().position(|ln| *ln == n) {
                Some(j) => item(self, &p, dv, &la[j]),
                None => self.change(&p, Some(dv), None),
            }
            desired_names.push(n);
        }
        for (lv, n) in la.iter().zip(&live_names) {
            if !desired_names.contains(n) && !ignore(n, lv) {
                self.change(&format!("{path}[{n}]"), None, Some(lv));
            }
        }
    }

    /// Compares two lists position by position with `item`; a length change is one
    /// change of the whole list.
    pub(crate) fn positional(
        &mut self,
        path: &str,
        desired: Option<&Value>,
        live: Option<&Value>,
        mut item: impl FnMut(&mut Self, &str, &Value, &Value),
    ) {
        let (da, la) = (arr(desired), arr(live));
        if da.len() != la.len() {
            if !(zeroish(desired) && zeroish(live)) {
                self.change(path, desired, live);
            }
            return;
        }
        for (i, (dv, lv)) in da.iter().zip(la).enumerate() {
            item(self, &format!("{path}[{i}]"), dv, lv);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn zero_values_equal_absent_fields() {
        let mut d = Differ::default();
        d.open(
            "x",
            Some(&json!({"a": 0, "b": [], "c": false})),
            Some(&json!({"d": 1})),
        );
        d.open("y", None, Some(&json!({"a": null, "b": ""})));
        assert!(d.changes.is_empty(), "{:?}", d.changes);
    }

    #[test]
    fn open_ignores_live_extras_and_closed_does_not() {
        let mut d = Differ::default();
        d.open(
            "o",
            Some(&json!({"a": 1})),
            Some(&json!({"a": 1.0, "b": 2})),
        );
        assert!(d.changes.is_empty(), "{:?}", d.changes);
        d.closed("c", Some(&json!({"a": 1})), Some(&json!({"a": 1, "b": 2})));
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].path, "c.b");
        assert_eq!(d.changes[0].desired, None);
    }

    #[test]
    fn paths_quote_keys_that_are_not_words() {
        assert_eq!(join("", "Meta"), "Meta");
        assert_eq!(join("Meta", "steward.hash"), "Meta[\"steward.hash\"]");
        assert_eq!(join("Config", "image"), "Config.image");
    }

    #[test]
    fn named_lists_match_by_name_and_skip_injected_items() {
        let mut d = Differ::default();
        let id = |v: &Value| v.get("Name").and_then(Value::as_str).map(str::to_owned);
        d.named(
            "Tasks",
            Some(&json!([{"Name": "app", "X": 1}])),
            Some(&json!([{"Name": "sidecar"}, {"Name": "app", "X": 2}, {"Name": "extra"}])),
            id,
            |n, _| n == "sidecar",
            |d, p, a, b| d.open(p, Some(a), Some(b)),
        );
        let paths: Vec<&str> = d.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["Tasks[app].X", "Tasks[extra]"]);
    }
}
