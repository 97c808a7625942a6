//! High availability: one writer among several operators, failover after the lock-delay,
//! and a crash in the middle of a reconcile that the next leader finishes without
//! duplicates.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Env, wait_for, web};
use steward_sim::{FaultRule, FaultRuleKind, Product};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_have_exactly_one_writer_and_fail_over_after_the_lock_delay() {
    let mut env = Env::start().await;
    let a = env.operator("a").await;
    wait_for("a to lead", steward_e2e::WAIT, || async {
        if a.is_leader() {
            Ok(())
        } else {
            Err("follower".to_owned())
        }
    })
    .await;
    let b = env.operator("b").await;
    let g1 = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g1).await;
    env.settle(Duration::from_millis(300)).await;

    // Only the leader wrote; the follower's caches are warm all the same.
    assert!(!b.is_leader());
    let b_writes: Vec<_> = env
        .log
        .all()
        .into_iter()
        .filter(|r| {
            r.operator == "b" && r.is_write() && !r.path.starts_with("/v1/kv/steward/leader")
        })
        .collect();
    assert!(b_writes.is_empty(), "{b_writes:?}");
    assert!(
        env.log
            .all()
            .iter()
            .any(|r| r.operator == "a" && r.path == "/v1/jobs")
    );
    assert!(b.is_ready());
    wait_for("b to see the status", steward_e2e::WAIT, || async {
        match b.status("shop/web") {
            Some(s) if s.observed_generation == g1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // The leader crashes; its session ends (as when its TTL lapses).
    let session = env.kill("a").unwrap();
    assert!(env.sim.consul_expire_session(&session));
    let expired = tokio::time::Instant::now();
    wait_for("b to lead", steward_e2e::WAIT, || async {
        if b.is_leader() {
            Ok(())
        } else {
            Err("follower".to_owned())
        }
    })
    .await;
    let took = expired.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "failover waited for the 1 s lock-delay: {took:?}"
    );

    // The new leader does the work.
    let mark = env.log.mark();
    let g2 = env.put_spec("shop/web", &web("shop", "web", "1.1.0")).await;
    env.wait_synced("shop/web", g2).await;
    let writers: Vec<_> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.is_object_write())
        .map(|r| r.operator)
        .collect();
    assert_eq!(writers, vec!["b".to_owned()]);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_reconcile_is_finished_by_the_next_without_duplicates() {
    let mut env = Env::start().await;
    env.operator("a").await;
    // Registrations hang for a while: the crash happens with one in flight.
    let slow = env.sim.faults().add(FaultRule {
        id: 0,
        product: Product::Nomad,
        path_prefix: Some("/v1/jobs".into()),
        methods: Some(vec!["PUT".into()]),
        count: None,
        kind: FaultRuleKind::Latency {
            fixed_ms: 1500,
            jitter_ms: 0,
        },
    });
    env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    wait_for("the steps before the job", steward_e2e::WAIT, || async {
        let ready = env.policy("steward-shop-web").await.is_some()
            && env.entry("service-intentions", "web").await.is_some();
        if ready {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let session = env.kill("a").unwrap();
    assert!(env.sim.consul_expire_session(&session));
    env.sim.faults().remove(slow);

    let g = env
        .clients
        .consul
        .kv_get(
            "steward/specs/shop/web",
            &steward_hashi::QueryOptions::new(),
        )
        .await
        .unwrap()
        .value
        .unwrap()
        .modify_index;
    let mark = env.log.mark();
    env.operator("b").await;
    let s = env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;

    // One job version, one of each object, none written twice by the new leader.
    let versions = env.job_versions("shop", "web").await;
    assert_eq!(
        versions.len(),
        1,
        "{:?}",
        versions.iter().map(|v| v.view.version).collect::<Vec<_>>()
    );
    assert_eq!(versions[0].view.version, 0);
    let registers = env
        .log
        .since(mark)
        .iter()
        .filter(|r| r.operator == "b" && r.path == "/v1/jobs" && r.method == "PUT")
        .count();
    assert!(registers <= 1, "{registers} registrations");
    assert_eq!(s.objects.len(), 6);
    let b_config_writes = env
        .log
        .since(mark)
        .iter()
        .filter(|r| r.operator == "b" && r.path == "/v1/config" && r.method == "PUT")
        .count();
    assert!(
        b_config_writes <= 1,
        "only the route, if the crash came before it: {b_config_writes}"
    );
    assert_eq!(
        env.clients
            .vault
            .list_policies()
            .await
            .unwrap()
            .iter()
            .filter(|p| p.starts_with("steward-"))
            .count(),
        1
    );
    env.finish().await;
}

/// The crash falls after the job's registration landed and before the status that
/// records it was written: the next leader finds the job as the spec wants it, writes
/// it no more, and writes the right status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_its_register_landed_is_not_repeated_by_the_next() {
    let mut env = Env::start().await;
    env.operator("a").await;
    // Status writes hang: nothing after the writes of the pass is recorded.
    let held = env.sim.faults().add(FaultRule {
        id: 0,
        product: Product::Consul,
        path_prefix: Some("/v1/txn".into()),
        methods: Some(vec!["PUT".into()]),
        count: None,
        kind: FaultRuleKind::Stall {
            stall_ms: 3_000,
            rate: 1.0,
        },
    });
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    wait_for("a's registration to land", steward_e2e::WAIT, || async {
        match env.job("shop", "web").await {
            Some(_) => Ok(()),
            None => Err("no job yet".to_owned()),
        }
    })
    .await;
    let session = env.kill("a").unwrap();
    assert!(
        env.status("shop/web").await.is_none(),
        "no status was written"
    );
    assert!(env.sim.consul_expire_session(&session));
    env.sim.faults().remove(held);

    let mark = env.log.mark();
    env.operator("b").await;
    let s = env.wait_synced("shop/web", g).await;
    env.settle(Duration::from_millis(300)).await;
    let by_b: Vec<_> = env
        .log
        .since(mark)
        .into_iter()
        .filter(|r| r.operator == "b" && r.is_object_write())
        .map(|r| (r.method, r.path))
        .collect();
    assert!(
        !by_b.iter().any(|(m, p)| m == "PUT" && p == "/v1/jobs"),
        "registered again: {by_b:?}"
    );
    assert!(
        by_b.iter().all(|(_, p)| p == "/v1/config"),
        "only the route, if the crash came before it: {by_b:?}"
    );
    assert_eq!(env.job_versions("shop", "web").await.len(), 1);
    assert_eq!(s.observed_generation, g);
    assert_eq!(s.objects.len(), 6, "{s:?}");
    assert_eq!(
        s.object_state("nomad-job", "web"),
        Some(steward_operator::status::ObjectState::Synced)
    );
    env.finish().await;
}
