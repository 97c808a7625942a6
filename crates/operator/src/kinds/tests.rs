#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use steward_render::names::META_HASH;
use steward_render::{RenderContext, render};

use super::*;
use crate::objects::{LiveEntry, StepKind};

const WEB: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  check: {http: /healthz}\n  allowFrom: [{service: api, methods: [GET]}]\n  secrets: [{path: secret/data/shop/web/*, capabilities: [read]}]\n  edge: {routes: [{host: web.shop.apps.internal, pathPrefix: /}]}\n";

fn desired() -> Desired {
    let loaded = steward_spec::load("t.yaml", WEB, None);
    let text = loaded.render();
    let spec = loaded.spec.unwrap_or_else(|| panic!("{text}"));
    render(&spec, &RenderContext::default()).unwrap()
}

fn key() -> SpecKey {
    SpecKey::new("shop", "web")
}

fn entry(body: Value, modify_index: u64) -> LiveObject {
    LiveObject::Entry(LiveEntry {
        body: Arc::new(body),
        modify_index,
        same_as_desired: false,
    })
}

#[test]
fn every_object_kind_is_registered_exactly_once_in_apply_order() {
    let registered: Vec<ObjectKind> = KINDS.iter().map(|k| k.kind()).collect();
    assert_eq!(registered, ObjectKind::APPLY_ORDER.to_vec());
    for kind in ObjectKind::APPLY_ORDER {
        assert_eq!(of(kind).kind(), kind);
        let times = KINDS.iter().filter(|k| k.kind() == kind).count();
        assert_eq!(times, 1, "{kind} registered {times} times");
    }
}

#[test]
fn every_kind_names_the_objects_the_spec_renders_in_its_order() {
    let d = desired();
    let named: Vec<ObjectRef> = KINDS
        .iter()
        .flat_map(|k| {
            k.desired(&d).into_iter().map(|name| ObjectRef {
                kind: k.kind(),
                name,
            })
        })
        .collect();
    assert_eq!(named, d.objects());
}

#[test]
fn a_config_entry_is_created_with_cas_zero_and_updated_at_the_live_index() {
    let d = desired();
    let kind = of(ObjectKind::ServiceDefaults);
    let sd = d.service_defaults.as_ref().unwrap();
    let created = kind.compare(&d, &sd.name, None).unwrap();
    assert_eq!(created.kind, StepKind::Create);
    assert!(matches!(created.op, WriteOp::PutEntry { cas: 0, .. }));

    let mut grpc = sd.body.clone();
    grpc["Protocol"] = json!("grpc");
    let updated = kind.compare(&d, &sd.name, Some(&entry(grpc, 41))).unwrap();
    assert_eq!(updated.kind, StepKind::Update);
    assert!(matches!(updated.op, WriteOp::PutEntry { cas: 41, .. }));
    assert!(
        updated.changes.iter().any(|c| c.path == "Protocol"),
        "{:?}",
        updated.changes
    );
}

#[test]
fn a_config_entry_differing_only_in_the_spec_hash_is_in_sync() {
    let d = desired();
    let kind = of(ObjectKind::ServiceIntentions);
    let si = d.service_intentions.as_ref().unwrap();
    let mut older = si.body.clone();
    older["Meta"][META_HASH] = json!("an-older-spec-hash");
    assert_eq!(kind.compare(&d, &si.name, Some(&entry(older, 7))), None);
}

#[test]
fn a_config_entry_is_owned_by_its_meta_only() {
    let d = desired();
    let kind = of(ObjectKind::HttpRoute);
    let route = &d.http_routes[0];
    let ours = entry(route.body.clone(), 3);
    assert_eq!(kind.owner(&key(), &route.name, &ours), Some(key()));

    let mut foreign = route.body.clone();
    foreign["Meta"]["steward.spec"] = json!("other/x");
    let foreign = entry(foreign, 3);
    assert_eq!(
        kind.owner(&key(), &route.name, &foreign),
        Some(SpecKey::new("other", "x"))
    );

    let mut by_hand = route.body.clone();
    by_hand["Meta"] = json!({"team": "someone"});
    assert_eq!(kind.owner(&key(), &route.name, &entry(by_hand, 3)), None);

    let gone = kind.delete(&route.name, &ours, "jwt-nomad").unwrap();
    assert!(matches!(gone.op, WriteOp::DeleteEntry { cas: 3, .. }));
}

#[test]
fn a_job_the_list_vouched_for_is_ours_in_sync_and_never_deleted_by_a_reconcile() {
    let d = desired();
    let kind = of(ObjectKind::NomadJob);
    let verified = LiveObject::JobVerified(42);
    let id = &d.nomad_job.id;
    assert_eq!(kind.owner(&key(), id, &verified), Some(key()));
    assert_eq!(kind.compare(&d, id, Some(&verified)), None);
    assert_eq!(kind.delete(id, &verified, "jwt-nomad"), None);
    let created = kind.compare(&d, id, None).unwrap();
    assert!(matches!(
        created.op,
        WriteOp::RegisterJob { create: true, .. }
    ));
}

#[test]
fn a_vault_policy_is_owned_through_its_marker_and_compared_by_content() {
    let d = desired();
    let kind = of(ObjectKind::VaultPolicy);
    let p = d.vault_policy.as_ref().unwrap();
    let same = LiveObject::Policy(Arc::new(p.hcl.clone()));
    assert_eq!(kind.owner(&key(), &p.name, &same), Some(key()));
    assert_eq!(kind.compare(&d, &p.name, Some(&same)), None);

    let unmarked = LiveObject::Policy(Arc::new("path \"x\" { capabilities = [\"read\"] }".into()));
    assert_eq!(kind.owner(&key(), &p.name, &unmarked), None);
    let step = kind.compare(&d, &p.name, Some(&unmarked)).unwrap();
    assert_eq!(step.kind, StepKind::Update);
    // Vault has no check-and-set: a creation is always read first.
    assert!(kind.reads_before_create(&Caches::new()));
}

#[test]
fn readiness_lists_every_cache_once_and_each_kind_names_its_own() {
    let caches = Caches::new();
    let names: Vec<&str> = cache_health(&caches).iter().map(|h| h.name()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(names.len(), 9, "{names:?}");
    for kind in KINDS {
        assert!(names.contains(&kind.health(&caches).name()), "{names:?}");
    }
    assert_eq!(
        of(ObjectKind::HttpRoute).health(&caches).name(),
        "http-route"
    );
    assert!(!ready(&caches), "nothing has listed yet");
}

#[test]
fn objects_are_named_for_messages_by_their_kind() {
    let k = key();
    assert_eq!(
        of(ObjectKind::NomadJob).describe(&k, "web"),
        format!(
            "nomad-job {}/web",
            steward_render::names::nomad_namespace(&k)
        )
    );
    assert_eq!(
        of(ObjectKind::ServiceDefaults).describe(&k, "web"),
        "service-defaults web"
    );
    assert_eq!(of(ObjectKind::NomadJob).removal(false), "stopped");
    assert_eq!(of(ObjectKind::NomadJob).removal(true), "purged");
    assert_eq!(of(ObjectKind::VaultRole).removal(true), "deleted");
}

#[test]
fn an_entry_the_cache_vouched_for_by_digest_is_in_sync_without_a_diff_and_another_is_compared() {
    let d = desired();
    let defaults = d.service_defaults.clone().unwrap();
    let vouched = LiveEntry {
        body: Arc::new(defaults.body.clone()),
        modify_index: 7,
        same_as_desired: true,
    };
    assert!(
        config_entry::entry_step(ObjectKind::ServiceDefaults, &defaults, Some(&vouched)).is_none()
    );
    let mut changed = defaults.body.clone();
    changed["Protocol"] = json!("tcp");
    let read = LiveEntry {
        body: Arc::new(changed),
        modify_index: 7,
        same_as_desired: false,
    };
    let step =
        config_entry::entry_step(ObjectKind::ServiceDefaults, &defaults, Some(&read)).unwrap();
    assert_eq!(step.kind, StepKind::Update);
    assert!(
        step.changes.iter().any(|c| c.path.contains("Protocol")),
        "{:?}",
        step.changes
    );
}
