//! Rules on ports, protocol, upstreams, intentions (`allowFrom`) and edge routes.

use std::collections::BTreeMap;

use crate::duration::Duration;
use crate::finding::Finding;
use crate::path::FieldPath;
use crate::types::{MAIN_PORT_NAME, Protocol, ServiceSpec};

use super::{body, check_dns_label, host_problem, http_path_problem};

pub(super) fn check(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    ports(spec, out);
    listener_needed(spec, out);
    protocol(spec, out);
    upstreams(spec, out);
    allow_from(spec, out);
    edge(spec, out);
}

fn ports(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("ports");
    // port number -> path of its first use
    let mut numbers: BTreeMap<u16, FieldPath> = BTreeMap::new();
    if let Some(port) = spec.spec.port {
        numbers.insert(port, body().key("port"));
    }
    let mut names: BTreeMap<&str, FieldPath> = BTreeMap::new();
    for (i, named) in spec.spec.ports.iter().enumerate() {
        let item = path.index(i);
        let name = named.name.as_str();
        let valid_name = name.len() <= 32
            && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            out.push(Finding::error(
                item.key("name"),
                "invalid-port-name",
                format!("port name `{name}` must be 1 to 32 lower-case letters, digits and `_`, starting with a letter"),
            ));
        } else if name == MAIN_PORT_NAME {
            out.push(Finding::error(
                item.key("name"),
                "reserved-port-name",
                format!("port name `{MAIN_PORT_NAME}` is reserved for the main `port`"),
            ));
        } else if let Some(first) = names.get(name) {
            out.push(
                Finding::error(
                    item.key("name"),
                    "duplicate-port-name",
                    format!("port name `{name}` is already used at {first}"),
                )
                .related(first.clone()),
            );
        } else {
            names.insert(name, item.key("name"));
        }
        match numbers.get(&named.port) {
            Some(first) => out.push(
                Finding::error(
                    item.key("port"),
                    "duplicate-port",
                    format!("port {} is already used at {first}", named.port),
                )
                .related(first.clone()),
            ),
            None => {
                numbers.insert(named.port, item.key("port"));
            }
        }
    }
}

/// Features that need the main port to be set.
fn listener_needed(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    if spec.spec.port.is_some() || spec.is_batch() {
        return; // batch jobs get their own, more specific findings
    }
    let mut needs = Vec::new();
    if spec.spec.check.is_some() {
        needs.push((body().key("check"), "a health check"));
    }
    if !spec.spec.allow_from.is_empty() {
        needs.push((body().key("allowFrom"), "`allowFrom`"));
    }
    if !spec.spec.edge.is_empty() {
        needs.push((body().key("edge"), "edge routes"));
    }
    if spec.spec.protocol.is_some() {
        needs.push((body().key("protocol"), "`protocol`"));
    }
    for (path, what) in needs {
        out.push(
            Finding::error(
                path,
                "port-required",
                format!("{what} needs the main `port` the service listens on; set `port`"),
            )
            .at_key()
            .related(body().key("port")),
        );
    }
}

fn protocol(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    if spec.spec.protocol != Some(Protocol::Tcp) {
        return;
    }
    let reason = if !spec.spec.edge.is_empty() {
        Some("edge routes")
    } else if spec.spec.allow_from.iter().any(|a| a.is_l7()) {
        Some("`allowFrom` rules with methods or paths")
    } else {
        None
    };
    if let Some(reason) = reason {
        out.push(Finding::error(
            body().key("protocol"),
            "protocol-conflict",
            format!("{reason} need an HTTP-family protocol (`http`, `http2` or `grpc`), but `protocol` is `tcp`"),
        ));
    }
}

fn own_ports(spec: &ServiceSpec) -> Vec<(u16, FieldPath)> {
    let mut ports: Vec<(u16, FieldPath)> = spec
        .spec
        .port
        .map(|p| (p, body().key("port")))
        .into_iter()
        .collect();
    for (i, named) in spec.spec.ports.iter().enumerate() {
        ports.push((named.port, body().key("ports").index(i).key("port")));
    }
    ports
}

fn upstreams(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("upstreams");
    let own = own_ports(spec);
    let name_path = FieldPath::root().key("metadata").key("name");
    let mut services: BTreeMap<&str, FieldPath> = BTreeMap::new();
    let mut local_ports: BTreeMap<u16, FieldPath> = BTreeMap::new();
    for (i, upstream) in spec.spec.upstreams.iter().enumerate() {
        let item = path.index(i);
        let service = upstream.service.as_str();
        if service == spec.metadata.name {
            out.push(
                Finding::error(
                    item.key("service"),
                    "self-reference",
                    format!("`{service}` is this service itself; a service does not need an upstream to call itself"),
                )
                .related(name_path.clone()),
            );
        } else if let Some(bad) =
            check_dns_label(item.key("service"), service, "service", "invalid-service")
        {
            out.push(bad);
        } else if let Some(first) = services.get(service) {
            out.push(
                Finding::error(
                    item.key("service"),
                    "duplicate-upstream",
                    format!("upstream `{service}` is already listed at {first}"),
                )
                .related(first.clone()),
            );
        } else {
            services.insert(service, item.key("service"));
        }
        let port = upstream.local_port;
        if let Some(first) = local_ports.get(&port) {
            out.push(
                Finding::error(
                    item.key("localPort"),
                    "duplicate-local-port",
                    format!("localPort {port} is already used by {first}; every upstream needs its own local port"),
                )
                .related(first.clone()),
            );
        } else {
            local_ports.insert(port, item.key("localPort"));
        }
        if let Some((_, own_path)) = own.iter().find(|(p, _)| *p == port) {
            out.push(
                Finding::error(
                    item.key("localPort"),
                    "local-port-conflict",
                    format!("localPort {port} is also the service's own port ({own_path}); pick another local port"),
                )
                .related(own_path.clone()),
            );
        }
    }
}

fn allow_from(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("allowFrom");
    let name_path = FieldPath::root().key("metadata").key("name");
    // source -> (first path, whether that rule is L7)
    let mut sources: BTreeMap<&str, (FieldPath, bool)> = BTreeMap::new();
    for (i, rule) in spec.spec.allow_from.iter().enumerate() {
        let item = path.index(i);
        let service = rule.service.as_str();
        if service == spec.metadata.name {
            out.push(
                Finding::error(
                    item.key("service"),
                    "self-reference",
                    format!("`{service}` is this service itself; a service's own instances need no intention"),
                )
                .related(name_path.clone()),
            );
            continue;
        }
        if service != "*"
            && let Some(bad) =
                check_dns_label(item.key("service"), service, "service", "invalid-service")
        {
            out.push(bad);
            continue;
        }
        if rule.path_prefix.is_some() && rule.path_exact.is_some() {
            out.push(
                Finding::error(
                    item.key("pathExact"),
                    "path-conflict",
                    "set either `pathPrefix` or `pathExact`, not both",
                )
                .at_key()
                .related(item.key("pathPrefix")),
            );
        }
        for (key, value) in [
            ("pathPrefix", &rule.path_prefix),
            ("pathExact", &rule.path_exact),
        ] {
            if let Some(problem) = value.as_deref().and_then(|v| http_path_problem(v, false)) {
                out.push(Finding::error(item.key(key), "invalid-path", problem));
            }
        }
        let l7 = rule.is_l7();
        match sources.get(service) {
            Some((first, first_l7)) if !l7 && !first_l7 => out.push(
                Finding::error(
                    item.key("service"),
                    "duplicate-source",
                    format!("`{service}` is already listed at {first}"),
                )
                .related(first.clone()),
            ),
            Some((first, first_l7)) if l7 != *first_l7 => out.push(
                Finding::error(
                    item.key("service"),
                    "mixed-l4-l7",
                    format!("`{service}` has both a whole-service rule and method/path rules (see {first}); Consul allows one or the other per source"),
                )
                .related(first.clone()),
            ),
            Some(_) => {}
            None => {
                sources.insert(service, (item.key("service"), l7));
            }
        }
    }
}

fn edge(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("edge").key("routes");
    let mut seen: BTreeMap<(String, String), FieldPath> = BTreeMap::new();
    for (i, route) in spec.spec.edge.routes.iter().enumerate() {
        let item = path.index(i);
        if let Some(problem) = host_problem(&route.host) {
            out.push(Finding::error(
                item.key("host"),
                "invalid-host",
                format!("invalid host `{}`: {problem}", route.host),
            ));
        }
        if route.path_prefix.is_some() && route.path_exact.is_some() {
            out.push(
                Finding::error(
                    item.key("pathExact"),
                    "path-conflict",
                    "set either `pathPrefix` or `pathExact`, not both",
                )
                .at_key()
                .related(item.key("pathPrefix")),
            );
        }
        for (key, value) in [
            ("pathPrefix", &route.path_prefix),
            ("pathExact", &route.path_exact),
            ("rewrite", &route.rewrite),
        ] {
            if let Some(problem) = value.as_deref().and_then(|v| http_path_problem(v, false)) {
                out.push(Finding::error(item.key(key), "invalid-path", problem));
            }
        }
        if let Some(timeout) = route.timeout
            && (timeout < Duration::from_millis(1) || timeout > Duration::from_mins(60))
        {
            out.push(Finding::error(
                item.key("timeout"),
                "out-of-range",
                format!("route timeout {timeout} must be between 1ms and 1h"),
            ));
        }
        let matcher = match route.path_match() {
            crate::types::PathMatch::Prefix(p) => format!("prefix {p}"),
            crate::types::PathMatch::Exact(p) => format!("exact {p}"),
        };
        let key = (route.host.clone(), matcher);
        match seen.get(&key) {
            Some(first) => out.push(
                Finding::error(
                    item.key("host"),
                    "duplicate-route",
                    format!(
                        "route for `{}` with the same path match is already defined at {first}",
                        route.host
                    ),
                )
                .related(first.clone()),
            ),
            None => {
                seen.insert(key, item.key("host"));
            }
        }
    }
}
