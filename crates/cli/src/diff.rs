//! `steward diff`: what a push of a directory would do to the cluster, for a pull
//! request. Read-only: KV, config entries, Vault policies and roles and Nomad jobs are
//! only read; the one non-GET request is Nomad's job plan, a dry run.
//!
//! The specs to preview are those `steward push` would write: new and changed
//! documents, and with `--prune` the keys this source pushed whose files are gone (the
//! same plan, [`crate::push::plan::plan`]). Each is rendered as the operator renders it
//! (its settings from `--config` and the flags, the replica count of now) and compared
//! with the live objects; the decisions are pure functions in the submodules.

pub mod intentions;
pub mod model;
pub mod nomad;
pub mod output;
pub mod routes;
pub mod vault;

#[cfg(test)]
mod golden;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::Value;
use steward_hashi::QueryOptions;
use steward_render::names::{self, SpecKey};
use steward_render::{Desired, ObjectKind, RenderContext};
use steward_spec::{Diagnostic, GuardrailPolicy, ServiceSpec};

use crate::args::{DiffArgs, DiffOutput};
use crate::cluster::{Servers, cluster_config, get_json};
use crate::exit::{Exit, exit_of, fail};
use crate::files;
use crate::push::plan::{self, Action, LocalDoc, PlanItem};
use crate::push::{source, spec_kv_key};
use crate::style;
use crate::validate::{human_report, load_policy};
use model::{Deletion, JobChange, NomadSection, Problem, Report, SpecAction, SpecDiff};

/// The code prefix of guardrail diagnostics.
const GUARDRAIL_CODE_PREFIX: &str = "guardrail-";

/// The local documents: the valid ones (to push) and a preview entry for each invalid
/// one.
struct Local {
    docs: Vec<LocalDoc>,
    specs: BTreeMap<String, ServiceSpec>,
    invalid: Vec<SpecDiff>,
    diagnostics: Vec<Diagnostic>,
    documents: usize,
}

/// Sorts a document's diagnostics into a preview entry: guardrail violations of a spec
/// that is otherwise valid keep its key; anything else is "invalid".
fn invalid_entry(file: &str, text: &str, diagnostics: &[Diagnostic]) -> SpecDiff {
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
    let only_guardrails = errors
        .iter()
        .all(|d| d.code.starts_with(GUARDRAIL_CODE_PREFIX));
    let key = steward_spec::load(file, text, None)
        .spec
        .map(|s| s.key())
        .filter(|_| only_guardrails);
    let mut entry = SpecDiff::new(key, Some(file.to_owned()), SpecAction::Invalid);
    for d in errors {
        if d.code.starts_with(GUARDRAIL_CODE_PREFIX) {
            entry.guardrails.push(Problem::from(d));
        } else {
            entry.invalid.push(Problem::from(d));
        }
    }
    entry
}

/// Loads and checks every document under `dir` (guardrails with `policy`).
fn load_local(
    dir: &std::path::Path,
    prefix: &str,
    policy: Option<&GuardrailPolicy>,
) -> anyhow::Result<Local> {
    let found = files::collect(&[dir.to_path_buf()])?;
    let texts = files::read_all(&found)?;
    let mut local = Local {
        docs: Vec::new(),
        specs: BTreeMap::new(),
        invalid: Vec::new(),
        diagnostics: Vec::new(),
        documents: texts.len(),
    };
    for file in texts {
        let label = file.label();
        let loaded = steward_spec::load(&label, &file.text, policy);
        local.diagnostics.extend(loaded.diagnostics.iter().cloned());
        let Some(spec) = loaded.spec else {
            local
                .invalid
                .push(invalid_entry(&label, &file.text, &loaded.diagnostics));
            continue;
        };
        let doc = LocalDoc {
            spec_key: spec.key(),
            kv_key: spec_kv_key(prefix, &spec.key()),
            file: label.clone(),
            text: file.text,
        };
        let too_large = plan::too_large_for_consul(std::slice::from_ref(&doc));
        if !too_large.is_empty() {
            let mut entry =
                SpecDiff::new(Some(doc.spec_key.clone()), Some(label), SpecAction::Invalid);
            entry.invalid.extend(too_large.iter().map(Problem::from));
            local.diagnostics.extend(too_large);
            local.invalid.push(entry);
            continue;
        }
        local.specs.insert(doc.kv_key.clone(), spec);
        local.docs.push(doc);
    }
    Ok(local)
}

/// The message of an error and its causes.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads of the live objects, each failure recorded in the spec's preview.
struct Live<'a> {
    servers: &'a Servers,
    jwt_mount: String,
}

impl Live<'_> {
    async fn config_entry(
        &self,
        kind: &str,
        name: &str,
        entry: &mut SpecDiff,
    ) -> Option<Option<Value>> {
        match self
            .servers
            .consul
            .config_get_raw(kind, name, &QueryOptions::new())
            .await
        {
            Ok(r) => Some(r.value),
            Err(e) => {
                entry
                    .errors
                    .push(format!("cannot read Consul {kind} {name}: {}", chain(&e)));
                None
            }
        }
    }

    async fn policy(&self, name: &str, entry: &mut SpecDiff) -> Option<Option<String>> {
        match self.servers.vault.get_policy(name).await {
            Ok(p) => Some(p.map(|p| p.policy)),
            Err(e) => {
                entry
                    .errors
                    .push(format!("cannot read Vault policy {name}: {}", chain(&e)));
                None
            }
        }
    }

    async fn role(&self, name: &str, entry: &mut SpecDiff) -> Option<Option<Value>> {
        let path = format!("/v1/auth/{}/role/{name}", self.jwt_mount);
        match get_json(self.servers.vault.transport(), &path).await {
            Ok(v) => Some(v.map(|v| v.get("data").cloned().unwrap_or(v))),
            Err(e) => {
                entry.errors.push(format!(
                    "cannot read Vault role {}/{name}: {}",
                    self.jwt_mount,
                    chain(&e)
                ));
                None
            }
        }
    }

    async fn job(&self, namespace: &str, id: &str, entry: &mut SpecDiff) -> Option<Option<Value>> {
        let opts = QueryOptions::new().namespace(namespace);
        match self.servers.nomad.get_job(id, &opts).await {
            Ok(r) => Some(r.value.map(|j| j.raw)),
            Err(e) => {
                entry.errors.push(format!(
                    "cannot read Nomad job {namespace}/{id}: {}",
                    chain(&e)
                ));
                None
            }
        }
    }

    /// Whether the live object `object` of spec `key` exists and is owned by it (an
    /// object owned by another spec or by no one is never deleted: a warning says so).
    async fn owned(
        &self,
        key: &SpecKey,
        namespace: &str,
        object: &steward_render::ObjectRef,
        entry: &mut SpecDiff,
    ) -> bool {
        let name = object.name.as_str();
        let owner = match object.kind {
            ObjectKind::VaultPolicy => match self.policy(name, entry).await {
                Some(Some(text)) => Some(names::owner_of_policy(name, &text)),
                Some(None) | None => None,
            },
            ObjectKind::VaultRole => match self.role(name, entry).await {
                Some(Some(body)) => Some(names::owner_of_role(name, &body)),
                Some(None) | None => None,
            },
            ObjectKind::ServiceDefaults | ObjectKind::ServiceIntentions | ObjectKind::HttpRoute => {
                match self.config_entry(object.kind.as_str(), name, entry).await {
                    Some(Some(e)) => Some(names::owner_from_meta(
                        e.get("Meta").unwrap_or(&Value::Null),
                    )),
                    Some(None) | None => None,
                }
            }
            ObjectKind::NomadJob => match self.job(namespace, name, entry).await {
                Some(Some(job)) => Some(names::owner_from_meta(
                    job.get("Meta").unwrap_or(&Value::Null),
                )),
                Some(None) | None => None,
            },
        };
        match owner {
            None => false,
            Some(Some(owner)) if &owner == key => true,
            Some(other) => {
                entry.warnings.push(format!(
                    "{} {name} exists but is owned by {}: the operator leaves it alone",
                    object.kind,
                    other.map_or_else(
                        || "no spec (not managed by Steward)".to_owned(),
                        |k| format!("spec {k}")
                    )
                ));
                false
            }
        }
    }
}

/// Shows Consul service names as spec keys where exactly one known spec runs them.
struct Names(BTreeMap<String, BTreeSet<String>>);

impl Names {
    fn new<'a>(keys: impl Iterator<Item = &'a str>) -> Self {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for key in keys {
            if let Some(k) = SpecKey::parse(key) {
                map.entry(names::consul_service(&k))
                    .or_default()
                    .insert(k.to_string());
            }
        }
        Self(map)
    }

    fn show(&self, service: &str) -> String {
        match self.0.get(service) {
            Some(keys) if keys.len() == 1 => keys.iter().next().cloned().unwrap_or_default(),
            _ => service.to_owned(),
        }
    }
}

/// Renders a stored document as the operator would have (no guardrails: it was
/// accepted when pushed); `None` when it does not render any more.
fn render_stored(bytes: &[u8], ctx: &RenderContext) -> Option<Desired> {
    let spec = steward_spec::load_bytes("stored", bytes, None).spec?;
    let ctx = RenderContext {
        replicas: Some(steward_spec::desired_replicas(&spec, jiff::Timestamp::now()).replicas),
        ..ctx.clone()
    };
    steward_render::render(&spec, &ctx).ok()
}

/// What a spec whose stored document does not render still owns, by name.
fn objects_by_name(key: &SpecKey) -> Vec<steward_render::ObjectRef> {
    let obj = |kind, name: String| steward_render::ObjectRef { kind, name };
    vec![
        obj(ObjectKind::VaultPolicy, names::vault_policy(key)),
        obj(ObjectKind::VaultRole, names::jwt_role(key)),
        obj(ObjectKind::ServiceDefaults, names::service_defaults(key)),
        obj(
            ObjectKind::ServiceIntentions,
            names::service_intentions(key),
        ),
        obj(ObjectKind::NomadJob, names::job_id(key)),
        obj(ObjectKind::HttpRoute, names::http_route(key)),
    ]
}

/// Everything the preview of one key needs besides the live reads.
struct Preview<'a> {
    live: Live<'a>,
    names: Names,
    ctx: RenderContext,
    purge_on_delete: bool,
}

impl Preview<'_> {
    async fn intentions(
        &self,
        key: &SpecKey,
        desired: Option<&Desired>,
        old: Option<&Desired>,
        entry: &mut SpecDiff,
    ) {
        let name = desired
            .and_then(|d| d.service_intentions.as_ref())
            .or_else(|| old.and_then(|o| o.service_intentions.as_ref()))
            .map(|e| e.name.clone());
        let Some(name) = name else { return };
        let Some(live) = self
            .live
            .config_entry("service-intentions", &name, entry)
            .await
        else {
            return;
        };
        if let Some(l) = &live {
            let owner = names::owner_from_meta(l.get("Meta").unwrap_or(&Value::Null));
            if owner.as_ref() != Some(key) {
                entry.warnings.push(format!(
                    "service-intentions {name} exists and is not owned by this spec ({}): the operator will not change it (Conflict)",
                    owner.map_or_else(|| "not managed by Steward".to_owned(), |k| format!("owned by {k}"))
                ));
                return;
            }
        }
        let desired_body = desired
            .and_then(|d| d.service_intentions.as_ref())
            .map(|e| &e.body);
        entry.intentions =
            intentions::intention_changes(live.as_ref(), desired_body, &key.to_string(), &|s| {
                self.names.show(s)
            });
    }

    async fn vault(
        &self,
        key: &SpecKey,
        desired: Option<&Desired>,
        old: Option<&Desired>,
        entry: &mut SpecDiff,
    ) {
        let name = desired
            .and_then(|d| d.vault_policy.as_ref())
            .or_else(|| old.and_then(|o| o.vault_policy.as_ref()))
            .map(|p| p.name.clone());
        let Some(name) = name else { return };
        let Some(live) = self.live.policy(&name, entry).await else {
            return;
        };
        if let Some(text) = &live
            && names::owner_of_policy(&name, text).as_ref() != Some(key)
        {
            entry.warnings.push(format!(
                "Vault policy {name} exists and is not owned by this spec: the operator will not change it (Conflict)"
            ));
            return;
        }
        let desired_hcl = desired
            .and_then(|d| d.vault_policy.as_ref())
            .map(|p| p.hcl.as_str());
        match vault::capability_changes(&name, live.as_deref(), desired_hcl) {
            Ok(changes) => entry.vault = changes,
            Err(e) => entry.errors.push(e),
        }
    }

    async fn routes(
        &self,
        key: &SpecKey,
        desired: Option<&Desired>,
        old: Option<&Desired>,
        entry: &mut SpecDiff,
    ) {
        let mut route_names: Vec<String> = Vec::new();
        for d in desired.into_iter().chain(old) {
            for r in &d.http_routes {
                if !route_names.contains(&r.name) {
                    route_names.push(r.name.clone());
                }
            }
        }
        let mut live = Vec::new();
        for name in route_names {
            let Some(found) = self.live.config_entry("http-route", &name, entry).await else {
                return;
            };
            let Some(found) = found else { continue };
            let owner = names::owner_from_meta(found.get("Meta").unwrap_or(&Value::Null));
            if owner.as_ref() == Some(key) {
                live.push(found);
            } else {
                entry.warnings.push(format!(
                    "http-route {name} exists and is not owned by this spec: the operator will not change it (Conflict)"
                ));
            }
        }
        let desired: Vec<Value> = desired
            .map(|d| d.http_routes.iter().map(|r| r.body.clone()).collect())
            .unwrap_or_default();
        entry.routes = routes::route_changes(&live, &desired);
    }

    async fn plan(&self, desired: &Desired, entry: &mut SpecDiff) {
        let job = &desired.nomad_job;
        let label = format!("{}/{}", job.namespace, job.id);
        match self
            .live
            .servers
            .nomad
            .plan_job(&job.job, Some(&job.namespace))
            .await
        {
            Ok(plan) => entry.nomad = Some(nomad::nomad_section(&label, &plan)),
            Err(e) => {
                let path = format!("/v1/namespace/{}", job.namespace);
                let missing = matches!(
                    get_json(self.live.servers.nomad.transport(), &path).await,
                    Ok(None)
                );
                if missing {
                    entry.warnings.push(format!(
                        "Nomad namespace {} does not exist, so the job cannot be planned: create it first (`steward bootstrap`)",
                        job.namespace
                    ));
                } else {
                    entry
                        .errors
                        .push(format!("cannot plan Nomad job {label}: {}", chain(&e)));
                }
            }
        }
    }

    /// Objects in `old` and not in `desired` (`None`: everything), that exist and are
    /// owned by `key`.
    async fn deletions(
        &self,
        key: &SpecKey,
        namespace: &str,
        old: &[steward_render::ObjectRef],
        desired: Option<&Desired>,
        entry: &mut SpecDiff,
    ) {
        let keep: Vec<steward_render::ObjectRef> =
            desired.map(Desired::objects).unwrap_or_default();
        // Reverse apply order: the order the operator deletes in.
        let mut gone: Vec<&steward_render::ObjectRef> =
            old.iter().filter(|o| !keep.contains(o)).collect();
        gone.sort_by_key(|o| std::cmp::Reverse(o.kind));
        for object in gone {
            if !self.live.owned(key, namespace, object, entry).await {
                continue;
            }
            let (name, how) = match object.kind {
                ObjectKind::NomadJob => (
                    format!("{namespace}/{}", object.name),
                    if self.purge_on_delete {
                        "purged"
                    } else {
                        "stopped"
                    },
                ),
                ObjectKind::VaultRole => (
                    format!("{}/{}", self.live.jwt_mount, object.name),
                    "deleted",
                ),
                _ => (object.name.clone(), "deleted"),
            };
            entry.deletions.push(Deletion {
                kind: object.kind.as_str().to_owned(),
                name,
                how: how.to_owned(),
            });
        }
    }

    /// The preview of a new or changed spec.
    async fn apply(&self, item: &PlanItem, spec: &ServiceSpec) -> SpecDiff {
        let action = if item.action == Action::Create {
            SpecAction::Create
        } else {
            SpecAction::Update
        };
        let mut entry = SpecDiff::new(Some(item.spec_key.clone()), item.file.clone(), action);
        let key = SpecKey::of(spec);
        let ctx = RenderContext {
            // The generation the operator sees until the push lands: ownership labels
            // are left out of the comparison anyway.
            generation: item.index,
            replicas: Some(steward_spec::desired_replicas(spec, jiff::Timestamp::now()).replicas),
            ..self.ctx.clone()
        };
        let desired = match steward_render::render(spec, &ctx) {
            Ok(d) => d,
            Err(e) => {
                entry.action = SpecAction::Invalid;
                entry.invalid.push(Problem {
                    file: item.file.clone().unwrap_or_default(),
                    line: 1,
                    column: 1,
                    path: "spec".to_owned(),
                    code: "render".to_owned(),
                    message: format!("the spec cannot be rendered: {}", chain(&e)),
                });
                return entry;
            }
        };
        let old = item
            .old
            .as_deref()
            .and_then(|bytes| render_stored(bytes, &ctx));
        self.vault(&key, Some(&desired), old.as_ref(), &mut entry)
            .await;
        self.intentions(&key, Some(&desired), old.as_ref(), &mut entry)
            .await;
        self.plan(&desired, &mut entry).await;
        self.routes(&key, Some(&desired), old.as_ref(), &mut entry)
            .await;
        if let Some(old) = &old {
            let namespace = desired.nomad_job.namespace.clone();
            self.deletions(&key, &namespace, &old.objects(), Some(&desired), &mut entry)
                .await;
        }
        entry
    }

    /// The preview of a pruned key: everything its objects grant goes away.
    async fn delete(&self, item: &PlanItem) -> SpecDiff {
        let mut entry = SpecDiff::new(Some(item.spec_key.clone()), None, SpecAction::Delete);
        let Some(key) = SpecKey::parse(&item.spec_key) else {
            entry.warnings.push(format!(
                "{} is not a <namespace>/<name> key: the operator never rendered it, so it owns nothing",
                item.kv_key
            ));
            return entry;
        };
        let old = item
            .old
            .as_deref()
            .and_then(|bytes| render_stored(bytes, &self.ctx));
        let objects = match &old {
            Some(o) => o.objects(),
            None => {
                entry.warnings.push(
                    "the stored document does not render any more: its objects are looked up by name".to_owned(),
                );
                objects_by_name(&key)
            }
        };
        self.vault(&key, None, old.as_ref(), &mut entry).await;
        self.intentions(&key, None, old.as_ref(), &mut entry).await;
        self.routes(&key, None, old.as_ref(), &mut entry).await;
        let namespace = names::nomad_namespace(&key);
        self.deletions(&key, &namespace, &objects, None, &mut entry)
            .await;
        if let Some(job) = entry
            .deletions
            .iter()
            .find(|d| d.kind == ObjectKind::NomadJob.as_str())
        {
            entry.nomad = Some(NomadSection {
                job: job.name.clone(),
                change: if self.purge_on_delete {
                    JobChange::Purge
                } else {
                    JobChange::Stop
                },
                fields: Vec::new(),
                placements: Vec::new(),
                failures: Vec::new(),
                warnings: Vec::new(),
                next_periodic_launch: None,
            });
        }
        entry
    }
}

/// The exit code of a report: 1 when anything is invalid or a read failed (the preview
/// cannot be trusted), 2 when the push would change something, 0 otherwise.
pub fn exit_for(report: &Report) -> Exit {
    if report.has_invalid() || report.has_errors() {
        Exit::Invalid
    } else if report.changed() > 0 {
        Exit::Changes
    } else {
        Exit::Ok
    }
}

async fn diff(args: &DiffArgs) -> anyhow::Result<Exit> {
    let config = cluster_config(&args.cluster)?;
    let policy = match &args.policy {
        Some(path) => {
            let (policy, diagnostics) = load_policy(path)?;
            if policy.is_none() {
                eprint!("{}", steward_spec::render_all(&diagnostics));
                return Err(fail(
                    Exit::Invalid,
                    anyhow::anyhow!("the guardrail policy {} is invalid", path.display()),
                ));
            }
            policy
        }
        None => None,
    };
    let local = load_local(&args.dir, &config.prefix, policy.as_ref())?;
    if !local.diagnostics.is_empty() {
        let report = human_report(local.documents, &local.diagnostics);
        eprint!(
            "{}",
            style::diagnostics(&report, console::colors_enabled_stderr())
        );
    }
    let dups = plan::duplicates(&local.docs);
    if !dups.is_empty() {
        let lines: Vec<String> = dups
            .iter()
            .map(|(key, files)| format!("  {key}: {}", files.join(", ")))
            .collect();
        return Err(fail(
            Exit::Invalid,
            anyhow::anyhow!(
                "several files push the same key (metadata.namespace/metadata.name must be unique):\n{}",
                lines.join("\n")
            ),
        ));
    }
    let source = match &args.source {
        Some(s) => s.clone(),
        None => source::default_source(&args.dir)?,
    };
    let flags = source::source_flags(&source);
    let servers = Servers::from_env()?;
    let specs_prefix = plan::specs_prefix(&config.prefix);
    let existing = servers
        .consul
        .kv_list(&specs_prefix, &QueryOptions::new())
        .await
        .with_context(|| format!("cannot read {specs_prefix} from Consul"))?
        .value;
    // An invalid document still names its spec when it can: that key is not "gone".
    let invalid_keys: BTreeSet<&str> = local
        .invalid
        .iter()
        .filter_map(|s| s.key.as_deref())
        .collect();
    let items: Vec<PlanItem> = plan::plan(&local.docs, &existing, &specs_prefix, flags, args.prune)
        .into_iter()
        .filter(|i| {
            !(matches!(i.action, Action::Prune | Action::Stale)
                && invalid_keys.contains(i.spec_key.as_str()))
        })
        .collect();
    let known = local.docs.iter().map(|d| d.spec_key.as_str()).chain(
        existing
            .iter()
            .filter_map(|p| p.key.strip_prefix(&specs_prefix)),
    );
    let preview = Preview {
        live: Live {
            servers: &servers,
            jwt_mount: config.jwt_auth_mount.clone(),
        },
        names: Names::new(known),
        ctx: RenderContext {
            generation: 0,
            replicas: None,
            edge_gateway: config.edge_gateway.clone(),
            jwt_auth_mount: config.jwt_auth_mount.clone(),
            jwt_audience: config.jwt_audience.clone(),
        },
        purge_on_delete: config.purge_on_delete,
    };
    let mut report = Report {
        format_version: model::FORMAT_VERSION,
        source,
        ..Report::default()
    };
    report.specs = local.invalid;
    for item in &items {
        match item.action {
            Action::Unchanged => report.unchanged += 1,
            Action::Stale => report.stale.push(item.spec_key.clone()),
            Action::Create | Action::Update => {
                let Some(spec) = local.specs.get(&item.kv_key) else {
                    continue;
                };
                report.specs.push(preview.apply(item, spec).await);
            }
            Action::Prune => report.specs.push(preview.delete(item).await),
        }
    }
    report.specs.sort_by_key(|a| (a.key.is_none(), a.title()));
    print!(
        "{}",
        match args.output {
            DiffOutput::Text => output::text(&report),
            DiffOutput::Markdown => output::markdown(&report),
            DiffOutput::Json => output::json(&report),
        }
    );
    Ok(exit_for(&report))
}

/// Runs `steward diff`. Every failure exits 1, so that 2 always means "changes".
///
/// # Errors
/// Any failure, with exit code 1.
pub async fn run(args: &DiffArgs) -> anyhow::Result<Exit> {
    diff(args).await.map_err(|e| match exit_of(&e) {
        Exit::Invalid => e,
        _ => fail(Exit::Invalid, e),
    })
}
