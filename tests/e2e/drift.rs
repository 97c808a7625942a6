//! Hand edits are reverted with a Drift event; objects Steward does not own are never
//! touched (Conflict); invalid specs and guardrail violations write nothing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use steward_e2e::{Env, spec, wait_for, web};
use steward_hashi::WriteOptions;
use steward_hashi::nomad::RegisterOptions;
use steward_operator::Phase;
use steward_operator::status::{ObjectState, StatusDoc};
use steward_sim::{FaultRule, FaultRuleKind, Product};

fn drift_event<'a>(
    s: &'a StatusDoc,
    needle: &str,
) -> Option<&'a steward_operator::status::EventDoc> {
    s.events
        .iter()
        .find(|e| e.reason == "Drift" && e.type_ == "Warning" && e.message.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_of_job_intentions_and_policy_are_reverted_with_drift_events() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    // 1. Someone changes the image by hand.
    let job = env.job("shop", "web").await.unwrap();
    let mut edited = job.raw.clone();
    edited["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("registry.example/web:hacked");
    env.clients
        .nomad
        .register_job(
            &edited,
            &RegisterOptions {
                namespace: Some("shop".into()),
                ..RegisterOptions::default()
            },
        )
        .await
        .unwrap();
    let s = env
        .wait_status("shop/web", "a Drift event for the job image", |s| {
            drift_event(s, "Config.image").is_some()
        })
        .await;
    let e = drift_event(&s, "Config.image").unwrap();
    assert!(e.message.contains("nomad-job shop/web"), "{}", e.message);
    assert!(
        e.message.contains("hacked"),
        "names the live value: {}",
        e.message
    );
    wait_for("the image to be restored", steward_e2e::WAIT, || async {
        let job = env.job("shop", "web").await.unwrap();
        let image = job.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"].clone();
        if image == json!("registry.example/web:1.0.0") {
            Ok(())
        } else {
            Err(image.to_string())
        }
    })
    .await;

    // 2. Someone adds a caller to the intentions.
    let mut intentions = env.entry("service-intentions", "web").await.unwrap();
    intentions["Sources"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"Name": "intruder", "Action": "allow"}));
    let cas = intentions["ModifyIndex"].as_u64().unwrap();
    assert!(
        env.clients
            .consul
            .config_put(&intentions, &WriteOptions::cas(cas))
            .await
            .unwrap()
    );
    env.wait_status("shop/web", "a Drift event for the intentions", |s| {
        drift_event(s, "Sources[intruder]").is_some()
    })
    .await;
    wait_for("the intruder to be removed", steward_e2e::WAIT, || async {
        let e = env.entry("service-intentions", "web").await.unwrap();
        let names: Vec<String> = e["Sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap_or("").to_owned())
            .collect();
        if names.contains(&"intruder".to_owned()) {
            Err(format!("{names:?}"))
        } else {
            Ok(())
        }
    })
    .await;

    // 3. Someone widens the policy (Vault has no watch: the rolling check finds it).
    let policy = env.policy("steward-shop-web").await.unwrap();
    let widened =
        format!("{policy}\npath \"secret/data/other/*\" {{ capabilities = [\"read\"] }}\n");
    env.clients
        .vault
        .put_policy("steward-shop-web", &widened)
        .await
        .unwrap();
    env.wait_status("shop/web", "a Drift event for the policy", |s| {
        drift_event(s, "vault-policy steward-shop-web").is_some()
    })
    .await;
    wait_for("the policy to be restored", steward_e2e::WAIT, || async {
        let now = env.policy("steward-shop-web").await.unwrap();
        if now == policy { Ok(()) } else { Err(now) }
    })
    .await;
    let s = env.wait_synced("shop/web", g).await;
    assert_eq!(
        s.object_state("nomad-job", "web"),
        Some(ObjectState::Updated)
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_created_by_hand_or_by_another_spec_are_conflicts_and_stay_untouched() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g3 = env.put_spec("one/cart", &web("one", "cart", "1.0.0")).await;
    env.wait_synced("one/cart", g3).await;
    env.settle(Duration::from_millis(300)).await;
    // A job named like the spec's, made by hand in its namespace.
    env.sim.create_nomad_namespace("shop");
    let hand_job = json!({"ID": "web", "Name": "web", "Namespace": "shop", "Type": "service",
        "TaskGroups": [{"Name": "web", "Count": 1,
            "Tasks": [{"Name": "main", "Driver": "docker", "Config": {"image": "nginx:1"}}]}]});
    env.clients
        .nomad
        .register_job(
            &hand_job,
            &RegisterOptions {
                namespace: Some("shop".into()),
                ..RegisterOptions::default()
            },
        )
        .await
        .unwrap();
    let before_job = env.job("shop", "web").await.unwrap();
    // A service-defaults entry named like another spec's service, made by hand.
    let hand_entry = json!({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"});
    assert!(
        env.clients
            .consul
            .config_put(&hand_entry, &WriteOptions::new())
            .await
            .unwrap()
    );
    let before_entry = env.entry("service-defaults", "api").await.unwrap();
    // Let the watches show the hand-made objects first, as they do for anything made
    // more than a moment before the spec: creations are not read first when a fresh
    // cache says the name is free, so within that moment the spec's earlier objects
    // could be created before the clash is found. The clash itself is never
    // overwritten either way (creations are check-and-set), as asserted below. The
    // config-entry watches list at most twice a second (`kinds/config_entry.rs`), so
    // the quiet period is longer than two of their intervals: 300 ms was not, and under
    // a loaded machine `shop/api` once tried (and failed) its check-and-set creation of
    // the hand-made `api` entry before the watch showed it.
    env.settle(Duration::from_millis(1200)).await;
    let mark = env.log.mark();

    let g1 = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    let s = env.wait_phase("shop/web", Phase::Conflict, g1).await;
    let job_obj = s.objects.iter().find(|o| o.kind == "nomad-job").unwrap();
    assert_eq!(job_obj.state, ObjectState::Conflict);
    assert!(
        job_obj
            .message
            .as_deref()
            .unwrap()
            .contains("created by hand"),
        "{job_obj:?}"
    );
    assert!(
        s.events
            .iter()
            .any(|e| e.reason == "Conflict" && e.type_ == "Warning")
    );

    let g2 = env
        .put_spec(
            "shop/api",
            &spec(
                "shop",
                "api",
                "image: registry.example/api:1.0\nport: 9090\n",
            ),
        )
        .await;
    env.wait_phase("shop/api", Phase::Conflict, g2).await;

    // Two specs whose Consul names collide across namespaces: the second is a conflict.
    let g4 = env.put_spec("two/cart", &web("two", "cart", "1.0.0")).await;
    let s = env.wait_phase("two/cart", Phase::Conflict, g4).await;
    assert!(
        s.message.contains("owned by spec one/cart"),
        "{}",
        s.message
    );

    env.settle(Duration::from_millis(300)).await;
    let after_job = env.job("shop", "web").await.unwrap();
    assert_eq!(
        after_job.view.job_modify_index,
        before_job.view.job_modify_index
    );
    assert_eq!(
        after_job.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1"
    );
    assert_eq!(
        env.entry("service-defaults", "api").await.unwrap()["ModifyIndex"],
        before_entry["ModifyIndex"]
    );
    // Nothing of shop/web, shop/api or two/cart was written at all.
    let writes: Vec<_> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.is_object_write())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(env.policy("steward-shop-web").await.is_none());
    assert!(env.policy("steward-two-cart").await.is_none());
    env.finish().await;
}

/// The window between the ownership check and the register: a job replaced by hand
/// while the update's plan is under way is not overwritten (the register is enforced
/// against the index of the job that was checked, not the plan's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_replaced_by_hand_while_its_update_is_planned_is_not_overwritten() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    // Hold the update's plan until the job has been replaced by hand.
    let faults = env.sim.faults().clone();
    faults.add(FaultRule {
        id: 0,
        product: Product::Nomad,
        path_prefix: Some("/v1/job/web/plan".into()),
        methods: None,
        count: Some(1),
        kind: FaultRuleKind::Stall {
            stall_ms: 1500,
            rate: 1.0,
        },
    });
    let g2 = env.put_spec("shop/web", &web("shop", "web", "1.1.0")).await;
    wait_for(
        "the update's plan to be held",
        steward_e2e::WAIT,
        || async {
            if faults.view().rules.is_empty() {
                Ok(())
            } else {
                Err("the plan was not requested yet".to_owned())
            }
        },
    )
    .await;
    let hand_job = json!({"ID": "web", "Name": "web", "Namespace": "shop", "Type": "service",
        "TaskGroups": [{"Name": "web", "Count": 1,
            "Tasks": [{"Name": "main", "Driver": "docker", "Config": {"image": "nginx:1"}}]}]});
    env.clients
        .nomad
        .register_job(
            &hand_job,
            &RegisterOptions {
                namespace: Some("shop".into()),
                ..RegisterOptions::default()
            },
        )
        .await
        .unwrap();
    let replaced = env.job("shop", "web").await.unwrap();

    let s = env.wait_phase("shop/web", Phase::Conflict, g2).await;
    assert_eq!(
        s.object_state("nomad-job", "web"),
        Some(ObjectState::Conflict)
    );
    env.settle(Duration::from_millis(300)).await;
    let after = env.job("shop", "web").await.unwrap();
    assert_eq!(after.view.job_modify_index, replaced.view.job_modify_index);
    assert_eq!(
        after.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx:1"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_update_is_reported_with_positions_and_the_old_job_keeps_running() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g1 = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g1).await;
    env.settle(Duration::from_millis(300)).await;
    let before = env.job("shop", "web").await.unwrap();
    let mark = env.log.mark();

    let broken = web("shop", "web", "2.0.0")
        .replace("replicas: 2", "replicas: 2\n  imagee: oops\n  port: 99999");
    let g2 = env.put_spec("shop/web", &broken).await;
    let s = env.wait_phase("shop/web", Phase::Invalid, g2).await;
    assert!(s.diagnostics.len() >= 2, "{:?}", s.diagnostics);
    let unknown = s
        .diagnostics
        .iter()
        .find(|d| d.code == "unknown-field")
        .unwrap();
    // apiVersion, kind, metadata, name, namespace, spec, image, replicas, then `imagee`.
    assert_eq!((unknown.line, unknown.column), (9, 3), "{unknown:?}");
    assert_eq!(unknown.path, "spec.imagee");
    assert!(s.diagnostics.iter().all(|d| d.line > 0 && d.column > 0));
    let accepted = s.condition("Accepted").unwrap();
    assert_eq!(
        accepted.status,
        steward_operator::status::ConditionStatus::False
    );
    assert!(
        s.events
            .iter()
            .any(|e| e.reason == "InvalidSpec" && e.type_ == "Warning")
    );

    env.settle(Duration::from_millis(300)).await;
    let after = env.job("shop", "web").await.unwrap();
    assert_eq!(after.view.job_modify_index, before.view.job_modify_index);
    assert_eq!(after.view.version, before.view.version);
    assert!(!after.view.stop);
    assert!(
        env.log.since(mark).iter().all(|r| !r.is_object_write()),
        "{:?}",
        env.log.since(mark)
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardrail_violation_is_invalid_and_writes_nothing() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let text = spec(
        "shop",
        "thief",
        "image: docker.io/evil/miner:1.0\nport: 8080\nsecrets:\n  - {path: secret/data/finance/ledger-reader/*, capabilities: [read]}\n",
    );
    let g = env.put_spec("shop/thief", &text).await;
    let s = env.wait_phase("shop/thief", Phase::Invalid, g).await;
    let codes: Vec<&str> = s.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(
        codes.iter().filter(|c| c.starts_with("guardrail")).count() >= 2,
        "{codes:?}"
    );
    assert!(
        s.diagnostics.iter().any(|d| d.path == "spec.image"),
        "{:?}",
        s.diagnostics
    );
    env.settle(Duration::from_millis(300)).await;
    assert!(
        env.log.all().iter().all(|r| !r.is_object_write()),
        "{:?}",
        env.log.all()
    );
    assert!(env.job("shop", "thief").await.is_none());
    assert!(env.policy("steward-shop-thief").await.is_none());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_stored_under_another_key_is_invalid() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g = env
        .put_spec("shop/other", &web("shop", "web", "1.0.0"))
        .await;
    let s = env.wait_phase("shop/other", Phase::Invalid, g).await;
    assert_eq!(s.diagnostics[0].code, "key-mismatch");
    assert!(
        s.message.contains("steward/specs/shop/web"),
        "{}",
        s.message
    );
    env.settle(Duration::from_millis(300)).await;
    assert!(env.log.all().iter().all(|r| !r.is_object_write()));
    env.finish().await;
}
