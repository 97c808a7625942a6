//! Catalog, agent and health: nodes, service instances and checks.
//!
//! # Internal API for the Nomad module
//!
//! Nomad registers the services of running allocations in its local Consul agent.
//! The simulated Nomad does the same through these methods on
//! [`ConsulState`](super::ConsulState) (it receives an `Arc<ConsulState>` in
//! `NomadState::new`):
//!
//! - [`ConsulState::register_instance`] with a [`CatalogInstance`] when a task's
//!   service starts: service, checks and (with [`CatalogInstance::sidecar`]) the
//!   Connect sidecar `<id>-sidecar-proxy` exactly as the agent registers it from
//!   `Connect.SidecarService` (Kind `connect-proxy`, `Proxy` fields, the
//!   "Connect Sidecar Listening" and "Connect Sidecar Aliasing" checks).
//! - [`ConsulState::set_check_status`] when a check passes or fails (a critical check
//!   also invalidates the sessions tied to it, as in real Consul).
//! - [`ConsulState::deregister_instance`] when the allocation stops (removes the
//!   instance, its checks and its agent-managed sidecar).
//!
//! ```ignore
//! use crate::consul::{CatalogInstance, CheckRegistration, CheckStatus, SidecarRegistration};
//! consul.register_instance(CatalogInstance {
//!     id: format!("_nomad-task-{alloc}-group-web-web-http"),
//!     name: "web".into(),
//!     address: "127.0.0.1".into(),
//!     port: 28080,
//!     tags: vec!["trading".into()],
//!     meta: [("external-source".to_string(), "nomad".to_string())].into(),
//!     checks: vec![CheckRegistration::new("service: \"web\" check", "http", CheckStatus::Critical)],
//!     sidecar: Some(SidecarRegistration { port: 21000, ..Default::default() }),
//!     ..Default::default()
//! });
//! consul.set_check_status(&format!("_nomad-check-{alloc}"), CheckStatus::Passing, "HTTP GET: 200 OK");
//! consul.deregister_instance(&format!("_nomad-task-{alloc}-group-web-web-http"));
//! ```
//!
//! Every change bumps the catalog indexes and wakes `/v1/health/service/<name>`
//! watchers, like an agent anti-entropy sync would.

use super::ConsulState;
use super::acl::{Access, Res};
use super::store::{Change, Check, Node, ServiceInst, Store, Tx, Watch};
use super::web::{self, ApiError, ApiResult, Meta, Req};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Health of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckStatus {
    /// `passing`.
    Passing,
    /// `warning`.
    Warning,
    /// `critical` (the initial status of checks the agent registers without one).
    #[default]
    Critical,
}

impl CheckStatus {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<CheckStatus> {
        match s {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// Kind of a service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceKind {
    /// An ordinary service (`Kind: ""`).
    #[default]
    Typical,
    /// A Connect sidecar proxy (`Kind: "connect-proxy"`); fill [`CatalogInstance::proxy`].
    ConnectProxy,
    /// An ingress gateway (`Kind: "ingress-gateway"`).
    IngressGateway,
    /// An API gateway (`Kind: "api-gateway"`).
    ApiGateway,
}

impl ServiceKind {
    fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Typical => "",
            ServiceKind::ConnectProxy => "connect-proxy",
            ServiceKind::IngressGateway => "ingress-gateway",
            ServiceKind::ApiGateway => "api-gateway",
        }
    }
}

/// An upstream of a Connect proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamRegistration {
    /// Service the upstream points at.
    pub destination_name: String,
    /// Local port the proxy listens on for it.
    pub local_bind_port: u16,
    /// Local address (empty = default).
    pub local_bind_address: String,
}

/// `Proxy` block of a `connect-proxy` instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyRegistration {
    /// Service the proxy fronts.
    pub destination_service_name: String,
    /// Instance ID of the service the proxy fronts.
    pub destination_service_id: String,
    /// Where the proxied service listens (default `127.0.0.1`).
    pub local_service_address: String,
    /// Port of the proxied service.
    pub local_service_port: u16,
    /// Upstreams.
    pub upstreams: Vec<UpstreamRegistration>,
    /// Opaque proxy config (`Proxy.Config`).
    pub config: Map<String, Value>,
}

/// Sidecar registration (`Connect.SidecarService`): the agent derives the proxy
/// instance `<id>-sidecar-proxy` from its parent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SidecarRegistration {
    /// Port of the proxy's public listener (0 = the agent picks one from 21000).
    pub port: u16,
    /// Upstreams.
    pub upstreams: Vec<UpstreamRegistration>,
    /// Tags (`None` = inherit the parent's).
    pub tags: Option<Vec<String>>,
    /// Opaque proxy config; `protocol` is filled from service-defaults when absent.
    pub config: Map<String, Value>,
    /// Skip the default "Connect Sidecar Listening"/"Aliasing" checks.
    pub disable_default_checks: bool,
}

/// A check attached to a service instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckRegistration {
    /// Check ID (empty = `service:<instance id>`, or `service:<id>:<n>` when several).
    pub id: String,
    /// Display name (empty = `Service '<name>' check`).
    pub name: String,
    /// `http`, `tcp`, `grpc`, `ttl`, `script`, `alias`...
    pub check_type: String,
    /// Initial status.
    pub status: CheckStatus,
    /// Last output.
    pub output: String,
    /// Notes.
    pub notes: String,
    /// Interval as a Go duration (`10s`), informational.
    pub interval: String,
    /// Timeout as a Go duration, informational.
    pub timeout: String,
}

impl CheckRegistration {
    /// A check with a name, a type and an initial status.
    pub fn new(name: &str, check_type: &str, status: CheckStatus) -> CheckRegistration {
        CheckRegistration {
            name: name.to_string(),
            check_type: check_type.to_string(),
            status,
            ..CheckRegistration::default()
        }
    }
}

/// One service instance to register, as a Nomad client registers an allocation's
/// service in its local agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogInstance {
    /// Node to register on; `None` = the simulated agent's node. An unknown node is
    /// created with address `address`.
    pub node: Option<String>,
    /// Instance ID (Nomad: `_nomad-task-<alloc>-<task|group-g>-<service>-<port label>`).
    pub id: String,
    /// Service name.
    pub name: String,
    /// Instance address.
    pub address: String,
    /// Instance port.
    pub port: u16,
    /// Tags.
    pub tags: Vec<String>,
    /// Meta (Nomad adds `external-source = nomad`).
    pub meta: BTreeMap<String, String>,
    /// Kind.
    pub kind: ServiceKind,
    /// Proxy block for `connect-proxy` instances registered directly.
    pub proxy: Option<ProxyRegistration>,
    /// Checks.
    pub checks: Vec<CheckRegistration>,
    /// Connect sidecar the agent should derive from this instance.
    pub sidecar: Option<SidecarRegistration>,
}

impl ConsulState {
    /// Registers (or replaces) a service instance with its checks and optional
    /// sidecar, as the agent does for `PUT /v1/agent/service/register`. Returns the
    /// index of the write (unchanged re-registrations keep the old indexes).
    pub(crate) fn register_instance(&self, inst: CatalogInstance) -> u64 {
        let mut store = self.store.lock();
        let mut tx = store.begin(&self.clock);
        let node = inst
            .node
            .clone()
            .unwrap_or_else(|| self.cfg.node_name.clone());
        if !store.data.nodes.contains_key(&node) {
            let address = if inst.address.is_empty() {
                self.cfg.node_address.clone()
            } else {
                inst.address.clone()
            };
            let n = self.new_node(&node, &address);
            store.ensure_node(&mut tx, n);
        }
        let defs = AgentDefs::from_instance(&inst);
        store.register_agent_service(&mut tx, &node, defs, self);
        let idx = tx.index_if_used();
        store.commit(&self.clock, tx);
        idx.unwrap_or_else(|| self.clock.current())
    }

    /// Deregisters a service instance (any node), its checks and its agent-managed
    /// sidecar. `false` when no such instance exists.
    pub(crate) fn deregister_instance(&self, service_id: &str) -> bool {
        let mut store = self.store.lock();
        let Some(node) = store.node_of_service(service_id) else {
            return false;
        };
        let mut tx = store.begin(&self.clock);
        store.deregister_agent_service(&mut tx, &node, service_id);
        store.commit(&self.clock, tx);
        true
    }

    /// Sets a check's status and output (any node). A critical check invalidates the
    /// sessions tied to it. `false` when no such check exists.
    pub(crate) fn set_check_status(
        &self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
    ) -> bool {
        let mut store = self.store.lock();
        let Some(node) = store
            .data
            .checks
            .iter()
            .find(|(_, checks)| checks.contains_key(check_id))
            .map(|(n, _)| n.clone())
        else {
            return false;
        };
        let mut tx = store.begin(&self.clock);
        store.update_check_status(&mut tx, &node, check_id, status.as_str(), output);
        store.commit(&self.clock, tx);
        true
    }

    /// IDs of every registered service instance (for reconciling after a restart).
    #[allow(dead_code)] // part of the API offered to the Nomad module
    pub(crate) fn registered_instances(&self) -> Vec<String> {
        let store = self.store.lock();
        store
            .data
            .services
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect()
    }

    /// A node record for this datacenter.
    pub(crate) fn new_node(&self, name: &str, address: &str) -> Node {
        let tagged = [
            ("lan", address),
            ("lan_ipv4", address),
            ("wan", address),
            ("wan_ipv4", address),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Node {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            address: address.to_string(),
            datacenter: self.cfg.datacenter.clone(),
            tagged_addresses: tagged,
            meta: [("consul-network-segment".to_string(), String::new())].into(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Registers the agent's own node, its `serfHealth` check and the `consul`
    /// service, as a fresh dev agent has them.
    pub(crate) fn bootstrap_catalog(&self) {
        let mut store = self.store.lock();
        let mut tx = store.begin(&self.clock);
        let node = self.new_node(&self.cfg.node_name, &self.cfg.node_address);
        store.ensure_node(&mut tx, node);
        store.ensure_check(
            &mut tx,
            Check {
                node: self.cfg.node_name.clone(),
                check_id: "serfHealth".into(),
                name: "Serf Health Status".into(),
                status: "passing".into(),
                notes: String::new(),
                output: "Agent alive and reachable".into(),
                service_id: String::new(),
                service_name: String::new(),
                check_type: String::new(),
                interval: String::new(),
                timeout: String::new(),
                create_index: 0,
                modify_index: 0,
            },
        );
        let meta = [
            ("non_voter", "false"),
            ("raft_version", "3"),
            ("read_replica", "false"),
            ("serf_protocol_current", "2"),
            ("serf_protocol_max", "5"),
            ("serf_protocol_min", "1"),
            ("version", self.cfg.version.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        store.ensure_service(
            &mut tx,
            ServiceInst {
                node: self.cfg.node_name.clone(),
                kind: String::new(),
                id: "consul".into(),
                service: "consul".into(),
                tags: Vec::new(),
                address: String::new(),
                tagged_addresses: None,
                meta,
                port: 8300,
                weights: (1, 1),
                enable_tag_override: false,
                proxy: Map::new(),
                connect: Map::new(),
                sidecar_of: None,
                local: false,
                create_index: 0,
                modify_index: 0,
            },
        );
        store.commit(&self.clock, tx);
    }
}

impl Tx {
    /// The write's index when it changed anything.
    pub(crate) fn index_if_used(&mut self) -> Option<u64> {
        if self.is_used() {
            Some(self.index())
        } else {
            None
        }
    }
}

/// Parsed agent registration: the service and checks to write.
#[derive(Debug, Clone)]
pub(crate) struct AgentDefs {
    pub svc: ServiceInst,
    pub checks: Vec<CheckRegistration>,
    pub sidecar: Option<SidecarRegistration>,
}

impl AgentDefs {
    fn from_instance(inst: &CatalogInstance) -> AgentDefs {
        let mut proxy = Map::new();
        if let Some(p) = &inst.proxy {
            proxy = proxy_json(p);
        }
        AgentDefs {
            svc: ServiceInst {
                node: String::new(),
                kind: inst.kind.as_str().to_string(),
                id: if inst.id.is_empty() {
                    inst.name.clone()
                } else {
                    inst.id.clone()
                },
                service: inst.name.clone(),
                tags: inst.tags.clone(),
                address: inst.address.clone(),
                tagged_addresses: None,
                meta: inst.meta.clone(),
                port: u64::from(inst.port),
                weights: (1, 1),
                enable_tag_override: false,
                proxy,
                connect: Map::new(),
                sidecar_of: None,
                local: true,
                create_index: 0,
                modify_index: 0,
            },
            checks: inst.checks.clone(),
            sidecar: inst.sidecar.clone(),
        }
    }
}

fn proxy_json(p: &ProxyRegistration) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "DestinationServiceName".into(),
        p.destination_service_name.clone().into(),
    );
    if !p.destination_service_id.is_empty() {
        m.insert(
            "DestinationServiceID".into(),
            p.destination_service_id.clone().into(),
        );
    }
    let addr = if p.local_service_address.is_empty() {
        "127.0.0.1"
    } else {
        p.local_service_address.as_str()
    };
    m.insert("LocalServiceAddress".into(), addr.into());
    if p.local_service_port != 0 {
        m.insert("LocalServicePort".into(), p.local_service_port.into());
    }
    if !p.config.is_empty() {
        m.insert("Config".into(), Value::Object(p.config.clone()));
    }
    if !p.upstreams.is_empty() {
        m.insert(
            "Upstreams".into(),
            Value::Array(p.upstreams.iter().map(upstream_json).collect()),
        );
    }
    m
}

fn upstream_json(u: &UpstreamRegistration) -> Value {
    let mut m = Map::new();
    m.insert("DestinationType".into(), "service".into());
    m.insert("DestinationName".into(), u.destination_name.clone().into());
    m.insert("Datacenter".into(), "".into());
    if !u.local_bind_address.is_empty() {
        m.insert(
            "LocalBindAddress".into(),
            u.local_bind_address.clone().into(),
        );
    }
    m.insert("LocalBindPort".into(), u.local_bind_port.into());
    m.insert("MeshGateway".into(), json!({}));
    Value::Object(m)
}

/// The tagged addresses the agent adds to services with an IPv4 address.
fn service_tagged(address: &str, port: u64) -> Option<Map<String, Value>> {
    if address.parse::<std::net::Ipv4Addr>().is_err() {
        return None;
    }
    let a = json!({"Address": address, "Port": port});
    let mut m = Map::new();
    m.insert("lan_ipv4".into(), a.clone());
    m.insert("wan_ipv4".into(), a);
    Some(m)
}

// ----- store operations ----------------------------------------------------------

impl Store {
    /// The node an instance ID is registered on.
    pub(crate) fn node_of_service(&self, id: &str) -> Option<String> {
        self.data
            .services
            .iter()
            .find(|(_, m)| m.contains_key(id))
            .map(|(n, _)| n.clone())
    }

    fn bump_service(&mut self, tx: &mut Tx, name: &str) {
        let idx = tx.index();
        self.data.service_indexes.insert(name.to_string(), idx);
    }

    fn services_on_node(&self, node: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .data
            .services
            .get(node)
            .map(|m| m.values().map(|s| s.service.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }

    /// Inserts or updates a node (no-op when identical).
    pub(crate) fn ensure_node(&mut self, tx: &mut Tx, mut node: Node) {
        if let Some(old) = self.data.nodes.get(&node.name) {
            node.create_index = old.create_index;
            node.modify_index = old.modify_index;
            node.id = if node.id.is_empty() {
                old.id.clone()
            } else {
                node.id
            };
            if *old == node {
                return;
            }
        }
        let idx = tx.index();
        if node.create_index == 0 {
            node.create_index = idx;
        }
        node.modify_index = idx;
        self.data.indexes.nodes = idx;
        let services = self.services_on_node(&node.name);
        for s in &services {
            self.bump_service(tx, s);
        }
        self.data.nodes.insert(node.name.clone(), node);
        tx.changed(Change::Catalog {
            services,
            node_level: true,
        });
    }

    /// Inserts or updates a service instance (no-op when identical).
    pub(crate) fn ensure_service(&mut self, tx: &mut Tx, mut svc: ServiceInst) {
        let node_services = self.data.services.entry(svc.node.clone()).or_default();
        if let Some(old) = node_services.get(&svc.id) {
            svc.create_index = old.create_index;
            svc.modify_index = old.modify_index;
            if *old == svc {
                return;
            }
        }
        let idx = tx.index();
        if svc.create_index == 0 {
            svc.create_index = idx;
        }
        svc.modify_index = idx;
        let old = node_services.insert(svc.id.clone(), svc.clone());
        if let Some(o) = &old {
            self.index_service(o, false);
        }
        self.index_service(&svc, true);
        let old_name = old.map(|o| o.service);
        self.data.indexes.services = idx;
        let mut names = vec![svc.service.clone()];
        if let Some(old) = old_name.filter(|o| *o != svc.service) {
            self.bump_service(tx, &old);
            names.push(old);
        }
        self.bump_service(tx, &svc.service);
        tx.changed(Change::Catalog {
            services: names,
            node_level: false,
        });
    }

    /// Inserts or updates a check (no-op when identical); a critical status
    /// invalidates the sessions tied to the check.
    pub(crate) fn ensure_check(&mut self, tx: &mut Tx, mut check: Check) {
        let node_checks = self.data.checks.entry(check.node.clone()).or_default();
        if let Some(old) = node_checks.get(&check.check_id) {
            check.create_index = old.create_index;
            check.modify_index = old.modify_index;
            if *old == check {
                return;
            }
        }
        let idx = tx.index();
        if check.create_index == 0 {
            check.create_index = idx;
        }
        check.modify_index = idx;
        if let Some(o) = node_checks.insert(check.check_id.clone(), check.clone()) {
            self.index_check(&o, false);
        }
        self.index_check(&check, true);
        self.data.indexes.checks = idx;
        let node_level = check.service_id.is_empty();
        let services = if node_level {
            self.services_on_node(&check.node)
        } else {
            vec![check.service_name.clone()]
        };
        for s in &services {
            self.bump_service(tx, s);
        }
        tx.changed(Change::Catalog {
            services,
            node_level,
        });
        if check.status == "critical" {
            self.invalidate_sessions_for_check(tx, &check.node, &check.check_id);
        }
        if !check.service_id.is_empty() {
            self.refresh_alias_checks(tx, &check.node, &check.service_id);
        }
    }

    /// Updates one check's status and output.
    pub(crate) fn update_check_status(
        &mut self,
        tx: &mut Tx,
        node: &str,
        check_id: &str,
        status: &str,
        output: &str,
    ) {
        let Some(mut check) = self
            .data
            .checks
            .get(node)
            .and_then(|m| m.get(check_id))
            .cloned()
        else {
            return;
        };
        check.status = status.to_string();
        check.output = output.to_string();
        self.ensure_check(tx, check);
    }

    fn invalidate_sessions_for_check(&mut self, tx: &mut Tx, node: &str, check_id: &str) {
        let ids: Vec<String> = self
            .data
            .sessions
            .values()
            .filter(|s| s.node == node && s.check_ids().any(|c| c == check_id))
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.invalidate_session(tx, &id);
        }
    }

    /// Keeps the "Connect Sidecar Aliasing" checks of sidecars in line with their
    /// parent's checks.
    fn refresh_alias_checks(&mut self, tx: &mut Tx, node: &str, parent_id: &str) {
        let sidecar_id = format!("{parent_id}-sidecar-proxy");
        let is_sidecar = self
            .data
            .services
            .get(node)
            .and_then(|m| m.get(&sidecar_id))
            .is_some_and(|s| s.sidecar_of.as_deref() == Some(parent_id));
        if !is_sidecar {
            return;
        }
        let aliases: Vec<Check> = self
            .checks_of(node, &sidecar_id)
            .filter(|c| c.check_type == "alias")
            .cloned()
            .collect();
        if aliases.is_empty() {
            return;
        }
        let (status, output) = self.aggregate_status(node, parent_id);
        for mut c in aliases {
            c.status = status.to_string();
            c.output = output.clone();
            self.ensure_check(tx, c);
        }
    }

    /// Worst status among a service's checks and the node's checks.
    fn aggregate_status(&self, node: &str, service_id: &str) -> (&'static str, String) {
        let mut worst = CheckStatus::Passing;
        for c in self
            .checks_of(node, "")
            .chain(self.checks_of(node, service_id))
        {
            match CheckStatus::parse(&c.status) {
                Some(CheckStatus::Critical) => worst = CheckStatus::Critical,
                Some(CheckStatus::Warning) if worst == CheckStatus::Passing => {
                    worst = CheckStatus::Warning
                }
                _ => {}
            }
        }
        let output = if worst == CheckStatus::Passing {
            "All checks passing.".to_string()
        } else {
            format!("Aliased service {service_id:?} has a check that is not passing")
        };
        (worst.as_str(), output)
    }

    /// Removes one check.
    pub(crate) fn delete_check(&mut self, tx: &mut Tx, node: &str, check_id: &str) {
        let Some(check) = self
            .data
            .checks
            .get_mut(node)
            .and_then(|m| m.remove(check_id))
        else {
            return;
        };
        self.index_check(&check, false);
        let idx = tx.index();
        self.data.indexes.checks = idx;
        let node_level = check.service_id.is_empty();
        let services = if node_level {
            self.services_on_node(node)
        } else {
            vec![check.service_name.clone()]
        };
        for s in &services {
            self.bump_service(tx, s);
        }
        tx.changed(Change::Catalog {
            services,
            node_level,
        });
        self.invalidate_sessions_for_check(tx, node, check_id);
    }

    /// Removes one service instance and its checks.
    pub(crate) fn delete_service(&mut self, tx: &mut Tx, node: &str, id: &str) {
        let Some(svc) = self.data.services.get_mut(node).and_then(|m| m.remove(id)) else {
            return;
        };
        self.index_service(&svc, false);
        let check_ids: Vec<String> = self
            .checks_of(node, id)
            .map(|c| c.check_id.clone())
            .collect();
        for c in check_ids {
            self.delete_check(tx, node, &c);
        }
        let idx = tx.index();
        self.data.indexes.services = idx;
        self.bump_service(tx, &svc.service);
        tx.changed(Change::Catalog {
            services: vec![svc.service],
            node_level: false,
        });
    }

    /// Removes a node with everything on it and invalidates its sessions.
    pub(crate) fn delete_node(&mut self, tx: &mut Tx, node: &str) {
        if !self.data.nodes.contains_key(node) {
            return;
        }
        let ids: Vec<String> = self
            .data
            .services
            .get(node)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.delete_service(tx, node, &id);
        }
        let checks: Vec<String> = self
            .data
            .checks
            .get(node)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for c in checks {
            self.delete_check(tx, node, &c);
        }
        self.data.services.remove(node);
        self.data.checks.remove(node);
        self.data.nodes.remove(node);
        let idx = tx.index();
        self.data.indexes.nodes = idx;
        tx.changed(Change::Catalog {
            services: Vec::new(),
            node_level: true,
        });
        let sessions: Vec<String> = self
            .data
            .sessions
            .values()
            .filter(|s| s.node == node)
            .map(|s| s.id.clone())
            .collect();
        for s in sessions {
            self.invalidate_session(tx, &s);
        }
    }

    /// Registers a service through the agent: the instance, its checks, and the
    /// sidecar derived from `Connect.SidecarService`.
    pub(crate) fn register_agent_service(
        &mut self,
        tx: &mut Tx,
        node: &str,
        defs: AgentDefs,
        state: &ConsulState,
    ) {
        let mut svc = defs.svc;
        svc.node = node.to_string();
        svc.local = true;
        // The agent merges the central protocol into proxy registrations.
        if svc.kind == "connect-proxy" {
            let dest = svc
                .proxy
                .get("DestinationServiceName")
                .and_then(Value::as_str)
                .map(str::to_string);
            let has_protocol = svc
                .proxy
                .get("Config")
                .and_then(|c| c.get("protocol"))
                .is_some();
            if let Some(p) = dest
                .filter(|_| !has_protocol)
                .and_then(|d| super::config_entry::protocol_hint(self, &d))
            {
                let config = svc
                    .proxy
                    .entry("Config")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(c) = config {
                    c.insert("protocol".into(), p.into());
                }
            }
        }
        svc.tagged_addresses = service_tagged(&svc.address, svc.port);
        let parent_id = svc.id.clone();
        let parent_name = svc.service.clone();
        let parent_port = svc.port;
        let parent_address = svc.address.clone();
        let parent_tags = svc.tags.clone();
        let parent_meta = svc.meta.clone();
        // Checks the previous registration had but this one does not are removed.
        let wanted: Vec<Check> = agent_checks(node, &svc, &defs.checks);
        let stale: Vec<String> = self
            .checks_of(node, &parent_id)
            .filter(|c| !wanted.iter().any(|w| w.check_id == c.check_id))
            .map(|c| c.check_id.clone())
            .collect();
        self.ensure_service(tx, svc);
        for c in stale {
            self.delete_check(tx, node, &c);
        }
        for c in wanted {
            self.ensure_check(tx, c);
        }
        let sidecar_id = format!("{parent_id}-sidecar-proxy");
        match defs.sidecar {
            None => {
                let managed = self
                    .data
                    .services
                    .get(node)
                    .and_then(|m| m.get(&sidecar_id))
                    .is_some_and(|s| s.sidecar_of.as_deref() == Some(parent_id.as_str()));
                if managed {
                    self.delete_service(tx, node, &sidecar_id);
                }
            }
            Some(sc) => {
                let port = if sc.port != 0 {
                    u64::from(sc.port)
                } else {
                    self.free_sidecar_port(node, &sidecar_id)
                };
                let mut config = sc.config.clone();
                if !config.contains_key("protocol")
                    && let Some(p) = super::config_entry::protocol_hint(self, &parent_name)
                {
                    config.insert("protocol".into(), p.into());
                }
                let proxy = ProxyRegistration {
                    destination_service_name: parent_name.clone(),
                    destination_service_id: parent_id.clone(),
                    local_service_address: "127.0.0.1".into(),
                    local_service_port: u16::try_from(parent_port).unwrap_or(0),
                    upstreams: sc.upstreams.clone(),
                    config,
                };
                let mut proxy_map = proxy_json(&proxy);
                proxy_map.insert("Mode".into(), "".into());
                let sidecar = ServiceInst {
                    node: node.to_string(),
                    kind: "connect-proxy".into(),
                    id: sidecar_id.clone(),
                    service: format!("{parent_name}-sidecar-proxy"),
                    tags: sc.tags.clone().unwrap_or(parent_tags),
                    address: parent_address.clone(),
                    tagged_addresses: service_tagged(&parent_address, port),
                    meta: parent_meta,
                    port,
                    weights: (1, 1),
                    enable_tag_override: false,
                    proxy: proxy_map,
                    connect: Map::new(),
                    sidecar_of: Some(parent_id.clone()),
                    local: true,
                    create_index: 0,
                    modify_index: 0,
                };
                let tags = sidecar.tags.clone();
                self.ensure_service(tx, sidecar);
                if !sc.disable_default_checks {
                    let (status, output) = self.aggregate_status(node, &parent_id);
                    let listening = Check {
                        node: node.to_string(),
                        check_id: format!("service:{sidecar_id}:1"),
                        name: "Connect Sidecar Listening".into(),
                        status: self
                            .existing_status(node, &format!("service:{sidecar_id}:1"))
                            .unwrap_or_else(|| "critical".into()),
                        notes: String::new(),
                        output: String::new(),
                        service_id: sidecar_id.clone(),
                        service_name: format!("{parent_name}-sidecar-proxy"),
                        check_type: "tcp".into(),
                        interval: String::new(),
                        timeout: String::new(),
                        create_index: 0,
                        modify_index: 0,
                    };
                    let alias = Check {
                        check_id: format!("service:{sidecar_id}:2"),
                        name: format!("Connect Sidecar Aliasing {parent_id}"),
                        status: status.to_string(),
                        output,
                        check_type: "alias".into(),
                        interval: String::new(),
                        ..listening.clone()
                    };
                    let _ = tags;
                    self.ensure_check(tx, listening);
                    self.ensure_check(tx, alias);
                }
                let _ = state;
            }
        }
    }

    fn existing_status(&self, node: &str, check_id: &str) -> Option<String> {
        self.data
            .checks
            .get(node)
            .and_then(|m| m.get(check_id))
            .map(|c| c.status.clone())
    }

    fn free_sidecar_port(&self, node: &str, sidecar_id: &str) -> u64 {
        let services = self.data.services.get(node);
        if let Some(existing) = services.and_then(|m| m.get(sidecar_id)) {
            return existing.port;
        }
        let used = self.proxy_ports.get(node);
        (21000..=21255)
            .find(|p| used.is_none_or(|u| !u.contains_key(p)))
            .unwrap_or(21000)
    }

    /// Deregisters an agent service with its checks and managed sidecar.
    pub(crate) fn deregister_agent_service(&mut self, tx: &mut Tx, node: &str, id: &str) {
        let sidecar_id = format!("{id}-sidecar-proxy");
        let sidecars: Vec<String> = self
            .data
            .services
            .get(node)
            .and_then(|m| m.get(&sidecar_id))
            .filter(|s| s.sidecar_of.as_deref() == Some(id))
            .map(|s| vec![s.id.clone()])
            .unwrap_or_default();
        self.delete_service(tx, node, id);
        for s in sidecars {
            self.delete_service(tx, node, &s);
        }
    }

    /// Index for reads about one service: its own index while instances exist, the
    /// catalog tables' otherwise.
    pub(crate) fn service_index(&self, name: &str) -> u64 {
        let exists = self.svc_by_name.get(name).is_some_and(|s| !s.is_empty());
        let t = &self.data.indexes;
        if exists {
            self.data
                .service_indexes
                .get(name)
                .copied()
                .unwrap_or(t.services)
        } else {
            t.nodes.max(t.services).max(t.checks)
        }
        .max(1)
    }

    fn instances_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ServiceInst> {
        self.svc_by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(move |(node, id)| self.data.services.get(node).and_then(|m| m.get(id)))
    }
}

/// The checks an agent registration creates (IDs `service:<id>` or `service:<id>:<n>`).
fn agent_checks(node: &str, svc: &ServiceInst, defs: &[CheckRegistration]) -> Vec<Check> {
    let many = defs.len() > 1;
    defs.iter()
        .enumerate()
        .map(|(i, d)| Check {
            node: node.to_string(),
            check_id: if !d.id.is_empty() {
                d.id.clone()
            } else if many {
                format!("service:{}:{}", svc.id, i + 1)
            } else {
                format!("service:{}", svc.id)
            },
            name: if d.name.is_empty() {
                format!("Service '{}' check", svc.service)
            } else {
                d.name.clone()
            },
            status: d.status.as_str().to_string(),
            notes: d.notes.clone(),
            output: d.output.clone(),
            service_id: svc.id.clone(),
            service_name: svc.service.clone(),
            check_type: d.check_type.clone(),
            interval: d.interval.clone(),
            timeout: d.timeout.clone(),
            create_index: 0,
            modify_index: 0,
        })
        .collect()
}

// ----- JSON forms ------------------------------------------------------------------

pub(crate) fn node_json(n: &Node) -> Value {
    json!({
        "ID": n.id,
        "Node": n.name,
        "Address": n.address,
        "Datacenter": n.datacenter,
        "TaggedAddresses": n.tagged_addresses,
        "Meta": n.meta,
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

fn proxy_out(s: &ServiceInst) -> Value {
    let mut m = Map::new();
    for k in [
        "DestinationServiceName",
        "DestinationServiceID",
        "LocalServiceAddress",
        "LocalServicePort",
    ] {
        if let Some(v) = s.proxy.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert(
        "Mode".into(),
        s.proxy.get("Mode").cloned().unwrap_or_else(|| "".into()),
    );
    for k in ["Config", "Upstreams"] {
        if let Some(v) = s.proxy.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("MeshGateway".into(), json!({}));
    m.insert("Expose".into(), json!({}));
    Value::Object(m)
}

/// The `NodeService` form (health `Service`).
pub(crate) fn service_json(s: &ServiceInst) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), s.kind.clone().into());
    }
    m.insert("ID".into(), s.id.clone().into());
    m.insert("Service".into(), s.service.clone().into());
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Address".into(), s.address.clone().into());
    if let Some(t) = &s.tagged_addresses {
        m.insert("TaggedAddresses".into(), Value::Object(t.clone()));
    }
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), s.port.into());
    m.insert(
        "Weights".into(),
        json!({"Passing": s.weights.0, "Warning": s.weights.1}),
    );
    m.insert("EnableTagOverride".into(), s.enable_tag_override.into());
    m.insert("Proxy".into(), proxy_out(s));
    m.insert("Connect".into(), Value::Object(s.connect.clone()));
    m.insert("CreateIndex".into(), s.create_index.into());
    m.insert("ModifyIndex".into(), s.modify_index.into());
    Value::Object(m)
}

pub(crate) fn check_json(c: &Check, service_tags: &[String]) -> Value {
    json!({
        "Node": c.node,
        "CheckID": c.check_id,
        "Name": c.name,
        "Status": c.status,
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "ServiceTags": service_tags,
        "Type": c.check_type,
        "Interval": c.interval,
        "Timeout": c.timeout,
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

fn catalog_service_json(n: &Node, s: &ServiceInst) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), n.id.clone().into());
    m.insert("Node".into(), n.name.clone().into());
    m.insert("Address".into(), n.address.clone().into());
    m.insert("Datacenter".into(), n.datacenter.clone().into());
    m.insert("TaggedAddresses".into(), json!(n.tagged_addresses));
    m.insert("NodeMeta".into(), json!(n.meta));
    m.insert("ServiceKind".into(), s.kind.clone().into());
    m.insert("ServiceID".into(), s.id.clone().into());
    m.insert("ServiceName".into(), s.service.clone().into());
    m.insert("ServiceTags".into(), json!(s.tags));
    m.insert("ServiceAddress".into(), s.address.clone().into());
    if let Some(t) = &s.tagged_addresses {
        m.insert("ServiceTaggedAddresses".into(), Value::Object(t.clone()));
    }
    m.insert(
        "ServiceWeights".into(),
        json!({"Passing": s.weights.0, "Warning": s.weights.1}),
    );
    m.insert("ServiceMeta".into(), json!(s.meta));
    m.insert("ServicePort".into(), s.port.into());
    m.insert("ServiceSocketPath".into(), "".into());
    m.insert(
        "ServiceEnableTagOverride".into(),
        s.enable_tag_override.into(),
    );
    m.insert("ServiceProxy".into(), proxy_out(s));
    m.insert("ServiceConnect".into(), Value::Object(s.connect.clone()));
    m.insert("CreateIndex".into(), s.create_index.into());
    m.insert("ModifyIndex".into(), s.modify_index.into());
    Value::Object(m)
}

fn agent_service_json(s: &ServiceInst, dc: &str) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), s.kind.clone().into());
    }
    m.insert("ID".into(), s.id.clone().into());
    m.insert("Service".into(), s.service.clone().into());
    m.insert("Tags".into(), json!(s.tags));
    m.insert("Meta".into(), json!(s.meta));
    m.insert("Port".into(), s.port.into());
    m.insert("Address".into(), s.address.clone().into());
    if let Some(t) = &s.tagged_addresses {
        m.insert("TaggedAddresses".into(), Value::Object(t.clone()));
    }
    m.insert(
        "Weights".into(),
        json!({"Passing": s.weights.0, "Warning": s.weights.1}),
    );
    m.insert("EnableTagOverride".into(), s.enable_tag_override.into());
    if s.kind == "connect-proxy" {
        m.insert("Proxy".into(), proxy_out(s));
    }
    m.insert("Datacenter".into(), dc.into());
    Value::Object(m)
}

// ----- JSON request decoding (Go's case-insensitive field matching) ------------------

/// Looks a field up the way Go's `encoding/json` does: exact, then case-insensitive.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case(name) || k.replace('_', "").eq_ignore_ascii_case(name)
            })
            .map(|(_, v)| v)
    })
}

pub(crate) fn field_str(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .{name} of type string",
            json_kind(other)
        )),
    }
}

fn field_u64(obj: &Map<String, Value>, name: &str) -> Result<u64, String> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            format!("json: cannot unmarshal number {n} into Go struct field .{name} of type int")
        }),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .{name} of type int",
            json_kind(other)
        )),
    }
}

fn field_strings(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "json: cannot unmarshal {} into Go struct field .{name} of type string",
                    json_kind(other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .{name} of type []string",
            json_kind(other)
        )),
    }
}

fn field_meta(obj: &Map<String, Value>, name: &str) -> Result<BTreeMap<String, String>, String> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!(
                    "json: cannot unmarshal {} into Go struct field .{name} of type string",
                    json_kind(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .{name} of type map[string]string",
            json_kind(other)
        )),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_upstreams(obj: &Map<String, Value>) -> Result<Vec<UpstreamRegistration>, String> {
    match field(obj, "Upstreams") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|u| {
                let u = u
                    .as_object()
                    .ok_or("json: cannot unmarshal into Upstream")?;
                Ok(UpstreamRegistration {
                    destination_name: field_str(u, "DestinationName")?,
                    local_bind_port: u16::try_from(field_u64(u, "LocalBindPort")?).unwrap_or(0),
                    local_bind_address: field_str(u, "LocalBindAddress")?,
                })
            })
            .collect(),
        Some(_) => Err("json: cannot unmarshal Upstreams".into()),
    }
}

fn check_from_json(c: &Map<String, Value>) -> Result<CheckRegistration, String> {
    let check_type = if !field_str(c, "TTL")?.is_empty() {
        "ttl"
    } else if !field_str(c, "HTTP")?.is_empty() {
        "http"
    } else if !field_str(c, "TCP")?.is_empty() {
        "tcp"
    } else if !field_str(c, "GRPC")?.is_empty() {
        "grpc"
    } else if !field_str(c, "AliasService")?.is_empty() || !field_str(c, "AliasNode")?.is_empty() {
        "alias"
    } else if field(c, "Args").is_some() {
        "script"
    } else {
        ""
    };
    let status = field_str(c, "Status")?;
    let status = if status.is_empty() {
        CheckStatus::Critical
    } else {
        CheckStatus::parse(&status).ok_or_else(|| format!("Invalid check status: {status:?}"))?
    };
    Ok(CheckRegistration {
        id: field_str(c, "CheckID").or_else(|_| field_str(c, "ID"))?,
        name: field_str(c, "Name")?,
        check_type: check_type.to_string(),
        status,
        output: String::new(),
        notes: field_str(c, "Notes")?,
        interval: field_str(c, "Interval").unwrap_or_default(),
        timeout: field_str(c, "Timeout").unwrap_or_default(),
    })
}

/// Parses an `AgentServiceRegistration` body.
fn parse_agent_registration(body: &Value) -> Result<AgentDefs, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("Request decode failed: {e}"));
    let obj = body.as_object().ok_or_else(|| {
        bad("json: cannot unmarshal into Go value of type structs.ServiceDefinition".into())
    })?;
    let name = field_str(obj, "Name").map_err(bad)?;
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    let id = field_str(obj, "ID").map_err(bad)?;
    let kind = field_str(obj, "Kind").map_err(bad)?;
    let mut checks = Vec::new();
    if let Some(Value::Object(c)) = field(obj, "Check") {
        checks.push(check_from_json(c).map_err(bad)?);
    }
    if let Some(Value::Array(list)) = field(obj, "Checks") {
        for c in list {
            if let Value::Object(c) = c {
                checks.push(check_from_json(c).map_err(bad)?);
            }
        }
    }
    let mut proxy = Map::new();
    if let Some(Value::Object(p)) = field(obj, "Proxy") {
        let reg = ProxyRegistration {
            destination_service_name: field_str(p, "DestinationServiceName").map_err(bad)?,
            destination_service_id: field_str(p, "DestinationServiceID").map_err(bad)?,
            local_service_address: field_str(p, "LocalServiceAddress").map_err(bad)?,
            local_service_port: u16::try_from(field_u64(p, "LocalServicePort").map_err(bad)?)
                .unwrap_or(0),
            upstreams: parse_upstreams(p).map_err(bad)?,
            config: field(p, "Config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        };
        proxy = proxy_json(&reg);
    }
    if kind == "connect-proxy"
        && proxy
            .get("DestinationServiceName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(
            "Invalid Service Definition: Proxy.DestinationServiceName must be non-empty for Connect proxy services",
        ));
    }
    let mut sidecar = None;
    if let Some(Value::Object(c)) = field(obj, "Connect")
        && let Some(Value::Object(sc)) = field(c, "SidecarService")
    {
        let sp = field(sc, "Proxy").and_then(Value::as_object);
        sidecar = Some(SidecarRegistration {
            port: u16::try_from(field_u64(sc, "Port").map_err(bad)?).unwrap_or(0),
            upstreams: sp
                .map(parse_upstreams)
                .transpose()
                .map_err(bad)?
                .unwrap_or_default(),
            tags: field_strings(sc, "Tags").map_err(bad)?,
            config: sp
                .and_then(|p| field(p, "Config"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            disable_default_checks: field(sc, "DisableDefaultTCPCheck")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    let weights = match field(obj, "Weights").and_then(Value::as_object) {
        Some(w) => (
            field_u64(w, "Passing").map_err(bad)?.max(1),
            field_u64(w, "Warning").map_err(bad)?.max(1),
        ),
        None => (1, 1),
    };
    Ok(AgentDefs {
        svc: ServiceInst {
            node: String::new(),
            kind,
            id: if id.is_empty() { name.clone() } else { id },
            service: name,
            tags: field_strings(obj, "Tags").map_err(bad)?.unwrap_or_default(),
            address: field_str(obj, "Address").map_err(bad)?,
            tagged_addresses: None,
            meta: field_meta(obj, "Meta").map_err(bad)?,
            port: field_u64(obj, "Port").map_err(bad)?,
            weights,
            enable_tag_override: field(obj, "EnableTagOverride")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            proxy,
            connect: Map::new(),
            sidecar_of: None,
            local: true,
            create_index: 0,
            modify_index: 0,
        },
        checks,
        sidecar,
    })
}

// ----- HTTP handlers ------------------------------------------------------------------

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

/// `PUT /v1/agent/service/register`.
pub(crate) fn agent_register(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    let authz = web::authz(state, req)?;
    let defs = parse_agent_registration(&parse_body(body)?)?;
    authz.check(Res::Service, Access::Write, &defs.svc.service)?;
    if let Some(dest) = defs
        .svc
        .proxy
        .get("DestinationServiceName")
        .and_then(Value::as_str)
    {
        authz.check(Res::Service, Access::Write, dest)?;
    }
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    let node = state.cfg.node_name.clone();
    store.register_agent_service(&mut tx, &node, defs, state);
    store.commit(&state.clock, tx);
    Ok(web::empty_ok(state))
}

/// `PUT /v1/agent/service/deregister/<id>`.
pub(crate) fn agent_deregister(state: &ConsulState, req: &Req, id: &str) -> ApiResult {
    let authz = web::authz(state, req)?;
    let mut store = state.store.lock();
    let node = state.cfg.node_name.clone();
    let Some(svc) = store
        .data
        .services
        .get(&node)
        .and_then(|m| m.get(id))
        .cloned()
    else {
        return Err(ApiError::new(
            404,
            format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
        ));
    };
    authz.check(Res::Service, Access::Write, &svc.service)?;
    let mut tx = store.begin(&state.clock);
    store.deregister_agent_service(&mut tx, &node, id);
    store.commit(&state.clock, tx);
    Ok(web::empty_ok(state))
}

/// `GET /v1/agent/services`.
pub(crate) fn agent_services(state: &ConsulState, req: &Req) -> ApiResult {
    let authz = web::authz(state, req)?;
    let store = state.store.lock();
    let mut out = Map::new();
    let mut filtered = false;
    for s in store
        .data
        .services
        .get(&state.cfg.node_name)
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|s| s.local)
    {
        if !authz.allows(Res::Service, Access::Read, &s.service) {
            filtered = true;
            continue;
        }
        out.insert(s.id.clone(), agent_service_json(s, &state.cfg.datacenter));
    }
    drop(store);
    let mut resp = web::json(state, req, &Value::Object(out));
    if filtered {
        resp.headers_mut().insert(
            "x-consul-results-filtered-by-acls",
            ::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// `GET /v1/agent/self`.
pub(crate) fn agent_self(state: &ConsulState, req: &Req) -> ApiResult {
    let authz = web::authz(state, req)?;
    authz.check(Res::Agent, Access::Read, &state.cfg.node_name)?;
    let store = state.store.lock();
    let node_id = store
        .data
        .nodes
        .get(&state.cfg.node_name)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    drop(store);
    let c = &state.cfg;
    let body = json!({
        "Config": {
            "Datacenter": c.datacenter,
            "PrimaryDatacenter": c.datacenter,
            "NodeName": c.node_name,
            "NodeID": node_id,
            "Partition": "",
            "Revision": "simulated",
            "Server": true,
            "Version": c.version,
            "BuildDate": "2025-01-01T00:00:00Z",
        },
        "DebugConfig": {
            "Datacenter": c.datacenter,
            "NodeName": c.node_name,
            "ACLsEnabled": state.acl.enabled(),
            "ACLResolverSettings": {"ACLDefaultPolicy": state.acl.default_policy()},
            "KVMaxValueSize": c.kv_max_value_size,
            "TxnMaxReqLen": c.txn_max_req_len,
            "SessionTTLMin": crate::blocking::format_go_duration(c.session_ttl_min),
            "ConnectEnabled": true,
        },
        "Coord": {"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
        "Member": {
            "Name": c.node_name,
            "Addr": c.node_address,
            "Port": 8301,
            "Tags": {
                "acls": if state.acl.enabled() { "1" } else { "0" },
                "build": format!("{}:simulated", c.version),
                "dc": c.datacenter,
                "id": node_id,
                "port": "8300",
                "raft_vsn": "3",
                "role": "consul",
                "segment": "",
                "vsn": "2",
                "vsn_max": "3",
                "vsn_min": "2",
            },
            "Status": 1,
            "ProtocolMin": 1,
            "ProtocolMax": 5,
            "ProtocolCur": 2,
            "DelegateMin": 2,
            "DelegateMax": 5,
            "DelegateCur": 4,
        },
        "Stats": {
            "agent": {"check_monitors": "0", "check_ttls": "0", "checks": "0", "services": "0"},
            "consul": {"leader": web::known_leader(state).to_string(), "server": "true", "known_datacenters": "1"},
        },
        "Meta": {"consul-network-segment": "", "consul-version": c.version},
        "xDS": {"SupportedProxies": {"envoy": ["1.33.0", "1.32.3", "1.31.5", "1.30.9"]}, "Port": 8502, "Ports": {"Plaintext": 8502, "TLS": -1}},
    });
    Ok(web::json(state, req, &body))
}

/// `PUT /v1/catalog/register`.
pub(crate) fn catalog_register(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    let value = parse_body(body)?;
    let bad = |e: String| ApiError::bad_request(format!("Request decode failed: {e}"));
    let obj = value
        .as_object()
        .ok_or_else(|| bad("json: cannot unmarshal into structs.RegisterRequest".into()))?;
    let node_name = field_str(obj, "Node").map_err(bad)?;
    let address = field_str(obj, "Address").map_err(bad)?;
    if node_name.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    if address.is_empty() && field(obj, "SkipNodeUpdate").and_then(Value::as_bool) != Some(true) {
        return Err(ApiError::bad_request(
            "Must provide address if SkipNodeUpdate is not set",
        ));
    }
    authz.check(Res::Node, Access::Write, &node_name)?;
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    let skip_node = field(obj, "SkipNodeUpdate").and_then(Value::as_bool) == Some(true)
        && store.data.nodes.contains_key(&node_name);
    if !skip_node {
        let mut node = state.new_node(&node_name, &address);
        node.id = field_str(obj, "ID").map_err(bad)?;
        if let Some(Value::Object(t)) = field(obj, "TaggedAddresses") {
            node.tagged_addresses = t
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect();
        }
        let meta = field_meta(obj, "NodeMeta").map_err(bad)?;
        if !meta.is_empty() {
            node.meta = meta;
        }
        store.ensure_node(&mut tx, node);
    }
    if let Some(Value::Object(s)) = field(obj, "Service") {
        let mut s = s.clone();
        if field(&s, "Name").is_none()
            && let Some(n) = field(&s, "Service").cloned()
        {
            s.insert("Name".into(), n);
        }
        let defs = parse_agent_registration(&Value::Object(s))?;
        if let Err(e) = authz.check(Res::Service, Access::Write, &defs.svc.service) {
            store.rollback(tx);
            return Err(e.into());
        }
        let mut svc = defs.svc;
        svc.node = node_name.clone();
        svc.local = false;
        store.ensure_service(&mut tx, svc);
    }
    let mut checks = Vec::new();
    if let Some(Value::Object(c)) = field(obj, "Check") {
        checks.push(c.clone());
    }
    if let Some(Value::Array(list)) = field(obj, "Checks") {
        checks.extend(list.iter().filter_map(|c| c.as_object().cloned()));
    }
    for c in checks {
        let id = field_str(&c, "CheckID").map_err(bad)?;
        let service_id = field_str(&c, "ServiceID").map_err(bad)?;
        let service_name = store
            .data
            .services
            .get(&node_name)
            .and_then(|m| m.get(&service_id))
            .map(|s| s.service.clone())
            .unwrap_or_default();
        let status = field_str(&c, "Status").map_err(bad)?;
        store.ensure_check(
            &mut tx,
            Check {
                node: node_name.clone(),
                check_id: if id.is_empty() {
                    field_str(&c, "Name").map_err(bad)?
                } else {
                    id
                },
                name: field_str(&c, "Name").map_err(bad)?,
                status: if status.is_empty() {
                    "critical".into()
                } else {
                    status
                },
                notes: field_str(&c, "Notes").map_err(bad)?,
                output: field_str(&c, "Output").map_err(bad)?,
                service_id,
                service_name,
                check_type: field_str(&c, "Type").unwrap_or_default(),
                interval: String::new(),
                timeout: String::new(),
                create_index: 0,
                modify_index: 0,
            },
        );
    }
    store.commit(&state.clock, tx);
    Ok(web::json(state, req, &Value::Bool(true)))
}

/// `PUT /v1/catalog/deregister`.
pub(crate) fn catalog_deregister(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    let value = parse_body(body)?;
    let bad = |e: String| ApiError::bad_request(format!("Request decode failed: {e}"));
    let obj = value
        .as_object()
        .ok_or_else(|| bad("json: cannot unmarshal into structs.DeregisterRequest".into()))?;
    let node = field_str(obj, "Node").map_err(bad)?;
    if node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    authz.check(Res::Node, Access::Write, &node)?;
    let service_id = field_str(obj, "ServiceID").map_err(bad)?;
    let check_id = field_str(obj, "CheckID").map_err(bad)?;
    let mut store = state.store.lock();
    let mut tx = store.begin(&state.clock);
    if !service_id.is_empty() {
        store.delete_service(&mut tx, &node, &service_id);
    } else if !check_id.is_empty() {
        store.delete_check(&mut tx, &node, &check_id);
    } else {
        store.delete_node(&mut tx, &node);
    }
    store.commit(&state.clock, tx);
    Ok(web::json(state, req, &Value::Bool(true)))
}

/// `GET /v1/catalog/services`.
pub(crate) async fn catalog_services(state: &ConsulState, req: &Req) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(state, &opts, &Watch::Catalog, |s| s.data.indexes.services).await;
    let store = state.store.lock();
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut filtered = false;
    for s in store.data.services.values().flat_map(|m| m.values()) {
        if !authz.allows(Res::Service, Access::Read, &s.service) {
            filtered = true;
            continue;
        }
        names
            .entry(s.service.clone())
            .or_default()
            .extend(s.tags.iter().cloned());
    }
    let body: Map<String, Value> = names
        .into_iter()
        .map(|(k, v)| (k, json!(v.into_iter().collect::<Vec<_>>())))
        .collect();
    let meta = Meta {
        index: store.data.indexes.services.max(1),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Object(body), &meta))
}

fn consistency(opts: &web::ReadOpts) -> &'static str {
    if opts.stale {
        "stale"
    } else if opts.consistent {
        "consistent"
    } else {
        "leader"
    }
}

/// `GET /v1/catalog/nodes`.
pub(crate) async fn catalog_nodes(state: &ConsulState, req: &Req) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(state, &opts, &Watch::Nodes, |s| s.data.indexes.nodes).await;
    let store = state.store.lock();
    let mut filtered = false;
    let nodes: Vec<Value> = store
        .data
        .nodes
        .values()
        .filter(|n| {
            let ok = authz.allows(Res::Node, Access::Read, &n.name);
            filtered |= !ok;
            ok
        })
        .map(node_json)
        .collect();
    let meta = Meta {
        index: store.data.indexes.nodes.max(1),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(nodes), &meta))
}

/// `GET /v1/catalog/node/<name>`: the node and its services. An unknown node is
/// `200 null` (Consul's `NodeServices` is nil), still with the index headers, so a
/// watch can wait for the node to appear.
pub(crate) async fn catalog_node(state: &ConsulState, req: &Req, name: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    let index = |s: &Store| s.data.indexes.nodes.max(s.data.indexes.services);
    web::block(state, &opts, &Watch::Catalog, index).await;
    let store = state.store.lock();
    let mut filtered = false;
    let body = match store.data.nodes.get(name) {
        Some(n) if authz.allows(Res::Node, Access::Read, &n.name) => {
            let mut services = Map::new();
            for sv in store
                .data
                .services
                .get(name)
                .into_iter()
                .flat_map(|m| m.values())
            {
                if authz.allows(Res::Service, Access::Read, &sv.service) {
                    services.insert(sv.id.clone(), service_json(sv));
                } else {
                    filtered = true;
                }
            }
            json!({"Node": node_json(n), "Services": services})
        }
        Some(_) => {
            filtered = true;
            Value::Null
        }
        None => Value::Null,
    };
    let meta = Meta {
        index: index(&store).max(1),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &body, &meta))
}

/// `GET /v1/catalog/service/<name>`.
pub(crate) async fn catalog_service(state: &ConsulState, req: &Req, name: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(state, &opts, &Watch::Service(name.to_string()), |s| {
        s.service_index(name)
    })
    .await;
    let store = state.store.lock();
    let tags = req.all("tag");
    let mut out = Vec::new();
    let mut filtered = false;
    if authz.allows(Res::Service, Access::Read, name) {
        for s in store.instances_named(name) {
            if !tags.iter().all(|t| s.tags.iter().any(|x| x == t)) {
                continue;
            }
            let Some(n) = store.data.nodes.get(&s.node) else {
                continue;
            };
            if !authz.allows(Res::Node, Access::Read, &n.name) {
                filtered = true;
                continue;
            }
            out.push(catalog_service_json(n, s));
        }
    } else {
        filtered = true;
    }
    let meta = Meta {
        index: store.service_index(name),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(out), &meta))
}

fn health_entry(store: &Store, s: &ServiceInst) -> Option<(Value, bool)> {
    let n = store.data.nodes.get(&s.node)?;
    // Node-level checks first, then the service's own (as Consul assembles them).
    let checks: Vec<&Check> = store
        .checks_of(&s.node, "")
        .chain(store.checks_of(&s.node, &s.id))
        .collect();
    let passing = checks.iter().all(|c| c.status == "passing");
    let checks_json: Vec<Value> = checks
        .iter()
        .map(|c| {
            let tags: &[String] = if c.service_id.is_empty() {
                &[]
            } else {
                &s.tags
            };
            check_json(c, tags)
        })
        .collect();
    Some((
        json!({"Node": node_json(n), "Service": service_json(s), "Checks": checks_json}),
        passing,
    ))
}

/// `GET /v1/health/service/<name>` and `/v1/health/connect/<name>`.
pub(crate) async fn health_service(
    state: &ConsulState,
    req: &Req,
    name: &str,
    connect: bool,
) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    let watch = if connect {
        Watch::Catalog
    } else {
        Watch::Service(name.to_string())
    };
    let index_of = |s: &Store| -> u64 {
        if connect {
            let names: BTreeSet<String> = connect_instances(s, name)
                .map(|i| i.service.clone())
                .collect();
            if names.is_empty() {
                s.service_index(name)
            } else {
                names.iter().map(|n| s.service_index(n)).max().unwrap_or(1)
            }
        } else {
            s.service_index(name)
        }
    };
    web::block(state, &opts, &watch, index_of).await;
    let passing_only =
        req.has("passing") && !matches!(req.get("passing"), Some("false") | Some("0"));
    let tags = req.all("tag");
    let store = state.store.lock();
    let mut out = Vec::new();
    let mut filtered = false;
    if authz.allows(Res::Service, Access::Read, name) {
        let instances: Vec<&ServiceInst> = if connect {
            connect_instances(&store, name).collect()
        } else {
            store.instances_named(name).collect()
        };
        for s in instances {
            if !tags.iter().all(|t| s.tags.iter().any(|x| x == t)) {
                continue;
            }
            if !authz.allows(Res::Node, Access::Read, &s.node) {
                filtered = true;
                continue;
            }
            if let Some((entry, passing)) = health_entry(&store, s) {
                if passing_only && !passing {
                    continue;
                }
                out.push(entry);
            }
        }
    } else {
        filtered = true;
    }
    let meta = Meta {
        index: index_of(&store),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(out), &meta))
}

fn connect_instances<'a>(store: &'a Store, name: &'a str) -> impl Iterator<Item = &'a ServiceInst> {
    let lookup =
        move |(node, id): &(String, String)| store.data.services.get(node).and_then(|m| m.get(id));
    let proxies = store
        .proxies_by_dest
        .get(name)
        .into_iter()
        .flatten()
        .filter_map(lookup);
    let native = store
        .svc_by_name
        .get(name)
        .into_iter()
        .flatten()
        .filter_map(lookup)
        .filter(|s| s.connect.get("Native").and_then(Value::as_bool) == Some(true));
    proxies.chain(native)
}

/// `GET /v1/health/checks/<service>`.
pub(crate) async fn health_checks(state: &ConsulState, req: &Req, name: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(state, &opts, &Watch::Service(name.to_string()), |s| {
        s.service_index(name)
    })
    .await;
    let store = state.store.lock();
    let mut out = Vec::new();
    let mut filtered = false;
    if authz.allows(Res::Service, Access::Read, name) {
        for s in store.instances_named(name) {
            for c in store.checks_of(&s.node, &s.id) {
                out.push(check_json(c, &s.tags));
            }
        }
    } else {
        filtered = true;
    }
    let meta = Meta {
        index: store.service_index(name),
        filtered,
        consistency: Some(consistency(&opts)),
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(out), &meta))
}

/// `GET /v1/status/leader`: `"127.0.0.1:8300"`, or `""` without a leader.
pub(crate) fn status_leader(state: &ConsulState, req: &Req) -> ApiResult {
    let leader = if web::known_leader(state) {
        format!("{}:8300", state.cfg.node_address)
    } else {
        String::new()
    };
    Ok(web::json(state, req, &Value::String(leader)))
}

/// `GET /v1/status/peers`.
pub(crate) fn status_peers(state: &ConsulState, req: &Req) -> ApiResult {
    Ok(web::json(
        state,
        req,
        &json!([format!("{}:8300", state.cfg.node_address)]),
    ))
}

/// `GET /v1/catalog/datacenters`.
pub(crate) fn catalog_datacenters(state: &ConsulState, req: &Req) -> ApiResult {
    Ok(web::json(state, req, &json!([state.cfg.datacenter])))
}
