//! Job diffs as `nomad/structs/diff.go` computes them (on canonical job JSON), and
//! the plan annotations of `scheduler/annotate.go`.

use super::json::{arr, s};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// `DiffType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiffType {
    None,
    Added,
    Deleted,
    Edited,
}

impl DiffType {
    fn as_str(self) -> &'static str {
        match self {
            DiffType::None => "None",
            DiffType::Added => "Added",
            DiffType::Deleted => "Deleted",
            DiffType::Edited => "Edited",
        }
    }
    /// Sort rank: Edited < Added < Deleted < None (the Go `Less`).
    fn rank(self) -> u8 {
        match self {
            DiffType::Edited => 0,
            DiffType::Added => 1,
            DiffType::Deleted => 2,
            DiffType::None => 3,
        }
    }
}

/// `FieldDiff`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldDiff {
    pub(crate) kind: DiffType,
    pub(crate) name: String,
    pub(crate) old: String,
    pub(crate) new: String,
    pub(crate) annotations: Vec<String>,
}

/// `ObjectDiff`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObjectDiff {
    pub(crate) kind: DiffType,
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldDiff>,
    pub(crate) objects: Vec<ObjectDiff>,
}

/// `TaskDiff`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskDiff {
    pub(crate) kind: DiffType,
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldDiff>,
    pub(crate) objects: Vec<ObjectDiff>,
    pub(crate) annotations: Vec<String>,
}

/// `TaskGroupDiff`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskGroupDiff {
    pub(crate) kind: DiffType,
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldDiff>,
    pub(crate) objects: Vec<ObjectDiff>,
    pub(crate) tasks: Vec<TaskDiff>,
    pub(crate) updates: Option<BTreeMap<String, u64>>,
}

/// `JobDiff`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobDiff {
    pub(crate) kind: DiffType,
    pub(crate) id: String,
    pub(crate) fields: Vec<FieldDiff>,
    pub(crate) objects: Vec<ObjectDiff>,
    pub(crate) groups: Vec<TaskGroupDiff>,
}

fn list_or_null<T>(v: &[T], f: impl Fn(&T) -> Value) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Array(v.iter().map(f).collect())
    }
}

fn strs_or_null(v: &[String]) -> Value {
    list_or_null(v, |s| Value::String(s.clone()))
}

impl FieldDiff {
    fn to_json(&self) -> Value {
        json!({
            "Annotations": strs_or_null(&self.annotations),
            "Name": self.name,
            "New": self.new,
            "Old": self.old,
            "Type": self.kind.as_str(),
        })
    }
}

impl ObjectDiff {
    fn to_json(&self) -> Value {
        json!({
            "Fields": list_or_null(&self.fields, FieldDiff::to_json),
            "Name": self.name,
            "Objects": list_or_null(&self.objects, ObjectDiff::to_json),
            "Type": self.kind.as_str(),
        })
    }
}

impl TaskDiff {
    fn to_json(&self) -> Value {
        json!({
            "Annotations": strs_or_null(&self.annotations),
            "Fields": list_or_null(&self.fields, FieldDiff::to_json),
            "Name": self.name,
            "Objects": list_or_null(&self.objects, ObjectDiff::to_json),
            "Type": self.kind.as_str(),
        })
    }
}

impl TaskGroupDiff {
    fn to_json(&self) -> Value {
        json!({
            "Fields": list_or_null(&self.fields, FieldDiff::to_json),
            "Name": self.name,
            "Objects": list_or_null(&self.objects, ObjectDiff::to_json),
            "Tasks": list_or_null(&self.tasks, TaskDiff::to_json),
            "Type": self.kind.as_str(),
            "Updates": match &self.updates {
                Some(u) => Value::Object(u.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                None => Value::Null,
            },
        })
    }
}

impl JobDiff {
    /// The wire form.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Fields": list_or_null(&self.fields, FieldDiff::to_json),
            "ID": self.id,
            "Objects": list_or_null(&self.objects, ObjectDiff::to_json),
            "TaskGroups": list_or_null(&self.groups, TaskGroupDiff::to_json),
            "Type": self.kind.as_str(),
        })
    }
}

fn field_cmp(a: &FieldDiff, b: &FieldDiff) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.old.cmp(&b.old))
        .then_with(|| a.new.cmp(&b.new))
}

fn object_cmp(a: &ObjectDiff, b: &ObjectDiff) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    a.name
        .cmp(&b.name)
        .then_with(|| a.kind.rank().cmp(&b.kind.rank()))
        .then_with(|| a.fields.len().cmp(&b.fields.len()))
        .then_with(|| a.objects.len().cmp(&b.objects.len()))
        .then_with(|| {
            for (x, y) in a.fields.iter().zip(b.fields.iter()) {
                let o = field_cmp(x, y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            for (x, y) in a.objects.iter().zip(b.objects.iter()) {
                let o = object_cmp(x, y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        })
}

fn sort_objects(v: &mut [ObjectDiff]) {
    v.sort_by(object_cmp);
}

/// Go's `%v` of a JSON scalar.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else {
                n.as_f64().map(|f| {
                    if f.fract() == 0.0 && f.abs() < 1e21 {
                        format!("{}", f as i64)
                    } else {
                        format!("{f}")
                    }
                })
            }
        }
        _ => None,
    }
}

/// Fields that are Go maps (flattened as `Name[key]` even in primitive-only mode).
const MAP_FIELDS: [&str; 6] = [
    "Meta",
    "Env",
    "CanaryMeta",
    "TaggedAddresses",
    "GetterOptions",
    "GetterHeaders",
];

type Flat = BTreeMap<String, String>;

/// `flatmap.Flatten(obj, filter, true)`: primitive fields and string maps.
fn flat_prim(v: Option<&Value>, filter: &[&str]) -> Option<Flat> {
    let v = v.filter(|v| !v.is_null())?;
    let mut out = Flat::new();
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            if filter.contains(&k.as_str()) {
                continue;
            }
            if let Some(sv) = scalar(val) {
                out.insert(k.clone(), sv);
            } else if let (true, Some(m)) = (MAP_FIELDS.contains(&k.as_str()), val.as_object()) {
                for (mk, mv) in m {
                    if let Some(sv) = scalar(mv) {
                        out.insert(format!("{k}[{mk}]"), sv);
                    }
                }
            }
        }
    }
    Some(out)
}

/// `flatmap.Flatten(m, nil, false)` of an opaque map (task config).
fn flat_all(prefix: &str, v: &Value, out: &mut Flat) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}[{k}]")
                };
                flat_all(&p, val, out);
            }
        }
        Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                flat_all(&format!("{prefix}[{i}]"), val, out);
            }
        }
        Value::Null => {
            out.insert(prefix.to_string(), "nil".into());
        }
        other => {
            if let Some(s) = scalar(other) {
                out.insert(prefix.to_string(), s);
            }
        }
    }
}

fn field_diff(old: &str, new: &str, name: &str, contextual: bool) -> Option<FieldDiff> {
    let mut d = FieldDiff {
        kind: DiffType::None,
        name: name.to_string(),
        old: String::new(),
        new: String::new(),
        annotations: Vec::new(),
    };
    if old == new {
        if !contextual {
            return None;
        }
        d.old = old.into();
        d.new = new.into();
        return Some(d);
    }
    if old.is_empty() {
        d.kind = DiffType::Added;
        d.new = new.into();
    } else if new.is_empty() {
        d.kind = DiffType::Deleted;
        d.old = old.into();
    } else {
        d.kind = DiffType::Edited;
        d.old = old.into();
        d.new = new.into();
    }
    Some(d)
}

fn field_diffs(old: Option<&Flat>, new: Option<&Flat>, contextual: bool) -> Vec<FieldDiff> {
    let empty = Flat::new();
    let old = old.unwrap_or(&empty);
    let new = new.unwrap_or(&empty);
    let mut out = Vec::new();
    for (k, ov) in old {
        let nv = new.get(k).map(String::as_str).unwrap_or("");
        if let Some(d) = field_diff(ov, nv, k, contextual) {
            out.push(d);
        }
    }
    for (k, nv) in new {
        if !old.contains_key(k)
            && let Some(d) = field_diff("", nv, k, contextual)
        {
            out.push(d);
        }
    }
    out.sort_by(field_cmp);
    out
}

fn string_set_diff(
    old: &[Value],
    new: &[Value],
    name: &str,
    contextual: bool,
) -> Option<ObjectDiff> {
    let o: BTreeSet<String> = old.iter().filter_map(scalar).collect();
    let n: BTreeSet<String> = new.iter().filter_map(scalar).collect();
    if o == n && !contextual {
        return None;
    }
    let mut d = ObjectDiff {
        kind: DiffType::None,
        name: name.into(),
        fields: Vec::new(),
        objects: Vec::new(),
    };
    let (mut added, mut removed) = (false, false);
    for k in &o {
        if !n.contains(k) {
            d.fields.extend(field_diff(k, "", name, contextual));
            removed = true;
        } else if contextual {
            d.fields.extend(field_diff(k, k, name, contextual));
        }
    }
    for k in &n {
        if !o.contains(k) {
            d.fields.extend(field_diff("", k, name, contextual));
            added = true;
        }
    }
    d.fields.sort_by(field_cmp);
    d.kind = if added && removed {
        DiffType::Edited
    } else if added {
        DiffType::Added
    } else if removed {
        DiffType::Deleted
    } else {
        if d.fields.is_empty() {
            return None;
        }
        DiffType::None
    };
    Some(d)
}

fn nonnull(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// `primitiveObjectDiff`.
fn primitive_object_diff(
    old: Option<&Value>,
    new: Option<&Value>,
    filter: &[&str],
    name: &str,
    contextual: bool,
) -> Option<ObjectDiff> {
    let of = flat_prim(nonnull(old), filter);
    let nf = flat_prim(nonnull(new), filter);
    let fields = field_diffs(of.as_ref(), nf.as_ref(), contextual);
    let (mut added, mut deleted, mut edited) = (false, false, false);
    for f in &fields {
        match f.kind {
            DiffType::Edited => {
                edited = true;
                break;
            }
            DiffType::Deleted => deleted = true,
            DiffType::Added => added = true,
            DiffType::None => {}
        }
    }
    let kind = if edited || (added && deleted) {
        DiffType::Edited
    } else if added {
        DiffType::Added
    } else if deleted {
        DiffType::Deleted
    } else {
        return None;
    };
    Some(ObjectDiff {
        kind,
        name: name.into(),
        fields,
        objects: Vec::new(),
    })
}

fn key_of(v: &Value) -> String {
    serde_json::to_string(&super::json::sorted(v.clone())).unwrap_or_default()
}

/// `primitiveObjectSetDiff` (objects keyed by their content hash).
fn primitive_object_set_diff(
    old: &[Value],
    new: &[Value],
    filter: &[&str],
    name: &str,
    contextual: bool,
) -> Vec<ObjectDiff> {
    let o: BTreeMap<String, &Value> = old.iter().map(|v| (key_of(v), v)).collect();
    let n: BTreeMap<String, &Value> = new.iter().map(|v| (key_of(v), v)).collect();
    let mut out = Vec::new();
    for (k, ov) in &o {
        if let Some(d) =
            primitive_object_diff(Some(ov), n.get(k).copied(), filter, name, contextual)
        {
            out.push(d);
        }
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            out.extend(primitive_object_diff(
                None,
                Some(nv),
                filter,
                name,
                contextual,
            ));
        }
    }
    sort_objects(&mut out);
    out
}

/// The common shape of `xxxDiff(old, new *T, contextual)`: nil/added/deleted/edited
/// with primitive fields.
fn object_base(
    old: Option<&Value>,
    new: Option<&Value>,
    name: &str,
    filter: &[&str],
    contextual_fields: bool,
) -> Option<ObjectDiff> {
    let old = nonnull(old);
    let new = nonnull(new);
    if old == new {
        return None;
    }
    let kind = match (old, new) {
        (None, _) => DiffType::Added,
        (_, None) => DiffType::Deleted,
        _ => DiffType::Edited,
    };
    let fields = field_diffs(
        flat_prim(old, filter).as_ref(),
        flat_prim(new, filter).as_ref(),
        contextual_fields,
    );
    Some(ObjectDiff {
        kind,
        name: name.into(),
        fields,
        objects: Vec::new(),
    })
}

fn config_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let empty = Value::Object(Map::new());
    let o = nonnull(old).unwrap_or(&empty);
    let n = nonnull(new).unwrap_or(&empty);
    if o == n {
        return None;
    }
    let olen = o.as_object().map_or(0, Map::len);
    let nlen = n.as_object().map_or(0, Map::len);
    let kind = if olen == 0 {
        DiffType::Added
    } else if nlen == 0 {
        DiffType::Deleted
    } else {
        DiffType::Edited
    };
    let mut of = Flat::new();
    let mut nf = Flat::new();
    flat_all("", o, &mut of);
    flat_all("", n, &mut nf);
    Some(ObjectDiff {
        kind,
        name: "Config".into(),
        fields: field_diffs(Some(&of), Some(&nf), contextual),
        objects: Vec::new(),
    })
}

fn get<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| v.get(key)).filter(|x| !x.is_null())
}

fn slice<'a>(v: Option<&'a Value>, key: &str) -> &'a [Value] {
    get(v, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn upstream_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<ObjectDiff> {
    let idx = |u: &Value| format!("{}/{}", s(u, "Datacenter"), s(u, "DestinationName"));
    let o: BTreeMap<String, &Value> = old.iter().map(|u| (idx(u), u)).collect();
    let n: BTreeMap<String, &Value> = new.iter().map(|u| (idx(u), u)).collect();
    let one = |ov: Option<&Value>, nv: Option<&Value>| -> Option<ObjectDiff> {
        let mut d = object_base(ov, nv, "ConsulUpstreams", &[], contextual)?;
        if let Some(m) = primitive_object_diff(
            get(ov, "MeshGateway"),
            get(nv, "MeshGateway"),
            &[],
            "MeshGateway",
            contextual,
        ) {
            d.objects.push(m);
        }
        Some(d)
    };
    let mut out = Vec::new();
    for (k, ov) in &o {
        out.extend(one(Some(ov), n.get(k).copied()));
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            out.extend(one(None, Some(nv)));
        }
    }
    sort_objects(&mut out);
    out
}

fn connect_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "ConsulConnect", &[], contextual)?;
    let (old, new) = (nonnull(old), nonnull(new));
    // SidecarService.
    let (oss, nss) = (get(old, "SidecarService"), get(new, "SidecarService"));
    if let Some(mut sd) = object_base(oss, nss, "SidecarService", &[], contextual) {
        let (op, np) = (get(oss, "Proxy"), get(nss, "Proxy"));
        if let Some(mut pd) = object_base(op, np, "ConsulProxy", &[], contextual) {
            pd.objects.extend(upstream_diffs(
                slice(op, "Upstreams"),
                slice(np, "Upstreams"),
                contextual,
            ));
            pd.objects.extend(config_diff(
                get(op, "Config"),
                get(np, "Config"),
                contextual,
            ));
            sd.objects.push(pd);
        }
        d.objects.push(sd);
    }
    // SidecarTask.
    let (ost, nst) = (get(old, "SidecarTask"), get(new, "SidecarTask"));
    if let Some(mut td) = object_base(ost, nst, "SidecarTask", &[], false) {
        td.objects.extend(config_diff(
            get(ost, "Config"),
            get(nst, "Config"),
            contextual,
        ));
        if let Some(rd) = resources_diff(get(ost, "Resources"), get(nst, "Resources"), contextual) {
            td.objects.push(rd);
        }
        td.objects.extend(primitive_object_diff(
            get(ost, "LogConfig"),
            get(nst, "LogConfig"),
            &[],
            "LogConfig",
            contextual,
        ));
        d.objects.push(td);
    }
    // Gateway.
    if let Some(gd) = object_base(
        get(old, "Gateway"),
        get(new, "Gateway"),
        "Gateway",
        &[],
        contextual,
    ) {
        d.objects.push(gd);
    }
    Some(d)
}

fn check_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "Check", &[], contextual)?;
    let (oh, nh) = (get(old, "Header"), get(new, "Header"));
    if oh != nh {
        let mut of = Flat::new();
        let mut nf = Flat::new();
        if let Some(v) = oh {
            flat_all("", v, &mut of);
        }
        if let Some(v) = nh {
            flat_all("", v, &mut nf);
        }
        let kind = match (oh, nh) {
            (None, _) => DiffType::Added,
            (_, None) => DiffType::Deleted,
            _ => DiffType::Edited,
        };
        d.objects.push(ObjectDiff {
            kind,
            name: "Header".into(),
            fields: field_diffs(Some(&of), Some(&nf), contextual),
            objects: Vec::new(),
        });
    }
    if let Some(cr) = object_base(
        get(old, "CheckRestart"),
        get(new, "CheckRestart"),
        "CheckRestart",
        &[],
        contextual,
    ) {
        d.objects.push(cr);
    }
    Some(d)
}

fn check_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<ObjectDiff> {
    let o: BTreeMap<&str, &Value> = old.iter().map(|c| (s(c, "Name"), c)).collect();
    let n: BTreeMap<&str, &Value> = new.iter().map(|c| (s(c, "Name"), c)).collect();
    let mut out = Vec::new();
    for (k, ov) in &o {
        out.extend(check_diff(Some(ov), n.get(k).copied(), contextual));
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            out.extend(check_diff(None, Some(nv), contextual));
        }
    }
    sort_objects(&mut out);
    out
}

fn service_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "Service", &[], contextual)?;
    d.objects.extend(string_set_diff(
        slice(old, "CanaryTags"),
        slice(new, "CanaryTags"),
        "CanaryTags",
        contextual,
    ));
    d.objects.extend(string_set_diff(
        slice(old, "Tags"),
        slice(new, "Tags"),
        "Tags",
        contextual,
    ));
    d.objects.extend(check_diffs(
        slice(old, "Checks"),
        slice(new, "Checks"),
        contextual,
    ));
    d.objects.extend(connect_diff(
        get(old, "Connect"),
        get(new, "Connect"),
        contextual,
    ));
    Some(d)
}

fn service_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<ObjectDiff> {
    if old.len() == 1 && new.len() == 1 {
        return service_diff(Some(&old[0]), Some(&new[0]), contextual)
            .into_iter()
            .collect();
    }
    let mut new_matches: Vec<Option<usize>> = vec![None; new.len()];
    let mut out = Vec::new();
    for (oi, os) in old.iter().enumerate() {
        let mut best = 0;
        let mut found: Option<usize> = None;
        for (ni, ns) in new.iter().enumerate() {
            if new_matches[ni].is_some() {
                continue;
            }
            let mut score = 0;
            if ni == oi {
                score += 1;
            }
            if s(os, "PortLabel") == s(ns, "PortLabel") {
                score += 2;
            }
            if s(os, "Name") == s(ns, "Name") {
                score += 3;
            }
            if score > 2 && score > best {
                best = score;
                found = Some(ni);
            }
        }
        match found {
            None => out.extend(service_diff(Some(os), None, contextual)),
            Some(ni) => {
                new_matches[ni] = Some(oi);
                out.extend(service_diff(Some(os), Some(&new[ni]), contextual));
            }
        }
    }
    for (ni, m) in new_matches.iter().enumerate() {
        if m.is_none() {
            out.extend(service_diff(None, Some(&new[ni]), contextual));
        }
    }
    sort_objects(&mut out);
    out
}

fn port_diffs(old: &[Value], new: &[Value], dynamic: bool, contextual: bool) -> Vec<ObjectDiff> {
    let o: BTreeMap<&str, &Value> = old.iter().map(|p| (s(p, "Label"), p)).collect();
    let n: BTreeMap<&str, &Value> = new.iter().map(|p| (s(p, "Label"), p)).collect();
    let (filter, name): (&[&str], &str) = if dynamic {
        (&["Value"], "Dynamic Port")
    } else {
        (&[], "Static Port")
    };
    let mut out = Vec::new();
    for (k, ov) in &o {
        out.extend(primitive_object_diff(
            Some(ov),
            n.get(k).copied(),
            filter,
            name,
            contextual,
        ));
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            out.extend(primitive_object_diff(
                None,
                Some(nv),
                filter,
                name,
                contextual,
            ));
        }
    }
    sort_objects(&mut out);
    out
}

fn network_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "Network", &["Device", "CIDR", "IP"], contextual)?;
    d.objects.extend(port_diffs(
        slice(old, "ReservedPorts"),
        slice(new, "ReservedPorts"),
        false,
        contextual,
    ));
    d.objects.extend(port_diffs(
        slice(old, "DynamicPorts"),
        slice(new, "DynamicPorts"),
        true,
        contextual,
    ));
    let (od, nd) = (get(old, "DNS"), get(new, "DNS"));
    if od != nd {
        let flat = |v: Option<&Value>| -> Flat {
            let mut m = Flat::new();
            for k in ["Servers", "Searches", "Options"] {
                let list: Vec<String> = slice(v, k).iter().filter_map(scalar).collect();
                if !list.is_empty() {
                    m.insert(k.into(), list.join(","));
                }
            }
            m
        };
        let kind = match (od, nd) {
            (None, _) => DiffType::Added,
            (_, None) => DiffType::Deleted,
            _ => DiffType::Edited,
        };
        d.objects.push(ObjectDiff {
            kind,
            name: "DNS".into(),
            fields: field_diffs(Some(&flat(od)), Some(&flat(nd)), contextual),
            objects: Vec::new(),
        });
    }
    Some(d)
}

fn network_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<ObjectDiff> {
    let o: BTreeMap<String, &Value> = old.iter().map(|v| (key_of(v), v)).collect();
    let n: BTreeMap<String, &Value> = new.iter().map(|v| (key_of(v), v)).collect();
    let mut out = Vec::new();
    for (k, ov) in &o {
        if !n.contains_key(k) {
            out.extend(network_diff(Some(ov), None, contextual));
        }
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            out.extend(network_diff(None, Some(nv), contextual));
        }
    }
    sort_objects(&mut out);
    out
}

fn resources_diff(
    old: Option<&Value>,
    new: Option<&Value>,
    contextual: bool,
) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "Resources", &[], contextual)?;
    d.objects.extend(network_diffs(
        slice(old, "Networks"),
        slice(new, "Networks"),
        contextual,
    ));
    let o: BTreeMap<&str, &Value> = slice(old, "Devices")
        .iter()
        .map(|v| (s(v, "Name"), v))
        .collect();
    let n: BTreeMap<&str, &Value> = slice(new, "Devices")
        .iter()
        .map(|v| (s(v, "Name"), v))
        .collect();
    let mut devs = Vec::new();
    for (k, ov) in &o {
        devs.extend(object_base(
            Some(ov),
            n.get(k).copied(),
            "Device",
            &[],
            contextual,
        ));
    }
    for (k, nv) in &n {
        if !o.contains_key(k) {
            devs.extend(object_base(None, Some(nv), "Device", &[], contextual));
        }
    }
    sort_objects(&mut devs);
    d.objects.extend(devs);
    Some(d)
}

fn vault_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> Option<ObjectDiff> {
    let mut d = object_base(old, new, "Vault", &[], contextual)?;
    d.objects.extend(string_set_diff(
        slice(old, "Policies"),
        slice(new, "Policies"),
        "Policies",
        contextual,
    ));
    Some(d)
}

fn template_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<ObjectDiff> {
    let one = |o: Option<&Value>, n: Option<&Value>| -> Option<ObjectDiff> {
        let mut d = object_base(o, n, "Template", &[], contextual)?;
        for k in ["Uid", "Gid"] {
            let ov = get(o, k).and_then(scalar).unwrap_or_default();
            let nv = get(n, k).and_then(scalar).unwrap_or_default();
            if let Some(f) = field_diff(&ov, &nv, k, contextual) {
                d.fields.push(f);
            }
        }
        d.fields.sort_by(field_cmp);
        if let Some(w) = object_base(get(o, "Wait"), get(n, "Wait"), "Template", &[], contextual) {
            d.objects.push(w);
        }
        if let Some(cs) = object_base(
            get(o, "ChangeScript"),
            get(n, "ChangeScript"),
            "ChangeScript",
            &[],
            contextual,
        ) {
            d.objects.push(cs);
        }
        Some(d)
    };
    if old.len() == 1 && new.len() == 1 {
        return one(Some(&old[0]), Some(&new[0])).into_iter().collect();
    }
    let id = |t: &Value| s(t, "DestPath").to_string();
    let mut matched = vec![false; new.len()];
    let mut out = Vec::new();
    for ot in old {
        let pos = new
            .iter()
            .enumerate()
            .position(|(i, nt)| !matched[i] && id(nt) == id(ot));
        match pos {
            Some(i) => {
                matched[i] = true;
                out.extend(one(Some(ot), Some(&new[i])));
            }
            None => out.extend(one(Some(ot), None)),
        }
    }
    for (i, nt) in new.iter().enumerate() {
        if !matched[i] {
            out.extend(one(None, Some(nt)));
        }
    }
    sort_objects(&mut out);
    out
}

fn task_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> TaskDiff {
    let (old, new) = (nonnull(old), nonnull(new));
    let filter = ["Name", "Config"];
    let mut d = TaskDiff {
        kind: DiffType::None,
        name: String::new(),
        fields: Vec::new(),
        objects: Vec::new(),
        annotations: Vec::new(),
    };
    match (old, new) {
        (None, Some(n)) => {
            d.kind = DiffType::Added;
            d.name = s(n, "Name").into();
        }
        (Some(o), None) => {
            d.kind = DiffType::Deleted;
            d.name = s(o, "Name").into();
        }
        (Some(o), Some(n)) => {
            if o != n {
                d.kind = DiffType::Edited;
            }
            d.name = s(n, "Name").into();
        }
        (None, None) => return d,
    }
    d.fields = field_diffs(
        flat_prim(old, &filter).as_ref(),
        flat_prim(new, &filter).as_ref(),
        false,
    );
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Constraints"),
        slice(new, "Constraints"),
        &["str"],
        "Constraint",
        contextual,
    ));
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Affinities"),
        slice(new, "Affinities"),
        &["str"],
        "Affinity",
        contextual,
    ));
    d.objects.extend(config_diff(
        get(old, "Config"),
        get(new, "Config"),
        contextual,
    ));
    d.objects.extend(resources_diff(
        get(old, "Resources"),
        get(new, "Resources"),
        contextual,
    ));
    d.objects.extend(primitive_object_diff(
        get(old, "LogConfig"),
        get(new, "LogConfig"),
        &[],
        "LogConfig",
        contextual,
    ));
    d.objects.extend(primitive_object_diff(
        get(old, "DispatchPayload"),
        get(new, "DispatchPayload"),
        &[],
        "DispatchPayload",
        contextual,
    ));
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Artifacts"),
        slice(new, "Artifacts"),
        &[],
        "Artifact",
        contextual,
    ));
    d.objects.extend(service_diffs(
        slice(old, "Services"),
        slice(new, "Services"),
        contextual,
    ));
    d.objects
        .extend(vault_diff(get(old, "Vault"), get(new, "Vault"), contextual));
    d.objects.extend(template_diffs(
        slice(old, "Templates"),
        slice(new, "Templates"),
        contextual,
    ));
    d.objects.extend(object_base(
        get(old, "Identity"),
        get(new, "Identity"),
        "Identity",
        &[],
        contextual,
    ));
    d
}

fn task_diffs(old: &[Value], new: &[Value], contextual: bool) -> Vec<TaskDiff> {
    let o: BTreeMap<&str, &Value> = old.iter().map(|t| (s(t, "Name"), t)).collect();
    let n: BTreeMap<&str, &Value> = new.iter().map(|t| (s(t, "Name"), t)).collect();
    let mut out = Vec::new();
    for (k, ot) in &o {
        out.push(task_diff(Some(ot), n.get(k).copied(), contextual));
    }
    for (k, nt) in &n {
        if !o.contains_key(k) {
            out.push(task_diff(None, Some(nt), contextual));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn group_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> TaskGroupDiff {
    let (old, new) = (nonnull(old), nonnull(new));
    let mut d = TaskGroupDiff {
        kind: DiffType::None,
        name: String::new(),
        fields: Vec::new(),
        objects: Vec::new(),
        tasks: Vec::new(),
        updates: None,
    };
    match (old, new) {
        (None, Some(n)) => {
            d.kind = DiffType::Added;
            d.name = s(n, "Name").into();
        }
        (Some(o), None) => {
            d.kind = DiffType::Deleted;
            d.name = s(o, "Name").into();
        }
        (Some(o), Some(n)) => {
            if o != n {
                d.kind = DiffType::Edited;
            }
            d.name = s(n, "Name").into();
        }
        (None, None) => return d,
    }
    d.fields = field_diffs(
        flat_prim(old, &["Name"]).as_ref(),
        flat_prim(new, &["Name"]).as_ref(),
        false,
    );
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Constraints"),
        slice(new, "Constraints"),
        &["str"],
        "Constraint",
        contextual,
    ));
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Affinities"),
        slice(new, "Affinities"),
        &["str"],
        "Affinity",
        contextual,
    ));
    for (key, name) in [
        ("RestartPolicy", "RestartPolicy"),
        ("ReschedulePolicy", "ReschedulePolicy"),
        ("EphemeralDisk", "EphemeralDisk"),
        ("Consul", "Consul"),
    ] {
        d.objects.extend(primitive_object_diff(
            get(old, key),
            get(new, key),
            &[],
            name,
            contextual,
        ));
    }
    d.objects.extend(primitive_object_diff(
        get(old, "Update"),
        get(new, "Update"),
        &["Stagger"],
        "Update",
        contextual,
    ));
    d.objects.extend(network_diffs(
        slice(old, "Networks"),
        slice(new, "Networks"),
        contextual,
    ));
    d.objects.extend(object_base(
        get(old, "Scaling"),
        get(new, "Scaling"),
        "Scaling",
        &["CreateIndex", "ModifyIndex", "ID", "Type"],
        false,
    ));
    d.objects.extend(service_diffs(
        slice(old, "Services"),
        slice(new, "Services"),
        contextual,
    ));
    let (ov, nv) = (get(old, "Volumes"), get(new, "Volumes"));
    if ov != nv {
        let empty = Map::new();
        let om = ov.and_then(Value::as_object).unwrap_or(&empty);
        let nm = nv.and_then(Value::as_object).unwrap_or(&empty);
        for (k, o) in om {
            d.objects
                .extend(object_base(Some(o), nm.get(k), "Volume", &[], contextual));
        }
        for (k, n) in nm {
            if !om.contains_key(k) {
                d.objects
                    .extend(object_base(None, Some(n), "Volume", &[], contextual));
            }
        }
    }
    d.tasks = task_diffs(slice(old, "Tasks"), slice(new, "Tasks"), contextual);
    d
}

/// Fields of the job excluded from its diff.
const JOB_FILTER: [&str; 12] = [
    "ID",
    "Status",
    "StatusDescription",
    "Version",
    "Stable",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Update",
    "SubmitTime",
    "NomadTokenID",
    "VaultToken",
];

/// `Job.Diff(other, contextual)`; `old`/`new` may be absent (added/deleted job).
pub(crate) fn job_diff(old: Option<&Value>, new: Option<&Value>, contextual: bool) -> JobDiff {
    let (old, new) = (nonnull(old), nonnull(new));
    let mut d = JobDiff {
        kind: DiffType::None,
        id: String::new(),
        fields: Vec::new(),
        objects: Vec::new(),
        groups: Vec::new(),
    };
    match (old, new) {
        (None, None) => return d,
        (None, Some(n)) => {
            d.kind = DiffType::Added;
            d.id = s(n, "ID").into();
        }
        (Some(o), None) => {
            d.kind = DiffType::Deleted;
            d.id = s(o, "ID").into();
        }
        (Some(_), Some(n)) => d.id = s(n, "ID").into(),
    }
    d.fields = field_diffs(
        flat_prim(old, &JOB_FILTER).as_ref(),
        flat_prim(new, &JOB_FILTER).as_ref(),
        false,
    );
    if let Some(sd) = string_set_diff(
        slice(old, "Datacenters"),
        slice(new, "Datacenters"),
        "Datacenters",
        contextual,
    ) && sd.kind != DiffType::None
    {
        d.objects.push(sd);
    }
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Constraints"),
        slice(new, "Constraints"),
        &["str"],
        "Constraint",
        contextual,
    ));
    d.objects.extend(primitive_object_set_diff(
        slice(old, "Affinities"),
        slice(new, "Affinities"),
        &["str"],
        "Affinity",
        contextual,
    ));
    // Task groups.
    let o: BTreeMap<&str, &Value> = slice(old, "TaskGroups")
        .iter()
        .map(|g| (s(g, "Name"), g))
        .collect();
    let n: BTreeMap<&str, &Value> = slice(new, "TaskGroups")
        .iter()
        .map(|g| (s(g, "Name"), g))
        .collect();
    for (k, og) in &o {
        d.groups
            .push(group_diff(Some(og), n.get(k).copied(), contextual));
    }
    for (k, ng) in &n {
        if !o.contains_key(k) {
            d.groups.push(group_diff(None, Some(ng), contextual));
        }
    }
    d.groups.sort_by(|a, b| a.name.cmp(&b.name));
    d.objects.extend(primitive_object_diff(
        get(old, "Periodic"),
        get(new, "Periodic"),
        &[],
        "Periodic",
        contextual,
    ));
    if let Some(mut pd) = object_base(
        get(old, "ParameterizedJob"),
        get(new, "ParameterizedJob"),
        "ParameterizedJob",
        &[],
        contextual,
    ) {
        let (op, np) = (get(old, "ParameterizedJob"), get(new, "ParameterizedJob"));
        pd.objects.extend(string_set_diff(
            slice(op, "MetaOptional"),
            slice(np, "MetaOptional"),
            "MetaOptional",
            contextual,
        ));
        pd.objects.extend(string_set_diff(
            slice(op, "MetaRequired"),
            slice(np, "MetaRequired"),
            "MetaRequired",
            contextual,
        ));
        d.objects.push(pd);
    }
    if let Some(md) = object_base(
        get(old, "Multiregion"),
        get(new, "Multiregion"),
        "Multiregion",
        &[],
        contextual,
    ) {
        d.objects.push(md);
    }
    if d.kind == DiffType::None
        && (d.fields.iter().any(|f| f.kind != DiffType::None)
            || d.objects.iter().any(|o| o.kind != DiffType::None)
            || d.groups.iter().any(|g| g.kind != DiffType::None))
    {
        d.kind = DiffType::Edited;
    }
    d
}

/// Per-group scheduler decisions (`DesiredUpdates`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DesiredUpdates {
    pub(crate) ignore: u64,
    pub(crate) place: u64,
    pub(crate) migrate: u64,
    pub(crate) stop: u64,
    pub(crate) in_place_update: u64,
    pub(crate) destructive_update: u64,
    pub(crate) canary: u64,
}

impl DesiredUpdates {
    /// Wire form.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Canary": self.canary,
            "DestructiveUpdate": self.destructive_update,
            "Disconnect": 0,
            "Ignore": self.ignore,
            "InPlaceUpdate": self.in_place_update,
            "Migrate": self.migrate,
            "Place": self.place,
            "Preemptions": 0,
            "Reconnect": 0,
            "RescheduleLater": 0,
            "RescheduleNow": 0,
            "Stop": self.stop,
        })
    }
}

/// `scheduler.Annotate`.
pub(crate) fn annotate(diff: &mut JobDiff, desired: &BTreeMap<String, DesiredUpdates>) {
    for g in diff.groups.iter_mut() {
        if let Some(u) = desired.get(&g.name) {
            let mut m = BTreeMap::new();
            let mut put = |k: &str, v: u64| {
                if v != 0 {
                    m.insert(k.to_string(), v);
                }
            };
            put("ignore", u.ignore);
            put("create", u.place);
            put("migrate", u.migrate);
            put("destroy", u.stop);
            put("canary", u.canary);
            put("in-place update", u.in_place_update);
            put("create/destroy update", u.destructive_update);
            g.updates = Some(m);
        }
        if let Some(f) = g.fields.iter_mut().find(|f| f.name == "Count") {
            let o: i64 = f.old.parse().unwrap_or(0);
            let n: i64 = f.new.parse().unwrap_or(0);
            if o < n {
                f.annotations.push("forces create".into());
            } else if n < o {
                f.annotations.push("forces destroy".into());
            }
        }
        let parent = g.kind;
        for t in g.tasks.iter_mut() {
            annotate_task(t, parent);
        }
    }
}

fn annotate_task(t: &mut TaskDiff, parent: DiffType) {
    if t.kind == DiffType::None {
        return;
    }
    if matches!(parent, DiffType::Added | DiffType::Deleted) {
        if t.kind == DiffType::Added {
            t.annotations.push("forces create".into());
            return;
        } else if t.kind == DiffType::Deleted {
            t.annotations.push("forces destroy".into());
            return;
        }
    }
    let mut destructive = t.fields.iter().any(|f| f.name != "KillTimeout");
    if !destructive {
        for o in &t.objects {
            match o.name.as_str() {
                "Service" | "Constraint" | "Affinity" | "Spread" => {}
                "LogConfig" => {
                    if o.fields.iter().any(|f| f.name == "Disabled") {
                        destructive = true;
                        break;
                    }
                }
                _ => {
                    destructive = true;
                    break;
                }
            }
        }
    }
    t.annotations.push(
        if destructive {
            "forces create/destroy update"
        } else {
            "forces in-place update"
        }
        .into(),
    );
}

/// Whether a group change needs new allocations (`scheduler.tasksUpdated`,
/// approximated on canonical JSON): anything in the group's tasks, networks,
/// volumes, ephemeral disk or combined meta, but not count, update, services,
/// constraints or scaling.
pub(crate) fn tasks_updated(old_job: &Value, new_job: &Value, group: &str) -> bool {
    fn find<'a>(j: &'a Value, group: &str) -> Option<&'a Value> {
        arr(j, "TaskGroups").iter().find(|g| s(g, "Name") == group)
    }
    let (Some(a), Some(b)) = (find(old_job, group), find(new_job, group)) else {
        return true;
    };
    if old_job.get("Meta") != new_job.get("Meta") {
        return true;
    }
    for key in ["Networks", "Volumes", "EphemeralDisk", "Meta"] {
        if a.get(key) != b.get(key) {
            return true;
        }
    }
    // Tasks are compared without the fields whose changes are applied in place
    // (compared where they are, as JSON objects compare: order does not matter).
    const IN_PLACE: [&str; 7] = [
        "Services",
        "Constraints",
        "Affinities",
        "KillTimeout",
        "LogConfig",
        "Identity",
        "Identities",
    ];
    let same_task = |x: &Value, y: &Value| match (x.as_object(), y.as_object()) {
        (Some(x), Some(y)) => {
            let kept = |m: &serde_json::Map<String, Value>| {
                m.keys().filter(|k| !IN_PLACE.contains(&k.as_str())).count()
            };
            kept(x) == kept(y)
                && x.iter()
                    .filter(|(k, _)| !IN_PLACE.contains(&k.as_str()))
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => x == y,
    };
    let (ta, tb) = (arr(a, "Tasks"), arr(b, "Tasks"));
    if ta.len() != tb.len() || !ta.iter().zip(tb).all(|(x, y)| same_task(x, y)) {
        return true;
    }
    // Log config enabled/disabled is destructive.
    let disabled = |g: &Value| -> Vec<bool> {
        arr(g, "Tasks")
            .iter()
            .map(|t| t["LogConfig"]["Disabled"].as_bool().unwrap_or(false))
            .collect()
    };
    disabled(a) != disabled(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn job(task: Value) -> Value {
        json!({"ID": "j", "Meta": {"a": "1"}, "TaskGroups": [
            {"Name": "g", "Networks": [], "Tasks": [task]},
            {"Name": "other", "Tasks": []}
        ]})
    }

    #[test]
    fn only_changes_outside_the_in_place_fields_replace_allocations() {
        let base = json!({"Name": "app", "Driver": "docker", "Config": {"image": "a:1"},
            "Services": [{"Name": "s"}], "KillTimeout": 5, "LogConfig": {"MaxFiles": 10, "Disabled": false}});
        let same = job(base.clone());
        assert!(!tasks_updated(&same, &job(base.clone()), "g"));
        // Key order does not matter.
        let reordered = json!({"LogConfig": {"Disabled": false, "MaxFiles": 10}, "KillTimeout": 5,
            "Services": [{"Name": "s"}], "Config": {"image": "a:1"}, "Driver": "docker", "Name": "app"});
        assert!(!tasks_updated(&same, &job(reordered), "g"));
        // In-place fields.
        let mut t = base.clone();
        t["Services"] = json!([{"Name": "s2"}]);
        t["KillTimeout"] = json!(30);
        t["LogConfig"]["MaxFiles"] = json!(3);
        t["Identity"] = json!({"Name": "x"});
        assert!(!tasks_updated(&same, &job(t), "g"));
        // Destructive changes.
        let mut t = base.clone();
        t["Config"]["image"] = json!("a:2");
        assert!(tasks_updated(&same, &job(t), "g"));
        let mut t = base.clone();
        t["LogConfig"]["Disabled"] = json!(true);
        assert!(tasks_updated(&same, &job(t), "g"));
        let mut t = base.clone();
        t.as_object_mut().unwrap().remove("Config");
        assert!(tasks_updated(&same, &job(t), "g"));
        let mut two = job(base.clone());
        two["TaskGroups"][0]["Tasks"] = json!([base.clone(), base.clone()]);
        assert!(tasks_updated(&same, &two, "g"));
        let mut meta = job(base.clone());
        meta["Meta"] = json!({"a": "2"});
        assert!(tasks_updated(&same, &meta, "g"));
        assert!(tasks_updated(&same, &job(base), "missing"));
    }
}
