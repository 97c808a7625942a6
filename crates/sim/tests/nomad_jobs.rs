//! Nomad job API conformance (reference §1.3, §6.1–§6.6, §8.11–§8.13, §9 Nomad).
#![allow(clippy::unwrap_used)]

mod nomad_support;

use nomad_support::*;
use serde_json::{Value, json};

async fn register_fixture(api: &Api, name: &str) -> Resp {
    api.put("/v1/jobs", &request_body(name)).await
}

mod s1_3_errors {
    use super::*;

    #[tokio::test]
    async fn errors_are_plain_text_with_the_real_statuses() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api.get("/v1/job/nope").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.text, "job not found");
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        let r = api.put("/v1/jobs", &json!({})).await;
        assert_eq!((r.status, r.text.as_str()), (400, "Job must be specified"));
        let r = api.get("/v1/jobs?wait=10").await;
        assert_eq!((r.status, r.text.as_str()), (400, "Invalid wait time"));
        let r = api.get("/v1/jobs?index=abc").await;
        assert_eq!((r.status, r.text.as_str()), (400, "Invalid index"));
        let r = api.call("PATCH", "/v1/jobs", None).await;
        assert_eq!(r.status, 405);
        sim.shutdown().await;
    }
}

mod s6_1_conventions {
    use super::*;

    #[tokio::test]
    async fn reads_carry_index_leader_and_contact_headers() {
        let sim = start().await;
        let api = Api::new(&sim);
        register_fixture(&api, "job-register-order-api").await;
        let r = api.get("/v1/job/order-api").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-nomad-knownleader"), Some("true"));
        assert_eq!(r.header("x-nomad-lastcontact"), Some("0"));
        assert_eq!(r.index(), r.json["ModifyIndex"].as_u64().unwrap());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn query_namespace_beats_the_body_and_the_job() {
        let mut cfg = fast_config();
        cfg.nomad.namespaces = vec!["trading".into(), "other".into()];
        let sim = steward_sim::Sim::start(cfg).await.unwrap();
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        body["Job"]["Namespace"] = json!("other");
        let r = api.put("/v1/jobs?namespace=trading", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            api.get("/v1/job/order-api?namespace=trading").await.status,
            200
        );
        assert_eq!(
            api.get("/v1/job/order-api?namespace=other").await.status,
            404
        );
        // Body Namespace (the WriteRequest) beats Job.Namespace.
        body["Namespace"] = json!("trading");
        body["Job"]["ID"] = json!("second");
        body["Job"]["Name"] = json!("second");
        assert_eq!(api.put("/v1/jobs", &body).await.status, 200);
        assert_eq!(
            api.get("/v1/job/second?namespace=trading").await.status,
            200
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_nonexistent_namespace_is_a_500() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .put(
                "/v1/jobs?namespace=ghost",
                &request_body("job-register-order-api"),
            )
            .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text,
            "job \"order-api\" is in nonexistent namespace \"ghost\""
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn namespaces_api_creates_lists_and_deletes() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api.get("/v1/namespaces").await;
        assert_eq!(r.json.as_array().unwrap().len(), 1);
        assert_eq!(r.json[0]["Name"], "default");
        let r = api
            .put(
                "/v1/namespace/trading",
                &json!({"Name": "trading", "Description": "desk"}),
            )
            .await;
        assert_eq!(r.status, 200);
        let r = api.get("/v1/namespace/trading").await;
        assert_eq!(r.json["Description"], "desk");
        assert_eq!(api.get("/v1/namespace/nope").await.status, 404);
        let r = api.delete("/v1/namespace/default").await;
        assert_eq!(r.status, 500);
        assert_eq!(api.delete("/v1/namespace/trading").await.status, 200);
        assert_eq!(api.get("/v1/namespace/trading").await.status, 404);
        sim.shutdown().await;
    }
}

mod s6_2_register {
    use super::*;

    #[tokio::test]
    async fn register_answers_like_the_fixture() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = register_fixture(&api, "job-register-order-api").await;
        let want = fixture("job-register-order-api.response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let mut diffs = Vec::new();
        subset_diff(&want["body"], &r.json, "body", VOLATILE, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:#?}");
        assert_eq!(r.json["KnownLeader"], false);
        assert_eq!(r.json["EvalCreateIndex"], r.json["JobModifyIndex"]);
        assert_eq!(r.index(), r.json["Index"].as_u64().unwrap());
        assert!(!r.json["EvalID"].as_str().unwrap().is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn enforce_index_failures_are_500_with_the_real_texts() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        body["EnforceIndex"] = json!(true);
        body["JobModifyIndex"] = json!(7);
        let r = api.put("/v1/jobs", &body).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (500, "Enforcing job modify index 7: job does not exist")
        );
        body["JobModifyIndex"] = json!(0);
        let first = api.put("/v1/jobs", &body).await;
        assert_eq!(first.status, 200);
        let jmi = first.json["JobModifyIndex"].as_u64().unwrap();
        let r = api.put("/v1/jobs", &body).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (500, "Enforcing job modify index 0: job already exists")
        );
        let stale = request_body("job-register-order-api-stale-enforce-index");
        let r = api.put("/v1/jobs", &stale).await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text,
            format!(
                "Enforcing job modify index 5: job exists with conflicting job modify index: {jmi}"
            )
        );
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        body["JobModifyIndex"] = json!(jmi);
        body["Job"]["Meta"]["steward.hash"] = json!("def456");
        assert_eq!(api.put("/v1/jobs", &body).await.status, 200);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn identical_reregister_makes_an_eval_but_no_version() {
        // §6.2, §8.11, §9: same Version and JobModifyIndex; the reply's
        // JobModifyIndex is the job's ModifyIndex; a new evaluation.
        let sim = start().await;
        let api = Api::new(&sim);
        let first = register_fixture(&api, "job-register-order-api").await;
        let before = api.get("/v1/job/order-api").await.json;
        let again = register_fixture(&api, "job-register-order-api-identical-again").await;
        assert_eq!(again.status, 200);
        assert_ne!(again.json["EvalID"], first.json["EvalID"]);
        assert!(again.json["EvalCreateIndex"].as_u64() > first.json["EvalCreateIndex"].as_u64());
        let after = api.get("/v1/job/order-api").await.json;
        assert_eq!(after["Version"], before["Version"]);
        assert_eq!(after["JobModifyIndex"], before["JobModifyIndex"]);
        assert_eq!(again.json["JobModifyIndex"], after["ModifyIndex"]);
        let versions = api.get("/v1/job/order-api/versions").await;
        assert_eq!(versions.json["Versions"].as_array().unwrap().len(), 1);
        let evals = api.get("/v1/job/order-api/evaluations").await;
        let ids: Vec<&str> = evals
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ID"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&again.json["EvalID"].as_str().unwrap()));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_changed_spec_makes_a_new_version_and_six_are_kept() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        for n in 0..8 {
            body["Job"]["Meta"]["steward.hash"] = json!(format!("h{n}"));
            let r = api.put("/v1/jobs", &body).await;
            assert_eq!(r.status, 200);
            let job = api.get("/v1/job/order-api").await.json;
            assert_eq!(job["Version"], n);
            assert_eq!(job["JobModifyIndex"], r.json["JobModifyIndex"]);
            assert_eq!(r.json["JobModifyIndex"], r.json["Index"]);
        }
        let v = api.get("/v1/job/order-api/versions").await.json;
        let versions: Vec<u64> = v["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["Version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, vec![7, 6, 5, 4, 3, 2]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn shape_errors_are_400_and_validation_errors_500_multierror() {
        let sim = start().await;
        let api = Api::new(&sim);
        let body = request_body("job-register-order-api");
        let r = api.put("/v1/job/other", &body).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (400, "Job ID does not match name")
        );
        let r = api.put("/v1/job/order-api", &body).await;
        assert_eq!(r.status, 200);
        let r = api
            .put(
                "/v1/jobs",
                &json!({"Job": {"ID": "x", "Datacenters": ["dc1"]}}),
            )
            .await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (500, "1 error occurred:\n\t* Missing job task groups\n\n")
        );
        let r = api
            .put(
                "/v1/jobs",
                &json!({"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Count": "two"}]}}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.text.contains("cannot unmarshal string"), "{}", r.text);
        let mut bad = request_body("job-register-order-api");
        bad["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("");
        bad["Job"]["TaskGroups"][0]["Services"][0]["Checks"][0]["Interval"] = json!(100_000_000);
        bad["Job"]["TaskGroups"][0]["Services"][0]["Name"] = json!("bad_name");
        let r = api.put("/v1/jobs", &bad).await;
        assert_eq!(r.status, 500);
        assert!(
            r.text
                .starts_with("1 error occurred:\n\t* Task group api validation failed: "),
            "{}",
            r.text
        );
        assert!(r.text.contains("Missing task driver"), "{}", r.text);
        assert!(
            r.text.contains("interval (100ms) cannot be lower than 1s"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("Service name must be valid per RFC 1123"),
            "{}",
            r.text
        );
        let mut bad = request_body("job-register-order-api");
        bad["Job"]["Update"]["MinHealthyTime"] = json!(600_000_000_000u64);
        let r = api.put("/v1/jobs", &bad).await;
        assert_eq!(r.status, 500);
        assert!(
            r.text
                .contains("Minimum healthy time must be less than healthy deadline: 10m0s > 5m0s"),
            "{}",
            r.text
        );
        let mut bad = request_body("job-register-nightly-settlement");
        bad["Job"]["Periodic"]["Spec"] = json!("not a cron");
        let r = api.put("/v1/jobs", &bad).await;
        assert_eq!(r.status, 500);
        assert!(
            r.text.contains("Invalid cron spec \"not a cron\""),
            "{}",
            r.text
        );
        let mut bad = request_body("job-register-order-api");
        bad["Job"]["TaskGroups"][0]["Networks"][0]["Mode"] = json!("host");
        let r = api.put("/v1/jobs", &bad).await;
        assert!(
            r.text.contains(
                "connect sidecar: invalid network mode for Consul Connect: group \"api\" uses network mode \"host\"; must be \"bridge\" or \"cni/*\""
            ),
            "{}",
            r.text
        );
        let mut bad = request_body("job-register-order-api");
        bad["Job"]["TaskGroups"][0]["Tasks"][0]["Vault"] =
            json!({"Role": "r", "ChangeMode": "explode"});
        let r = api.put("/v1/jobs", &bad).await;
        assert!(r.text.contains("Vault validation failed"), "{}", r.text);
        let mut bad = request_body("job-register-order-api");
        bad["Job"]["TaskGroups"][0]["Count"] = json!(-1);
        let r = api.put("/v1/jobs", &bad).await;
        assert!(
            r.text.contains("Task group count can't be negative"),
            "{}",
            r.text
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn periodic_jobs_register_without_an_evaluation_or_allocations() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = register_fixture(&api, "job-register-nightly-settlement").await;
        let want = fixture("job-register-nightly-settlement.response");
        assert_eq!(r.status, 200);
        assert_eq!(r.json["EvalID"], "");
        assert_eq!(r.json["EvalCreateIndex"], 0);
        assert_eq!(want["body"]["EvalID"], "");
        let job = api.get("/v1/job/nightly-settlement").await.json;
        assert_eq!(job["Status"], "running");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let allocs = api.get("/v1/job/nightly-settlement/allocations").await.json;
        assert_eq!(allocs, json!([]));
        sim.shutdown().await;
    }
}

mod s6_3_plan {
    use super::*;

    fn strip(v: &Value) -> Value {
        // Keep the diff part of a plan response.
        v["Diff"].clone()
    }

    async fn plan(api: &Api, name: &str) -> Resp {
        api.put("/v1/job/order-api/plan", &request_body(name)).await
    }

    #[tokio::test]
    async fn plan_diffs_match_the_fixtures() {
        let sim = start().await;
        let api = Api::new(&sim);
        let reg = register_fixture(&api, "job-register-order-api").await;
        let jmi = reg.json["JobModifyIndex"].clone();
        for name in [
            "job-plan-order-api-identical",
            "job-plan-order-api-count-3",
            "job-plan-order-api-image-change",
        ] {
            let r = plan(&api, name).await;
            assert_eq!(r.status, 200, "{name}: {}", r.text);
            assert_eq!(r.json["JobModifyIndex"], jmi);
            let want = fixture(&format!("{name}.response"))["body"].clone();
            let mut got = strip(&r.json);
            let mut want_diff = want["Diff"].clone();
            // The fixture server could not place anything (no Docker), so every
            // allocation was "create"; the updates are checked separately below.
            for d in [&mut got, &mut want_diff] {
                for g in d["TaskGroups"].as_array_mut().unwrap() {
                    g["Updates"] = Value::Null;
                }
            }
            assert_eq!(got, want_diff, "{name}");
        }
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn plan_updates_follow_the_scheduler() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut reg = request_body("job-register-order-api");
        reg["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("docker");
        register_fixture(&api, "job-register-order-api").await;
        let _ = reg;
        // The allocations get placed.
        eventually(10, || async {
            let a = api.get("/v1/job/order-api/allocations").await.json;
            (a.as_array().unwrap().len() == 2).then_some(())
        })
        .await;
        let r = plan(&api, "job-plan-order-api-identical").await;
        assert_eq!(r.json["Diff"]["Type"], "None");
        assert_eq!(
            r.json["Diff"]["TaskGroups"][0]["Updates"],
            json!({"ignore": 2})
        );
        assert_eq!(
            r.json["Annotations"]["DesiredTGUpdates"]["api"]["Ignore"],
            2
        );
        let r = plan(&api, "job-plan-order-api-count-3").await;
        assert_eq!(
            r.json["Diff"]["TaskGroups"][0]["Updates"],
            json!({"create": 1, "in-place update": 2})
        );
        assert_eq!(
            r.json["Diff"]["TaskGroups"][0]["Fields"][0]["Annotations"],
            json!(["forces create"])
        );
        let r = plan(&api, "job-plan-order-api-image-change").await;
        assert_eq!(
            r.json["Diff"]["TaskGroups"][0]["Updates"],
            json!({"create/destroy update": 1, "ignore": 1})
        );
        assert_eq!(
            r.json["Annotations"]["DesiredTGUpdates"]["api"]["DestructiveUpdate"],
            1
        );
        // A plan stores nothing.
        let job = api.get("/v1/job/order-api").await.json;
        assert_eq!(job["Version"], 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn plan_of_a_new_job_is_added_with_job_modify_index_zero() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = plan(&api, "job-plan-order-api-identical").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["JobModifyIndex"], 0);
        assert_eq!(r.json["Diff"]["Type"], "Added");
        assert_eq!(r.json["Diff"]["TaskGroups"][0]["Type"], "Added");
        assert_eq!(
            r.json["Diff"]["TaskGroups"][0]["Tasks"][0]["Annotations"],
            json!(["forces create"])
        );
        assert_eq!(r.json["Annotations"]["DesiredTGUpdates"]["api"]["Place"], 2);
        assert_eq!(api.get("/v1/job/order-api").await.status, 404);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_plan_that_cannot_place_reports_the_failure_and_the_blocked_eval_it_would_create() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = request_body("job-plan-order-api-count-3");
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("no-such-driver");
        let r = api.put("/v1/job/order-api/plan", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let want = fixture("job-plan-order-api-count-3.response")["body"].clone();
        let failure = &r.json["FailedTGAllocs"]["api"];
        assert_eq!(failure["ConstraintFiltered"], json!({"missing drivers": 1}));
        assert_eq!(
            failure["CoalescedFailures"], 2,
            "3 placements, 1 + 2 coalesced"
        );
        // The real server answers with the blocked evaluation its dry run created,
        // carrying the same failure.
        let evals = r.json["CreatedEvals"].as_array().unwrap();
        assert_eq!(evals.len(), 1, "{}", r.text);
        let eval = &evals[0];
        assert_eq!(eval["Status"], "blocked");
        assert_eq!(eval["TriggeredBy"], "queued-allocs");
        assert_eq!(
            eval["StatusDescription"],
            want["CreatedEvals"][0]["StatusDescription"]
        );
        assert_eq!(eval["FailedTGAllocs"], r.json["FailedTGAllocs"]);
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.retain(|k| k != "ClassEligibility");
            k.sort();
            k
        };
        assert_eq!(keys(eval), keys(&want["CreatedEvals"][0]));
        // A placeable plan creates nothing.
        let r = plan(&api, "job-plan-order-api-count-3").await;
        assert_eq!(r.json["CreatedEvals"], Value::Null, "{}", r.text);
        assert_eq!(r.json["FailedTGAllocs"], Value::Null);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn plan_shape_errors() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .put(
                "/v1/job/other/plan",
                &request_body("job-plan-order-api-identical"),
            )
            .await;
        assert_eq!((r.status, r.text.as_str()), (400, "Job ID does not match"));
        let r = api.put("/v1/job/other/plan", &json!({})).await;
        assert_eq!((r.status, r.text.as_str()), (400, "Job must be specified"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn meta_and_in_place_changes_are_annotated() {
        let sim = start().await;
        let api = Api::new(&sim);
        register_fixture(&api, "job-register-order-api").await;
        let mut body = request_body("job-plan-order-api-identical");
        body["Job"]["Meta"]["steward.hash"] = json!("zzz");
        body["Job"]["TaskGroups"][0]["Services"][0]["Tags"] = json!(["trading"]);
        let r = api.put("/v1/job/order-api/plan", &body).await;
        let d = &r.json["Diff"];
        assert_eq!(d["Type"], "Edited");
        assert_eq!(
            d["Fields"],
            json!([{"Annotations": null, "Name": "Meta[steward.hash]", "New": "zzz", "Old": "abc123", "Type": "Edited"}])
        );
        let svc = &d["TaskGroups"][0]["Objects"][0];
        assert_eq!(svc["Name"], "Service");
        assert_eq!(svc["Type"], "Edited");
        let tags = svc["Objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["Name"] == "Tags")
            .unwrap();
        assert_eq!(tags["Type"], "Deleted");
        sim.shutdown().await;
    }
}

mod s6_5_other_endpoints {
    use super::*;

    #[tokio::test]
    async fn list_stubs_prefix_meta_and_fresh_index_zero() {
        let sim = start().await;
        let api = Api::new(&sim);
        // §9: a fresh server answers X-Nomad-Index: 0, and index=0 never blocks.
        let r = api.get("/v1/jobs").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json, json!([]));
        assert_eq!(r.header("x-nomad-index"), Some("0"));
        let started = std::time::Instant::now();
        let r = api.get("/v1/jobs?index=0&wait=5s").await;
        assert_eq!(r.status, 200);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        register_fixture(&api, "job-register-order-api").await;
        register_fixture(&api, "job-register-ticker").await;
        let r = api.get("/v1/jobs?prefix=order").await;
        let want = fixture("jobs-list-prefix-order.response");
        let list = r.json.as_array().unwrap();
        assert_eq!(list.len(), 1);
        for k in want["body"][0].as_object().unwrap().keys() {
            assert!(list[0].get(k).is_some(), "missing {k}");
        }
        assert!(list[0].get("Meta").is_none());
        let r = api.get("/v1/jobs?meta=true").await;
        assert_eq!(r.json[0]["Meta"]["steward.managed-by"], "steward");
        assert_eq!(r.json.as_array().unwrap().len(), 2);
        let r = api
            .get("/v1/jobs?filter=Meta%5B%22steward.spec%22%5D%20%3D%3D%20%22trading%2Fticker%22&meta=true")
            .await;
        assert_eq!(r.json.as_array().unwrap().len(), 1, "{}", r.text);
        assert_eq!(r.json[0]["ID"], "ticker");
        let r = api.get("/v1/jobs?namespace=*").await;
        assert_eq!(r.json.as_array().unwrap().len(), 2);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_jobs_answer_like_section_9() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api.get("/v1/job/x/versions").await;
        assert_eq!((r.status, r.text.as_str()), (404, "job versions not found"));
        let r = api.get("/v1/job/x/allocations").await;
        assert_eq!((r.status, r.json.clone()), (200, json!([])));
        let r = api.get("/v1/job/x/deployment").await;
        assert_eq!((r.status, r.text.as_str()), (200, "null"));
        let r = api.delete("/v1/job/x").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["EvalID"], "");
        let r = api.delete("/v1/job/x?purge=true").await;
        assert_eq!(r.status, 200);
        assert_ne!(r.json["EvalID"], "");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn stop_adds_a_version_and_purge_removes_the_job() {
        let sim = start().await;
        let api = Api::new(&sim);
        register_fixture(&api, "job-register-order-api").await;
        let r = api.delete("/v1/job/order-api").await;
        let want = fixture("job-stop-order-api.response");
        let mut diffs = Vec::new();
        subset_diff(&want["body"], &r.json, "body", VOLATILE, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:#?}");
        let job = api.get("/v1/job/order-api").await.json;
        assert_eq!(job["Stop"], true);
        assert_eq!(job["Version"], 1);
        eventually(5, || async {
            (api.get("/v1/job/order-api").await.json["Status"] == "dead").then_some(())
        })
        .await;
        let r = api.delete("/v1/job/order-api?purge=true").await;
        assert_eq!(r.status, 200);
        assert_ne!(r.json["EvalID"], "");
        let r = api.get("/v1/job/order-api").await;
        assert_eq!((r.status, r.text.as_str()), (404, "job not found"));
        assert_eq!(r.index(), r.json_index_or(r.index()));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn validate_reports_errors_and_warnings_in_the_body() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .put("/v1/validate/job", &request_body("job-validate-invalid"))
            .await;
        let want = fixture("job-validate-invalid.response")["body"].clone();
        assert_eq!(r.status, 200);
        assert_eq!(r.json["DriverConfigValidated"], true);
        // Nomad >= 1.5 defaults empty datacenters to ["*"], so the fixture's
        // "Missing job datacenters" (1.1.2) no longer appears.
        let got: Vec<String> = r.json["ValidationErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = want["ValidationErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .filter(|e| e != "Missing job datacenters")
            .collect();
        assert_eq!(got, expected);
        assert_eq!(r.json["Warnings"], want["Warnings"]);
        assert!(
            r.json["Error"]
                .as_str()
                .unwrap()
                .starts_with("2 errors occurred:\n\t* Job ID contains a space")
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn summary_evaluations_and_evaluation_by_id() {
        let sim = start().await;
        let api = Api::new(&sim);
        let reg = register_fixture(&api, "job-register-ticker").await;
        let eval_id = reg.json["EvalID"].as_str().unwrap().to_string();
        let r = api.get(&format!("/v1/evaluation/{eval_id}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["TriggeredBy"], "job-register");
        assert_eq!(r.json["Status"], "complete");
        assert_eq!(r.json["JobID"], "ticker");
        let s = eventually(5, || async {
            let s = api.get("/v1/job/ticker/summary").await.json;
            (s["Summary"]["ticker"]["Running"] == 1).then_some(s)
        })
        .await;
        assert_eq!(s["JobID"], "ticker");
        assert_eq!(api.get("/v1/evaluation/nope").await.status, 404);
        assert_eq!(api.get("/v1/allocation/nope").await.status, 404);
        assert_eq!(api.get("/v1/deployment/nope").await.status, 404);
        sim.shutdown().await;
    }
}

mod s6_6_canonicalization {
    use super::*;

    /// Fields Nomad >= 1.7 adds or changed since the 1.1.2 capture.
    const NEWER: &[&str] = &["Constraints"];

    #[tokio::test]
    async fn get_job_equals_the_fixture_after_canonicalization() {
        let sim = start().await;
        let api = Api::new(&sim);
        for (reg, get) in [
            ("job-register-order-api", "job-get-order-api"),
            ("job-register-ticker", "job-get-ticker"),
            (
                "job-register-nightly-settlement",
                "job-get-nightly-settlement",
            ),
        ] {
            let r = register_fixture(&api, reg).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let id = request_body(reg)["Job"]["ID"].as_str().unwrap().to_string();
            let got = api.get(&format!("/v1/job/{id}")).await.json;
            let want = fixture(&format!("{get}.response"))["body"].clone();
            let mut ignore: Vec<&str> = VOLATILE.to_vec();
            ignore.extend_from_slice(&["Stable", "Version"]);
            let mut diffs = Vec::new();
            // Group constraints: Nomad >= 1.7 appends implicit constraints.
            let mut want_groups = want.clone();
            for g in want_groups["TaskGroups"].as_array_mut().unwrap() {
                g.as_object_mut().unwrap().remove("Constraints");
            }
            subset_diff(&want_groups, &got, "job", &ignore, &mut diffs);
            assert!(diffs.is_empty(), "{get}: {diffs:#?}");
            let _ = NEWER;
        }
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn newer_fields_identities_implicit_constraints_and_vault() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Vault"] =
            json!({"Role": "steward-trading-order-api"});
        let r = api.put("/v1/jobs", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let job = api.get("/v1/job/order-api").await.json;
        let g = &job["TaskGroups"][0];
        let app = &g["Tasks"][0];
        assert_eq!(
            app["Vault"],
            json!({
                "AllowTokenExpiration": false, "ChangeMode": "restart", "ChangeSignal": "SIGHUP",
                "Cluster": "default", "DisableFile": false, "Env": true, "Namespace": "",
                "Role": "steward-trading-order-api"
            })
        );
        let ids: Vec<&str> = app["Identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["Name"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"vault_default"), "{ids:?}");
        assert!(ids.contains(&"consul_default"), "{ids:?}");
        assert_eq!(app["Identity"]["Name"], "default");
        assert_eq!(
            g["Services"][0]["Identity"]["Name"],
            "consul-service_order-api-http"
        );
        assert_eq!(g["Services"][0]["Provider"], "consul");
        let lts: Vec<&str> = g["Constraints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["LTarget"].as_str().unwrap())
            .collect();
        assert!(lts.contains(&"${attr.vault.version}"));
        assert!(lts.contains(&"${attr.consul.version}"));
        assert!(lts.contains(&"${attr.nomad.version}"));
        assert_eq!(job["Datacenters"], json!(["dc1"]));
        assert_eq!(job["NodePool"], "default");
        // Datacenters default to ["*"].
        body["Job"].as_object_mut().unwrap().remove("Datacenters");
        body["Job"]["ID"] = json!("anywhere");
        body["Job"]["Name"] = json!("anywhere");
        api.put("/v1/jobs", &body).await;
        let job = api.get("/v1/job/anywhere").await.json;
        assert_eq!(job["Datacenters"], json!(["*"]));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn versions_endpoint_lists_newest_first_with_diffs() {
        let sim = start().await;
        let api = Api::new(&sim);
        register_fixture(&api, "job-register-order-api").await;
        let v = api.get("/v1/job/order-api/versions").await;
        let want = fixture("job-versions-order-api.response");
        assert_eq!(v.status, 200);
        for k in want["body"].as_object().unwrap().keys() {
            assert!(v.json.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v.json["Diffs"], Value::Null);
        let mut body = request_body("job-register-order-api");
        body["Job"]["TaskGroups"][0]["Count"] = json!(3);
        api.put("/v1/jobs", &body).await;
        let v = api.get("/v1/job/order-api/versions?diffs=true").await;
        assert_eq!(v.json["Versions"][0]["Version"], 1);
        assert_eq!(
            v.json["Diffs"][0]["TaskGroups"][0]["Fields"][0]["Name"],
            "Count"
        );
        assert_eq!(v.json["Diffs"][0]["TaskGroups"][0]["Fields"][0]["New"], "3");
        sim.shutdown().await;
    }
}

trait JsonIndex {
    fn json_index_or(&self, d: u64) -> u64;
}

impl JsonIndex for Resp {
    fn json_index_or(&self, d: u64) -> u64 {
        self.json.get("Index").and_then(Value::as_u64).unwrap_or(d)
    }
}

mod s6_5_parse {
    use super::*;

    /// Every non-empty value of `expected` is in `actual`.
    fn meaningful(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
        match expected {
            Value::Object(m) => {
                for (k, v) in m {
                    meaningful(v, &actual[k.as_str()], &format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    meaningful(v, &actual[i], &format!("{path}[{i}]"), out);
                }
            }
            Value::Null | Value::Bool(false) => {}
            Value::String(s) if s.is_empty() => {}
            Value::Number(n) if n.as_f64() == Some(0.0) => {}
            v => {
                if v != actual {
                    out.push(format!("{path}: {actual}, expected {v}"));
                }
            }
        }
    }

    #[tokio::test]
    async fn hcl_parses_to_the_api_job() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .post("/v1/jobs/parse", &request_body("jobs-parse-hcl-order-api"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let want = fixture("jobs-parse-hcl-order-api.response")["body"].clone();
        let mut diffs = Vec::new();
        meaningful(&want, &r.json, "job", &mut diffs);
        assert!(diffs.is_empty(), "{diffs:#?}");
        let r = api
            .post(
                "/v1/jobs/parse",
                &request_body("jobs-parse-hcl-order-api-canonicalize"),
            )
            .await;
        assert_eq!(r.status, 200);
        let want = fixture("jobs-parse-hcl-order-api-canonicalize.response")["body"].clone();
        let mut diffs = Vec::new();
        meaningful(&want["Update"], &r.json["Update"], "Update", &mut diffs);
        meaningful(
            &want["TaskGroups"][0]["Update"],
            &r.json["TaskGroups"][0]["Update"],
            "TaskGroups[0].Update",
            &mut diffs,
        );
        assert!(diffs.is_empty(), "{diffs:#?}");
        assert_eq!(
            r.json["TaskGroups"][0]["Tasks"].as_array().unwrap().len(),
            1
        );
        // The parsed job registers as is.
        let job = api
            .post("/v1/jobs/parse", &request_body("jobs-parse-hcl-order-api"))
            .await
            .json;
        let reg = api.put("/v1/jobs", &json!({ "Job": job })).await;
        assert_eq!(reg.status, 200, "{}", reg.text);
        let plan = api
            .put(
                "/v1/job/order-api/plan",
                &json!({"Job": request_body("job-register-order-api")["Job"], "Diff": true}),
            )
            .await;
        assert_eq!(plan.json["Diff"]["Type"], "None", "{}", plan.text);
        sim.shutdown().await;
    }

    /// `deploy/nomad/steward.nomad.hcl`, Steward's own job, parses and registers.
    #[tokio::test]
    async fn stewards_own_job_parses_and_registers() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/nomad/steward.nomad.hcl"
        );
        let hcl = std::fs::read_to_string(path).unwrap();
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .post(
                "/v1/jobs/parse",
                &json!({"JobHCL": hcl, "Canonicalize": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let job = r.json;
        assert_eq!(job["ID"], "steward");
        let group = &job["TaskGroups"][0];
        assert_eq!(group["Count"], 3);
        let checks: Vec<&str> = group["Services"][0]["Checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Path"].as_str().unwrap())
            .collect();
        assert_eq!(checks, ["/healthz", "/readyz"]);
        assert_eq!(group["Networks"][0]["DynamicPorts"][0]["Label"], "api");
        assert_eq!(group["Networks"][0]["DynamicPorts"][0]["To"], 7070);
        let task = &group["Tasks"][0];
        assert_eq!(task["Vault"]["Role"], "steward", "{task}");
        assert_eq!(task["Templates"].as_array().unwrap().len(), 2);
        assert_eq!(task["Templates"][0]["Envvars"], true);
        assert!(
            task["Env"]["NOMAD_ADDR"]
                .as_str()
                .unwrap()
                .contains("${attr.unique.network.ip-address}"),
            "{task}"
        );
        assert_eq!(job["Update"]["MaxParallel"], 1);
        assert_eq!(job["Update"]["AutoRevert"], true);
        let reg = api.put("/v1/jobs", &json!({ "Job": job })).await;
        assert_eq!(reg.status, 200, "{}", reg.text);
        assert_eq!(api.get("/v1/job/steward").await.status, 200);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn hcl_errors_are_400() {
        let sim = start().await;
        let api = Api::new(&sim);
        for name in [
            "jobs-parse-hcl-syntax-error",
            "jobs-parse-hcl-quoted-meta-keys-error",
        ] {
            let r = api.post("/v1/jobs/parse", &request_body(name)).await;
            assert_eq!(r.status, 400, "{name}: {}", r.text);
            assert!(r.text.starts_with("input.hcl:"), "{}", r.text);
        }
        let r = api.post("/v1/jobs/parse", &json!({"JobHCL": ""})).await;
        assert_eq!((r.status, r.text.as_str()), (400, "Job spec is empty"));
        sim.shutdown().await;
    }
}

/// Listings, job reads, versions and events are served from cached serialised forms;
/// they must be exactly what serialising the JSON objects gives (the `?pretty` forms
/// are still built from JSON objects, so the two are compared byte for byte).
mod cached_forms {
    use super::*;

    /// The compact serialisation of a pretty-printed response (key order kept).
    fn compact(pretty: &str) -> String {
        match serde_json::from_str::<Value>(pretty) {
            Ok(v) => serde_json::to_string(&v).unwrap(),
            Err(_) => pretty.to_string(),
        }
    }

    async fn same_as_pretty(api: &Api, path: &str) -> Resp {
        let fast = api.get(path).await;
        let sep = if path.contains('?') { '&' } else { '?' };
        let slow = api.get(&format!("{path}{sep}pretty")).await;
        assert_eq!(fast.status, slow.status, "{path}");
        assert_eq!(fast.text, compact(&slow.text), "{path}");
        assert_eq!(fast.header("x-nomad-index"), slow.header("x-nomad-index"));
        fast
    }

    #[tokio::test]
    async fn listings_and_reads_match_the_json_objects_through_a_job_lifecycle() {
        let sim = start().await;
        let api = Api::new(&sim);
        register_fixture(&api, "job-register-order-api").await;
        register_fixture(&api, "job-register-ticker").await;
        for path in [
            "/v1/jobs",
            "/v1/jobs?meta=true",
            "/v1/jobs?namespace=*&meta=true",
            "/v1/jobs?prefix=tick",
            "/v1/jobs?per_page=1",
            "/v1/job/ticker",
            "/v1/job/order-api?namespace=trading",
        ] {
            same_as_pretty(&api, path).await;
        }
        // Allocations start, get healthy, the deployment succeeds: the summaries
        // and the job's status, stability and index change in place.
        eventually(15, || async {
            let j = api.get("/v1/job/ticker").await.json;
            (j["Stable"] == true).then_some(())
        })
        .await;
        let list = same_as_pretty(&api, "/v1/jobs?meta=true").await;
        let ticker = list
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["ID"] == "ticker")
            .unwrap()
            .clone();
        assert_eq!(ticker["Status"], "running");
        let summary = &ticker["JobSummary"]["Summary"];
        let running: i64 = summary
            .as_object()
            .unwrap()
            .values()
            .map(|g| g["Running"].as_i64().unwrap())
            .sum();
        assert!(running > 0, "{summary}");
        let job = same_as_pretty(&api, "/v1/job/ticker").await.json;
        assert_eq!(ticker["ModifyIndex"], job["ModifyIndex"]);
        // A new version, then a stop: new stubs, new summaries.
        let mut body = request_body("job-register-ticker");
        body["Job"]["Meta"] = json!({"changed": "yes"});
        api.put("/v1/jobs", &body).await;
        same_as_pretty(&api, "/v1/jobs?meta=true").await;
        api.delete("/v1/job/ticker").await;
        let list = same_as_pretty(&api, "/v1/jobs?meta=true").await;
        let ticker = list
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["ID"] == "ticker")
            .unwrap()
            .clone();
        assert_eq!(ticker["Stop"], true);
        assert_eq!(ticker["Meta"]["changed"], "yes");
        same_as_pretty(&api, "/v1/job/ticker").await;
        sim.shutdown().await;
    }

    /// The newest version is the current job apart from its `ModifyIndex`: a status
    /// change moves only the job's index, a stable mark moves both.
    #[tokio::test]
    async fn the_newest_version_follows_the_job_but_keeps_its_own_index() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = register_fixture(&api, "job-register-ticker").await;
        let registered = r.json["JobModifyIndex"].as_u64().unwrap();
        let job = api.get("/v1/job/ticker").await.json;
        let versions = api.get("/v1/job/ticker/versions").await.json;
        let v0 = &versions["Versions"][0];
        assert_eq!(v0["Status"], job["Status"]);
        assert_eq!(v0["ModifyIndex"], registered);
        assert!(job["ModifyIndex"].as_u64().unwrap() >= registered);
        let mut a = job.as_object().unwrap().clone();
        let mut b = v0.as_object().unwrap().clone();
        a.remove("ModifyIndex");
        b.remove("ModifyIndex");
        assert_eq!(a, b);
        let job = eventually(15, || async {
            let j = api.get("/v1/job/ticker").await.json;
            (j["Stable"] == true).then_some(j)
        })
        .await;
        let versions = api.get("/v1/job/ticker/versions").await.json;
        assert_eq!(versions["Versions"][0], job);
        // A second version pushes the first down with its own index.
        let mut body = request_body("job-register-ticker");
        body["Job"]["Meta"] = json!({"v": "2"});
        api.put("/v1/jobs", &body).await;
        let versions = api.get("/v1/job/ticker/versions").await.json;
        assert_eq!(versions["Versions"][1], job);
        assert_eq!(versions["Versions"][0]["Version"], 1);
        sim.shutdown().await;
    }
}
