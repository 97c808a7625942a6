//! Consul config entries (reference §4, §8.4, §8.5, §8.8–§8.10, §9 "Consul config entries").
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn put_entry(c: &Consul, body: Value) -> Resp {
    c.put_json("/v1/config", &body).await
}

async fn http_defaults(c: &Consul, name: &str) {
    let r = put_entry(
        c,
        json!({"Kind": "service-defaults", "Name": name, "Protocol": "http"}),
    )
    .await;
    assert_eq!(r.json(), json!(true), "{}", r.text());
}

mod s4_1_endpoints {
    use super::*;

    #[tokio::test]
    async fn service_defaults_round_trip_like_the_fixtures() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "config-put-service-defaults-order-api").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        assert_eq!(r.content_type().as_deref(), Some("application/json"));
        let (r, want) = replay(&c, "config-get-service-defaults-order-api").await;
        assert_eq!(r.status, 200);
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        assert_shape(&r.json(), &want["body"], "");
        let entry = r.json();
        assert_eq!(entry["CreateIndex"], entry["ModifyIndex"]);
        assert_eq!(r.index(), entry["ModifyIndex"].as_u64().unwrap());
        let (r, want) = replay(&c, "config-list-service-defaults").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_missing_entry_is_404_text_with_the_index_headers_and_an_empty_kind_lists_as_empty() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "config-get-missing").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), want["body"].as_str().unwrap());
        assert_eq!(
            r.content_type().as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert!(r.index() >= 1);
        assert!(r.header("x-consul-knownleader").is_some());
        let r = c.get("/v1/config/service-router").await;
        assert_eq!((r.status, r.json()), (200, json!([])));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn delete_answers_empty_object_even_for_missing_entries_and_cas_answers_bools() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c.delete("/v1/config/service-defaults/nothing").await;
        assert_eq!((r.status, r.json()), (200, json!({})));
        http_defaults(&c, "web").await;
        let idx = c.get("/v1/config/service-defaults/web").await.json()["ModifyIndex"]
            .as_u64()
            .unwrap();
        assert_eq!(
            c.delete("/v1/config/service-defaults/web?cas=0")
                .await
                .json(),
            json!(false)
        );
        assert_eq!(
            c.delete(&format!("/v1/config/service-defaults/web?cas={}", idx + 1))
                .await
                .json(),
            json!(false)
        );
        assert_eq!(
            c.delete(&format!("/v1/config/service-defaults/web?cas={idx}"))
                .await
                .json(),
            json!(true)
        );
        assert_eq!(c.get("/v1/config/service-defaults/web").await.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn cas_upserts_answer_false_when_stale_and_identical_upserts_answer_true_without_a_write()
    {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "order-api").await;
        let (r, want) = replay(&c, "config-put-service-defaults-cas-stale").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        let r = c
            .put_json(
                "/v1/config?cas=0",
                &json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "grpc"}),
            )
            .await;
        assert_eq!(r.json(), json!(false));
        let r = c
            .put_json(
                "/v1/config?cas=99",
                &json!({"Kind": "service-defaults", "Name": "new-one"}),
            )
            .await;
        assert_eq!(r.json(), json!(false));
        let r = c
            .put_json(
                "/v1/config?cas=0",
                &json!({"Kind": "service-defaults", "Name": "new-one"}),
            )
            .await;
        assert_eq!(r.json(), json!(true));
        // Identical (after normalisation) answers true even with a wrong cas, and no
        // index moves.
        let before = c.get("/v1/config/service-defaults/order-api").await.json();
        let clock = sim.consul_index();
        let r = c.put_json("/v1/config?cas=1", &json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "HTTP", "Meta": {}})).await;
        assert_eq!(r.json(), json!(true));
        let r = c
            .put_json(
                "/v1/config",
                &json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "http"}),
            )
            .await;
        assert_eq!(r.json(), json!(true));
        assert_eq!(sim.consul_index(), clock);
        assert_eq!(
            c.get("/v1/config/service-defaults/order-api").await.json(),
            before
        );
        let idx = before["ModifyIndex"].as_u64().unwrap();
        let r = c
            .put_json(
                &format!("/v1/config?cas={idx}"),
                &json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "grpc"}),
            )
            .await;
        assert_eq!(r.json(), json!(true));
        assert!(
            c.get("/v1/config/service-defaults/order-api").await.json()["ModifyIndex"]
                .as_u64()
                .unwrap()
                > idx
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn misspelt_fields_and_unknown_kinds_are_refused() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "web", "Protocl": "http"}),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            "Bad request: Request decoding failed: 1 error occurred:\n\t* invalid config key \"Protocl\"\n\n"
        );
        let r = put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "web",
            "Sources": [{"Name": "a", "Actoin": "allow"}], "Namespace": "x"}),
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("2 errors occurred"), "{}", r.text());
        assert!(r.text().contains(
            "invalid config key \"Namespace\", namespaces are a consul enterprise feature"
        ));
        assert!(
            r.text()
                .contains("invalid config key \"Sources[0].Actoin\"")
        );
        let r = put_entry(&c, json!({"Kind": "service-defaultz", "Name": "web"})).await;
        assert_eq!(r.status, 400);
        assert!(
            r.text()
                .ends_with("invalid config entry kind: service-defaultz")
        );
        let r = put_entry(&c, json!({"Name": "web"})).await;
        assert_eq!(r.status, 400);
        let r = c.get("/v1/config/service-defaultz/web").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "invalid config entry kind: service-defaultz")
        );
        let r = c.get("/v1/config/service-defaultz").await;
        assert_eq!(r.status, 500);
        // Field names match case-insensitively and snake_case is accepted.
        let r = put_entry(
            &c,
            json!({"kind": "service-defaults", "name": "web", "protocol": "http",
            "mesh_gateway": {"mode": "local"}}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let e = c.get("/v1/config/service-defaults/web").await.json();
        assert_eq!(e["MeshGateway"], json!({"Mode": "local"}));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn empty_meta_is_dropped_and_proxy_defaults_must_be_global() {
        let sim = start().await;
        let c = Consul::new(&sim);
        put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "web", "Meta": {}}),
        )
        .await;
        let e = c.get("/v1/config/service-defaults/web").await.json();
        assert!(e.get("Meta").is_none());
        assert_eq!(e["Protocol"], "");
        let r = put_entry(&c, json!({"Kind": "proxy-defaults", "Name": "other"})).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (
                500,
                "invalid name (\"other\"), only \"global\" is supported"
            )
        );
        let r = put_entry(
            &c,
            json!({"Kind": "proxy-defaults", "Config": {"protocol": "http"}}),
        )
        .await;
        assert_eq!(r.json(), json!(true));
        let e = c.get("/v1/config/proxy-defaults/global").await.json();
        assert_eq!(e["Name"], "global");
        assert_eq!(e["Config"], json!({"protocol": "http"}));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_blocking_get_wakes_when_its_entry_changes() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "web").await;
        let r = c.get("/v1/config/service-defaults/web").await;
        let idx = r.index();
        let c2 = c.clone();
        let h = tokio::spawn(async move {
            c2.get(&format!(
                "/v1/config/service-defaults/web?index={idx}&wait=10s"
            ))
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        http_defaults(&c, "other").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!h.is_finished(), "woke on another entry");
        put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"}),
        )
        .await;
        let r = bounded(5, h).await.unwrap();
        assert_eq!(r.json()["Protocol"], "grpc");
        assert!(r.index() > idx);
        sim.shutdown().await;
    }
}

mod s4_3_service_intentions {
    use super::*;

    #[tokio::test]
    async fn sources_get_type_and_precedence_and_are_sorted_like_the_fixture() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "order-api").await;
        let (r, want) = replay(&c, "config-put-service-intentions-order-api").await;
        assert_eq!(
            (r.status, r.json()),
            (200, want["body"].clone()),
            "{}",
            r.text()
        );
        let (r, want) = replay(&c, "config-get-service-intentions-order-api").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        let (r, want) = replay(&c, "config-list-service-intentions").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        let (r, want) = replay(&c, "connect-intentions-list").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        // Re-writing the same sources in another order is a change (order is kept
        // within a precedence), but the same body again is not.
        let clock = sim.consul_index();
        let (_req, _) = fixture("config-put-service-intentions-order-api");
        let (r, _) = replay(&c, "config-put-service-intentions-order-api").await;
        assert_eq!(r.json(), json!(true));
        assert_eq!(sim.consul_index(), clock);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_put_replaces_every_source_of_the_destination() {
        let sim = start().await;
        let c = Consul::new(&sim);
        put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "api",
            "Sources": [{"Name": "web", "Action": "allow"}, {"Name": "admin", "Action": "allow"}]}),
        )
        .await;
        put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "api",
            "Sources": [{"Name": "batch", "Action": "allow"}]}),
        )
        .await;
        let e = c.get("/v1/config/service-intentions/api").await.json();
        let names: Vec<&str> = e["Sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["batch"]);
        // Read-modify-write with cas protects sources written by others.
        let idx = e["ModifyIndex"].as_u64().unwrap();
        put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "api",
            "Sources": [{"Name": "batch", "Action": "allow"}, {"Name": "ops", "Action": "allow"}]}),
        )
        .await;
        let r = c
            .put_json(
                &format!("/v1/config?cas={idx}"),
                &json!({"Kind": "service-intentions", "Name": "api",
            "Sources": [{"Name": "batch", "Action": "deny"}]}),
            )
            .await;
        assert_eq!(r.json(), json!(false));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn wildcard_destinations_use_the_lower_precedences_and_methods_are_upper_cased() {
        let sim = start().await;
        let c = Consul::new(&sim);
        put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "*",
            "Sources": [{"Name": "*", "Action": "deny"}, {"Name": "web", "Action": "allow"}]}),
        )
        .await;
        let e = c.get("/v1/config/service-intentions/*").await.json();
        assert_eq!(e["Sources"][0]["Name"], "web");
        assert_eq!(e["Sources"][0]["Precedence"], 6);
        assert_eq!(e["Sources"][1]["Precedence"], 5);
        http_defaults(&c, "api").await;
        put_entry(&c, json!({"Kind": "service-intentions", "Name": "api",
            "Sources": [{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/v1", "Methods": ["get", "post"]}}]}]})).await;
        let e = c.get("/v1/config/service-intentions/api").await.json();
        assert_eq!(
            e["Sources"][0]["Permissions"][0]["HTTP"]["Methods"],
            json!(["GET", "POST"])
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn invalid_sources_are_500_with_consuls_messages() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "api").await;
        let cases = [
            (
                json!([{"Name": "web"}]),
                "Sources[0].Action must be set to 'allow' or 'deny'",
            ),
            (
                json!([{"Name": "web", "Action": "permit"}]),
                "Sources[0].Action must be set to 'allow' or 'deny'",
            ),
            (
                json!([{"Name": "web", "Action": "allow", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]),
                "Sources[0].Action must be omitted if Permissions are specified",
            ),
            (
                json!([{"Name": "web", "Permissions": [{"Action": "allow"}]}]),
                "Sources[0].Permissions[0].HTTP is required",
            ),
            (
                json!([{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "v1"}}]}]),
                "Sources[0].Permissions[0].HTTP.PathPrefix doesn't start with '/': \"v1\"",
            ),
            (
                json!([{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "/a", "PathPrefix": "/b"}}]}]),
                "Sources[0].Permissions[0].HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex",
            ),
            (
                json!([{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"Methods": ["FETCH"]}}]}]),
                "Sources[0].Permissions[0].HTTP.Methods contains an invalid method \"FETCH\"",
            ),
            (
                json!([{"Name": "web", "Action": "allow"}, {"Name": "web", "Action": "deny"}]),
                "Sources[1] defines \"web\" more than once",
            ),
            (
                json!([{"Name": "we*b", "Action": "allow"}]),
                "Sources[0].Name: wildcard character '*' cannot be used with partial values",
            ),
            (json!([]), "At least one source is required"),
        ];
        for (sources, msg) in cases {
            let r = put_entry(
                &c,
                json!({"Kind": "service-intentions", "Name": "api", "Sources": sources}),
            )
            .await;
            assert_eq!((r.status, r.text()), (500, msg.to_string()), "{sources}");
        }
        sim.shutdown().await;
    }
}

mod s4_7_graph_validation {
    use super::*;

    #[tokio::test]
    async fn l7_intentions_need_an_http_protocol() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "config-put-service-intentions-l7-on-tcp-error").await;
        assert_eq!(r.status, 500);
        assert_eq!(r.text(), want["body"].as_str().unwrap());
        // proxy-defaults' protocol counts too.
        put_entry(
            &c,
            json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}),
        )
        .await;
        let (r, _) = replay(&c, "config-put-service-intentions-l7-on-tcp-error").await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        // ...and it cannot be taken away while they exist.
        let r = put_entry(
            &c,
            json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "tcp"}}),
        )
        .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "service \"price-feed\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
        );
        let r = c.delete("/v1/config/proxy-defaults/global").await;
        assert_eq!(r.status, 500);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn routers_need_http_and_their_service_defaults_cannot_go_away() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, _) = replay(&c, "config-put-service-router-order-api").await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "discovery chain \"order-api\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior"
        );
        http_defaults(&c, "order-api").await;
        let (r, want) = replay(&c, "config-put-service-router-order-api").await;
        assert_eq!(r.json(), want["body"]);
        let (r, want) = replay(&c, "config-get-service-router-order-api").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        // Deleting or downgrading the protocol the router needs fails.
        let r = c.delete("/v1/config/service-defaults/order-api").await;
        assert_eq!(r.status, 500);
        assert!(
            r.text()
                .starts_with("discovery chain \"order-api\" uses a protocol \"tcp\"")
        );
        let r = put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "tcp"}),
        )
        .await;
        assert_eq!(r.status, 500);
        // Reverse order works.
        let (r, want) = replay(&c, "config-delete-service-router-order-api").await;
        assert_eq!(r.json(), want["body"]);
        let (r, want) = replay(&c, "config-get-service-router-after-delete").await;
        assert_eq!(
            (r.status, r.text()),
            (404, want["body"].as_str().unwrap().to_string())
        );
        let r = c.delete("/v1/config/service-defaults/order-api").await;
        assert_eq!((r.status, r.json()), (200, json!({})));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn downgrading_a_service_with_l7_intentions_fails() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "order-api").await;
        let (r, _) = replay(&c, "config-put-service-intentions-order-api").await;
        assert_eq!(r.json(), json!(true));
        let r = put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "tcp"}),
        )
        .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "service \"order-api\" has protocol \"tcp\", which is incompatible with L7 intentions permissions"
        );
        let (r, want) = replay(&c, "config-delete-service-intentions-order-api").await;
        assert_eq!(r.json(), want["body"]);
        let r = put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "tcp"}),
        )
        .await;
        assert_eq!(r.json(), json!(true));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn http_ingress_listeners_need_http_services() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, _) = replay(&c, "config-put-ingress-gateway-edge").await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "service \"order-api\" has protocol \"tcp\", which does not match defined listener protocol \"http\""
        );
        http_defaults(&c, "order-api").await;
        let (r, want) = replay(&c, "config-put-ingress-gateway-edge").await;
        assert_eq!(r.json(), want["body"]);
        let (r, want) = replay(&c, "config-get-ingress-gateway-edge").await;
        assert_eq!(scrub(&r.json()), scrub(&want["body"]));
        let r = put_entry(
            &c,
            json!({"Kind": "service-defaults", "Name": "order-api", "Protocol": "tcp"}),
        )
        .await;
        assert_eq!(r.status, 500);
        // Gateways of different kinds cannot share a name.
        let r = put_entry(
            &c,
            json!({"Kind": "api-gateway", "Name": "edge-gateway",
            "Listeners": [{"Name": "l", "Port": 8443, "Protocol": "http"}]}),
        )
        .await;
        assert_eq!(r.status, 500);
        assert!(r.text().starts_with(
            "cannot create a \"api-gateway\" config entry with name \"edge-gateway\""
        ));
        sim.shutdown().await;
    }
}

mod s8_9_protocol_dependencies_survive_deletes {
    use super::*;

    /// Deletes `service-defaults/<name>` and asserts Consul's 500 and that the entry
    /// is still there, still `http`.
    async fn delete_is_refused(c: &Consul, name: &str, want: &str) {
        let r = c
            .delete(&format!("/v1/config/service-defaults/{name}"))
            .await;
        assert_eq!((r.status, r.text()), (500, want.to_string()));
        let r = c.get(&format!("/v1/config/service-defaults/{name}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["Protocol"], "http");
    }

    #[tokio::test]
    async fn a_router_or_splitter_keeps_the_protocol_it_needs() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let advanced = |svc: &str| {
            format!(
                "discovery chain {svc:?} uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior"
            )
        };
        http_defaults(&c, "order-api").await;
        let r = put_entry(
            &c,
            json!({"Kind": "service-router", "Name": "order-api", "Routes": [
                {"Match": {"HTTP": {"PathPrefix": "/v2"}}, "Destination": {"Service": "order-api"}}]}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        delete_is_refused(&c, "order-api", &advanced("order-api")).await;

        http_defaults(&c, "price-feed").await;
        let r = put_entry(
            &c,
            json!({"Kind": "service-splitter", "Name": "price-feed",
                   "Splits": [{"Weight": 100}]}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        delete_is_refused(&c, "price-feed", &advanced("price-feed")).await;
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_resolver_keeps_the_protocol_of_the_services_it_redirects_to() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "web").await;
        http_defaults(&c, "web-v2").await;
        let r = put_entry(
            &c,
            json!({"Kind": "service-resolver", "Name": "web",
                   "Redirect": {"Service": "web-v2"}}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        // compile.go's recordProtocol: every service the chain reaches shares one.
        delete_is_refused(
            &c,
            "web-v2",
            "discovery chain \"web\" uses inconsistent protocols; service \"web-v2\" has \"tcp\" which is not \"http\"",
        )
        .await;
        // Without the resolver the delete goes through.
        let r = c.delete("/v1/config/service-resolver/web").await;
        assert_eq!(r.status, 200);
        let r = c.delete("/v1/config/service-defaults/web-v2").await;
        assert_eq!((r.status, r.json()), (200, json!({})));
        sim.shutdown().await;
    }
}

mod s8_5_the_config_index_is_table_wide {
    use super::*;

    #[tokio::test]
    async fn a_write_of_one_kind_moves_the_index_of_every_kinds_list() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "order-api").await;
        let r = put_entry(
            &c,
            json!({"Kind": "service-intentions", "Name": "order-api",
                   "Sources": [{"Name": "web", "Action": "allow"}]}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let before = c.get("/v1/config/service-intentions").await;
        let routes_before = c.get("/v1/config/service-router").await.index();
        http_defaults(&c, "price-feed").await;
        let after = c.get("/v1/config/service-intentions").await;
        assert!(
            after.index() > before.index(),
            "{} !> {}",
            after.index(),
            before.index()
        );
        assert_eq!(after.json(), before.json());
        assert!(c.get("/v1/config/service-router").await.index() > routes_before);
        // A watch of another kind held at the old index gets the new one, with the
        // same entries, when it returns.
        let r = bounded(
            5,
            c.get(&format!(
                "/v1/config/service-intentions?index={}&wait=1s",
                before.index()
            )),
        )
        .await;
        assert_eq!(r.index(), after.index());
        assert_eq!(r.json(), before.json());
        sim.shutdown().await;
    }
}

mod s4_6_api_gateway_and_http_route {
    use super::*;

    fn route(name: &str, service: &str) -> Value {
        json!({"Kind": "http-route", "Name": name, "Meta": {"steward.managed-by": "steward"},
            "Parents": [{"Kind": "api-gateway", "Name": "public", "SectionName": "http"}],
            "Hostnames": ["web.example.com"],
            "Rules": [{"Matches": [{"Path": {"Match": "prefix", "Value": "/"}, "Headers": [], "Method": "", "Query": []}],
                       "Filters": {"URLRewrite": {"Path": "/"}, "Headers": [{"Set": {"x-from": "edge"}}]},
                       "Services": [{"Name": service, "Weight": 1}]}]})
    }

    fn gateway() -> Value {
        json!({"Kind": "api-gateway", "Name": "public",
            "Listeners": [{"Name": "http", "Port": 8443, "Protocol": "HTTP", "Hostname": "*.example.com"}]})
    }

    fn condition<'a>(e: &'a Value, ty: &str) -> &'a Value {
        e["Status"]["Conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} condition in {e}"))
    }

    #[tokio::test]
    async fn the_controller_writes_status_on_gateways_and_routes() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "web").await;
        let r = put_entry(&c, route("trading-web", "web")).await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let e = c.get("/v1/config/http-route/trading-web").await.json();
        assert_eq!(condition(&e, "Accepted")["Status"], "True");
        let bound = condition(&e, "Bound");
        assert_eq!(
            (bound["Status"].clone(), bound["Reason"].clone()),
            (json!("False"), json!("GatewayNotFound"))
        );
        assert_eq!(
            bound["Resource"],
            json!({"Kind": "api-gateway", "Name": "public", "SectionName": "http"})
        );
        let before = e["ModifyIndex"].as_u64().unwrap();

        let r = put_entry(&c, gateway()).await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let gw = c.get("/v1/config/api-gateway/public").await.json();
        assert_eq!(gw["Listeners"][0]["Protocol"], "http");
        let acc = condition(&gw, "Accepted");
        assert_eq!(
            (acc["Status"].clone(), acc["Message"].clone()),
            (json!("True"), json!("gateway is valid"))
        );
        assert_eq!(condition(&gw, "Conflicted")["Reason"], "NoConflict");
        assert!(acc["LastTransitionTime"].as_str().unwrap().ends_with('Z'));

        // The route is now bound, which the controller records with a new index.
        let e = c.get("/v1/config/http-route/trading-web").await.json();
        let bound = condition(&e, "Bound");
        assert_eq!(
            (bound["Status"].clone(), bound["Message"].clone()),
            (json!("True"), json!("successfully bound route"))
        );
        assert!(e["ModifyIndex"].as_u64().unwrap() > before);
        // Normalised matches and user fields are kept.
        assert_eq!(e["Rules"][0]["Services"][0]["Weight"], 1);
        assert_eq!(e["Meta"], json!({"steward.managed-by": "steward"}));

        // An identical upsert (without Status) changes nothing.
        let clock = sim.consul_index();
        let r = put_entry(&c, route("trading-web", "web")).await;
        assert_eq!(r.json(), json!(true));
        assert_eq!(sim.consul_index(), clock);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn routes_to_non_http_services_or_without_services_are_not_accepted() {
        let sim = start().await;
        let c = Consul::new(&sim);
        put_entry(&c, gateway()).await;
        let r = put_entry(&c, route("r1", "tcp-svc")).await;
        assert_eq!(r.json(), json!(true));
        let e = c.get("/v1/config/http-route/r1").await.json();
        let acc = condition(&e, "Accepted");
        assert_eq!(acc["Reason"], "InvalidDiscoveryChain");
        assert_eq!(
            acc["Message"],
            "route protocol does not match targeted service protocol"
        );
        // Giving the service an http protocol fixes the route's status.
        http_defaults(&c, "tcp-svc").await;
        let e = c.get("/v1/config/http-route/r1").await.json();
        assert_eq!(condition(&e, "Accepted")["Status"], "True");
        assert_eq!(condition(&e, "Bound")["Status"], "True");
        let mut empty = route("r2", "x");
        empty["Rules"][0]["Services"] = json!([]);
        put_entry(&c, empty).await;
        let e = c.get("/v1/config/http-route/r2").await.json();
        assert_eq!(
            condition(&e, "Accepted")["Reason"],
            "NoUpstreamServicesTargeted"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn route_defaults_and_validation() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "web").await;
        let r = put_entry(
            &c,
            json!({"Kind": "http-route", "Name": "d",
            "Parents": [{"Name": "public"}],
            "Rules": [{"Matches": [{"Method": "get"}], "Services": [{"Name": "web"}]}]}),
        )
        .await;
        assert_eq!(r.json(), json!(true), "{}", r.text());
        let e = c.get("/v1/config/http-route/d").await.json();
        assert_eq!(e["Parents"][0]["Kind"], "api-gateway");
        assert_eq!(e["Rules"][0]["Matches"][0]["Method"], "GET");
        assert_eq!(
            e["Rules"][0]["Matches"][0]["Path"],
            json!({"Match": "prefix", "Value": "/"})
        );
        assert_eq!(e["Rules"][0]["Services"][0]["Weight"], 1);
        let r = put_entry(
            &c,
            json!({"Kind": "http-route", "Name": "bad", "Hostnames": ["*.example.com"]}),
        )
        .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "host \"*.example.com\" must not be a wildcard")
        );
        let r = put_entry(
            &c,
            json!({"Kind": "http-route", "Name": "bad",
            "Rules": [{"Matches": [{"Path": {"Match": "prefix", "Value": "api"}}]}]}),
        )
        .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "Rule[0], Match[0], Path, prefix type match doesn't start with '/': \"api\""
        );
        sim.shutdown().await;
    }
}

/// Listings are assembled from each entry's cached serialised form; they must always
/// be what serialising the entries gives (`?pretty` still serialises the entries).
mod cached_listings {
    use super::*;

    /// A listing, checked against its pretty form and against reading each entry.
    async fn listing(c: &Consul, kind: &str) -> Vec<Value> {
        let fast = c.get(&format!("/v1/config/{kind}")).await;
        let slow = c.get(&format!("/v1/config/{kind}?pretty")).await;
        let slow_json: Value = serde_json::from_str(&slow.text()).unwrap();
        assert_eq!(fast.text(), serde_json::to_string(&slow_json).unwrap());
        assert_eq!(fast.index(), slow.index());
        let list = fast.json().as_array().unwrap().clone();
        for e in &list {
            let one = c
                .get(&format!(
                    "/v1/config/{kind}/{}",
                    e["Name"].as_str().unwrap()
                ))
                .await
                .json();
            assert_eq!(&one, e);
        }
        list
    }

    #[tokio::test]
    async fn listings_follow_writes_controller_status_and_index_resets() {
        let sim = start().await;
        let c = Consul::new(&sim);
        http_defaults(&c, "web").await;
        let route = json!({"Kind": "http-route", "Name": "web-route",
            "Parents": [{"Kind": "api-gateway", "Name": "edge", "SectionName": "http"}],
            "Rules": [{"Services": [{"Name": "web"}]}]});
        assert_eq!(put_entry(&c, route).await.json(), json!(true));
        let before = listing(&c, "http-route").await;
        assert_eq!(
            before[0]["Status"]["Conditions"][1]["Reason"],
            "GatewayNotFound"
        );
        // The gateway appears: the controller rewrites the route's status.
        let gw = json!({"Kind": "api-gateway", "Name": "edge",
            "Listeners": [{"Name": "http", "Port": 8443, "Protocol": "http"}]});
        assert_eq!(put_entry(&c, gw).await.json(), json!(true));
        let after = listing(&c, "http-route").await;
        assert_eq!(after[0]["Status"]["Conditions"][1]["Reason"], "Bound");
        assert!(after[0]["ModifyIndex"].as_u64() > before[0]["ModifyIndex"].as_u64());
        // A user write, then an index reset (every index moves backwards).
        http_defaults(&c, "api").await;
        let defaults = listing(&c, "service-defaults").await;
        assert_eq!(defaults.len(), 2);
        assert!(sim.faults().reset_indexes(steward_sim::Product::Consul));
        let reset = listing(&c, "service-defaults").await;
        assert!(reset[0]["ModifyIndex"].as_u64() < defaults[0]["ModifyIndex"].as_u64());
        listing(&c, "http-route").await;
        // Deleting drops the entry from the listing.
        c.delete("/v1/config/service-defaults/api").await;
        assert_eq!(listing(&c, "service-defaults").await.len(), 1);
        sim.shutdown().await;
    }
}
