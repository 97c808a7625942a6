//! One ADS stream's state of the world, as a state machine without I/O: what was sent
//! per type (version, nonce, names), what the proxy acked, its last NACK, and which
//! response comes next.
//!
//! Rules (envoy-xds reference): a request whose nonce is not the latest sent for its
//! type is stale and ignored; a NACK keeps the proxy on what it last accepted and the
//! refused version is not sent again; a type is pushed only when its version (or, for
//! routes and endpoints, the set of names asked for) changed; at most one response is
//! in flight per stream and types go out in make-before-break order (clusters,
//! endpoints, listeners, routes), so a route never names a cluster the proxy has not
//! been given first. A new stream whose first request carries the version we would send
//! is taken as already acked (a reconnect resumes without a push).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::value::Kind;
use serde::Serialize;

use crate::resources::{Snapshot, TypeKind, TypeResources, listener_set};
use crate::translate::{ListenerPlan, ROUTE_CONFIG_NAME};

/// Node metadata key (under `steward`) naming the address this proxy's edge listener
/// binds (written by `steward edge envoy-bootstrap --listen`); without it the
/// configured edge listeners are sent.
pub const LISTEN_METADATA_KEY: &str = "listen";

/// What one response carried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    version: String,
    nonce: String,
    names: BTreeSet<String>,
    /// Names of the resources the response held.
    resources: BTreeSet<String>,
    generation: u64,
}

/// A refused response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// The version refused.
    pub version: String,
    /// Envoy's `error_detail` message.
    pub message: String,
}

/// The state of one type on one stream, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeStatus {
    /// Last version sent.
    pub sent_version: Option<String>,
    /// Last version acked.
    pub acked_version: Option<String>,
    /// Snapshot generation of the last acked version.
    pub acked_generation: u64,
    /// Last NACK, if the proxy refused anything on this stream.
    pub last_nack: Option<Nack>,
}

#[derive(Debug, Clone, Default)]
struct TypeState {
    subscribed: bool,
    names: BTreeSet<String>,
    sent: Option<Sent>,
    status: TypeStatus,
}

/// What a request meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// First request of a type on this stream.
    Subscribed(TypeKind),
    /// First request of a type carrying the version we have: nothing to push.
    Resumed(TypeKind),
    /// ACK of the response whose snapshot had this generation.
    Ack {
        /// Type.
        kind: TypeKind,
        /// Snapshot generation acked.
        generation: u64,
    },
    /// NACK.
    Nack {
        /// Type.
        kind: TypeKind,
        /// What was refused and why.
        nack: Nack,
    },
    /// A request for an older response: ignored.
    Stale(TypeKind),
    /// A type this server does not serve.
    UnknownType(String),
}

/// One ADS stream.
#[derive(Debug, Clone, Default)]
pub struct Session {
    node_id: String,
    listeners: Option<Arc<TypeResources>>,
    types: [TypeState; 4],
    nonces: u64,
    in_flight: Option<TypeKind>,
}

impl Session {
    /// A new stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The proxy's node id (empty until its first request).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The state of one type.
    #[must_use]
    pub fn status(&self, kind: TypeKind) -> &TypeStatus {
        &self.types[kind.index()].status
    }

    /// Applies a request; `snap` is the snapshot current now.
    pub fn receive(&mut self, req: &DiscoveryRequest, snap: &Snapshot) -> Received {
        if self.node_id.is_empty()
            && let Some(node) = &req.node
        {
            self.node_id.clone_from(&node.id);
            self.listeners = listen_override(node).map(|addr| {
                Arc::new(listener_set(&[ListenerPlan {
                    name: "edge-http".to_owned(),
                    address: addr,
                    route_config: ROUTE_CONFIG_NAME.to_owned(),
                }]))
            });
        }
        let Some(kind) = TypeKind::from_url(&req.type_url) else {
            return Received::UnknownType(req.type_url.clone());
        };
        let names: BTreeSet<String> = if kind.is_wildcard() {
            BTreeSet::new()
        } else {
            req.resource_names
                .iter()
                .filter(|n| n.as_str() != "*")
                .cloned()
                .collect()
        };
        let current = self.current(kind, snap).version.clone();
        let in_flight = self.in_flight;
        let st = &mut self.types[kind.index()];
        let Some(sent) = st.sent.clone() else {
            // Nothing sent on this stream yet: a (re)subscription.
            st.subscribed = true;
            st.names = names.clone();
            if !req.version_info.is_empty() && req.version_info == current {
                st.sent = Some(Sent {
                    version: current.clone(),
                    nonce: String::new(),
                    names,
                    resources: BTreeSet::new(),
                    generation: snap.generation,
                });
                st.status.sent_version = Some(current.clone());
                st.status.acked_version = Some(current);
                st.status.acked_generation = snap.generation;
                return Received::Resumed(kind);
            }
            return Received::Subscribed(kind);
        };
        if req.response_nonce != sent.nonce {
            return Received::Stale(kind);
        }
        if in_flight == Some(kind) {
            self.in_flight = None;
        }
        let st = &mut self.types[kind.index()];
        st.subscribed = true;
        st.names = names;
        if let Some(status) = &req.error_detail {
            let nack = Nack {
                version: sent.version,
                message: status.message.clone(),
            };
            st.status.last_nack = Some(nack.clone());
            return Received::Nack { kind, nack };
        }
        st.status.acked_version = Some(req.version_info.clone());
        st.status.acked_generation = sent.generation;
        Received::Ack {
            kind,
            generation: sent.generation,
        }
    }

    /// Notes a new snapshot: a type whose acked content is unchanged in it counts as
    /// acked at its generation.
    pub fn observe(&mut self, snap: &Snapshot) {
        for kind in TypeKind::ALL {
            let version = self.current(kind, snap).version.clone();
            let st = &mut self.types[kind.index()];
            if st.status.acked_version.as_deref() == Some(version.as_str()) {
                st.status.acked_generation = st.status.acked_generation.max(snap.generation);
            }
        }
    }

    /// The next response to send, if any (at most one in flight).
    pub fn next_response(&mut self, snap: &Snapshot) -> Option<(TypeKind, DiscoveryResponse)> {
        if self.in_flight.is_some() {
            return None;
        }
        // Clusters that only go away go last, after the routes that named them.
        let cds = snap.get(TypeKind::Cluster);
        let removal_only = self.types[TypeKind::Cluster.index()]
            .sent
            .as_ref()
            .is_some_and(|sent| {
                sent.version != cds.version
                    && cds.resources.keys().all(|n| sent.resources.contains(n))
            });
        let order = if removal_only {
            [
                TypeKind::Endpoint,
                TypeKind::Listener,
                TypeKind::Route,
                TypeKind::Cluster,
            ]
        } else {
            TypeKind::ALL
        };
        for kind in order {
            let current = Arc::clone(self.current(kind, snap));
            let st = &mut self.types[kind.index()];
            if !st.subscribed {
                continue;
            }
            // A named type nobody asks for any more: nothing to answer (Envoy drops
            // responses for types it no longer watches, and would never ack one).
            if !kind.is_wildcard() && st.names.is_empty() {
                if let Some(sent) = &mut st.sent {
                    sent.names.clear();
                }
                continue;
            }
            let due = match &st.sent {
                None => true,
                Some(sent) => {
                    sent.version != current.version
                        || (!kind.is_wildcard() && sent.names != st.names)
                }
            };
            if !due {
                continue;
            }
            let (sent_names, resources): (BTreeSet<String>, Vec<_>) = if kind.is_wildcard() {
                (
                    current.resources.keys().cloned().collect(),
                    current.resources.values().cloned().collect(),
                )
            } else {
                st.names
                    .iter()
                    .filter_map(|n| current.resources.get(n).map(|r| (n.clone(), r.clone())))
                    .unzip()
            };
            self.nonces += 1;
            let nonce = self.nonces.to_string();
            let names = st.names.clone();
            let st = &mut self.types[kind.index()];
            st.sent = Some(Sent {
                version: current.version.clone(),
                nonce: nonce.clone(),
                names,
                resources: sent_names,
                generation: snap.generation,
            });
            st.status.sent_version = Some(current.version.clone());
            self.in_flight = Some(kind);
            return Some((
                kind,
                DiscoveryResponse {
                    version_info: current.version.clone(),
                    resources,
                    type_url: kind.url().to_owned(),
                    nonce,
                    ..Default::default()
                },
            ));
        }
        None
    }

    fn current<'a>(&'a self, kind: TypeKind, snap: &'a Snapshot) -> &'a Arc<TypeResources> {
        match (&self.listeners, kind) {
            (Some(own), TypeKind::Listener) => own,
            _ => snap.get(kind),
        }
    }
}

/// The `steward.listen` node metadata, when it is an address.
fn listen_override(node: &Node) -> Option<SocketAddr> {
    let steward = node.metadata.as_ref()?.fields.get("steward")?;
    let Some(Kind::StructValue(s)) = &steward.kind else {
        return None;
    };
    match &s.fields.get(LISTEN_METADATA_KEY)?.kind {
        Some(Kind::StringValue(v)) => v.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
