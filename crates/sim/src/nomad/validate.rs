//! Job validation with the real server's messages (`structs.Job.Validate`,
//! `TaskGroup.Validate`, `Task.Validate`, the connect validator), formatted the way
//! `go-multierror` formats them.

use super::json::{arr, b, i, s};
use crate::blocking::format_go_duration;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// `go-multierror`'s list format.
pub(crate) fn multierror(errors: &[String]) -> String {
    if errors.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errors[0]);
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

fn go_dur(ns: i64) -> String {
    if ns < 0 {
        format!(
            "-{}",
            format_go_duration(Duration::from_nanos(ns.unsigned_abs()))
        )
    } else {
        format_go_duration(Duration::from_nanos(ns as u64))
    }
}

fn nested(errors: Vec<String>) -> Option<String> {
    if errors.is_empty() {
        None
    } else {
        Some(multierror(&errors))
    }
}

fn constraint_errors(list: &[Value], out: &mut Vec<String>) {
    for (idx, c) in list.iter().enumerate() {
        let mut errs = Vec::new();
        let operand = s(c, "Operand");
        if operand.is_empty() {
            errs.push("Missing constraint operand".to_string());
        }
        let requires_l = !matches!(operand, "distinct_hosts" | "distinct_property");
        if requires_l && s(c, "LTarget").is_empty() && operand != "distinct_hosts" {
            errs.push("No LTarget provided but is required by constraint".to_string());
        }
        match operand {
            "" | "=" | "==" | "is" | "!=" | "not" | "<" | "<=" | ">" | ">=" | "is_set"
            | "is_not_set" | "distinct_hosts" | "distinct_property" | "regexp" | "version"
            | "semver" | "set_contains" | "set_contains_all" | "set_contains_any" => {}
            other => errs.push(format!("Unknown constraint type {other:?}")),
        }
        if let Some(e) = nested(errs) {
            out.push(format!("Constraint {} validation failed: {e}", idx + 1));
        }
    }
}

fn update_errors(u: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    match s(u, "HealthCheck") {
        "checks" | "task_states" | "manual" => {}
        other => errs.push(format!("Invalid health check given: {other:?}")),
    }
    let max_parallel = i(u, "MaxParallel");
    if max_parallel < 0 {
        errs.push(format!(
            "Max parallel can not be less than zero: {max_parallel} < 0"
        ));
    }
    let canary = i(u, "Canary");
    if canary < 0 {
        errs.push(format!(
            "Canary count can not be less than zero: {canary} < 0"
        ));
    }
    if canary == 0 && b(u, "AutoPromote") {
        errs.push("Auto Promote requires a Canary count greater than zero".to_string());
    }
    let mht = i(u, "MinHealthyTime");
    let hd = i(u, "HealthyDeadline");
    let pd = i(u, "ProgressDeadline");
    if mht < 0 {
        errs.push(format!(
            "Minimum healthy time may not be less than zero: {}",
            go_dur(mht)
        ));
    }
    if hd <= 0 {
        errs.push(format!(
            "Healthy deadline must be greater than zero: {}",
            go_dur(hd)
        ));
    }
    if pd < 0 {
        errs.push(format!(
            "Progress deadline must be zero or greater: {}",
            go_dur(pd)
        ));
    }
    if mht >= hd {
        errs.push(format!(
            "Minimum healthy time must be less than healthy deadline: {} > {}",
            go_dur(mht),
            go_dur(hd)
        ));
    }
    if pd != 0 && hd >= pd {
        errs.push(format!(
            "Healthy deadline must be less than progress deadline: {} > {}",
            go_dur(hd),
            go_dur(pd)
        ));
    }
    if i(u, "Stagger") <= 0 {
        errs.push(format!(
            "Stagger must be greater than zero: {}",
            go_dur(i(u, "Stagger"))
        ));
    }
    errs
}

fn restart_errors(r: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    match s(r, "Mode") {
        "delay" | "fail" => {}
        other => errs.push(format!("Unsupported restart mode: {other:?}")),
    }
    if i(r, "Attempts") == 0 && s(r, "Mode") != "fail" {
        errs.push(format!(
            "Restart policy {:?} with {} attempts is ambiguous",
            s(r, "Mode"),
            i(r, "Attempts")
        ));
    }
    if i(r, "Interval") != 0 && i(r, "Interval") < 5_000_000_000 {
        errs.push(format!(
            "Interval can not be less than {} (got {})",
            go_dur(5_000_000_000),
            go_dur(i(r, "Interval"))
        ));
    }
    if i(r, "Interval") != 0 && i(r, "Attempts") > 0 {
        let delays = i(r, "Delay").saturating_mul(i(r, "Attempts"));
        if delays > i(r, "Interval") {
            errs.push(format!(
                "Nomad can't restart the TaskGroup {} times in an interval of {} with a delay of {}",
                i(r, "Attempts"),
                go_dur(i(r, "Interval")),
                go_dur(i(r, "Delay"))
            ));
        }
    }
    errs
}

fn service_name_ok(name: &str) -> bool {
    // Strip ${...} interpolations the way ReplaceEnvWithPlaceHolder does.
    let mut stripped = String::new();
    let mut rest = name;
    while let Some(start) = rest.find("${") {
        stripped.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                stripped.push_str("ENV-VAR");
                rest = &rest[start + end + 1..];
            }
            None => {
                stripped.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    stripped.push_str(rest);
    let bytes = stripped.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|c| alnum(*c) || *c == b'-')
}

/// `ServiceCheck.validateCommon` with the Consul provider's allowed types.
fn check_common_errors(c: &Value) -> Option<String> {
    let kind = s(c, "Type").to_ascii_lowercase();
    match kind.as_str() {
        "grpc" | "tcp" => {}
        "http" => {
            let path = s(c, "Path");
            if path.is_empty() {
                return Some("http type must have http path".into());
            }
            if path.contains("://") {
                return Some("http type must have relative http path".into());
            }
        }
        "script" => {
            if s(c, "Command").is_empty() {
                return Some("script type must have a valid script path".into());
            }
        }
        _ => {
            return Some(format!(
                "invalid check type ({kind:?}), must be one of grpc, tcp, http, script"
            ));
        }
    }
    let min = 1_000_000_000;
    let interval = i(c, "Interval");
    if interval == 0 {
        return Some(format!(
            "missing required value interval. Interval cannot be less than {}",
            go_dur(min)
        ));
    } else if interval < min {
        return Some(format!(
            "interval ({}) cannot be lower than {}",
            go_dur(interval),
            go_dur(min)
        ));
    }
    let timeout = i(c, "Timeout");
    if timeout == 0 {
        return Some(format!(
            "missing required value timeout. Timeout cannot be less than {}",
            go_dur(min)
        ));
    } else if timeout < min {
        return Some(format!(
            "timeout ({}) is lower than required minimum timeout {}",
            go_dur(timeout),
            go_dur(min)
        ));
    }
    match s(c, "InitialStatus") {
        "" | "passing" | "warning" | "critical" => {}
        other => {
            return Some(format!(
                "invalid initial check state ({other}), must be one of \"passing\", \"warning\", \"critical\" or empty"
            ));
        }
    }
    match s(c, "AddressMode") {
        "" | "host" | "driver" | "alloc" | "alloc_ipv6" => {}
        "auto" => {
            return Some("invalid address_mode \"auto\" - auto only valid for services".into());
        }
        other => return Some(format!("invalid address_mode {other:?}")),
    }
    match s(c, "OnUpdate") {
        "" | "require_healthy" | "ignore_warnings" | "ignore" => {}
        other => {
            return Some(format!(
                "on_update must be \"require_healthy\", \"ignore_warnings\", or \"ignore\"; got {other:?}"
            ));
        }
    }
    None
}

/// `ServiceCheck.validateConsul`: the common rules, then `expose` only on the check
/// types Envoy can expose.
fn check_errors(c: &Value) -> Option<String> {
    if let Some(e) = check_common_errors(c) {
        return Some(e);
    }
    let kind = s(c, "Type").to_ascii_lowercase();
    if b(c, "Expose") && !matches!(kind.as_str(), "grpc" | "http") {
        return Some("expose may only be set on HTTP or gRPC checks".into());
    }
    None
}

fn has_sidecar(sv: &Value) -> bool {
    sv["Connect"]["SidecarService"].is_object()
}

/// `Service.Validate` for the Consul provider (`validateConsulService`), in Nomad's
/// order: a check that fails one rule is not checked against the later ones.
fn service_errors(sv: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let name = s(sv, "Name");
    if !service_name_ok(name) {
        errs.push(format!(
            "Service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes and must be no longer than 63 characters: {name:?}"
        ));
    }
    match s(sv, "AddressMode") {
        "" | "auto" => {}
        "host" | "driver" | "alloc" | "alloc_ipv6" => {
            if !s(sv, "Address").is_empty() {
                errs.push("Service address_mode must be \"auto\" if address is set".to_string());
            }
        }
        other => errs.push(format!(
            "Service address_mode must be \"auto\", \"host\", or \"driver\"; not {other:?}"
        )),
    }
    match s(sv, "OnUpdate") {
        "" | "require_healthy" | "ignore_warnings" | "ignore" => {}
        other => errs.push(format!(
            "Service on_update must be \"require_healthy\", \"ignore_warnings\", or \"ignore\"; not {other:?}"
        )),
    }
    match s(sv, "Provider") {
        "consul" => {}
        "nomad" => {
            if sv["Connect"].is_object() {
                errs.push("Service with provider nomad cannot include Connect blocks".to_string());
            }
            return errs;
        }
        other => {
            errs.push(format!(
                "Service provider must be \"consul\", or \"nomad\"; not {other:?}"
            ));
            return errs;
        }
    }
    for c in arr(sv, "Checks") {
        let cname = s(c, "Name");
        let requires_port = matches!(s(c, "Type"), "grpc" | "http" | "tcp");
        if s(sv, "PortLabel").is_empty() && s(c, "PortLabel").is_empty() && requires_port {
            errs.push(format!(
                "Check {cname} invalid: check requires a port but neither check nor service {name:?} have a port"
            ));
            continue;
        }
        // Nomad's reason: the app of a Connect service listens inside the network
        // namespace, where the agent's TCP dial from the host cannot reach it.
        if s(c, "Type") == "tcp" && has_sidecar(sv) {
            errs.push(format!(
                "Check {cname} invalid: tcp checks are not valid for Connect enabled services"
            ));
            continue;
        }
        if let Some(e) = check_errors(c) {
            errs.push(format!("Check {cname} invalid: {e}"));
        }
    }
    errs
}

fn group_port_labels(g: &Value) -> Vec<String> {
    let mut labels = Vec::new();
    for n in arr(g, "Networks") {
        for p in arr(n, "DynamicPorts").iter().chain(arr(n, "ReservedPorts")) {
            labels.push(s(p, "Label").to_string());
        }
    }
    labels
}

/// `TaskGroup.validateNetworks` for group networks: unique labels, static ports
/// unique per host network and in range, `To` in range.
fn network_errors(g: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let mut labels: HashMap<String, ()> = HashMap::new();
    let mut statics: HashMap<(String, i64), String> = HashMap::new();
    for n in arr(g, "Networks") {
        let mode = s(n, "Mode");
        for p in arr(n, "ReservedPorts").iter().chain(arr(n, "DynamicPorts")) {
            let label = s(p, "Label").to_string();
            if labels.insert(label.clone(), ()).is_some() {
                errs.push(format!(
                    "Port label {label} already in use by taskgroup network"
                ));
            }
            let value = i(p, "Value");
            if value != 0 {
                let host = match s(p, "HostNetwork") {
                    "" => "default".to_string(),
                    h => h.to_string(),
                };
                if let Some(other) = statics.get(&(host.clone(), value)) {
                    if !b(p, "IgnoreCollision") {
                        errs.push(format!("Static port {value} already reserved by {other}"));
                    }
                } else if value > 65535 {
                    errs.push(format!(
                        "Port {label} ({value}) cannot be greater than 65535"
                    ));
                } else {
                    statics.insert((host, value), format!("taskgroup network:{label}"));
                }
            }
            let to = i(p, "To");
            if to < -1 {
                errs.push(format!(
                    "Port {label:?} cannot be mapped to negative value {to}"
                ));
            } else if to > 65535 {
                errs.push(format!(
                    "Port {label:?} cannot be mapped to a port ({to}) greater than 65535"
                ));
            }
            if b(p, "IgnoreCollision") && !(mode.is_empty() || mode == "host") {
                errs.push(format!(
                    "Port {label:?} collision may not be ignored on non-host network mode {mode:?}"
                ));
            }
        }
    }
    errs
}

fn group_service_errors(g: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let labels = group_port_labels(g);
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (idx, sv) in arr(g, "Services").iter().enumerate() {
        if let Some(e) = nested(service_errors(sv)) {
            errs.push(format!(
                "Service[{idx}] {} validation failed: {e}",
                s(sv, "Name")
            ));
            continue;
        }
        let port = s(sv, "PortLabel");
        if !port.is_empty() && port.parse::<u16>().is_err() && !labels.iter().any(|l| l == port) {
            missing
                .entry(port.to_string())
                .or_default()
                .push(s(sv, "Name").to_string());
        }
        for c in arr(sv, "Checks") {
            let cport = s(c, "PortLabel");
            if !cport.is_empty()
                && cport.parse::<u16>().is_err()
                && !labels.iter().any(|l| l == cport)
            {
                errs.push(format!(
                    "Check {:?} uses an undefined port label {cport:?}",
                    s(c, "Name")
                ));
            }
        }
    }
    for (label, services) in missing {
        errs.push(format!(
            "Port label {label} referenced by services {} does not exist",
            services.join(", ")
        ));
    }
    errs
}

fn task_errors(t: &Value, job_type: &str, g: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let name = s(t, "Name");
    if name.is_empty() {
        errs.push("Missing task name".to_string());
    }
    if name.contains('/') || name.contains('\\') {
        errs.push("Task name cannot include slashes".to_string());
    }
    if s(t, "Driver").is_empty() {
        errs.push("Missing task driver".to_string());
    }
    if i(t, "KillTimeout") < 0 {
        errs.push("KillTimeout must be a positive value".to_string());
    }
    if i(t, "ShutdownDelay") < 0 {
        errs.push("ShutdownDelay must be a positive value".to_string());
    }
    let r = &t["Resources"];
    let mut rerrs = Vec::new();
    if i(r, "Cores") > 0 && i(r, "CPU") > 0 {
        rerrs.push("Task can only ask for 'cpu' or 'cores' resource, not both.".to_string());
    }
    let mut min = Vec::new();
    if i(r, "CPU") < 1 && i(r, "Cores") == 0 {
        min.push(format!("minimum CPU value is 1; got {}", i(r, "CPU")));
    }
    if i(r, "MemoryMB") < 10 {
        min.push(format!(
            "minimum MemoryMB value is 10; got {}",
            i(r, "MemoryMB")
        ));
    }
    if let Some(e) = nested(min) {
        rerrs.push(e);
    }
    if i(r, "MemoryMaxMB") != 0 && i(r, "MemoryMaxMB") < i(r, "MemoryMB") {
        rerrs.push(format!(
            "MemoryMaxMB value ({}) should be larger than MemoryMB value ({})",
            i(r, "MemoryMaxMB"),
            i(r, "MemoryMB")
        ));
    }
    if let Some(e) = nested(rerrs) {
        errs.push(e);
    }
    let l = &t["LogConfig"];
    let mut lerrs = Vec::new();
    if i(l, "MaxFiles") < 1 {
        lerrs.push(format!(
            "minimum number of files is 1; got {}",
            i(l, "MaxFiles")
        ));
    }
    if i(l, "MaxFileSizeMB") < 1 {
        lerrs.push(format!(
            "minimum file size is 1MB; got {}",
            i(l, "MaxFileSizeMB")
        ));
    }
    let disk = i(&g["EphemeralDisk"], "SizeMB");
    let log_usage = i(l, "MaxFiles") * i(l, "MaxFileSizeMB");
    if lerrs.is_empty() && disk > 0 && log_usage > disk {
        lerrs.push(format!(
            "log storage ({log_usage} MB) must be less than requested disk capacity ({disk} MB)"
        ));
    }
    if let Some(e) = nested(lerrs) {
        errs.push(e);
    }
    constraint_errors(arr(t, "Constraints"), &mut errs);
    if job_type == "batch" || job_type == "sysbatch" {
        for sv in arr(t, "Services") {
            let _ = sv;
        }
    }
    let labels = group_port_labels(g);
    for sv in arr(t, "Services") {
        let serrs = service_errors(sv);
        if let Some(e) = nested(serrs) {
            errs.push(format!("service {:?} is invalid: {e}", s(sv, "Name")));
        }
        let port = s(sv, "PortLabel");
        if !port.is_empty() && port.parse::<u16>().is_err() && !labels.iter().any(|x| x == port) {
            errs.push(format!(
                "port label {port:?} referenced by services {} does not exist",
                s(sv, "Name")
            ));
        }
    }
    if let Some(v) = t.get("Vault").filter(|v| v.is_object()) {
        let mut verrs = Vec::new();
        match s(v, "ChangeMode") {
            "signal" => {
                if s(v, "ChangeSignal").is_empty() {
                    verrs.push(
                        "Signal must be specified when using change mode \"signal\"".to_string(),
                    );
                }
            }
            "noop" | "restart" => {}
            other => verrs.push(format!("Unknown change mode {other:?}")),
        }
        if let Some(e) = nested(verrs) {
            errs.push(format!("Vault validation failed: {e}"));
        }
    }
    if let Some(l) = t.get("Lifecycle").filter(|l| l.is_object()) {
        match s(l, "Hook") {
            "prestart" | "poststart" | "poststop" => {}
            "" => errs.push("no lifecycle hook provided".to_string()),
            other => errs.push(format!("invalid hook: {other}")),
        }
    }
    for tmpl in arr(t, "Templates") {
        if s(tmpl, "SourcePath").is_empty() && s(tmpl, "EmbeddedTmpl").is_empty() {
            errs.push("Template 1 validation failed: Must specify a source path or have an embedded template".to_string());
        }
    }
    errs
}

fn group_errors(g: &Value, job: &Value) -> Vec<String> {
    let job_type = s(job, "Type");
    let mut errs = Vec::new();
    if s(g, "Name").is_empty() {
        errs.push("Missing task group name".to_string());
    }
    if i(g, "Count") < 0 {
        errs.push("Task group count can't be negative".to_string());
    }
    if arr(g, "Tasks").is_empty() {
        errs.push("Missing tasks for task group".to_string());
    }
    constraint_errors(arr(g, "Constraints"), &mut errs);
    if let Some(r) = g.get("RestartPolicy").filter(|r| r.is_object()) {
        errs.extend(restart_errors(r));
    }
    if let Some(r) = g.get("ReschedulePolicy").filter(|r| r.is_object()) {
        let mut rerrs = Vec::new();
        let func = s(r, "DelayFunction");
        if !matches!(func, "constant" | "exponential" | "fibonacci")
            && (i(r, "Attempts") > 0 || b(r, "Unlimited"))
        {
            rerrs.push(format!(
                "Invalid delay function {func:?}, must be one of [\"constant\" \"exponential\" \"fibonacci\"]"
            ));
        }
        if b(r, "Unlimited") && i(r, "Delay") < 5_000_000_000 {
            rerrs.push(format!(
                "Delay cannot be less than {} (got {})",
                go_dur(5_000_000_000),
                go_dur(i(r, "Delay"))
            ));
        }
        if let Some(e) = nested(rerrs) {
            errs.push(e);
        }
    }
    if i(&g["EphemeralDisk"], "SizeMB") < 10 {
        errs.push(format!(
            "minimum DiskMB value is 10; got {}",
            i(&g["EphemeralDisk"], "SizeMB")
        ));
    }
    if let Some(u) = g.get("Update").filter(|u| u.is_object()) {
        if !matches!(job_type, "service" | "system") {
            errs.push(format!("Job type {job_type:?} does not allow update block"));
        }
        if let Some(e) = nested(update_errors(u)) {
            errs.push(e);
        }
    }
    if job_type != "service" && g.get("Migrate").is_some_and(|m| m.is_object()) {
        errs.push(format!(
            "Job type {job_type:?} does not allow migrate block"
        ));
    }
    let mut tasks: HashMap<String, usize> = HashMap::new();
    let mut leaders = 0;
    for (idx, t) in arr(g, "Tasks").iter().enumerate() {
        let name = s(t, "Name").to_string();
        if name.is_empty() {
            errs.push(format!("Task {} missing name", idx + 1));
        } else if let Some(existing) = tasks.get(&name) {
            errs.push(format!(
                "Task {} redefines '{}' from task {}",
                idx + 1,
                name,
                existing + 1
            ));
        } else {
            tasks.insert(name, idx);
        }
        if b(t, "Leader") {
            leaders += 1;
        }
    }
    if leaders > 1 {
        errs.push("Only one task may be marked as leader".to_string());
    }
    if let Some(e) = nested(network_errors(g)) {
        errs.push(format!("Task group network validation failed: {e}"));
    }
    if let Some(e) = nested(group_service_errors(g)) {
        errs.push(format!("Task group service validation failed: {e}"));
    }
    for t in arr(g, "Tasks") {
        if let Some(e) = nested(task_errors(t, job_type, g)) {
            errs.push(format!("Task {} validation failed: {e}", s(t, "Name")));
        }
    }
    errs
}

fn periodic_errors(p: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if !b(p, "Enabled") {
        return errs;
    }
    let spec = s(p, "Spec");
    if !spec.is_empty() && !arr(p, "Specs").is_empty() {
        errs.push("Only cron or crons may be used".to_string());
    }
    if spec.is_empty() && arr(p, "Specs").is_empty() {
        errs.push("Must specify a spec".to_string());
    }
    let tz = s(p, "TimeZone");
    if !tz.is_empty() && jiff::tz::TimeZone::get(tz).is_err() {
        errs.push(format!("Invalid time zone {tz:?}: unknown time zone {tz}"));
    }
    match s(p, "SpecType") {
        "cron" => {
            let mut specs: Vec<&str> = arr(p, "Specs").iter().filter_map(Value::as_str).collect();
            if !spec.is_empty() {
                specs.insert(0, spec);
            }
            for sp in specs {
                if let Err(e) = super::periodic::parse_cron(sp) {
                    errs.push(format!("Invalid cron spec {sp:?}: {e}"));
                }
            }
        }
        "test" => {}
        other => errs.push(format!("Unknown periodic specification type {other:?}")),
    }
    errs
}

/// `groupConnectSidecarValidate` then `groupConnectUpstreamsValidate`: the network
/// rules of a group whose service has a sidecar, and distinct upstream listeners.
fn connect_errors(g: &Value) -> Option<String> {
    let gname = s(g, "Name");
    let mut listeners: HashMap<String, String> = HashMap::new();
    for sv in arr(g, "Services").iter().filter(|sv| has_sidecar(sv)) {
        let nets = arr(g, "Networks");
        if nets.len() != 1 {
            return Some(format!(
                "connect sidecar: must have exactly one network for Consul Connect: group {gname:?} has {} networks",
                nets.len()
            ));
        }
        let mode = s(&nets[0], "Mode");
        if mode != "bridge" && !mode.starts_with("cni/") {
            return Some(format!(
                "connect sidecar: invalid network mode for Consul Connect: group {gname:?} uses network mode {mode:?}; must be \"bridge\" or \"cni/*\""
            ));
        }
        let svc_name = s(sv, "Name");
        if svc_name.chars().any(|c| c.is_ascii_uppercase()) {
            return Some(format!(
                "Consul Connect service name {svc_name:?} in group {gname:?} must not contain uppercase characters"
            ));
        }
        if gname.chars().any(|c| c.is_ascii_uppercase()) {
            return Some(format!(
                "Consul Connect group {gname:?} with service {svc_name:?} must not contain uppercase characters"
            ));
        }
        for up in arr(&sv["Connect"]["SidecarService"]["Proxy"], "Upstreams") {
            let addr = s(up, "LocalBindAddress");
            // net.JoinHostPort brackets IPv6 literals.
            let host = if addr.contains(':') {
                format!("[{addr}]")
            } else {
                addr.to_string()
            };
            let listener = format!("{host}:{}", i(up, "LocalBindPort"));
            if let Some(other) = listeners.insert(listener.clone(), svc_name.to_string()) {
                return Some(format!(
                    "Consul Connect services {svc_name:?} and {other:?} in group {gname:?} using same address for upstreams ({listener})"
                ));
            }
        }
    }
    None
}

/// `jobExposeCheckHook.Validate`: an exposed check needs one bridge network and a
/// group service with a sidecar.
fn expose_errors(g: &Value) -> Option<String> {
    let gname = s(g, "Name");
    let exposes = |sv: &Value| arr(sv, "Checks").iter().any(|c| b(c, "Expose"));
    if arr(g, "Services").iter().any(exposes) {
        let nets = arr(g, "Networks");
        if nets.len() != 1 {
            return Some(format!(
                "connect expose check: must have exactly one network for Consul Connect: group {gname:?} has {} networks",
                nets.len()
            ));
        }
        let mode = s(&nets[0], "Mode");
        if mode != "bridge" && !mode.starts_with("cni/") {
            return Some(format!(
                "connect expose check: invalid network mode for Consul Connect: group {gname:?} uses network mode {mode:?}; must be \"bridge\" or \"cni/*\""
            ));
        }
    }
    for sv in arr(g, "Services") {
        for c in arr(sv, "Checks") {
            if b(c, "Expose") && !has_sidecar(sv) {
                return Some(format!(
                    "exposed service check {gname}->{}->{} requires use of sidecar_proxy",
                    s(sv, "Name"),
                    s(c, "Name")
                ));
            }
        }
    }
    None
}

/// Validation errors (top level, flattened as the server's multierror is) and
/// warnings for a canonical job, on a server whose scheduler configuration has
/// memory oversubscription on or off.
pub(crate) fn validate(job: &Value, oversubscription: bool) -> (Vec<String>, Vec<String>) {
    let mut errs = Vec::new();
    let mut warnings = Vec::new();
    if s(job, "Region").is_empty() {
        errs.push("Missing job region".to_string());
    }
    let id = s(job, "ID");
    if id.is_empty() {
        errs.push("Missing job ID".to_string());
    } else if id.contains(' ') {
        errs.push("Job ID contains a space".to_string());
    } else if id.contains('\0') {
        errs.push("Job ID contains a null character".to_string());
    }
    let name = s(job, "Name");
    if name.is_empty() {
        errs.push("Missing job name".to_string());
    } else if name.contains('\0') {
        errs.push("Job Name contains a null character".to_string());
    }
    if s(job, "Namespace").is_empty() {
        errs.push("Job must be in a namespace".to_string());
    }
    let job_type = s(job, "Type");
    match job_type {
        "service" | "batch" | "system" | "sysbatch" => {}
        "" => errs.push("Missing job type".to_string()),
        "_core" => {}
        other => errs.push(format!("Invalid job type: {other:?}")),
    }
    let dcs = arr(job, "Datacenters");
    if dcs.is_empty() {
        errs.push("Missing job datacenters".to_string());
    }
    if dcs.iter().any(|d| d.as_str().is_some_and(str::is_empty)) {
        errs.push("Job datacenter must be non-empty string".to_string());
    }
    let groups = arr(job, "TaskGroups");
    if groups.is_empty() {
        errs.push("Missing job task groups".to_string());
    }
    constraint_errors(arr(job, "Constraints"), &mut errs);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (idx, g) in groups.iter().enumerate() {
        let gname = s(g, "Name").to_string();
        if gname.is_empty() {
            errs.push(format!("Job task group {} missing name", idx + 1));
        } else if let Some(existing) = seen.get(&gname) {
            errs.push(format!(
                "Job task group {} redefines '{}' from group {}",
                idx + 1,
                gname,
                existing + 1
            ));
        } else {
            seen.insert(gname.clone(), idx);
        }
        if job_type == "system" && i(g, "Count") > 1 {
            errs.push(format!(
                "Job task group {} has count {}. Count cannot exceed 1 with system scheduler",
                gname,
                i(g, "Count")
            ));
        }
    }
    for g in groups {
        if let Some(e) = nested(group_errors(g, job)) {
            errs.push(format!(
                "Task group {} validation failed: {e}",
                s(g, "Name")
            ));
        }
        // Warnings (Job.Warnings): max_parallel greater than count.
        if let Some(u) = g.get("Update").filter(|u| u.is_object()) {
            let mp = i(u, "MaxParallel");
            let count = i(g, "Count");
            if mp > count && s(job, "Type") != "system" {
                warnings.push(format!(
                    "Group {:?} has warnings: {}",
                    s(g, "Name"),
                    multierror(&[format!("Update max parallel count is greater than task group count ({mp} > {count}). A destructive change would result in the simultaneous replacement of all allocations.")])
                ));
            }
        }
    }
    if let Some(p) = job.get("Periodic").filter(|p| p.is_object())
        && b(p, "Enabled")
    {
        if job_type != "batch" && job_type != "sysbatch" {
            errs.push(
                "Periodic can only be used with \"batch\" or \"sysbatch\" scheduler".to_string(),
            );
        }
        if let Some(e) = nested(periodic_errors(p)) {
            errs.push(e);
        }
    }
    if job.get("ParameterizedJob").is_some_and(|p| p.is_object())
        && job_type != "batch"
        && job_type != "sysbatch"
    {
        errs.push(
            "Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler"
                .to_string(),
        );
    }
    let priority = i(job, "Priority");
    if !(1..=100).contains(&priority) {
        errs.push("job priority must be between [1, 100]".to_string());
    }
    // The admission validators run in Nomad's order (connect, expose, ..., then the
    // job's own Validate); each adds at most its first error, ahead of the job's.
    let mut admission = Vec::new();
    if let Some(e) = groups.iter().find_map(connect_errors) {
        admission.push(e);
    }
    if let Some(e) = groups.iter().find_map(expose_errors) {
        admission.push(e);
    }
    admission.append(&mut errs);
    let errs = admission;
    for g in groups {
        for t in arr(g, "Tasks") {
            for wid in arr(t, "Identities") {
                if s(wid, "Name").starts_with("vault_") && !t["Vault"].is_object() {
                    warnings.push(format!(
                        "Task {} has an identity called {} but no vault block",
                        s(t, "Name"),
                        s(wid, "Name")
                    ));
                }
            }
        }
    }
    // `memoryOversubscriptionValidate`, after the job's own Validate.
    for g in groups.iter().filter(|_| !oversubscription) {
        for t in arr(g, "Tasks") {
            if i(&t["Resources"], "MemoryMaxMB") != 0 {
                warnings.push(format!(
                    "Memory oversubscription is not enabled; Task \"{}.{}\" memory_max value will be ignored. Update the Scheduler Configuration to allow oversubscription.",
                    s(g, "Name"),
                    s(t, "Name")
                ));
            }
        }
    }
    (errs, warnings)
}

/// The `Warnings` string of a register/validate response.
pub(crate) fn warnings_text(warnings: &[String]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let points: Vec<String> = warnings.iter().map(|w| format!("* {w}")).collect();
    format!("{} warning(s):\n\n{}", warnings.len(), points.join("\n"))
}
