//! Rules on identity and the workload: names, labels, driver, image, resources, env,
//! datacenters, update policy and health check.

use crate::duration::Duration;
use crate::finding::Finding;
use crate::image::ImageRef;
use crate::path::FieldPath;
use crate::types::{CheckKind, ServiceSpec, Update};

use super::{body, check_dns_label, http_path_problem};

pub(super) fn check(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    metadata(spec, out);
    driver(spec, out);
    resources(spec, out);
    env(spec, out);
    datacenters(spec, out);
    update(spec, out);
    health_check(spec, out);
}

fn metadata(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let meta = FieldPath::root().key("metadata");
    out.extend(check_dns_label(
        meta.key("name"),
        &spec.metadata.name,
        "name",
        "invalid-name",
    ));
    out.extend(check_dns_label(
        meta.key("namespace"),
        &spec.metadata.namespace,
        "namespace",
        "invalid-namespace",
    ));
    for (key, value) in &spec.metadata.labels {
        let path = meta.key("labels").key(key.clone());
        if let Some(problem) = label_key_problem(key) {
            out.push(Finding::error(path.clone(), "invalid-label", problem).at_key());
        }
        if value.len() > 63 {
            out.push(Finding::error(
                path,
                "invalid-label",
                "label values are at most 63 characters",
            ));
        }
    }
}

fn label_key_problem(key: &str) -> Option<String> {
    if key.starts_with("steward.") || key.starts_with("steward/") {
        return Some(format!(
            "label `{key}`: the `steward.` and `steward/` prefixes are reserved for Steward's own metadata"
        ));
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|l| super::dns_label_problem(l).is_none());
        if !valid_prefix {
            return Some(format!(
                "label `{key}`: the prefix before `/` must be a lower-case DNS name"
            ));
        }
    }
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (!valid).then(|| {
        format!("label `{key}`: use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit")
    })
}

fn driver(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let s = &spec.spec;
    let image_path = body().key("image");
    let command_path = body().key("command");
    match (&s.image, &s.command) {
        (Some(_), Some(_)) => out.push(
            Finding::error(
                command_path.clone(),
                "driver-conflict",
                "set either `image` (docker driver) or `command` (exec driver), not both",
            )
            .at_key()
            .related(image_path.clone()),
        ),
        (None, None) => out.push(
            Finding::error(
                image_path.clone(),
                "missing-driver",
                "set `image` (docker driver) or `command` (exec driver)",
            )
            .related(command_path.clone()),
        ),
        _ => {}
    }
    if let Some(image) = &s.image {
        match ImageRef::parse(image) {
            Ok(reference) if !reference.is_pinned() => out.push(Finding::warning(
                image_path,
                "unpinned-image",
                format!("image `{image}` is not pinned to a version; add a tag other than `latest` or a `@sha256:` digest"),
            )),
            Ok(_) => {}
            Err(error) => out.push(Finding::error(
                image_path,
                "invalid-image",
                format!("invalid image reference `{image}`: {error}"),
            )),
        }
    }
    if let Some(command) = &s.command {
        if command.trim().is_empty() {
            out.push(Finding::error(
                command_path,
                "invalid-command",
                "`command` must not be empty",
            ));
        } else if command.chars().any(char::is_whitespace) {
            out.push(Finding::error(
                command_path,
                "invalid-command",
                format!("`command` is a single executable path; put arguments in `args` (found `{command}`)"),
            ));
        }
    }
}

fn resources(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let r = &spec.spec.resources;
    let path = body().key("resources");
    if let Some(max) = r.memory_max_mb
        && max < r.memory_mb
    {
        out.push(
            Finding::error(
                path.key("memoryMaxMB"),
                "invalid-memory-max",
                format!(
                    "memoryMaxMB ({max}) must be at least memoryMB ({})",
                    r.memory_mb
                ),
            )
            .related(path.key("memoryMB")),
        );
    }
}

fn env(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    for name in spec.spec.env.keys() {
        let path = body().key("env").key(name.clone());
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.push(
                Finding::error(
                    path,
                    "invalid-env-name",
                    format!("environment variable name `{name}` must match [A-Za-z_][A-Za-z0-9_]*"),
                )
                .at_key(),
            );
        } else if name.to_ascii_uppercase().starts_with("NOMAD_") {
            out.push(
                Finding::error(
                    path,
                    "reserved-env-name",
                    format!("environment variable `{name}`: the `NOMAD_` prefix is reserved for variables Nomad sets"),
                )
                .at_key(),
            );
        }
    }
}

fn datacenters(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("datacenters");
    if spec.spec.datacenters.is_empty() {
        out.push(Finding::error(
            path.clone(),
            "invalid-datacenter",
            "`datacenters` must not be empty (omit it to allow every datacenter)",
        ));
    }
    for (i, dc) in spec.spec.datacenters.iter().enumerate() {
        let valid = !dc.is_empty()
            && dc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'));
        if !valid {
            out.push(Finding::error(
                path.index(i),
                "invalid-datacenter",
                format!("datacenter `{dc}` may contain only letters, digits, `-`, `_`, `.` and `*` globs"),
            ));
        } else if spec.spec.datacenters[..i].contains(dc) {
            out.push(Finding::error(
                path.index(i),
                "duplicate-datacenter",
                format!("datacenter `{dc}` is listed twice"),
            ));
        }
    }
}

fn update(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let u = &spec.spec.update;
    let path = body().key("update");
    if spec.is_batch() {
        if *u != Update::default() {
            out.push(Finding::warning(
                path,
                "update-ignored",
                "`update` has no effect on periodic (batch) jobs; remove it",
            ));
        }
        return;
    }
    let order = [
        ("minHealthyTime", u.min_healthy_time),
        ("healthyDeadline", u.healthy_deadline),
        ("progressDeadline", u.progress_deadline),
    ];
    for pair in order.windows(2) {
        let [(lower_name, lower), (upper_name, upper)] = pair else {
            continue;
        };
        if lower >= upper {
            out.push(
                Finding::error(
                    path.key(*upper_name),
                    "invalid-update",
                    format!("{upper_name} ({upper}) must be longer than {lower_name} ({lower})"),
                )
                .related(path.key(*lower_name)),
            );
        }
    }
    if u.auto_promote && u.canary == 0 {
        out.push(
            Finding::error(
                path.key("autoPromote"),
                "invalid-update",
                "autoPromote needs canary instances: set `canary` to 1 or more",
            )
            .related(path.key("canary")),
        );
    }
    if u.canary > spec.spec.replicas && spec.spec.replicas > 0 {
        out.push(
            Finding::warning(
                path.key("canary"),
                "canary-above-replicas",
                format!(
                    "canary ({}) is larger than replicas ({})",
                    u.canary, spec.spec.replicas
                ),
            )
            .related(body().key("replicas")),
        );
    }
}

/// Every service with a `port` is in the Connect mesh, and Nomad refuses a TCP check
/// on a Connect service (the app listens inside the network namespace, out of the
/// agent's reach). Rendering it anyway would fail every registration; replacing it
/// with the sidecar's own listener check would report a dead app as healthy.
const TCP_IN_MESH: &str = "a `tcp` check cannot run on a service in the mesh (Nomad: \"tcp checks are not valid for Connect enabled services\"): use `http: /path`, which the sidecar exposes to the health checker, or remove `check` (the sidecar's own listener check stays)";

fn health_check(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let Some(check) = &spec.spec.check else {
        return;
    };
    let path = body().key("check");
    match (&check.http, check.tcp) {
        (Some(_), Some(_)) => out.push(Finding::error(
            path.key("tcp"),
            "invalid-check",
            "a check is either `http` or `tcp`, not both",
        )),
        (None, Some(false)) => out.push(Finding::error(
            path.key("tcp"),
            "invalid-check",
            "`tcp: false` checks nothing: write `tcp: true`, use `http: /path`, or remove `check`",
        )),
        (None, None) => out.push(
            Finding::error(
                path.clone(),
                "invalid-check",
                "a check needs `http: /path` or `tcp: true`",
            )
            .at_key(),
        ),
        (None, Some(true)) if spec.spec.port.is_some() && !spec.is_batch() => {
            out.push(Finding::error(
                path.key("tcp"),
                "tcp-check-in-mesh",
                TCP_IN_MESH,
            ));
        }
        _ => {}
    }
    if let Some(CheckKind::Http(http)) = check.kind()
        && let Some(problem) = http_path_problem(http, true)
    {
        out.push(Finding::error(path.key("http"), "invalid-path", problem));
    }
    let one_second = Duration::from_secs(1);
    let one_hour = Duration::from_mins(60);
    if check.interval < one_second || check.interval > one_hour {
        out.push(Finding::error(
            path.key("interval"),
            "out-of-range",
            format!(
                "check interval {} must be between 1s and 1h",
                check.interval
            ),
        ));
    }
    if check.timeout < one_second {
        out.push(Finding::error(
            path.key("timeout"),
            "out-of-range",
            format!("check timeout {} must be at least 1s", check.timeout),
        ));
    } else if check.timeout >= check.interval {
        out.push(
            Finding::error(
                path.key("timeout"),
                "check-timeout",
                format!(
                    "check timeout ({}) must be shorter than its interval ({})",
                    check.timeout, check.interval
                ),
            )
            .related(path.key("interval")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_reserve_the_steward_prefix() {
        assert_eq!(label_key_problem("team"), None);
        assert_eq!(label_key_problem("app.kubernetes.io/name"), None);
        assert!(label_key_problem("steward.spec").is_some());
        assert!(label_key_problem("-bad").is_some());
        assert!(label_key_problem("Bad_Prefix/x").is_some());
    }
}
