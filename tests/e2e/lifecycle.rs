//! The life of a spec: create, update, no-op passes, restart, delete; the examples.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Env, web};
use steward_operator::Phase;
use steward_operator::status::ObjectState;
use steward_sim::Product;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_spec_converges_to_synced_with_every_object_owned() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let generation = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    let status = env.wait_synced("shop/web", generation).await;

    assert_eq!(status.observed_generation, generation);
    let kinds: Vec<_> = status.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "vault-policy",
            "vault-role",
            "service-defaults",
            "service-intentions",
            "nomad-job",
            "http-route"
        ]
    );
    assert!(
        status
            .objects
            .iter()
            .all(|o| o.state == ObjectState::Created),
        "{:?}",
        status.objects
    );
    for c in &status.conditions {
        let want = if c.type_ == "Degraded" {
            steward_operator::status::ConditionStatus::False
        } else {
            steward_operator::status::ConditionStatus::True
        };
        assert_eq!(c.status, want, "{c:?}");
    }

    // Every object exists, carries the ownership labels, and matches the spec.
    let job = env.job("shop", "web").await.unwrap();
    assert_eq!(job.view.meta["steward.spec"], "shop/web");
    assert_eq!(job.view.meta["steward.generation"], generation.to_string());
    assert_eq!(
        job.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "registry.example/web:1.0.0"
    );
    assert_eq!(job.raw["TaskGroups"][0]["Count"], 2);
    assert!(job.view.stable, "the deployment succeeded");
    for (kind, name) in [
        ("service-defaults", "web"),
        ("service-intentions", "web"),
        ("http-route", "shop-web"),
    ] {
        let e = env.entry(kind, name).await.unwrap();
        assert_eq!(e["Meta"]["steward.spec"], "shop/web", "{kind}");
    }
    assert_eq!(
        env.entry("service-defaults", "web").await.unwrap()["Protocol"],
        "http"
    );
    let policy = env.policy("steward-shop-web").await.unwrap();
    assert!(policy.starts_with("# managed-by: steward; spec: shop/web"));
    assert!(policy.contains("secret/data/shop/web/*"));
    let role = env
        .clients
        .vault
        .get_jwt_role("jwt-nomad", "steward-shop-web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(role.token_policies, vec!["steward-shop-web"]);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_update_is_one_nomad_register_and_no_other_object_write() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g1 = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g1).await;
    env.settle(Duration::from_millis(500)).await;

    let before = env.writes();
    let mark = env.log.mark();
    let g2 = env.put_spec("shop/web", &web("shop", "web", "1.1.0")).await;
    let status = env.wait_synced("shop/web", g2).await;
    env.settle(Duration::from_millis(500)).await;
    let after = env.writes();

    assert_eq!(
        after.delta(&before, Product::Nomad),
        1,
        "{:?}",
        after.rows_since(&before)
    );
    assert_eq!(
        after.delta(&before, Product::Vault),
        0,
        "{:?}",
        after.rows_since(&before)
    );
    let consul: Vec<_> = after
        .rows_since(&before)
        .into_iter()
        .filter(|((p, _, route), _)| *p == Product::Consul && route != "/v1/txn")
        .collect();
    // The test's own spec write is the only other Consul write; the rest are statuses.
    assert_eq!(
        consul,
        vec![((Product::Consul, "PUT".into(), "/v1/kv/{*key}".into()), 1)]
    );
    let object_writes: Vec<_> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.is_object_write())
        .collect();
    assert_eq!(object_writes.len(), 1, "{object_writes:?}");
    assert_eq!(
        (
            object_writes[0].method.as_str(),
            object_writes[0].path.as_str()
        ),
        ("PUT", "/v1/jobs")
    );
    let job = env.job("shop", "web").await.unwrap();
    assert_eq!(
        job.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "registry.example/web:1.1.0"
    );
    assert_eq!(job.view.version, 1);
    assert_eq!(
        status.object_state("nomad-job", "web"),
        Some(ObjectState::Updated)
    );
    assert_eq!(
        status.object_state("service-defaults", "web"),
        Some(ObjectState::Synced)
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_keys_write_nothing_on_requeue_or_restart() {
    let mut env = Env::start().await;
    let a = env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(500)).await;
    let status_before = env.status_json("shop/web").await.unwrap();

    // Re-enqueue: a full pass over a converged key.
    let before = env.writes();
    let mark = env.log.mark();
    let n = a.reconciles();
    a.enqueue("shop/web");
    steward_e2e::wait_for("the requeued reconcile", steward_e2e::WAIT, || async {
        if a.reconciles() > n {
            Ok(())
        } else {
            Err(format!("{} reconciles", a.reconciles()))
        }
    })
    .await;
    env.settle(Duration::from_millis(300)).await;
    assert!(
        env.writes().rows_since(&before).is_empty(),
        "{:?}",
        env.writes().rows_since(&before)
    );
    assert!(
        env.log.since(mark).iter().all(|r| !r.is_write()),
        "{:?}",
        env.log.since(mark)
    );

    // Restart: a new process reads everything again and still writes nothing.
    env.stop("a").await;
    let before = env.writes();
    let b = env.operator("b").await;
    steward_e2e::wait_for(
        "the new operator to lead and reconcile",
        steward_e2e::WAIT,
        || async {
            if b.is_leader() && b.reconciles() >= 1 {
                Ok(())
            } else {
                Err(format!(
                    "leader {} reconciles {}",
                    b.is_leader(),
                    b.reconciles()
                ))
            }
        },
    )
    .await;
    env.settle(Duration::from_millis(500)).await;
    let object_writes: Vec<_> = env
        .writes()
        .rows_since(&before)
        .into_iter()
        .filter(|((_, _, route), _)| !route.starts_with("/v1/session") && route != "/v1/kv/{*key}")
        .collect();
    assert!(object_writes.is_empty(), "{object_writes:?}");
    assert_eq!(env.status_json("shop/web").await.unwrap(), status_before);
    assert_eq!(env.status("shop/web").await.unwrap().phase, Phase::Synced);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_spec_is_collected_in_reverse_apply_order() {
    let mut env = Env::start().await;
    // One spec is all there is, and removing one spec is never blocked (gc.rs has the
    // guard's own scenarios).
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    let mark = env.log.mark();
    env.delete_spec("shop/web").await;
    steward_e2e::wait_for(
        "the status document to be removed",
        steward_e2e::WAIT,
        || async {
            match env.status_json("shop/web").await {
                None => Ok(()),
                Some(s) => Err(s.to_string()),
            }
        },
    )
    .await;
    let deletes: Vec<(String, String)> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.status.is_some_and(|s| s < 300))
        .map(|r| (r.method, r.path))
        .collect();
    let paths: Vec<&str> = deletes.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/config/http-route/shop-web",
            "/v1/job/web",
            "/v1/config/service-intentions/web",
            "/v1/config/service-defaults/web",
            "/v1/auth/jwt-nomad/role/steward-shop-web",
            "/v1/sys/policies/acl/steward-shop-web",
        ]
    );
    assert!(env.entry("http-route", "shop-web").await.is_none());
    assert!(env.entry("service-intentions", "web").await.is_none());
    assert!(env.entry("service-defaults", "web").await.is_none());
    assert!(env.policy("steward-shop-web").await.is_none());
    assert!(
        env.job("shop", "web").await.unwrap().view.stop,
        "stopped, not purged"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_converges_to_synced() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let dir = steward_e2e::repo_path("deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    let started = tokio::time::Instant::now();
    let mut pushed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let spec = steward_spec::load("x.yaml", &text, None).spec.unwrap();
        let key = spec.key();
        let g = env.put_spec(&key, &text).await;
        pushed.push((key, g));
    }
    for (key, g) in &pushed {
        let status = env.wait_synced(key, *g).await;
        assert!(
            status
                .objects
                .iter()
                .all(|o| o.state == ObjectState::Created),
            "{key}: {:?}",
            status.objects
        );
    }
    println!("7 examples Synced in {:?}", started.elapsed());
    // The batch job and the worker without a port are there too.
    let batch = env.job("trading", "nightly-settlement").await.unwrap();
    assert_eq!(batch.view.job_type, "batch");
    assert!(env.job("tools", "ticker").await.is_some());
    assert!(
        env.entry("service-defaults", "ticker").await.is_none(),
        "a worker without a port has no config entries"
    );
    assert_eq!(
        env.entry("service-defaults", "price-feed").await.unwrap()["Protocol"],
        "grpc"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_nomad_namespace_is_an_error_naming_it_until_it_exists() {
    let mut env = Env::start().await;
    let mut config = env.config();
    config.create_nomad_namespaces = false; // as `steward run`
    env.operator_with("a", config).await;
    let g = env
        .put_spec(
            "ops/tool",
            &steward_e2e::spec("ops", "tool", "image: registry.example/tool:1.0\n"),
        )
        .await;
    let s = env.wait_phase("ops/tool", Phase::Error, g).await;
    assert!(
        s.message.contains("Nomad namespace \"ops\" does not exist"),
        "{}",
        s.message
    );
    assert_eq!(
        s.object_state("nomad-job", "tool"),
        Some(ObjectState::Error)
    );
    env.sim.create_nomad_namespace("ops");
    env.wait_synced("ops/tool", g).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_edge_gateway_is_an_error_and_routes_wait_for_it() {
    let mut env = Env::start().await;
    env.clients
        .consul
        .config_delete("api-gateway", "edge", &steward_hashi::WriteOptions::new())
        .await
        .unwrap();
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    let s = env.wait_phase("shop/web", Phase::Error, g).await;
    assert!(
        s.message
            .contains("edge gateway api-gateway \"edge\" does not exist"),
        "{}",
        s.message
    );
    assert_eq!(
        s.object_state("http-route", "shop-web"),
        Some(ObjectState::Error)
    );
    assert_eq!(
        s.object_state("nomad-job", "web"),
        Some(ObjectState::Created),
        "earlier steps are applied"
    );
    assert!(env.entry("http-route", "shop-web").await.is_none());
    let gateway = serde_json::json!({
        "Kind": "api-gateway", "Name": "edge",
        "Listeners": [{"Name": "http", "Port": 8080, "Protocol": "http", "Hostname": "*"}],
    });
    env.clients
        .consul
        .config_put(&gateway, &steward_hashi::WriteOptions::new())
        .await
        .unwrap();
    env.wait_synced("shop/web", g).await;
    assert!(env.entry("http-route", "shop-web").await.is_some());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomads_register_warnings_reach_the_status_as_a_warning_event() {
    // Nomad accepts `memory_max` but warns that it is ignored while memory
    // oversubscription is off (its default): the team must see that in the status.
    let mut env = Env::start().await;
    env.operator("a").await;
    let text = steward_e2e::spec(
        "shop",
        "cache",
        "image: registry.example/cache:1.0\nresources: {cpu: 100, memoryMB: 256, memoryMaxMB: 512}\n",
    );
    let g = env.put_spec("shop/cache", &text).await;
    let status = env.wait_synced("shop/cache", g).await;
    let warning = status
        .events
        .iter()
        .find(|e| e.reason == "NomadWarning")
        .unwrap_or_else(|| panic!("no NomadWarning event: {:?}", status.events));
    assert_eq!(warning.type_, "Warning");
    assert!(
        warning
            .message
            .contains("Task \"cache.app\" memory_max value will be ignored"),
        "{}",
        warning.message
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_entry_write_elsewhere_moves_every_kinds_index_but_writes_nothing() {
    // Consul's config-entry index is table-wide: someone else's service-defaults write
    // returns every list watch (intentions, routes, ...) with a new index and the same
    // entries. A converged spec must not answer that with writes.
    let mut env = Env::start().await;
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(500)).await;
    let before = env.sim.consul_index();
    let mark = env.log.mark();
    let other =
        serde_json::json!({"Kind": "service-defaults", "Name": "someone-else", "Protocol": "http"});
    assert!(
        env.clients
            .consul
            .config_put(&other, &steward_hashi::WriteOptions::new())
            .await
            .unwrap()
    );
    assert!(env.sim.consul_index() > before);
    env.settle(Duration::from_millis(800)).await;
    let writes: Vec<_> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(env.status("shop/web").await.unwrap().phase, Phase::Synced);
    env.finish().await;
}
