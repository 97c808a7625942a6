//! Golden files: the objects rendered for every example in deploy/examples and every
//! extra spec in tests/specs, as JSON, plus the job and the policy as HCL.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use steward_render::{RenderContext, render};

fn ctx() -> RenderContext {
    RenderContext {
        generation: 7,
        ..RenderContext::default()
    }
}

fn snapshot_all(specs: Vec<(String, String, steward_spec::ServiceSpec)>) {
    for (stem, _, spec) in specs {
        let desired = render(&spec, &ctx()).unwrap();
        insta::assert_json_snapshot!(format!("{stem}.desired"), desired);

        let job_hcl = steward_render::hcl::job_hcl(&desired.nomad_job.job);
        hcl::from_str::<hcl::Body>(&job_hcl)
            .unwrap_or_else(|e| panic!("{stem}: job HCL does not parse: {e}\n{job_hcl}"));
        insta::assert_snapshot!(format!("{stem}.job.hcl"), job_hcl);

        if let Some(policy) = &desired.vault_policy {
            hcl::from_str::<hcl::Body>(&policy.hcl).unwrap();
            insta::assert_snapshot!(format!("{stem}.policy.hcl"), policy.hcl);
        }
    }
}

#[test]
fn every_example_renders_to_its_golden_objects() {
    snapshot_all(support::examples());
}

#[test]
fn every_test_spec_renders_to_its_golden_objects() {
    let specs = support::test_specs();
    assert!(!specs.is_empty());
    snapshot_all(specs);
}

#[test]
fn the_job_hcl_names_every_field_of_the_job_json() {
    // Every JSON field name must reach the HCL (as its snake_case attribute or block).
    fn keys(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    for (stem, _, spec) in support::examples().into_iter().chain(support::test_specs()) {
        let job = render(&spec, &ctx()).unwrap().nomad_job.job;
        let text = steward_render::hcl::job_hcl(&job);
        let mut names = Vec::new();
        keys(&job, &mut names);
        for key in names {
            let expected = match key.as_str() {
                "ID" | "Name" | "Label" => continue, // block labels
                "TaskGroups" => "group".to_owned(),
                "Tasks" => "task".to_owned(),
                "DynamicPorts" => "port".to_owned(),
                "Networks" => "network".to_owned(),
                "Services" => "service".to_owned(),
                "Checks" => "check".to_owned(),
                "Spec" => "crons".to_owned(),
                "SpecType" => continue, // cron is the only type
                "CPU" => "cpu".to_owned(),
                "MemoryMB" => "memory".to_owned(),
                "MemoryMaxMB" => "memory_max".to_owned(),
                "PortLabel" => "port".to_owned(),
                k if k.starts_with("steward.")
                    || k.chars().next().is_some_and(|c| c.is_lowercase()) =>
                {
                    k.to_owned()
                }
                k if k
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) =>
                {
                    k.to_owned()
                }
                k => k
                    .chars()
                    .enumerate()
                    .flat_map(|(i, c)| {
                        let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                        sep.into_iter()
                            .chain(std::iter::once(c.to_ascii_lowercase()))
                    })
                    .collect(),
            };
            assert!(
                text.contains(&expected),
                "{stem}: `{key}` (as `{expected}`) missing from\n{text}"
            );
        }
    }
}
