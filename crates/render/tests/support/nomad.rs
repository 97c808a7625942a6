//! What Nomad returns for a registered job (reference §6.6 and the captured fixtures).
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{SEC, default, null_if_empty, obj_mut, sort_keys};

/// What `GET /v1/job/<id>` returns for a registered `Job` object, applying the
/// canonicalisation and admission hooks of reference §6.6 (defaults, job-level update
/// merged into groups, restart/reschedule/migrate policies, injected Connect sidecar
/// task and port, exposed-check port and expose path, implicit constraints, workload
/// identities, Vault block defaults, status and indexes), shaped like the captured
/// `job-get-order-api` response.
pub fn canonicalise_like_nomad(job: &Value) -> Value {
    let mut job = job.clone();
    let top = obj_mut(&mut job);
    let id = top["ID"].clone();
    default(top, "Name", id);
    default(top, "Namespace", json!("default"));
    default(top, "Type", json!("service"));
    let job_type = top["Type"].as_str().unwrap().to_owned();
    let batch = job_type == "batch";
    if top
        .get("Datacenters")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        top.insert("Datacenters".into(), json!(["*"]));
    }
    for (k, v) in [
        ("Region", json!("global")),
        ("Priority", json!(50)),
        ("AllAtOnce", json!(false)),
        ("Stop", json!(false)),
        ("NodePool", json!("default")),
        ("ConsulNamespace", json!("")),
        ("VaultNamespace", json!("")),
        ("NomadTokenID", json!("")),
        ("ParentID", json!("")),
        ("Dispatched", json!(false)),
        ("Status", json!(if batch { "running" } else { "pending" })),
        ("StatusDescription", json!("")),
        ("Stable", json!(false)),
        ("Version", json!(0)),
        ("SubmitTime", json!(1_795_678_360_940_642_579_u64)),
        ("CreateIndex", json!(11)),
        ("ModifyIndex", json!(11)),
        ("JobModifyIndex", json!(11)),
    ] {
        default(top, k, v);
    }
    for k in [
        "Meta",
        "Constraints",
        "Affinities",
        "Spreads",
        "Payload",
        "Multiregion",
        "ParameterizedJob",
        "Periodic",
        "UI",
    ] {
        null_if_empty(top, k);
    }
    if let Some(periodic) = top.get_mut("Periodic").and_then(Value::as_object_mut) {
        default(periodic, "SpecType", json!("cron"));
        default(periodic, "TimeZone", json!("UTC"));
        default(periodic, "ProhibitOverlap", json!(false));
        default(periodic, "Enabled", json!(true));
    }
    let job_update = top.get("Update").cloned().filter(Value::is_object);
    let job_max_parallel = job_update
        .as_ref()
        .and_then(|u| u.get("MaxParallel").cloned());
    let job_stagger = job_update.as_ref().and_then(|u| u.get("Stagger").cloned());
    top.insert(
        "Update".into(),
        json!({
            "AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "",
            "HealthyDeadline": 0, "MinHealthyTime": 0, "ProgressDeadline": 0,
            "MaxParallel": if batch { json!(0) } else { job_max_parallel.unwrap_or(json!(1)) },
            "Stagger": if batch { json!(0) } else { job_stagger.unwrap_or(json!(30 * SEC)) },
        }),
    );
    let groups = top
        .get_mut("TaskGroups")
        .and_then(Value::as_array_mut)
        .expect("TaskGroups");
    for group in groups.iter_mut() {
        canonicalise_group(obj_mut(group), batch, job_update.as_ref());
    }
    sort_keys(&job)
}

fn restart_policy(batch: bool) -> Value {
    if batch {
        json!({"Attempts": 3, "Delay": 15 * SEC, "Interval": 86_400 * SEC, "Mode": "fail", "RenderTemplates": false})
    } else {
        json!({"Attempts": 2, "Delay": 15 * SEC, "Interval": 1_800 * SEC, "Mode": "fail", "RenderTemplates": false})
    }
}

fn canonicalise_group(group: &mut Map<String, Value>, batch: bool, job_update: Option<&Value>) {
    default(group, "Count", json!(1));
    for k in [
        "Affinities",
        "Spreads",
        "Meta",
        "Scaling",
        "ShutdownDelay",
        "StopAfterClientDisconnect",
        "Volumes",
        "MaxClientDisconnect",
    ] {
        null_if_empty(group, k);
    }
    default(
        group,
        "Consul",
        json!({"Cluster": "default", "Namespace": "", "Partition": ""}),
    );
    default(
        group,
        "EphemeralDisk",
        json!({"Migrate": false, "SizeMB": 300, "Sticky": false}),
    );
    default(group, "RestartPolicy", restart_policy(batch));
    let reschedule = if batch {
        json!({"Attempts": 1, "Delay": 5 * SEC, "DelayFunction": "constant", "Interval": 86_400 * SEC, "MaxDelay": 0, "Unlimited": false})
    } else {
        json!({"Attempts": 0, "Delay": 30 * SEC, "DelayFunction": "exponential", "Interval": 0, "MaxDelay": 3_600 * SEC, "Unlimited": true})
    };
    default(group, "ReschedulePolicy", reschedule);
    if batch {
        group.insert("Migrate".into(), Value::Null);
        group.insert("Update".into(), Value::Null);
    } else {
        default(
            group,
            "Migrate",
            json!({"HealthCheck": "checks", "HealthyDeadline": 300 * SEC, "MaxParallel": 1, "MinHealthyTime": 10 * SEC}),
        );
        let mut update = json!({
            "AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "checks",
            "HealthyDeadline": 300 * SEC, "MaxParallel": 1, "MinHealthyTime": 10 * SEC,
            "ProgressDeadline": 600 * SEC, "Stagger": 30 * SEC,
        });
        for layer in [job_update, group.get("Update")].into_iter().flatten() {
            for (k, v) in layer.as_object().into_iter().flatten() {
                obj_mut(&mut update).insert(k.clone(), v.clone());
            }
        }
        group.insert("Update".into(), update);
    }

    let bridge = canonicalise_networks(group);
    let (injected_tasks, injected_ports) = canonicalise_services(group);
    if let Some(network) = group
        .get_mut("Networks")
        .and_then(Value::as_array_mut)
        .and_then(|n| n.first_mut())
    {
        let n = obj_mut(network);
        if !n.get("DynamicPorts").is_some_and(Value::is_array) {
            n.insert("DynamicPorts".into(), json!([]));
        }
        let ports = n
            .get_mut("DynamicPorts")
            .and_then(Value::as_array_mut)
            .unwrap();
        for (label, to) in injected_ports {
            ports.push(json!({"HostNetwork": "default", "IgnoreCollision": false, "Label": label, "To": to, "Value": 0}));
        }
    }
    canonicalise_tasks(group);
    let mut constraints = group
        .get("Constraints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if bridge {
        constraints.push(json!({"LTarget": "${attr.plugins.cni.version.bridge}", "Operand": "semver", "RTarget": ">= 0.4.0"}));
    }
    if let Some(tasks) = group.get_mut("Tasks").and_then(Value::as_array_mut) {
        // The sidecar is a prestart task: Nomad lists it after the group's own tasks.
        tasks.extend(injected_tasks);
    }
    group.insert(
        "Constraints".into(),
        if constraints.is_empty() {
            Value::Null
        } else {
            Value::Array(constraints)
        },
    );
}

/// Defaults on every network and port; whether a network is in bridge mode.
fn canonicalise_networks(group: &mut Map<String, Value>) -> bool {
    let mut bridge = false;
    for network in group
        .get_mut("Networks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let n = obj_mut(network);
        for (k, v) in [
            ("CIDR", json!("")),
            ("Device", json!("")),
            ("IP", json!("")),
            ("Hostname", json!("")),
            ("MBits", json!(0)),
            ("Mode", json!("")),
        ] {
            default(n, k, v);
        }
        bridge |= n["Mode"] == "bridge";
        null_if_empty(n, "DNS");
        null_if_empty(n, "ReservedPorts");
        for port in n
            .get_mut("DynamicPorts")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let p = obj_mut(port);
            default(p, "HostNetwork", json!("default"));
            default(p, "To", json!(0));
            default(p, "Value", json!(0));
            default(p, "IgnoreCollision", json!(false));
        }
    }
    null_if_empty(group, "Networks");
    bridge
}

/// Service defaults, exposed checks and Connect injection: the sidecar tasks and the
/// `(label, To)` ports to add to the group network.
fn canonicalise_services(group: &mut Map<String, Value>) -> (Vec<Value>, Vec<(String, i64)>) {
    let mut injected_tasks = Vec::new();
    let mut injected_ports = Vec::new();
    let services = group
        .get_mut("Services")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut new_services = Vec::new();
    for mut service in services {
        let s = obj_mut(&mut service);
        let name = s["Name"].as_str().unwrap().to_owned();
        for (k, v) in [
            ("AddressMode", json!("auto")),
            ("Address", json!("")),
            ("Cluster", json!("default")),
            ("EnableTagOverride", json!(false)),
            ("Namespace", json!("default")),
            ("OnUpdate", json!("require_healthy")),
            ("PortLabel", json!("")),
            ("Provider", json!("consul")),
            ("TaskName", json!("")),
            ("Kind", json!("")),
        ] {
            default(s, k, v);
        }
        for k in [
            "Tags",
            "CanaryTags",
            "Meta",
            "CanaryMeta",
            "TaggedAddresses",
            "Weights",
            "Checks",
        ] {
            null_if_empty(s, k);
        }
        s.insert(
            "Identity".into(),
            json!({"Audience": ["consul.io"], "ChangeMode": "", "ChangeSignal": "", "Env": false, "File": false,
                   "Name": format!("consul-service_{name}"), "ServiceName": name, "TTL": 3_600 * SEC}),
        );
        let service_port = s["PortLabel"]
            .as_str()
            .unwrap_or_default()
            .parse::<u64>()
            .unwrap_or(0);
        let has_sidecar = s
            .get("Connect")
            .and_then(|c| c.get("SidecarService"))
            .is_some_and(Value::is_object);
        let mut expose_paths = Vec::new();
        for (i, check) in s
            .get_mut("Checks")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let c = obj_mut(check);
            for (k, v) in [
                ("AddressMode", json!("")),
                ("Body", json!("")),
                ("Command", json!("")),
                ("Expose", json!(false)),
                ("FailuresBeforeCritical", json!(0)),
                ("FailuresBeforeWarning", json!(0)),
                ("GRPCService", json!("")),
                ("GRPCUseTLS", json!(false)),
                ("InitialStatus", json!("")),
                ("Method", json!("")),
                ("OnUpdate", json!("require_healthy")),
                ("Path", json!("")),
                ("PortLabel", json!("")),
                ("Protocol", json!("")),
                ("SuccessBeforePassing", json!(0)),
                ("TLSServerName", json!("")),
                ("TLSSkipVerify", json!(false)),
                ("TaskName", json!("")),
            ] {
                default(c, k, v);
            }
            for k in ["Args", "CheckRestart", "Header"] {
                null_if_empty(c, k);
            }
            let exposable =
                c["Type"] == "http" && c["Path"].as_str().is_some_and(|p| p.starts_with('/'));
            if has_sidecar && c["Expose"] == true && exposable && c["PortLabel"] == "" {
                let digest = hex::encode(Sha256::digest(
                    format!("{}_{name}_{i}", c["Name"]).as_bytes(),
                ));
                let label = format!("svc_{name}_ck_{}", &digest[..6]);
                injected_ports.push((label.clone(), -1));
                c.insert("PortLabel".into(), json!(label));
                expose_paths.push(json!({"ListenerPort": label, "LocalPathPort": service_port, "Path": c["Path"], "Protocol": ""}));
            }
        }
        if let Some(connect) = s.get_mut("Connect").and_then(Value::as_object_mut) {
            default(connect, "Native", json!(false));
            null_if_empty(connect, "Gateway");
            null_if_empty(connect, "SidecarTask");
            if let Some(sidecar) = connect
                .get_mut("SidecarService")
                .and_then(Value::as_object_mut)
            {
                default(sidecar, "DisableDefaultTCPCheck", json!(false));
                default(sidecar, "Port", json!(""));
                null_if_empty(sidecar, "Tags");
                null_if_empty(sidecar, "Meta");
                default(sidecar, "Proxy", json!({}));
                let proxy = sidecar
                    .get_mut("Proxy")
                    .and_then(Value::as_object_mut)
                    .unwrap();
                default(proxy, "LocalServiceAddress", json!(""));
                default(proxy, "LocalServicePort", json!(0));
                null_if_empty(proxy, "Config");
                null_if_empty(proxy, "TransparentProxy");
                for upstream in proxy
                    .get_mut("Upstreams")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let u = obj_mut(upstream);
                    for (k, v) in [
                        ("Datacenter", json!("")),
                        ("DestinationNamespace", json!("")),
                        ("DestinationPartition", json!("")),
                        ("DestinationPeer", json!("")),
                        ("DestinationType", json!("")),
                        ("LocalBindAddress", json!("")),
                        ("LocalBindSocketMode", json!("")),
                        ("LocalBindSocketPath", json!("")),
                        ("MeshGateway", json!({"Mode": ""})),
                    ] {
                        default(u, k, v);
                    }
                    null_if_empty(u, "Config");
                }
                null_if_empty(proxy, "Upstreams");
                proxy.insert(
                    "Expose".into(),
                    if expose_paths.is_empty() {
                        Value::Null
                    } else {
                        json!({"Paths": expose_paths})
                    },
                );
            }
            if has_sidecar {
                injected_ports.insert(0, (format!("connect-proxy-{name}"), -1));
                injected_tasks.push(sidecar_task(&name));
            }
        }
        new_services.push(service);
    }
    if !new_services.is_empty() {
        group.insert("Services".into(), Value::Array(new_services));
    }
    (injected_tasks, injected_ports)
}

/// Task defaults, the Vault block, workload identities and implicit constraints.
fn canonicalise_tasks(group: &mut Map<String, Value>) {
    let restart = group["RestartPolicy"].clone();
    for task in group
        .get_mut("Tasks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let t = obj_mut(task);
        for (k, v) in [
            ("KillSignal", json!("")),
            ("KillTimeout", json!(5 * SEC)),
            ("Kind", json!("")),
            ("Leader", json!(false)),
            ("ShutdownDelay", json!(0)),
            ("User", json!("")),
            (
                "LogConfig",
                json!({"Disabled": false, "MaxFileSizeMB": 10, "MaxFiles": 10}),
            ),
            ("RestartPolicy", restart.clone()),
        ] {
            default(t, k, v);
        }
        for k in [
            "Affinities",
            "Artifacts",
            "CSIPluginConfig",
            "Constraints",
            "DispatchPayload",
            "Env",
            "Lifecycle",
            "Meta",
            "ScalingPolicies",
            "Services",
            "Templates",
            "VolumeMounts",
            "Vault",
        ] {
            null_if_empty(t, k);
        }
        let resources = t.entry("Resources").or_insert_with(|| json!({}));
        let r = obj_mut(resources);
        for (k, v) in [
            ("CPU", json!(100)),
            ("Cores", json!(0)),
            ("DiskMB", json!(0)),
            ("IOPS", json!(0)),
            ("MemoryMB", json!(300)),
            ("MemoryMaxMB", json!(0)),
            ("SecretsMB", json!(0)),
        ] {
            default(r, k, v);
        }
        for k in ["Devices", "NUMA", "Networks"] {
            null_if_empty(r, k);
        }
        t.insert(
            "Identity".into(),
            json!({"Audience": ["nomadproject.io"], "ChangeMode": "", "ChangeSignal": "", "Env": false, "File": false, "Name": "default", "ServiceName": "", "TTL": 0}),
        );
        if let Some(vault) = t.get_mut("Vault").and_then(Value::as_object_mut) {
            for (k, v) in [
                ("AllowTokenExpiration", json!(false)),
                ("ChangeMode", json!("restart")),
                ("ChangeSignal", json!("SIGHUP")),
                ("Cluster", json!("default")),
                ("DisableFile", json!(false)),
                ("Env", json!(true)),
                ("Namespace", json!("")),
            ] {
                default(vault, k, v);
            }
            t.insert(
                "Identities".into(),
                json!([{"Audience": ["vault.io"], "ChangeMode": "", "ChangeSignal": "", "Env": false, "File": false, "Name": "vault_default", "ServiceName": "", "TTL": 3_600 * SEC}]),
            );
            t.insert(
                "Constraints".into(),
                json!([{"LTarget": "${attr.vault.version}", "Operand": "semver", "RTarget": ">= 0.6.1"}]),
            );
        } else {
            t.insert("Identities".into(), Value::Null);
        }
    }
}

/// The Connect sidecar task Nomad injects (from the captured `job-get-order-api`).
fn sidecar_task(service: &str) -> Value {
    json!({
        "Name": format!("connect-proxy-{service}"),
        "Kind": format!("connect-proxy:{service}"),
        "Driver": "docker",
        "Config": {
            "image": "${meta.connect.sidecar_image}",
            "args": ["-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json", "-l", "${meta.connect.log_level}",
                     "--concurrency", "${meta.connect.proxy_concurrency}", "--disable-hot-restart"]
        },
        "Constraints": [
            {"LTarget": "${attr.consul.version}", "Operand": "semver", "RTarget": ">= 1.8.0"},
            {"LTarget": "${attr.consul.grpc}", "Operand": ">", "RTarget": "0"}
        ],
        "Env": null,
        "KillSignal": "",
        "KillTimeout": 5 * SEC,
        "Leader": false,
        "Lifecycle": {"Hook": "prestart", "Sidecar": true},
        "LogConfig": {"Disabled": false, "MaxFileSizeMB": 2, "MaxFiles": 2},
        "Resources": {"CPU": 250, "Cores": 0, "Devices": null, "DiskMB": 0, "IOPS": 0, "MemoryMB": 128, "MemoryMaxMB": 0, "Networks": null},
        "ShutdownDelay": 5 * SEC,
        "Vault": null,
        "Identity": {"Audience": ["nomadproject.io"], "Name": "default", "TTL": 0}
    })
}
