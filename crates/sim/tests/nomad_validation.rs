//! Nomad's job validation on register for every field Steward renders (services,
//! checks, Connect, networks, update, periodic, vault), with Nomad's own texts
//! (`nomad/structs/services.go`, `structs.go`, `job_endpoint_hook_connect.go`,
//! `job_endpoint_hook_expose_check.go`, `job_endpoint_hooks.go`).
#![allow(clippy::unwrap_used)]

mod nomad_support;

use nomad_support::*;
use serde_json::{Value, json};

/// The order-api register body after `edit`.
fn order_api(edit: impl FnOnce(&mut Value)) -> Value {
    let mut body = request_body("job-register-order-api");
    edit(&mut body["Job"]);
    body
}

/// Registers `body` and returns the 500's plain-text body.
async fn rejected(api: &Api, body: &Value) -> String {
    let r = api.put("/v1/jobs", body).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{}",
        r.text
    );
    r.text
}

fn service(job: &mut Value) -> &mut Value {
    &mut job["TaskGroups"][0]["Services"][0]
}

fn tcp_check(name: &str) -> Value {
    json!({"Name": name, "Type": "tcp", "PortLabel": "http",
           "Interval": 10_000_000_000u64, "Timeout": 2_000_000_000u64})
}

#[tokio::test]
async fn a_tcp_check_on_a_connect_service_is_rejected_and_without_connect_accepted() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| service(j)["Checks"] = json!([tcp_check("order-api-tcp")]));
    let text = rejected(&api, &body).await;
    assert_eq!(
        text,
        "1 error occurred:\n\t* Task group api validation failed: 1 error occurred:\n\t\
         * Task group service validation failed: 1 error occurred:\n\t\
         * Service[0] order-api validation failed: 1 error occurred:\n\t\
         * Check order-api-tcp invalid: tcp checks are not valid for Connect enabled services\n\n\n\n\n\n\n\n"
    );
    let body = order_api(|j| {
        let sv = service(j);
        sv["Checks"] = json!([tcp_check("order-api-tcp")]);
        sv.as_object_mut().unwrap().remove("Connect");
    });
    let r = api.put("/v1/jobs", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_check_needs_a_port_on_itself_or_its_service() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| {
        let sv = service(j);
        sv.as_object_mut().unwrap().remove("PortLabel");
        sv.as_object_mut().unwrap().remove("Connect");
    });
    let text = rejected(&api, &body).await;
    assert!(
        text.contains("* Check order-api-healthz invalid: check requires a port but neither check nor service \"order-api\" have a port"),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn check_type_on_update_and_address_mode_use_nomads_texts() {
    let sim = start().await;
    let api = Api::new(&sim);
    let cases = [
        (
            json!({"Type": "ftp"}),
            "Check order-api-healthz invalid: invalid check type (\"ftp\"), must be one of grpc, tcp, http, script",
        ),
        (
            json!({"OnUpdate": "sometimes"}),
            "Check order-api-healthz invalid: on_update must be \"require_healthy\", \"ignore_warnings\", or \"ignore\"; got \"sometimes\"",
        ),
        (
            json!({"AddressMode": "auto"}),
            "Check order-api-healthz invalid: invalid address_mode \"auto\" - auto only valid for services",
        ),
        (
            json!({"InitialStatus": "great"}),
            "Check order-api-healthz invalid: invalid initial check state (great), must be one of \"passing\", \"warning\", \"critical\" or empty",
        ),
    ];
    for (patch, want) in cases {
        let body = order_api(|j| {
            let c = service(j)["Checks"][0].as_object_mut().unwrap();
            for (k, v) in patch.as_object().unwrap() {
                c.insert(k.clone(), v.clone());
            }
        });
        let text = rejected(&api, &body).await;
        assert!(text.contains(want), "want {want:?} in {text}");
    }
    let body = order_api(|j| service(j)["AddressMode"] = json!("nowhere"));
    let text = rejected(&api, &body).await;
    assert!(
        text.contains(
            "Service address_mode must be \"auto\", \"host\", or \"driver\"; not \"nowhere\""
        ),
        "{text}"
    );
    let body = order_api(|j| service(j)["Provider"] = json!("nomad"));
    let text = rejected(&api, &body).await;
    assert!(
        text.contains("Service with provider nomad cannot include Connect blocks"),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn expose_needs_an_http_or_grpc_check_and_a_sidecar() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| {
        let sv = service(j);
        sv.as_object_mut().unwrap().remove("Connect");
        let mut c = tcp_check("order-api-tcp");
        c["Expose"] = json!(true);
        sv["Checks"] = json!([c]);
    });
    let text = rejected(&api, &body).await;
    assert!(
        text.starts_with(
            "2 errors occurred:\n\t* exposed service check api->order-api->order-api-tcp requires use of sidecar_proxy\n\t"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "* Check order-api-tcp invalid: expose may only be set on HTTP or gRPC checks"
        ),
        "{text}"
    );
    // The renderer's form: an exposed HTTP check on a sidecar service in bridge mode.
    let body = order_api(|j| service(j)["Checks"][0]["Expose"] = json!(true));
    let r = api.put("/v1/jobs", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_networks_follow_the_connect_admission_hook() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| j["TaskGroups"][0]["Networks"][0]["Mode"] = json!("host"));
    let text = rejected(&api, &body).await;
    assert!(
        text.starts_with(
            "1 error occurred:\n\t* connect sidecar: invalid network mode for Consul Connect: group \"api\" uses network mode \"host\"; must be \"bridge\" or \"cni/*\"\n\n"
        ),
        "{text}"
    );
    let body = order_api(|j| {
        let net = j["TaskGroups"][0]["Networks"][0].clone();
        j["TaskGroups"][0]["Networks"] = json!([net.clone(), {"Mode": "bridge"}]);
    });
    let text = rejected(&api, &body).await;
    assert!(
        text.contains(
            "* connect sidecar: must have exactly one network for Consul Connect: group \"api\" has 2 networks"
        ),
        "{text}"
    );
    let body = order_api(|j| service(j)["Name"] = json!("Order-api"));
    let text = rejected(&api, &body).await;
    assert!(
        text.contains(
            "* Consul Connect service name \"Order-api\" in group \"api\" must not contain uppercase characters"
        ),
        "{text}"
    );
    let body = order_api(|j| {
        let mut other = service(j).clone();
        other["Name"] = json!("order-admin");
        other["Checks"] = json!([]);
        let services = j["TaskGroups"][0]["Services"].as_array_mut().unwrap();
        services.push(other);
    });
    let text = rejected(&api, &body).await;
    assert!(
        text.contains(
            "* Consul Connect services \"order-admin\" and \"order-api\" in group \"api\" using same address for upstreams (:9001)"
        ),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_periodic_job_takes_a_spec_or_specs_not_both() {
    let sim = start().await;
    let api = Api::new(&sim);
    let mut body = request_body("job-register-nightly-settlement");
    let spec = body["Job"]["Periodic"]["Spec"].clone();
    body["Job"]["Periodic"]["Specs"] = json!([spec]);
    let text = rejected(&api, &body).await;
    assert!(text.contains("* Only cron or crons may be used"), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn memory_max_is_accepted_with_nomads_oversubscription_warning() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| {
        j["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMaxMB"] = json!(768);
    });
    let r = api.put("/v1/jobs", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["Warnings"],
        "1 warning(s):\n\n* Memory oversubscription is not enabled; Task \"api.app\" memory_max value will be ignored. Update the Scheduler Configuration to allow oversubscription."
    );
    let r = api.put("/v1/validate/job", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json["Warnings"]
            .as_str()
            .unwrap()
            .contains("Task \"api.app\" memory_max value will be ignored"),
        "{}",
        r.text
    );
    sim.shutdown().await;
    // A scheduler configuration with oversubscription on has nothing to warn about.
    let mut config = fast_config();
    config.nomad.memory_oversubscription = true;
    let sim = steward_sim::Sim::start(config).await.unwrap();
    let r = Api::new(&sim).put("/v1/jobs", &body).await;
    assert_eq!((r.status, &r.json["Warnings"]), (200, &json!("")));
    sim.shutdown().await;
}

#[tokio::test]
async fn group_network_ports_follow_validate_networks() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = order_api(|j| {
        j["TaskGroups"][0]["Networks"][0]["DynamicPorts"] = json!([
            {"Label": "http", "To": 8080},
            {"Label": "http", "To": 70000},
        ]);
        j["TaskGroups"][0]["Networks"][0]["ReservedPorts"] = json!([
            {"Label": "a", "Value": 8000},
            {"Label": "b", "Value": 8000},
            {"Label": "c", "Value": 70000, "To": -2},
        ]);
    });
    let text = rejected(&api, &body).await;
    for want in [
        "* Port label http already in use by taskgroup network",
        "* Static port 8000 already reserved by taskgroup network:a",
        "* Port c (70000) cannot be greater than 65535",
        "* Port \"c\" cannot be mapped to negative value -2",
        "* Port \"http\" cannot be mapped to a port (70000) greater than 65535",
    ] {
        assert!(text.contains(want), "want {want:?} in {text}");
    }
    assert!(
        text.contains("Task group network validation failed: 5 errors occurred:"),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn update_and_vault_blocks_use_nomads_texts() {
    // These rules held before; kept here so each rendered field has its test.
    let sim = start().await;
    let api = Api::new(&sim);
    let cases: [(Value, &str); 3] = [
        (
            json!({"HealthyDeadline": 300_000_000_000u64, "ProgressDeadline": 60_000_000_000u64}),
            "Healthy deadline must be less than progress deadline: 5m0s > 1m0s",
        ),
        (
            json!({"Canary": 0, "AutoPromote": true}),
            "Auto Promote requires a Canary count greater than zero",
        ),
        (
            json!({"Canary": -1}),
            "Canary count can not be less than zero: -1 < 0",
        ),
    ];
    for (patch, want) in cases {
        let body = order_api(|j| {
            let u = j["Update"].as_object_mut().unwrap();
            for (k, v) in patch.as_object().unwrap() {
                u.insert(k.clone(), v.clone());
            }
        });
        let text = rejected(&api, &body).await;
        assert!(text.contains(want), "want {want:?} in {text}");
    }
    let body = order_api(|j| {
        j["TaskGroups"][0]["Tasks"][0]["Vault"] =
            json!({"Role": "r", "ChangeMode": "signal", "ChangeSignal": ""});
    });
    let text = rejected(&api, &body).await;
    assert!(
        text.contains(
            "Vault validation failed: 1 error occurred:\n\t* Signal must be specified when using change mode \"signal\""
        ),
        "{text}"
    );
    let body = order_api(|j| {
        j["TaskGroups"][0]["Tasks"][0]["Vault"] = json!({"Role": "r", "ChangeMode": "explode"});
    });
    let text = rejected(&api, &body).await;
    assert!(text.contains("* Unknown change mode \"explode\""), "{text}");
    sim.shutdown().await;
}
