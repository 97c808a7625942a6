//! The [`Plan`] as Envoy v3 protobuf resources, with a content-hash version per type.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address,
    config_source, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route,
    route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;
use sha2::{Digest, Sha256};

use crate::translate::{ListenerPlan, PathPlan, Plan, RoutePlan};

/// Envoy's `retry_on` for an edge route: server errors, refused or reset connections.
pub const RETRY_ON: &str = "5xx,connect-failure,reset";
/// Connect timeout of every edge cluster.
const CONNECT_TIMEOUT_SECS: i64 = 1;

/// The four resource types, in the order that never drops traffic ("make before
/// break"): clusters, their endpoints, listeners, routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeKind {
    /// CDS.
    Cluster,
    /// EDS.
    Endpoint,
    /// LDS.
    Listener,
    /// RDS.
    Route,
}

impl TypeKind {
    /// Every type, in push order.
    pub const ALL: [TypeKind; 4] = [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
    ];

    /// The type URL.
    #[must_use]
    pub const fn url(self) -> &'static str {
        match self {
            TypeKind::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            TypeKind::Endpoint => {
                "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
            }
            TypeKind::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            TypeKind::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        }
    }

    /// The type of a URL this server serves.
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.url() == url)
    }

    /// Short name for logs and metric labels.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            TypeKind::Cluster => "cds",
            TypeKind::Endpoint => "eds",
            TypeKind::Listener => "lds",
            TypeKind::Route => "rds",
        }
    }

    /// Whether Envoy asks for every resource (listeners, clusters) rather than by name.
    #[must_use]
    pub const fn is_wildcard(self) -> bool {
        matches!(self, TypeKind::Cluster | TypeKind::Listener)
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            TypeKind::Cluster => 0,
            TypeKind::Endpoint => 1,
            TypeKind::Listener => 2,
            TypeKind::Route => 3,
        }
    }
}

/// The resources of one type and their version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeResources {
    /// Content hash of every resource of the type.
    pub version: String,
    /// Encoded resources by name.
    pub resources: BTreeMap<String, Any>,
}

impl TypeResources {
    fn new(resources: BTreeMap<String, Any>) -> Self {
        let mut hasher = Sha256::new();
        for (name, any) in &resources {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((any.value.len() as u64).to_le_bytes());
            hasher.update(&any.value);
        }
        Self {
            version: hex::encode(&hasher.finalize()[..8]),
            resources,
        }
    }
}

/// One consistent set of resources of every type, as served to every proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Increases with every snapshot of one edge: says which snapshot a proxy acked.
    pub generation: u64,
    types: [Arc<TypeResources>; 4],
}

impl Snapshot {
    /// Encodes a plan.
    #[must_use]
    pub fn from_plan(plan: &Plan, generation: u64) -> Self {
        let clusters = plan
            .clusters
            .iter()
            .map(|c| (c.name.clone(), pack_any(cluster_resource(&c.name))))
            .collect();
        let endpoints = plan
            .load_assignments
            .iter()
            .map(|la| {
                (
                    la.cluster.clone(),
                    pack_any(load_assignment(&la.cluster, &la.endpoints)),
                )
            })
            .collect();
        let listeners = listener_set(&plan.listeners);
        let mut routes = BTreeMap::new();
        routes.insert(
            plan.route_config.name.clone(),
            pack_any(route_configuration(plan)),
        );
        Self {
            generation,
            types: [
                Arc::new(TypeResources::new(clusters)),
                Arc::new(TypeResources::new(endpoints)),
                Arc::new(listeners),
                Arc::new(TypeResources::new(routes)),
            ],
        }
    }

    /// The resources of one type.
    #[must_use]
    pub fn get(&self, kind: TypeKind) -> &Arc<TypeResources> {
        &self.types[kind.index()]
    }
}

/// The listener resources of a set of listener plans.
#[must_use]
pub fn listener_set(listeners: &[ListenerPlan]) -> TypeResources {
    TypeResources::new(
        listeners
            .iter()
            .map(|l| (l.name.clone(), pack_any(listener(l))))
            .collect(),
    )
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

fn socket(addr: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                addr.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn listener(plan: &ListenerPlan) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: plan.name.clone(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: plan.route_config.clone(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".to_owned(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: plan.name.clone(),
        address: Some(socket(plan.address)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_owned(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn cluster_resource(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        connect_timeout: Some(PbDuration {
            seconds: CONNECT_TIMEOUT_SECS,
            nanos: 0,
        }),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name.to_owned(),
        }),
        ..Default::default()
    }
}

fn load_assignment(cluster: &str, endpoints: &[SocketAddr]) -> ClusterLoadAssignment {
    let lb_endpoints: Vec<LbEndpoint> = endpoints
        .iter()
        .map(|addr| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(socket(*addr)),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster.to_owned(),
        endpoints: if lb_endpoints.is_empty() {
            Vec::new()
        } else {
            vec![LocalityLbEndpoints {
                lb_endpoints,
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

fn route_configuration(plan: &Plan) -> RouteConfiguration {
    RouteConfiguration {
        name: plan.route_config.name.clone(),
        virtual_hosts: plan
            .route_config
            .virtual_hosts
            .iter()
            .map(|vh| VirtualHost {
                name: vh.name.clone(),
                domains: vh.domains.clone(),
                routes: vh.routes.iter().map(route_resource).collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn route_resource(plan: &RoutePlan) -> Route {
    let path_specifier = match &plan.path {
        PathPlan::Exact(p) => route_match::PathSpecifier::Path(p.clone()),
        PathPlan::Prefix(p) => route_match::PathSpecifier::Prefix(p.clone()),
    };
    let action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
            plan.cluster.clone(),
        )),
        prefix_rewrite: plan.prefix_rewrite.clone().unwrap_or_default(),
        timeout: plan.timeout_ms.map(|ms| PbDuration {
            seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
            nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
        }),
        retry_policy: plan.retries.map(|n| RetryPolicy {
            retry_on: RETRY_ON.to_owned(),
            num_retries: Some(UInt32Value { value: n }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Route {
        name: plan.name.clone(),
        r#match: Some(RouteMatch {
            path_specifier: Some(path_specifier),
            ..Default::default()
        }),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message;

    use super::*;
    use crate::translate::{
        ClusterPlan, LoadAssignmentPlan, RouteConfigPlan, VirtualHostPlan, translate,
    };

    fn plan() -> Plan {
        Plan {
            listeners: vec![ListenerPlan {
                name: "edge-http".into(),
                address: "127.0.0.1:10080".parse().expect("addr"),
                route_config: "steward-edge".into(),
            }],
            route_config: RouteConfigPlan {
                name: "steward-edge".into(),
                virtual_hosts: vec![VirtualHostPlan {
                    name: "shop.example.com".into(),
                    domains: vec!["shop.example.com".into(), "shop.example.com:*".into()],
                    routes: vec![RoutePlan {
                        name: "shop/web#0".into(),
                        path: PathPlan::Prefix("/api/".into()),
                        cluster: "web".into(),
                        prefix_rewrite: Some("/".into()),
                        timeout_ms: Some(5_250),
                        retries: Some(2),
                    }],
                    digest: "d".into(),
                }],
            },
            clusters: vec![ClusterPlan { name: "web".into() }],
            load_assignments: vec![LoadAssignmentPlan {
                cluster: "web".into(),
                endpoints: vec!["10.0.0.1:8080".parse().expect("addr")],
            }],
        }
    }

    #[test]
    fn a_route_carries_match_rewrite_timeout_and_retries() {
        let snap = Snapshot::from_plan(&plan(), 1);
        let any = &snap.get(TypeKind::Route).resources["steward-edge"];
        assert_eq!(any.type_url, TypeKind::Route.url());
        let rc = RouteConfiguration::decode(any.value.as_slice()).expect("decodes");
        let route = &rc.virtual_hosts[0].routes[0];
        assert_eq!(
            route
                .r#match
                .as_ref()
                .and_then(|m| m.path_specifier.clone()),
            Some(route_match::PathSpecifier::Prefix("/api/".into()))
        );
        let Some(route::Action::Route(action)) = &route.action else {
            panic!("route action expected");
        };
        assert_eq!(action.prefix_rewrite, "/");
        assert_eq!(
            action.timeout,
            Some(PbDuration {
                seconds: 5,
                nanos: 250_000_000
            })
        );
        let retry = action.retry_policy.as_ref().expect("retry policy");
        assert_eq!(retry.retry_on, RETRY_ON);
        assert_eq!(retry.num_retries, Some(UInt32Value { value: 2 }));
        assert_eq!(
            rc.virtual_hosts[0].domains,
            vec!["shop.example.com", "shop.example.com:*"]
        );
    }

    #[test]
    fn a_cluster_is_eds_over_ads_and_its_endpoints_are_ip_and_port() {
        let snap = Snapshot::from_plan(&plan(), 1);
        let c = Cluster::decode(
            snap.get(TypeKind::Cluster).resources["web"]
                .value
                .as_slice(),
        )
        .expect("decodes");
        assert_eq!(
            c.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32
            ))
        );
        assert_eq!(
            c.eds_cluster_config.map(|e| e.service_name),
            Some("web".to_owned())
        );
        let cla = ClusterLoadAssignment::decode(
            snap.get(TypeKind::Endpoint).resources["web"]
                .value
                .as_slice(),
        )
        .expect("decodes");
        let Some(lb_endpoint::HostIdentifier::Endpoint(e)) =
            &cla.endpoints[0].lb_endpoints[0].host_identifier
        else {
            panic!("endpoint expected");
        };
        assert_eq!(
            e.address,
            Some(socket("10.0.0.1:8080".parse().expect("addr")))
        );
    }

    #[test]
    fn versions_change_only_for_the_type_whose_content_changed() {
        let a = Snapshot::from_plan(&plan(), 1);
        let mut changed = plan();
        changed.load_assignments[0].endpoints = vec!["10.0.0.2:8080".parse().expect("addr")];
        let b = Snapshot::from_plan(&changed, 2);
        for kind in TypeKind::ALL {
            let same = a.get(kind).version == b.get(kind).version;
            assert_eq!(same, kind != TypeKind::Endpoint, "{kind:?}");
        }
        let again = Snapshot::from_plan(&plan(), 3);
        for kind in TypeKind::ALL {
            assert_eq!(a.get(kind).version, again.get(kind).version);
        }
    }

    #[test]
    fn an_empty_input_gives_empty_but_versioned_types() {
        let t = translate(crate::translate::Input {
            specs: &BTreeMap::new(),
            endpoints: &BTreeMap::new(),
            listeners: &[],
            quarantine: &BTreeMap::new(),
        });
        let snap = Snapshot::from_plan(&t.plan, 1);
        assert!(snap.get(TypeKind::Cluster).resources.is_empty());
        assert_eq!(snap.get(TypeKind::Route).resources.len(), 1);
        assert!(!snap.get(TypeKind::Cluster).version.is_empty());
    }
}
