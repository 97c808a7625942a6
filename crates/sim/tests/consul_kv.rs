//! Consul KV conformance (reference §1.3, §2.1–§2.4, §2.6, §8.3–§8.6, §8.16, §9).
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};

mod s1_3_errors_and_headers {
    use super::*;

    #[tokio::test]
    async fn success_is_json_errors_are_plain_text_and_every_answer_names_the_acl_policy() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let ok = c.put("/v1/kv/steward/x", "v").await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.content_type().as_deref(), Some("application/json"));
        assert_eq!(ok.text(), "true");
        assert_eq!(
            ok.header("x-consul-default-acl-policy").as_deref(),
            Some("allow")
        );
        // Writes return no index.
        assert!(ok.header("x-consul-index").is_none());
        let bad = c.get("/v1/kv/steward/x?wait=10").await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.text(), "Invalid wait time");
        assert!(bad.content_type().unwrap().starts_with("text/plain"));
        let bad = c.get("/v1/kv/steward/x?index=abc").await;
        assert_eq!((bad.status, bad.text().as_str()), (400, "Invalid index"));
        // `?pretty` indents like Go's MarshalIndent and ends with a newline.
        let pretty = c.get("/v1/kv/steward/x?pretty").await;
        assert!(
            pretty.text().starts_with("[\n    {\n        \"LockIndex\""),
            "{}",
            pretty.text()
        );
        assert!(pretty.text().ends_with("]\n"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn another_datacenter_has_no_path() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c.get("/v1/kv/steward/x?dc=dc9").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "No path to datacenter")
        );
        let r = c.put("/v1/kv/steward/x?dc=dc9", "v").await;
        assert_eq!(r.status, 500);
        let r = c.get("/v1/kv/steward/x?dc=dc1").await;
        assert_eq!(r.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn unsupported_methods_get_405() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .call("POST", "/v1/kv/steward/x", Some(b"v".to_vec()))
            .await;
        assert_eq!(r.status, 405);
        assert_eq!(r.text(), "method POST not allowed");
        sim.shutdown().await;
    }
}

mod s2_2_entry_json {
    use super::*;

    /// Recursive reads are written straight from the entries; they must be what
    /// serialising the entries' JSON gives (`?pretty` still builds the JSON).
    #[tokio::test]
    async fn recursive_reads_match_the_entries_json() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/r/a?flags=7", "one").await;
        c.put("/v1/kv/r/b", "").await;
        c.put("/v1/kv/r/c/d", "x\"y\\z").await;
        c.put("/v1/kv/s", "outside").await;
        let fast = c.get("/v1/kv/r/?recurse").await;
        let slow = c.get("/v1/kv/r/?recurse&pretty").await;
        let slow_json: Value = serde_json::from_str(&slow.text()).unwrap();
        assert_eq!(fast.text(), serde_json::to_string(&slow_json).unwrap());
        assert_eq!(fast.index(), slow.index());
        let list = fast.json();
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert_eq!(list[1]["Value"], Value::Null);
        assert_eq!(list[0]["Flags"], 7);
        let none = c.get("/v1/kv/nothing/?recurse").await;
        assert_eq!(none.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn fixture_put_then_get_has_the_real_shape_and_the_keys_own_index() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (put, want) = replay(&c, "kv-put").await;
        assert_eq!(put.status, want["status"]);
        assert_eq!(put.json(), want["body"]);
        let (got, want) = replay(&c, "kv-get").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.content_type().as_deref(), Some("application/json"));
        assert_shape(&got.json(), &want["body"], "");
        assert_eq!(scrub(&got.json()), scrub(&want["body"]));
        let entry = &got.json()[0];
        assert_eq!(got.index(), entry["ModifyIndex"].as_u64().unwrap());
        assert_eq!(got.header("x-consul-knownleader").as_deref(), Some("true"));
        assert_eq!(got.header("x-consul-lastcontact").as_deref(), Some("0"));
        // A later write elsewhere does not change this key's index.
        c.put("/v1/kv/steward/other", "x").await;
        let again = c.get("/v1/kv/steward/trading/order-api/spec").await;
        assert_eq!(again.index(), entry["ModifyIndex"].as_u64().unwrap());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn empty_values_read_back_as_null_and_unlocked_keys_have_no_session() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/empty", "").await;
        let e = c.get("/v1/kv/steward/empty").await.json();
        assert_eq!(e[0]["Value"], Value::Null);
        assert!(e[0].get("Session").is_none());
        assert_eq!(e[0]["LockIndex"], 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn flags_take_the_full_unsigned_64_bit_range() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .put("/v1/kv/steward/f?flags=18446744073709551615", "x")
            .await;
        assert_eq!(r.status, 200);
        let e = c.get("/v1/kv/steward/f").await.json();
        assert_eq!(e[0]["Flags"], json!(18446744073709551615u64));
        let r = c.put("/v1/kv/steward/f?flags=abc", "x").await;
        assert_eq!(r.status, 500);
        assert!(r.text().contains("strconv.ParseUint"), "{}", r.text());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_missing_key_is_an_empty_404_that_still_carries_the_index_headers() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/a", "1").await;
        let (r, want) = replay(&c, "kv-get-missing").await;
        assert_eq!(r.status, 404);
        assert!(r.body.is_empty());
        assert!(r.content_type().is_none());
        for h in [
            "x-consul-index",
            "x-consul-knownleader",
            "x-consul-lastcontact",
        ] {
            assert!(r.header(h).is_some(), "{h} missing");
        }
        assert_eq!(want["body_format"], "empty");
        assert!(r.index() >= 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn raw_returns_the_bytes_as_text_plain_without_metadata() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put(
            "/v1/kv/steward/trading/order-api/spec",
            "{\"generation\": 8, \"hash\": \"def456\"}",
        )
        .await;
        let (r, want) = replay(&c, "kv-get-raw").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type().as_deref(), Some("text/plain"));
        assert_eq!(r.text(), want["body"].as_str().unwrap());
        assert!(r.header("x-consul-index").is_some());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn recurse_is_sorted_and_reports_the_highest_index_including_deletions() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/order-api/spec", "s").await;
        c.put(
            "/v1/kv/steward/trading/order-api/status?flags=42",
            "deployed",
        )
        .await;
        c.put("/v1/kv/steward/trading/order-api/owner", "team")
            .await;
        let (r, want) = replay(&c, "kv-get-recurse").await;
        assert_eq!(r.status, 200);
        assert_shape(&r.json(), &want["body"], "");
        let keys: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Key"].as_str().unwrap().to_string())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let max = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ModifyIndex"].as_u64().unwrap())
            .max()
            .unwrap();
        assert_eq!(r.index(), max);
        // A deletion under the prefix raises the prefix index (tombstone).
        c.delete("/v1/kv/steward/trading/order-api/owner").await;
        let after = c.get("/v1/kv/steward/trading/order-api?recurse").await;
        assert!(after.index() > max);
        assert_eq!(after.json().as_array().unwrap().len(), 2);
        // Nothing under a prefix: 404 with the index headers.
        let none = c.get("/v1/kv/nothing/here?recurse").await;
        assert_eq!(none.status, 404);
        assert!(none.index() >= 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn keys_list_with_and_without_separator_match_the_fixtures() {
        let sim = start().await;
        let c = Consul::new(&sim);
        for k in ["canary/weight", "owner", "spec", "status"] {
            c.put(&format!("/v1/kv/steward/trading/order-api/{k}"), "x")
                .await;
        }
        let (r, want) = replay(&c, "kv-get-keys-no-separator").await;
        assert_eq!(r.json(), want["body"]);
        let (r, want) = replay(&c, "kv-get-keys-separator").await;
        assert_eq!(r.json(), want["body"]);
        // The historic misspelling is accepted.
        let r = c
            .get("/v1/kv/steward/trading/order-api/?keys&seperator=/")
            .await;
        assert_eq!(r.json(), want["body"]);
        // Empty non-root prefix: 404; root: [].
        let r = c.get("/v1/kv/nothing/?keys").await;
        assert_eq!(r.status, 404);
        assert!(r.body.is_empty());
        let sim2 = start().await;
        let r = Consul::new(&sim2).get("/v1/kv/?keys").await;
        assert_eq!((r.status, r.json()), (200, json!([])));
        sim2.shutdown().await;
        sim.shutdown().await;
    }
}

mod s2_3_write_semantics {
    use super::*;

    #[tokio::test]
    async fn cas_zero_creates_only_and_stale_cas_is_200_false() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c
            .put("/v1/kv/steward/trading/order-api/spec?cas=0", "first")
            .await;
        assert_eq!(r.json(), json!(true));
        let (r, want) = replay(&c, "kv-put-cas-zero-existing").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        let (r, want) = replay(&c, "kv-put-cas-failure").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        let idx = c.get("/v1/kv/steward/trading/order-api/spec").await.json()[0]["ModifyIndex"]
            .as_u64()
            .unwrap();
        let r = c
            .put(
                &format!("/v1/kv/steward/trading/order-api/spec?cas={idx}"),
                "second",
            )
            .await;
        assert_eq!(r.json(), json!(true));
        // cas=N on a missing key fails.
        let r = c.put("/v1/kv/steward/missing?cas=5", "x").await;
        assert_eq!(r.json(), json!(false));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn plain_put_resets_flags_unless_given_and_keeps_the_lock_holder() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/k?flags=7", "a").await;
        c.put("/v1/kv/steward/k", "b").await;
        assert_eq!(c.get("/v1/kv/steward/k").await.json()[0]["Flags"], 0);
        let id = c
            .put("/v1/session/create", "{\"TTL\":\"30s\"}")
            .await
            .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let r = c
            .put(&format!("/v1/kv/steward/lock?acquire={id}"), "me")
            .await;
        assert_eq!(r.json(), json!(true));
        let r = c.put("/v1/kv/steward/lock?flags=3", "someone else").await;
        assert_eq!(r.json(), json!(true));
        let e = c.get("/v1/kv/steward/lock").await.json();
        assert_eq!(e[0]["Session"], json!(id));
        assert_eq!(e[0]["Value"], json!(b64("someone else")));
        assert_eq!(e[0]["Flags"], 3);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn identical_writes_do_not_bump_the_index() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/same", "v").await;
        let before = c.get("/v1/kv/steward/same").await;
        let clock = sim.consul_index();
        c.put("/v1/kv/steward/same", "v").await;
        let after = c.get("/v1/kv/steward/same").await;
        assert_eq!(before.json(), after.json());
        assert_eq!(before.index(), after.index());
        assert_eq!(sim.consul_index(), clock);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn deletes_answer_true_and_cas_zero_never_deletes() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let (r, want) = replay(&c, "kv-delete").await;
        assert_eq!((r.status, r.json()), (200, want["body"].clone()));
        c.put("/v1/kv/steward/d", "x").await;
        let r = c.delete("/v1/kv/steward/d?cas=0").await;
        assert_eq!(r.json(), json!(false));
        let idx = c.get("/v1/kv/steward/d").await.json()[0]["ModifyIndex"]
            .as_u64()
            .unwrap();
        let r = c.delete(&format!("/v1/kv/steward/d?cas={}", idx + 1)).await;
        assert_eq!(r.json(), json!(false));
        let r = c.delete(&format!("/v1/kv/steward/d?cas={idx}")).await;
        assert_eq!(r.json(), json!(true));
        assert_eq!(c.get("/v1/kv/steward/d").await.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn delete_recurse_removes_the_subtree_only() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/trading/scratch/a", "1").await;
        c.put("/v1/kv/steward/trading/scratch/b/c", "1").await;
        c.put("/v1/kv/steward/trading/keep", "1").await;
        let (r, want) = replay(&c, "kv-delete-recurse").await;
        assert_eq!(r.json(), want["body"]);
        assert_eq!(
            c.get("/v1/kv/steward/trading/scratch?recurse").await.status,
            404
        );
        assert_eq!(c.get("/v1/kv/steward/trading/keep").await.status, 200);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn conflicting_flags_are_400() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c.put("/v1/kv/steward/x?cas=0&acquire=abc", "v").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.text(), "Conflicting flags: acquire=abc&cas=0\n");
        let r = c.put("/v1/kv/steward/x?acquire=a&release=a", "v").await;
        assert_eq!(r.status, 400);
        let r = c.delete("/v1/kv/steward/x?recurse&cas=1").await;
        assert_eq!(r.status, 400);
        assert!(r.text().starts_with("Conflicting flags: "));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn values_over_512_kib_are_413() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let ok = c
            .put_bytes("/v1/kv/steward/big", vec![b'x'; 512 * 1024])
            .await;
        assert_eq!(ok.status, 200);
        let r = c
            .put_bytes("/v1/kv/steward/big", vec![b'x'; 512 * 1024 + 1])
            .await;
        assert_eq!(r.status, 413);
        assert!(
            r.text()
                .starts_with("Request body(524289 bytes) too large, max size: 524288 bytes."),
            "{}",
            r.text()
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn missing_key_names_are_400() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c.put("/v1/kv/", "v").await;
        assert_eq!((r.status, r.text().as_str()), (400, "Missing key name"));
        let r = c.get("/v1/kv/").await;
        assert_eq!((r.status, r.text().as_str()), (400, "Missing key name"));
        let r = c.delete("/v1/kv/").await;
        assert_eq!(r.status, 400);
        sim.shutdown().await;
    }
}

mod s2_4_key_names {
    use super::*;

    #[tokio::test]
    async fn keys_outside_the_allowed_pattern_are_400_quoting_it() {
        let sim = start().await;
        let c = Consul::new(&sim);
        let r = c.put("/v1/kv/steward/has%20space", "v").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            "key contains invalid character ' ' at position 11. Only alphanumeric characters and ,-_./ are allowed"
        );
        let r = c.put("/v1/kv/steward/50%25", "v").await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("invalid character '%'"));
        let r = c.get("/v1/kv//leading").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (400, "key must not begin with a '/'")
        );
        let r = c.put("/v1/kv/steward/a//b", "v").await;
        assert_eq!(r.status, 400);
        let r = c.put("/v1/kv/steward/specs/web.json", "v").await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("suspicious file extension '.json'"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_keys_steward_uses_are_accepted() {
        let sim = start().await;
        let c = Consul::new(&sim);
        for k in [
            "steward/specs/trading/order-api",
            "steward/status/trading/order-api",
            "steward/leader",
        ] {
            let r = c.put(&format!("/v1/kv/{k}"), "v").await;
            assert_eq!(r.status, 200, "{k}: {}", r.text());
            assert_eq!(c.get(&format!("/v1/kv/{k}")).await.status, 200);
        }
        sim.shutdown().await;
    }
}

mod s2_6_consistency {
    use super::*;
    use steward_sim::Product;

    #[tokio::test]
    async fn stale_and_consistent_together_are_400() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/x", "v").await;
        assert_eq!(c.get("/v1/kv/steward/x?stale").await.status, 200);
        assert_eq!(c.get("/v1/kv/steward/x?consistent").await.status, 200);
        let r = c.get("/v1/kv/steward/x?stale&consistent").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            "Cannot specify ?stale with ?consistent, conflicting semantics."
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn stale_reads_work_without_a_leader_and_say_so() {
        let sim = start().await;
        let c = Consul::new(&sim);
        c.put("/v1/kv/steward/x", "v").await;
        sim.faults().lose_leader(Product::Consul, None);
        let r = c.get("/v1/kv/steward/x").await;
        assert_eq!((r.status, r.text().as_str()), (500, "No cluster leader"));
        let r = c.get("/v1/kv/steward/x?stale").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-consul-knownleader").as_deref(), Some("false"));
        let leader = c.get("/v1/status/leader").await;
        assert_eq!(leader.json(), json!(""));
        sim.faults().restore_leader(Product::Consul);
        assert_eq!(
            c.get("/v1/status/leader").await.json(),
            json!("127.0.0.1:8300")
        );
        sim.shutdown().await;
    }
}
