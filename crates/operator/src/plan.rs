//! Pure decisions of one reconcile: who owns each live object (conflict detection), and
//! the ordered list of writes that moves the live objects to the desired ones.
//!
//! Ordering (see the design): Vault policy → Vault role → service-defaults →
//! service-intentions → Nomad job → http-route(s); objects the spec no longer has are
//! deleted afterwards in the reverse order. One exception: when the service protocol goes
//! from an HTTP family to `tcp`, Consul rejects the `service-defaults` write while L7
//! intentions or routes still need HTTP, so the intentions are written and the routes
//! deleted first, and `service-defaults` follows.
//!
//! A difference in `Meta["steward.hash"]` alone is not a reason to write: that key
//! records the spec hash of the last write to the object, and a spec change that leaves
//! an object's content unchanged (a new image changes the job only) must not rewrite the
//! other objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use steward_hashi::nomad::Job;
use steward_render::names::{self, META_HASH, SpecKey};
use steward_render::{
    ConfigEntry, Desired, FieldChange, ObjectKind, ObjectRef, diff_config_entry, diff_job,
    diff_policy, diff_role,
};

/// A live config entry: its body as the server returns it and its `ModifyIndex`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    /// The entry.
    pub body: Arc<Value>,
    /// `ModifyIndex`, the CAS value of the next write.
    pub modify_index: u64,
}

/// Every live object one spec key may own, found by the names the key gives (and, for
/// routes, by ownership).
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// `service-defaults` named after the service.
    pub service_defaults: Option<LiveEntry>,
    /// `service-intentions` named after the service.
    pub service_intentions: Option<LiveEntry>,
    /// `http-route` entries: the desired names and every route owned by the key.
    pub http_routes: BTreeMap<String, LiveEntry>,
    /// The Nomad job.
    pub job: Option<Arc<Job>>,
    /// Set instead of `job` when the job list shows the job unchanged since it was last
    /// found to match this generation (its `JobModifyIndex`): no body was read and no
    /// write is needed.
    pub job_verified: Option<u64>,
    /// The Vault policy text.
    pub policy: Option<Arc<String>>,
    /// The Vault role (read form).
    pub role: Option<Arc<Value>>,
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// `PUT /v1/config?cas=<cas>` (0 = create only).
    PutEntry {
        /// Entry kind.
        kind: String,
        /// Entry name.
        name: String,
        /// The body.
        body: Value,
        /// CAS index.
        cas: u64,
    },
    /// `DELETE /v1/config/<kind>/<name>?cas=<cas>`.
    DeleteEntry {
        /// Entry kind.
        kind: String,
        /// Entry name.
        name: String,
        /// CAS index.
        cas: u64,
    },
    /// Register the job: with `EnforceIndex` 0 when `create`, else plan first and use
    /// the plan's `JobModifyIndex`.
    RegisterJob {
        /// Nomad namespace.
        namespace: String,
        /// Job ID.
        id: String,
        /// The `Job` object.
        job: Value,
        /// The job does not exist yet.
        create: bool,
    },
    /// `PUT /v1/sys/policies/acl/<name>`.
    PutPolicy {
        /// Policy name.
        name: String,
        /// Policy text.
        hcl: String,
    },
    /// `DELETE /v1/sys/policies/acl/<name>`.
    DeletePolicy {
        /// Policy name.
        name: String,
    },
    /// `POST /v1/auth/<mount>/role/<name>`.
    PutRole {
        /// Auth mount.
        mount: String,
        /// Role name.
        name: String,
        /// Role body.
        body: Value,
    },
    /// `DELETE /v1/auth/<mount>/role/<name>`.
    DeleteRole {
        /// Auth mount.
        mount: String,
        /// Role name.
        name: String,
    },
}

/// Why a step is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The object does not exist.
    Create,
    /// The object differs from the spec.
    Update,
    /// The spec no longer has the object.
    Delete,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The object.
    pub object: ObjectRef,
    /// Why.
    pub kind: StepKind,
    /// The differing owned fields (updates only).
    pub changes: Vec<FieldChange>,
    /// The write.
    pub op: WriteOp,
}

/// The ordered writes of one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Writes, in the order to apply them.
    pub steps: Vec<Step>,
    /// Desired objects that already match.
    pub in_sync: Vec<ObjectRef>,
}

impl Plan {
    /// True when nothing needs writing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The owner recorded on an object, as text for messages.
#[must_use]
pub fn owner_message(owner: Option<&SpecKey>) -> String {
    match owner {
        Some(k) => format!("owned by spec {k}"),
        None => {
            "not managed by Steward (no ownership metadata): created by hand or by another tool"
                .to_owned()
        }
    }
}

/// The spec key owning a config entry or job body (through `Meta`).
#[must_use]
pub fn owner_of_body(body: &Value) -> Option<SpecKey> {
    names::owner_from_meta(body.get("Meta").unwrap_or(&Value::Null))
}

/// Every desired object that exists live without being owned by `key`, with a message
/// naming its owner. Any conflict means no write at all for the key.
#[must_use]
pub fn conflicts(key: &SpecKey, desired: &Desired, live: &Live) -> Vec<(ObjectRef, String)> {
    let mut out = Vec::new();
    let mut check = |kind: ObjectKind, name: &str, owner: Option<SpecKey>| {
        if owner.as_ref() != Some(key) {
            out.push((
                ObjectRef {
                    kind,
                    name: name.to_owned(),
                },
                owner_message(owner.as_ref()),
            ));
        }
    };
    if let (Some(d), Some(l)) = (&desired.vault_policy, &live.policy) {
        check(
            ObjectKind::VaultPolicy,
            &d.name,
            names::owner_of_policy(&d.name, l),
        );
    }
    if let (Some(d), Some(l)) = (&desired.vault_role, &live.role) {
        check(
            ObjectKind::VaultRole,
            &d.name,
            names::owner_of_role(&d.name, l),
        );
    }
    if let (Some(d), Some(l)) = (&desired.service_defaults, &live.service_defaults) {
        check(ObjectKind::ServiceDefaults, &d.name, owner_of_body(&l.body));
    }
    if let (Some(d), Some(l)) = (&desired.service_intentions, &live.service_intentions) {
        check(
            ObjectKind::ServiceIntentions,
            &d.name,
            owner_of_body(&l.body),
        );
    }
    if let Some(job) = &live.job {
        check(
            ObjectKind::NomadJob,
            &desired.nomad_job.id,
            owner_of_body(&job.raw),
        );
    }
    for route in &desired.http_routes {
        if let Some(l) = live.http_routes.get(&route.name) {
            check(ObjectKind::HttpRoute, &route.name, owner_of_body(&l.body));
        }
    }
    out
}

/// Drops a change set that only differs in `Meta["steward.hash"]` (see the module docs).
#[must_use]
pub fn material(changes: Vec<FieldChange>) -> Vec<FieldChange> {
    let hash_path = format!("Meta[{META_HASH:?}]");
    if changes.iter().all(|c| c.path == hash_path) {
        Vec::new()
    } else {
        changes
    }
}

/// The changes that make the live job differ from the desired one: the owned-field
/// diff plus `Stop` (a stopped job has to run again).
#[must_use]
pub fn job_changes(desired: &Value, live: &Job) -> Vec<FieldChange> {
    let mut changes = material(diff_job(desired, &live.raw));
    if live.view.stop {
        changes.push(FieldChange {
            path: "Stop".to_owned(),
            desired: Some(Value::Bool(false)),
            live: Some(Value::Bool(true)),
        });
    }
    changes
}

/// The step that brings one object to its desired form: `Create` when it is absent
/// (`changes` is `None`), `Update` when it differs, nothing when the changes are empty.
/// `op(live)` builds the write; its argument says whether the object exists.
fn upsert_step(
    object: ObjectRef,
    changes: Option<Vec<FieldChange>>,
    op: impl FnOnce(bool) -> WriteOp,
) -> Option<Step> {
    match changes {
        None => Some(Step {
            object,
            kind: StepKind::Create,
            changes: Vec::new(),
            op: op(false),
        }),
        Some(changes) => (!changes.is_empty()).then(|| Step {
            object,
            kind: StepKind::Update,
            changes,
            op: op(true),
        }),
    }
}

fn entry_step(kind: ObjectKind, desired: &ConfigEntry, live: Option<&LiveEntry>) -> Option<Step> {
    let object = ObjectRef {
        kind,
        name: desired.name.clone(),
    };
    let put = |cas| WriteOp::PutEntry {
        kind: desired.kind.clone(),
        name: desired.name.clone(),
        body: desired.body.clone(),
        cas,
    };
    let changes = live.map(|l| material(diff_config_entry(&desired.body, &l.body)));
    upsert_step(object, changes, |_| put(live.map_or(0, |l| l.modify_index)))
}

fn delete_entry(kind: ObjectKind, name: &str, live: &LiveEntry) -> Step {
    Step {
        object: ObjectRef {
            kind,
            name: name.to_owned(),
        },
        kind: StepKind::Delete,
        changes: Vec::new(),
        op: WriteOp::DeleteEntry {
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
            cas: live.modify_index,
        },
    }
}

fn is_l7(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

fn protocol(body: &Value) -> String {
    body.get("Protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase()
}

/// The ordered writes that make `live` equal `desired` for `key` (see the module docs).
/// Call only when [`conflicts`] found none. `jwt_mount` is the auth mount of roles the
/// spec no longer wants.
#[must_use]
pub fn plan(key: &SpecKey, desired: &Desired, live: &Live, jwt_mount: &str) -> Plan {
    let mut in_sync = Vec::new();
    let mut note = |step: Option<Step>, object: ObjectRef, out: &mut Vec<Step>| match step {
        Some(s) => out.push(s),
        None => in_sync.push(object),
    };

    // Vault.
    let mut vault = Vec::new();
    if let Some(p) = &desired.vault_policy {
        let object = ObjectRef {
            kind: ObjectKind::VaultPolicy,
            name: p.name.clone(),
        };
        let op = WriteOp::PutPolicy {
            name: p.name.clone(),
            hcl: p.hcl.clone(),
        };
        // Identical text needs no parsing (the usual case).
        let changes = live.policy.as_ref().map(|l| {
            if l.as_str() == p.hcl {
                Vec::new()
            } else {
                diff_policy(&p.hcl, l)
            }
        });
        let step = upsert_step(object.clone(), changes, |_| op);
        note(step, object, &mut vault);
    }
    if let Some(r) = &desired.vault_role {
        let object = ObjectRef {
            kind: ObjectKind::VaultRole,
            name: r.name.clone(),
        };
        let op = WriteOp::PutRole {
            mount: r.mount.clone(),
            name: r.name.clone(),
            body: r.body.clone(),
        };
        let changes = live.role.as_ref().map(|l| {
            if **l == r.body {
                Vec::new()
            } else {
                diff_role(&r.body, l)
            }
        });
        let step = upsert_step(object.clone(), changes, |_| op);
        note(step, object, &mut vault);
    }

    // Consul service-defaults and intentions.
    let mut defaults = Vec::new();
    let mut downgrade = false;
    if let Some(d) = &desired.service_defaults {
        let object = ObjectRef {
            kind: ObjectKind::ServiceDefaults,
            name: d.name.clone(),
        };
        let live_sd = live.service_defaults.as_ref();
        downgrade =
            live_sd.is_some_and(|l| is_l7(&protocol(&l.body)) && !is_l7(&protocol(&d.body)));
        note(
            entry_step(ObjectKind::ServiceDefaults, d, live_sd),
            object,
            &mut defaults,
        );
    }
    let mut intentions = Vec::new();
    if let Some(d) = &desired.service_intentions {
        let object = ObjectRef {
            kind: ObjectKind::ServiceIntentions,
            name: d.name.clone(),
        };
        note(
            entry_step(
                ObjectKind::ServiceIntentions,
                d,
                live.service_intentions.as_ref(),
            ),
            object,
            &mut intentions,
        );
    }

    // Nomad job.
    let mut job = Vec::new();
    let j = &desired.nomad_job;
    let job_object = ObjectRef {
        kind: ObjectKind::NomadJob,
        name: j.id.clone(),
    };
    let register = |create| WriteOp::RegisterJob {
        namespace: j.namespace.clone(),
        id: j.id.clone(),
        job: j.job.clone(),
        create,
    };
    let job_step = if live.job.is_none() && live.job_verified.is_some() {
        None
    } else {
        let changes = live.job.as_ref().map(|l| job_changes(&j.job, l));
        upsert_step(job_object.clone(), changes, |exists| register(!exists))
    };
    note(job_step, job_object, &mut job);

    // Routes.
    let mut routes = Vec::new();
    for r in &desired.http_routes {
        let object = ObjectRef {
            kind: ObjectKind::HttpRoute,
            name: r.name.clone(),
        };
        note(
            entry_step(ObjectKind::HttpRoute, r, live.http_routes.get(&r.name)),
            object,
            &mut routes,
        );
    }

    // Objects the spec no longer has (only those owned by this key), reverse order.
    let owned = |body: &Value| owner_of_body(body).as_ref() == Some(key);
    let mut route_deletes: Vec<Step> = live
        .http_routes
        .iter()
        .filter(|(name, l)| !desired.http_routes.iter().any(|r| &r.name == *name) && owned(&l.body))
        .map(|(name, l)| delete_entry(ObjectKind::HttpRoute, name, l))
        .collect();
    let mut deletes = Vec::new();
    if desired.service_intentions.is_none()
        && let Some(l) = live.service_intentions.as_ref().filter(|l| owned(&l.body))
    {
        deletes.push(delete_entry(
            ObjectKind::ServiceIntentions,
            &names::service_intentions(key),
            l,
        ));
    }
    if desired.service_defaults.is_none()
        && let Some(l) = live.service_defaults.as_ref().filter(|l| owned(&l.body))
    {
        deletes.push(delete_entry(
            ObjectKind::ServiceDefaults,
            &names::service_defaults(key),
            l,
        ));
    }
    let role_name = names::jwt_role(key);
    if desired.vault_role.is_none()
        && live
            .role
            .as_ref()
            .is_some_and(|l| names::owner_of_role(&role_name, l).as_ref() == Some(key))
    {
        deletes.push(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultRole,
                name: role_name.clone(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeleteRole {
                mount: jwt_mount.to_owned(),
                name: role_name,
            },
        });
    }
    let policy_name = names::vault_policy(key);
    if desired.vault_policy.is_none()
        && live
            .policy
            .as_ref()
            .is_some_and(|l| names::owner_of_policy(&policy_name, l).as_ref() == Some(key))
    {
        deletes.push(Step {
            object: ObjectRef {
                kind: ObjectKind::VaultPolicy,
                name: policy_name.clone(),
            },
            kind: StepKind::Delete,
            changes: Vec::new(),
            op: WriteOp::DeletePolicy { name: policy_name },
        });
    }

    let mut steps = vault;
    if downgrade {
        // intentions (no more L7 permissions) and route deletions before the protocol
        // goes to tcp.
        steps.append(&mut intentions);
        steps.append(&mut route_deletes);
        steps.append(&mut defaults);
    } else {
        steps.append(&mut defaults);
        steps.append(&mut intentions);
    }
    steps.append(&mut job);
    steps.append(&mut routes);
    steps.append(&mut route_deletes);
    steps.append(&mut deletes);
    Plan { steps, in_sync }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use steward_render::{RenderContext, render};

    use super::*;

    fn spec(yaml: &str) -> steward_spec::ServiceSpec {
        let loaded = steward_spec::load("t.yaml", yaml, None);
        let text = loaded.render();
        loaded.spec.unwrap_or_else(|| panic!("{text}"))
    }

    const WEB: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: registry.example/web:1.0\n  port: 8080\n  check: {http: /healthz}\n  allowFrom: [{service: api, methods: [GET]}]\n  secrets: [{path: secret/data/shop/web/*, capabilities: [read]}]\n  edge: {routes: [{host: web.shop.apps.internal, pathPrefix: /}]}\n";

    fn desired(yaml: &str) -> Desired {
        render(&spec(yaml), &RenderContext::default()).unwrap()
    }

    fn key() -> SpecKey {
        SpecKey::new("shop", "web")
    }

    fn entry(body: &Value, index: u64) -> LiveEntry {
        LiveEntry {
            body: Arc::new(body.clone()),
            modify_index: index,
        }
    }

    /// Everything exactly as desired (as if the server echoed our writes).
    fn converged(d: &Desired) -> Live {
        let mut live = Live {
            service_defaults: d.service_defaults.as_ref().map(|e| entry(&e.body, 10)),
            service_intentions: d.service_intentions.as_ref().map(|e| entry(&e.body, 11)),
            job: Some(Arc::new(Job::from_value(d.nomad_job.job.clone()).unwrap())),
            policy: d.vault_policy.as_ref().map(|p| Arc::new(p.hcl.clone())),
            role: d.vault_role.as_ref().map(|r| Arc::new(r.body.clone())),
            ..Live::default()
        };
        for r in &d.http_routes {
            live.http_routes.insert(r.name.clone(), entry(&r.body, 12));
        }
        live
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
        let mut hand = (*live.service_intentions.as_ref().unwrap().body).clone();
        hand["Sources"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"Name": "intruder", "Action": "allow"}));
        live.service_intentions = Some(entry(&hand, 99));
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
        live.job = None;
        live.job_verified = Some(42);
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
        live.job = Some(Arc::new(Job::from_value(raw).unwrap()));
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
        live.job = Some(Arc::new(Job::from_value(hand).unwrap()));
        let mut foreign = d.service_defaults.as_ref().unwrap().body.clone();
        foreign["Meta"]["steward.spec"] = json!("other/web");
        live.service_defaults = Some(entry(&foreign, 3));
        live.policy = Some(Arc::new("path \"x\" { capabilities = [\"read\"] }".into()));
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
        for r in live2.http_routes.values_mut() {
            let mut b = (*r.body).clone();
            b["Meta"]["steward.spec"] = json!("other/x");
            r.body = Arc::new(b);
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
}
