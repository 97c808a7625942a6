//! The diff against live objects: for every example (and test spec), the rendered objects
//! as a real server returns them (built by tests/support from the canonicalisation facts
//! of the reference and the captured fixtures, and checked in as snapshots) diff empty
//! against the desired objects, and changing one owned field on the server yields
//! exactly that field.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use steward_render::names::{META_GENERATION, META_HASH};
use steward_render::{
    Desired, FieldChange, RenderContext, diff_config_entry, diff_job, diff_policy, diff_role,
    render,
};
use steward_spec::ServiceSpec;
use support::{
    canonicalise_like_nomad, normalise_like_consul, policy_reformatted, vault_role_read_form,
};

fn ctx() -> RenderContext {
    RenderContext {
        generation: 7,
        ..RenderContext::default()
    }
}

/// Every spec the tests cover: the examples, then the extra test specs.
fn all_specs() -> Vec<(String, ServiceSpec)> {
    support::examples()
        .into_iter()
        .chain(support::test_specs())
        .map(|(stem, _, spec)| (stem, spec))
        .collect()
}

/// The live form of every rendered object.
struct Live {
    job: Value,
    service_defaults: Option<Value>,
    service_intentions: Option<Value>,
    http_routes: Vec<Value>,
    policy: Option<String>,
    role: Option<Value>,
}

fn live(desired: &Desired) -> Live {
    Live {
        job: canonicalise_like_nomad(&desired.nomad_job.job),
        service_defaults: desired
            .service_defaults
            .as_ref()
            .map(|e| normalise_like_consul(&e.body)),
        service_intentions: desired
            .service_intentions
            .as_ref()
            .map(|e| normalise_like_consul(&e.body)),
        http_routes: desired
            .http_routes
            .iter()
            .map(|e| normalise_like_consul(&e.body))
            .collect(),
        policy: desired
            .vault_policy
            .as_ref()
            .map(|p| policy_reformatted(&p.hcl)),
        role: desired
            .vault_role
            .as_ref()
            .map(|r| vault_role_read_form(&r.body)),
    }
}

#[track_caller]
fn assert_one(changes: &[FieldChange], path: &str, desired: Option<Value>, live: Option<Value>) {
    assert_eq!(
        changes.len(),
        1,
        "expected exactly one change at {path}, got {changes:#?}"
    );
    let c = &changes[0];
    assert_eq!(c.path, path, "{c:#?}");
    assert_eq!(c.desired, desired, "{c:#?}");
    assert_eq!(c.live, live, "{c:#?}");
}

/// The task group (there is one) and the `app` task of a live job.
fn group_mut(job: &mut Value) -> &mut Value {
    &mut job["TaskGroups"][0]
}

fn app_mut(job: &mut Value) -> &mut Value {
    let tasks = group_mut(job)["Tasks"].as_array_mut().unwrap();
    tasks.iter_mut().find(|t| t["Name"] == "app").unwrap()
}

#[test]
fn live_objects_are_checked_in_as_snapshots() {
    for (stem, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let l = live(&desired);
        let snapshot = json!({
            "job": l.job,
            "service_defaults": l.service_defaults,
            "service_intentions": l.service_intentions,
            "http_routes": l.http_routes,
            "vault_role": l.role,
        });
        insta::assert_json_snapshot!(format!("{stem}.live"), snapshot);
        if let Some(policy) = &l.policy {
            insta::assert_snapshot!(format!("{stem}.live.policy"), policy);
        }
    }
}

#[test]
fn every_live_object_diffs_empty_against_its_desired_object() {
    for (stem, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let l = live(&desired);
        let changes = diff_job(&desired.nomad_job.job, &l.job);
        assert!(changes.is_empty(), "{stem}: job: {changes:#?}");
        let pairs = [
            (&desired.service_defaults, &l.service_defaults),
            (&desired.service_intentions, &l.service_intentions),
        ];
        for (d, lv) in pairs {
            assert_eq!(d.is_some(), lv.is_some());
            if let (Some(d), Some(lv)) = (d, lv) {
                let changes = diff_config_entry(&d.body, lv);
                assert!(changes.is_empty(), "{stem}: {}: {changes:#?}", d.kind);
            }
        }
        for (d, lv) in desired.http_routes.iter().zip(&l.http_routes) {
            let changes = diff_config_entry(&d.body, lv);
            assert!(changes.is_empty(), "{stem}: {}: {changes:#?}", d.name);
        }
        if let (Some(d), Some(lv)) = (&desired.vault_policy, &l.policy) {
            assert_ne!(&d.hcl, lv, "the live policy text is formatted differently");
            let changes = diff_policy(&d.hcl, lv);
            assert!(changes.is_empty(), "{stem}: policy: {changes:#?}");
        }
        if let (Some(d), Some(lv)) = (&desired.vault_role, &l.role) {
            let changes = diff_role(&d.body, lv);
            assert!(changes.is_empty(), "{stem}: role: {changes:#?}");
            let envelope = json!({"request_id": "x", "data": lv, "warnings": null});
            assert!(
                diff_role(&d.body, &envelope).is_empty(),
                "{stem}: role envelope"
            );
        }
    }
}

#[test]
fn a_changed_image_or_command_is_exactly_that_field() {
    for (stem, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let mut job = live(&desired).job;
        let group = desired.nomad_job.id.clone();
        let field = if spec.spec.image.is_some() {
            "image"
        } else {
            "command"
        };
        let before = app_mut(&mut job)["Config"][field].clone();
        app_mut(&mut job)["Config"][field] = json!("registry.example/evil:latest");
        let changes = diff_job(&desired.nomad_job.job, &job);
        let path = format!("TaskGroups[{group}].Tasks[app].Config.{field}");
        assert_one(
            &changes,
            &path,
            Some(before),
            Some(json!("registry.example/evil:latest")),
        );
        let _ = stem;
    }
}

#[test]
fn a_changed_count_is_exactly_that_field() {
    for (_, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let mut job = live(&desired).job;
        let count = group_mut(&mut job)["Count"].as_u64().unwrap();
        group_mut(&mut job)["Count"] = json!(count + 5);
        let path = format!("TaskGroups[{}].Count", desired.nomad_job.id);
        assert_one(
            &diff_job(&desired.nomad_job.job, &job),
            &path,
            Some(json!(count)),
            Some(json!(count + 5)),
        );
    }
}

#[test]
fn the_replica_override_shows_as_a_count_change_only() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "market-data-cache")
        .unwrap();
    let scaled = render(
        &spec,
        &RenderContext {
            replicas: Some(10),
            ..ctx()
        },
    )
    .unwrap();
    let live_now = live(&render(&spec, &ctx()).unwrap()).job;
    let changes = diff_job(&scaled.nomad_job.job, &live_now);
    assert_one(
        &changes,
        "TaskGroups[market-data-cache].Count",
        Some(json!(10)),
        Some(json!(2)),
    );
}

#[test]
fn generation_is_ignored_and_hash_is_compared() {
    for (_, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let mut job = live(&desired).job;
        job["Meta"][META_GENERATION] = json!("999");
        assert!(diff_job(&desired.nomad_job.job, &job).is_empty());
        let hash = job["Meta"][META_HASH].clone();
        job["Meta"][META_HASH] = json!("stale");
        assert_one(
            &diff_job(&desired.nomad_job.job, &job),
            "Meta[\"steward.hash\"]",
            Some(hash),
            Some(json!("stale")),
        );
        if let Some(entry) = &desired.service_defaults {
            let mut live_entry = normalise_like_consul(&entry.body);
            live_entry["Meta"][META_GENERATION] = json!("1");
            assert!(diff_config_entry(&entry.body, &live_entry).is_empty());
            live_entry["Meta"]
                .as_object_mut()
                .unwrap()
                .remove("steward.spec");
            let changes = diff_config_entry(&entry.body, &live_entry);
            assert_one(
                &changes,
                "Meta[\"steward.spec\"]",
                Some(json!(desired.key)),
                None,
            );
        }
    }
}

#[test]
fn env_changes_are_reported_per_variable() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "order-api")
        .unwrap();
    let desired = render(&spec, &ctx()).unwrap();
    let mut job = live(&desired).job;
    app_mut(&mut job)["Env"]["DEBUG"] = json!("1");
    let changes = diff_job(&desired.nomad_job.job, &job);
    assert_one(
        &changes,
        "TaskGroups[order-api].Tasks[app].Env.DEBUG",
        None,
        Some(json!("1")),
    );
    let mut job = live(&desired).job;
    app_mut(&mut job)["Env"]
        .as_object_mut()
        .unwrap()
        .remove("LOG_LEVEL");
    let changes = diff_job(&desired.nomad_job.job, &job);
    assert_one(
        &changes,
        "TaskGroups[order-api].Tasks[app].Env.LOG_LEVEL",
        Some(json!("info")),
        None,
    );
}

#[test]
fn upstream_check_task_and_vault_drift_are_found() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "order-api")
        .unwrap();
    let desired = render(&spec, &ctx()).unwrap();
    let service = "TaskGroups[order-api].Services[order-api]";

    let mut job = live(&desired).job;
    let upstreams =
        &mut group_mut(&mut job)["Services"][0]["Connect"]["SidecarService"]["Proxy"]["Upstreams"];
    let removed = upstreams.as_array_mut().unwrap().remove(0);
    let changes = diff_job(&desired.nomad_job.job, &job);
    let path = format!("{service}.Connect.SidecarService.Proxy.Upstreams[price-feed]");
    assert_one(
        &changes,
        &path,
        Some(json!({"DestinationName": "price-feed", "LocalBindPort": 9001})),
        None,
    );
    assert_eq!(removed["DestinationName"], "price-feed");

    let mut job = live(&desired).job;
    group_mut(&mut job)["Services"][0]["Checks"][0]["Interval"] = json!(30_000_000_000_u64);
    let changes = diff_job(&desired.nomad_job.job, &job);
    let path = format!("{service}.Checks[order-api-health].Interval");
    assert_one(
        &changes,
        &path,
        Some(json!(10_000_000_000_u64)),
        Some(json!(30_000_000_000_u64)),
    );

    let mut job = live(&desired).job;
    let extra = json!({"Name": "debug", "Driver": "docker", "Config": {"image": "busybox"}});
    group_mut(&mut job)["Tasks"]
        .as_array_mut()
        .unwrap()
        .push(extra.clone());
    let changes = diff_job(&desired.nomad_job.job, &job);
    assert_one(
        &changes,
        "TaskGroups[order-api].Tasks[debug]",
        None,
        Some(extra),
    );

    let mut job = live(&desired).job;
    app_mut(&mut job)["Vault"]["Role"] = json!("nomad-workloads");
    let changes = diff_job(&desired.nomad_job.job, &job);
    let path = "TaskGroups[order-api].Tasks[app].Vault.Role";
    assert_one(
        &changes,
        path,
        Some(json!("steward-trading-order-api")),
        Some(json!("nomad-workloads")),
    );
}

#[test]
fn an_upstream_added_on_the_server_is_found() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "price-feed")
        .unwrap();
    let desired = render(&spec, &ctx()).unwrap();
    let mut job = live(&desired).job;
    let proxy = &mut group_mut(&mut job)["Services"][0]["Connect"]["SidecarService"]["Proxy"];
    proxy["Upstreams"] = json!([{"DestinationName": "vault", "LocalBindPort": 8200}]);
    let changes = diff_job(&desired.nomad_job.job, &job);
    let path =
        "TaskGroups[price-feed].Services[price-feed].Connect.SidecarService.Proxy.Upstreams[vault]";
    assert_one(
        &changes,
        path,
        None,
        Some(json!({"DestinationName": "vault", "LocalBindPort": 8200})),
    );
}

#[test]
fn a_vault_block_added_on_the_server_is_found() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "price-feed")
        .unwrap();
    let desired = render(&spec, &ctx()).unwrap();
    let mut job = live(&desired).job;
    app_mut(&mut job)["Vault"] = json!({"Role": "someone-else", "ChangeMode": "restart"});
    let changes = diff_job(&desired.nomad_job.job, &job);
    assert_one(
        &changes,
        "TaskGroups[price-feed].Tasks[app].Vault",
        None,
        Some(json!({"Role": "someone-else", "ChangeMode": "restart"})),
    );
}

#[test]
fn a_changed_intention_source_is_exactly_that_field() {
    let mut checked = 0;
    for (stem, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let Some(entry) = &desired.service_intentions else {
            continue;
        };
        let sources = entry.body["Sources"].as_array().unwrap();
        // The first source with an L4 action, and the first with permissions.
        if let Some(source) = sources.iter().find(|s| s.get("Action").is_some()) {
            let name = source["Name"].as_str().unwrap();
            let mut l = normalise_like_consul(&entry.body);
            let flipped = if source["Action"] == "allow" {
                "deny"
            } else {
                "allow"
            };
            let live_source = l["Sources"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["Name"] == name)
                .unwrap();
            live_source["Action"] = json!(flipped);
            let changes = diff_config_entry(&entry.body, &l);
            assert_one(
                &changes,
                &format!("Sources[{name}].Action"),
                Some(source["Action"].clone()),
                Some(json!(flipped)),
            );
            checked += 1;
        }
        if let Some(source) = sources.iter().find(|s| s.get("Permissions").is_some()) {
            let name = source["Name"].as_str().unwrap();
            let mut l = normalise_like_consul(&entry.body);
            let live_source = l["Sources"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["Name"] == name)
                .unwrap();
            live_source["Permissions"][0]["HTTP"]["Methods"] = json!(["DELETE"]);
            let changes = diff_config_entry(&entry.body, &l);
            let path = format!("Sources[{name}].Permissions[0].HTTP.Methods");
            let before = source["Permissions"][0]["HTTP"].get("Methods").cloned();
            assert_one(&changes, &path, before, Some(json!(["DELETE"])));
            checked += 1;
        }
        let mut l = normalise_like_consul(&entry.body);
        let intruder =
            json!({"Name": "intruder", "Action": "allow", "Precedence": 9, "Type": "consul"});
        l["Sources"].as_array_mut().unwrap().insert(0, intruder);
        let changes = diff_config_entry(&entry.body, &l);
        // Values are reported in their normalised form (server-computed fields stripped).
        assert_one(
            &changes,
            "Sources[intruder]",
            None,
            Some(json!({"Name": "intruder", "Action": "allow"})),
        );
        let _ = stem;
    }
    assert!(
        checked >= 4,
        "too few intention sources exercised: {checked}"
    );
}

#[test]
fn a_changed_policy_path_is_exactly_that_field() {
    let mut checked = 0;
    for (_, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        let Some(policy) = &desired.vault_policy else {
            continue;
        };
        let first = spec.spec.secrets[0].path.clone();
        let caps = |text: &str| {
            steward_render::normalise::parse_policy(text).unwrap().paths[&first]["capabilities"]
                .clone()
        };
        let live_hcl = policy
            .hcl
            .replacen("capabilities = [", "capabilities = [\"sudo\", ", 1);
        let changes = diff_policy(&policy.hcl, &live_hcl);
        let path = format!("path[{first:?}].capabilities");
        assert_one(
            &changes,
            &path,
            Some(caps(&policy.hcl)),
            Some(caps(&live_hcl)),
        );

        let extra = format!(
            "{live}\npath \"secret/data/*\" {{\n  capabilities = [\"read\"]\n}}\n",
            live = policy.hcl
        );
        let changes = diff_policy(&policy.hcl, &extra);
        assert_one(
            &changes,
            "path[\"secret/data/*\"]",
            None,
            Some(json!({"capabilities": ["read"]})),
        );

        let unmarked = policy.hcl.lines().skip(1).collect::<Vec<_>>().join("\n");
        let changes = diff_policy(&policy.hcl, &unmarked);
        assert_one(&changes, "marker", Some(json!(desired.key)), None);
        checked += 1;
    }
    assert!(checked >= 3);
}

#[test]
fn a_changed_route_host_is_exactly_that_field() {
    let mut checked = 0;
    for (_, spec) in all_specs() {
        let desired = render(&spec, &ctx()).unwrap();
        for route in &desired.http_routes {
            let mut l = normalise_like_consul(&route.body);
            let before = l["Hostnames"].clone();
            l["Hostnames"] = json!(["evil.example.com"]);
            assert_one(
                &diff_config_entry(&route.body, &l),
                "Hostnames",
                Some(before),
                Some(json!(["evil.example.com"])),
            );

            let mut l = normalise_like_consul(&route.body);
            l["Rules"][0]["Filters"]["TimeoutFilter"] = json!({"RequestTimeout": "2m0s"});
            let changes = diff_config_entry(&route.body, &l);
            assert_eq!(changes.len(), 1, "{changes:#?}");
            assert!(
                changes[0]
                    .path
                    .starts_with("Rules[0].Filters.TimeoutFilter"),
                "{changes:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

#[test]
fn a_changed_protocol_or_role_field_is_exactly_that_field() {
    let (_, spec) = all_specs()
        .into_iter()
        .find(|(s, _)| s == "order-api")
        .unwrap();
    let desired = render(&spec, &ctx()).unwrap();
    let entry = desired.service_defaults.unwrap();
    let mut l = normalise_like_consul(&entry.body);
    l["Protocol"] = json!("tcp");
    assert_one(
        &diff_config_entry(&entry.body, &l),
        "Protocol",
        Some(json!("http")),
        Some(json!("tcp")),
    );

    let role = desired.vault_role.unwrap();
    let mut l = vault_role_read_form(&role.body);
    l["bound_claims"]["nomad_job_id"] = json!("other");
    let changes = diff_role(&role.body, &l);
    assert_one(
        &changes,
        "bound_claims.nomad_job_id",
        Some(json!("order-api")),
        Some(json!("other")),
    );
    let mut l = vault_role_read_form(&role.body);
    l["token_period"] = json!(3600);
    assert_one(
        &diff_role(&role.body, &l),
        "token_period",
        Some(json!(1800)),
        Some(json!(3600)),
    );
    let mut l = vault_role_read_form(&role.body);
    l["token_policies"] = json!(["default", "steward-trading-order-api"]);
    let changes = diff_role(&role.body, &l);
    assert_one(
        &changes,
        "token_policies",
        Some(json!(["steward-trading-order-api"])),
        Some(json!(["default", "steward-trading-order-api"])),
    );
}

#[test]
fn the_support_formats_durations_like_go() {
    let cases = [
        (0, "0s"),
        (500_000_000, "500ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
    ];
    for (nanos, text) in cases {
        assert_eq!(support::go_duration(nanos), text);
    }
    assert_eq!(support::go_duration(5_400_000_000_000), "1h30m0s");
    assert_eq!(support::go_duration(1_500), "1.5µs");
}
