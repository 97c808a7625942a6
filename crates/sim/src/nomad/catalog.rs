//! How running allocations show up in the simulated Consul catalog.
//!
//! Nomad registers each group/task service of a running allocation with the local
//! Consul agent (reference §5): ID `_nomad-task-<allocID>-group-<group>-<service>-<port
//! label>`, `Meta["external-source"] = "nomad"`, and a `<service>-sidecar-proxy`
//! entry of kind `connect-proxy` for Connect services.

use std::collections::BTreeMap;

/// One health check of a registered service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckInstance {
    /// Check ID (`_nomad-check-<hash>` on a real agent).
    pub(crate) check_id: String,
    /// Check name.
    pub(crate) name: String,
    /// `passing`, `warning` or `critical`.
    pub(crate) status: String,
    /// `http`, `tcp`, `grpc`, `script`, `alias`.
    pub(crate) kind: String,
    /// Check output.
    pub(crate) output: String,
}

/// The upstream of a sidecar proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) destination_name: String,
    pub(crate) local_bind_port: u16,
}

/// The proxy part of a `connect-proxy` registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyInstance {
    pub(crate) destination_service_name: String,
    pub(crate) destination_service_id: String,
    pub(crate) local_service_address: String,
    pub(crate) local_service_port: u16,
    pub(crate) upstreams: Vec<Upstream>,
}

/// One service instance registered by an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceInstance {
    pub(crate) id: String,
    pub(crate) name: String,
    /// `""` or `connect-proxy`.
    pub(crate) kind: String,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) proxy: Option<ProxyInstance>,
    pub(crate) checks: Vec<CheckInstance>,
}

/// The catalog operations an allocation change produces, applied after the Nomad
/// state lock is released.
#[derive(Debug, Clone)]
pub(crate) enum CatalogOp {
    Register(Box<ServiceInstance>),
    Deregister(String),
}

/// Where service registrations go.
pub(crate) trait Catalog: Send + Sync {
    /// Registers (or replaces) one service instance.
    fn register(&self, instance: ServiceInstance);
    /// Removes one service instance and its checks; unknown IDs are ignored.
    fn deregister(&self, service_id: &str);
}

/// Applies catalog operations in order.
pub(crate) fn apply(catalog: &dyn Catalog, ops: Vec<CatalogOp>) {
    for op in ops {
        match op {
            CatalogOp::Register(i) => catalog.register(*i),
            CatalogOp::Deregister(id) => catalog.deregister(&id),
        }
    }
}
