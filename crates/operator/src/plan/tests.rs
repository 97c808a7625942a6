#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use steward_hashi::nomad::Job;
use steward_render::{RenderContext, render};

use super::*;
use crate::objects::test_support::{self, WEB, at, entry};

fn spec(yaml: &str) -> steward_spec::ServiceSpec {
    let loaded = steward_spec::load("t.yaml", yaml, None);
    let text = loaded.render();
    loaded.spec.unwrap_or_else(|| panic!("{text}"))
}

fn desired(yaml: &str) -> Desired {
    render(&spec(yaml), &RenderContext::default()).unwrap()
}

fn key() -> SpecKey {
    SpecKey::new("shop", "web")
}

fn job(raw: Value) -> LiveObject {
    LiveObject::Job(Arc::new(Job::from_value(raw).unwrap()))
}

/// Everything exactly as desired (as if the server echoed our writes).
fn converged(d: &Desired) -> Live {
    test_support::converged(
        d,
        Arc::new(Job::from_value(d.nomad_job.job.clone()).unwrap()),
    )
}

fn kinds(plan: &Plan) -> Vec<(ObjectKind, StepKind)> {
    plan.steps.iter().map(|s| (s.object.kind, s.kind)).collect()
}

#[test]
fn nothing_live_creates_everything_in_apply_order() {
    let d = desired(WEB);
    let p = plan(&key(), &d, &Live::default(), "jwt-nomad");
    assert_eq!(
        kinds(&p),
        vec![
            (ObjectKind::VaultPolicy, StepKind::Create),
            (ObjectKind::VaultRole, StepKind::Create),
            (ObjectKind::ServiceDefaults, StepKind::Create),
            (ObjectKind::ServiceIntentions, StepKind::Create),
            (ObjectKind::NomadJob, StepKind::Create),
            (ObjectKind::HttpRoute, StepKind::Create),
        ]
    );
    assert!(p.steps.iter().all(|s| match &s.op {
        WriteOp::PutEntry { cas, .. } => *cas == 0,
        WriteOp::RegisterJob { create, .. } => *create,
        _ => true,
    }));
    assert!(conflicts(&key(), &d, &Live::default()).is_empty());
}

#[test]
fn a_converged_key_plans_nothing() {
    let d = desired(WEB);
    let p = plan(&key(), &d, &converged(&d), "jwt-nomad");
    assert!(p.is_empty(), "{:?}", p.steps);
    assert_eq!(p.in_sync.len(), 6);
}

#[test]
fn a_new_image_rewrites_only_the_job_even_though_the_spec_hash_changed() {
    let old = desired(WEB);
    let new = desired(&WEB.replace("web:1.0", "web:1.1"));
    assert_ne!(old.hash, new.hash);
    let p = plan(&key(), &new, &converged(&old), "jwt-nomad");
    assert_eq!(kinds(&p), vec![(ObjectKind::NomadJob, StepKind::Update)]);
    let paths: Vec<_> = p.steps[0].changes.iter().map(|c| c.path.as_str()).collect();
    assert!(
        paths.contains(&"TaskGroups[web].Tasks[app].Config.image"),
        "{paths:?}"
    );
}

#[test]
fn updates_use_the_live_modify_index_as_cas() {
    let d = desired(WEB);
    let mut live = converged(&d);
    let si = at(
        ObjectKind::ServiceIntentions,
        &d.service_intentions.as_ref().unwrap().name,
    );
    let Some(LiveObject::Entry(l)) = live.get(&si) else {
        panic!("no intentions: {live:?}")
    };
    let mut hand = (*l.body).clone();
    hand["Sources"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"Name": "intruder", "Action": "allow"}));
    live.insert(si, entry(&hand, 99));
    let p = plan(&key(), &d, &live, "jwt-nomad");
    assert_eq!(
        kinds(&p),
        vec![(ObjectKind::ServiceIntentions, StepKind::Update)]
    );
    assert!(matches!(p.steps[0].op, WriteOp::PutEntry { cas: 99, .. }));
    assert!(p.steps[0].changes[0].path.contains("intruder"));
}

#[test]
fn a_job_verified_through_the_list_needs_nothing() {
    let d = desired(WEB);
    let mut live = converged(&d);
    live.insert(
        at(ObjectKind::NomadJob, &d.nomad_job.id),
        LiveObject::JobVerified(42),
    );
    let p = plan(&key(), &d, &live, "jwt-nomad");
    assert!(p.is_empty(), "{:?}", p.steps);
    assert!(conflicts(&key(), &d, &live).is_empty());
}

#[test]
fn a_stopped_job_is_registered_again() {
    let d = desired(WEB);
    let mut live = converged(&d);
    let mut raw = d.nomad_job.job.clone();
    raw["Stop"] = json!(true);
    live.insert(at(ObjectKind::NomadJob, &d.nomad_job.id), job(raw));
    let p = plan(&key(), &d, &live, "jwt-nomad");
    assert_eq!(kinds(&p), vec![(ObjectKind::NomadJob, StepKind::Update)]);
    assert_eq!(p.steps[0].changes.last().unwrap().path, "Stop");
}

#[test]
fn unowned_or_foreign_objects_are_conflicts() {
    let d = desired(WEB);
    let mut live = converged(&d);
    let mut hand = d.nomad_job.job.clone();
    hand["Meta"] = json!({"team": "someone"});
    live.insert(at(ObjectKind::NomadJob, &d.nomad_job.id), job(hand));
    let mut foreign = d.service_defaults.as_ref().unwrap().body.clone();
    foreign["Meta"]["steward.spec"] = json!("other/web");
    let sd = &d.service_defaults.as_ref().unwrap().name;
    live.insert(at(ObjectKind::ServiceDefaults, sd), entry(&foreign, 3));
    let policy = &d.vault_policy.as_ref().unwrap().name;
    live.insert(
        at(ObjectKind::VaultPolicy, policy),
        LiveObject::Policy(Arc::new("path \"x\" { capabilities = [\"read\"] }".into())),
    );
    let found = conflicts(&key(), &d, &live);
    let kinds: Vec<_> = found.iter().map(|(o, _)| o.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ObjectKind::VaultPolicy,
            ObjectKind::ServiceDefaults,
            ObjectKind::NomadJob
        ]
    );
    assert!(found[1].1.contains("other/web"));
    assert!(found[2].1.contains("by hand"));
}

#[test]
fn removed_parts_are_deleted_after_the_writes_in_reverse_order() {
    let full = desired(WEB);
    let live = converged(&full);
    // No more secrets, edge routes or L7 rules (still a service with a port).
    let slim = desired(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  check: {http: /healthz}\n",
    );
    let p = plan(&key(), &slim, &live, "jwt-nomad");
    let ks = kinds(&p);
    let first_delete = ks.iter().position(|(_, k)| *k == StepKind::Delete).unwrap();
    assert!(
        ks[..first_delete]
            .iter()
            .all(|(_, k)| *k != StepKind::Delete)
    );
    assert_eq!(
        ks[first_delete..].to_vec(),
        vec![
            (ObjectKind::HttpRoute, StepKind::Delete),
            (ObjectKind::VaultRole, StepKind::Delete),
            (ObjectKind::VaultPolicy, StepKind::Delete),
        ]
    );
    // A route that someone else owns is never deleted.
    let mut live2 = live.clone();
    for r in &full.http_routes {
        let mut b = r.body.clone();
        b["Meta"]["steward.spec"] = json!("other/x");
        live2.insert(at(ObjectKind::HttpRoute, &r.name), entry(&b, 12));
    }
    let p = plan(&key(), &slim, &live2, "jwt-nomad");
    assert!(!kinds(&p).contains(&(ObjectKind::HttpRoute, StepKind::Delete)));
}

#[test]
fn an_http_to_tcp_downgrade_writes_intentions_and_removes_routes_before_the_protocol() {
    let full = desired(WEB);
    let live = converged(&full);
    let tcp = desired(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  allowFrom: [{service: api}]\n  secrets: [{path: secret/data/shop/web/*, capabilities: [read]}]\n",
    );
    let p = plan(&key(), &tcp, &live, "jwt-nomad");
    let ks = kinds(&p);
    let pos = |k: (ObjectKind, StepKind)| ks.iter().position(|x| *x == k).unwrap();
    let intentions = pos((ObjectKind::ServiceIntentions, StepKind::Update));
    let route = pos((ObjectKind::HttpRoute, StepKind::Delete));
    let defaults = pos((ObjectKind::ServiceDefaults, StepKind::Update));
    assert!(intentions < defaults && route < defaults, "{ks:?}");
}
