//! Nomad scheduling model: allocations, deployments (rolling updates, canaries,
//! auto revert), Consul registration, blocking reads, the event stream, ACLs,
//! persistence and index resets (reference §6.1, §6.5, §8.1–§8.3, §9).
#![allow(clippy::unwrap_used)]

mod nomad_support;

use nomad_support::*;
use serde_json::{Value, json};
use std::time::Duration;
use steward_sim::{Product, Sim, SimConfig, TokenConfig};

fn service_job(id: &str, count: u64, update: Value) -> Value {
    json!({
        "Job": {
            "ID": id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "Update": update,
            "TaskGroups": [{
                "Name": "web",
                "Count": count,
                "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
                "Services": [{
                    "Name": id,
                    "PortLabel": "http",
                    "Tags": ["v1"],
                    "Checks": [{"Name": "alive", "Type": "tcp", "Interval": 10_000_000_000u64, "Timeout": 2_000_000_000u64}]
                }],
                "Tasks": [{
                    "Name": "app",
                    "Driver": "docker",
                    "Config": {"image": "registry.example/web:1"},
                    "Resources": {"CPU": 100, "MemoryMB": 64}
                }]
            }]
        }
    })
}

fn rolling(max_parallel: u64, canary: u64, auto_promote: bool, auto_revert: bool) -> Value {
    json!({
        "MaxParallel": max_parallel,
        "Canary": canary,
        "AutoPromote": auto_promote,
        "AutoRevert": auto_revert,
        "MinHealthyTime": 10_000_000_000u64,
        "HealthyDeadline": 300_000_000_000u64
    })
}

async fn latest_deployment(api: &Api, job: &str) -> Value {
    api.get(&format!("/v1/job/{job}/deployment")).await.json
}

async fn wait_deployment(api: &Api, job: &str, version: u64, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let all = api.get(&format!("/v1/job/{job}/deployments")).await.json;
        if let Some(d) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["JobVersion"] == version && d["Status"] == status)
        {
            return d.clone();
        }
        if std::time::Instant::now() > deadline {
            let all = api.get(&format!("/v1/job/{job}/deployments")).await.json;
            let allocs = api.get(&format!("/v1/job/{job}/allocations")).await.json;
            panic!("no {status} deployment of version {version}: {all:#}\n{allocs:#}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn live_allocs(api: &Api, job: &str) -> Vec<Value> {
    api.get(&format!("/v1/job/{job}/allocations"))
        .await
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["DesiredStatus"] == "run" && a["ClientStatus"] != "failed")
        .cloned()
        .collect()
}

mod allocations_and_deployments {
    use super::*;

    #[tokio::test]
    async fn a_service_job_runs_gets_healthy_and_its_version_becomes_stable() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        assert_eq!(r.status, 200);
        let d = wait_deployment(&api, "ticker", 0, "successful").await;
        let want = fixture("job-deployment-ticker-successful.response")["body"].clone();
        let mut diffs = Vec::new();
        subset_diff(&want, &d, "deployment", VOLATILE, &mut diffs);
        assert!(diffs.is_empty(), "{diffs:#?}");
        assert_eq!(d["StatusDescription"], "Deployment completed successfully");
        let job = api.get("/v1/job/ticker").await.json;
        assert_eq!(job["Stable"], true);
        assert_eq!(job["Status"], "running");
        assert!(job["ModifyIndex"].as_u64() > job["JobModifyIndex"].as_u64());
        let allocs = api.get("/v1/job/ticker/allocations").await.json;
        assert_eq!(allocs.as_array().unwrap().len(), 1);
        let a = &allocs[0];
        assert_eq!(a["Name"], "ticker.ticker[0]");
        assert_eq!(a["ClientStatus"], "running");
        assert_eq!(a["DeploymentStatus"]["Healthy"], true);
        let want_stub = fixture("job-allocations-ticker-running.response")["body"][0].clone();
        for k in want_stub.as_object().unwrap().keys() {
            assert!(a.get(k).is_some(), "stub misses {k}");
        }
        let full = api
            .get(&format!("/v1/allocation/{}", a["ID"].as_str().unwrap()))
            .await;
        assert_eq!(full.status, 200);
        assert_eq!(full.json["Job"]["ID"], "ticker");
        assert_eq!(full.json["DeploymentID"], d["ID"]);
        let versions = api.get("/v1/job/ticker/versions").await.json;
        assert_eq!(versions["Versions"][0]["Stable"], true);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn unplaceable_jobs_block_like_the_fixture_server() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("lxc");
        let r = api.put("/v1/jobs", &body).await;
        let evals = api.get("/v1/job/order-api/evaluations").await.json;
        let first = evals
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["ID"] == r.json["EvalID"])
            .unwrap();
        assert_eq!(first["Status"], "complete");
        assert_eq!(
            first["FailedTGAllocs"]["api"]["ConstraintFiltered"]["missing drivers"],
            1
        );
        assert!(
            evals
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["Status"] == "blocked"
                    && e["StatusDescription"] == "created to place remaining allocations")
        );
        let job = api.get("/v1/job/order-api").await.json;
        assert_eq!(job["Status"], "pending");
        let list = api.get("/v1/jobs").await.json;
        assert_eq!(list[0]["JobSummary"]["Summary"]["api"]["Queued"], 2);
        let d = latest_deployment(&api, "order-api").await;
        assert_eq!(d["Status"], "running");
        assert_eq!(d["TaskGroups"]["api"]["PlacedAllocs"], 0);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn rolling_updates_honour_max_parallel() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = service_job("web", 3, rolling(1, 0, false, false));
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 0, "successful").await;
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
            json!("registry.example/web:2");
        api.put("/v1/jobs", &body).await;
        // While the deployment runs, at most one new allocation is not yet healthy
        // and never more than count + max_parallel allocations are live.
        let mut max_unhealthy_new = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let done = loop {
            let allocs = live_allocs(&api, "web").await;
            let unhealthy_new = allocs
                .iter()
                .filter(|a| a["JobVersion"] == 1 && a["DeploymentStatus"]["Healthy"] != true)
                .count();
            max_unhealthy_new = max_unhealthy_new.max(unhealthy_new);
            assert!(allocs.len() <= 3, "{} live allocations", allocs.len());
            let d = latest_deployment(&api, "web").await;
            if d["JobVersion"] == 1 && d["Status"] == "successful" {
                break d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rollout did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(max_unhealthy_new, 1);
        assert_eq!(done["TaskGroups"]["web"]["HealthyAllocs"], 3);
        let allocs = live_allocs(&api, "web").await;
        assert_eq!(allocs.len(), 3);
        assert!(allocs.iter().all(|a| a["JobVersion"] == 1));
        let all = api.get("/v1/job/web/allocations").await.json;
        let replaced = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["DesiredStatus"] == "stop")
            .count();
        assert_eq!(replaced, 3);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn count_changes_scale_in_place() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = service_job("web", 2, rolling(1, 0, false, false));
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 0, "successful").await;
        let before: Vec<String> = live_allocs(&api, "web")
            .await
            .iter()
            .map(|a| a["ID"].as_str().unwrap().to_string())
            .collect();
        body["Job"]["TaskGroups"][0]["Count"] = json!(3);
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 1, "successful").await;
        let after = live_allocs(&api, "web").await;
        assert_eq!(after.len(), 3);
        for id in &before {
            assert!(
                after.iter().any(|a| a["ID"] == id.as_str()),
                "allocation {id} was replaced"
            );
        }
        body["Job"]["TaskGroups"][0]["Count"] = json!(1);
        api.put("/v1/jobs", &body).await;
        eventually(10, || async {
            (live_allocs(&api, "web").await.len() == 1).then_some(())
        })
        .await;
        let names: Vec<String> = live_allocs(&api, "web")
            .await
            .iter()
            .map(|a| a["Name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["web.web[0]".to_string()]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn canaries_wait_for_promotion() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = service_job("web", 2, rolling(1, 1, false, false));
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 0, "successful").await;
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
            json!("registry.example/web:2");
        api.put("/v1/jobs", &body).await;
        let d = eventually(10, || async {
            let d = latest_deployment(&api, "web").await;
            (d["StatusDescription"] == "Deployment is running but requires manual promotion")
                .then_some(d)
        })
        .await;
        assert_eq!(d["Status"], "running");
        assert_eq!(d["TaskGroups"]["web"]["DesiredCanaries"], 1);
        assert_eq!(
            d["TaskGroups"]["web"]["PlacedCanaries"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let allocs = live_allocs(&api, "web").await;
        assert_eq!(allocs.len(), 3);
        assert_eq!(
            allocs
                .iter()
                .filter(|a| a["DeploymentStatus"]["Canary"] == true)
                .count(),
            1
        );
        // Nothing moves without promotion.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(latest_deployment(&api, "web").await["Status"], "running");
        let r = api
            .post(
                &format!("/v1/deployment/promote/{}", d["ID"].as_str().unwrap()),
                &json!({"DeploymentID": d["ID"], "All": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = wait_deployment(&api, "web", 1, "successful").await;
        assert_eq!(d["TaskGroups"]["web"]["Promoted"], true);
        let allocs = live_allocs(&api, "web").await;
        assert_eq!(allocs.len(), 2);
        assert!(allocs.iter().all(|a| a["JobVersion"] == 1));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn auto_promote_promotes_healthy_canaries() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = service_job("web", 2, rolling(1, 1, true, false));
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 0, "successful").await;
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
            json!("registry.example/web:2");
        api.put("/v1/jobs", &body).await;
        let d = wait_deployment(&api, "web", 1, "successful").await;
        assert_eq!(d["TaskGroups"]["web"]["Promoted"], true);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn failing_allocations_fail_the_deployment_and_auto_revert_to_the_last_stable_version() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut body = service_job("web", 2, rolling(1, 0, false, true));
        api.put("/v1/jobs", &body).await;
        wait_deployment(&api, "web", 0, "successful").await;
        sim.faults().set_job_failing("default", "web", true);
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
            json!("registry.example/web:broken");
        api.put("/v1/jobs", &body).await;
        let failed = wait_deployment(&api, "web", 1, "failed").await;
        assert_eq!(
            failed["StatusDescription"],
            "Failed due to unhealthy allocations - rolling back to job version 0"
        );
        assert_eq!(failed["TaskGroups"]["web"]["UnhealthyAllocs"], 1);
        // The revert is a new version with the stable spec; it deploys and becomes stable.
        let d = wait_deployment(&api, "web", 2, "successful").await;
        assert_eq!(d["StatusDescription"], "Deployment completed successfully");
        let v = api.get("/v1/job/web/versions").await.json;
        let versions = v["Versions"].as_array().unwrap();
        assert_eq!(versions[0]["Version"], 2);
        assert_eq!(versions[0]["Stable"], true);
        assert_eq!(
            versions[0]["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
            "registry.example/web:1"
        );
        assert_eq!(versions[1]["Stable"], false);
        let failed_allocs = api.get("/v1/job/web/allocations").await.json;
        let f = failed_allocs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["ClientStatus"] == "failed")
            .unwrap();
        assert_eq!(f["DeploymentStatus"]["Healthy"], false);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_failing_new_job_has_nothing_to_revert_to() {
        let sim = start().await;
        let api = Api::new(&sim);
        sim.faults().set_job_failing("default", "web", true);
        api.put(
            "/v1/jobs",
            &service_job("web", 1, rolling(1, 0, false, true)),
        )
        .await;
        let d = wait_deployment(&api, "web", 0, "failed").await;
        assert_eq!(
            d["StatusDescription"],
            "Failed due to unhealthy allocations - no stable job version to auto revert to"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn stopping_a_job_stops_its_allocations() {
        let sim = start().await;
        let api = Api::new(&sim);
        api.put(
            "/v1/jobs",
            &service_job("web", 2, rolling(1, 0, false, false)),
        )
        .await;
        wait_deployment(&api, "web", 0, "successful").await;
        api.delete("/v1/job/web").await;
        eventually(10, || async {
            live_allocs(&api, "web").await.is_empty().then_some(())
        })
        .await;
        let job = api.get("/v1/job/web").await.json;
        assert_eq!(job["Status"], "dead");
        let allocs = api.get("/v1/job/web/allocations").await.json;
        assert!(
            allocs
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["ClientStatus"] == "complete")
        );
        sim.shutdown().await;
    }
}

mod consul_registration {
    use super::*;

    async fn health(sim: &steward_sim::SimHandle, service: &str) -> Value {
        reqwest::get(format!("{}/v1/health/service/{service}", sim.consul_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn running_allocations_register_services_and_sidecars_in_consul() {
        let sim = start().await;
        let api = Api::new(&sim);
        api.put("/v1/jobs", &request_body("job-register-order-api"))
            .await;
        let entries = eventually(10, || async {
            let h = health(&sim, "order-api").await;
            (h.as_array().unwrap().len() == 2).then_some(h)
        })
        .await;
        let allocs = live_allocs(&api, "order-api").await;
        for e in entries.as_array().unwrap() {
            let id = e["Service"]["ID"].as_str().unwrap();
            assert!(id.starts_with("_nomad-task-"), "{id}");
            assert!(id.ends_with("-group-api-order-api-http"), "{id}");
            let alloc_id = &id["_nomad-task-".len()..id.len() - "-group-api-order-api-http".len()];
            assert!(allocs.iter().any(|a| a["ID"] == alloc_id));
            assert_eq!(e["Service"]["Meta"]["external-source"], "nomad");
            assert_eq!(e["Service"]["Tags"], json!(["trading", "http"]));
            assert!(
                e["Checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["Name"] == "order-api-healthz" && c["Status"] == "passing")
            );
        }
        let sidecars = health(&sim, "order-api-sidecar-proxy").await;
        assert_eq!(sidecars.as_array().unwrap().len(), 2);
        assert_eq!(sidecars[0]["Service"]["Kind"], "connect-proxy");
        assert_eq!(
            sidecars[0]["Service"]["Proxy"]["DestinationServiceName"],
            "order-api"
        );
        assert!(
            sidecars[0]["Service"]["ID"]
                .as_str()
                .unwrap()
                .ends_with("-sidecar-proxy")
        );
        // Stopping the job deregisters everything.
        api.delete("/v1/job/order-api").await;
        eventually(10, || async {
            health(&sim, "order-api")
                .await
                .as_array()
                .unwrap()
                .is_empty()
                .then_some(())
        })
        .await;
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_service_can_point_at_a_real_backend() {
        let sim = start().await;
        let api = Api::new(&sim);
        let backend: std::net::SocketAddr = "127.0.0.1:45678".parse().unwrap();
        sim.set_service_backend("default", "ticker", Some(backend));
        api.put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        let h = eventually(10, || async {
            let h = health(&sim, "ticker").await;
            (h.as_array().unwrap().len() == 1).then_some(h)
        })
        .await;
        assert_eq!(h[0]["Service"]["Address"], "127.0.0.1");
        assert_eq!(h[0]["Service"]["Port"], 45678);
        assert_eq!(h[0]["Service"]["Meta"]["team"], "trading");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn failing_allocations_show_critical_checks() {
        let sim = start().await;
        let api = Api::new(&sim);
        sim.faults().set_job_failing("default", "web", true);
        api.put(
            "/v1/jobs",
            &service_job("web", 1, rolling(1, 0, false, false)),
        )
        .await;
        let h = eventually(10, || async {
            let h = health(&sim, "web").await;
            (h.as_array().unwrap().len() == 1).then_some(h)
        })
        .await;
        assert!(
            h[0]["Checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["Status"] == "critical")
        );
        let passing: Value = reqwest::get(format!(
            "{}/v1/health/service/web?passing=1",
            sim.consul_url()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(passing, json!([]));
        sim.shutdown().await;
    }
}

mod blocking_queries {
    use super::*;

    #[tokio::test]
    async fn a_blocking_read_returns_on_change_or_at_timeout() {
        let sim = start().await;
        let api = Api::new(&sim);
        let r = api
            .put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        assert_eq!(r.status, 200);
        wait_deployment(&api, "ticker", 0, "successful").await;
        let job = api.get("/v1/job/ticker").await;
        let index = job.index();
        // Timeout: same index, after roughly the wait.
        let started = std::time::Instant::now();
        let r = api
            .get(&format!("/v1/job/ticker?index={index}&wait=300ms"))
            .await;
        assert_eq!(r.index(), index);
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert!(started.elapsed() < Duration::from_secs(3));
        // A change wakes the watcher early.
        let api2 = api.clone();
        let waiter = tokio::spawn(async move {
            api2.get(&format!("/v1/job/ticker?index={index}&wait=10s"))
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut body = request_body("job-register-ticker");
        body["Job"]["Meta"]["steward.generation"] = json!("2");
        api.put("/v1/jobs", &body).await;
        let r = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(r.index() > index);
        assert_eq!(r.json["Meta"]["steward.generation"], "2");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_index_reset_moves_indexes_backwards_and_answers_watchers_at_their_timeout() {
        let sim = start().await;
        let api = Api::new(&sim);
        for n in 0..5 {
            let mut body = request_body("job-register-ticker");
            body["Job"]["Meta"]["steward.generation"] = json!(n.to_string());
            api.put("/v1/jobs", &body).await;
        }
        wait_deployment(&api, "ticker", 4, "successful").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = api.get("/v1/jobs").await;
        let index = r.index();
        let api2 = api.clone();
        let started = std::time::Instant::now();
        let mut waiter =
            tokio::spawn(async move { api2.get(&format!("/v1/jobs?index={index}&wait=3s")).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(sim.faults().reset_indexes(Product::Nomad));
        // Nomad's blockingRPC re-runs the query on the abandoned store and keeps
        // blocking: the restore does not answer every watcher at once.
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), &mut waiter)
                .await
                .is_err(),
            "answered at the restore"
        );
        let r = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert!(r.index() < index, "{} !< {index}", r.index());
        let job = api.get("/v1/job/ticker").await.json;
        assert!(job["ModifyIndex"].as_u64().unwrap() < index);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn stale_reads_without_a_leader_report_it() {
        let sim = start().await;
        let api = Api::new(&sim);
        api.put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        sim.faults().lose_leader(Product::Nomad, None);
        let r = api.get("/v1/job/ticker").await;
        assert_eq!((r.status, r.text.as_str()), (500, "No cluster leader"));
        let r = api.get("/v1/job/ticker?stale").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-nomad-knownleader"), Some("false"));
        sim.faults().restore_leader(Product::Nomad);
        sim.shutdown().await;
    }
}

mod event_stream {
    use super::*;
    use futures::StreamExt;

    async fn open(
        sim: &steward_sim::SimHandle,
        query: &str,
    ) -> futures::stream::BoxStream<'static, Value> {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/event/stream?{query}", sim.nomad_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut buf = String::new();
        resp.bytes_stream()
            .flat_map(move |chunk| {
                buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                let mut lines = Vec::new();
                while let Some(pos) = buf.find('\n') {
                    let line: String = buf.drain(..=pos).collect();
                    lines.push(serde_json::from_str::<Value>(line.trim()).unwrap());
                }
                futures::stream::iter(lines)
            })
            .boxed()
    }

    async fn next(s: &mut futures::stream::BoxStream<'static, Value>) -> Value {
        tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn job_events_stream_with_heartbeats_and_resume() {
        let sim = start().await;
        let api = Api::new(&sim);
        let mut s = open(&sim, "topic=Job").await;
        let r = api
            .put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        let index = r.json["Index"].as_u64().unwrap();
        let frame = next(&mut s).await;
        assert_eq!(frame["Index"], index);
        let e = &frame["Events"][0];
        assert_eq!(e["Topic"], "Job");
        assert_eq!(e["Type"], "JobRegistered");
        assert_eq!(e["Key"], "ticker");
        assert_eq!(e["Namespace"], "default");
        assert_eq!(e["Index"], index);
        assert_eq!(e["Payload"]["Job"]["ID"], "ticker");
        let frame = next(&mut s).await;
        assert_eq!(frame["Index"], index + 1);
        assert_eq!(frame["Events"][0]["Type"], "PlanResult");
        // Heartbeats are `{}` lines.
        let hb = loop {
            let f = next(&mut s).await;
            if f == json!({}) {
                break f;
            }
        };
        assert_eq!(hb, json!({}));
        // Resuming at an index replays from there.
        let mut again = open(&sim, &format!("topic=Job:ticker&index={index}")).await;
        let f = next(&mut again).await;
        assert_eq!(f["Index"], index);
        // An index older than the buffer starts at the oldest frame held.
        let mut old = open(&sim, "topic=Deployment&index=1").await;
        let f = next(&mut old).await;
        assert_eq!(f["Events"][0]["Topic"], "Deployment");
        // Key filters exclude other jobs.
        let mut only_web = open(&sim, "topic=Job:web").await;
        api.put(
            "/v1/jobs",
            &service_job("web", 1, rolling(1, 0, false, false)),
        )
        .await;
        let f = loop {
            let f = next(&mut only_web).await;
            if f != json!({}) {
                break f;
            }
        };
        assert!(
            f["Events"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["Key"] == "web")
        );
        sim.shutdown().await;
    }
}

mod acls {
    use super::*;

    fn acl_config() -> SimConfig {
        let mut c = fast_config();
        c.nomad.namespaces = vec!["trading".into()];
        c.tokens = vec![
            TokenConfig {
                product: Product::Nomad,
                secret: "mgmt".into(),
                management: true,
                rules: String::new(),
            },
            TokenConfig {
                product: Product::Nomad,
                secret: "trader".into(),
                management: false,
                rules: r#"namespace "trading" { policy = "write" }
                          agent { policy = "read" }"#
                    .into(),
            },
            TokenConfig {
                product: Product::Nomad,
                secret: "reader".into(),
                management: false,
                rules: r#"namespace "*" { capabilities = ["list-jobs", "read-job"] }"#.into(),
            },
        ];
        c
    }

    #[tokio::test]
    async fn tokens_and_policies_are_enforced() {
        let sim = Sim::start(acl_config()).await.unwrap();
        let anon = Api::new(&sim);
        let r = anon.get("/v1/jobs").await;
        assert_eq!((r.status, r.text.as_str()), (403, "Permission denied"));
        let r = anon.with_token("bogus").get("/v1/jobs").await;
        assert_eq!((r.status, r.text.as_str()), (403, "ACL token not found"));
        let trader = anon.with_token("trader");
        let body = request_body("job-register-ticker");
        let r = trader.put("/v1/jobs?namespace=trading", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = trader.put("/v1/jobs", &body).await;
        assert_eq!((r.status, r.text.as_str()), (403, "Permission denied"));
        assert_eq!(trader.get("/v1/agent/self").await.status, 200);
        let reader = anon.with_token("reader");
        assert_eq!(
            reader.get("/v1/job/ticker?namespace=trading").await.status,
            200
        );
        assert_eq!(
            reader.put("/v1/jobs?namespace=trading", &body).await.status,
            403
        );
        assert_eq!(reader.get("/v1/agent/self").await.status, 403);
        let mgmt = anon.with_token("mgmt");
        assert_eq!(
            mgmt.put("/v1/namespace/ops", &json!({"Name": "ops"}))
                .await
                .status,
            200
        );
        assert_eq!(
            trader
                .put("/v1/namespace/ops2", &json!({"Name": "ops2"}))
                .await
                .status,
            403
        );
        let list = trader.get("/v1/namespaces").await.json;
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["trading"]);
        let all = trader.get("/v1/jobs?namespace=*").await.json;
        assert_eq!(all.as_array().unwrap().len(), 1);
        sim.shutdown().await;
    }
}

mod persistence {
    use super::*;

    #[tokio::test]
    async fn state_survives_a_restart_and_timers_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fast_config();
        cfg.data_dir = Some(dir.path().to_path_buf());
        cfg.persist_debounce = Duration::from_millis(20);
        cfg.nomad.namespaces = vec!["trading".into()];
        // Slow start so allocations are still pending at shutdown.
        cfg.nomad.alloc_start_delay_ms = 400;
        let sim = Sim::start(cfg.clone()).await.unwrap();
        let api = Api::new(&sim);
        let r = api
            .put(
                "/v1/jobs?namespace=trading",
                &request_body("job-register-ticker"),
            )
            .await;
        assert_eq!(r.status, 200);
        let before = api.get("/v1/job/ticker?namespace=trading").await.json;
        let allocs_before = api
            .get("/v1/job/ticker/allocations?namespace=trading")
            .await
            .json;
        assert_eq!(allocs_before[0]["ClientStatus"], "pending");
        sim.shutdown().await;

        cfg.nomad.alloc_start_delay_ms = 30;
        let sim = Sim::start(cfg).await.unwrap();
        let api = Api::new(&sim);
        let after = api.get("/v1/job/ticker?namespace=trading").await;
        assert_eq!(after.status, 200);
        assert_eq!(after.json["JobModifyIndex"], before["JobModifyIndex"]);
        assert_eq!(after.json["TaskGroups"], before["TaskGroups"]);
        assert!(after.index() >= before["ModifyIndex"].as_u64().unwrap());
        let ns = api.get("/v1/namespace/trading").await;
        assert_eq!(ns.status, 200);
        // The pending allocation starts and the deployment completes.
        let d = eventually(10, || async {
            let d = api
                .get("/v1/job/ticker/deployment?namespace=trading")
                .await
                .json;
            (d["Status"] == "successful").then_some(d)
        })
        .await;
        assert_eq!(d["JobVersion"], 0);
        let allocs = api
            .get("/v1/job/ticker/allocations?namespace=trading")
            .await
            .json;
        assert_eq!(allocs[0]["ID"], allocs_before[0]["ID"]);
        // Writes continue above the restored index.
        let mut body = request_body("job-register-ticker");
        body["Job"]["Meta"]["steward.generation"] = json!("9");
        let r = api.put("/v1/jobs?namespace=trading", &body).await;
        assert!(r.json["JobModifyIndex"].as_u64() > before["JobModifyIndex"].as_u64());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_malformed_snapshot_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("state.json"),
            r#"{"format":"steward-sim-state","version":1,"consul":{},"vault":{},"nomad":{"index":"x"}}"#,
        )
        .unwrap();
        let cfg = SimConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..SimConfig::default()
        };
        let err = Sim::start(cfg).await.err().unwrap();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}

mod misc_endpoints {
    use super::*;

    #[tokio::test]
    async fn status_agent_regions_and_deployments_list() {
        let sim = start().await;
        let api = Api::new(&sim);
        assert_eq!(
            api.get("/v1/status/leader").await.json,
            json!("127.0.0.1:4647")
        );
        assert_eq!(api.get("/v1/regions").await.json, json!(["global"]));
        let a = api.get("/v1/agent/self").await.json;
        assert_eq!(a["config"]["Datacenter"], "dc1");
        assert_eq!(a["member"]["Status"], "alive");
        api.put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        let d = wait_deployment(&api, "ticker", 0, "successful").await;
        let list = api.get("/v1/job/ticker/deployments").await.json;
        assert_eq!(list[0]["ID"], d["ID"]);
        let one = api
            .get(&format!("/v1/deployment/{}", d["ID"].as_str().unwrap()))
            .await;
        assert_eq!(one.json["ID"], d["ID"]);
        let r = api
            .post(
                &format!("/v1/deployment/promote/{}", d["ID"].as_str().unwrap()),
                &json!({"All": true}),
            )
            .await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (500, "can't promote terminal deployment")
        );
        sim.shutdown().await;
    }
}

mod s8_pitfalls {
    use super::*;

    /// §8.1: a blocking return is not a change notification — the job list wakes
    /// when only the summaries move (allocations starting), with the same jobs.
    #[tokio::test]
    async fn a_list_wakes_on_summary_changes_with_unchanged_jobs() {
        let mut cfg = fast_config();
        cfg.nomad.alloc_start_delay_ms = 300;
        let sim = Sim::start(cfg).await.unwrap();
        let api = Api::new(&sim);
        api.put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        let before = api.get("/v1/jobs").await;
        let r = api
            .get(&format!("/v1/jobs?index={}&wait=5s", before.index()))
            .await;
        assert!(r.index() > before.index());
        assert_eq!(
            r.json[0]["JobModifyIndex"],
            before.json[0]["JobModifyIndex"]
        );
        assert_eq!(r.json[0]["ID"], before.json[0]["ID"]);
        sim.shutdown().await;
    }

    /// §8.5: identical namespace writes do not move the index.
    #[tokio::test]
    async fn identical_namespace_writes_do_not_tick_the_index() {
        let sim = start().await;
        let api = Api::new(&sim);
        let body = json!({"Name": "ops", "Description": "x"});
        let first = api.put("/v1/namespace/ops", &body).await;
        let again = api.put("/v1/namespace/ops", &body).await;
        assert_eq!(first.index(), again.index());
        let list = api.get("/v1/namespaces").await;
        assert_eq!(list.index(), first.index());
        sim.shutdown().await;
    }

    /// §8.3: index 0 never blocks and reads report the table index.
    #[tokio::test]
    async fn index_zero_never_blocks_on_any_read() {
        let sim = start().await;
        let api = Api::new(&sim);
        api.put("/v1/jobs", &request_body("job-register-ticker"))
            .await;
        let started = std::time::Instant::now();
        for path in [
            "/v1/job/ticker?index=0&wait=5s",
            "/v1/job/ticker/allocations?index=0&wait=5s",
            "/v1/job/ticker/evaluations?index=0&wait=5s",
            "/v1/job/ticker/deployment?index=0&wait=5s",
            "/v1/namespaces?index=0&wait=5s",
        ] {
            let r = api.get(path).await;
            assert_eq!(r.status, 200, "{path}");
            assert!(r.index() >= 1, "{path}");
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        sim.shutdown().await;
    }
}

mod healthy_deadline {
    use super::*;

    #[tokio::test]
    async fn allocations_not_healthy_by_the_deadline_fail_the_deployment() {
        let mut cfg = fast_config();
        // Health takes 2 s, the (scaled) healthy deadline is 300 ms.
        cfg.nomad.alloc_healthy_delay_ms = 2000;
        cfg.nomad.min_healthy_time_factor = 0.001;
        let sim = Sim::start(cfg).await.unwrap();
        let api = Api::new(&sim);
        api.put(
            "/v1/jobs",
            &service_job("web", 1, rolling(1, 0, false, false)),
        )
        .await;
        let d = wait_deployment(&api, "web", 0, "failed").await;
        assert_eq!(
            d["StatusDescription"],
            "Failed due to unhealthy allocations"
        );
        let allocs = api.get("/v1/job/web/allocations").await.json;
        assert_eq!(allocs[0]["ClientStatus"], "running");
        assert_eq!(allocs[0]["DeploymentStatus"]["Healthy"], false);
        sim.shutdown().await;
    }
}

/// Options that make the simulator answer like the Nomad of reference §10 (1.1).
mod older_servers {
    use super::*;
    use futures::StreamExt;

    async fn registered(
        job_list_meta: bool,
        namespace_wildcard: bool,
    ) -> (steward_sim::SimHandle, Api) {
        let mut cfg = fast_config();
        cfg.nomad.namespaces = vec!["trading".into()];
        cfg.nomad.job_list_meta = job_list_meta;
        cfg.nomad.namespace_wildcard = namespace_wildcard;
        let sim = Sim::start(cfg).await.unwrap();
        let api = Api::new(&sim);
        let mut body = request_body("job-register-order-api");
        body["Job"]["Namespace"] = json!("trading");
        body["Job"]["Meta"] = json!({"steward.managed-by": "steward"});
        let r = api.put("/v1/jobs", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Its deployment exists once the scheduler has placed it.
        eventually(10, || {
            let api = api.clone();
            async move {
                let all = api
                    .get("/v1/job/order-api/deployments?namespace=trading")
                    .await
                    .json;
                all.as_array().is_some_and(|a| !a.is_empty()).then_some(())
            }
        })
        .await;
        (sim, api)
    }

    #[tokio::test]
    async fn without_job_list_meta_stubs_carry_no_meta() {
        let (sim, api) = registered(true, true).await;
        let stubs = api.get("/v1/jobs?meta=true&namespace=*").await.json;
        assert_eq!(stubs[0]["Meta"]["steward.managed-by"], "steward", "{stubs}");
        sim.shutdown().await;
        let (sim, api) = registered(false, true).await;
        let stubs = api.get("/v1/jobs?meta=true&namespace=*").await.json;
        assert_eq!(stubs.as_array().unwrap().len(), 1);
        assert!(stubs[0].get("Meta").is_none(), "{stubs}");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn without_the_wildcard_namespace_star_is_a_namespace_named_star() {
        let (sim, api) = registered(true, false).await;
        let r = api.get("/v1/deployments?namespace=*").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json, json!([]), "an empty list, with an index");
        assert!(r.index() > 0);
        let named = api.get("/v1/deployments?namespace=trading").await.json;
        assert_eq!(named.as_array().unwrap().len(), 1, "{named}");
        // The stream sends only heartbeats.
        let resp = reqwest::Client::new()
            .get(format!(
                "{}/v1/event/stream?namespace=*&index=1",
                sim.nomad_url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        let frames: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!frames.is_empty(), "heartbeats arrive");
        assert!(frames.iter().all(|l| l.trim() == "{}"), "{frames:?}");
        sim.shutdown().await;
    }
}
