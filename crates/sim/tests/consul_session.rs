//! Consul sessions and locks (reference §1.5, §3, §8.7, §9 "Consul sessions and locks").
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};
use std::time::Duration;
use steward_sim::consul::CheckStatus;

async fn create(c: &Consul, body: Value) -> String {
    let r = c.put_json("/v1/session/create", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["ID"].as_str().unwrap().to_string()
}

/// A simulator whose node is called `vm` like the fixtures', with short TTLs allowed.
async fn start_vm() -> steward_sim::SimHandle {
    start_with(|c| {
        c.consul.node_name = "vm".into();
        c.consul.session_ttl_min = Duration::from_millis(100);
    })
    .await
}

mod s3_2_create_and_read {
    use super::*;

    #[tokio::test]
    async fn the_fixture_sessions_read_back_in_the_real_shape() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "session-create").await;
        assert_eq!(r.status, 200);
        assert_shape(&r.json(), &want["body"], "");
        let id = r.json()["ID"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 36);
        let (r2, _) = replay(&c, "session-create-second").await;
        let id2 = r2.json()["ID"].as_str().unwrap().to_string();

        let info = c.get(&format!("/v1/session/info/{id}")).await;
        let (_, want) = fixture("session-info");
        assert_eq!(info.status, 200);
        assert_shape(&info.json(), &want["body"], "");
        assert_eq!(scrub(&info.json()), scrub(&want["body"]));
        assert!(info.index() >= 1);

        let list = c.get("/v1/session/list").await;
        let (_, want) = fixture("session-list");
        let mut got = list.json().as_array().unwrap().clone();
        got.sort_by_key(|s| s["Name"].as_str().unwrap().to_string());
        assert_eq!(scrub(&Value::Array(got)), scrub(&want["body"]));

        let node = c.get("/v1/session/node/vm").await.json();
        assert_eq!(node.as_array().unwrap().len(), 2);
        assert_eq!(c.get("/v1/session/node/other").await.json(), json!([]));

        let renew = c.put(&format!("/v1/session/renew/{id}"), "").await;
        let (_, want) = fixture("session-renew");
        assert_eq!(renew.status, 200);
        assert_eq!(scrub(&renew.json()), scrub(&want["body"]));

        let d = c.put(&format!("/v1/session/destroy/{id2}"), "").await;
        assert_eq!(d.json(), json!(true));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn defaults_and_lock_delay_parsing_follow_consul() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let info = |id: String| {
            let c = c.clone();
            async move { c.get(&format!("/v1/session/info/{id}")).await.json()[0].clone() }
        };
        let s = info(create(&c, json!({})).await).await;
        assert_eq!(s["LockDelay"], json!(15_000_000_000u64));
        assert_eq!(s["Behavior"], "release");
        assert_eq!(s["TTL"], "");
        assert_eq!(s["Node"], "vm");
        assert_eq!(s["NodeChecks"], json!(["serfHealth"]));
        // A bare number below 1000 is seconds; larger numbers are nanoseconds.
        let s = info(create(&c, json!({"LockDelay": 5})).await).await;
        assert_eq!(s["LockDelay"], json!(5_000_000_000u64));
        let s = info(create(&c, json!({"LockDelay": 2_000_000_000u64})).await).await;
        assert_eq!(s["LockDelay"], json!(2_000_000_000u64));
        let s = info(create(&c, json!({"LockDelay": "0s"})).await).await;
        assert_eq!(s["LockDelay"], 0);
        // Empty check lists make a TTL-only session.
        let s = info(create(&c, json!({"NodeChecks": [], "TTL": "30s"})).await).await;
        assert_eq!(s["NodeChecks"], json!([]));
        let s = info(create(&c, json!({"Checks": []})).await).await;
        assert_eq!(s["NodeChecks"], json!([]));
        // Field names match case-insensitively, as Go's decoder does.
        let s = info(create(&c, json!({"name": "lower", "ttl": "15s"})).await).await;
        assert_eq!(
            (s["Name"].clone(), s["TTL"].clone()),
            (json!("lower"), json!("15s"))
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn invalid_sessions_are_refused_with_the_servers_messages() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .put_json("/v1/session/create", &json!({"TTL": "5s"}))
            .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"
        );
        let r = c
            .put_json("/v1/session/create", &json!({"TTL": "25h"}))
            .await;
        assert_eq!(r.status, 500);
        assert!(r.text().starts_with("Invalid Session TTL '90000000000000'"));
        let r = c
            .put_json("/v1/session/create", &json!({"TTL": "abc"}))
            .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (
                500,
                "Session TTL 'abc' invalid: time: invalid duration \"abc\""
            )
        );
        let r = c
            .put_json("/v1/session/create", &json!({"Behavior": "explode"}))
            .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Invalid Behavior setting 'explode'")
        );
        let r = c
            .put_json("/v1/session/create", &json!({"Node": "ghost"}))
            .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Missing node registration")
        );
        let r = c
            .put_json("/v1/session/create", &json!({"LockDelay": "soon"}))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.text().starts_with("Request decode failed: "));
        let r = c
            .put_json("/v1/session/create", &json!({"NodeChecks": ["nope"]}))
            .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Missing check 'nope' registration")
        );
        sim.shutdown().await;
    }
}

mod s3_1_unknown_sessions {
    use super::*;

    #[tokio::test]
    async fn info_is_empty_renew_is_404_and_destroy_is_true() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "session-info-unknown").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        assert!(r.index() >= 1);
        let (r, want) = replay(&c, "session-renew-unknown").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), want["body"].as_str().unwrap());
        let (r, want) = replay(&c, "session-destroy").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        sim.shutdown().await;
    }
}

mod s2_3_locks {
    use super::*;

    #[tokio::test]
    async fn acquire_release_and_lock_index_follow_the_fixtures() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let s1 = create(&c, json!({"Name": "steward-leader", "TTL": "30s"})).await;
        let s2 = create(&c, json!({"Name": "steward-standby", "TTL": "30s"})).await;
        let r = c
            .put(&format!("/v1/kv/steward/leader?acquire={s1}"), "steward-0")
            .await;
        assert_eq!(r.json(), json!(true));
        let got = c.get("/v1/kv/steward/leader").await;
        let (_, want) = fixture("kv-get-locked");
        assert_shape(&got.json(), &want["body"], "");
        assert_eq!(got.json()[0]["LockIndex"], 1);
        assert_eq!(got.json()[0]["Session"], json!(s1));
        // The holder may acquire again: LockIndex unchanged, value updated.
        c.put(&format!("/v1/kv/steward/leader?acquire={s1}"), "steward-0b")
            .await;
        let e = c.get("/v1/kv/steward/leader").await.json();
        assert_eq!(
            (e[0]["LockIndex"].clone(), e[0]["Value"].clone()),
            (json!(1), json!(b64("steward-0b")))
        );
        // Another session neither acquires nor releases.
        let r = c
            .put(&format!("/v1/kv/steward/leader?acquire={s2}"), "steward-1")
            .await;
        assert_eq!(r.json(), json!(false));
        let r = c
            .put(&format!("/v1/kv/steward/leader?release={s2}"), "x")
            .await;
        assert_eq!(r.json(), json!(false));
        // The holder releases: Session gone, LockIndex kept.
        let r = c
            .put(&format!("/v1/kv/steward/leader?release={s1}"), "steward-0")
            .await;
        assert_eq!(r.json(), json!(true));
        let e = c.get("/v1/kv/steward/leader").await.json();
        assert!(e[0].get("Session").is_none());
        assert_eq!(e[0]["LockIndex"], 1);
        // A fresh acquisition increments LockIndex.
        c.put(&format!("/v1/kv/steward/leader?acquire={s2}"), "steward-1")
            .await;
        assert_eq!(
            c.get("/v1/kv/steward/leader").await.json()[0]["LockIndex"],
            2
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn acquiring_with_an_unknown_session_is_a_500() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .put(
                "/v1/kv/steward/leader?acquire=5a1c2b3d-0000-4000-8000-000000000001",
                "x",
            )
            .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "invalid session \"5a1c2b3d-0000-4000-8000-000000000001\""
        );
        let r = c.put("/v1/kv/steward/leader?acquire=", "x").await;
        assert_eq!((r.status, r.text().as_str()), (500, "missing session"));
        sim.shutdown().await;
    }
}

mod s3_3_invalidation_and_lock_delay {
    use super::*;

    #[tokio::test]
    async fn after_destroy_nobody_acquires_until_the_lock_delay_ends() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let s1 = create(&c, json!({"TTL": "30s", "LockDelay": "400ms"})).await;
        let s2 = create(&c, json!({"TTL": "30s"})).await;
        c.put(&format!("/v1/kv/steward/leader?acquire={s1}"), "a")
            .await;
        let before = c.get("/v1/kv/steward/leader").await.index();
        assert_eq!(
            c.put(&format!("/v1/session/destroy/{s1}"), "").await.json(),
            json!(true)
        );
        // The key was released: Session gone, ModifyIndex bumped.
        let e = c.get("/v1/kv/steward/leader").await;
        assert!(e.json()[0].get("Session").is_none());
        assert!(e.index() > before);
        let r = c
            .put(&format!("/v1/kv/steward/leader?acquire={s2}"), "b")
            .await;
        assert_eq!(r.json(), json!(false));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = c
            .put(&format!("/v1/kv/steward/leader?acquire={s2}"), "b")
            .await;
        assert_eq!(r.json(), json!(true));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn ttl_expiry_happens_between_ttl_and_twice_ttl_and_releases_held_keys() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let id = create(
            &c,
            json!({"TTL": "300ms", "LockDelay": "0s", "NodeChecks": []}),
        )
        .await;
        c.put(&format!("/v1/kv/steward/leader?acquire={id}"), "a")
            .await;
        let idx = c.get("/v1/kv/steward/leader").await.index();
        // Still alive after TTL (the server waits up to 2 × TTL).
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            c.get(&format!("/v1/session/info/{id}"))
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A watcher on the lock key is woken by the release.
        let r = bounded(
            5,
            c.get(&format!("/v1/kv/steward/leader?index={idx}&wait=5s")),
        )
        .await;
        assert!(r.json()[0].get("Session").is_none());
        assert!(r.index() > idx);
        assert_eq!(
            c.get(&format!("/v1/session/info/{id}")).await.json(),
            json!([])
        );
        let renew = c.put(&format!("/v1/session/renew/{id}"), "").await;
        assert_eq!(renew.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn renewing_restarts_the_timer() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let id = create(&c, json!({"TTL": "300ms", "NodeChecks": []})).await;
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let r = c.put(&format!("/v1/session/renew/{id}"), "").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.json()[0]["TTL"], "300ms");
        }
        assert_eq!(
            c.get(&format!("/v1/session/info/{id}"))
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn behavior_delete_removes_held_keys() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let id = create(
            &c,
            json!({"TTL": "30s", "Behavior": "delete", "LockDelay": "0s"}),
        )
        .await;
        c.put(&format!("/v1/kv/steward/lock?acquire={id}"), "x")
            .await;
        assert!(sim.consul_expire_session(&id));
        assert_eq!(c.get("/v1/kv/steward/lock").await.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_critical_node_check_invalidates_its_sessions() {
        let sim = start_vm().await;
        let c = Consul::new(&sim);
        let linked = create(&c, json!({"TTL": "30s"})).await;
        let ttl_only = create(&c, json!({"TTL": "30s", "NodeChecks": []})).await;
        c.put(&format!("/v1/kv/steward/leader?acquire={linked}"), "x")
            .await;
        assert!(sim.consul_set_check_status(
            "serfHealth",
            CheckStatus::Critical,
            "agent unreachable"
        ));
        assert_eq!(
            c.get(&format!("/v1/session/info/{linked}")).await.json(),
            json!([])
        );
        assert_eq!(
            c.get(&format!("/v1/session/info/{ttl_only}"))
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            c.get("/v1/kv/steward/leader").await.json()[0]
                .get("Session")
                .is_none()
        );
        // New sessions tied to a critical check are refused.
        let r = c.put_json("/v1/session/create", &json!({})).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Check 'serfHealth' is in critical state")
        );
        sim.shutdown().await;
    }
}
