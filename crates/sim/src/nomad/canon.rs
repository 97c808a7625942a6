//! Canonicalisation: what the agent (`api.Job.Canonicalize`, `ApiJobToStructJob`) and
//! the server's admission mutators (canonicalize, connect, implied constraints,
//! implicit identities) do to a submitted job before it is stored (reference §6.6).

use super::json::jv as json;
use super::json::{Dec, Obj, opt_obj, opt_strs};
use serde_json::Value;

const SEC: i64 = 1_000_000_000;

/// Server-side settings that influence canonicalisation.
#[derive(Debug, Clone)]
pub(crate) struct CanonOptions {
    /// Namespace the job goes to (query beats body beats job).
    pub namespace: String,
    /// Region when the job does not say.
    pub region: String,
    /// `vault.default_identity` configured on the server.
    pub vault_identity: bool,
    /// `consul.service_identity` configured on the server.
    pub consul_service_identity: bool,
    /// `consul.task_identity` configured on the server.
    pub consul_task_identity: bool,
    /// Only the agent's API canonicalisation (`/v1/jobs/parse?canonicalize`): no
    /// server admission hooks, the job-level update block kept whole.
    pub api_form: bool,
}

fn dur(d: &mut Dec, o: &Value, key: &str, path: &str, default: i64) -> i64 {
    d.int(o, key, path, default)
}

fn constraint(d: &mut Dec, c: &Value, path: &str) -> Value {
    json!({
        "LTarget": d.str(c, "LTarget", path, ""),
        "Operand": d.str(c, "Operand", path, ""),
        "RTarget": d.str(c, "RTarget", path, ""),
    })
}

fn constraints(d: &mut Dec, o: &Value, path: &str) -> Value {
    let list: Vec<Value> = d
        .objs(o, "Constraints", path)
        .into_iter()
        .map(|c| constraint(d, c, &format!("{path}.Constraints")))
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

fn affinities(d: &mut Dec, o: &Value, path: &str) -> Value {
    let list: Vec<Value> = d
        .objs(o, "Affinities", path)
        .into_iter()
        .map(|a| {
            let p = format!("{path}.Affinities");
            json!({
                "LTarget": d.str(a, "LTarget", &p, ""),
                "Operand": d.str(a, "Operand", &p, "="),
                "RTarget": d.str(a, "RTarget", &p, ""),
                "Weight": d.int(a, "Weight", &p, 50),
            })
        })
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

fn spreads(d: &mut Dec, o: &Value, path: &str) -> Value {
    let list: Vec<Value> = d
        .objs(o, "Spreads", path)
        .into_iter()
        .map(|sp| {
            let p = format!("{path}.Spreads");
            let targets: Vec<Value> = d
                .objs(sp, "SpreadTarget", &p)
                .into_iter()
                .map(|t| {
                    json!({
                        "Percent": d.int(t, "Percent", &p, 0),
                        "Value": d.str(t, "Value", &p, ""),
                    })
                })
                .collect();
            json!({
                "Attribute": d.str(sp, "Attribute", &p, ""),
                "SpreadTarget": if targets.is_empty() { Value::Null } else { Value::Array(targets) },
                "Weight": d.int(sp, "Weight", &p, 50),
            })
        })
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

/// The api `UpdateStrategy` with every field optional.
#[derive(Debug, Clone, Default)]
struct Update {
    stagger: Option<i64>,
    max_parallel: Option<i64>,
    health_check: Option<String>,
    min_healthy_time: Option<i64>,
    healthy_deadline: Option<i64>,
    progress_deadline: Option<i64>,
    auto_revert: Option<bool>,
    auto_promote: Option<bool>,
    canary: Option<i64>,
}

impl Update {
    fn parse(d: &mut Dec, u: &Value, path: &str) -> Update {
        Update {
            stagger: d.int_opt(u, "Stagger", path),
            max_parallel: d.int_opt(u, "MaxParallel", path),
            health_check: d.str_opt(u, "HealthCheck", path),
            min_healthy_time: d.int_opt(u, "MinHealthyTime", path),
            healthy_deadline: d.int_opt(u, "HealthyDeadline", path),
            progress_deadline: d.int_opt(u, "ProgressDeadline", path),
            auto_revert: d.bool_opt(u, "AutoRevert", path),
            auto_promote: d.bool_opt(u, "AutoPromote", path),
            canary: d.int_opt(u, "Canary", path),
        }
    }

    fn merge(&mut self, o: &Update) {
        macro_rules! m {
            ($f:ident) => {
                if o.$f.is_some() {
                    self.$f = o.$f.clone();
                }
            };
        }
        m!(stagger);
        m!(max_parallel);
        m!(health_check);
        m!(min_healthy_time);
        m!(healthy_deadline);
        m!(progress_deadline);
        m!(auto_revert);
        m!(auto_promote);
        m!(canary);
    }

    fn canonicalize(&mut self) {
        self.stagger.get_or_insert(30 * SEC);
        self.max_parallel.get_or_insert(1);
        self.health_check.get_or_insert_with(|| "checks".into());
        self.min_healthy_time.get_or_insert(10 * SEC);
        self.healthy_deadline.get_or_insert(300 * SEC);
        self.progress_deadline.get_or_insert(600 * SEC);
        self.auto_revert.get_or_insert(false);
        self.auto_promote.get_or_insert(false);
        self.canary.get_or_insert(0);
    }

    fn empty(&self) -> bool {
        self.stagger.unwrap_or(0) == 0
            && self.max_parallel.unwrap_or(0) == 0
            && self.health_check.as_deref().unwrap_or("").is_empty()
            && self.min_healthy_time.unwrap_or(0) == 0
            && self.healthy_deadline.unwrap_or(0) == 0
            && self.progress_deadline.unwrap_or(0) == 0
            && !self.auto_revert.unwrap_or(false)
            && !self.auto_promote.unwrap_or(false)
            && self.canary.unwrap_or(0) == 0
    }

    fn to_json(&self) -> Value {
        json!({
            "AutoPromote": self.auto_promote.unwrap_or(false),
            "AutoRevert": self.auto_revert.unwrap_or(false),
            "Canary": self.canary.unwrap_or(0),
            "HealthCheck": self.health_check.clone().unwrap_or_default(),
            "HealthyDeadline": self.healthy_deadline.unwrap_or(0),
            "MaxParallel": self.max_parallel.unwrap_or(0),
            "MinHealthyTime": self.min_healthy_time.unwrap_or(0),
            "ProgressDeadline": self.progress_deadline.unwrap_or(0),
            "Stagger": self.stagger.unwrap_or(0),
        })
    }
}

fn zero_update() -> Value {
    Update::default().to_json()
}

/// Generic "optional fields merged over defaults" for flat policy objects.
fn merged(d: &mut Dec, base: Value, over: Option<&Value>, path: &str) -> Value {
    let mut out = base;
    if let (Some(over), Some(obj)) = (over, out.as_object_mut()) {
        let keys: Vec<String> = obj.keys().cloned().collect();
        for k in keys {
            if let Some(v) = d.get(over, &k) {
                let ok = matches!(
                    (&obj[&k], v),
                    (Value::Number(_), Value::Number(_))
                        | (Value::Bool(_), Value::Bool(_))
                        | (Value::String(_), Value::String(_))
                        | (Value::Null, _)
                );
                if ok {
                    obj.insert(k, v.clone());
                } else {
                    let _ = d.str_opt(&json!({ k.clone(): v.clone() }), &k, path);
                }
            }
        }
    }
    out
}

fn restart_default(job_type: &str) -> Value {
    match job_type {
        "service" | "system" => json!({
            "Attempts": 2, "Delay": 15 * SEC, "Interval": 1800 * SEC, "Mode": "fail", "RenderTemplates": false,
        }),
        _ => json!({
            "Attempts": 3, "Delay": 15 * SEC, "Interval": 86400 * SEC, "Mode": "fail", "RenderTemplates": false,
        }),
    }
}

fn reschedule_default(job_type: &str) -> Value {
    match job_type {
        "service" => json!({
            "Attempts": 0, "Delay": 30 * SEC, "DelayFunction": "exponential", "Interval": 0,
            "MaxDelay": 3600 * SEC, "Unlimited": true,
        }),
        "batch" => json!({
            "Attempts": 1, "Delay": 5 * SEC, "DelayFunction": "constant", "Interval": 86400 * SEC,
            "MaxDelay": 0, "Unlimited": false,
        }),
        _ => json!({
            "Attempts": 0, "Delay": 0, "DelayFunction": "", "Interval": 0, "MaxDelay": 0, "Unlimited": false,
        }),
    }
}

fn migrate_default() -> Value {
    json!({
        "HealthCheck": "checks", "HealthyDeadline": 300 * SEC, "MaxParallel": 1, "MinHealthyTime": 10 * SEC,
    })
}

fn log_config(d: &mut Dec, l: Option<&Value>, path: &str, files: i64, size: i64) -> Value {
    let base = json!({ "Disabled": false, "MaxFileSizeMB": size, "MaxFiles": files });
    merged(d, base, l, path)
}

fn resources(d: &mut Dec, r: Option<&Value>, path: &str) -> Value {
    let empty = json!({});
    let r = r.unwrap_or(&empty);
    let cores = d.int_opt(r, "Cores", path);
    let mut cpu = d.int_opt(r, "CPU", path);
    if cores.is_none() && cpu.is_none() {
        cpu = Some(100);
    }
    let devices: Vec<Value> = d
        .objs(r, "Devices", path)
        .into_iter()
        .map(|dev| {
            let p = format!("{path}.Devices");
            json!({
                "Affinities": affinities(d, dev, &p),
                "Constraints": constraints(d, dev, &p),
                "Count": d.int(dev, "Count", &p, 1),
                "Name": d.str(dev, "Name", &p, ""),
            })
        })
        .collect();
    json!({
        "CPU": cpu.unwrap_or(0),
        "Cores": cores.unwrap_or(0),
        "Devices": if devices.is_empty() { Value::Null } else { Value::Array(devices) },
        "DiskMB": d.int(r, "DiskMB", path, 0),
        "IOPS": d.int(r, "IOPS", path, 0),
        "MemoryMB": d.int(r, "MemoryMB", path, 300),
        "MemoryMaxMB": d.int(r, "MemoryMaxMB", path, 0),
        "NUMA": d.get(r, "NUMA").cloned().unwrap_or(Value::Null),
        "Networks": Value::Null,
        "SecretsMB": d.int(r, "SecretsMB", path, 0),
    })
}

fn port(d: &mut Dec, p: &Value, path: &str) -> Value {
    let host_network = d.str(p, "HostNetwork", path, "");
    json!({
        "HostNetwork": if host_network.is_empty() { "default".to_string() } else { host_network },
        "IgnoreCollision": d.bool(p, "IgnoreCollision", path, false),
        "Label": d.str(p, "Label", path, ""),
        "To": d.int(p, "To", path, 0),
        "Value": d.int(p, "Value", path, 0),
    })
}

fn network(d: &mut Dec, n: &Value, path: &str) -> Value {
    let dynamic: Vec<Value> = d
        .objs(n, "DynamicPorts", path)
        .into_iter()
        .map(|p| port(d, p, &format!("{path}.DynamicPorts")))
        .collect();
    let reserved: Vec<Value> = d
        .objs(n, "ReservedPorts", path)
        .into_iter()
        .map(|p| port(d, p, &format!("{path}.ReservedPorts")))
        .collect();
    let dns = d.obj(n, "DNS", path).map(|dns| {
        json!({
            "Options": opt_strs(d.strs(dns, "Options", path)),
            "Searches": opt_strs(d.strs(dns, "Searches", path)),
            "Servers": opt_strs(d.strs(dns, "Servers", path)),
        })
    });
    json!({
        "CIDR": d.str(n, "CIDR", path, ""),
        "DNS": dns.unwrap_or(Value::Null),
        "Device": d.str(n, "Device", path, ""),
        "DynamicPorts": if dynamic.is_empty() { Value::Null } else { Value::Array(dynamic) },
        "Hostname": d.str(n, "Hostname", path, ""),
        "IP": d.str(n, "IP", path, ""),
        "MBits": d.int(n, "MBits", path, 0),
        "Mode": d.str(n, "Mode", path, ""),
        "ReservedPorts": if reserved.is_empty() { Value::Null } else { Value::Array(reserved) },
    })
}

fn check(d: &mut Dec, c: &Value, path: &str, on_update: &str, restart: Option<&Value>) -> Value {
    let own_restart = d.obj(c, "CheckRestart", path);
    let check_restart = match (restart, own_restart) {
        (None, None) => Value::Null,
        (base, over) => {
            let b = json!({ "Grace": 0, "IgnoreWarnings": false, "Limit": 0 });
            let b = merged(d, b, base, path);
            merged(d, b, over, path)
        }
    };
    let header = match d.get(c, "Header") {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => Value::Null,
    };
    let check_on_update = d.str(c, "OnUpdate", path, "");
    json!({
        "AddressMode": d.str(c, "AddressMode", path, ""),
        "Args": opt_strs(d.strs(c, "Args", path)),
        "Body": d.str(c, "Body", path, ""),
        "CheckRestart": check_restart,
        "Command": d.str(c, "Command", path, ""),
        "Expose": d.bool(c, "Expose", path, false),
        "FailuresBeforeCritical": d.int(c, "FailuresBeforeCritical", path, 0).max(0),
        "FailuresBeforeWarning": d.int(c, "FailuresBeforeWarning", path, 0).max(0),
        "GRPCService": d.str(c, "GRPCService", path, ""),
        "GRPCUseTLS": d.bool(c, "GRPCUseTLS", path, false),
        "Header": header,
        "InitialStatus": d.str(c, "InitialStatus", path, ""),
        "Interval": dur(d, c, "Interval", path, 0),
        "Method": d.str(c, "Method", path, ""),
        "Name": d.str(c, "Name", path, ""),
        "OnUpdate": if check_on_update.is_empty() { on_update.to_string() } else { check_on_update },
        "Path": d.str(c, "Path", path, ""),
        "PortLabel": d.str(c, "PortLabel", path, ""),
        "Protocol": d.str(c, "Protocol", path, ""),
        "SuccessBeforePassing": d.int(c, "SuccessBeforePassing", path, 0).max(0),
        "TLSServerName": d.str(c, "TLSServerName", path, ""),
        "TLSSkipVerify": d.bool(c, "TLSSkipVerify", path, false),
        "TaskName": d.str(c, "TaskName", path, ""),
        "Timeout": dur(d, c, "Timeout", path, 0),
        "Type": d.str(c, "Type", path, ""),
    })
}

fn upstream(d: &mut Dec, u: &Value, path: &str) -> Value {
    json!({
        "Config": d.obj(u, "Config", path).cloned().unwrap_or(Value::Null),
        "Datacenter": d.str(u, "Datacenter", path, ""),
        "DestinationName": d.str(u, "DestinationName", path, ""),
        "DestinationNamespace": d.str(u, "DestinationNamespace", path, ""),
        "DestinationPartition": d.str(u, "DestinationPartition", path, ""),
        "DestinationPeer": d.str(u, "DestinationPeer", path, ""),
        "DestinationType": d.str(u, "DestinationType", path, ""),
        "LocalBindAddress": d.str(u, "LocalBindAddress", path, ""),
        "LocalBindPort": d.int(u, "LocalBindPort", path, 0),
        "LocalBindSocketMode": d.str(u, "LocalBindSocketMode", path, ""),
        "LocalBindSocketPath": d.str(u, "LocalBindSocketPath", path, ""),
        "MeshGateway": d.obj(u, "MeshGateway", path).map(|m| json!({"Mode": d.str(m, "Mode", path, "")})).unwrap_or(Value::Null),
    })
}

fn connect(d: &mut Dec, c: Option<&Value>, path: &str) -> Value {
    let Some(c) = c else { return Value::Null };
    let sidecar_service = d.obj(c, "SidecarService", path).map(|ss| {
        let p = format!("{path}.SidecarService");
        let proxy = d.obj(ss, "Proxy", &p).map(|px| {
            let pp = format!("{p}.Proxy");
            let ups: Vec<Value> = d
                .objs(px, "Upstreams", &pp)
                .into_iter()
                .map(|u| upstream(d, u, &pp))
                .collect();
            let expose = d.get(px, "ExposeConfig").or_else(|| d.get(px, "Expose")).cloned();
            json!({
                "Config": d.obj(px, "Config", &pp).cloned().unwrap_or(Value::Null),
                "ExposeConfig": expose.unwrap_or(Value::Null),
                "LocalServiceAddress": d.str(px, "LocalServiceAddress", &pp, ""),
                "LocalServicePort": d.int(px, "LocalServicePort", &pp, 0),
                "TransparentProxy": d.obj(px, "TransparentProxy", &pp).cloned().unwrap_or(Value::Null),
                "Upstreams": if ups.is_empty() { Value::Null } else { Value::Array(ups) },
            })
        });
        json!({
            "DisableDefaultTCPCheck": d.bool(ss, "DisableDefaultTCPCheck", &p, false),
            "Meta": opt_obj(d.str_map(ss, "Meta", &p)),
            "Port": d.str(ss, "Port", &p, ""),
            "Proxy": proxy.unwrap_or(Value::Null),
            "Tags": opt_strs(d.strs(ss, "Tags", &p)),
        })
    });
    let sidecar_task = d.obj(c, "SidecarTask", path).cloned();
    json!({
        "Gateway": d.obj(c, "Gateway", path).cloned().unwrap_or(Value::Null),
        "Native": d.bool(c, "Native", path, false),
        "SidecarService": sidecar_service.unwrap_or(Value::Null),
        "SidecarTask": sidecar_task.unwrap_or(Value::Null),
    })
}

struct ServiceCtx<'a> {
    job_name: &'a str,
    group: &'a str,
    task: Option<&'a str>,
    namespace: &'a str,
}

fn service(d: &mut Dec, sv: &Value, path: &str, cx: &ServiceCtx<'_>) -> Value {
    let mut name = d.str(sv, "Name", path, "");
    if name.is_empty() {
        name = match cx.task {
            Some(t) => format!("{}-{}-{}", cx.job_name, cx.group, t),
            None => format!("{}-{}", cx.job_name, cx.group),
        };
    }
    let name = interpolate_service_name(&name, cx);
    let address_mode = non_empty(d.str(sv, "AddressMode", path, ""), "auto");
    let on_update = non_empty(d.str(sv, "OnUpdate", path, ""), "require_healthy");
    let provider = non_empty(d.str(sv, "Provider", path, ""), "consul");
    let cluster = non_empty(d.str(sv, "Cluster", path, ""), "default");
    let restart = d.obj(sv, "CheckRestart", path);
    let checks: Vec<Value> = d
        .objs(sv, "Checks", path)
        .into_iter()
        .map(|c| check(d, c, &format!("{path}.Checks"), &on_update, restart))
        .collect();
    let weights = d.obj(sv, "Weights", path).map(|w| {
        json!({
            "Passing": d.int(w, "Passing", path, 1).max(1),
            "Warning": d.int(w, "Warning", path, 1).max(1),
        })
    });
    let tagged = d.str_map(sv, "TaggedAddresses", path);
    let identity = d.obj(sv, "Identity", path).cloned();
    json!({
        "Address": d.str(sv, "Address", path, ""),
        "AddressMode": address_mode,
        "CanaryMeta": opt_obj(d.str_map(sv, "CanaryMeta", path)),
        "CanaryTags": opt_strs(d.strs(sv, "CanaryTags", path)),
        "Checks": if checks.is_empty() { Value::Null } else { Value::Array(checks) },
        "Cluster": cluster,
        "Connect": connect(d, d_obj(sv, "Connect"), &format!("{path}.Connect")),
        "EnableTagOverride": d.bool(sv, "EnableTagOverride", path, false),
        "Identity": identity.unwrap_or(Value::Null),
        "Kind": d.str(sv, "Kind", path, ""),
        "Meta": opt_obj(d.str_map(sv, "Meta", path)),
        "Name": name,
        "Namespace": cx.namespace,
        "OnUpdate": on_update,
        "PortLabel": d.str(sv, "PortLabel", path, ""),
        "Provider": provider,
        "TaggedAddresses": opt_obj(tagged),
        "Tags": opt_strs(d.strs(sv, "Tags", path)),
        "TaskName": d.str(sv, "TaskName", path, ""),
        "Weights": weights.unwrap_or(Value::Null),
    })
}

fn d_obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

fn non_empty(v: String, default: &str) -> String {
    if v.is_empty() { default.to_string() } else { v }
}

/// `${NOMAD_JOB_NAME}`-style interpolation of service names done at submission time.
fn interpolate_service_name(name: &str, cx: &ServiceCtx<'_>) -> String {
    if !name.contains("${") {
        return name.to_string();
    }
    let mut out = name
        .replace("${NOMAD_JOB_NAME}", cx.job_name)
        .replace("${JOB}", cx.job_name)
        .replace("${NOMAD_GROUP_NAME}", cx.group)
        .replace("${TASKGROUP}", cx.group)
        .replace("${NOMAD_NAMESPACE}", cx.namespace);
    if let Some(t) = cx.task {
        out = out.replace("${NOMAD_TASK_NAME}", t).replace("${TASK}", t);
    }
    out
}

fn vault(d: &mut Dec, v: Option<&Value>, path: &str) -> Value {
    let Some(v) = v else { return Value::Null };
    let cluster = non_empty(d.str(v, "Cluster", path, ""), "default");
    let change_signal = d.str(v, "ChangeSignal", path, "SIGHUP").to_uppercase();
    json!({
        "AllowTokenExpiration": d.bool(v, "AllowTokenExpiration", path, false),
        "ChangeMode": d.str(v, "ChangeMode", path, "restart"),
        "ChangeSignal": change_signal,
        "Cluster": cluster,
        "DisableFile": d.bool(v, "DisableFile", path, false),
        "Env": d.bool(v, "Env", path, true),
        "Namespace": d.str(v, "Namespace", path, ""),
        "Role": d.str(v, "Role", path, ""),
    })
}

fn template(d: &mut Dec, t: &Value, path: &str) -> Value {
    json!({
        "ChangeMode": d.str(t, "ChangeMode", path, "restart"),
        "ChangeScript": d.obj(t, "ChangeScript", path).cloned().unwrap_or(Value::Null),
        "ChangeSignal": d.str(t, "ChangeSignal", path, "").to_uppercase(),
        "DestPath": d.str(t, "DestPath", path, ""),
        "EmbeddedTmpl": d.str(t, "EmbeddedTmpl", path, ""),
        "Envvars": d.bool(t, "Envvars", path, false),
        "ErrMissingKey": d.bool(t, "ErrMissingKey", path, false),
        "Gid": d.get(t, "Gid").cloned().unwrap_or(Value::Null),
        "LeftDelim": d.str(t, "LeftDelim", path, "{{"),
        "Once": d.bool(t, "Once", path, false),
        "Perms": d.str(t, "Perms", path, "0644"),
        "RightDelim": d.str(t, "RightDelim", path, "}}"),
        "SourcePath": d.str(t, "SourcePath", path, ""),
        "Splay": d.int(t, "Splay", path, 5 * SEC),
        "Uid": d.get(t, "Uid").cloned().unwrap_or(Value::Null),
        "VaultGrace": d.int(t, "VaultGrace", path, 0),
        "Wait": d.obj(t, "Wait", path).cloned().unwrap_or(Value::Null),
    })
}

fn artifact(d: &mut Dec, a: &Value, path: &str) -> Value {
    json!({
        "Chown": d.bool(a, "Chown", path, false),
        "GetterHeaders": opt_obj(d.str_map(a, "GetterHeaders", path)),
        "GetterInsecure": d.bool(a, "GetterInsecure", path, false),
        "GetterMode": d.str(a, "GetterMode", path, "any"),
        "GetterOptions": opt_obj(d.str_map(a, "GetterOptions", path)),
        "GetterSource": d.str(a, "GetterSource", path, ""),
        "RelativeDest": d.str(a, "RelativeDest", path, "local/"),
    })
}

fn identity(name: &str, audience: &[&str], ttl: i64, service: &str) -> Value {
    json!({
        "Audience": audience,
        "ChangeMode": "",
        "ChangeSignal": "",
        "Env": false,
        "File": false,
        "Filepath": "",
        "Name": name,
        "ServiceName": service,
        "TTL": ttl,
    })
}

fn default_task_identity() -> Value {
    identity("default", &["nomad.io"], 0, "")
}

fn user_identity(d: &mut Dec, i: &Value, path: &str, default_name: &str) -> Value {
    json!({
        "Audience": opt_strs(d.strs(i, "Audience", path)).as_array().cloned().map(Value::Array).unwrap_or_else(|| json!(["nomad.io"])),
        "ChangeMode": d.str(i, "ChangeMode", path, ""),
        "ChangeSignal": d.str(i, "ChangeSignal", path, ""),
        "Env": d.bool(i, "Env", path, false),
        "File": d.bool(i, "File", path, false),
        "Filepath": d.str(i, "Filepath", path, ""),
        "Name": non_empty(d.str(i, "Name", path, ""), default_name),
        "ServiceName": d.str(i, "ServiceName", path, ""),
        "TTL": d.int(i, "TTL", path, 0),
    })
}

struct TaskCtx<'a> {
    job_name: &'a str,
    group: &'a str,
    namespace: &'a str,
    restart: &'a Value,
}

fn task(d: &mut Dec, t: &Value, path: &str, cx: &TaskCtx<'_>) -> Value {
    let name = d.str(t, "Name", path, "");
    let restart = merged(d, cx.restart.clone(), d_obj(t, "RestartPolicy"), path);
    let scx = ServiceCtx {
        job_name: cx.job_name,
        group: cx.group,
        task: Some(&name),
        namespace: cx.namespace,
    };
    let services: Vec<Value> = d
        .objs(t, "Services", path)
        .into_iter()
        .map(|sv| service(d, sv, &format!("{path}.Services"), &scx))
        .collect();
    let lifecycle = d.obj(t, "Lifecycle", path).and_then(|l| {
        let hook = d.str(l, "Hook", path, "");
        let sidecar = d.bool(l, "Sidecar", path, false);
        if hook.is_empty() && !sidecar {
            None
        } else {
            Some(json!({ "Hook": hook, "Sidecar": sidecar }))
        }
    });
    let templates: Vec<Value> = d
        .objs(t, "Templates", path)
        .into_iter()
        .map(|x| template(d, x, &format!("{path}.Templates")))
        .collect();
    let artifacts: Vec<Value> = d
        .objs(t, "Artifacts", path)
        .into_iter()
        .map(|x| artifact(d, x, &format!("{path}.Artifacts")))
        .collect();
    let identities: Vec<Value> = d
        .objs(t, "Identities", path)
        .into_iter()
        .map(|x| user_identity(d, x, &format!("{path}.Identities"), ""))
        .collect();
    let identity = d
        .obj(t, "Identity", path)
        .map(|x| user_identity(d, x, path, "default"))
        .unwrap_or_else(default_task_identity);
    let config = match d.get(t, "Config") {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => Value::Null,
    };
    json!({
        "Actions": d.get(t, "Actions").cloned().unwrap_or(Value::Null),
        "Affinities": affinities(d, t, path),
        "Artifacts": if artifacts.is_empty() { Value::Null } else { Value::Array(artifacts) },
        "CSIPluginConfig": d.obj(t, "CSIPluginConfig", path).cloned().unwrap_or(Value::Null),
        "Config": config,
        "Constraints": constraints(d, t, path),
        "Consul": d.obj(t, "Consul", path).cloned().unwrap_or(Value::Null),
        "DispatchPayload": d.obj(t, "DispatchPayload", path).cloned().unwrap_or(Value::Null),
        "Driver": d.str(t, "Driver", path, ""),
        "Env": opt_obj(d.str_map(t, "Env", path)),
        "Identities": if identities.is_empty() { Value::Null } else { Value::Array(identities) },
        "Identity": identity,
        "KillSignal": d.str(t, "KillSignal", path, ""),
        "KillTimeout": d.int(t, "KillTimeout", path, 5 * SEC),
        "Kind": d.str(t, "Kind", path, ""),
        "Leader": d.bool(t, "Leader", path, false),
        "Lifecycle": lifecycle.unwrap_or(Value::Null),
        "LogConfig": log_config(d, d_obj(t, "LogConfig"), path, 10, 10),
        "Meta": opt_obj(d.str_map(t, "Meta", path)),
        "Name": name,
        "Resources": resources(d, d_obj(t, "Resources"), &format!("{path}.Resources")),
        "RestartPolicy": restart,
        "ScalingPolicies": Value::Null,
        "Schedule": d.obj(t, "Schedule", path).cloned().unwrap_or(Value::Null),
        "Services": if services.is_empty() { Value::Null } else { Value::Array(services) },
        "ShutdownDelay": d.int(t, "ShutdownDelay", path, 0),
        "Templates": if templates.is_empty() { Value::Null } else { Value::Array(templates) },
        "User": d.str(t, "User", path, ""),
        "Vault": vault(d, d_obj(t, "Vault"), &format!("{path}.Vault")),
        "VolumeMounts": d.get(t, "VolumeMounts").cloned().unwrap_or(Value::Null),
    })
}

/// The sidecar task Nomad injects for a Connect service (`newConnectTask`).
fn connect_sidecar_task(service: &str, restart: &Value) -> Value {
    json!({
        "Actions": null,
        "Affinities": null,
        "Artifacts": null,
        "CSIPluginConfig": null,
        "Config": {
            "image": "${meta.connect.sidecar_image}",
            "args": [
                "-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json",
                "-l", "${meta.connect.log_level}",
                "--concurrency", "${meta.connect.proxy_concurrency}",
                "--disable-hot-restart"
            ]
        },
        "Constraints": [
            { "LTarget": "${attr.consul.version}", "Operand": "semver", "RTarget": ">= 1.6.0-beta1" },
            { "LTarget": "${attr.consul.grpc}", "Operand": ">", "RTarget": "0" }
        ],
        "Consul": null,
        "DispatchPayload": null,
        "Driver": "docker",
        "Env": null,
        "Identities": null,
        "Identity": default_task_identity(),
        "KillSignal": "",
        "KillTimeout": 5 * SEC,
        "Kind": format!("connect-proxy:{service}"),
        "Leader": false,
        "Lifecycle": { "Hook": "prestart", "Sidecar": true },
        "LogConfig": { "Disabled": false, "MaxFileSizeMB": 2, "MaxFiles": 2 },
        "Meta": null,
        "Name": format!("connect-proxy-{service}"),
        "Resources": {
            "CPU": 250, "Cores": 0, "Devices": null, "DiskMB": 0, "IOPS": 0, "MemoryMB": 128,
            "MemoryMaxMB": 0, "NUMA": null, "Networks": null, "SecretsMB": 0
        },
        "RestartPolicy": restart.clone(),
        "ScalingPolicies": null,
        "Schedule": null,
        "Services": null,
        "ShutdownDelay": 5 * SEC,
        "Templates": null,
        "User": "",
        "Vault": null,
        "VolumeMounts": null,
    })
}

/// `SidecarTask` overrides merged into the injected task (`MergeIntoTask`).
fn merge_sidecar_task(task: &mut Value, over: &Value) {
    let Some(t) = task.as_object_mut() else {
        return;
    };
    for key in ["Name", "Driver", "User", "KillSignal"] {
        if let Some(v) = over
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            t.insert(key.into(), Value::String(v.into()));
        }
    }
    if let Some(Value::Object(cfg)) = over.get("Config")
        && let Some(Value::Object(tc)) = t.get_mut("Config")
    {
        for (k, v) in cfg {
            tc.insert(k.clone(), v.clone());
        }
    }
    for key in ["Env", "Meta"] {
        if let Some(Value::Object(m)) = over.get(key)
            && !m.is_empty()
        {
            t.insert(key.into(), Value::Object(m.clone()));
        }
    }
    if let Some(Value::Object(r)) = over.get("Resources")
        && let Some(Value::Object(tr)) = t.get_mut("Resources")
    {
        for (k, v) in r {
            if v.is_number() {
                tr.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Object(l)) = over.get("LogConfig")
        && let Some(Value::Object(tl)) = t.get_mut("LogConfig")
    {
        for (k, v) in l {
            if !v.is_null() {
                tl.insert(k.clone(), v.clone());
            }
        }
    }
    for key in ["KillTimeout", "ShutdownDelay"] {
        if let Some(v) = over.get(key).filter(|v| v.is_number()) {
            t.insert(key.into(), v.clone());
        }
    }
}

fn add_constraint_left(tg: &mut Obj, c: Value) {
    let lt = c["LTarget"].clone();
    let list = tg.entry("Constraints").or_insert(Value::Null);
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(a) = list.as_array_mut()
        && !a.iter().any(|x| x["LTarget"] == lt)
    {
        a.push(c);
    }
}

fn add_constraint_full(tg: &mut Obj, c: Value) {
    let list = tg.entry("Constraints").or_insert(Value::Null);
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(a) = list.as_array_mut()
        && !a.contains(&c)
    {
        a.push(c);
    }
}

fn group(
    d: &mut Dec,
    g: &Value,
    path: &str,
    job: &JobCtx<'_>,
    job_update: Option<&Update>,
) -> Value {
    let name = d.str(g, "Name", path, "");
    let scaling = d.obj(g, "Scaling", path).cloned();
    let count = match d.int_opt(g, "Count", path) {
        Some(c) => c,
        None => scaling
            .as_ref()
            .and_then(|s| s.get("Min"))
            .and_then(Value::as_i64)
            .unwrap_or(1),
    };
    let count = if job.job_type == "system" && count == 0 {
        1
    } else {
        count
    };
    let eph = merged(
        d,
        json!({ "Migrate": false, "SizeMB": 300, "Sticky": false }),
        d_obj(g, "EphemeralDisk"),
        path,
    );
    let consul_ns = d_obj(g, "Consul")
        .and_then(|c| c.get("Namespace"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(job.consul_namespace)
        .to_string();
    let consul = json!({
        "Cluster": d_obj(g, "Consul").and_then(|c| c.get("Cluster")).and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("default"),
        "Namespace": consul_ns,
        "Partition": d_obj(g, "Consul").and_then(|c| c.get("Partition")).and_then(Value::as_str).unwrap_or(""),
    });
    // Update: merge the job's (already canonicalised) strategy with the group's.
    let group_update = d.obj(g, "Update", path).map(|u| Update::parse(d, u, path));
    let update = match (job_update, group_update) {
        (Some(j), Some(gu)) => {
            let mut m = j.clone();
            m.merge(&gu);
            Some(m)
        }
        (Some(j), None) if !j.empty() => Some(j.clone()),
        (None, Some(gu)) => Some(gu),
        _ => None,
    };
    let update = update.map(|mut u| {
        u.canonicalize();
        u.to_json()
    });
    // ReschedulePolicy: job-level merged under the group's, then defaults.
    let resched_in = match (job.reschedule, d_obj(g, "ReschedulePolicy")) {
        (Some(j), Some(gr)) => {
            let mut m = j.clone();
            if let (Some(mo), Some(go)) = (m.as_object_mut(), gr.as_object()) {
                for (k, v) in go {
                    if !v.is_null() {
                        mo.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(m)
        }
        (Some(j), None) => Some(j.clone()),
        (None, Some(gr)) => Some(gr.clone()),
        (None, None) => None,
    };
    let reschedule = if job.job_type == "system" && resched_in.is_none() {
        Value::Null
    } else {
        merged(
            d,
            reschedule_default(job.job_type),
            resched_in.as_ref(),
            path,
        )
    };
    let migrate_in = match (job.migrate, d_obj(g, "Migrate")) {
        (Some(j), Some(gm)) => {
            let mut m = j.clone();
            if let (Some(mo), Some(go)) = (m.as_object_mut(), gm.as_object()) {
                for (k, v) in go {
                    if !v.is_null() {
                        mo.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(m)
        }
        (Some(j), None) => Some(j.clone()),
        (None, Some(gm)) => Some(gm.clone()),
        (None, None) => None,
    };
    let migrate = if migrate_in.is_some() || job.job_type == "service" {
        merged(d, migrate_default(), migrate_in.as_ref(), path)
    } else {
        Value::Null
    };
    let restart = merged(
        d,
        restart_default(job.job_type),
        d_obj(g, "RestartPolicy"),
        path,
    );
    let networks: Vec<Value> = d
        .objs(g, "Networks", path)
        .into_iter()
        .map(|n| network(d, n, &format!("{path}.Networks")))
        .collect();
    let scx = ServiceCtx {
        job_name: job.name,
        group: &name,
        task: None,
        namespace: job.namespace,
    };
    let services: Vec<Value> = d
        .objs(g, "Services", path)
        .into_iter()
        .map(|sv| service(d, sv, &format!("{path}.Services"), &scx))
        .collect();
    let tcx = TaskCtx {
        job_name: job.name,
        group: &name,
        namespace: job.namespace,
        restart: &restart,
    };
    let tasks: Vec<Value> = d
        .objs(g, "Tasks", path)
        .into_iter()
        .map(|t| task(d, t, &format!("{path}.Tasks"), &tcx))
        .collect();
    let mut out = json!({
        "Affinities": affinities(d, g, path),
        "Constraints": constraints(d, g, path),
        "Consul": consul,
        "Count": count,
        "Disconnect": d.obj(g, "Disconnect", path).cloned().unwrap_or(Value::Null),
        "EphemeralDisk": eph,
        "MaxClientDisconnect": d.get(g, "MaxClientDisconnect").cloned().unwrap_or(Value::Null),
        "Meta": opt_obj(d.str_map(g, "Meta", path)),
        "Migrate": migrate,
        "Name": name,
        "Networks": if networks.is_empty() { Value::Null } else { Value::Array(networks) },
        "PreventRescheduleOnLost": d.bool(g, "PreventRescheduleOnLost", path, false),
        "ReschedulePolicy": reschedule,
        "RestartPolicy": restart.clone(),
        "Scaling": scaling.unwrap_or(Value::Null),
        "Services": if services.is_empty() { Value::Null } else { Value::Array(services) },
        "ShutdownDelay": d.get(g, "ShutdownDelay").cloned().unwrap_or(Value::Null),
        "Spreads": spreads(d, g, path),
        "StopAfterClientDisconnect": d.get(g, "StopAfterClientDisconnect").cloned().unwrap_or(Value::Null),
        "Tasks": Value::Array(tasks),
        "Update": update.unwrap_or(Value::Null),
        "Volumes": d.get(g, "Volumes").cloned().unwrap_or(Value::Null),
    });
    if !job.api_form
        && let Some(obj) = out.as_object_mut()
    {
        connect_hook(obj, &restart);
    }
    out
}

/// The server's connect admission hook: injects the sidecar task and its port.
fn connect_hook(tg: &mut Obj, restart: &Value) {
    let has_networks = tg
        .get("Networks")
        .and_then(Value::as_array)
        .is_some_and(|n| !n.is_empty());
    if !has_networks {
        return;
    }
    // Name and `SidecarTask` of each group service with a sidecar (only these are
    // needed, not copies of the services).
    let sidecars: Vec<(String, Option<Value>)> = tg
        .get("Services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|sv| {
            sv.get("Connect")
                .and_then(|c| c.get("SidecarService"))
                .is_some_and(|s| !s.is_null())
        })
        .map(|sv| {
            let task = sv["Connect"]
                .get("SidecarTask")
                .filter(|x| x.is_object())
                .cloned();
            (sv["Name"].as_str().unwrap_or("").to_string(), task)
        })
        .collect();
    for (name, sidecar_task) in sidecars {
        let kind = format!("connect-proxy:{name}");
        let tasks = tg
            .entry("Tasks")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = tasks.as_array_mut() {
            let exists = list.iter().any(|t| t["Kind"] == kind.as_str());
            if !exists {
                let mut t = connect_sidecar_task(&name, restart);
                if let Some(st) = &sidecar_task {
                    merge_sidecar_task(&mut t, st);
                }
                if list.iter().any(|x| x["Name"] == t["Name"]) {
                    let suffix = uuid::Uuid::new_v4().to_string();
                    let new_name = format!("{}-{}", t["Name"].as_str().unwrap_or(""), &suffix[..6]);
                    t["Name"] = Value::String(new_name);
                }
                list.push(t);
            }
        }
        let label = format!("connect-proxy-{name}");
        if let Some(net) = tg
            .get_mut("Networks")
            .and_then(Value::as_array_mut)
            .and_then(|n| n.first_mut())
        {
            let ports = &mut net["DynamicPorts"];
            if !ports.is_array() {
                *ports = Value::Array(Vec::new());
            }
            if let Some(list) = ports.as_array_mut()
                && !list.iter().any(|p| p["Label"] == label.as_str())
            {
                list.push(json!({
                        "HostNetwork": "default", "IgnoreCollision": false, "Label": label, "To": -1, "Value": 0,
                    }));
            }
        }
    }
}

/// Implied constraints and implicit identities (admission mutators run after the
/// connect hook).
fn implied(job: &mut Value, opts: &CanonOptions) {
    let Some(groups) = job.get_mut("TaskGroups").and_then(Value::as_array_mut) else {
        return;
    };
    for g in groups.iter_mut() {
        let Some(tg) = g.as_object_mut() else {
            continue;
        };
        // Vault.
        let vault_clusters: Vec<String> = tg
            .get("Tasks")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| t.get("Vault").filter(|v| v.is_object()))
                    .map(|v| v["Cluster"].as_str().unwrap_or("default").to_string())
                    .collect()
            })
            .unwrap_or_default();
        for cluster in vault_clusters {
            let lt = if cluster == "default" || cluster.is_empty() {
                "${attr.vault.version}".to_string()
            } else {
                format!("${{attr.vault.{cluster}.version}}")
            };
            add_constraint_left(
                tg,
                json!({"LTarget": lt, "Operand": "semver", "RTarget": ">= 0.6.1"}),
            );
        }
        // Services (group services, then each task's), inspected in place.
        let all_services = || {
            let group = tg.get("Services").and_then(Value::as_array).into_iter();
            let tasks = tg
                .get("Tasks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("Services").and_then(Value::as_array));
            group.chain(tasks).flatten()
        };
        let nomad_provider = all_services().any(|s| s["Provider"] == "nomad");
        let nomad_checks = all_services().any(|s| {
            s["Provider"] == "nomad" && s["Checks"].as_array().is_some_and(|c| !c.is_empty())
        });
        let consul_clusters: Vec<String> = all_services()
            .filter(|s| s["Provider"] == "consul")
            .map(|sv| sv["Cluster"].as_str().unwrap_or("default").to_string())
            .collect();
        if nomad_provider {
            add_constraint_full(
                tg,
                json!({"LTarget": "${attr.nomad.service_discovery}", "Operand": "=", "RTarget": "true"}),
            );
        }
        if nomad_checks {
            add_constraint_full(
                tg,
                json!({"LTarget": "${attr.nomad.version}", "Operand": "semver", "RTarget": ">= 1.4.0"}),
            );
        }
        for cluster in &consul_clusters {
            let lt = if cluster == "default" || cluster.is_empty() {
                "${attr.consul.version}".to_string()
            } else {
                format!("${{attr.consul.{cluster}.version}}")
            };
            add_constraint_left(
                tg,
                json!({"LTarget": lt, "Operand": "semver", "RTarget": ">= 1.7.0"}),
            );
        }
        // Implicit identities.
        let mut has_identity = false;
        let set_service_identity = |sv: &mut Value, task: Option<&str>| -> bool {
            if sv["Provider"] != "consul" {
                return !sv["Identity"].is_null();
            }
            if sv["Identity"].is_null() && !opts.consul_service_identity {
                return false;
            }
            let name = sv["Name"].as_str().unwrap_or("").to_string();
            let port = sv["PortLabel"].as_str().unwrap_or("").to_string();
            let prefix = match task {
                Some(t) if !t.is_empty() => format!("consul-service_{t}"),
                _ => "consul-service".to_string(),
            };
            let wid_name = format!("{prefix}_{name}-{port}");
            if sv["Identity"].is_null() {
                sv["Identity"] = identity(&wid_name, &["consul.io"], 3600 * SEC, &name);
            } else {
                sv["Identity"]["Name"] = Value::String(wid_name);
                sv["Identity"]["ServiceName"] = Value::String(name);
            }
            true
        };
        if let Some(ss) = tg.get_mut("Services").and_then(Value::as_array_mut) {
            for sv in ss.iter_mut() {
                has_identity |= set_service_identity(sv, None);
            }
        }
        if let Some(ts) = tg.get_mut("Tasks").and_then(Value::as_array_mut) {
            for t in ts.iter_mut() {
                let tname = t["Name"].as_str().unwrap_or("").to_string();
                if let Some(ss) = t.get_mut("Services").and_then(Value::as_array_mut) {
                    for sv in ss.iter_mut() {
                        let service_task = sv["TaskName"].as_str().unwrap_or("").to_string();
                        let owner = if service_task.is_empty() {
                            tname.clone()
                        } else {
                            service_task
                        };
                        has_identity |= set_service_identity(sv, Some(&owner));
                    }
                }
                let mut ids: Vec<Value> = t["Identities"].as_array().cloned().unwrap_or_default();
                // Consul task identity (group always has a Consul block after
                // canonicalisation).
                let consul_cluster = t
                    .get("Consul")
                    .and_then(|c| c.get("Cluster"))
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                    .unwrap_or("default")
                    .to_string();
                let consul_wid = format!("consul_{consul_cluster}");
                if opts.consul_task_identity
                    && !ids.iter().any(|i| i["Name"] == consul_wid.as_str())
                {
                    ids.push(identity(&consul_wid, &["consul.io"], 3600 * SEC, ""));
                }
                if let Some(v) = t.get("Vault").filter(|v| v.is_object()) {
                    let cluster = v["Cluster"].as_str().unwrap_or("default");
                    let vault_wid = format!("vault_{cluster}");
                    if opts.vault_identity && !ids.iter().any(|i| i["Name"] == vault_wid.as_str()) {
                        ids.push(identity(&vault_wid, &["vault.io"], 3600 * SEC, ""));
                    }
                }
                if !ids.is_empty() {
                    has_identity = true;
                    t["Identities"] = Value::Array(ids);
                }
            }
        }
        if has_identity {
            add_constraint_full(
                tg,
                json!({"LTarget": "${attr.nomad.version}", "Operand": "semver", "RTarget": ">= 1.7.0-a"}),
            );
        }
    }
}

struct JobCtx<'a> {
    name: &'a str,
    job_type: &'a str,
    namespace: &'a str,
    consul_namespace: &'a str,
    reschedule: Option<&'a Value>,
    migrate: Option<&'a Value>,
    api_form: bool,
}

/// Canonicalises a submitted (api) job into the stored (struct) form, without the
/// server-set fields' values (status, version, indexes, submit time are zero).
///
/// # Errors
/// The `encoding/json` text of the first type mismatch (the agent's 400).
pub(crate) fn canonicalize(api: &Value, opts: &CanonOptions) -> Result<Value, String> {
    let mut d = Dec::default();
    let p = "Job";
    let id = d.str(api, "ID", p, "");
    let name = non_empty(d.str(api, "Name", p, ""), &id);
    let job_type = non_empty(d.str(api, "Type", p, ""), "service");
    let region = non_empty(d.str(api, "Region", p, ""), &opts.region);
    let priority = d.int(api, "Priority", p, 0);
    let priority = if priority == 0 { 50 } else { priority };
    let node_pool = non_empty(d.str(api, "NodePool", p, ""), "default");
    let consul_namespace = d.str(api, "ConsulNamespace", p, "");
    let mut job_update = d
        .obj(api, "Update", p)
        .map(|u| Update::parse(&mut d, u, "Job.Update"));
    match job_update.as_mut() {
        Some(u) => u.canonicalize(),
        None if job_type == "service" => {
            let mut u = Update::default();
            u.canonicalize();
            job_update = Some(u);
        }
        None => {}
    }
    let reschedule = d.obj(api, "Reschedule", p).cloned();
    let migrate = d.obj(api, "Migrate", p).cloned();
    let jcx = JobCtx {
        name: &name,
        job_type: &job_type,
        namespace: &opts.namespace,
        consul_namespace: &consul_namespace,
        reschedule: reschedule.as_ref(),
        migrate: migrate.as_ref(),
        api_form: opts.api_form,
    };
    let groups: Vec<Value> = d
        .objs(api, "TaskGroups", p)
        .into_iter()
        .map(|g| group(&mut d, g, "Job.TaskGroups", &jcx, job_update.as_ref()))
        .collect();
    let struct_update = match &job_update {
        Some(u) if opts.api_form => u.to_json(),
        Some(u) if u.max_parallel.unwrap_or(0) > 0 => {
            let mut z = Update {
                stagger: u.stagger,
                max_parallel: u.max_parallel,
                ..Update::default()
            };
            z.health_check = Some(String::new());
            z.to_json()
        }
        _ => zero_update(),
    };
    let periodic = d.obj(api, "Periodic", p).map(|per| {
        let pp = "Job.Periodic";
        json!({
            "Enabled": d.bool(per, "Enabled", pp, true),
            "ProhibitOverlap": d.bool(per, "ProhibitOverlap", pp, false),
            "Spec": d.str(per, "Spec", pp, ""),
            "SpecType": d.str(per, "SpecType", pp, "cron"),
            "Specs": opt_strs(d.strs(per, "Specs", pp)),
            "TimeZone": d.str(per, "TimeZone", pp, "UTC"),
        })
    });
    let parameterized = d.obj(api, "ParameterizedJob", p).map(|pj| {
        let pp = "Job.ParameterizedJob";
        json!({
            "MetaOptional": opt_strs(d.strs(pj, "MetaOptional", pp)),
            "MetaRequired": opt_strs(d.strs(pj, "MetaRequired", pp)),
            "Payload": d.str(pj, "Payload", pp, "optional"),
        })
    });
    let datacenters = d
        .strs(api, "Datacenters", p)
        .unwrap_or_else(|| vec!["*".into()]);
    let mut job = json!({
        "Affinities": affinities(&mut d, api, p),
        "AllAtOnce": d.bool(api, "AllAtOnce", p, false),
        "Constraints": constraints(&mut d, api, p),
        "ConsulNamespace": consul_namespace,
        "ConsulToken": "",
        "CreateIndex": 0,
        "Datacenters": datacenters,
        "DispatchIdempotencyToken": d.str(api, "DispatchIdempotencyToken", p, ""),
        "Dispatched": d.bool(api, "Dispatched", p, false),
        "ID": id,
        "JobModifyIndex": 0,
        "Meta": opt_obj(d.str_map(api, "Meta", p)),
        "ModifyIndex": 0,
        "Multiregion": d.obj(api, "Multiregion", p).cloned().unwrap_or(Value::Null),
        "Name": name,
        "Namespace": opts.namespace.as_str(),
        "NodePool": node_pool,
        "NomadTokenID": "",
        "ParameterizedJob": parameterized.unwrap_or(Value::Null),
        "ParentID": d.str(api, "ParentID", p, ""),
        "Payload": Value::Null,
        "Periodic": periodic.unwrap_or(Value::Null),
        "Priority": priority,
        "Region": region,
        "Spreads": spreads(&mut d, api, p),
        "Stable": false,
        "Status": "",
        "StatusDescription": "",
        "Stop": d.bool(api, "Stop", p, false),
        "SubmitTime": 0,
        "TaskGroups": Value::Array(groups),
        "Type": job_type,
        "UI": d.obj(api, "UI", p).cloned().unwrap_or(Value::Null),
        "Update": struct_update,
        "VaultNamespace": d.str(api, "VaultNamespace", p, ""),
        "VaultToken": "",
        "Version": 0,
        "VersionTag": Value::Null,
    });
    if let Some(e) = d.error {
        return Err(e);
    }
    if !opts.api_form {
        implied(&mut job, opts);
    }
    Ok(job)
}

/// Fields the server sets, which do not count when deciding whether a spec changed
/// (`Job.SpecChanged`).
pub(crate) const SERVER_FIELDS: [&str; 8] = [
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
];

/// Whether two stored jobs differ in anything but server-set fields.
pub(crate) fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return true;
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !SERVER_FIELDS.contains(&k.as_str()))
        .any(|k| a.get(k) != b.get(k))
}
