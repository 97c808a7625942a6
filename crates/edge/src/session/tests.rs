use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc::Status;
use serde_json::json;

use super::*;
use crate::translate::{EdgeListener, EdgeSpec, Endpoint, Input, translate};

fn snapshot(generation: u64, prefix: &str, endpoint_port: u16) -> Snapshot {
    let mut specs = BTreeMap::new();
    specs.insert(
        "shop/web".to_owned(),
        EdgeSpec {
            key: "shop/web".into(),
            create_index: 1,
            service: "web".into(),
            port: 8080,
            routes: serde_json::from_value(
                json!([{"host": "shop.example.com", "pathPrefix": prefix}]),
            )
            .expect("routes"),
        },
    );
    let mut endpoints = BTreeMap::new();
    endpoints.insert(
        "web".to_owned(),
        vec![Endpoint {
            address: "127.0.0.1".into(),
            port: endpoint_port,
        }],
    );
    let listeners = [EdgeListener {
        name: "edge-http".into(),
        address: "127.0.0.1:10080".parse().expect("addr"),
    }];
    let t = translate(Input {
        specs: &specs,
        endpoints: &endpoints,
        listeners: &listeners,
        quarantine: &BTreeMap::new(),
    });
    Snapshot::from_plan(&t.plan, generation)
}

fn request(kind: TypeKind, version: &str, nonce: &str, names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.into(),
        node: Some(Node {
            id: "edge-1".into(),
            ..Default::default()
        }),
        resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
        type_url: kind.url().into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

/// Plays Envoy: acks whatever comes, asking for endpoints and routes by name.
fn ack(session: &mut Session, snap: &Snapshot, resp: &DiscoveryResponse) -> Received {
    let kind = TypeKind::from_url(&resp.type_url).expect("known type");
    let names: &[&str] = match kind {
        TypeKind::Endpoint => &["web"],
        TypeKind::Route => &["steward-edge"],
        _ => &[],
    };
    session.receive(&request(kind, &resp.version_info, &resp.nonce, names), snap)
}

#[test]
fn types_go_out_one_at_a_time_in_make_before_break_order() {
    let snap = snapshot(1, "/", 9000);
    let mut s = Session::new();
    // Envoy asks for listeners first, then clusters; clusters still go first.
    s.receive(&request(TypeKind::Listener, "", "", &[]), &snap);
    s.receive(&request(TypeKind::Cluster, "", "", &[]), &snap);
    let (kind, cds) = s.next_response(&snap).expect("cds");
    assert_eq!(kind, TypeKind::Cluster);
    assert!(s.next_response(&snap).is_none(), "one in flight");
    s.receive(&request(TypeKind::Endpoint, "", "", &["web"]), &snap);
    assert!(matches!(ack(&mut s, &snap, &cds), Received::Ack { .. }));
    let (kind, eds) = s.next_response(&snap).expect("eds");
    assert_eq!(kind, TypeKind::Endpoint);
    assert_eq!(eds.resources.len(), 1);
    ack(&mut s, &snap, &eds);
    let (kind, lds) = s.next_response(&snap).expect("lds");
    assert_eq!(kind, TypeKind::Listener);
    ack(&mut s, &snap, &lds);
    s.receive(&request(TypeKind::Route, "", "", &["steward-edge"]), &snap);
    let (kind, rds) = s.next_response(&snap).expect("rds");
    assert_eq!(kind, TypeKind::Route);
    ack(&mut s, &snap, &rds);
    assert!(s.next_response(&snap).is_none(), "nothing changed");
    assert_eq!(s.node_id(), "edge-1");
    assert_eq!(
        s.status(TypeKind::Route).acked_version.as_deref(),
        Some(snap.get(TypeKind::Route).version.as_str())
    );
}

fn converged(snap: &Snapshot) -> Session {
    let mut s = Session::new();
    s.receive(&request(TypeKind::Cluster, "", "", &[]), snap);
    s.receive(&request(TypeKind::Listener, "", "", &[]), snap);
    s.receive(&request(TypeKind::Endpoint, "", "", &["web"]), snap);
    s.receive(&request(TypeKind::Route, "", "", &["steward-edge"]), snap);
    while let Some((_, resp)) = s.next_response(snap) {
        ack(&mut s, snap, &resp);
    }
    s
}

#[test]
fn only_the_type_whose_version_changed_is_pushed() {
    let a = snapshot(1, "/", 9000);
    let mut s = converged(&a);
    let b = snapshot(2, "/", 9001);
    let (kind, resp) = s.next_response(&b).expect("eds push");
    assert_eq!(kind, TypeKind::Endpoint);
    ack(&mut s, &b, &resp);
    assert!(s.next_response(&b).is_none());
    assert_eq!(s.status(TypeKind::Endpoint).acked_generation, 2);
}

#[test]
fn a_stale_nonce_is_ignored() {
    let a = snapshot(1, "/", 9000);
    let mut s = converged(&a);
    let b = snapshot(2, "/v2", 9000);
    let (_, first) = s.next_response(&b).expect("rds push");
    let old_nonce = (first.nonce.parse::<u64>().expect("numeric") - 1).to_string();
    let got = s.receive(
        &request(TypeKind::Route, "x", &old_nonce, &["steward-edge"]),
        &b,
    );
    assert_eq!(got, Received::Stale(TypeKind::Route));
    assert!(
        s.next_response(&b).is_none(),
        "still waiting for the real ack"
    );
    ack(&mut s, &b, &first);
    assert!(s.next_response(&b).is_none());
}

#[test]
fn a_nack_keeps_the_last_good_version_and_is_not_resent() {
    let a = snapshot(1, "/", 9000);
    let mut s = converged(&a);
    let good = s.status(TypeKind::Route).acked_version.clone();
    let b = snapshot(2, "/v2", 9000);
    let (_, resp) = s.next_response(&b).expect("rds push");
    let mut nack = request(
        TypeKind::Route,
        good.as_deref().unwrap_or(""),
        &resp.nonce,
        &["steward-edge"],
    );
    nack.error_detail = Some(Status {
        code: 3,
        message: "bad route".into(),
        ..Default::default()
    });
    let got = s.receive(&nack, &b);
    assert_eq!(
        got,
        Received::Nack {
            kind: TypeKind::Route,
            nack: Nack {
                version: resp.version_info.clone(),
                message: "bad route".into()
            }
        }
    );
    assert_eq!(s.status(TypeKind::Route).acked_version, good);
    assert!(
        s.next_response(&b).is_none(),
        "the refused version is not sent again"
    );
    // A newer snapshot is sent.
    let c = snapshot(3, "/v3", 9000);
    assert!(s.next_response(&c).is_some());
}

#[test]
fn a_reconnect_carrying_the_current_versions_gets_no_push() {
    let a = snapshot(1, "/", 9000);
    let mut s = Session::new();
    for kind in TypeKind::ALL {
        let names: &[&str] = match kind {
            TypeKind::Endpoint => &["web"],
            TypeKind::Route => &["steward-edge"],
            _ => &[],
        };
        let got = s.receive(&request(kind, &a.get(kind).version, "", names), &a);
        assert_eq!(got, Received::Resumed(kind));
    }
    assert!(s.next_response(&a).is_none());
    // An outdated one gets the current version.
    let mut t = Session::new();
    t.receive(&request(TypeKind::Cluster, "old", "", &[]), &a);
    assert!(t.next_response(&a).is_some());
}

#[test]
fn new_endpoint_names_are_answered_even_when_the_version_did_not_change() {
    let a = snapshot(1, "/", 9000);
    let mut s = converged(&a);
    let eds_nonce = s.types[TypeKind::Endpoint.index()]
        .sent
        .as_ref()
        .expect("sent")
        .nonce
        .clone();
    let version = a.get(TypeKind::Endpoint).version.clone();
    s.receive(
        &request(TypeKind::Endpoint, &version, &eds_nonce, &["web", "gone"]),
        &a,
    );
    let (kind, resp) = s.next_response(&a).expect("answer for the new names");
    assert_eq!(kind, TypeKind::Endpoint);
    assert_eq!(resp.resources.len(), 1, "only the names that exist");
    // Envoy stops watching endpoints: nothing to answer (it would not ack it).
    s.receive(&request(TypeKind::Endpoint, &version, &resp.nonce, &[]), &a);
    assert!(s.next_response(&a).is_none());
}

#[test]
fn clusters_that_only_go_away_are_removed_after_the_routes() {
    let a = snapshot(1, "/", 9000);
    let mut s = converged(&a);
    let empty = Snapshot::from_plan(
        &translate(Input {
            specs: &BTreeMap::new(),
            endpoints: &BTreeMap::new(),
            listeners: &[EdgeListener {
                name: "edge-http".into(),
                address: "127.0.0.1:10080".parse().expect("addr"),
            }],
            quarantine: &BTreeMap::new(),
        })
        .plan,
        2,
    );
    let (first, resp) = s.next_response(&empty).expect("a push");
    assert_eq!(first, TypeKind::Endpoint);
    ack(&mut s, &empty, &resp);
    let (second, resp) = s.next_response(&empty).expect("a push");
    assert_eq!(second, TypeKind::Route);
    ack(&mut s, &empty, &resp);
    let (last, _) = s.next_response(&empty).expect("a push");
    assert_eq!(last, TypeKind::Cluster);
}

#[test]
fn node_metadata_names_this_proxys_own_listener() {
    let a = snapshot(1, "/", 9000);
    let mut s = Session::new();
    let mut req = request(TypeKind::Listener, "", "", &[]);
    let mut steward = Struct::default();
    steward.fields.insert(
        LISTEN_METADATA_KEY.into(),
        Value {
            kind: Some(Kind::StringValue("127.0.0.1:10555".into())),
        },
    );
    let mut meta = Struct::default();
    meta.fields.insert(
        "steward".into(),
        Value {
            kind: Some(Kind::StructValue(steward)),
        },
    );
    if let Some(node) = req.node.as_mut() {
        node.metadata = Some(meta);
    }
    s.receive(&req, &a);
    let (_, resp) = s.next_response(&a).expect("lds");
    assert_ne!(resp.version_info, a.get(TypeKind::Listener).version);
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;
    let l = Listener::decode(resp.resources[0].value.as_slice()).expect("listener");
    let text = format!("{:?}", l.address);
    assert!(text.contains("10555"), "{text}");
}
