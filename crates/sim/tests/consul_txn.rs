//! Consul transactions (reference §2.7, §8.4, §9 "Consul txn").
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};

fn kv(verb: &str, key: &str) -> Value {
    json!({"KV": {"Verb": verb, "Key": key}})
}

async fn index_of(c: &Consul, key: &str) -> u64 {
    c.get(&format!("/v1/kv/{key}")).await.json()[0]["ModifyIndex"]
        .as_u64()
        .unwrap()
}

mod s2_7_results_and_errors {
    use super::*;

    #[tokio::test]
    async fn a_successful_txn_matches_the_fixture_shape() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/order-api/spec", "v1").await;
        c.put("/v1/kv/steward/trading/order-api/status", "deployed")
            .await;
        c.put("/v1/kv/steward/trading/order-api/owner", "team-trading")
            .await;
        let (req, want) = fixture("txn-success");
        let mut body = req["body"].clone();
        body[0]["KV"]["Index"] = json!(index_of(&c, "steward/trading/order-api/spec").await);
        let r = c.put_json("/v1/txn", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.content_type().as_deref(), Some("application/json"));
        assert_shape(&r.json(), &want["body"], "");
        let results = r.json()["Results"].clone();
        assert_eq!(results[0]["KV"]["Value"], Value::Null);
        assert_eq!(results[1]["KV"]["Value"], Value::Null);
        assert_eq!(results[2]["KV"]["Value"], json!(b64("team-trading")));
        assert_eq!(r.json()["Errors"], Value::Null);
        // Both writes got the same index.
        assert_eq!(
            results[0]["KV"]["ModifyIndex"],
            results[1]["KV"]["ModifyIndex"]
        );
        assert_eq!(
            c.get("/v1/kv/steward/trading/order-api/status?raw")
                .await
                .text(),
            "rolling"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_conflict_is_409_with_every_error_and_nothing_applied() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/order-api/spec", "v1").await;
        c.put("/v1/kv/steward/trading/order-api/owner", "team")
            .await;
        let owner_idx = index_of(&c, "steward/trading/order-api/owner").await;
        let (req, want) = fixture("txn-conflict");
        let r = c.put_json("/v1/txn", &req["body"]).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.content_type().as_deref(), Some("application/json"));
        assert_shape(&r.json(), &want["body"], "");
        assert_eq!(r.json()["Results"], Value::Null);
        assert_eq!(
            r.json()["Errors"],
            json!([
                {"OpIndex": 0, "What": "failed to set key \"steward/trading/order-api/spec\", index is stale"},
                {"OpIndex": 1, "What": format!("failed index check for key \"steward/trading/order-api/owner\", current modify index {owner_idx} != 1")},
            ])
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn transactions_are_all_or_nothing() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let clock = sim.consul_index();
        let r = c
            .put_json(
                "/v1/txn",
                &json!([
                    {"KV": {"Verb": "set", "Key": "steward/a", "Value": b64("1")}},
                    {"KV": {"Verb": "delete-tree", "Key": "steward/"}},
                    {"KV": {"Verb": "cas", "Key": "steward/b", "Value": b64("2"), "Index": 77}},
                ]),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.json()["Errors"][0]["OpIndex"], 2);
        assert_eq!(c.get("/v1/kv/steward/a").await.status, 404);
        assert_eq!(sim.consul_index(), clock);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn sixty_five_operations_are_413_and_bad_base64_is_400() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let ops: Vec<Value> = (0..64)
            .map(|i| kv("get-or-empty", &format!("k{i}")))
            .collect();
        assert_eq!(c.put_json("/v1/txn", &json!(ops)).await.status, 200);
        let ops: Vec<Value> = (0..65)
            .map(|i| kv("get-or-empty", &format!("k{i}")))
            .collect();
        let r = c.put_json("/v1/txn", &json!(ops)).await;
        assert_eq!(r.status, 413);
        assert_eq!(
            r.text(),
            "Transaction contains too many operations (65 > 64)"
        );
        let r = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "set", "Key": "k", "Value": "not base64!"}}]),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.content_type().unwrap().starts_with("text/plain"));
        assert_eq!(
            r.text(),
            "Failed to parse body: illegal base64 data at input byte 3"
        );
        let r = c.put("/v1/txn", "{").await;
        assert_eq!(r.status, 400);
        assert!(r.text().starts_with("Failed to parse body: "));
        let big = "x".repeat(600 * 1024);
        let r = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "set", "Key": "k", "Value": b64(&big)}}]),
            )
            .await;
        assert_eq!(r.status, 413);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn read_only_transactions_carry_query_meta_in_the_body() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/t/a", "1").await;
        c.put("/v1/kv/steward/t/b", "2").await;
        let r = c
            .put_json(
                "/v1/txn?stale",
                &json!([
                    kv("get-tree", "steward/t/"),
                    kv("get-or-empty", "steward/none"),
                    kv("check-not-exists", "steward/none")
                ]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        for k in ["Index", "LastContact", "KnownLeader"] {
            assert!(b.get(k).is_some(), "{k} missing from {b}");
        }
        assert_eq!(b["KnownLeader"], json!(true));
        assert_eq!(r.header("x-consul-knownleader").as_deref(), Some("true"));
        assert_eq!(r.header("x-consul-lastcontact").as_deref(), Some("0"));
        let results = b["Results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["KV"]["Value"], json!(b64("1")));
        assert_eq!(results[2]["KV"]["Key"], "steward/none");
        assert_eq!(results[2]["KV"]["Value"], Value::Null);
        let r = c
            .put_json(
                "/v1/txn?stale&consistent",
                &json!([kv("get-or-empty", "x")]),
            )
            .await;
        assert_eq!(r.status, 400);
        // A write transaction has no query meta.
        let w = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "set", "Key": "steward/w", "Value": b64("x")}}]),
            )
            .await;
        assert!(w.json().get("Index").is_none());
        sim.shutdown().await;
    }
}

mod s2_7_verbs {
    use super::*;

    #[tokio::test]
    async fn every_kv_verb_behaves_like_consul() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let sid = c
            .put("/v1/session/create", "{\"TTL\":\"30s\"}")
            .await
            .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let ok = |r: &Resp| assert_eq!(r.status, 200, "{}", r.text());
        let r = c.put_json("/v1/txn", &json!([
            {"KV": {"Verb": "lock", "Key": "steward/leader", "Value": b64("me"), "Session": sid}},
            {"KV": {"Verb": "check-session", "Key": "steward/leader", "Session": sid}},
            {"KV": {"Verb": "set", "Key": "steward/status/x", "Value": b64("ok"), "Flags": 9}},
        ])).await;
        ok(&r);
        assert_eq!(r.json()["Results"][0]["KV"]["Session"], json!(sid));
        assert_eq!(r.json()["Results"][0]["KV"]["LockIndex"], 1);
        let idx = index_of(&c, "steward/status/x").await;
        let r = c
            .put_json(
                "/v1/txn",
                &json!([
                    {"KV": {"Verb": "check-index", "Key": "steward/status/x", "Index": idx}},
                    {"KV": {"Verb": "delete-cas", "Key": "steward/status/x", "Index": idx}},
                    {"KV": {"Verb": "check-not-exists", "Key": "steward/status/x"}},
                    {"KV": {"Verb": "unlock", "Key": "steward/leader", "Session": sid}},
                ]),
            )
            .await;
        ok(&r);
        assert_eq!(r.json()["Results"].as_array().unwrap().len(), 2);
        let errs = |r: &Resp| r.json()["Errors"][0]["What"].as_str().unwrap().to_string();
        let r = c
            .put_json("/v1/txn", &json!([kv("get", "steward/none")]))
            .await;
        assert_eq!(
            (r.status, errs(&r)),
            (409, "key \"steward/none\" doesn't exist".into())
        );
        let r = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "delete-cas", "Key": "steward/leader", "Index": 1}}]),
            )
            .await;
        assert_eq!(
            errs(&r),
            "failed to delete key \"steward/leader\", index is stale"
        );
        let r = c.put_json("/v1/txn", &json!([{"KV": {"Verb": "check-session", "Key": "steward/leader", "Session": sid}}])).await;
        assert_eq!(
            errs(&r),
            format!(
                "failed session check for key \"steward/leader\", current session \"\" != \"{sid}\""
            )
        );
        let r = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "unlock", "Key": "steward/leader", "Session": sid}}]),
            )
            .await;
        assert_eq!(
            errs(&r),
            "failed to unlock key \"steward/leader\", lock isn't held, or is held by another session"
        );
        let r = c
            .put_json(
                "/v1/txn",
                &json!([kv("check-not-exists", "steward/leader")]),
            )
            .await;
        assert_eq!(errs(&r), "key \"steward/leader\" exists");
        let r = c
            .put_json("/v1/txn", &json!([kv("frobnicate", "steward/leader")]))
            .await;
        assert_eq!(errs(&r), "unknown KV verb \"frobnicate\"");
        let r = c.put_json("/v1/txn", &json!([{"KV": {"Verb": "lock", "Key": "steward/l2", "Session": "00000000-0000-0000-0000-00000000dead"}}])).await;
        assert_eq!(
            errs(&r),
            "invalid session \"00000000-0000-0000-0000-00000000dead\""
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_fenced_status_write_fails_once_leadership_is_lost() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let sid = c
            .put(
                "/v1/session/create",
                "{\"TTL\":\"30s\",\"LockDelay\":\"0s\"}",
            )
            .await
            .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        c.put(&format!("/v1/kv/steward/leader?acquire={sid}"), "me")
            .await;
        let fenced = json!([
            {"KV": {"Verb": "check-session", "Key": "steward/leader", "Session": sid}},
            {"KV": {"Verb": "set", "Key": "steward/status/trading/web", "Value": b64("{}")}},
        ]);
        assert_eq!(c.put_json("/v1/txn", &fenced).await.status, 200);
        sim.consul_expire_session(&sid);
        let r = c.put_json("/v1/txn", &fenced).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.json()["Errors"][0]["OpIndex"], 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_lock_under_lock_delay_fails_the_transaction() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let s1 = c
            .put("/v1/session/create", "{\"LockDelay\":\"10s\"}")
            .await
            .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let s2 = c.put("/v1/session/create", "{}").await.json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        c.put(&format!("/v1/kv/steward/leader?acquire={s1}"), "a")
            .await;
        c.put(&format!("/v1/session/destroy/{s1}"), "").await;
        let r = c
            .put_json(
                "/v1/txn",
                &json!([{"KV": {"Verb": "lock", "Key": "steward/leader", "Session": s2}}]),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(
            r.json()["Errors"][0]["What"],
            "failed to lock key \"steward/leader\" due to lock delay"
        );
        sim.shutdown().await;
    }
}
