//! Cross-entry rules (reference §4.7, §8.9): protocols of discovery chains, ingress
//! listeners and L7 intentions, checked on every write and delete; and the
//! api-gateway/http-route controller that writes `Status` (§4.6), as Consul's
//! gateway controller would.

use super::super::store::{Change, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

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

/// A proposed change: `(kind, name) → entry` (`None` = deleted).
pub(crate) struct Proposal<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub entry: Option<&'a Obj>,
}

/// The entry as it would be with the proposal applied.
fn lookup<'a>(store: &'a Store, p: &'a Proposal<'_>, kind: &str, name: &str) -> Option<&'a Obj> {
    if p.kind == kind && p.name == name {
        return p.entry;
    }
    store
        .data
        .config
        .get(kind)
        .and_then(|m| m.get(name))
        .map(|r| &r.entry)
}

fn entries_of<'a>(
    store: &'a Store,
    p: &'a Proposal<'_>,
    kind: &'a str,
) -> impl Iterator<Item = (&'a str, &'a Obj)> {
    let stored = store
        .data
        .config
        .get(kind)
        .into_iter()
        .flat_map(|m| m.iter())
        .filter(move |(n, _)| !(p.kind == kind && p.name == n.as_str()))
        .map(|(n, r)| (n.as_str(), &r.entry));
    let proposed = (p.kind == kind)
        .then_some(p.entry.map(|e| (p.name, e)))
        .flatten();
    stored.chain(proposed)
}

/// The protocol of a service: its service-defaults, else proxy-defaults' `protocol`,
/// else `tcp`.
pub(crate) fn protocol_of(store: &Store, p: &Proposal<'_>, svc: &str) -> String {
    if let Some(sd) = lookup(store, p, "service-defaults", svc) {
        let proto = s(sd, "Protocol");
        if !proto.is_empty() {
            return proto.to_lowercase();
        }
    }
    if let Some(pd) = lookup(store, p, "proxy-defaults", "global")
        && let Some(proto) = pd
            .get("Config")
            .and_then(Value::as_object)
            .and_then(|c| c.get("protocol"))
            .and_then(Value::as_str)
        && !proto.is_empty()
    {
        return proto.to_lowercase();
    }
    "tcp".to_string()
}

/// Whether the protocol is HTTP-family (`http`, `http2`, `grpc`).
pub(crate) fn http_like(p: &str) -> bool {
    matches!(p, "http" | "http2" | "grpc")
}

/// Services a discovery-chain entry refers to (its own name included).
fn related_services(kind: &str, name: &str, e: &Obj) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(name.to_string());
    match kind {
        "service-router" => {
            for r in arr(e, "Routes").iter().filter_map(Value::as_object) {
                if let Some(d) = r.get("Destination").and_then(Value::as_object) {
                    let svc = s(d, "Service");
                    out.insert(if svc.is_empty() { name } else { svc }.to_string());
                }
            }
        }
        "service-splitter" => {
            for sp in arr(e, "Splits").iter().filter_map(Value::as_object) {
                let svc = s(sp, "Service");
                out.insert(if svc.is_empty() { name } else { svc }.to_string());
            }
        }
        "service-resolver" => {
            if let Some(r) = e.get("Redirect").and_then(Value::as_object) {
                let svc = s(r, "Service");
                if !svc.is_empty() {
                    out.insert(svc.to_string());
                }
            }
            if let Some(f) = e.get("Failover").and_then(Value::as_object) {
                for t in f.values().filter_map(Value::as_object) {
                    let svc = s(t, "Service");
                    if !svc.is_empty() {
                        out.insert(svc.to_string());
                    }
                }
            }
        }
        _ => {}
    }
    out
}

fn ingress_services(e: &Obj) -> impl Iterator<Item = (&str, &str)> {
    arr(e, "Listeners")
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|l| {
            let proto = s(l, "Protocol");
            arr(l, "Services")
                .iter()
                .filter_map(Value::as_object)
                .map(move |svc| (proto, s(svc, "Name")))
        })
}

fn has_permissions(e: &Obj) -> bool {
    arr(e, "Sources")
        .iter()
        .filter_map(Value::as_object)
        .any(|src| !arr(src, "Permissions").is_empty())
}

const CHAIN_KINDS: [&str; 3] = ["service-router", "service-splitter", "service-resolver"];

/// The first service the chain's own entries reach whose protocol is not `proto`.
fn inconsistent_protocol(
    store: &Store,
    p: &Proposal<'_>,
    chain: &str,
    proto: &str,
) -> Option<(String, String)> {
    CHAIN_KINDS
        .iter()
        .filter_map(|kind| lookup(store, p, kind, chain).map(|e| related_services(kind, chain, e)))
        .flatten()
        .filter(|svc| svc != chain)
        .find_map(|svc| {
            let other = protocol_of(store, p, &svc);
            (other != proto).then_some((svc, other))
        })
}

/// Consul's `validateProposedConfigEntryInGraph`: `Err` is the 500 message.
pub(crate) fn validate(store: &Store, p: &Proposal<'_>) -> Result<(), String> {
    // Gateways of different kinds cannot share a name.
    let clash = |others: &[&str]| -> Result<(), String> {
        if p.entry.is_none() {
            return Ok(());
        }
        for other in others {
            if lookup(store, p, other, p.name).is_some() {
                return Err(format!(
                    "cannot create a {:?} config entry with name {:?}, a {:?} config entry with that name already exists",
                    p.kind, p.name, other
                ));
            }
        }
        Ok(())
    };
    let mut chains: BTreeSet<String> = BTreeSet::new();
    let mut ingresses: Vec<&Obj> = Vec::new();
    let mut intentions: Vec<&Obj> = Vec::new();
    let mut enforce_ingress = false;
    match p.kind {
        "proxy-defaults" => {
            for kind in CHAIN_KINDS {
                chains.extend(entries_of(store, p, kind).map(|(n, _)| n.to_string()));
            }
            ingresses.extend(entries_of(store, p, "ingress-gateway").map(|(_, e)| e));
            intentions.extend(entries_of(store, p, "service-intentions").map(|(_, e)| e));
        }
        "service-intentions" => match p.entry {
            Some(e) => intentions.push(e),
            None => return Ok(()),
        },
        "ingress-gateway" => {
            clash(&["terminating-gateway", "api-gateway"])?;
            match p.entry {
                Some(e) => {
                    ingresses.push(e);
                    enforce_ingress = true;
                }
                None => return Ok(()),
            }
        }
        "terminating-gateway" => return clash(&["ingress-gateway", "api-gateway"]),
        "api-gateway" => return clash(&["ingress-gateway", "terminating-gateway"]),
        "service-defaults" | "service-router" | "service-splitter" | "service-resolver" => {
            chains.insert(p.name.to_string());
            for kind in CHAIN_KINDS {
                for (n, e) in entries_of(store, p, kind) {
                    if related_services(kind, n, e).contains(p.name) {
                        chains.insert(n.to_string());
                    }
                }
            }
            for (_, e) in entries_of(store, p, "ingress-gateway") {
                if ingress_services(e).any(|(_, svc)| svc == p.name) {
                    ingresses.push(e);
                }
            }
            if let Some(e) = lookup(store, p, "service-intentions", p.name) {
                intentions.push(e);
            }
        }
        _ => return Ok(()),
    }
    for e in &ingresses {
        for (_, svc) in ingress_services(e) {
            if svc != "*" {
                chains.insert(svc.to_string());
            }
        }
    }
    for e in &intentions {
        chains.insert(s(e, "Name").to_string());
    }
    let mut protocols: HashMap<String, (String, bool)> = HashMap::new();
    for chain in &chains {
        let proto = protocol_of(store, p, chain);
        // Compiling the chain records every service it reaches (route destinations,
        // splits, resolver redirects and failovers); they must share one protocol,
        // and Consul checks that before the advanced-routing rule.
        if let Some((svc, other)) = inconsistent_protocol(store, p, chain, &proto) {
            return Err(format!(
                "discovery chain {chain:?} uses inconsistent protocols; service {svc:?} has {other:?} which is not {proto:?}"
            ));
        }
        let advanced = lookup(store, p, "service-router", chain).is_some()
            || lookup(store, p, "service-splitter", chain).is_some();
        if advanced && !http_like(&proto) {
            return Err(format!(
                "discovery chain {chain:?} uses a protocol {proto:?} that does not permit advanced routing or splitting behavior"
            ));
        }
        protocols.insert(chain.clone(), (proto, advanced));
    }
    for e in &ingresses {
        for (listener_proto, svc) in ingress_services(e) {
            if svc == "*" {
                continue;
            }
            let (proto, advanced) = protocols
                .get(svc)
                .cloned()
                .unwrap_or_else(|| ("tcp".into(), false));
            if proto != listener_proto {
                let top_is_resolver = !advanced;
                if enforce_ingress || listener_proto != "tcp" || !top_is_resolver {
                    return Err(format!(
                        "service {svc:?} has protocol {proto:?}, which does not match defined listener protocol {listener_proto:?}"
                    ));
                }
            }
        }
    }
    for e in &intentions {
        if !has_permissions(e) {
            continue;
        }
        let dest = s(e, "Name");
        let proto = protocols
            .get(dest)
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| "tcp".into());
        if !http_like(&proto) {
            return Err(format!(
                "service {dest:?} has protocol {proto:?}, which is incompatible with L7 intentions permissions"
            ));
        }
    }
    Ok(())
}

// ----- route index ------------------------------------------------------------------

/// Keys under which an http-route is indexed: `svc:<service>` and `gw:<gateway>`.
pub(crate) fn route_keys(e: &Obj) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for p in arr(e, "Parents").iter().filter_map(Value::as_object) {
        keys.insert(format!("gw:{}", s(p, "Name")));
    }
    for r in arr(e, "Rules").iter().filter_map(Value::as_object) {
        for svc in arr(r, "Services").iter().filter_map(Value::as_object) {
            keys.insert(format!("svc:{}", s(svc, "Name")));
        }
    }
    keys
}

/// Updates the route index after an http-route write or delete.
pub(crate) fn reindex_route(store: &mut Store, name: &str, old: Option<&Obj>, new: Option<&Obj>) {
    reindex_route_keys(
        store,
        name,
        old.map(route_keys).unwrap_or_default(),
        new.map(route_keys).unwrap_or_default(),
    );
}

/// Updates the route index given the keys of the old and the new route.
pub(crate) fn reindex_route_keys(
    store: &mut Store,
    name: &str,
    old: BTreeSet<String>,
    new: BTreeSet<String>,
) {
    for k in old {
        if let Some(set) = store.route_refs.get_mut(&k) {
            set.remove(name);
        }
    }
    for k in new {
        store
            .route_refs
            .entry(k)
            .or_default()
            .insert(name.to_string());
    }
}

/// Rebuilds the route index from the stored http-routes.
pub(crate) fn rebuild_route_index(store: &mut Store) {
    store.route_refs.clear();
    let routes: Vec<(String, Obj)> = store
        .data
        .config
        .get("http-route")
        .into_iter()
        .flat_map(|m| m.iter())
        .map(|(n, r)| (n.clone(), r.entry.clone()))
        .collect();
    for (n, e) in routes {
        reindex_route(store, &n, None, Some(&e));
    }
}

// ----- status controller --------------------------------------------------------------

fn resource(kind: &str, name: &str, section: &str) -> Value {
    json!({"Kind": kind, "Name": name, "SectionName": section})
}

fn condition(ty: &str, status: &str, reason: &str, message: &str, res: Value) -> Value {
    json!({"Type": ty, "Status": status, "Reason": reason, "Message": message,
        "Resource": res, "LastTransitionTime": Value::Null})
}

/// Same condition apart from the transition time.
fn same_condition(a: &Value, b: &Value) -> bool {
    ["Type", "Status", "Reason", "Message", "Resource"]
        .iter()
        .all(|k| a.get(*k) == b.get(*k))
}

/// Computes the gateway status Consul's controller writes.
fn gateway_status(store: &Store, gw: &Obj) -> Vec<Value> {
    let name = s(gw, "Name");
    let mut listener_conds = Vec::new();
    let mut cert_errors = false;
    for l in arr(gw, "Listeners").iter().filter_map(Value::as_object) {
        let lname = s(l, "Name");
        let missing = l
            .get("TLS")
            .and_then(Value::as_object)
            .map(|t| arr(t, "Certificates"))
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_object)
            .find(|c| {
                let kind = match s(c, "Kind") {
                    "" => "inline-certificate",
                    k => k,
                };
                store
                    .data
                    .config
                    .get(kind)
                    .is_none_or(|m| !m.contains_key(s(c, "Name")))
            })
            .map(|c| s(c, "Name").to_string());
        let res = resource("api-gateway", name, lname);
        match missing {
            Some(cert) => {
                cert_errors = true;
                listener_conds.push(condition(
                    "ResolvedRefs",
                    "False",
                    "InvalidCertificateRef",
                    &format!("certificate {cert:?} not found"),
                    res,
                ));
            }
            None => listener_conds.push(condition(
                "ResolvedRefs",
                "True",
                "ResolvedRefs",
                "resolved refs",
                res,
            )),
        }
    }
    let mut conds = vec![if cert_errors {
        condition(
            "Accepted",
            "False",
            "InvalidCertificates",
            "gateway references invalid certificates",
            resource("", "", ""),
        )
    } else {
        condition(
            "Accepted",
            "True",
            "Accepted",
            "gateway is valid",
            resource("", "", ""),
        )
    }];
    conds.extend(listener_conds);
    for l in arr(gw, "Listeners").iter().filter_map(Value::as_object) {
        conds.push(condition(
            "Conflicted",
            "False",
            "NoConflict",
            "listener has no route conflicts",
            resource("api-gateway", name, s(l, "Name")),
        ));
    }
    conds
}

/// `FilteredHostnames`: the route hostnames a listener would serve.
fn filtered_hostnames(route: &Obj, listener_host: &str) -> Vec<String> {
    let listener_host = if listener_host.is_empty() {
        "*"
    } else {
        listener_host
    };
    let hosts: Vec<&str> = arr(route, "Hostnames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if hosts.is_empty() {
        return vec![listener_host.to_string()];
    }
    let wildcard = listener_host.contains('*');
    let base = listener_host
        .trim_start_matches('*')
        .trim_start_matches('.');
    hosts
        .into_iter()
        .filter(|h| {
            if wildcard {
                h.ends_with(base)
            } else {
                *h == base
            }
        })
        .map(str::to_string)
        .collect()
}

/// Computes the http-route status Consul's controller writes.
fn route_status(store: &Store, name: &str, route: &Obj) -> Vec<Value> {
    let no = Proposal {
        kind: "",
        name: "",
        entry: None,
    };
    let services: Vec<&str> = arr(route, "Rules")
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|r| arr(r, "Services").iter().filter_map(Value::as_object))
        .map(|svc| s(svc, "Name"))
        .collect();
    let empty = resource("", "", "");
    if services.is_empty() {
        return vec![condition(
            "Accepted",
            "False",
            "NoUpstreamServicesTargeted",
            "route must target at least one upstream service",
            empty,
        )];
    }
    if services
        .iter()
        .any(|svc| protocol_of(store, &no, svc) != "http")
    {
        return vec![condition(
            "Accepted",
            "False",
            "InvalidDiscoveryChain",
            "route protocol does not match targeted service protocol",
            empty,
        )];
    }
    let mut conds = vec![condition(
        "Accepted",
        "True",
        "Accepted",
        "route is valid",
        empty,
    )];
    for parent in arr(route, "Parents").iter().filter_map(Value::as_object) {
        let gw_name = s(parent, "Name");
        let section = s(parent, "SectionName");
        let res = resource(s(parent, "Kind"), gw_name, section);
        let Some(gw) = store
            .data
            .config
            .get("api-gateway")
            .and_then(|m| m.get(gw_name))
            .map(|r| &r.entry)
        else {
            conds.push(condition(
                "Bound",
                "False",
                "GatewayNotFound",
                "gateway was not found",
                res,
            ));
            continue;
        };
        let accepted = gw
            .get("Status")
            .and_then(|st| st.get("Conditions"))
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|x| x["Type"] == "Accepted" && x["Status"] == "True")
            });
        let mut bound = false;
        let mut error: Option<String> = None;
        for l in arr(gw, "Listeners").iter().filter_map(Value::as_object) {
            let lname = s(l, "Name");
            if !(section.is_empty() || section == lname) {
                continue;
            }
            if !accepted {
                error = Some(format!(
                    "failed to bind route to gateway {gw_name}: gateway has not been accepted"
                ));
                continue;
            }
            if filtered_hostnames(route, s(l, "Hostname")).is_empty() {
                error = Some(format!(
                    "failed to bind route to gateway {gw_name}: listener {lname} is does not have any hostnames that match the route"
                ));
                continue;
            }
            if s(l, "Protocol") == "http" {
                bound = true;
            } else if !section.is_empty() {
                error = Some(format!(
                    "failed to bind route {name} to gateway {gw_name}: listener {lname} is not a http listener"
                ));
            }
        }
        if bound {
            conds.push(condition(
                "Bound",
                "True",
                "Bound",
                "successfully bound route",
                res,
            ));
        } else {
            let msg = error.unwrap_or_else(|| {
                format!(
                    "failed to bind route {name} to gateway {gw_name} with listener '{section}'"
                )
            });
            conds.push(condition("Bound", "False", "FailedToBind", &msg, res));
        }
    }
    conds
}

/// Stores new conditions on an entry when they differ (keeping the transition time
/// of unchanged conditions). Returns whether the entry changed.
fn set_status(entry: &mut Obj, mut conds: Vec<Value>, now: &str) -> bool {
    let old: &[Value] = entry
        .get("Status")
        .and_then(|s| s.get("Conditions"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in conds.iter_mut() {
        let prev = old.iter().find(|o| same_condition(o, c));
        c["LastTransitionTime"] = prev
            .map(|p| p["LastTransitionTime"].clone())
            .unwrap_or_else(|| Value::String(now.to_string()));
    }
    let changed = old.len() != conds.len()
        || old
            .iter()
            .zip(conds.iter())
            .any(|(a, b)| !same_condition(a, b));
    if changed
        || entry
            .get("Status")
            .and_then(|s| s.get("Conditions"))
            .is_none_or(Value::is_null)
    {
        entry.insert("Status".into(), json!({ "Conditions": conds }));
        return true;
    }
    false
}

/// Recomputes the status of the gateways and routes affected by a change to
/// `(kind, name)`, writing the ones that changed at this write's index.
pub(crate) fn refresh_status(store: &mut Store, tx: &mut Tx, kind: &str, name: &str) {
    let mut gateways: BTreeSet<String> = BTreeSet::new();
    let mut routes: BTreeSet<String> = BTreeSet::new();
    let all_routes = |store: &Store| -> BTreeSet<String> {
        store
            .data
            .config
            .get("http-route")
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    match kind {
        "api-gateway" => {
            gateways.insert(name.to_string());
            routes.extend(
                store
                    .route_refs
                    .get(&format!("gw:{name}"))
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        "http-route" => {
            routes.insert(name.to_string());
        }
        "service-defaults" => {
            routes.extend(
                store
                    .route_refs
                    .get(&format!("svc:{name}"))
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        "proxy-defaults" => routes = all_routes(store),
        "inline-certificate" | "file-system-certificate" => {
            gateways.extend(
                store
                    .data
                    .config
                    .get("api-gateway")
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            routes = all_routes(store);
        }
        _ => return,
    }
    let now = jiff::Timestamp::now().to_string();
    // Gateways first: route binding depends on the gateway being accepted.
    for gw in gateways {
        let stored = |store: &Store| {
            store
                .data
                .config
                .get("api-gateway")
                .and_then(|m| m.get(&gw))
                .map(|r| gateway_status(store, &r.entry))
        };
        let Some(conds) = stored(store) else {
            continue;
        };
        write_status(store, tx, "api-gateway", &gw, conds, &now);
    }
    for r in routes {
        let stored = |store: &Store| {
            store
                .data
                .config
                .get("http-route")
                .and_then(|m| m.get(&r))
                .map(|rec| route_status(store, &r, &rec.entry))
        };
        let Some(conds) = stored(store) else {
            continue;
        };
        write_status(store, tx, "http-route", &r, conds, &now);
    }
}

fn write_status(
    store: &mut Store,
    tx: &mut Tx,
    kind: &str,
    name: &str,
    conds: Vec<Value>,
    now: &str,
) {
    let Some(rec) = store
        .data
        .config
        .get_mut(kind)
        .and_then(|m| m.get_mut(name))
    else {
        return;
    };
    if set_status(&mut rec.entry, conds, now) {
        let idx = tx.index();
        rec.modify_index = idx;
        rec.json.clear();
        store.data.indexes.config = idx;
        tx.changed(Change::Config {
            kind: kind.to_string(),
            name: name.to_string(),
        });
    }
}
