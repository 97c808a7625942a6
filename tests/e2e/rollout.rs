//! Deployments: a failing rollout is reverted by Nomad and reported as Degraded without
//! Steward fighting the revert; scaling windows move the group count at their boundaries.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Env, spec, wait_for, web};
use steward_operator::Phase;
use steward_operator::status::ConditionStatus;

fn image(job: &steward_hashi::nomad::Job) -> String {
    job.raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deployment_is_degraded_and_the_auto_revert_is_left_alone() {
    let mut env = Env::start().await;
    env.operator("a").await;
    let g1 = env.put_spec("shop/web", &web("shop", "web", "1.0.0")).await;
    env.wait_synced("shop/web", g1).await;

    env.sim.faults().set_job_failing("shop", "web", true);
    let g2 = env.put_spec("shop/web", &web("shop", "web", "2.0.0")).await;
    // First the deployment fails (DeploymentFailed), then Nomad reverts (AutoReverted).
    let s = env
        .wait_status("shop/web", "Degraded by the auto-revert", |s| {
            s.phase == Phase::Degraded
                && s.observed_generation == g2
                && s.condition("Degraded")
                    .is_some_and(|c| c.reason == "AutoReverted")
        })
        .await;
    let degraded = s.condition("Degraded").unwrap();
    assert_eq!(degraded.status, ConditionStatus::True);
    assert_eq!(degraded.reason, "AutoReverted", "{degraded:?}");
    assert!(
        degraded.message.contains("job version 1 failed"),
        "{}",
        degraded.message
    );
    assert_eq!(
        s.condition("Available").unwrap().status,
        ConditionStatus::True,
        "the reverted version runs"
    );
    assert!(
        s.events
            .iter()
            .any(|e| e.reason == "Degraded" && e.type_ == "Warning")
    );

    // Nomad's history: v0 1.0.0 (stable), v1 2.0.0 (failed), v2 = revert to 1.0.0.
    let versions = env.job_versions("shop", "web").await;
    let seen: Vec<(u64, String)> = versions
        .iter()
        .map(|v| (v.view.version, image(v)))
        .collect();
    assert_eq!(
        seen,
        vec![
            (2, "registry.example/web:1.0.0".to_owned()),
            (1, "registry.example/web:2.0.0".to_owned()),
            (0, "registry.example/web:1.0.0".to_owned()),
        ]
    );
    // Steward does not register the failed version again.
    env.settle(Duration::from_millis(800)).await;
    assert_eq!(env.job("shop", "web").await.unwrap().view.version, 2);
    assert_eq!(env.status("shop/web").await.unwrap().phase, Phase::Degraded);

    // A fixed spec rolls out again.
    env.sim.faults().set_job_failing("shop", "web", false);
    let g3 = env.put_spec("shop/web", &web("shop", "web", "2.0.1")).await;
    env.wait_synced("shop/web", g3).await;
    let job = env.job("shop", "web").await.unwrap();
    assert_eq!(
        (job.view.version, image(&job)),
        (3, "registry.example/web:2.0.1".to_owned())
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deployment_without_auto_revert_is_degraded() {
    let mut env = Env::start().await;
    env.operator("a").await;
    env.sim.faults().set_job_failing("shop", "api", true);
    let g = env
        .put_spec(
            "shop/api",
            &spec(
                "shop",
                "api",
                "image: registry.example/api:1.0\nport: 9090\nupdate: {autoRevert: false}\n",
            ),
        )
        .await;
    let s = env.wait_phase("shop/api", Phase::Degraded, g).await;
    let degraded = s.condition("Degraded").unwrap();
    assert_eq!(degraded.reason, "DeploymentFailed", "{degraded:?}");
    assert_eq!(
        s.condition("Available").unwrap().status,
        ConditionStatus::False
    );
    env.settle(Duration::from_millis(500)).await;
    assert_eq!(
        env.job("shop", "api").await.unwrap().view.version,
        0,
        "no retry loop"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_count_follows_the_scaling_window() {
    let mut env = Env::start().await;
    env.operator("a").await;
    // A window that opens at the next minute boundary (at most ~70 s away).
    let mut now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    if now.second() > 50 {
        tokio::time::sleep(Duration::from_secs(
            u64::try_from(61 - now.second()).unwrap(),
        ))
        .await;
        now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    }
    let start = now.checked_add(jiff::Span::new().minutes(1)).unwrap();
    let end = now.checked_add(jiff::Span::new().minutes(2)).unwrap();
    let hhmm = |z: &jiff::ZonedDateTime| format!("{:02}:{:02}", z.hour(), z.minute());
    let body = format!(
        "image: registry.example/cache:1.0\nreplicas: 1\nport: 6379\nscaling:\n  timeZone: UTC\n  windows:\n    - {{days: daily, from: \"{}\", to: \"{}\", replicas: 3}}\n",
        hhmm(&start),
        hhmm(&end)
    );
    let g = env
        .put_spec("shop/cache", &spec("shop", "cache", &body))
        .await;
    let s = env.wait_synced("shop/cache", g).await;
    assert_eq!(s.replicas, Some(1));
    let boundary = s.next_scaling_change.unwrap();
    assert_eq!(
        boundary.as_second() % 60,
        0,
        "a minute boundary: {boundary}"
    );
    assert_eq!(
        env.job("shop", "cache").await.unwrap().raw["TaskGroups"][0]["Count"],
        1
    );

    // At the boundary the requeue fires and the count follows, without a spec change.
    wait_for("the window to open", Duration::from_secs(80), || async {
        let job = env.job("shop", "cache").await.unwrap();
        let count = job.raw["TaskGroups"][0]["Count"].clone();
        if count == 3 {
            Ok(())
        } else {
            Err(format!("count {count}"))
        }
    })
    .await;
    assert!(
        jiff::Timestamp::now() >= boundary,
        "not before the boundary"
    );
    let s = env
        .wait_status("shop/cache", "Synced with 3 replicas", |s| {
            s.phase == Phase::Synced && s.replicas == Some(3)
        })
        .await;
    assert_eq!(s.observed_generation, g, "no spec change was needed");
    assert!(
        s.next_scaling_change.unwrap() > boundary,
        "the next boundary is the window's end"
    );
    assert!(
        s.events.iter().any(|e| e.reason == "Scaled"),
        "{:?}",
        s.events
    );
    env.finish().await;
}
