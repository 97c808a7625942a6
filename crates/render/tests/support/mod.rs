//! Test support: loading specs, and turning a rendered object into what a real server
//! returns for it (reference §4.3, §6.6, §8, §9 and the captured fixtures), so the diff
//! can be checked against realistic live objects.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use steward_spec::ServiceSpec;

/// `deploy/examples` of the workspace.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples")
}

/// `tests/specs` of this crate: extra specs for rules the examples do not exercise.
pub fn test_specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs")
}

/// `(stem, text)` of every `*.yaml` in `dir`, sorted by name.
pub fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Every example, loaded: `(stem, text, spec)`. Fails when there is none.
pub fn examples() -> Vec<(String, String, ServiceSpec)> {
    let files = yaml_files(&examples_dir());
    assert!(
        !files.is_empty(),
        "no examples in {}",
        examples_dir().display()
    );
    files
        .into_iter()
        .map(|(stem, text)| {
            let spec = load(&stem, &text);
            (stem, text, spec)
        })
        .collect()
}

/// Every extra test spec, loaded.
pub fn test_specs() -> Vec<(String, String, ServiceSpec)> {
    yaml_files(&test_specs_dir())
        .into_iter()
        .map(|(stem, text)| {
            let spec = load(&stem, &text);
            (stem, text, spec)
        })
        .collect()
}

/// Loads a spec with the spec crate's loader; panics with its diagnostics.
pub fn load(file: &str, text: &str) -> ServiceSpec {
    let loaded = steward_spec::load(file, text, None);
    match loaded.spec {
        Some(spec) => spec,
        None => panic!("{file} does not load:\n{}", loaded.render()),
    }
}

/// A fixture from `tests/fixtures` (copied from the shared reference captures).
pub fn fixture(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

/// Nanoseconds per second.
pub const SEC: u64 = 1_000_000_000;

pub fn obj_mut(v: &mut Value) -> &mut Map<String, Value> {
    v.as_object_mut().expect("an object")
}

/// Inserts `key: value` unless the object already has a non-null value there.
pub fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

/// Replaces an empty object or list (or a missing field) by `null`, as Nomad reads back.
pub fn null_if_empty(map: &mut Map<String, Value>, key: &str) {
    let empty = match map.get(key) {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    if empty {
        map.insert(key.to_owned(), Value::Null);
    }
}

/// Recursively sorts object keys (Go marshals maps sorted, and Nomad's structs happen
/// to read alphabetically in the captures).
pub fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

mod consul;
mod nomad;
mod vault;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use consul::{go_duration, normalise_like_consul};
#[allow(unused_imports)]
pub use nomad::canonicalise_like_nomad;
#[allow(unused_imports)]
pub use vault::{policy_reformatted, vault_role_read_form};
