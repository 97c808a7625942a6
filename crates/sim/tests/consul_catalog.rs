//! Consul catalog, agent, health and status (reference §5, §9 fixtures).
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};
use steward_sim::consul::{
    CatalogInstance, CheckRegistration, CheckStatus, SidecarRegistration, UpstreamRegistration,
};

async fn start_vm() -> steward_sim::SimHandle {
    start_with(|c| c.consul.node_name = "vm".into()).await
}

/// Drops what legitimately differs between the simulator and the captures (node
/// IDs and indexes), keeping everything else for an exact comparison.
fn comparable(v: &Value) -> Value {
    scrub(v)
}

mod s5_agent_registration_and_health {
    use super::*;

    /// Sidecars registered without a port get the lowest free one from 21000 (found
    /// through an index of the node's proxy ports, not a scan of its services).
    #[tokio::test]
    async fn sidecars_without_a_port_take_the_lowest_free_one() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let register = |id: &str| {
            json!({"ID": id, "Name": "web", "Port": 8080,
                   "Connect": {"SidecarService": {}}})
        };
        let port = |agent: &Value, id: &str| agent[format!("{id}-sidecar-proxy")]["Port"].clone();
        for id in ["web-1", "web-2", "web-3"] {
            let r = c
                .put_json("/v1/agent/service/register", &register(id))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let agent = c.get("/v1/agent/services").await.json();
        assert_eq!(
            [
                port(&agent, "web-1"),
                port(&agent, "web-2"),
                port(&agent, "web-3")
            ],
            [json!(21000), json!(21001), json!(21002)]
        );
        // A re-registration keeps its port; a freed port is taken again.
        c.put_json("/v1/agent/service/register", &register("web-2"))
            .await;
        c.put("/v1/agent/service/deregister/web-1", "").await;
        c.put_json("/v1/agent/service/register", &register("web-4"))
            .await;
        let agent = c.get("/v1/agent/services").await.json();
        assert_eq!(port(&agent, "web-2"), json!(21001));
        assert_eq!(port(&agent, "web-4"), json!(21000));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_connect_registration_shows_in_health_like_the_fixtures() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        c.put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "http"}),
        )
        .await;
        let (r, want) = replay(&c, "agent-service-register-connect").await;
        assert_eq!(r.status, want["status"]);
        assert!(r.body.is_empty());
        for name in [
            "health-service-order-api-agent-registered",
            "health-service-order-api-agent-registered-passing",
            "health-connect-order-api-agent-registered",
        ] {
            let (r, want) = replay(&c, name).await;
            assert_eq!(r.status, 200, "{name}");
            assert_eq!(
                r.header("x-consul-effective-consistency").as_deref(),
                Some("leader")
            );
            assert_shape(&r.json(), &want["body"], name);
            assert_eq!(comparable(&r.json()), comparable(&want["body"]), "{name}");
        }
        let agent = c.get("/v1/agent/services").await.json();
        assert_eq!(agent["order-api-1"]["Service"], "order-api");
        assert_eq!(agent["order-api-1-sidecar-proxy"]["Kind"], "connect-proxy");
        // Deregistering the parent removes its sidecar too.
        let (r, want) = replay(&c, "agent-service-deregister").await;
        assert_eq!(
            (r.status, r.body.is_empty()),
            (want["status"].as_u64().unwrap() as u16, true)
        );
        assert_eq!(
            c.get("/v1/health/connect/order-api").await.json(),
            json!([])
        );
        let (r, want) = replay(&c, "health-service-order-api-passing").await;
        assert_eq!(r.json(), want["body"]);
        let r = c.put("/v1/agent/service/deregister/order-api-1", "").await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.text(),
            "Unknown service ID \"order-api-1\". Ensure that the service ID is passed, not the service name."
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn passing_and_tag_filters() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        for (id, tags, status) in [
            ("a", vec!["blue"], "passing"),
            ("b", vec!["green"], "critical"),
        ] {
            let r = c
                .put_json(
                    "/v1/agent/service/register",
                    &json!({"ID": id, "Name": "web", "Port": 80, "Address": "127.0.0.1", "Tags": tags,
                        "Check": {"TTL": "30s", "Status": status}}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let all = c.get("/v1/health/service/web").await.json();
        assert_eq!(all.as_array().unwrap().len(), 2);
        let passing = c.get("/v1/health/service/web?passing=1").await.json();
        assert_eq!(passing.as_array().unwrap().len(), 1);
        assert_eq!(passing[0]["Service"]["ID"], "a");
        let green = c.get("/v1/health/service/web?tag=green").await.json();
        assert_eq!(green[0]["Service"]["ID"], "b");
        let checks = c.get("/v1/health/checks/web").await.json();
        assert_eq!(checks.as_array().unwrap().len(), 2);
        assert_eq!(checks[0]["CheckID"], "service:a");
        sim.shutdown().await;
    }
}

mod s5_catalog {
    use super::*;

    #[tokio::test]
    async fn services_list_names_with_their_tags() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "catalog-services").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["consul"], want["body"]["consul"]);
        assert_eq!(
            r.header("x-consul-effective-consistency").as_deref(),
            Some("leader")
        );
        c.put_json(
            "/v1/agent/service/register",
            &json!({"ID": "t1", "Name": "ticker", "Tags": ["trading"], "Port": 1}),
        )
        .await;
        c.put_json(
            "/v1/agent/service/register",
            &json!({"ID": "t2", "Name": "ticker", "Tags": ["trading", "b"], "Port": 2}),
        )
        .await;
        let (r, want) = replay(&c, "catalog-services-with-ticker").await;
        assert_eq!(want["body"]["ticker"], json!(["trading"]));
        assert_eq!(r.json()["ticker"], json!(["b", "trading"]));
        let nodes = c.get("/v1/catalog/nodes").await.json();
        assert_eq!(nodes[0]["Node"], "vm");
        let svc = c.get("/v1/catalog/service/ticker").await.json();
        assert_eq!(svc.as_array().unwrap().len(), 2);
        assert_eq!(svc[0]["ServiceName"], "ticker");
        assert_eq!(svc[0]["Node"], "vm");
        assert_eq!(
            c.get("/v1/catalog/datacenters").await.json(),
            json!(["dc1"])
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn catalog_register_and_deregister_nodes_services_and_checks() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .put_json(
                "/v1/catalog/register",
                &json!({"Node": "ext", "Address": "10.0.0.9",
                    "Service": {"ID": "db-1", "Service": "db", "Port": 5432},
                    "Check": {"CheckID": "db-alive", "Name": "alive", "Status": "passing", "ServiceID": "db-1"}}),
            )
            .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let h = c.get("/v1/health/service/db?passing").await.json();
        assert_eq!(h[0]["Node"]["Address"], "10.0.0.9");
        assert_eq!(h[0]["Checks"][0]["CheckID"], "db-alive");
        let r = c
            .put_json("/v1/catalog/register", &json!({"Address": "x"}))
            .await;
        assert_eq!((r.status, r.text().as_str()), (400, "Must provide node"));
        let r = c
            .put_json(
                "/v1/catalog/deregister",
                &json!({"Node": "ext", "ServiceID": "db-1"}),
            )
            .await;
        assert_eq!(r.json(), json!(true));
        assert_eq!(c.get("/v1/health/service/db").await.json(), json!([]));
        c.put_json("/v1/catalog/deregister", &json!({"Node": "ext"}))
            .await;
        let nodes = c.get("/v1/catalog/nodes").await.json();
        assert_eq!(nodes.as_array().unwrap().len(), 1);
        sim.shutdown().await;
    }
}

mod s5_agent_and_status {
    use super::*;

    #[tokio::test]
    async fn agent_self_and_status_endpoints() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let me = c.get("/v1/agent/self").await.json();
        assert_eq!(me["Config"]["Datacenter"], "dc1");
        assert_eq!(me["Config"]["NodeName"], "sim");
        assert_eq!(me["Config"]["Version"], "1.21.4");
        assert_eq!(me["Member"]["Name"], "sim");
        assert_eq!(
            c.get("/v1/status/leader").await.json(),
            json!("127.0.0.1:8300")
        );
        assert_eq!(
            c.get("/v1/status/peers").await.json(),
            json!(["127.0.0.1:8300"])
        );
        sim.shutdown().await;
    }
}

mod s5_catalog_node {
    use super::*;

    #[tokio::test]
    async fn a_missing_node_is_200_null_with_the_index_headers() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let r = c.get("/v1/catalog/node/nowhere").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "null");
        assert!(r.index() >= 1);
        assert_eq!(r.header("x-consul-knownleader").as_deref(), Some("true"));
        assert!(r.header("x-consul-lastcontact").is_some());
        let r = c.get("/v1/catalog/node/vm").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["Node"]["Node"], "vm");
        assert!(r.json()["Services"].is_object(), "{}", r.text());
        sim.shutdown().await;
    }
}

mod internal_registration_api {
    use super::*;

    #[tokio::test]
    async fn nomad_style_registrations_appear_change_health_and_go_away() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        )
        .await;
        let before = c.get("/v1/health/service/web").await.index();
        let idx = sim.consul_register_instance(CatalogInstance {
            id: "_nomad-task-a1-group-web-web-http".into(),
            name: "web".into(),
            address: "127.0.0.1".into(),
            port: 25000,
            tags: vec!["trading".into()],
            meta: [("external-source".to_string(), "nomad".to_string())].into(),
            checks: vec![CheckRegistration {
                id: "_nomad-check-1".into(),
                ..CheckRegistration::new("service: \"web\" check", "http", CheckStatus::Critical)
            }],
            sidecar: Some(SidecarRegistration {
                port: 21000,
                upstreams: vec![UpstreamRegistration {
                    destination_name: "price-feed".into(),
                    local_bind_port: 9001,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(idx > before);
        let h = c.get("/v1/health/service/web").await;
        assert!(h.index() > before);
        assert_eq!(h.json()[0]["Service"]["Meta"]["external-source"], "nomad");
        assert_eq!(
            c.get("/v1/health/service/web?passing").await.json(),
            json!([])
        );
        let proxy = c.get("/v1/health/connect/web").await.json();
        assert_eq!(proxy[0]["Service"]["Kind"], "connect-proxy");
        assert_eq!(proxy[0]["Service"]["Port"], 21000);
        assert_eq!(
            proxy[0]["Service"]["Proxy"]["Config"],
            json!({"protocol": "http"})
        );
        assert_eq!(
            proxy[0]["Service"]["Proxy"]["Upstreams"][0]["DestinationName"],
            "price-feed"
        );
        // The sidecar's alias check follows the parent.
        let alias = |v: &Value| {
            v[0]["Checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["Type"] == "alias")
                .unwrap()["Status"]
                .clone()
        };
        assert_eq!(alias(&proxy), json!("critical"));
        assert!(sim.consul_set_check_status(
            "_nomad-check-1",
            CheckStatus::Passing,
            "HTTP GET: 200 OK"
        ));
        let passing = c.get("/v1/health/service/web?passing").await.json();
        assert_eq!(passing[0]["Checks"][1]["Output"], "HTTP GET: 200 OK");
        assert_eq!(
            alias(&c.get("/v1/health/connect/web").await.json()),
            json!("passing")
        );
        // Re-registering the same instance changes nothing.
        let clock = sim.consul_index();
        assert!(sim.consul_deregister_instance("_nomad-task-a1-group-web-web-http"));
        assert!(sim.consul_index() > clock);
        assert_eq!(c.get("/v1/health/service/web").await.json(), json!([]));
        assert_eq!(c.get("/v1/health/connect/web").await.json(), json!([]));
        assert!(!sim.consul_deregister_instance("_nomad-task-a1-group-web-web-http"));
        sim.shutdown().await;
    }
}
