//! Consul blocking queries (reference §2.5, §8.1–§8.3, §9 "Consul KV").
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use steward_sim::Product;

/// Starts a blocking GET in the background.
fn spawn_get(c: &Consul, path: String) -> tokio::task::JoinHandle<(Resp, Duration)> {
    let c = c.clone();
    tokio::spawn(async move {
        let t = Instant::now();
        let r = c.get(&path).await;
        (r, t.elapsed())
    })
}

mod s2_5_blocking_rules {
    use super::*;

    #[tokio::test]
    async fn a_timeout_returns_the_same_index_and_the_unchanged_result() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/order-api/spec", "v").await;
        let first = c.get("/v1/kv/steward/trading/order-api/spec").await;
        let idx = first.index();
        let t = Instant::now();
        let r = bounded(
            5,
            c.get(&format!(
                "/v1/kv/steward/trading/order-api/spec?index={idx}&wait=300ms"
            )),
        )
        .await;
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!(r.status, 200);
        assert_eq!(r.index(), idx);
        assert_eq!(r.json(), first.json());
        let (_, want) = fixture("kv-get-blocking-timeout");
        assert_shape(&r.json(), &want["body"], "");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn index_zero_never_blocks_and_indexes_are_at_least_one() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let t = Instant::now();
        for path in [
            "/v1/kv/nothing?index=0&wait=5s",
            "/v1/session/list?index=0&wait=5s",
            "/v1/config/service-defaults?index=0&wait=5s",
            "/v1/kv/nothing?recurse&index=0&wait=5s",
        ] {
            let r = c.get(path).await;
            assert!(r.index() >= 1, "{path}");
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_write_wakes_a_waiter_early() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/k", "1").await;
        let idx = c.get("/v1/kv/steward/k").await.index();
        let h = spawn_get(&c, format!("/v1/kv/steward/k?index={idx}&wait=10s"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.put("/v1/kv/steward/k", "2").await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took < Duration::from_secs(5));
        assert!(r.index() > idx);
        assert_eq!(r.json()[0]["Value"], json!(b64("2")));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_prefix_watch_wakes_on_any_change_under_the_prefix_including_deletes() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/specs/a/x", "1").await;
        c.put("/v1/kv/steward/specs/b/y", "1").await;
        let idx = c.get("/v1/kv/steward/specs/?recurse").await.index();
        // A write elsewhere does not end the wait.
        let h = spawn_get(
            &c,
            format!("/v1/kv/steward/specs/?recurse&index={idx}&wait=400ms"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put("/v1/kv/steward/status/a/x", "1").await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took >= Duration::from_millis(400));
        assert_eq!(r.index(), idx);
        // A delete under the prefix does.
        let h = spawn_get(
            &c,
            format!("/v1/kv/steward/specs/?recurse&index={idx}&wait=10s"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.delete("/v1/kv/steward/specs/b/y").await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took < Duration::from_secs(5));
        assert!(r.index() > idx);
        assert_eq!(r.json().as_array().unwrap().len(), 1);
        // Keys listings wake too.
        let idx = r.index();
        let h = spawn_get(
            &c,
            format!("/v1/kv/steward/specs/?keys&separator=/&index={idx}&wait=10s"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put("/v1/kv/steward/specs/c/z", "1").await;
        let (r, _) = bounded(5, h).await.unwrap();
        assert_eq!(r.json(), json!(["steward/specs/a/", "steward/specs/c/"]));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_identical_write_does_not_wake_the_waiter() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/same", "v").await;
        let idx = c.get("/v1/kv/steward/same").await.index();
        let h = spawn_get(&c, format!("/v1/kv/steward/same?index={idx}&wait=400ms"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put("/v1/kv/steward/same", "v").await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert_eq!(r.index(), idx);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_blocking_read_on_a_missing_key_carries_the_index_and_wakes_on_creation() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/order-api/spec", "v").await;
        let miss = c
            .get("/v1/kv/steward/trading/order-api/does-not-exist")
            .await;
        assert_eq!(miss.status, 404);
        let idx = miss.index();
        let r = c
            .get(&format!(
                "/v1/kv/steward/trading/order-api/does-not-exist?index={idx}&wait=200ms"
            ))
            .await;
        let (_, want) = fixture("kv-get-blocking-missing-timeout");
        assert_eq!(r.status, want["status"]);
        assert_eq!(r.index(), idx);
        assert!(r.body.is_empty());
        let h = spawn_get(
            &c,
            format!("/v1/kv/steward/trading/order-api/does-not-exist?index={idx}&wait=10s"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put("/v1/kv/steward/trading/order-api/does-not-exist", "now")
            .await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took < Duration::from_secs(5));
        assert_eq!(r.status, 200);
        sim.shutdown().await;
    }
}

mod s8_2_indexes_go_backwards {
    use super::*;

    #[tokio::test]
    async fn an_index_reset_wakes_watchers_with_a_lower_index() {
        let sim = start().await;
        let c = Consul::new(&sim);
        for i in 0..20 {
            c.put(&format!("/v1/kv/steward/specs/n/{i}"), &i.to_string())
                .await;
        }
        let before = c.get("/v1/kv/steward/specs/?recurse").await.index();
        let h = spawn_get(
            &c,
            format!("/v1/kv/steward/specs/?recurse&index={before}&wait=10s"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(sim.faults().reset_indexes(Product::Consul));
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took < Duration::from_secs(5));
        assert!(r.index() < before, "{} !< {before}", r.index());
        // Relative order of per-key indexes is kept.
        let entries = r.json();
        let idx = |k: &str| {
            entries
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["Key"] == k)
                .unwrap()["ModifyIndex"]
                .as_u64()
                .unwrap()
        };
        assert!(idx("steward/specs/n/1") < idx("steward/specs/n/19"));
        // New writes continue from the lowered clock.
        c.put("/v1/kv/steward/specs/n/new", "x").await;
        assert!(c.get("/v1/kv/steward/specs/n/new").await.index() < before + 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn reaping_the_tombstone_of_the_highest_key_lowers_a_prefix_index() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/p/a", "1").await;
        c.put("/v1/kv/steward/p/b", "1").await;
        c.delete("/v1/kv/steward/p/b").await;
        let with_tomb = c.get("/v1/kv/steward/p/?recurse").await.index();
        assert!(sim.consul_reap_tombstones() >= 1);
        let after = c.get("/v1/kv/steward/p/?recurse").await.index();
        assert!(after < with_tomb);
        sim.shutdown().await;
    }
}

mod s2_5_other_reads_block_too {
    use super::*;

    #[tokio::test]
    async fn session_list_config_list_and_health_wake_on_their_changes() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let idx = c.get("/v1/session/list").await.index();
        let h = spawn_get(&c, format!("/v1/session/list?index={idx}&wait=10s"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put("/v1/session/create", "{\"TTL\":\"30s\"}").await;
        let (r, took) = bounded(5, h).await.unwrap();
        assert!(took < Duration::from_secs(5));
        assert_eq!(r.json().as_array().unwrap().len(), 1);

        let idx = c.get("/v1/config/service-defaults").await.index();
        let h = spawn_get(
            &c,
            format!("/v1/config/service-defaults?index={idx}&wait=10s"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Another kind does not wake a list watch of this kind.
        c.put_json(
            "/v1/config",
            &json!({"Kind": "service-intentions", "Name": "x",
            "Sources": [{"Name": "y", "Action": "allow"}]}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!h.is_finished());
        c.put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        )
        .await;
        let (r, _) = bounded(5, h).await.unwrap();
        assert_eq!(r.json()[0]["Name"], "web");

        let idx = c.get("/v1/health/service/web").await.index();
        let h = spawn_get(&c, format!("/v1/health/service/web?index={idx}&wait=10s"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.put_json(
            "/v1/agent/service/register",
            &json!({"ID": "web-1", "Name": "web", "Port": 8080, "Address": "127.0.0.1"}),
        )
        .await;
        let (r, _) = bounded(5, h).await.unwrap();
        assert_eq!(r.json().as_array().unwrap().len(), 1);
        assert!(r.index() > idx);
        sim.shutdown().await;
    }
}
