//! Live objects built by hand for the tests of the plan and of `decide`.

use std::sync::Arc;

use serde_json::Value;
use steward_hashi::nomad::Job;
use steward_render::{Desired, ObjectKind, ObjectRef};

use super::{Live, LiveEntry, LiveObject};

/// A spec owning every kind of object: job, both config entries, Vault policy and
/// role, and one edge route.
pub(crate) const WEB: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  check: {http: /healthz}\n  allowFrom: [{service: api, methods: [GET]}]\n  secrets: [{path: secret/data/shop/web/*, capabilities: [read]}]\n  edge: {routes: [{host: web.shop.apps.internal, pathPrefix: /}]}\n";

/// A live config entry at `index`.
pub(crate) fn entry(body: &Value, index: u64) -> LiveObject {
    LiveObject::Entry(LiveEntry {
        body: Arc::new(body.clone()),
        modify_index: index,
        same_as_desired: false,
    })
}

/// The object `name` of `kind`.
pub(crate) fn at(kind: ObjectKind, name: &str) -> ObjectRef {
    ObjectRef {
        kind,
        name: name.to_owned(),
    }
}

/// Every object of `d` exactly as desired (as if the server echoed our writes), the job
/// being `job`.
pub(crate) fn converged(d: &Desired, job: Arc<Job>) -> Live {
    let mut live = Live::default();
    if let Some(e) = &d.service_defaults {
        live.insert(at(ObjectKind::ServiceDefaults, &e.name), entry(&e.body, 10));
    }
    if let Some(e) = &d.service_intentions {
        live.insert(
            at(ObjectKind::ServiceIntentions, &e.name),
            entry(&e.body, 11),
        );
    }
    live.insert(
        at(ObjectKind::NomadJob, &d.nomad_job.id),
        LiveObject::Job(job),
    );
    if let Some(p) = &d.vault_policy {
        let text = LiveObject::Policy(Arc::new(p.hcl.clone()));
        live.insert(at(ObjectKind::VaultPolicy, &p.name), text);
    }
    if let Some(r) = &d.vault_role {
        let body = LiveObject::Role(Arc::new(r.body.clone()));
        live.insert(at(ObjectKind::VaultRole, &r.name), body);
    }
    for r in &d.http_routes {
        live.insert(at(ObjectKind::HttpRoute, &r.name), entry(&r.body, 12));
    }
    live
}
