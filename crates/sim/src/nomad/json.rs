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

// ----- `jv!`: `serde_json::json!` that moves `Value`s in ------------------------------

/// Wraps a value for [`jv!`]'s conversion.
pub(crate) struct Wrap<T>(pub(crate) T);

/// A `Value` is moved in as it is.
pub(crate) trait ViaMove {
    fn into_value(self) -> Value;
}

impl ViaMove for Wrap<Value> {
    fn into_value(self) -> Value {
        self.0
    }
}

/// Anything else is serialised into a `Value`, as `json!` does.
pub(crate) trait ViaSerialize {
    fn into_value(self) -> Value;
}

impl<T: serde::Serialize> ViaSerialize for &Wrap<T> {
    fn into_value(self) -> Value {
        serde_json::to_value(&self.0).unwrap_or(Value::Null)
    }
}

/// `serde_json::json!` with one difference: an interpolated expression of type
/// `Value` is moved into the result instead of being serialised into a copy
/// (`json!` runs `to_value(&expr)` on every value, so building a document from
/// nested `json!` calls copies each subtree once per level above it). The result is
/// the same `Value`.
macro_rules! jv {
    ($($json:tt)+) => {
        $crate::nomad::json::jv_internal!($($json)+)
    };
}

/// The token muncher behind [`jv!`] (serde_json's `json_internal!`, MIT/Apache-2.0,
/// with the final conversion changed).
macro_rules! jv_internal {
    (@array [$($elems:expr,)*]) => {
        vec![$($elems,)*]
    };
    (@array [$($elems:expr),*]) => {
        vec![$($elems),*]
    };
    (@array [$($elems:expr,)*] null $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!(null)] $($rest)*)
    };
    (@array [$($elems:expr,)*] true $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!(true)] $($rest)*)
    };
    (@array [$($elems:expr,)*] false $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!(false)] $($rest)*)
    };
    (@array [$($elems:expr,)*] [$($array:tt)*] $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!([$($array)*])] $($rest)*)
    };
    (@array [$($elems:expr,)*] {$($map:tt)*} $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!({$($map)*})] $($rest)*)
    };
    (@array [$($elems:expr,)*] $next:expr, $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!($next),] $($rest)*)
    };
    (@array [$($elems:expr,)*] $last:expr) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)* $crate::nomad::json::jv_internal!($last)])
    };
    (@array [$($elems:expr),*] , $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@array [$($elems,)*] $($rest)*)
    };
    // Objects: the entries are gathered first (`[((key) (value)) ...]`) so the map
    // is made with room for all of them (growing it entry by entry reallocates).
    (@object [$( (($($k:tt)+) ($v:expr)) )*] () () ()) => {{
        let mut object = serde_json::Map::with_capacity(
            0usize $(+ $crate::nomad::json::jv_internal!(@one $($k)+))*
        );
        $( let _ = object.insert(($($k)+).into(), $v); )*
        object
    }};
    (@one $($t:tt)*) => {
        1usize
    };
    (@object [$($acc:tt)*] [$($key:tt)+] ($value:expr) , $($rest:tt)*) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)* (($($key)+) ($value))] () ($($rest)*) ($($rest)*))
    };
    (@object [$($acc:tt)*] [$($key:tt)+] ($value:expr)) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)* (($($key)+) ($value))] () () ())
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: null $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!(null)) $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: true $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!(true)) $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: false $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!(false)) $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: [$($array:tt)*] $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!([$($array)*])) $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: {$($map:tt)*} $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!({$($map)*})) $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: $value:expr , $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!($value)) , $($rest)*)
    };
    (@object [$($acc:tt)*] ($($key:tt)+) (: $value:expr) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] [$($key)+] ($crate::nomad::json::jv_internal!($value)))
    };
    (@object [$($acc:tt)*] () (($key:expr) : $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] ($key) (: $($rest)*) (: $($rest)*))
    };
    (@object [$($acc:tt)*] ($($key:tt)*) ($tt:tt $($rest:tt)*) $copy:tt) => {
        $crate::nomad::json::jv_internal!(@object [$($acc)*] ($($key)* $tt) ($($rest)*) ($($rest)*))
    };
    (null) => {
        serde_json::Value::Null
    };
    (true) => {
        serde_json::Value::Bool(true)
    };
    (false) => {
        serde_json::Value::Bool(false)
    };
    ([]) => {
        serde_json::Value::Array(vec![])
    };
    ([ $($tt:tt)+ ]) => {
        serde_json::Value::Array($crate::nomad::json::jv_internal!(@array [] $($tt)+))
    };
    ({}) => {
        serde_json::Value::Object(serde_json::Map::new())
    };
    ({ $($tt:tt)+ }) => {
        serde_json::Value::Object(
            $crate::nomad::json::jv_internal!(@object [] () ($($tt)+) ($($tt)+))
        )
    };
    ($other:expr) => {{
        #[allow(unused_imports)]
        use $crate::nomad::json::{ViaMove as _, ViaSerialize as _};
        $crate::nomad::json::Wrap($other).into_value()
    }};
}

pub(crate) use {jv, jv_internal};

#[cfg(test)]
mod jv_tests {
    use serde_json::{Value, json};

    #[test]
    fn jv_builds_what_json_builds() {
        let inner = json!({"a": [1, 2, {"b": null}], "c": "d"});
        let s = String::from("x");
        let n: Option<i64> = None;
        let want = json!({
            "Inner": inner.clone(), "Ref": &inner, "S": s.clone(), "Str": "lit", "N": n,
            "Arr": [inner.clone(), 1, true, null], "Obj": {"k": 1.5, "v": false}, "U": 7u64,
        });
        let got = super::jv!({
            "Inner": inner.clone(), "Ref": &inner, "S": s, "Str": "lit", "N": n,
            "Arr": [inner.clone(), 1, true, null], "Obj": {"k": 1.5, "v": false}, "U": 7u64,
        });
        assert_eq!(got, want);
        assert_eq!(
            serde_json::to_string(&got).unwrap_or_default(),
            serde_json::to_string(&want).unwrap_or_default()
        );
        let v: Value = super::jv!(inner.clone());
        assert_eq!(v, inner);
    }
}
