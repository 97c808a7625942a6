//! `PUT|POST /v1/jobs/parse`: HCL2 job specifications to API job JSON (the
//! jobspec2 block and attribute names Steward and its users write).

use super::json::Obj;
use crate::blocking::parse_go_duration;
use serde_json::{Map, Value, json};

/// Keys whose string values are Go durations, converted to nanoseconds.
const DURATIONS: &[&str] = &[
    "Interval",
    "Timeout",
    "KillTimeout",
    "ShutdownDelay",
    "MinHealthyTime",
    "HealthyDeadline",
    "ProgressDeadline",
    "Stagger",
    "Delay",
    "MaxDelay",
    "Splay",
    "Grace",
    "TTL",
    "StopAfterClientDisconnect",
    "MaxClientDisconnect",
    "VaultGrace",
];

fn pascal(s: &str) -> String {
    s.split('_')
        .map(|p| match p {
            "id" => "ID".to_string(),
            "tls" => "TLS".to_string(),
            "grpc" => "GRPC".to_string(),
            "tcp" => "TCP".to_string(),
            "dns" => "DNS".to_string(),
            "cpu" => "CPU".to_string(),
            "ttl" => "TTL".to_string(),
            "mb" => "MB".to_string(),
            _ => {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect()
}

/// The JSON field an HCL attribute maps to inside a block of `kind`.
fn attr_name(kind: &str, name: &str) -> String {
    let special = match (kind, name) {
        ("periodic", "cron") => "Spec",
        ("periodic", "crons") => "Specs",
        ("constraint" | "affinity", "attribute") => "LTarget",
        ("constraint" | "affinity", "value") => "RTarget",
        ("constraint" | "affinity", "operator") => "Operand",
        ("service", "port") | ("check", "port") => "PortLabel",
        ("service", "task") | ("check", "task") => "TaskName",
        ("resources", "memory") => "MemoryMB",
        ("resources", "memory_max") => "MemoryMaxMB",
        ("resources", "disk") => "DiskMB",
        ("resources", "secrets") => "SecretsMB",
        ("resources", "iops") => "IOPS",
        ("logs", "max_file_size") => "MaxFileSizeMB",
        ("ephemeral_disk", "size") => "SizeMB",
        ("template", "data") => "EmbeddedTmpl",
        ("template", "destination") => "DestPath",
        ("template", "source") => "SourcePath",
        ("template", "env") => "Envvars",
        ("template", "left_delimiter") => "LeftDelim",
        ("template", "right_delimiter") => "RightDelim",
        ("template", "error_on_missing_key") => "ErrMissingKey",
        ("artifact", "source") => "GetterSource",
        ("artifact", "destination") => "RelativeDest",
        ("artifact", "mode") => "GetterMode",
        ("artifact", "insecure") => "GetterInsecure",
        ("identity", "aud") => "Audience",
        ("port", "static") => "Value",
        _ => "",
    };
    if special.is_empty() {
        pascal(name)
    } else {
        special.to_string()
    }
}

fn expr_json(e: &hcl::Expression) -> Value {
    let v: hcl::Value = e.clone().into();
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A raw block (driver config, proxy config): attributes as they are, nested
/// blocks as lists of objects (jobspec2 semantics).
fn raw(body: &hcl::Body) -> Value {
    let mut out = Map::new();
    for a in body.attributes() {
        out.insert(a.key().to_string(), expr_json(a.expr()));
    }
    for b in body.blocks() {
        let mut inner = raw(b.body());
        if let (Some(label), Some(o)) = (b.labels().first(), inner.as_object_mut()) {
            o.insert("name".into(), json!(label.as_str()));
        }
        let entry = out
            .entry(b.identifier().to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = entry.as_array_mut() {
            list.push(inner);
        }
    }
    Value::Object(out)
}

/// A `map[string]string` block or attribute value.
fn string_map(body: &hcl::Body) -> Value {
    let mut out = Map::new();
    for a in body.attributes() {
        let v = match expr_json(a.expr()) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.insert(a.key().to_string(), Value::String(v));
    }
    Value::Object(out)
}

fn push(o: &mut Obj, key: &str, v: Value) {
    let entry = o
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = entry.as_array_mut() {
        list.push(v);
    }
}

fn block(kind: &str, body: &hcl::Body) -> Result<Obj, String> {
    let mut o = Obj::new();
    for a in body.attributes() {
        let key = attr_name(kind, a.key());
        let mut v = expr_json(a.expr());
        if DURATIONS.contains(&key.as_str())
            && let Value::String(s) = &v
        {
            let d = parse_go_duration(s)
                .ok_or_else(|| format!("{kind}.{}: invalid duration {s:?}", a.key()))?;
            v = json!(d.as_nanos() as u64);
        }
        if matches!(kind, "constraint" | "affinity")
            && matches!(a.key(), "distinct_hosts" | "distinct_property")
        {
            o.insert("Operand".into(), json!(a.key()));
            if a.key() == "distinct_property" {
                o.insert("LTarget".into(), v);
            }
            continue;
        }
        if matches!(key.as_str(), "Meta" | "Env")
            && let Value::Object(m) = &v
        {
            let m: Map<String, Value> = m
                .iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        Value::String(
                            x.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| x.to_string()),
                        ),
                    )
                })
                .collect();
            v = Value::Object(m);
        }
        o.insert(key, v);
    }
    if kind == "periodic" {
        o.entry("SpecType").or_insert(json!("cron"));
    }
    if matches!(kind, "constraint" | "affinity") {
        o.entry("Operand").or_insert(json!("="));
    }
    for b in body.blocks() {
        let id = b.identifier();
        let label = b.labels().first().map(|l| l.as_str().to_string());
        let named = |mut m: Obj| -> Value {
            if let Some(l) = &label {
                m.insert("Name".into(), json!(l));
            }
            Value::Object(m)
        };
        match (kind, id) {
            (_, "meta") => {
                o.insert("Meta".into(), string_map(b.body()));
            }
            (_, "env") => {
                o.insert("Env".into(), string_map(b.body()));
            }
            ("service", "canary_meta") => {
                o.insert("CanaryMeta".into(), string_map(b.body()));
            }
            ("service", "tagged_addresses") => {
                o.insert("TaggedAddresses".into(), string_map(b.body()));
            }
            ("task" | "sidecar_task", "config") | ("proxy", "config") | ("upstreams", "config") => {
                o.insert("Config".into(), raw(b.body()));
            }
            ("connect", "gateway") | ("group", "scaling") | ("task", "csi_plugin") => {
                o.insert(pascal(id), raw(b.body()));
            }
            ("job", "group") => push(&mut o, "TaskGroups", named(block("group", b.body())?)),
            ("group", "task") => push(&mut o, "Tasks", named(block("task", b.body())?)),
            ("group" | "task", "service") => push(
                &mut o,
                "Services",
                Value::Object(block("service", b.body())?),
            ),
            ("group", "network") => push(
                &mut o,
                "Networks",
                Value::Object(block("network", b.body())?),
            ),
            ("network", "port") => {
                let mut p = block("port", b.body())?;
                p.insert("Label".into(), json!(label.clone().unwrap_or_default()));
                let list = if p.get("Value").is_some_and(|v| v.as_i64().unwrap_or(0) > 0) {
                    "ReservedPorts"
                } else {
                    "DynamicPorts"
                };
                push(&mut o, list, Value::Object(p));
            }
            ("group", "volume") => {
                let mut v = block("volume", b.body())?;
                v.insert("Name".into(), json!(label.clone().unwrap_or_default()));
                let vols = o.entry("Volumes").or_insert_with(|| json!({}));
                if let Some(m) = vols.as_object_mut() {
                    m.insert(label.clone().unwrap_or_default(), Value::Object(v));
                }
            }
            (_, "constraint") => push(
                &mut o,
                "Constraints",
                Value::Object(block("constraint", b.body())?),
            ),
            (_, "affinity") => push(
                &mut o,
                "Affinities",
                Value::Object(block("affinity", b.body())?),
            ),
            (_, "spread") => {
                let mut sp = Obj::new();
                for a in b.body().attributes() {
                    sp.insert(attr_name("spread", a.key()), expr_json(a.expr()));
                }
                for t in b.body().blocks().filter(|t| t.identifier() == "target") {
                    let mut tv = block("target", t.body())?;
                    tv.insert(
                        "Value".into(),
                        json!(t.labels().first().map(|l| l.as_str()).unwrap_or("")),
                    );
                    push(&mut sp, "SpreadTarget", Value::Object(tv));
                }
                push(&mut o, "Spreads", Value::Object(sp));
            }
            ("service", "check") => {
                push(&mut o, "Checks", Value::Object(block("check", b.body())?))
            }
            ("check", "header") => {
                let mut h = Map::new();
                for a in b.body().attributes() {
                    h.insert(a.key().to_string(), expr_json(a.expr()));
                }
                o.insert("Header".into(), Value::Object(h));
            }
            ("proxy", "upstreams") => push(
                &mut o,
                "Upstreams",
                Value::Object(block("upstreams", b.body())?),
            ),
            ("proxy", "expose") => {
                o.insert("ExposeConfig".into(), raw(b.body()));
            }
            ("task", "template") => push(
                &mut o,
                "Templates",
                Value::Object(block("template", b.body())?),
            ),
            ("task", "artifact") => push(
                &mut o,
                "Artifacts",
                Value::Object(block("artifact", b.body())?),
            ),
            ("artifact", "options") => {
                o.insert("GetterOptions".into(), string_map(b.body()));
            }
            ("artifact", "headers") => {
                o.insert("GetterHeaders".into(), string_map(b.body()));
            }
            ("task", "volume_mount") => push(
                &mut o,
                "VolumeMounts",
                Value::Object(block("volume_mount", b.body())?),
            ),
            ("task", "identity") => {
                let id_block = block("identity", b.body())?;
                let name = id_block
                    .get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                if name == "default" {
                    o.insert("Identity".into(), Value::Object(id_block));
                } else {
                    push(&mut o, "Identities", Value::Object(id_block));
                }
            }
            ("resources", "device") => push(&mut o, "Devices", named(block("device", b.body())?)),
            (_, "logs") => {
                o.insert("LogConfig".into(), Value::Object(block("logs", b.body())?));
            }
            (_, "restart") => {
                o.insert(
                    "RestartPolicy".into(),
                    Value::Object(block("restart", b.body())?),
                );
            }
            ("group", "reschedule") => {
                o.insert(
                    "ReschedulePolicy".into(),
                    Value::Object(block("reschedule", b.body())?),
                );
            }
            ("job", "parameterized") => {
                o.insert(
                    "ParameterizedJob".into(),
                    Value::Object(block("parameterized", b.body())?),
                );
            }
            ("proxy", "transparent_proxy") => {
                o.insert("TransparentProxy".into(), raw(b.body()));
            }
            (_, other) => {
                o.insert(pascal(other), Value::Object(block(other, b.body())?));
            }
        }
    }
    Ok(o)
}

/// Parses a job specification into API job JSON.
///
/// # Errors
/// A parse error in the `input.hcl:<position>: <message>` style.
pub(crate) fn parse_job(text: &str) -> Result<Value, String> {
    let body =
        hcl::parse(text).map_err(|e| format!("input.hcl:{}", e.to_string().replace('\n', " ")))?;
    let Some(job) = body.blocks().find(|b| b.identifier() == "job") else {
        return Err("input.hcl:1,1-1: Missing job block; A job block is required".into());
    };
    let id = job.labels().first().map(|l| l.as_str().to_string()).ok_or(
        "input.hcl:1,1-4: Missing name for job; All job blocks must have 1 labels (name).",
    )?;
    let mut o = block("job", job.body())?;
    o.insert("ID".into(), json!(id));
    o.entry("Name").or_insert(json!(id));
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jobspec_blocks_map_to_api_fields() {
        let j = parse_job(
            r#"
job "web" {
  datacenters = ["dc1"]
  meta {
    team = "a"
  }
  update {
    max_parallel     = 2
    min_healthy_time = "10s"
  }
  group "g" {
    count = 2
    network {
      mode = "bridge"
      port "http" { to = 8080 }
    }
    service {
      name = "web"
      port = "http"
      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }
    task "app" {
      driver = "docker"
      config {
        image = "nginx"
      }
      resources {
        cpu    = 200
        memory = 256
      }
      vault {
        role = "web"
      }
    }
  }
}
"#,
        )
        .unwrap();
        assert_eq!(j["ID"], "web");
        assert_eq!(j["Update"]["MinHealthyTime"], 10_000_000_000u64);
        let g = &j["TaskGroups"][0];
        assert_eq!(g["Name"], "g");
        assert_eq!(g["Networks"][0]["DynamicPorts"][0]["Label"], "http");
        assert_eq!(g["Networks"][0]["DynamicPorts"][0]["To"], 8080);
        assert_eq!(g["Services"][0]["PortLabel"], "http");
        assert_eq!(g["Services"][0]["Checks"][0]["Interval"], 10_000_000_000u64);
        assert_eq!(g["Tasks"][0]["Resources"]["MemoryMB"], 256);
        assert_eq!(g["Tasks"][0]["Vault"]["Role"], "web");
        assert!(parse_job("job \"x\" {\n  group \"g\" {\n    count = \n  }\n").is_err());
    }
}
