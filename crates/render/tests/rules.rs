//! Rendering rules that the golden files show but do not explain: ownership read back from
//! every object, apply order, hash inputs, intention merging and render errors.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use steward_render::names::{self, SpecKey};
use steward_render::{Error, GatewayRef, ObjectKind, RenderContext, render, spec_hash};
use steward_spec::{AllowFrom, HttpMethod, IntentionAction, ServiceSpec};

fn example(stem: &str) -> ServiceSpec {
    support::examples()
        .into_iter()
        .find(|(s, _, _)| s == stem)
        .unwrap()
        .2
}

fn ctx() -> RenderContext {
    RenderContext::default()
}

#[test]
fn the_default_context_matches_the_contract() {
    let c = RenderContext::default();
    assert_eq!(c.generation, 0);
    assert_eq!(c.replicas, None);
    assert_eq!(
        c.edge_gateway,
        GatewayRef {
            kind: "api-gateway".into(),
            name: "edge".into(),
            section_name: Some("http".into())
        }
    );
    assert_eq!(c.jwt_auth_mount, "jwt-nomad");
    assert_eq!(c.jwt_audience, "vault.io");
}

#[test]
fn every_object_names_its_owner() {
    for (stem, _, spec) in support::examples().into_iter().chain(support::test_specs()) {
        let key = SpecKey::of(&spec);
        let d = render(
            &spec,
            &RenderContext {
                generation: 12,
                ..ctx()
            },
        )
        .unwrap();
        assert_eq!(d.key, key.to_string());
        let job = &d.nomad_job;
        assert_eq!(
            (job.namespace.as_str(), job.id.as_str()),
            (key.namespace(), key.name())
        );
        assert_eq!(
            names::owner_from_meta(&job.job["Meta"]),
            Some(key.clone()),
            "{stem}"
        );
        assert_eq!(
            names::hash_from_meta(&job.job["Meta"]),
            Some(d.hash.as_str())
        );
        assert_eq!(names::generation_from_meta(&job.job["Meta"]), Some(12));
        for entry in d.config_entries() {
            assert_eq!(
                names::owner_from_meta(&entry.body["Meta"]),
                Some(key.clone()),
                "{stem} {}",
                entry.name
            );
            assert_eq!(entry.body["Kind"], json!(entry.kind));
            assert_eq!(entry.body["Name"], json!(entry.name));
        }
        if let Some(policy) = &d.vault_policy {
            assert_eq!(
                names::owner_of_policy(&policy.name, &policy.hcl),
                Some(key.clone())
            );
        }
        if let Some(role) = &d.vault_role {
            assert_eq!(
                names::owner_of_role(&role.name, &role.body),
                Some(key.clone())
            );
            let read = support::vault_role_read_form(&role.body);
            assert_eq!(names::owner_of_role(&role.name, &read), Some(key.clone()));
            assert_eq!(
                role.body["token_policies"],
                json!([d.vault_policy.as_ref().unwrap().name])
            );
            assert_eq!(role.mount, "jwt-nomad");
        }
    }
}

#[test]
fn objects_come_in_apply_order() {
    let d = render(&example("order-api"), &ctx()).unwrap();
    let kinds: Vec<ObjectKind> = d.objects().iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            ObjectKind::VaultPolicy,
            ObjectKind::VaultRole,
            ObjectKind::ServiceDefaults,
            ObjectKind::ServiceIntentions,
            ObjectKind::NomadJob
        ]
    );
    let d = render(&example("web-api"), &ctx()).unwrap();
    let objects = d.objects();
    assert_eq!(objects.last().unwrap().kind, ObjectKind::HttpRoute);
    assert_eq!(objects.last().unwrap().name, "storefront-web-api");
    let d = render(&example("ticker"), &ctx()).unwrap();
    let objects = d.objects();
    assert_eq!(objects.len(), 1);
    assert_eq!(
        (objects[0].kind, objects[0].name.as_str()),
        (ObjectKind::NomadJob, "ticker")
    );
    let mut sorted = ObjectKind::APPLY_ORDER;
    sorted.sort();
    assert_eq!(sorted, ObjectKind::APPLY_ORDER);
    assert_eq!(ObjectKind::HttpRoute.to_string(), "http-route");
}

#[test]
fn the_register_body_wraps_the_job() {
    let d = render(&example("ticker"), &ctx()).unwrap();
    assert_eq!(
        d.nomad_job.register_body(None),
        json!({"Job": d.nomad_job.job})
    );
    assert_eq!(
        d.nomad_job.register_body(Some(0)),
        json!({"Job": d.nomad_job.job, "EnforceIndex": true, "JobModifyIndex": 0})
    );
}

#[test]
fn the_hash_covers_what_shapes_objects_and_nothing_else() {
    let spec = example("web-api");
    let base = spec_hash(&spec, &ctx()).unwrap();
    assert_eq!(base.len(), 64);
    assert_eq!(
        base,
        spec_hash(
            &spec,
            &RenderContext {
                generation: 5,
                replicas: Some(9),
                ..ctx()
            }
        )
        .unwrap()
    );

    let mut changed = spec.clone();
    changed.spec.image = Some("registry.example/storefront/web-api:2.3.2".into());
    assert_ne!(base, spec_hash(&changed, &ctx()).unwrap());
    let gateway = GatewayRef {
        name: "public".into(),
        ..GatewayRef::default()
    };
    assert_ne!(
        base,
        spec_hash(
            &spec,
            &RenderContext {
                edge_gateway: gateway,
                ..ctx()
            }
        )
        .unwrap()
    );
    assert_ne!(
        base,
        spec_hash(
            &spec,
            &RenderContext {
                jwt_audience: "other".into(),
                ..ctx()
            }
        )
        .unwrap()
    );

    // Writing a default out does not change the loaded spec, hence not the hash.
    let text = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec: {image: 'nginx:1.27'}\n";
    let explicit = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: default}\nspec: {image: 'nginx:1.27', replicas: 1, datacenters: ['*'], resources: {cpu: 100}}\n";
    let a = support::load("a", text);
    let b = support::load("b", explicit);
    assert_eq!(
        spec_hash(&a, &ctx()).unwrap(),
        spec_hash(&b, &ctx()).unwrap()
    );
}

#[test]
fn the_replica_override_sets_the_count() {
    let spec = example("market-data-cache");
    let d = render(
        &spec,
        &RenderContext {
            replicas: Some(10),
            ..ctx()
        },
    )
    .unwrap();
    assert_eq!(d.nomad_job.job["TaskGroups"][0]["Count"], 10);
    let d = render(&spec, &ctx()).unwrap();
    assert_eq!(d.nomad_job.job["TaskGroups"][0]["Count"], 2);
}

#[test]
fn the_edge_gateway_is_allowed_once_and_routes_attach_to_it() {
    let spec = example("web-api");
    let gateway = GatewayRef {
        kind: "api-gateway".into(),
        name: "public".into(),
        section_name: None,
    };
    let d = render(
        &spec,
        &RenderContext {
            edge_gateway: gateway,
            ..ctx()
        },
    )
    .unwrap();
    let sources = &d.service_intentions.as_ref().unwrap().body["Sources"];
    assert_eq!(
        sources,
        &json!([{"Name": "public", "Action": "allow"}, {"Name": "*", "Action": "deny"}])
    );
    assert_eq!(
        d.http_routes[0].body["Parents"],
        json!([{"Kind": "api-gateway", "Name": "public"}])
    );

    // A spec that names the gateway itself keeps its own rule.
    let mut own = spec.clone();
    own.spec.allow_from.push(AllowFrom {
        service: "edge".into(),
        action: IntentionAction::Allow,
        methods: vec![HttpMethod::Get],
        path_prefix: None,
        path_exact: None,
    });
    let d = render(&own, &ctx()).unwrap();
    let sources = d.service_intentions.unwrap().body["Sources"].clone();
    assert_eq!(sources.as_array().unwrap().len(), 2);
    assert_eq!(sources[0]["Name"], "edge");
    assert!(sources[0].get("Permissions").is_some());
}

fn rule(service: &str, action: IntentionAction, methods: &[HttpMethod]) -> AllowFrom {
    AllowFrom {
        service: service.into(),
        action,
        methods: methods.to_vec(),
        path_prefix: None,
        path_exact: None,
    }
}

#[test]
fn rules_for_one_source_merge_deterministically() {
    let mut spec = example("price-feed");
    spec.spec.protocol = None;
    spec.spec.allow_from = vec![
        rule("web", IntentionAction::Allow, &[]),
        rule("batch", IntentionAction::Allow, &[]),
        rule("web", IntentionAction::Deny, &[HttpMethod::Delete]),
        rule("batch", IntentionAction::Deny, &[]),
        rule("*", IntentionAction::Allow, &[]),
    ];
    let d = render(&spec, &ctx()).unwrap();
    let sources = d.service_intentions.unwrap().body["Sources"].clone();
    assert_eq!(
        sources,
        json!([
            // L7 rules first, then the L4 rule as the catch-all.
            {"Name": "web", "Permissions": [
                {"Action": "deny", "HTTP": {"Methods": ["DELETE"]}},
                {"Action": "allow", "HTTP": {"PathPrefix": "/"}}
            ]},
            // Conflicting L4 rules: deny wins.
            {"Name": "batch", "Action": "deny"},
            // The spec's own `*` rule replaces the default deny.
            {"Name": "*", "Action": "allow"}
        ])
    );
    assert_eq!(d.service_defaults.unwrap().body["Protocol"], "http");
}

#[test]
fn contradictory_specs_are_errors() {
    let mut spec = example("ticker");
    spec.spec.image = Some("x:1".into());
    assert!(matches!(render(&spec, &ctx()), Err(Error::Workload { .. })));
    spec.spec.image = None;
    spec.spec.command = None;
    assert!(matches!(render(&spec, &ctx()), Err(Error::Workload { .. })));

    let mut spec = example("price-feed");
    spec.spec.check = Some(http_check());
    spec.spec.port = None;
    let err = render(&spec, &ctx()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsPort {
                feature: "check",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "spec trading/price-feed: `check` needs `port` (nothing can reach the service without it)"
    );

    let mut spec = example("nightly-settlement");
    spec.spec.port = Some(8080);
    assert!(matches!(
        render(&spec, &ctx()),
        Err(Error::NotForPeriodic {
            feature: "port",
            ..
        })
    ));

    let mut spec = example("web-api");
    spec.spec.protocol = Some(steward_spec::Protocol::Tcp);
    assert!(matches!(
        render(&spec, &ctx()),
        Err(Error::NeedsL7Protocol {
            feature: "edge.routes",
            ..
        })
    ));
}

fn http_check() -> steward_spec::Check {
    steward_spec::Check {
        http: Some("/health".into()),
        tcp: None,
        interval: steward_spec::Duration::from_secs(10),
        timeout: steward_spec::Duration::from_secs(2),
    }
}

#[test]
fn a_tcp_check_on_a_mesh_service_never_renders() {
    // Nomad answers `Check <name> invalid: tcp checks are not valid for Connect enabled
    // services`, and every service with a port is in the mesh.
    let mut spec = example("price-feed");
    spec.spec.check = Some(steward_spec::Check {
        http: None,
        tcp: Some(true),
        ..http_check()
    });
    let err = render(&spec, &ctx()).unwrap_err();
    assert!(matches!(err, Error::CheckNotInMesh { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "spec trading/price-feed: only an `http` check can run on a service in the mesh (Nomad: tcp checks are not valid for Connect enabled services)"
    );
    spec.spec.check = Some(http_check());
    let job = render(&spec, &ctx()).unwrap().nomad_job.job;
    let check = &job["TaskGroups"][0]["Services"][0]["Checks"][0];
    assert_eq!(
        (&check["Type"], &check["Expose"]),
        (&json!("http"), &json!(true))
    );
}
