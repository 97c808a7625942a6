//! Per-kind `Normalize()` and `Validate()` of Consul's config entries, applied to the
//! encoded (Go-shaped) JSON form. Validation errors are the server's messages; the
//! API answers them with 500.

use serde_json::{Map, Value};

type Obj = Map<String, Value>;

fn s<'a>(o: &'a Obj, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn arr<'a>(o: &'a Obj, k: &str) -> &'a [Value] {
    o.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn arr_mut<'a>(o: &'a mut Obj, k: &str) -> impl Iterator<Item = &'a mut Obj> {
    o.get_mut(k)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn obj<'a>(o: &'a Obj, k: &str) -> Option<&'a Obj> {
    o.get(k).and_then(Value::as_object)
}

fn upper_methods(o: &mut Obj, key: &str) {
    if let Some(Value::Array(methods)) = o.get_mut(key) {
        for m in methods.iter_mut() {
            if let Value::String(s) = m {
                *s = s.to_uppercase();
            }
        }
    }
}

/// Formats like go-multierror's default: `1 error occurred:\n\t* a\n\n`.
pub(crate) fn multierror(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    if errors.len() == 1 {
        format!("1 error occurred:\n\t{}\n\n", points[0])
    } else {
        format!(
            "{} errors occurred:\n\t{}\n\n",
            errors.len(),
            points.join("\n\t")
        )
    }
}

/// Consul's intention precedence (no namespaces): exact→exact 9, `*`→exact 8,
/// exact→`*` 6, `*`→`*` 5.
pub(crate) fn precedence(dest: &str, src: &str) -> i64 {
    let count = |n: &str| if n == "*" { 1 } else { 2 };
    let max = match count(dest) {
        2 => 9,
        _ => 6,
    };
    max - (2 - count(src))
}

/// `Normalize()` of each kind. Errors are returned as the server's messages.
pub(crate) fn normalize(kind: &str, e: &mut Obj) -> Result<(), String> {
    e.insert("Kind".into(), kind.into());
    match kind {
        "service-defaults" => {
            let p = s(e, "Protocol").to_lowercase();
            e.insert("Protocol".into(), p.into());
        }
        "proxy-defaults" => {
            let name = s(e, "Name");
            if !name.is_empty() && name != "global" {
                return Err(format!(
                    "invalid name ({name:?}), only \"global\" is supported"
                ));
            }
            e.insert("Name".into(), "global".into());
        }
        "service-intentions" => {
            let dest = s(e, "Name").to_string();
            for src in arr_mut(e, "Sources") {
                if s(src, "Type").is_empty() {
                    src.insert("Type".into(), "consul".into());
                }
                let p = precedence(&dest, s(src, "Name"));
                src.insert("Precedence".into(), p.into());
                // Legacy fields are cleared on config-entry writes.
                src.remove("LegacyID");
                src.remove("LegacyCreateTime");
                src.remove("LegacyUpdateTime");
                for perm in arr_mut(src, "Permissions") {
                    if let Some(Value::Object(http)) = perm.get_mut("HTTP") {
                        upper_methods(http, "Methods");
                    }
                }
            }
            // Highest precedence first; equal precedence keeps the written order.
            if let Some(Value::Array(sources)) = e.get_mut("Sources") {
                sources.sort_by_key(|src| -src["Precedence"].as_i64().unwrap_or(0));
            }
        }
        "service-router" => {
            for route in arr_mut(e, "Routes") {
                if let Some(Value::Object(m)) = route.get_mut("Match")
                    && let Some(Value::Object(http)) = m.get_mut("HTTP")
                {
                    upper_methods(http, "Methods");
                }
            }
        }
        "service-splitter" => {
            for split in arr_mut(e, "Splits") {
                let w = split["Weight"].as_f64().unwrap_or(0.0);
                let rounded = (w * 100.0).round() / 100.0;
                if let Some(n) = serde_json::Number::from_f64(rounded) {
                    let v = if rounded.fract() == 0.0 {
                        Value::from(rounded as i64)
                    } else {
                        Value::Number(n)
                    };
                    split.insert("Weight".into(), v);
                }
            }
        }
        "ingress-gateway" => {
            for l in arr_mut(e, "Listeners") {
                let p = s(l, "Protocol").to_lowercase();
                let p = if p.is_empty() { "tcp".to_string() } else { p };
                l.insert("Protocol".into(), p.into());
            }
        }
        "api-gateway" => {
            for l in arr_mut(e, "Listeners") {
                let p = s(l, "Protocol").to_lowercase();
                l.insert("Protocol".into(), p.into());
            }
        }
        "http-route" => {
            for p in arr_mut(e, "Parents") {
                if s(p, "Kind").is_empty() {
                    p.insert("Kind".into(), "api-gateway".into());
                }
            }
            for rule in arr_mut(e, "Rules") {
                for m in arr_mut(rule, "Matches") {
                    let method = s(m, "Method").to_uppercase();
                    m.insert("Method".into(), method.into());
                    if let Some(Value::Object(path)) = m.get_mut("Path")
                        && s(path, "Match").is_empty()
                    {
                        path.insert("Match".into(), "prefix".into());
                        path.insert("Value".into(), "/".into());
                    }
                }
                for svc in arr_mut(rule, "Services") {
                    if svc["Weight"].as_i64().unwrap_or(0) <= 0 {
                        svc.insert("Weight".into(), 1.into());
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn validate_meta(e: &Obj) -> Result<(), String> {
    let Some(meta) = obj(e, "Meta") else {
        return Ok(());
    };
    let mut errs = Vec::new();
    if meta.len() > 64 {
        errs.push("Meta exceeds maximum element count 64".to_string());
    }
    for (k, v) in meta {
        if k.len() > 128 {
            errs.push(format!("Meta key {k:?} exceeds maximum length 128"));
        }
        if v.as_str().unwrap_or_default().len() > 512 {
            errs.push(format!(
                "Meta value for key {k:?} exceeds maximum length 512"
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errs))
    }
}

fn valid_http_method(m: &str) -> bool {
    matches!(
        m,
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE"
    )
}

/// `Validate()` of each kind.
pub(crate) fn validate(kind: &str, e: &Obj) -> Result<(), String> {
    let name = s(e, "Name");
    match kind {
        "service-defaults" => {
            if name.is_empty() {
                return Err("Name is required".into());
            }
            if name == "*" {
                return Err(
                    "service-defaults name must be the name of a service, and not a wildcard"
                        .into(),
                );
            }
            validate_meta(e)?;
            let bal = s(e, "BalanceInboundConnections");
            if !bal.is_empty() && bal != "exact_balance" {
                return Err(multierror(&[format!(
                    "invalid value for balance_inbound_connections: {bal}"
                )]));
            }
            validate_mtls(s(e, "MutualTLSMode"))
        }
        "proxy-defaults" => {
            if name != "global" {
                return Err(format!(
                    "invalid name ({name:?}), only \"global\" is supported"
                ));
            }
            validate_meta(e)?;
            validate_mtls(s(e, "MutualTLSMode"))
        }
        "service-intentions" => validate_intentions(e),
        "service-router" => validate_router(e),
        "service-splitter" => validate_splitter(e),
        "service-resolver" => {
            if name.is_empty() {
                return Err("Name is required".into());
            }
            validate_meta(e)
        }
        "ingress-gateway" => validate_ingress(e),
        "api-gateway" => validate_api_gateway(e),
        "http-route" => validate_http_route(e),
        _ => {
            if name.is_empty() && !matches!(kind, "mesh") {
                return Err("Name is required".into());
            }
            Ok(())
        }
    }
}

fn validate_mtls(mode: &str) -> Result<(), String> {
    match mode {
        "" | "strict" | "permissive" => Ok(()),
        m => Err(format!(
            "Invalid MutualTLSMode {m:?}. Must be one of \"\", \"strict\", or \"permissive\"."
        )),
    }
}

fn validate_wildcards(name: &str) -> Result<(), String> {
    if name != "*" && name.contains('*') {
        return Err("Name: wildcard character '*' cannot be used with partial values".into());
    }
    Ok(())
}

fn validate_intentions(e: &Obj) -> Result<(), String> {
    let name = s(e, "Name");
    if name.is_empty() {
        return Err("Name is required".into());
    }
    validate_wildcards(name)?;
    validate_meta(e)?;
    let sources = arr(e, "Sources");
    if sources.is_empty() {
        return Err("At least one source is required".into());
    }
    let dest_wild = name == "*";
    let mut seen = std::collections::HashSet::new();
    for (i, src) in sources.iter().enumerate() {
        let Some(src) = src.as_object() else {
            return Err(format!("Sources[{i}].Name is required"));
        };
        let sname = s(src, "Name");
        if sname.is_empty() {
            return Err(format!("Sources[{i}].Name is required"));
        }
        if let Err(e) = validate_wildcards(sname) {
            return Err(format!("Sources[{i}].{e}"));
        }
        let peer = s(src, "Peer");
        let group = s(src, "SamenessGroup");
        if peer.contains('*') {
            return Err(format!(
                "Sources[{i}].Peer: cannot use wildcard '*' in peer"
            ));
        }
        if !group.is_empty() && !peer.is_empty() {
            return Err(format!(
                "Sources[{i}].SamenessGroup: cannot set SamenessGroup and Peer at the same time"
            ));
        }
        if s(src, "Description").len() > 512 {
            return Err(format!(
                "Sources[{i}].Description exceeds maximum length 512"
            ));
        }
        if obj(src, "LegacyMeta").is_some_and(|m| !m.is_empty()) {
            return Err(format!("Sources[{i}].LegacyMeta must be omitted"));
        }
        let perms = arr(src, "Permissions");
        let action = s(src, "Action");
        if perms.is_empty() && !matches!(action, "allow" | "deny") {
            return Err(format!(
                "Sources[{i}].Action must be set to 'allow' or 'deny'"
            ));
        }
        if !perms.is_empty() && !action.is_empty() {
            return Err(format!(
                "Sources[{i}].Action must be omitted if Permissions are specified"
            ));
        }
        if dest_wild && !perms.is_empty() {
            return Err(format!(
                "Sources[{i}].Permissions cannot be specified on intentions with wildcarded destinations"
            ));
        }
        if s(src, "Type") != "consul" {
            return Err(format!("Sources[{i}].Type must be set to 'consul'"));
        }
        for (j, perm) in perms.iter().enumerate() {
            let Some(perm) = perm.as_object() else {
                continue;
            };
            if !matches!(s(perm, "Action"), "allow" | "deny") {
                return Err(format!(
                    "Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'"
                ));
            }
            let prefix = format!("Sources[{i}].Permissions[{j}].HTTP");
            let Some(http) = obj(perm, "HTTP") else {
                return Err(format!("{prefix} is required"));
            };
            let mut path_parts = 0;
            for (field, must_slash) in [
                ("PathExact", true),
                ("PathPrefix", true),
                ("PathRegex", false),
            ] {
                let v = s(http, field);
                if !v.is_empty() {
                    path_parts += 1;
                    if must_slash && !v.starts_with('/') {
                        return Err(format!("{prefix}.{field} doesn't start with '/': {v:?}"));
                    }
                }
            }
            if path_parts > 1 {
                return Err(format!(
                    "{prefix} should only contain at most one of PathExact, PathPrefix, or PathRegex"
                ));
            }
            let mut parts = path_parts;
            for (k, hdr) in arr(http, "Header").iter().enumerate() {
                let Some(hdr) = hdr.as_object() else { continue };
                if s(hdr, "Name").is_empty() {
                    return Err(format!("{prefix}.Header[{k}] missing required Name field"));
                }
                if header_parts(hdr) != 1 {
                    return Err(format!(
                        "{prefix}.Header[{k}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"
                    ));
                }
                parts += 1;
            }
            let methods = arr(http, "Methods");
            if !methods.is_empty() {
                let mut found = std::collections::HashSet::new();
                for m in methods {
                    let m = m.as_str().unwrap_or_default();
                    if !valid_http_method(m) {
                        return Err(format!("{prefix}.Methods contains an invalid method {m:?}"));
                    }
                    if !found.insert(m) {
                        return Err(format!("{prefix}.Methods contains {m:?} more than once"));
                    }
                }
                parts += 1;
            }
            if parts == 0 {
                return Err(format!("{prefix} should not be empty"));
            }
        }
        let key = (sname.to_string(), peer.to_string(), group.to_string());
        if !seen.insert(key) {
            return Err(if !peer.is_empty() {
                format!("Sources[{i}] defines peer({peer:?}) {sname:?} more than once")
            } else if !group.is_empty() {
                format!("Sources[{i}] defines sameness-group({group:?}) {sname:?} more than once")
            } else {
                format!("Sources[{i}] defines {sname:?} more than once")
            });
        }
    }
    Ok(())
}

fn header_parts(hdr: &Obj) -> usize {
    let mut n = 0;
    if hdr.get("Present").and_then(Value::as_bool) == Some(true) {
        n += 1;
    }
    for f in ["Exact", "Prefix", "Suffix", "Regex"] {
        if !s(hdr, f).is_empty() {
            n += 1;
        }
    }
    n
}

fn validate_router(e: &Obj) -> Result<(), String> {
    if s(e, "Name").is_empty() {
        return Err("Name is required".into());
    }
    validate_meta(e)?;
    for (i, route) in arr(e, "Routes").iter().enumerate() {
        let Some(route) = route.as_object() else {
            continue;
        };
        let mut rewrite_ok = false;
        if let Some(http) = obj(route, "Match").and_then(|m| obj(m, "HTTP")) {
            let mut path_parts = 0;
            for (field, slash) in [
                ("PathExact", true),
                ("PathPrefix", true),
                ("PathRegex", false),
            ] {
                let v = s(http, field);
                if !v.is_empty() {
                    path_parts += 1;
                    if slash {
                        rewrite_ok = true;
                        if !v.starts_with('/') {
                            return Err(format!(
                                "Route[{i}] {field} doesn't start with '/': {v:?}"
                            ));
                        }
                    }
                }
            }
            if path_parts > 1 {
                return Err(format!(
                    "Route[{i}] should only contain at most one of PathExact, PathPrefix, or PathRegex"
                ));
            }
            for (j, hdr) in arr(http, "Header").iter().enumerate() {
                let Some(hdr) = hdr.as_object() else { continue };
                if s(hdr, "Name").is_empty() {
                    return Err(format!(
                        "Route[{i}] Header[{j}] missing required Name field"
                    ));
                }
                if header_parts(hdr) != 1 {
                    return Err(format!(
                        "Route[{i}] Header[{j}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"
                    ));
                }
            }
            for (j, qm) in arr(http, "QueryParam").iter().enumerate() {
                let Some(qm) = qm.as_object() else { continue };
                if s(qm, "Name").is_empty() {
                    return Err(format!(
                        "Route[{i}] QueryParam[{j}] missing required Name field"
                    ));
                }
                let mut n = usize::from(qm.get("Present").and_then(Value::as_bool) == Some(true));
                n += usize::from(!s(qm, "Exact").is_empty());
                n += usize::from(!s(qm, "Regex").is_empty());
                if n != 1 {
                    return Err(format!(
                        "Route[{i}] QueryParam[{j}] should only contain one of Present, Exact, or Regex"
                    ));
                }
            }
            let mut found = std::collections::HashSet::new();
            for m in arr(http, "Methods") {
                let m = m.as_str().unwrap_or_default();
                if !valid_http_method(m) {
                    return Err(format!(
                        "Route[{i}] Methods contains an invalid method {m:?}"
                    ));
                }
                if !found.insert(m) {
                    return Err(format!("Route[{i}] Methods contains {m:?} more than once"));
                }
            }
        }
        if let Some(dest) = obj(route, "Destination") {
            if !s(dest, "PrefixRewrite").is_empty() && !rewrite_ok {
                return Err(format!(
                    "Route[{i}] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"
                ));
            }
            for r in arr(dest, "RetryOn") {
                let r = r.as_str().unwrap_or_default();
                let ok = matches!(
                    r,
                    "5xx"
                        | "gateway-error"
                        | "reset"
                        | "connect-failure"
                        | "envoy-ratelimited"
                        | "retriable-4xx"
                        | "refused-stream"
                        | "cancelled"
                        | "deadline-exceeded"
                        | "internal"
                        | "resource-exhausted"
                        | "unavailable"
                );
                if !ok {
                    return Err(format!(
                        "Route[{i}] contains an invalid retry condition: {r:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_splitter(e: &Obj) -> Result<(), String> {
    let name = s(e, "Name");
    if name.is_empty() {
        return Err("Name is required".into());
    }
    validate_meta(e)?;
    let splits = arr(e, "Splits");
    if splits.is_empty() {
        return Err("no splits configured".into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut sum = 0i64;
    for split in splits.iter().filter_map(Value::as_object) {
        let svc = match s(split, "Service") {
            "" => name,
            x => x,
        };
        let subset = s(split, "ServiceSubset");
        if !seen.insert((svc.to_string(), subset.to_string())) {
            return Err(format!(
                "split destination occurs more than once: service={svc:?}, subset={subset:?}"
            ));
        }
        sum += (split["Weight"].as_f64().unwrap_or(0.0) * 100.0).round() as i64;
    }
    if sum != 10_000 {
        return Err(format!(
            "the sum of all split weights must be 100, not {:.6}",
            sum as f64 / 100.0
        ));
    }
    Ok(())
}

fn validate_ingress(e: &Obj) -> Result<(), String> {
    if s(e, "Name").is_empty() {
        return Err("Name is required".into());
    }
    validate_meta(e)?;
    let mut ports = std::collections::HashSet::new();
    for l in arr(e, "Listeners").iter().filter_map(Value::as_object) {
        let port = l["Port"].as_i64().unwrap_or(0);
        let proto = s(l, "Protocol");
        if !ports.insert(port) {
            return Err(format!("port {port} declared on two listeners"));
        }
        if !matches!(proto, "tcp" | "http" | "http2" | "grpc") {
            return Err(format!(
                "protocol must be 'tcp', 'http', 'http2', or 'grpc'. '{proto}' is an unsupported protocol"
            ));
        }
        let services = arr(l, "Services");
        if services.is_empty() {
            return Err(format!("No service declared for listener with port {port}"));
        }
        if proto == "tcp" && services.len() > 1 {
            return Err(format!(
                "Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for svc in services.iter().filter_map(Value::as_object) {
            let n = s(svc, "Name");
            if n.is_empty() {
                return Err(format!(
                    "Service name cannot be blank (listener on port {port})"
                ));
            }
            if n == "*" && proto == "tcp" {
                return Err(format!(
                    "Wildcard service name is only valid for protocol = 'http' (listener on port {port})"
                ));
            }
            if !arr(svc, "Hosts").is_empty() {
                if proto == "tcp" {
                    return Err(format!(
                        "Associating hosts to a service is not supported for the tcp protocol (listener on port {port})"
                    ));
                }
                if n == "*" {
                    return Err(format!(
                        "Associating hosts to a wildcard service is not supported (listener on port {port})"
                    ));
                }
            }
            if !seen.insert(n.to_string()) {
                return Err(format!(
                    "Service {n} cannot be added multiple times (listener on port {port})"
                ));
            }
        }
    }
    Ok(())
}

fn validate_api_gateway(e: &Obj) -> Result<(), String> {
    if s(e, "Name").is_empty() {
        return Err("Name is required".into());
    }
    validate_meta(e)?;
    let mut names = std::collections::HashSet::new();
    for l in arr(e, "Listeners").iter().filter_map(Value::as_object) {
        let name = s(l, "Name");
        if !names.insert(name.to_string()) {
            return Err("listeners must have unique names".into());
        }
        match s(l, "Protocol") {
            "http" | "tcp" => {}
            p => return Err(format!("unsupported listener protocol {p:?}")),
        }
        let port = l["Port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&port) {
            return Err(format!("listener port {port} not in the range 1-65535"));
        }
    }
    Ok(())
}

fn validate_http_route(e: &Obj) -> Result<(), String> {
    if s(e, "Name").is_empty() {
        return Err("Name is required".into());
    }
    for host in arr(e, "Hostnames") {
        let host = host.as_str().unwrap_or_default();
        if !is_dns_name(host) {
            return Err(format!("host {host:?} must be a valid DNS hostname"));
        }
        if host.contains('*') {
            return Err(format!("host {host:?} must not be a wildcard"));
        }
    }
    let mut uniq = std::collections::HashSet::new();
    for p in arr(e, "Parents").iter().filter_map(Value::as_object) {
        let kind = s(p, "Kind");
        if kind != "api-gateway" {
            return Err(format!(
                "unsupported parent kind: {kind:?}, must be 'api-gateway'"
            ));
        }
        if !uniq.insert((s(p, "Name").to_string(), s(p, "SectionName").to_string())) {
            return Err("route parents must be unique".into());
        }
    }
    validate_meta(e)?;
    for (i, rule) in arr(e, "Rules").iter().enumerate() {
        let Some(rule) = rule.as_object() else {
            continue;
        };
        for (j, m) in arr(rule, "Matches").iter().enumerate() {
            let Some(m) = m.as_object() else { continue };
            let err = |msg: String| format!("Rule[{i}], Match[{j}], {msg}");
            let method = s(m, "Method");
            if !method.is_empty() && !valid_http_method(method) {
                return Err(err(format!("Method contains an invalid method {method:?}")));
            }
            for (k, q) in arr(m, "Query").iter().enumerate() {
                let Some(q) = q.as_object() else { continue };
                if s(q, "Name").is_empty() {
                    return Err(err(format!("Query[{k}], missing required Name field")));
                }
                if !matches!(s(q, "Match"), "exact" | "present" | "regex") {
                    return Err(err(format!(
                        "Query[{k}], match type should be one of present, exact, or regex"
                    )));
                }
            }
            for (k, h) in arr(m, "Headers").iter().enumerate() {
                let Some(h) = h.as_object() else { continue };
                if s(h, "Name").is_empty() {
                    return Err(err(format!("Headers[{k}], missing required Name field")));
                }
                if !matches!(
                    s(h, "Match"),
                    "exact" | "prefix" | "present" | "regex" | "suffix"
                ) {
                    return Err(err(format!(
                        "Headers[{k}], match type should be one of present, exact, prefix, suffix, or regex"
                    )));
                }
            }
            if let Some(path) = obj(m, "Path") {
                let kind = s(path, "Match");
                let value = s(path, "Value");
                match kind {
                    "exact" | "prefix" => {
                        if !value.starts_with('/') {
                            return Err(err(format!(
                                "Path, {kind} type match doesn't start with '/': {value:?}"
                            )));
                        }
                    }
                    "regex" => {}
                    _ => {
                        return Err(err(
                            "Path, match type should be one of exact, prefix, or regex".into(),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `dns.IsDomainName`, roughly: labels of 1–63 characters, total ≤ 255.
fn is_dns_name(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.contains(' '))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence_matches_consul() {
        assert_eq!(precedence("api", "web"), 9);
        assert_eq!(precedence("api", "*"), 8);
        assert_eq!(precedence("*", "web"), 6);
        assert_eq!(precedence("*", "*"), 5);
    }

    #[test]
    fn intention_sources_are_sorted_stably_by_precedence() {
        let mut e = json!({"Name": "api", "Sources": [
            {"Name": "*", "Action": "deny", "Type": "", "Precedence": 0},
            {"Name": "web", "Action": "allow", "Type": "", "Precedence": 0},
            {"Name": "batch", "Action": "allow", "Type": "", "Precedence": 0},
        ]});
        normalize("service-intentions", e.as_object_mut().unwrap()).unwrap();
        let names: Vec<&str> = e["Sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["web", "batch", "*"]);
        assert_eq!(e["Sources"][0]["Type"], "consul");
    }

    #[test]
    fn multierror_formats_like_go() {
        assert_eq!(
            multierror(&["invalid config key \"Protocl\"".into()]),
            "1 error occurred:\n\t* invalid config key \"Protocl\"\n\n"
        );
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }
}
