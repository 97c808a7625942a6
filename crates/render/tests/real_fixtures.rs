//! The diff against what real servers returned (captured fixtures, copied into
//! tests/fixtures from the shared reference: Consul 1.10.12, Nomad 1.1.2, Vault 1.7.3):
//! the object that was written diffs empty against what was read back.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use steward_render::{diff_config_entry, diff_job, diff_policy, diff_role};
use support::fixture;

fn written(request: &str) -> Value {
    fixture(request)["body"].clone()
}

fn read(response: &str) -> Value {
    let response = fixture(response);
    assert_eq!(response["status"], 200);
    response["body"].clone()
}

#[test]
fn registered_jobs_diff_empty_against_what_nomad_returns() {
    for name in ["order-api", "nightly-settlement", "ticker"] {
        let job = written(&format!("nomad/job-register-{name}.request.json"))["Job"].clone();
        let live = read(&format!("nomad/job-get-{name}.response.json"));
        let changes = diff_job(&job, &live);
        assert!(changes.is_empty(), "{name}: {changes:#?}");
    }
}

#[test]
fn a_change_to_the_real_live_job_is_found() {
    let job = written("nomad/job-register-order-api.request.json")["Job"].clone();
    let mut live = read("nomad/job-get-order-api.response.json");
    live["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
        json!("registry.example/order-api:9.9.9");
    let changes = diff_job(&job, &live);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, "TaskGroups[api].Tasks[app].Config.image");
    assert_eq!(
        changes[0].desired,
        Some(json!("registry.example/order-api:1.4.2"))
    );

    // The job-level update block reads back reduced (its fields moved into the group):
    // a changed group value must still be found.
    let mut live = read("nomad/job-get-order-api.response.json");
    live["TaskGroups"][0]["Update"]["AutoRevert"] = json!(false);
    let changes = diff_job(&job, &live);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, "TaskGroups[api].Update.AutoRevert");
}

#[test]
fn written_config_entries_diff_empty_against_what_consul_returns() {
    for name in ["service-intentions-order-api", "service-defaults-order-api"] {
        let entry = written(&format!("consul/config-put-{name}.request.json"));
        let live = read(&format!("consul/config-get-{name}.response.json"));
        let changes = diff_config_entry(&entry, &live);
        assert!(changes.is_empty(), "{name}: {changes:#?}");
    }
}

#[test]
fn the_written_role_and_policy_diff_empty_against_what_vault_returns() {
    let role = written("vault/jwt-role-write.request.json");
    let live = read("vault/jwt-role-read.response.json");
    assert!(
        diff_role(&role, &live).is_empty(),
        "{:#?}",
        diff_role(&role, &live)
    );
    assert!(diff_role(&role, &live["data"]).is_empty());

    let policy = written("vault/policy-put.request.json")["policy"]
        .as_str()
        .unwrap()
        .to_owned();
    let live = read("vault/policy-get.response.json")["data"]["policy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(diff_policy(&policy, &live).is_empty());
}
