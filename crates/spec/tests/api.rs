//! The crate-root names the renderer and operator use, and the accessors that apply
//! derived defaults.
#![allow(clippy::unwrap_used)]

use steward_spec::{
    AllowFrom, Capability, Check, CheckKind, Driver, Duration, Edge, EdgeRoute, HttpMethod,
    IntentionAction, MAIN_PORT_NAME, Metadata, PathMatch, Protocol, ServiceSpec, Spec, load,
};

fn web(spec: Spec) -> ServiceSpec {
    ServiceSpec::new(Metadata::new("shop", "web"), spec)
}

#[test]
fn accessors_derive_driver_protocol_and_key() {
    let exec = web(Spec {
        command: Some("/bin/web".into()),
        ..Spec::default()
    });
    assert_eq!(exec.driver(), Driver::Exec);
    assert_eq!(exec.driver().as_str(), "exec");
    assert_eq!(exec.key(), "shop/web");
    assert_eq!(exec.effective_protocol(), Protocol::Tcp);
    assert!(!exec.is_batch());

    let l7 = web(Spec {
        image: Some("registry.example/web:1".into()),
        port: Some(8080),
        allow_from: vec![AllowFrom {
            service: "api".into(),
            action: IntentionAction::Allow,
            methods: vec![HttpMethod::Get],
            path_prefix: None,
            path_exact: None,
        }],
        ..Spec::default()
    });
    assert_eq!(l7.driver(), Driver::Docker);
    assert_eq!(l7.effective_protocol(), Protocol::Http);
    assert_eq!(HttpMethod::Get.as_str(), "GET");
    assert_eq!(Capability::Read.as_str(), "read");
    assert_eq!(MAIN_PORT_NAME, "main");
}

#[test]
fn edge_routes_default_to_the_root_prefix_and_checks_know_their_kind() {
    let route = EdgeRoute {
        host: "a.example.com".into(),
        path_prefix: None,
        path_exact: None,
        rewrite: None,
        timeout: None,
        retries: None,
    };
    assert_eq!(route.path_match(), PathMatch::Prefix("/"));
    assert!(
        !Edge {
            routes: vec![route]
        }
        .is_empty()
    );
    let check = Check {
        http: None,
        tcp: Some(true),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
    };
    assert_eq!(check.kind(), Some(CheckKind::Tcp));
    assert_eq!(check.interval.as_nanos(), 10_000_000_000);
}

#[test]
fn a_loaded_spec_serialises_back_to_an_equal_spec() {
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  image: registry.example/web:1\n  check: {http: /health, interval: 90s}\n  port: 80\n";
    let spec = load("a.yaml", text, None).spec.unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains("\"interval\":\"1m30s\""), "{json}");
    assert_eq!(load("b.json", &json, None).spec.unwrap(), spec);
}
