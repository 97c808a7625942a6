use std::collections::BTreeMap;

use serde_json::json;
use steward_spec::EdgeRoute;

use super::*;

fn routes(value: serde_json::Value) -> Vec<EdgeRoute> {
    serde_json::from_value(value).expect("routes parse")
}

fn spec(key: &str, create_index: u64, service: &str, r: serde_json::Value) -> EdgeSpec {
    EdgeSpec {
        key: key.to_owned(),
        create_index,
        service: service.to_owned(),
        port: 8080,
        routes: routes(r),
    }
}

fn specs(list: Vec<EdgeSpec>) -> BTreeMap<String, EdgeSpec> {
    list.into_iter().map(|s| (s.key.clone(), s)).collect()
}

fn listeners() -> Vec<EdgeListener> {
    vec![EdgeListener {
        name: "edge-http".into(),
        address: "127.0.0.1:10080".parse().expect("addr"),
    }]
}

fn run(
    specs: &BTreeMap<String, EdgeSpec>,
    endpoints: &BTreeMap<String, Vec<Endpoint>>,
    quarantine: &BTreeMap<String, Quarantine>,
) -> Translation {
    translate(Input {
        specs,
        endpoints,
        listeners: &listeners(),
        quarantine,
    })
}

fn ep(address: &str, port: u16) -> Endpoint {
    Endpoint {
        address: address.to_owned(),
        port,
    }
}

#[test]
fn two_specs_with_hosts_paths_rewrite_timeout_and_retries_translate_to_the_golden_plan() {
    let specs = specs(vec![
        spec(
            "shop/web-api",
            10,
            "web-api",
            json!([
                {"host": "shop.example.com", "pathPrefix": "/api/", "rewrite": "/", "timeout": "5s", "retries": 2},
                {"host": "shop.example.com", "pathExact": "/healthz"},
                {"host": "*.shop.example.com"}
            ]),
        ),
        spec(
            "shop/front",
            11,
            "front",
            json!([{"host": "shop.example.com"}, {"host": "shop.example.com", "pathPrefix": "/api/v2/", "retries": 0}]),
        ),
    ]);
    let mut endpoints = BTreeMap::new();
    endpoints.insert(
        "web-api".to_owned(),
        vec![
            ep("10.0.0.2", 8080),
            ep("10.0.0.1", 0),
            ep("10.0.0.1", 8080),
        ],
    );
    let t = run(&specs, &endpoints, &BTreeMap::new());
    insta::assert_yaml_snapshot!("golden_plan", t.plan);
    insta::assert_yaml_snapshot!("golden_verdicts", t.verdicts);
}

#[test]
fn the_older_spec_wins_a_conflict_and_the_loser_names_it() {
    let specs = specs(vec![
        spec(
            "b/new",
            5,
            "new",
            json!([{"host": "a.example.com", "pathPrefix": "/x"}, {"host": "a.example.com", "pathPrefix": "/y"}]),
        ),
        spec(
            "a/old",
            7,
            "old",
            json!([{"host": "a.example.com", "pathPrefix": "/x"}]),
        ),
        spec(
            "c/newest",
            9,
            "newest",
            json!([{"host": "a.example.com", "pathPrefix": "/x"}]),
        ),
    ]);
    let t = run(&specs, &BTreeMap::new(), &BTreeMap::new());
    // b/new has the lowest create index: it keeps /x; both others lose to it.
    assert_eq!(t.verdicts["b/new"].serving.len(), 2);
    assert!(t.verdicts["b/new"].conflicts.is_empty());
    for loser in ["a/old", "c/newest"] {
        let v = &t.verdicts[loser];
        assert!(v.serving.is_empty(), "{loser}");
        assert_eq!(v.conflicts.len(), 1);
        assert_eq!(v.conflicts[0].winner, "b/new");
        assert_eq!(v.conflicts[0].route.path, PathPlan::Prefix("/x".into()));
    }
    let vh = &t.plan.route_config.virtual_hosts[0];
    assert_eq!(vh.routes.len(), 2);
    assert!(vh.routes.iter().all(|r| r.cluster == "new"));
    // Only the winner's service gets a cluster; its endpoints are not known yet, so no
    // load assignment is sent for it.
    assert_eq!(t.services().into_iter().collect::<Vec<_>>(), vec!["new"]);
    assert!(t.plan.load_assignments.is_empty());
}

#[test]
fn equal_create_indexes_are_settled_by_key() {
    let specs = specs(vec![
        spec("z/one", 3, "one", json!([{"host": "a.example.com"}])),
        spec("m/two", 3, "two", json!([{"host": "a.example.com"}])),
    ]);
    let t = run(&specs, &BTreeMap::new(), &BTreeMap::new());
    assert_eq!(t.verdicts["z/one"].conflicts[0].winner, "m/two");
    assert!(t.verdicts["m/two"].all_serving());
}

#[test]
fn the_loser_serves_again_when_the_winner_goes() {
    let mut all = specs(vec![
        spec("a/old", 1, "old", json!([{"host": "a.example.com"}])),
        spec("b/new", 2, "new", json!([{"host": "a.example.com"}])),
    ]);
    let before = run(&all, &BTreeMap::new(), &BTreeMap::new());
    assert!(!before.verdicts["b/new"].all_serving());
    all.remove("a/old");
    let after = run(&all, &BTreeMap::new(), &BTreeMap::new());
    assert!(after.verdicts["b/new"].all_serving());
    assert_ne!(
        before.verdicts["b/new"].digest,
        after.verdicts["b/new"].digest
    );
}

#[test]
fn a_route_envoy_would_refuse_is_rejected_and_the_others_still_serve() {
    let specs = specs(vec![
        spec(
            "a/bad",
            1,
            "bad",
            json!([{"host": "Bad_Host.example.com"}, {"host": "ok.example.com", "pathPrefix": "/ok"}, {"host": "ok.example.com", "pathPrefix": "/has space"}]),
        ),
        spec("b/good", 2, "good", json!([{"host": "good.example.com"}])),
    ]);
    let t = run(&specs, &BTreeMap::new(), &BTreeMap::new());
    let bad = &t.verdicts["a/bad"];
    assert_eq!(bad.rejected.len(), 2);
    assert!(bad.rejected[0].reason.contains("Bad_Host.example.com"));
    assert!(bad.rejected[1].reason.contains("space"));
    assert_eq!(bad.serving.len(), 1);
    assert!(t.verdicts["b/good"].all_serving());
    let hosts: Vec<_> = t
        .plan
        .route_config
        .virtual_hosts
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(hosts, vec!["good.example.com", "ok.example.com"]);
}

#[test]
fn a_quarantined_virtual_host_is_left_out_until_its_content_changes() {
    let mut all = specs(vec![
        spec("a/one", 1, "one", json!([{"host": "a.example.com"}])),
        spec("b/two", 2, "two", json!([{"host": "b.example.com"}])),
    ]);
    let first = run(&all, &BTreeMap::new(), &BTreeMap::new());
    let digest = first.plan.route_config.virtual_hosts[0].digest.clone();
    let mut quarantine = BTreeMap::new();
    quarantine.insert(
        "a.example.com".to_owned(),
        Quarantine {
            digest,
            reason: "Envoy edge-1 refused it: boom".into(),
        },
    );
    let held = run(&all, &BTreeMap::new(), &quarantine);
    assert_eq!(held.plan.route_config.virtual_hosts.len(), 1);
    assert_eq!(
        held.verdicts["a/one"].rejected[0].reason,
        "Envoy edge-1 refused it: boom"
    );
    assert!(held.verdicts["b/two"].all_serving());
    // The spec's service loses its cluster with its last route.
    assert!(!held.services().contains("one"));

    all.insert(
        "a/one".into(),
        spec(
            "a/one",
            1,
            "one",
            json!([{"host": "a.example.com", "pathPrefix": "/v2"}]),
        ),
    );
    let edited = run(&all, &BTreeMap::new(), &quarantine);
    assert_eq!(edited.plan.route_config.virtual_hosts.len(), 2);
    assert!(edited.verdicts["a/one"].all_serving());
}

#[test]
fn endpoints_without_an_ip_or_a_port_are_left_out_and_reported() {
    let mut s = spec("a/one", 1, "one", json!([{"host": "a.example.com"}]));
    s.port = 0;
    let all = specs(vec![s]);
    let mut endpoints = BTreeMap::new();
    endpoints.insert(
        "one".to_owned(),
        vec![
            ep("node-1.dc1.consul", 80),
            ep("10.0.0.9", 0),
            ep("10.0.0.8", 81),
        ],
    );
    let t = run(&all, &endpoints, &BTreeMap::new());
    assert_eq!(
        t.plan.load_assignments[0].endpoints,
        vec!["10.0.0.8:81".parse::<SocketAddr>().expect("addr")]
    );
    let problems = &t.verdicts["a/one"].endpoint_problems;
    assert_eq!(problems.len(), 2);
    assert!(problems[0].contains("node-1.dc1.consul"));
}

#[test]
fn translation_is_deterministic_whatever_the_insertion_order() {
    let a = specs(vec![
        spec(
            "a/one",
            1,
            "one",
            json!([{"host": "x.example.com", "pathPrefix": "/a"}]),
        ),
        spec(
            "b/two",
            2,
            "two",
            json!([{"host": "x.example.com", "pathPrefix": "/ab"}]),
        ),
    ]);
    let mut b = BTreeMap::new();
    for (k, v) in a.iter().rev() {
        b.insert(k.clone(), v.clone());
    }
    assert_eq!(
        run(&a, &BTreeMap::new(), &BTreeMap::new()),
        run(&b, &BTreeMap::new(), &BTreeMap::new())
    );
    let t = run(&a, &BTreeMap::new(), &BTreeMap::new());
    // The longer prefix first, whoever owns it.
    assert_eq!(
        t.plan.route_config.virtual_hosts[0].routes[0].name,
        "b/two#0"
    );
}
