//! The Nomad job (reference §6.4): the `Job` object of the register body.
//!
//! Only fields Steward owns are sent; Nomad fills the rest (§6.6) and the diff ignores
//! what it fills. Shape:
//!
//! - job: `ID`, `Name`, `Namespace`, `Type` (`service`, or `batch` for periodic specs),
//!   `Datacenters`, `Meta` (ownership), `Periodic` (batch only), one task group.
//! - group `<name>`: `Count`; a `bridge` network (when the spec has ports or upstreams)
//!   with a dynamic port `main` (`To` = the spec `port`) and one per named port; the
//!   Consul service (when the spec has a `port` or `upstreams`); `Update` (service jobs
//!   only); the task.
//! - service `<name>`: a worker without `port` that has upstreams (service or periodic
//!   job) still registers a Connect service, without `PortLabel` or checks, so its
//!   sidecar carries the upstreams and it has a mesh identity other services' intentions
//!   can name (nomad#8307: the sidecar then listens on a port nothing uses).
//!   `PortLabel` is the in-namespace port number (`"8080"`), not the
//!   `main` label: Nomad's expose-check mutator resolves a label to its static `Value`,
//!   which is 0 for a dynamic port, and fails the registration ("unable to determine
//!   local service port", nomad#9907); with Connect in bridge mode the number is what the
//!   sidecar forwards to. `Tags` are the spec labels as `key=value`. `Connect` has a
//!   sidecar with the upstreams. An `http` check is exposed through the sidecar
//!   (`Expose: true`), since the agent checks from the host and cannot reach the
//!   namespace otherwise. There is no `tcp` check: Nomad refuses one on a Connect
//!   service, and every rendered service is one (validation reports it first).
//! - task `app`: docker (`image`, `ports`, `args`) or exec (`command`, `args`),
//!   `Env`, `Resources` (`CPU`, `MemoryMB`, `MemoryMaxMB` when set) and, when the spec
//!   has secrets, `Vault: {"Role": "steward-<ns>-<name>"}` (workload identity; Nomad ≥ 1.10
//!   ignores `Policies`).

use serde_json::{Map, Value, json};
use steward_spec::{CheckKind, Driver, ServiceSpec};

use crate::context::RenderContext;
use crate::names::{self, MAIN_PORT_LABEL, SpecKey, TASK_NAME};

/// `Type` of a service job.
pub const TYPE_SERVICE: &str = "service";
/// `Type` of a periodic batch job.
pub const TYPE_BATCH: &str = "batch";

/// The `Job` object for `spec`, with `meta` as its `Meta`.
pub(crate) fn render_job(
    spec: &ServiceSpec,
    ctx: &RenderContext,
    meta: &Map<String, Value>,
) -> Value {
    let key = SpecKey::of(spec);
    let mut job = Map::new();
    let id = names::job_id(&key);
    job.insert("ID".into(), Value::from(id.clone()));
    job.insert("Name".into(), Value::from(id));
    job.insert(
        "Namespace".into(),
        Value::from(names::nomad_namespace(&key)),
    );
    let job_type = if spec.is_batch() {
        TYPE_BATCH
    } else {
        TYPE_SERVICE
    };
    job.insert("Type".into(), Value::from(job_type));
    job.insert("Datacenters".into(), json!(spec.spec.datacenters));
    job.insert("Meta".into(), Value::Object(meta.clone()));
    if let Some(periodic) = &spec.spec.periodic {
        job.insert(
            "Periodic".into(),
            json!({
                "Enabled": true,
                "SpecType": "cron",
                "Spec": periodic.cron,
                "TimeZone": periodic.time_zone,
                "ProhibitOverlap": periodic.prohibit_overlap,
            }),
        );
    }
    job.insert("TaskGroups".into(), json!([group(spec, ctx, &key)]));
    Value::Object(job)
}

fn group(spec: &ServiceSpec, ctx: &RenderContext, key: &SpecKey) -> Value {
    let s = &spec.spec;
    let mut group = Map::new();
    group.insert("Name".into(), Value::from(names::group_name(key)));
    group.insert(
        "Count".into(),
        Value::from(ctx.replicas.unwrap_or(s.replicas)),
    );
    let labels = port_labels(spec);
    let connect = s.port.is_some() || !s.upstreams.is_empty();
    if !labels.is_empty() || connect {
        let mut ports = Vec::new();
        if let Some(port) = s.port {
            ports.push(json!({"Label": MAIN_PORT_LABEL, "To": port}));
        }
        for named in &s.ports {
            ports.push(json!({"Label": named.name, "To": named.port}));
        }
        let mut network = Map::new();
        network.insert("Mode".into(), Value::from("bridge"));
        if !ports.is_empty() {
            network.insert("DynamicPorts".into(), Value::Array(ports));
        }
        group.insert("Networks".into(), json!([network]));
    }
    if connect {
        group.insert("Services".into(), json!([service(spec, key)]));
    }
    if !spec.is_batch() {
        let u = &s.update;
        group.insert(
            "Update".into(),
            json!({
                "MaxParallel": u.max_parallel,
                "Canary": u.canary,
                "AutoRevert": u.auto_revert,
                "AutoPromote": u.auto_promote,
                "MinHealthyTime": u.min_healthy_time.as_nanos(),
                "HealthyDeadline": u.healthy_deadline.as_nanos(),
                "ProgressDeadline": u.progress_deadline.as_nanos(),
            }),
        );
    }
    group.insert("Tasks".into(), json!([task(spec, key, &labels)]));
    Value::Object(group)
}

/// Labels of every port in the group network: `main` first, then the named ports.
fn port_labels(spec: &ServiceSpec) -> Vec<String> {
    let main = spec.spec.port.map(|_| MAIN_PORT_LABEL.to_owned());
    main.into_iter()
        .chain(spec.spec.ports.iter().map(|p| p.name.clone()))
        .collect()
}

fn service(spec: &ServiceSpec, key: &SpecKey) -> Value {
    let s = &spec.spec;
    let mut service = Map::new();
    service.insert("Name".into(), Value::from(names::consul_service(key)));
    if let Some(port) = s.port {
        service.insert("PortLabel".into(), Value::from(port.to_string()));
    }
    let tags: Vec<String> = spec
        .metadata
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !tags.is_empty() {
        service.insert("Tags".into(), json!(tags));
    }
    let mut sidecar = Map::new();
    if !s.upstreams.is_empty() {
        let upstreams: Vec<Value> = s
            .upstreams
            .iter()
            .map(|u| json!({"DestinationName": u.service, "LocalBindPort": u.local_port}))
            .collect();
        sidecar.insert("Proxy".into(), json!({"Upstreams": upstreams}));
    }
    service.insert("Connect".into(), json!({"SidecarService": sidecar}));
    // `render` refused every other check kind: only HTTP checks run in the mesh.
    if let Some(check) = &s.check
        && let Some(CheckKind::Http(path)) = check.kind()
    {
        let c = json!({
            "Name": names::health_check(key),
            "Type": "http",
            "Path": path,
            "Expose": true,
            "Interval": check.interval.as_nanos(),
            "Timeout": check.timeout.as_nanos(),
        });
        service.insert("Checks".into(), json!([c]));
    }
    Value::Object(service)
}

fn task(spec: &ServiceSpec, key: &SpecKey, port_labels: &[String]) -> Value {
    let s = &spec.spec;
    let driver = spec.driver();
    let mut config = Map::new();
    match driver {
        Driver::Docker => {
            config.insert(
                "image".into(),
                json!(s.image.as_deref().unwrap_or_default()),
            );
            if !port_labels.is_empty() {
                config.insert("ports".into(), json!(port_labels));
            }
        }
        Driver::Exec => {
            config.insert(
                "command".into(),
                json!(s.command.as_deref().unwrap_or_default()),
            );
        }
    }
    if !s.args.is_empty() {
        config.insert("args".into(), json!(s.args));
    }
    let mut task = Map::new();
    task.insert("Name".into(), Value::from(TASK_NAME));
    task.insert("Driver".into(), Value::from(driver.as_str()));
    task.insert("Config".into(), Value::Object(config));
    if !s.env.is_empty() {
        task.insert("Env".into(), json!(s.env));
    }
    let mut resources = Map::new();
    resources.insert("CPU".into(), Value::from(s.resources.cpu));
    resources.insert("MemoryMB".into(), Value::from(s.resources.memory_mb));
    if let Some(max) = s.resources.memory_max_mb {
        resources.insert("MemoryMaxMB".into(), Value::from(max));
    }
    task.insert("Resources".into(), Value::Object(resources));
    if !s.secrets.is_empty() {
        task.insert("Vault".into(), json!({"Role": names::jwt_role(key)}));
    }
    Value::Object(task)
}
