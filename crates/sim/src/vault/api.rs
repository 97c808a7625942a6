//! Vault's HTTP conventions: how a request becomes a logical operation, how a
//! handler's outcome becomes a response (envelope, 204, 404 for empty reads and
//! lists, `{"errors": [...]}`), and how request fields are converted the way the
//! plugin framework converts them (durations in seconds, comma-separated lists).

use axum::body::Body;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A logical operation (`logical.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    List,
    Update,
    Create,
    Delete,
    Patch,
    Header,
}

/// The Vault version the simulator pretends to be, for version-dependent shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `1.18.3` (a leading `v` and a `+ent`/`-rc1` suffix are ignored).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let core = s.split(['+', '-']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map(|p| p.parse().ok()).unwrap_or(Some(0))?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// At least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// A successful logical response (`logical.Response`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Resp {
    /// `data`; `None` renders as `null`.
    pub data: Option<Value>,
    pub warnings: Vec<String>,
    pub auth: Option<Value>,
    /// Also copy the data keys to the top level (Vault does this for a few legacy
    /// `sys/` routes such as `sys/auth` and `sys/policy`).
    pub inject_top: bool,
}

impl Resp {
    /// A response carrying `data`.
    pub fn data(data: Value) -> Resp {
        Resp {
            data: Some(data),
            ..Resp::default()
        }
    }

    /// A list response (`logical.ListResponse`): `data.keys`, absent when empty.
    pub fn list(keys: Vec<String>) -> Resp {
        let mut data = Map::new();
        if !keys.is_empty() {
            data.insert("keys".into(), json!(keys));
        }
        Resp::data(Value::Object(data))
    }

    /// A response with nothing but warnings.
    pub fn warnings(warnings: Vec<String>) -> Resp {
        Resp {
            warnings,
            ..Resp::default()
        }
    }
}

/// A failed request: status and the `errors` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VErr {
    pub status: u16,
    pub errors: Vec<String>,
}

impl VErr {
    /// 400 with one message (`logical.ErrorResponse`).
    pub fn bad(msg: impl Into<String>) -> VErr {
        VErr {
            status: 400,
            errors: vec![msg.into()],
        }
    }
    /// A status with one message.
    pub fn code(status: u16, msg: impl Into<String>) -> VErr {
        VErr {
            status,
            errors: vec![msg.into()],
        }
    }
    /// A status with an empty `errors` list.
    pub fn empty(status: u16) -> VErr {
        VErr {
            status,
            errors: Vec::new(),
        }
    }
    /// 405 `unsupported operation`.
    pub fn unsupported_operation() -> VErr {
        VErr::code(405, "unsupported operation")
    }
    /// 404 `unsupported path`.
    pub fn unsupported_path() -> VErr {
        VErr::code(404, "unsupported path")
    }
}

/// What a handler returns: `Ok(None)` is Go's `nil, nil`.
pub(crate) type Outcome = Result<Option<Resp>, VErr>;

/// Serialises like Go's `json.Encoder` with HTML escaping and a trailing newline.
pub(crate) fn go_json(value: &Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len() + 1);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

fn base_response(status: u16, body: Option<String>) -> Response {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    Response::builder()
        .status(status)
        .header(http::header::CACHE_CONTROL, "no-store")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `{"errors": [...]}` with a status.
pub(crate) fn error_response(err: &VErr) -> Response {
    base_response(err.status, Some(go_json(&json!({ "errors": err.errors }))))
}

/// A JSON body that is not an envelope (sys/health, sys/seal-status).
pub(crate) fn raw_json(status: u16, body: &Value) -> Response {
    let no_body = status == 204 || status == 304 || status < 200;
    base_response(status, (!no_body).then(|| go_json(body)))
}

/// Sorts object keys recursively, as Go's encoding of `map[string]interface{}` does.
pub(crate) fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Turns a handler outcome into the HTTP response (`respondLogical` and the
/// read/list 404 rules of `handleLogical`).
pub(crate) fn render(op: Op, outcome: Outcome, mount_type: &str, version: Version) -> Response {
    let resp = match outcome {
        Err(e) => return error_response(&e),
        Ok(None) => {
            return match op {
                Op::Read | Op::List => error_response(&VErr::empty(404)),
                _ => base_response(204, None),
            };
        }
        Ok(Some(resp)) => resp,
    };
    if op == Op::List {
        let keys = resp
            .data
            .as_ref()
            .and_then(|d| d.get("keys"))
            .and_then(Value::as_array);
        if keys.is_none_or(|k| k.is_empty()) {
            return error_response(&VErr::empty(404));
        }
    }
    let mut body = Map::new();
    if resp.inject_top
        && let Some(Value::Object(data)) = &resp.data
    {
        for (k, v) in data {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert("request_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    body.insert("lease_id".into(), json!(""));
    body.insert("renewable".into(), json!(false));
    body.insert("lease_duration".into(), json!(0));
    body.insert("data".into(), resp.data.unwrap_or(Value::Null));
    body.insert("wrap_info".into(), Value::Null);
    body.insert(
        "warnings".into(),
        if resp.warnings.is_empty() {
            Value::Null
        } else {
            json!(resp.warnings)
        },
    );
    body.insert("auth".into(), resp.auth.unwrap_or(Value::Null));
    if version.at_least(1, 13) {
        body.insert("mount_type".into(), json!(mount_type));
    }
    base_response(200, Some(go_json(&Value::Object(body))))
}

/// Parses the request body: JSON object, or nothing.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, VErr> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(VErr::bad(format!(
            "failed to parse JSON input: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_kind(&other)
        ))),
        Err(e) => Err(VErr::bad(format!("failed to parse JSON input: {e}"))),
    }
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Field conversion (sdk/framework field types)

/// How Go's `%v` prints a decoded JSON value.
pub(crate) fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_fmt).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            format!(
                "map[{}]",
                sorted
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// `error converting input <v> for field "<k>": <err>` (the framework's message for a
/// field that cannot be converted to its type).
pub(crate) fn field_error(field: &str, value: &Value, err: &str) -> VErr {
    VErr::bad(format!(
        "error converting input {} for field {}: {err}",
        go_fmt(value),
        super::policy::go_quote(field)
    ))
}

/// Go's `time.ParseDuration`, in nanoseconds, with Go's error texts.
pub(crate) fn go_parse_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", super::policy::go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        } else if int_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(format!(
                "time: missing unit in duration {}",
                super::policy::go_quote(orig)
            ));
        }
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    super::policy::go_quote(unit),
                    super::policy::go_quote(orig)
                ));
            }
        };
        let number: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            if frac_part.is_empty() { "0" } else { frac_part }
        )
        .parse()
        .map_err(|_| invalid())?;
        total += number * scale;
    }
    if total > 9.223_372_036_854_776e18 {
        return Err(invalid());
    }
    let nanos = total.round() as i128;
    Ok(if neg { -nanos } else { nanos })
}

/// `parseutil.ParseDurationSecond`, in whole seconds: integers are seconds, strings
/// are integer seconds, `<n>d` days, or Go durations.
pub(crate) fn parse_duration_second(v: &Value) -> Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => parse_duration_second_str(&n.to_string()),
        Value::String(s) => parse_duration_second_str(s),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err("could not parse duration from input".to_string())
        }
    }
}

fn parse_duration_second_str(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    if let Some(days) = s.strip_suffix('d') {
        return days.parse::<i64>().map(|d| d * 86_400).map_err(|_| {
            format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                super::policy::go_quote(days)
            )
        });
    }
    go_parse_duration(s).map(|n| (n / 1_000_000_000) as i64)
}

/// `TypeCommaStringSlice`: a comma-separated string or a list.
pub(crate) fn comma_string_slice(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(s.split(',').map(|p| p.trim().to_string()).collect()),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Bool(b) => Ok(vec![if *b { "1".into() } else { "0".into() }]),
        Value::Array(items) => items
            .iter()
            .map(|i| weak_string(i).map(|s| s.trim().to_string()))
            .collect(),
        Value::Null => Ok(Vec::new()),
        Value::Object(_) => Err(
            "'' expected type 'string', got unconvertible type 'map[string]interface {}'".into(),
        ),
    }
}

/// A weakly typed string (`mapstructure.WeakDecode`).
pub(crate) fn weak_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1".into() } else { "0".into() }),
        Value::Null => Ok(String::new()),
        Value::Array(_) => {
            Err("'' expected type 'string', got unconvertible type '[]interface {}'".into())
        }
        Value::Object(_) => Err(
            "'' expected type 'string', got unconvertible type 'map[string]interface {}'".into(),
        ),
    }
}

/// `TypeBool`.
pub(crate) fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => go_parse_bool(s).ok_or_else(|| {
            format!(
                "strconv.ParseBool: parsing {}: invalid syntax",
                super::policy::go_quote(s)
            )
        }),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::Null => Ok(false),
        _ => Err("'' expected type 'bool', got unconvertible type".into()),
    }
}

/// `TypeInt`.
pub(crate) fn parse_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| "invalid integer".to_string()),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse::<i64>().map_err(|_| {
            format!(
                "cannot parse '' as int: strconv.ParseInt: parsing {}: invalid syntax",
                super::policy::go_quote(s)
            )
        }),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => Ok(0),
        _ => Err("'' expected type 'int', got unconvertible type".into()),
    }
}

/// `TypeMap`.
pub(crate) fn parse_map(v: &Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(format!("'' expected a map, got '{}'", go_kind(other))),
    }
}

/// `TypeKVPairs`: an object of strings, or a list of `k=v`.
pub(crate) fn parse_kv_pairs(v: &Value) -> Result<BTreeMap<String, String>, String> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| weak_string(v).map(|s| (k.clone(), s)))
            .collect(),
        Value::Array(_) | Value::String(_) => {
            let items = comma_string_slice(v)?;
            let mut out = BTreeMap::new();
            for item in items {
                let (k, val) = item.split_once('=').ok_or_else(|| {
                    format!("invalid key value pair {}", super::policy::go_quote(&item))
                })?;
                out.insert(k.to_string(), val.to_string());
            }
            Ok(out)
        }
        Value::Null => Ok(BTreeMap::new()),
        other => Err(format!("'' expected a map, got '{}'", go_kind(other))),
    }
}

/// The body fields a path does not declare, sorted, for the framework's
/// "Endpoint ignored these unrecognized parameters" warning.
pub(crate) fn unknown_fields(body: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    let mut unknown: Vec<String> = body
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown.sort();
    unknown
}

/// The warning text for unrecognized parameters.
pub(crate) fn ignored_warning(unknown: &[String]) -> String {
    format!(
        "Endpoint ignored these unrecognized parameters: [{}]",
        unknown.join(" ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_follow_parseutil() {
        assert_eq!(parse_duration_second(&json!("30m")).unwrap(), 1800);
        assert_eq!(parse_duration_second(&json!(1800)).unwrap(), 1800);
        assert_eq!(parse_duration_second(&json!("1800")).unwrap(), 1800);
        assert_eq!(parse_duration_second(&json!("2d")).unwrap(), 172_800);
        assert_eq!(parse_duration_second(&json!("1h30m")).unwrap(), 5400);
        assert_eq!(
            parse_duration_second(&json!("abc")).unwrap_err(),
            "time: invalid duration \"abc\""
        );
        assert_eq!(
            parse_duration_second(&json!("5x")).unwrap_err(),
            "time: unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(
            parse_duration_second(&json!(1.5)).unwrap_err(),
            "time: missing unit in duration \"1.5\""
        );
    }

    #[test]
    fn go_json_escapes_html_and_ends_with_newline() {
        assert_eq!(
            go_json(&json!({"a": "<&>"})),
            "{\"a\":\"\\u003c\\u0026\\u003e\"}\n"
        );
    }

    #[test]
    fn versions_compare() {
        let v = Version::parse("1.18.3").unwrap();
        assert!(v.at_least(1, 17) && !v.at_least(1, 19));
        assert!(Version::parse("v1.7.3+ent").unwrap() < v);
    }

    #[test]
    fn comma_slices_split_and_trim() {
        assert_eq!(comma_string_slice(&json!("a, b")).unwrap(), vec!["a", "b"]);
        assert_eq!(comma_string_slice(&json!(["x"])).unwrap(), vec!["x"]);
        assert!(comma_string_slice(&json!("")).unwrap().is_empty());
    }
}
