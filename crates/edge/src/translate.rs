//! Pure translation: the edge specs, the endpoints per service and the configured
//! listeners become one [`Plan`] of Envoy resources and one [`SpecVerdict`] per spec.
//!
//! Decisions made here, and nowhere else:
//! - a route Envoy would refuse (see [`route_problem`]) is rejected before it is sent, so
//!   one spec's bad route never blocks the others;
//! - two specs claiming the same host and path match: the older spec (Consul create
//!   index, then key) wins, the other gets a conflict naming the winner; never both;
//! - a virtual host that an Envoy NACKed (a [`Quarantine`] whose digest still matches
//!   what would be sent) is left out, and its specs are marked rejected with Envoy's
//!   reason, until one of them changes it;
//! - an endpoint Envoy cannot use (no IP address, no port) is left out and reported.
//!
//! The plan is a small serialisable model (golden-tested); [`crate::resources`] turns it
//! into protobuf with content-hash versions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_spec::{EdgeRoute, PathMatch};

/// Name of the one route configuration every edge listener uses.
pub const ROUTE_CONFIG_NAME: &str = "steward-edge";

/// Longest path, prefix or rewrite passed to Envoy.
const MAX_PATH_LEN: usize = 1024;
/// Most retries a route may ask for (as the spec schema says).
const MAX_RETRIES: u32 = 10;
/// Longest route timeout (as the spec validation says): 1 h.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// The edge part of one spec that passed validation and guardrails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpec {
    /// `<ns>/<name>`.
    pub key: String,
    /// Consul `CreateIndex` of the spec's KV entry: the older spec wins a conflict.
    pub create_index: u64,
    /// Consul service name of its instances (and the Envoy cluster name).
    pub service: String,
    /// The spec's port: used for an instance registered with port 0.
    pub port: u16,
    /// The spec's `edge.routes`.
    pub routes: Vec<EdgeRoute>,
}

/// One passing instance of a service, as Consul health lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Service address, or the node's when the service has none.
    pub address: String,
    /// Port (0: the spec's port).
    pub port: u16,
}

/// A configured edge listener: an Envoy HTTP listener bound to `address`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct EdgeListener {
    /// Listener name (also its stats prefix).
    pub name: String,
    /// Address Envoy binds.
    pub address: SocketAddr,
}

/// A virtual host an Envoy refused, kept out while its content is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// [`VirtualHostPlan::digest`] of what was refused.
    pub digest: String,
    /// Envoy's `error_detail`, with the proxy that sent it.
    pub reason: String,
}

/// Everything translation reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Edge specs by key.
    pub specs: &'a BTreeMap<String, EdgeSpec>,
    /// Passing instances by Consul service name (a service without an entry: not known
    /// yet; with an empty list: none passing).
    pub endpoints: &'a BTreeMap<String, Vec<Endpoint>>,
    /// The configured edge listeners.
    pub listeners: &'a [EdgeListener],
    /// Refused virtual hosts by host.
    pub quarantine: &'a BTreeMap<String, Quarantine>,
}

/// The Envoy resources, as a plain model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One HTTP listener per configured edge listener.
    pub listeners: Vec<ListenerPlan>,
    /// The one route configuration.
    pub route_config: RouteConfigPlan,
    /// One EDS cluster per service with a serving route.
    pub clusters: Vec<ClusterPlan>,
    /// The endpoints of each cluster whose endpoints are known (a service Consul health
    /// has not answered for yet has none here, so nothing is sent for it).
    pub load_assignments: Vec<LoadAssignmentPlan>,
}

/// An HTTP listener with RDS over ADS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerPlan {
    /// Name.
    pub name: String,
    /// Bind address.
    pub address: SocketAddr,
    /// The route configuration it asks for.
    pub route_config: String,
}

/// The route configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteConfigPlan {
    /// Name ([`ROUTE_CONFIG_NAME`]).
    pub name: String,
    /// One per host, sorted by host.
    pub virtual_hosts: Vec<VirtualHostPlan>,
}

/// One virtual host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualHostPlan {
    /// The host (also the virtual host's name).
    pub name: String,
    /// `host` and `host:*` (Envoy matches the Host header literally).
    pub domains: Vec<String>,
    /// Most specific first: exact paths, then prefixes from longest to shortest.
    pub routes: Vec<RoutePlan>,
    /// Content hash of the routes.
    pub digest: String,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    /// `<spec key>#<index in edge.routes>`: says which spec a route came from.
    pub name: String,
    /// Path match.
    pub path: PathPlan,
    /// Target cluster.
    pub cluster: String,
    /// Replacement of the matched prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    /// Request timeout in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries on 5xx, connect failure and reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// A path match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PathPlan {
    /// Exact path.
    Exact(String),
    /// Path prefix.
    Prefix(String),
}

impl PathPlan {
    fn of(route: &EdgeRoute) -> Self {
        match route.path_match() {
            PathMatch::Exact(p) => PathPlan::Exact(p.to_owned()),
            PathMatch::Prefix(p) => PathPlan::Prefix(p.to_owned()),
        }
    }

    /// Sort key: exact first, then longer first, then by text.
    fn specificity(&self) -> (u8, std::cmp::Reverse<usize>, &str) {
        match self {
            PathPlan::Exact(p) => (0, std::cmp::Reverse(p.len()), p),
            PathPlan::Prefix(p) => (1, std::cmp::Reverse(p.len()), p),
        }
    }
}

impl std::fmt::Display for PathPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathPlan::Exact(p) => write!(f, "pathExact {p}"),
            PathPlan::Prefix(p) => write!(f, "pathPrefix {p}"),
        }
    }
}

/// An EDS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPlan {
    /// Name (the Consul service name; also the EDS service name).
    pub name: String,
}

/// The endpoints of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadAssignmentPlan {
    /// Cluster name.
    pub cluster: String,
    /// Sorted, without duplicates.
    pub endpoints: Vec<SocketAddr>,
}

/// What became of each route of one spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpecVerdict {
    /// Routes sent to Envoy.
    pub serving: Vec<RouteRef>,
    /// Routes another spec holds.
    pub conflicts: Vec<ConflictLoss>,
    /// Routes Envoy would refuse (or did).
    pub rejected: Vec<Rejection>,
    /// Instances of the spec's service that could not be sent.
    pub endpoint_problems: Vec<String>,
    /// Content hash of what the spec contributes to the route configuration: its
    /// serving routes changed when this did.
    pub digest: String,
}

impl SpecVerdict {
    /// Whether every route is served.
    #[must_use]
    pub fn all_serving(&self) -> bool {
        self.conflicts.is_empty() && self.rejected.is_empty()
    }
}

/// A route, for a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRef {
    /// Index in `edge.routes`.
    pub index: usize,
    /// Host.
    pub host: String,
    /// Path match.
    pub path: PathPlan,
}

/// A route lost to an older spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictLoss {
    /// The route.
    pub route: RouteRef,
    /// Key of the spec that holds the host and path.
    pub winner: String,
}

/// A route not sent because Envoy would refuse it, or did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The route.
    pub route: RouteRef,
    /// Why.
    pub reason: String,
}

/// The plan and the verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// The Envoy resources.
    pub plan: Plan,
    /// One per spec of the input.
    pub verdicts: BTreeMap<String, SpecVerdict>,
}

impl Translation {
    /// Consul services with a cluster: the ones whose health is watched.
    #[must_use]
    pub fn services(&self) -> BTreeSet<String> {
        self.plan.clusters.iter().map(|c| c.name.clone()).collect()
    }
}

/// Why Envoy would refuse this route, if it would.
///
/// Envoy matches domains literally and accepts only a leading `*` wildcard; header-safe
/// paths; a `Duration` timeout; and it cannot retry a negative number of times. The spec
/// validation checks the same; this is the last line before the wire, for anything that
/// reaches the edge without it.
#[must_use]
pub fn route_problem(route: &EdgeRoute) -> Option<String> {
    if let Some(problem) = host_problem(&route.host) {
        return Some(format!("host `{}`: {problem}", route.host));
    }
    if route.path_prefix.is_some() && route.path_exact.is_some() {
        return Some("both pathPrefix and pathExact are set".to_owned());
    }
    for (field, value) in [
        ("pathPrefix", &route.path_prefix),
        ("pathExact", &route.path_exact),
        ("rewrite", &route.rewrite),
    ] {
        if let Some(problem) = value.as_deref().and_then(path_problem) {
            return Some(format!(
                "{field} `{}`: {problem}",
                value.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(timeout) = route.timeout {
        let ms = timeout.as_std().as_millis();
        if ms == 0 || ms > u128::from(MAX_TIMEOUT_MS) {
            return Some(format!("timeout {timeout} is not between 1ms and 1h"));
        }
    }
    if let Some(retries) = route.retries
        && retries > MAX_RETRIES
    {
        return Some(format!("retries {retries} is more than {MAX_RETRIES}"));
    }
    None
}

fn host_problem(host: &str) -> Option<&'static str> {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    if bare.is_empty() {
        return Some("is empty");
    }
    if host.len() > 253 {
        return Some("is longer than 253 characters");
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Some("has an empty label or one longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label starting or ending with `-`");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some("may hold only a-z, 0-9, `-` and `.` (and a leading `*.`)");
        }
    }
    None
}

fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("does not start with `/`");
    }
    if path.len() > MAX_PATH_LEN {
        return Some("is longer than 1024 characters");
    }
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Some("holds a space, a control or a non-ASCII character");
    }
    if path.contains(['?', '#']) {
        return Some("holds `?` or `#`");
    }
    None
}

/// One candidate route before conflicts are settled.
struct Candidate<'a> {
    spec: &'a EdgeSpec,
    index: usize,
    route: &'a EdgeRoute,
    path: PathPlan,
}

/// Translates the input. Deterministic: the same input gives the same plan.
#[must_use]
pub fn translate(input: Input<'_>) -> Translation {
    let mut verdicts: BTreeMap<String, SpecVerdict> = input
        .specs
        .keys()
        .map(|k| (k.clone(), SpecVerdict::default()))
        .collect();

    // Claims by (host, path): the older spec first.
    let mut claims: BTreeMap<(&str, PathPlan), Vec<Candidate<'_>>> = BTreeMap::new();
    for spec in input.specs.values() {
        for (index, route) in spec.routes.iter().enumerate() {
            let path = PathPlan::of(route);
            let verdict = verdicts.entry(spec.key.clone()).or_default();
            if let Some(reason) = route_problem(route) {
                verdict.rejected.push(Rejection {
                    route: RouteRef {
                        index,
                        host: route.host.clone(),
                        path,
                    },
                    reason,
                });
                continue;
            }
            claims
                .entry((route.host.as_str(), path.clone()))
                .or_default()
                .push(Candidate {
                    spec,
                    index,
                    route,
                    path,
                });
        }
    }

    // Winners grouped by host.
    let mut hosts: BTreeMap<&str, Vec<Candidate<'_>>> = BTreeMap::new();
    for ((host, _), mut candidates) in claims {
        candidates.sort_by(|a, b| {
            (a.spec.create_index, &a.spec.key, a.index).cmp(&(
                b.spec.create_index,
                &b.spec.key,
                b.index,
            ))
        });
        let mut candidates = candidates.into_iter();
        let Some(winner) = candidates.next() else {
            continue;
        };
        for loser in candidates {
            if loser.spec.key == winner.spec.key {
                // The same spec twice: validation reports it; the first one serves.
                continue;
            }
            verdicts
                .entry(loser.spec.key.clone())
                .or_default()
                .conflicts
                .push(ConflictLoss {
                    route: RouteRef {
                        index: loser.index,
                        host: host.to_owned(),
                        path: loser.path,
                    },
                    winner: winner.spec.key.clone(),
                });
        }
        hosts.entry(host).or_default().push(winner);
    }

    let mut virtual_hosts = Vec::new();
    let mut serving_by_spec: BTreeMap<&str, Vec<&RoutePlan>> = BTreeMap::new();
    let mut services: BTreeMap<&str, &EdgeSpec> = BTreeMap::new();
    for (host, mut winners) in hosts {
        winners.sort_by(|a, b| a.path.specificity().cmp(&b.path.specificity()));
        let routes: Vec<RoutePlan> = winners.iter().map(route_plan).collect();
        let digest = digest_of(&routes);
        if let Some(q) = input.quarantine.get(host)
            && q.digest == digest
        {
            for c in &winners {
                verdicts
                    .entry(c.spec.key.clone())
                    .or_default()
                    .rejected
                    .push(Rejection {
                        route: RouteRef {
                            index: c.index,
                            host: host.to_owned(),
                            path: c.path.clone(),
                        },
                        reason: q.reason.clone(),
                    });
            }
            continue;
        }
        for c in &winners {
            let verdict = verdicts.entry(c.spec.key.clone()).or_default();
            verdict.serving.push(RouteRef {
                index: c.index,
                host: host.to_owned(),
                path: c.path.clone(),
            });
            services.insert(c.spec.service.as_str(), c.spec);
        }
        virtual_hosts.push(VirtualHostPlan {
            name: host.to_owned(),
            domains: vec![host.to_owned(), format!("{host}:*")],
            routes,
            digest,
        });
    }
    for vh in &virtual_hosts {
        for route in &vh.routes {
            if let Some((key, _)) = route.name.rsplit_once('#') {
                serving_by_spec.entry(key).or_default().push(route);
            }
        }
    }

    let mut clusters = Vec::new();
    let mut load_assignments = Vec::new();
    for (service, spec) in &services {
        clusters.push(ClusterPlan {
            name: (*service).to_owned(),
        });
        // Endpoints not known yet (the health watch has not answered, e.g. just after a
        // restart) are not sent as "none": Envoy keeps what it has, or keeps a new
        // cluster warming, instead of answering 503.
        let Some(known) = input.endpoints.get(*service) else {
            continue;
        };
        let (endpoints, problems) = usable_endpoints(known, spec.port);
        if !problems.is_empty() {
            for spec in input.specs.values().filter(|s| s.service == *service) {
                verdicts
                    .entry(spec.key.clone())
                    .or_default()
                    .endpoint_problems
                    .extend(problems.iter().cloned());
            }
        }
        load_assignments.push(LoadAssignmentPlan {
            cluster: (*service).to_owned(),
            endpoints,
        });
    }

    for (key, verdict) in &mut verdicts {
        verdict.serving.sort_by_key(|r| r.index);
        verdict.conflicts.sort_by_key(|c| c.route.index);
        verdict.rejected.sort_by_key(|r| r.route.index);
        let mut mine = serving_by_spec.remove(key.as_str()).unwrap_or_default();
        mine.sort_by(|a, b| a.name.cmp(&b.name));
        verdict.digest = digest_of(&mine);
    }

    let listeners = input
        .listeners
        .iter()
        .map(|l| ListenerPlan {
            name: l.name.clone(),
            address: l.address,
            route_config: ROUTE_CONFIG_NAME.to_owned(),
        })
        .collect();

    Translation {
        plan: Plan {
            listeners,
            route_config: RouteConfigPlan {
                name: ROUTE_CONFIG_NAME.to_owned(),
                virtual_hosts,
            },
            clusters,
            load_assignments,
        },
        verdicts,
    }
}

fn route_plan(c: &Candidate<'_>) -> RoutePlan {
    RoutePlan {
        name: format!("{}#{}", c.spec.key, c.index),
        path: c.path.clone(),
        cluster: c.spec.service.clone(),
        prefix_rewrite: c.route.rewrite.clone(),
        timeout_ms: c
            .route
            .timeout
            .map(|t| u64::try_from(t.as_std().as_millis()).unwrap_or(MAX_TIMEOUT_MS)),
        retries: c.route.retries,
    }
}

/// The endpoints Envoy can use (an IP address and a port), sorted and deduplicated, and
/// a sentence for each one left out.
fn usable_endpoints(endpoints: &[Endpoint], spec_port: u16) -> (Vec<SocketAddr>, Vec<String>) {
    let mut usable = BTreeSet::new();
    let mut problems = Vec::new();
    for e in endpoints {
        let port = if e.port == 0 { spec_port } else { e.port };
        match e.address.parse::<IpAddr>() {
            Ok(ip) if port != 0 => {
                usable.insert(SocketAddr::new(ip, port));
            }
            Ok(_) => problems.push(format!(
                "instance at {} has no port (and the spec none)",
                e.address
            )),
            Err(_) => problems.push(format!(
                "instance address `{}` is not an IP address (Envoy's EDS takes IPs only)",
                e.address
            )),
        }
    }
    (usable.into_iter().collect(), problems)
}

/// Short content hash of a serialisable value.
pub(crate) fn digest_of<T: Serialize + ?Sized>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

#[cfg(test)]
mod tests;
