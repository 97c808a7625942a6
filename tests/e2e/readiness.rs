//! Per-kind readiness: a cache that cannot sync (here a Consul without the `http-route`
//! kind, answering as Consul < 1.15 does) holds back only the specs that render that
//! kind, says why in their status, in `/readyz` and in the metrics, and garbage
//! collection leaves that kind alone while still collecting the others.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::Value;
use steward_e2e::{Env, WAIT, sim_config, spec, wait_for, web};
use steward_operator::Phase;
use steward_operator::status::{REASON_CACHE_UNAVAILABLE, RESOURCES_SYNCED};
use steward_render::names::{self, SpecKey};
use tower::ServiceExt as _;

async fn readyz(router: &axum::Router) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A service without edge routes: needs no `http-route` cache.
fn plain(ns: &str, name: &str) -> String {
    spec(
        ns,
        name,
        &format!(
            "image: registry.example/{name}:1.0\nport: 8080\ncheck: {{http: /healthz}}\nallowFrom:\n  - {{service: caller, methods: [GET]}}\nsecrets:\n  - {{path: secret/data/{ns}/{name}/*, capabilities: [read]}}\n"
        ),
    )
}

async fn routes(env: &Env) -> Vec<String> {
    env.clients
        .consul
        .config_list_raw("http-route", &steward_hashi::QueryOptions::new())
        .await
        .map(|r| {
            r.value
                .iter()
                .filter_map(|e| e.get("Name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_server_lacks_holds_only_the_specs_that_need_it() {
    let mut config = sim_config();
    config.consul.unsupported_config_kinds = vec!["http-route".to_owned()];
    let mut env = Env::start_with(config).await;
    // One spec's objects are half of all owned objects, and GC deletes them unasked: the
    // guard counts specs, and one spec may always go.
    let handle = env.operator("a").await;
    let router = steward_operator::api::router(handle.clone());

    let g_plain = env.put_spec("shop/plain", &plain("shop", "plain")).await;
    let g_routed = env
        .put_spec("shop/routed", &web("shop", "routed", "1.0"))
        .await;

    // The spec without routes converges although one cache never syncs.
    env.wait_synced("shop/plain", g_plain).await;
    // The spec with a route is held, and says which kind and what Consul answered.
    let held = env
        .wait_status_for("shop/routed", "held for http-route", WAIT, |s| {
            s.observed_generation == g_routed && s.waiting_for_cache()
        })
        .await;
    assert_eq!(held.phase, Phase::Pending);
    let condition = held.condition(RESOURCES_SYNCED).unwrap();
    assert_eq!(condition.reason, REASON_CACHE_UNAVAILABLE);
    assert!(
        condition
            .message
            .contains("invalid config entry kind: http-route"),
        "{}",
        condition.message
    );
    assert!(
        env.job("shop", "routed").await.is_none(),
        "nothing is written for a held spec"
    );

    // Ready, degraded, with the reason; and counted in the metrics.
    let (status, body) = readyz(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let degraded = body["degraded"].as_array().unwrap();
    assert_eq!(degraded.len(), 1, "{body}");
    assert_eq!(degraded[0]["cache"], "http-route");
    assert!(
        degraded[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid config entry kind"),
        "{body}"
    );
    let metrics = handle.metrics_text();
    assert!(
        metrics.contains("steward_cache_synced{cache=\"http-route\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("steward_cache_synced{cache=\"specs\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("steward_cache_consecutive_failures{cache=\"http-route\"} 0"),
        "{metrics}"
    );

    // The kind comes back (the server was upgraded): the held spec converges.
    env.sim.set_unsupported_config_kinds(&[]);
    env.wait_synced("shop/routed", g_routed).await;
    let route = names::http_route(&SpecKey::new("shop", "routed"));
    assert!(routes(&env).await.contains(&route));
    let (status, body) = readyz(&router).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["degraded"].as_array().unwrap().is_empty(), "{body}");

    // The kind goes away again, and the routed spec is removed: its other objects are
    // collected, its route (a kind no cache can vouch for now) is left alone.
    env.sim.set_unsupported_config_kinds(&["http-route"]);
    wait_for("the http-route cache to notice", WAIT, || async {
        let (_, body) = readyz(&router).await;
        let failing = body["degraded"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c["cache"] == "http-route"));
        if failing {
            Ok(())
        } else {
            Err(body.to_string())
        }
    })
    .await;
    env.delete_spec("shop/routed").await;
    wait_for("the routed spec's job to be collected", WAIT, || async {
        match env.job("shop", "routed").await {
            Some(j) if !j.view.stop => Err(format!("job version {}", j.view.version)),
            _ => Ok(()),
        }
    })
    .await;
    env.settle(Duration::from_millis(500)).await;
    env.sim.set_unsupported_config_kinds(&[]);
    assert!(
        routes(&env).await.contains(&route),
        "the route survived while its kind could not be listed"
    );
    // Listed again: the orphan route is collected by the next pass.
    wait_for("the orphan route to be collected", WAIT, || async {
        let now = routes(&env).await;
        if now.contains(&route) {
            Err(format!("{now:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    // The plain spec never moved.
    let plain_status = env.status("shop/plain").await.unwrap();
    assert_eq!(plain_status.phase, Phase::Synced);
    env.finish().await;
}

/// A Nomad that takes `namespace=*` literally (Nomad < 1.2): the event stream and the
/// deployment list show nothing. Told so by start-up detection, the operator lists the
/// deployments per namespace and sees the rollout; assuming the wildcard, it never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_namespace_wildcard_deployments_are_listed_per_namespace() {
    let mut sim = sim_config();
    sim.nomad.namespace_wildcard = false;
    sim.nomad.version = "1.1.2".into();
    let mut env = Env::start_with(sim).await;

    // Assuming the wildcard (as before detection), the rollout is never seen.
    env.operator("assuming").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_phase("shop/web", Phase::Progressing, g).await;
    env.settle(Duration::from_secs(2)).await;
    let s = env.status("shop/web").await.unwrap();
    assert_eq!(s.phase, Phase::Progressing, "{s:?}");
    env.stop("assuming").await;

    // As `steward run` does: detection finds the missing wildcard.
    let c = &env.clients;
    let answers = steward_operator::detect::probe(&c.consul, &c.nomad, &c.vault, "jwt-nomad").await;
    let detected = steward_operator::detect::assess(&answers, "jwt-nomad");
    let mut config = env.config();
    config.server_features = detected.server_features();
    config.cluster = Some(detected);
    assert!(!config.server_features.nomad_namespace_wildcard);
    env.operator_with("told", config).await;
    let s = env.wait_synced("shop/web", g).await;
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.message.contains("successful")),
        "{s:?}"
    );
    // The spec says what the server lacks and what Steward does instead.
    let s = env
        .wait_status("shop/web", "the ServerSupport condition", |s| {
            s.condition("ServerSupport").is_some()
        })
        .await;
    let support = s.condition("ServerSupport").unwrap();
    assert_eq!(support.reason, "Degraded");
    assert!(
        support.message.contains("namespace=*") && support.message.contains("per namespace"),
        "{support:?}"
    );
    env.finish().await;
}

/// A Nomad whose job list stubs carry no `Meta`: told so by start-up detection, the
/// operator reads each job's owner from the job, so garbage collection finds and stops
/// the job of a removed spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_meta_in_the_job_list_owners_are_read_from_the_jobs() {
    let mut sim = sim_config();
    sim.nomad.job_list_meta = false;
    let mut env = Env::start_with(sim).await;
    let mut config = env.config();
    config.server_features.nomad_job_list_meta = false;
    let handle = env.operator_with("a", config).await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    env.delete_spec("shop/web").await;
    wait_for(
        "the job to be stopped by garbage collection",
        WAIT,
        || async {
            match env.job("shop", "web").await {
                Some(job) if job.view.stop => Ok(()),
                Some(_) => Err(format!("running; verified {}", handle.verified())),
                None => Err("gone".to_owned()),
            }
        },
    )
    .await;
    env.finish().await;
}
