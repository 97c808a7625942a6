//! The Nomad state store and the scheduling model: registrations, evaluations,
//! placements, allocation lifecycles, deployments (rolling updates, canaries, auto
//! revert) and the event buffer. Everything here runs under the state lock; every
//! write takes its index from the product's clock while the lock is held.

use super::NomadSimConfig;
use super::canon::spec_changed;
use super::catalog::{CatalogOp, CheckInstance, ProxyInstance, ServiceInstance, Upstream};
use super::diff::{DesiredUpdates, tasks_updated};
use super::json::{arr, b, i, s, u};
use super::model::{
    Alloc, AllocDeploymentStatus, AllocPort, Deployment, DeploymentState, Eval, Namespace,
};
use crate::faults::FaultController;
use crate::index::IndexClock;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// `(namespace, job ID)`.
pub(crate) type JobKey = (String, String);

/// A job with its tracked versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobEntry {
    /// The current job.
    pub(crate) job: Value,
    /// Tracked versions, newest first.
    pub(crate) versions: Vec<Value>,
    pub(crate) summary_create_index: u64,
    pub(crate) summary_modify_index: u64,
    /// Versions registered by an auto revert (the failing-job fault spares them).
    #[serde(default)]
    pub(crate) revert_versions: BTreeSet<u64>,
}

/// The index of each table (what blocking reads report).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Tables {
    pub(crate) jobs: u64,
    pub(crate) job_summary: u64,
    pub(crate) job_version: u64,
    pub(crate) evals: u64,
    pub(crate) allocs: u64,
    pub(crate) deployment: u64,
    pub(crate) namespaces: u64,
}

/// Something the scheduler must do at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    AllocStart(String),
    AllocHealthy(String),
    AllocUnhealthy(String),
    BatchComplete(String),
    ProgressDeadline(String),
}

/// One frame of the event stream: every event of one index.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) index: u64,
    pub(crate) events: Vec<Value>,
}

/// What the core needs to make decisions.
pub(crate) struct Ctx<'a> {
    pub(crate) clock: &'a IndexClock,
    pub(crate) cfg: &'a NomadSimConfig,
    pub(crate) faults: &'a FaultController,
}

/// Result of a registration.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegisterOutcome {
    pub(crate) eval_id: String,
    pub(crate) eval_create_index: u64,
    pub(crate) job_modify_index: u64,
    pub(crate) index: u64,
}

/// The whole state.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) namespaces: BTreeMap<String, Namespace>,
    pub(crate) jobs: BTreeMap<JobKey, JobEntry>,
    pub(crate) evals: HashMap<String, Eval>,
    pub(crate) evals_by_job: HashMap<JobKey, Vec<String>>,
    pub(crate) allocs: HashMap<String, Alloc>,
    pub(crate) allocs_by_job: HashMap<JobKey, Vec<String>>,
    pub(crate) deployments: HashMap<String, Deployment>,
    pub(crate) deployments_by_job: HashMap<JobKey, Vec<String>>,
    pub(crate) tables: Tables,
    pub(crate) timers: BTreeMap<(Instant, u64), Timer>,
    pub(crate) timer_seq: u64,
    pub(crate) events: VecDeque<Frame>,
    pub(crate) next_port: u16,
    pub(crate) backends: HashMap<JobKey, SocketAddr>,
    pub(crate) catalog_ops: Vec<CatalogOp>,
}

/// Unix time in nanoseconds.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 timestamp of now (or `offset` from now).
pub(crate) fn rfc3339(offset: Duration) -> String {
    let ts = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(offset).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    ts.to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn group_of<'a>(job: &'a Value, name: &str) -> Option<&'a Value> {
    arr(job, "TaskGroups").iter().find(|g| s(g, "Name") == name)
}

/// The group's update strategy when deployments apply (`MaxParallel > 0`).
fn update_of(g: &Value) -> Option<&Value> {
    g.get("Update")
        .filter(|u| u.is_object() && i(u, "MaxParallel") > 0)
}

fn alloc_index(name: &str) -> Option<usize> {
    let start = name.rfind('[')?;
    name[start + 1..name.len().saturating_sub(1)].parse().ok()
}

impl Inner {
    /// A state with the `default` namespace (and the configured ones) at index 1.
    pub(crate) fn new(cfg: &NomadSimConfig) -> Inner {
        let mut inner = Inner {
            next_port: cfg.dynamic_port_min,
            ..Inner::default()
        };
        let mut names = vec!["default".to_string()];
        names.extend(cfg.namespaces.iter().cloned());
        for name in names {
            let description = if name == "default" {
                "Default shared namespace".to_string()
            } else {
                String::new()
            };
            inner.namespaces.insert(
                name.clone(),
                Namespace {
                    name,
                    description,
                    meta: None,
                    quota: String::new(),
                    create_index: 1,
                    modify_index: 1,
                },
            );
        }
        inner.tables.namespaces = 1;
        inner
    }

    // ----- small accessors -----

    pub(crate) fn job(&self, key: &JobKey) -> Option<&Value> {
        self.jobs.get(key).map(|e| &e.job)
    }

    fn version_of(&self, key: &JobKey, version: u64) -> Option<&Value> {
        self.jobs
            .get(key)?
            .versions
            .iter()
            .find(|v| u(v, "Version") == version)
    }

    /// The job as of an allocation's version (or the current job).
    pub(crate) fn alloc_job(&self, a: &Alloc) -> Option<Value> {
        let key = (a.namespace.clone(), a.job_id.clone());
        self.version_of(&key, a.job_version)
            .or_else(|| self.job(&key))
            .cloned()
    }

    pub(crate) fn job_allocs(&self, key: &JobKey) -> Vec<&Alloc> {
        self.allocs_by_job
            .get(key)
            .map(|ids| ids.iter().filter_map(|id| self.allocs.get(id)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn job_evals(&self, key: &JobKey) -> Vec<&Eval> {
        self.evals_by_job
            .get(key)
            .map(|ids| ids.iter().filter_map(|id| self.evals.get(id)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn job_deployments(&self, key: &JobKey) -> Vec<&Deployment> {
        let mut v: Vec<&Deployment> = self
            .deployments_by_job
            .get(key)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.deployments.get(id))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|d| std::cmp::Reverse(d.create_index));
        v
    }

    /// `JobSummary` of a job.
    pub(crate) fn summary(&self, key: &JobKey) -> Option<Value> {
        let entry = self.jobs.get(key)?;
        let job = &entry.job;
        let mut groups = serde_json::Map::new();
        let allocs = self.job_allocs(key);
        let periodic = job["Periodic"].is_object() || job["ParameterizedJob"].is_object();
        for g in arr(job, "TaskGroups") {
            let name = s(g, "Name");
            let (mut starting, mut running, mut failed, mut complete, mut lost) = (0, 0, 0, 0, 0);
            for a in allocs.iter().filter(|a| a.task_group == name) {
                match a.client_status.as_str() {
                    "pending" if a.desired_status == "run" => starting += 1,
                    "running" => running += 1,
                    "failed" => failed += 1,
                    "complete" => complete += 1,
                    "lost" => lost += 1,
                    _ => {}
                }
            }
            let blocked = self.job_evals(key).iter().any(|e| e.status == "blocked");
            let queued = if blocked && !b(job, "Stop") && !periodic {
                (i(g, "Count") - starting - running).max(0)
            } else {
                0
            };
            groups.insert(
                name.to_string(),
                json!({
                    "Complete": complete, "Failed": failed, "Lost": lost, "Queued": queued,
                    "Running": running, "Starting": starting, "Unknown": 0,
                }),
            );
        }
        Some(json!({
            "Children": { "Dead": 0, "Pending": 0, "Running": 0 },
            "CreateIndex": entry.summary_create_index,
            "JobID": s(job, "ID"),
            "ModifyIndex": entry.summary_modify_index,
            "Namespace": s(job, "Namespace"),
            "Summary": groups,
        }))
    }

    // ----- events -----

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        topic: &str,
        kind: &str,
        key: &str,
        namespace: &str,
        filter_keys: Vec<String>,
        payload: Value,
    ) {
        let event = json!({
            "FilterKeys": if filter_keys.is_empty() { Value::Null } else { json!(filter_keys) },
            "Index": index,
            "Key": key,
            "Namespace": namespace,
            "Payload": payload,
            "Topic": topic,
            "Type": kind,
        });
        match self.events.back_mut() {
            Some(f) if f.index == index => f.events.push(event),
            _ => {
                self.events.push_back(Frame {
                    index,
                    events: vec![event],
                });
                while self.events.len() > cfg.event_buffer_size.max(1) {
                    self.events.pop_front();
                }
            }
        }
    }

    fn emit_job(&mut self, cfg: &NomadSimConfig, index: u64, kind: &str, key: &JobKey) {
        if let Some(job) = self.job(key).cloned() {
            self.emit(
                cfg,
                index,
                "Job",
                kind,
                &key.1,
                &key.0,
                Vec::new(),
                json!({ "Job": job }),
            );
        }
    }

    fn emit_alloc(&mut self, cfg: &NomadSimConfig, index: u64, kind: &str, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        let payload = json!({ "Allocation": a.stub(&cfg.node_id, &cfg.node_name) });
        let (ns, job, dep) = (
            a.namespace.clone(),
            a.job_id.clone(),
            a.deployment_id.clone(),
        );
        let mut keys = vec![job];
        if !dep.is_empty() {
            keys.push(dep);
        }
        self.emit(cfg, index, "Allocation", kind, id, &ns, keys, payload);
    }

    fn emit_deployment(&mut self, cfg: &NomadSimConfig, index: u64, kind: &str, id: &str) {
        let Some(d) = self.deployments.get(id) else {
            return;
        };
        let payload = json!({ "Deployment": d });
        let (ns, job) = (d.namespace.clone(), d.job_id.clone());
        self.emit(cfg, index, "Deployment", kind, id, &ns, vec![job], payload);
    }

    fn emit_eval(&mut self, cfg: &NomadSimConfig, index: u64, id: &str) {
        let Some(e) = self.evals.get(id) else { return };
        let payload = json!({ "Evaluation": e });
        let (ns, job) = (e.namespace.clone(), e.job_id.clone());
        self.emit(
            cfg,
            index,
            "Evaluation",
            "EvaluationUpdated",
            id,
            &ns,
            vec![job],
            payload,
        );
    }

    // ----- timers -----

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
    }

    /// Takes every timer due at `now`.
    pub(crate) fn due_timers(&mut self, now: Instant) -> Vec<Timer> {
        let mut out = Vec::new();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Re-creates timers from the stored state (after a restore).
    pub(crate) fn rearm_timers(&mut self, cfg: &NomadSimConfig) {
        self.timers.clear();
        let now = Instant::now();
        let ids: Vec<String> = self.allocs.keys().cloned().collect();
        for id in ids {
            let Some(a) = self.allocs.get(&id) else {
                continue;
            };
            if a.desired_status != "run" {
                continue;
            }
            match a.client_status.as_str() {
                "pending" => self.schedule(now + cfg.start_delay(), Timer::AllocStart(id)),
                "running" => {
                    let job_type = a.job_type.clone();
                    let needs_health = !a.deployment_id.is_empty()
                        && a.deployment_status
                            .as_ref()
                            .is_none_or(|d| d.healthy.is_none());
                    if job_type == "batch" {
                        self.schedule(now + cfg.healthy_delay(), Timer::BatchComplete(id));
                    } else if needs_health {
                        self.schedule(now + cfg.healthy_delay(), Timer::AllocHealthy(id));
                    }
                }
                _ => {}
            }
        }
        let deps: Vec<(String, i64)> = self
            .deployments
            .values()
            .filter(|d| d.active())
            .map(|d| {
                let pd = d
                    .task_groups
                    .values()
                    .map(|s| s.progress_deadline)
                    .max()
                    .unwrap_or(0);
                (d.id.clone(), pd)
            })
            .collect();
        for (id, pd) in deps {
            if pd > 0 {
                self.schedule(
                    now + cfg.scaled(Duration::from_nanos(pd as u64)),
                    Timer::ProgressDeadline(id),
                );
            }
        }
    }

    // ----- registration -----

    /// Registers a canonical, validated job.
    ///
    /// # Errors
    /// The server's 500 text (nonexistent namespace, `EnforceIndex` violations).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        cx: &Ctx<'_>,
        mut job: Value,
        enforce: Option<u64>,
        preserve_counts: bool,
        triggered_by: &str,
        from_revert: bool,
    ) -> Result<RegisterOutcome, String> {
        let ns = s(&job, "Namespace").to_string();
        let id = s(&job, "ID").to_string();
        if !self.namespaces.contains_key(&ns) {
            return Err(format!("job {id:?} is in nonexistent namespace {ns:?}"));
        }
        let key = (ns.clone(), id.clone());
        let existing = self.jobs.get(&key).map(|e| e.job.clone());
        if let Some(jmi) = enforce {
            match &existing {
                Some(old) if jmi == 0 => {
                    let _ = old;
                    return Err("Enforcing job modify index 0: job already exists".into());
                }
                Some(old) if jmi != u(old, "JobModifyIndex") => {
                    return Err(format!(
                        "Enforcing job modify index {jmi}: job exists with conflicting job modify index: {}",
                        u(old, "JobModifyIndex")
                    ));
                }
                None if jmi != 0 => {
                    return Err(format!(
                        "Enforcing job modify index {jmi}: job does not exist"
                    ));
                }
                _ => {}
            }
        }
        if preserve_counts
            && let Some(old) = &existing
            && let Some(groups) = job.get_mut("TaskGroups").and_then(Value::as_array_mut)
        {
            for g in groups {
                if let Some(og) = group_of(old, s(g, "Name")) {
                    g["Count"] = og["Count"].clone();
                }
            }
        }
        let periodic = job["Periodic"].is_object() || job["ParameterizedJob"].is_object();
        let changed = existing.as_ref().is_none_or(|old| spec_changed(old, &job));
        if !changed {
            let old = existing.unwrap_or_default();
            if periodic {
                return Ok(RegisterOutcome {
                    eval_id: String::new(),
                    eval_create_index: 0,
                    job_modify_index: u(&old, "ModifyIndex"),
                    index: u(&old, "ModifyIndex"),
                });
            }
            let idx = cx.clock.next();
            let eval_id = self.create_eval(cx, &key, idx, triggered_by, u(&old, "JobModifyIndex"));
            self.process_eval(cx, &key, &eval_id, false);
            return Ok(RegisterOutcome {
                eval_id,
                eval_create_index: idx,
                job_modify_index: u(&old, "ModifyIndex"),
                index: idx,
            });
        }
        let idx = cx.clock.next();
        let prev_version = existing.as_ref().map(|o| u(o, "Version"));
        job["Version"] = json!(prev_version.map(|v| v + 1).unwrap_or(0));
        job["CreateIndex"] = json!(
            existing
                .as_ref()
                .map(|o| u(o, "CreateIndex"))
                .unwrap_or(idx)
        );
        job["ModifyIndex"] = json!(idx);
        job["JobModifyIndex"] = json!(idx);
        job["SubmitTime"] = json!(now_ns());
        job["Stable"] = json!(false);
        job["Status"] = json!(if periodic {
            if b(&job, "Stop") { "dead" } else { "running" }
        } else {
            "pending"
        });
        let version = u(&job, "Version");
        let tracked = cx.cfg.job_tracked_versions.max(1);
        match self.jobs.get_mut(&key) {
            Some(entry) => {
                entry.job = job.clone();
                entry.versions.insert(0, job);
                entry.versions.truncate(tracked);
                if from_revert {
                    entry.revert_versions.insert(version);
                }
            }
            None => {
                let mut revert_versions = BTreeSet::new();
                if from_revert {
                    revert_versions.insert(version);
                }
                self.jobs.insert(
                    key.clone(),
                    JobEntry {
                        job: job.clone(),
                        versions: vec![job],
                        summary_create_index: idx,
                        summary_modify_index: idx,
                        revert_versions,
                    },
                );
                self.tables.job_summary = idx;
            }
        }
        self.tables.jobs = idx;
        self.tables.job_version = idx;
        self.emit_job(cx.cfg, idx, "JobRegistered", &key);
        if periodic {
            return Ok(RegisterOutcome {
                eval_id: String::new(),
                eval_create_index: 0,
                job_modify_index: idx,
                index: idx,
            });
        }
        let eval_id = self.create_eval(cx, &key, idx, triggered_by, idx);
        self.process_eval(cx, &key, &eval_id, true);
        Ok(RegisterOutcome {
            eval_id,
            eval_create_index: idx,
            job_modify_index: idx,
            index: idx,
        })
    }

    fn create_eval(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        idx: u64,
        triggered_by: &str,
        jmi: u64,
    ) -> String {
        let (priority, job_type) = self
            .job(key)
            .map(|j| (i(j, "Priority"), s(j, "Type").to_string()))
            .unwrap_or((50, "service".into()));
        let id = new_id();
        let now = now_ns();
        self.evals.insert(
            id.clone(),
            Eval {
                id: id.clone(),
                namespace: key.0.clone(),
                priority,
                job_type,
                triggered_by: triggered_by.into(),
                job_id: key.1.clone(),
                job_modify_index: jmi,
                deployment_id: String::new(),
                status: "pending".into(),
                status_description: String::new(),
                previous_eval: String::new(),
                blocked_eval: String::new(),
                failed_tg_allocs: None,
                class_eligibility: None,
                queued_allocations: BTreeMap::new(),
                snapshot_index: 0,
                create_index: idx,
                modify_index: idx,
                create_time: now,
                modify_time: now,
            },
        );
        self.evals_by_job
            .entry(key.clone())
            .or_default()
            .push(id.clone());
        self.tables.evals = idx;
        self.emit_eval(cx.cfg, idx, &id);
        id
    }

    /// Runs the scheduler for one evaluation (a plan applied at a new index).
    fn process_eval(&mut self, cx: &Ctx<'_>, key: &JobKey, eval_id: &str, new_version: bool) {
        let idx = cx.clock.next();
        let outcome = self.reconcile(cx, key, idx, eval_id, new_version);
        // Cancel older blocked evaluations of this job.
        let blocked: Vec<String> = self
            .job_evals(key)
            .iter()
            .filter(|e| e.status == "blocked")
            .map(|e| e.id.clone())
            .collect();
        for id in blocked {
            if let Some(e) = self.evals.get_mut(&id) {
                e.status = "canceled".into();
                e.status_description = format!("evaluation for job {:?} superseded", key.1);
                e.modify_index = idx;
                e.modify_time = now_ns();
            }
        }
        let mut blocked_id = String::new();
        if !outcome.failed.is_empty() {
            blocked_id = new_id();
            let now = now_ns();
            let (priority, job_type) = self
                .job(key)
                .map(|j| (i(j, "Priority"), s(j, "Type").to_string()))
                .unwrap_or((50, "service".into()));
            self.evals.insert(
                blocked_id.clone(),
                Eval {
                    id: blocked_id.clone(),
                    namespace: key.0.clone(),
                    priority,
                    job_type,
                    triggered_by: "queued-allocs".into(),
                    job_id: key.1.clone(),
                    job_modify_index: self.job(key).map(|j| u(j, "JobModifyIndex")).unwrap_or(0),
                    deployment_id: String::new(),
                    status: "blocked".into(),
                    status_description: "created to place remaining allocations".into(),
                    previous_eval: eval_id.into(),
                    blocked_eval: String::new(),
                    failed_tg_allocs: Some(failed_tg_allocs(cx.cfg, &outcome.failed)),
                    class_eligibility: None,
                    queued_allocations: BTreeMap::new(),
                    snapshot_index: idx,
                    create_index: idx,
                    modify_index: idx,
                    create_time: now,
                    modify_time: now,
                },
            );
            self.evals_by_job
                .entry(key.clone())
                .or_default()
                .push(blocked_id.clone());
        }
        if let Some(e) = self.evals.get_mut(eval_id) {
            e.status = "complete".into();
            e.modify_index = idx;
            e.modify_time = now_ns();
            e.snapshot_index = idx.saturating_sub(1);
            e.deployment_id = outcome.deployment_id.clone().unwrap_or_default();
            e.queued_allocations = outcome.queued.clone();
            e.blocked_eval = blocked_id.clone();
            if !outcome.failed.is_empty() {
                e.failed_tg_allocs = Some(failed_tg_allocs(cx.cfg, &outcome.failed));
            }
        }
        self.tables.evals = idx;
        self.emit_eval(cx.cfg, idx, eval_id);
        if !blocked_id.is_empty() {
            self.emit_eval(cx.cfg, idx, &blocked_id);
        }
        self.refresh_job_status(key, idx);
        self.emit_job(cx.cfg, idx, "PlanResult", key);
        if let Some(d) = &outcome.deployment_id {
            let d = d.clone();
            self.emit_deployment(cx.cfg, idx, "PlanResult", &d);
        }
        for a in outcome.changed {
            self.emit_alloc(cx.cfg, idx, "PlanResult", &a);
        }
        self.after_change(cx, key, idx);
        self.gc_job(key);
    }

    /// Keeps the history of one job bounded, as the server's garbage collector
    /// does: live objects stay, and only the newest terminal evaluations,
    /// allocations and deployments are kept.
    fn gc_job(&mut self, key: &JobKey) {
        const KEEP: usize = 10;
        if let Some(ids) = self.evals_by_job.get(key)
            && ids.len() > 2 * KEEP
        {
            let mut terminal: Vec<(u64, String)> = ids
                .iter()
                .filter_map(|id| self.evals.get(id))
                .filter(|e| e.terminal())
                .map(|e| (e.create_index, e.id.clone()))
                .collect();
            terminal.sort();
            let drop = terminal.len().saturating_sub(KEEP);
            let gone: BTreeSet<String> =
                terminal.into_iter().take(drop).map(|(_, id)| id).collect();
            for id in &gone {
                self.evals.remove(id);
            }
            if let Some(ids) = self.evals_by_job.get_mut(key) {
                ids.retain(|id| !gone.contains(id));
            }
        }
        if let Some(ids) = self.allocs_by_job.get(key)
            && ids.len() > 2 * KEEP
        {
            let mut terminal: Vec<(u64, String)> = ids
                .iter()
                .filter_map(|id| self.allocs.get(id))
                .filter(|a| a.terminal())
                .map(|a| (a.create_index, a.id.clone()))
                .collect();
            terminal.sort();
            let drop = terminal.len().saturating_sub(KEEP);
            let gone: BTreeSet<String> =
                terminal.into_iter().take(drop).map(|(_, id)| id).collect();
            for id in &gone {
                if let Some(a) = self.allocs.remove(id) {
                    for sid in a.registered {
                        self.catalog_ops.push(CatalogOp::Deregister(sid));
                    }
                }
            }
            if let Some(ids) = self.allocs_by_job.get_mut(key) {
                ids.retain(|id| !gone.contains(id));
            }
        }
        if let Some(ids) = self.deployments_by_job.get(key)
            && ids.len() > 2 * KEEP
        {
            let mut old: Vec<(u64, String)> = ids
                .iter()
                .filter_map(|id| self.deployments.get(id))
                .filter(|d| !d.active())
                .map(|d| (d.create_index, d.id.clone()))
                .collect();
            old.sort();
            let drop = old.len().saturating_sub(KEEP);
            let gone: BTreeSet<String> = old.into_iter().take(drop).map(|(_, id)| id).collect();
            for id in &gone {
                self.deployments.remove(id);
            }
            if let Some(ids) = self.deployments_by_job.get_mut(key) {
                ids.retain(|id| !gone.contains(id));
            }
        }
    }

    /// Recomputes the job's status (`getJobStatus`); a change moves `ModifyIndex`.
    fn refresh_job_status(&mut self, key: &JobKey, idx: u64) {
        let Some(job) = self.job(key) else { return };
        let status = if s(job, "Type") == "system"
            || job["Periodic"].is_object()
            || job["ParameterizedJob"].is_object()
        {
            if b(job, "Stop") { "dead" } else { "running" }
        } else {
            let allocs = self.job_allocs(key);
            let evals = self.job_evals(key);
            if allocs.iter().any(|a| !a.terminal()) {
                "running"
            } else if evals.iter().any(|e| !e.terminal()) {
                "pending"
            } else if b(job, "Stop") || !evals.is_empty() || !allocs.is_empty() {
                "dead"
            } else {
                "pending"
            }
        };
        if let Some(entry) = self.jobs.get_mut(key)
            && entry.job["Status"] != status
        {
            entry.job["Status"] = json!(status);
            entry.job["ModifyIndex"] = json!(idx);
            if let Some(v) = entry.versions.first_mut()
                && u(v, "Version") == u(&entry.job, "Version")
            {
                v["Status"] = json!(status);
            }
            self.tables.jobs = idx;
        }
    }

    fn touch_summary(&mut self, key: &JobKey, idx: u64) {
        if let Some(e) = self.jobs.get_mut(key) {
            e.summary_modify_index = idx;
            self.tables.job_summary = idx;
        }
    }

    // ----- the reconciler -----

    fn placement_blocked(
        &self,
        cfg: &NomadSimConfig,
        job: &Value,
        g: &Value,
    ) -> Option<&'static str> {
        let dc_ok = arr(job, "Datacenters")
            .iter()
            .filter_map(Value::as_str)
            .any(|d| {
                d == "*"
                    || d == cfg.datacenter
                    || (d.ends_with('*') && cfg.datacenter.starts_with(&d[..d.len() - 1]))
            });
        if !dc_ok {
            return Some("datacenter");
        }
        let drivers_ok = arr(g, "Tasks")
            .iter()
            .all(|t| cfg.drivers.iter().any(|d| d == s(t, "Driver")));
        if !drivers_ok {
            return Some("missing drivers");
        }
        None
    }

    fn reconcile(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        idx: u64,
        eval_id: &str,
        new_version: bool,
    ) -> ReconcileOutcome {
        let mut out = ReconcileOutcome::default();
        let Some(job) = self.job(key).cloned() else {
            // Purged: stop everything that is left.
            for id in self.live_alloc_ids(key, None) {
                self.stop_alloc(id.as_str(), idx, "alloc not needed due to job update");
                out.changed.push(id);
            }
            self.cancel_deployments(cx, key, idx, "Cancelled because job is stopped", None);
            return out;
        };
        let version = u(&job, "Version");
        let stopped = b(&job, "Stop");
        let periodic = job["Periodic"].is_object() || job["ParameterizedJob"].is_object();
        if stopped || periodic {
            for id in self.live_alloc_ids(key, None) {
                self.stop_alloc(&id, idx, "alloc not needed due to job update");
                out.changed.push(id);
            }
            self.cancel_deployments(cx, key, idx, "Cancelled because job is stopped", None);
            if !out.changed.is_empty() {
                self.tables.allocs = idx;
                self.touch_summary(key, idx);
            }
            return out;
        }
        // Deployment for this version.
        if new_version {
            self.cancel_deployments(
                cx,
                key,
                idx,
                "Cancelled due to newer version of job",
                Some(version),
            );
            let wants = s(&job, "Type") == "service"
                && arr(&job, "TaskGroups")
                    .iter()
                    .any(|g| update_of(g).is_some());
            if wants {
                let id = new_id();
                let now = now_ns();
                let mut groups = BTreeMap::new();
                for g in arr(&job, "TaskGroups") {
                    if let Some(up) = update_of(g) {
                        groups.insert(
                            s(g, "Name").to_string(),
                            DeploymentState {
                                auto_promote: b(up, "AutoPromote"),
                                auto_revert: b(up, "AutoRevert"),
                                desired_canaries: 0,
                                desired_total: i(g, "Count"),
                                healthy_allocs: 0,
                                placed_allocs: 0,
                                placed_canaries: None,
                                progress_deadline: i(up, "ProgressDeadline"),
                                promoted: false,
                                require_progress_by: None,
                                unhealthy_allocs: 0,
                            },
                        );
                    }
                }
                let d = Deployment {
                    create_index: idx,
                    create_time: now,
                    eval_priority: i(&job, "Priority"),
                    id: id.clone(),
                    is_multiregion: false,
                    job_create_index: u(&job, "CreateIndex"),
                    job_id: key.1.clone(),
                    job_modify_index: u(&job, "JobModifyIndex"),
                    job_spec_modify_index: u(&job, "JobModifyIndex"),
                    job_version: version,
                    modify_index: idx,
                    modify_time: now,
                    namespace: key.0.clone(),
                    status: "running".into(),
                    status_description: "Deployment is running".into(),
                    task_groups: groups,
                };
                let pd = d
                    .task_groups
                    .values()
                    .map(|g| g.progress_deadline)
                    .max()
                    .unwrap_or(0);
                self.deployments.insert(id.clone(), d);
                self.deployments_by_job
                    .entry(key.clone())
                    .or_default()
                    .push(id.clone());
                self.tables.deployment = idx;
                if pd > 0 {
                    self.schedule(
                        Instant::now() + cx.cfg.scaled(Duration::from_nanos(pd as u64)),
                        Timer::ProgressDeadline(id),
                    );
                }
            }
        }
        let dep_id = self
            .job_deployments(key)
            .into_iter()
            .find(|d| d.job_version == version && d.active())
            .map(|d| d.id.clone());
        let failed_dep = dep_id.is_none()
            && self
                .job_deployments(key)
                .into_iter()
                .any(|d| d.job_version == version && d.status == "failed");
        out.deployment_id = dep_id.clone();
        // Allocations of groups no longer in the job.
        let group_names: BTreeSet<String> = arr(&job, "TaskGroups")
            .iter()
            .map(|g| s(g, "Name").to_string())
            .collect();
        for id in self.live_alloc_ids(key, None) {
            let gone = self
                .allocs
                .get(&id)
                .is_some_and(|a| !group_names.contains(&a.task_group));
            if gone {
                self.stop_alloc(&id, idx, "alloc not needed as task group was removed");
                out.changed.push(id);
            }
        }
        for g in arr(&job, "TaskGroups") {
            let gname = s(g, "Name").to_string();
            let count = i(g, "Count").max(0) as usize;
            let update = update_of(g).cloned();
            let live = self.live_alloc_ids(key, Some(&gname));
            let mut destructive = Vec::new();
            let mut current = Vec::new();
            for id in live {
                let Some(a) = self.allocs.get(&id) else {
                    continue;
                };
                if a.job_version == version {
                    current.push(id);
                    continue;
                }
                let old_job = self.version_of(key, a.job_version).cloned();
                let destroy = match &old_job {
                    None => true,
                    Some(oj) => tasks_updated(oj, &job, &gname),
                };
                if destroy {
                    destructive.push(id);
                } else {
                    // In-place update.
                    let running = a.client_status == "running";
                    if let Some(a) = self.allocs.get_mut(&id) {
                        a.job_version = version;
                        a.modify_index = idx;
                        a.alloc_modify_index = idx;
                        a.modify_time = now_ns();
                        if let Some(d) = &dep_id {
                            a.deployment_id = d.clone();
                            a.deployment_status = None;
                        }
                    }
                    if let Some(d) = &dep_id {
                        if let Some(st) = self
                            .deployments
                            .get_mut(d)
                            .and_then(|d| d.task_groups.get_mut(&gname))
                        {
                            st.placed_allocs += 1;
                        }
                        if running {
                            let at = Instant::now() + cx.cfg.health_time(g);
                            self.schedule(at, Timer::AllocHealthy(id.clone()));
                        }
                    }
                    out.changed.push(id.clone());
                    current.push(id);
                }
            }
            if let Some(reason) = self.placement_blocked(cx.cfg, &job, g) {
                let missing = count.saturating_sub(current.len());
                if missing > 0 || !destructive.is_empty() {
                    out.failed.insert(
                        gname.clone(),
                        (missing.max(destructive.len()) as u64, reason),
                    );
                    out.queued.insert(gname.clone(), missing as u64);
                }
                continue;
            }
            out.queued.insert(gname.clone(), 0);
            // Canaries.
            if let (Some(up), Some(d)) = (&update, &dep_id) {
                let canary = i(up, "Canary").max(0) as usize;
                let promoted = self
                    .deployments
                    .get(d)
                    .and_then(|d| d.task_groups.get(&gname))
                    .is_some_and(|st| st.promoted);
                if canary > 0 && !destructive.is_empty() && !promoted {
                    if let Some(st) = self
                        .deployments
                        .get_mut(d)
                        .and_then(|d| d.task_groups.get_mut(&gname))
                    {
                        st.desired_canaries = canary as i64;
                    }
                    let have = current
                        .iter()
                        .filter(|id| self.allocs.get(*id).is_some_and(Alloc::canary))
                        .count();
                    for _ in have..canary {
                        let id = self.place(cx, key, &job, g, idx, eval_id, Some(d), true, None);
                        out.changed.push(id);
                    }
                    continue;
                }
            }
            let mut total = current.len() + destructive.len();
            // Scale down: old allocations first, then the highest-numbered ones.
            while total > count && !destructive.is_empty() {
                if let Some(id) = destructive.pop() {
                    self.stop_alloc(&id, idx, "alloc not needed due to job update");
                    out.changed.push(id);
                }
                total -= 1;
            }
            if total > count {
                current.sort_by_key(|id| {
                    std::cmp::Reverse(
                        self.allocs
                            .get(id)
                            .and_then(|a| alloc_index(&a.name))
                            .unwrap_or(0),
                    )
                });
                while total > count {
                    if current.is_empty() {
                        break;
                    }
                    let id = current.remove(0);
                    self.stop_alloc(&id, idx, "alloc not needed due to job update");
                    out.changed.push(id);
                    total -= 1;
                }
            }
            // Place what is missing.
            while total < count {
                let id = self.place(
                    cx,
                    key,
                    &job,
                    g,
                    idx,
                    eval_id,
                    dep_id.as_deref(),
                    false,
                    None,
                );
                out.changed.push(id);
                total += 1;
            }
            // Rolling destructive updates.
            if !destructive.is_empty() {
                let limit = match (&update, &dep_id) {
                    (None, _) => destructive.len(),
                    (Some(_), None) if failed_dep => 0,
                    (Some(up), dep) => {
                        let not_healthy = current
                            .iter()
                            .filter(|id| {
                                self.allocs.get(*id).is_some_and(|a| {
                                    dep.as_ref().is_some_and(|d| a.deployment_id == **d)
                                        && !a.healthy()
                                })
                            })
                            .count() as i64;
                        (i(up, "MaxParallel") - not_healthy).max(0) as usize
                    }
                };
                destructive.sort_by_key(|id| {
                    self.allocs
                        .get(id)
                        .and_then(|a| alloc_index(&a.name))
                        .unwrap_or(0)
                });
                for id in destructive.into_iter().take(limit) {
                    let name = self.allocs.get(&id).map(|a| a.name.clone());
                    self.stop_alloc(&id, idx, "alloc is being updated due to job update");
                    out.changed.push(id.clone());
                    let new = self.place(
                        cx,
                        key,
                        &job,
                        g,
                        idx,
                        eval_id,
                        dep_id.as_deref(),
                        false,
                        name,
                    );
                    if let Some(a) = self.allocs.get_mut(&id) {
                        a.next_allocation = new.clone();
                    }
                    if let Some(a) = self.allocs.get_mut(&new) {
                        a.previous_allocation = id.clone();
                    }
                    out.changed.push(new);
                }
            }
        }
        if !out.changed.is_empty() {
            self.tables.allocs = idx;
            self.touch_summary(key, idx);
        }
        if let Some(d) = &dep_id
            && let Some(dep) = self.deployments.get_mut(d)
        {
            dep.modify_index = idx;
            dep.modify_time = now_ns();
            self.tables.deployment = idx;
        }
        out
    }

    fn live_alloc_ids(&self, key: &JobKey, group: Option<&str>) -> Vec<String> {
        self.job_allocs(key)
            .into_iter()
            .filter(|a| !a.terminal() && group.is_none_or(|g| a.task_group == g))
            .map(|a| a.id.clone())
            .collect()
    }

    fn cancel_deployments(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        idx: u64,
        why: &str,
        except_version: Option<u64>,
    ) {
        let ids: Vec<String> = self
            .job_deployments(key)
            .into_iter()
            .filter(|d| d.active() && Some(d.job_version) != except_version)
            .map(|d| d.id.clone())
            .collect();
        for id in ids {
            if let Some(d) = self.deployments.get_mut(&id) {
                d.status = "cancelled".into();
                d.status_description = why.into();
                d.modify_index = idx;
                d.modify_time = now_ns();
            }
            self.tables.deployment = idx;
            self.emit_deployment(cx.cfg, idx, "DeploymentStatusUpdate", &id);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        job: &Value,
        g: &Value,
        idx: u64,
        eval_id: &str,
        deployment: Option<&str>,
        canary: bool,
        name: Option<String>,
    ) -> String {
        let gname = s(g, "Name").to_string();
        let name = name.unwrap_or_else(|| {
            let used: BTreeSet<usize> = self
                .job_allocs(key)
                .into_iter()
                .filter(|a| !a.terminal() && a.task_group == gname)
                .filter_map(|a| alloc_index(&a.name))
                .collect();
            let n = (0..).find(|n| !used.contains(n)).unwrap_or(0);
            format!("{}.{}[{}]", key.1, gname, n)
        });
        let mut ports = Vec::new();
        for n in arr(g, "Networks") {
            for p in arr(n, "ReservedPorts") {
                let v = i(p, "Value").clamp(0, 65535) as u16;
                ports.push(AllocPort {
                    label: s(p, "Label").into(),
                    value: v,
                    to: i(p, "To"),
                });
            }
            for p in arr(n, "DynamicPorts") {
                let v = self.next_dynamic_port(cx.cfg);
                let to = match i(p, "To") {
                    -1 => i64::from(v),
                    t => t,
                };
                ports.push(AllocPort {
                    label: s(p, "Label").into(),
                    value: v,
                    to,
                });
            }
        }
        // The allocation this one replaces (a failed one of the same name) is gone
        // from the client: its services leave Consul.
        let failed: Vec<String> = self
            .job_allocs(key)
            .into_iter()
            .filter(|a| a.name == name && a.client_status == "failed" && !a.registered.is_empty())
            .map(|a| a.id.clone())
            .collect();
        for fid in failed {
            if let Some(a) = self.allocs.get_mut(&fid) {
                for sid in std::mem::take(&mut a.registered) {
                    self.catalog_ops.push(CatalogOp::Deregister(sid));
                }
            }
        }
        let id = new_id();
        let now = now_ns();
        let tasks: Vec<String> = arr(g, "Tasks")
            .iter()
            .map(|t| s(t, "Name").to_string())
            .collect();
        let deployment_status = canary.then(|| AllocDeploymentStatus {
            healthy: None,
            timestamp: "0001-01-01T00:00:00Z".into(),
            canary: true,
            modify_index: idx,
        });
        self.allocs.insert(
            id.clone(),
            Alloc {
                id: id.clone(),
                eval_id: eval_id.into(),
                name,
                namespace: key.0.clone(),
                job_id: key.1.clone(),
                job_type: s(job, "Type").into(),
                job_version: u(job, "Version"),
                task_group: gname.clone(),
                desired_status: "run".into(),
                desired_description: String::new(),
                client_status: "pending".into(),
                client_description: "No tasks have started".into(),
                deployment_id: deployment.unwrap_or("").into(),
                deployment_status,
                tasks,
                ports,
                previous_allocation: String::new(),
                next_allocation: String::new(),
                started_at: None,
                finished_at: None,
                registered: Vec::new(),
                create_index: idx,
                modify_index: idx,
                alloc_modify_index: idx,
                create_time: now,
                modify_time: now,
            },
        );
        self.allocs_by_job
            .entry(key.clone())
            .or_default()
            .push(id.clone());
        if let Some(d) = deployment {
            let pd = cx.cfg.progress_window(g);
            if let Some(st) = self
                .deployments
                .get_mut(d)
                .and_then(|d| d.task_groups.get_mut(&gname))
            {
                st.placed_allocs += 1;
                if canary {
                    st.placed_canaries
                        .get_or_insert_with(Vec::new)
                        .push(id.clone());
                }
                if st.require_progress_by.is_none() && st.progress_deadline > 0 {
                    st.require_progress_by = Some(rfc3339(pd));
                }
            }
        }
        self.schedule(
            Instant::now() + cx.cfg.start_delay(),
            Timer::AllocStart(id.clone()),
        );
        id
    }

    fn next_dynamic_port(&mut self, cfg: &NomadSimConfig) -> u16 {
        let (min, max) = (
            cfg.dynamic_port_min,
            cfg.dynamic_port_max.max(cfg.dynamic_port_min),
        );
        if self.next_port < min || self.next_port > max {
            self.next_port = min;
        }
        let p = self.next_port;
        self.next_port = if p >= max { min } else { p + 1 };
        p
    }

    fn stop_alloc(&mut self, id: &str, idx: u64, why: &str) {
        let Some(a) = self.allocs.get_mut(id) else {
            return;
        };
        a.desired_status = "stop".into();
        a.desired_description = why.into();
        if matches!(a.client_status.as_str(), "pending" | "running") {
            a.client_status = "complete".into();
            a.client_description = "All tasks have completed".into();
            a.finished_at = Some(rfc3339(Duration::ZERO));
        }
        a.modify_index = idx;
        a.alloc_modify_index = idx;
        a.modify_time = now_ns();
        for sid in std::mem::take(&mut a.registered) {
            self.catalog_ops.push(CatalogOp::Deregister(sid));
        }
    }

    // ----- timers firing -----

    /// Handles one due timer.
    pub(crate) fn fire(&mut self, cx: &Ctx<'_>, timer: Timer) {
        match timer {
            Timer::AllocStart(id) => self.alloc_started(cx, &id),
            Timer::AllocHealthy(id) => self.alloc_healthy(cx, &id),
            Timer::AllocUnhealthy(id) => self.alloc_unhealthy(cx, &id),
            Timer::BatchComplete(id) => {
                let Some(a) = self.allocs.get(&id) else {
                    return;
                };
                if a.client_status != "running" || a.desired_status != "run" {
                    return;
                }
                let key = (a.namespace.clone(), a.job_id.clone());
                let idx = cx.clock.next();
                if let Some(a) = self.allocs.get_mut(&id) {
                    a.client_status = "complete".into();
                    a.client_description = "All tasks have completed".into();
                    a.finished_at = Some(rfc3339(Duration::ZERO));
                    a.modify_index = idx;
                    a.modify_time = now_ns();
                    for sid in std::mem::take(&mut a.registered) {
                        self.catalog_ops.push(CatalogOp::Deregister(sid));
                    }
                }
                self.tables.allocs = idx;
                self.touch_summary(&key, idx);
                self.emit_alloc(cx.cfg, idx, "AllocationUpdated", &id);
                self.refresh_job_status(&key, idx);
            }
            Timer::ProgressDeadline(id) => {
                let Some(d) = self.deployments.get(&id) else {
                    return;
                };
                if !d.active() {
                    return;
                }
                let key = (d.namespace.clone(), d.job_id.clone());
                let now = jiff::Timestamp::now();
                let late = d.task_groups.values().any(|st| {
                    st.require_progress_by
                        .as_deref()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .is_some_and(|t| t <= now)
                        && st.healthy_allocs < st.desired_total
                });
                if late {
                    let idx = cx.clock.next();
                    self.fail_deployment(cx, &key, &id, idx, "Failed due to progress deadline");
                    self.after_change(cx, &key, idx);
                } else {
                    // Re-arm at the latest deadline.
                    let next = d
                        .task_groups
                        .values()
                        .filter_map(|st| st.require_progress_by.as_deref())
                        .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
                        .max();
                    let wait = match next {
                        Some(t) => {
                            let secs = t.as_nanosecond() - now.as_nanosecond();
                            Duration::from_nanos(secs.max(1_000_000) as u64)
                        }
                        None => cx.cfg.scaled(Duration::from_secs(600)),
                    };
                    self.schedule(Instant::now() + wait, Timer::ProgressDeadline(id));
                }
            }
        }
    }

    fn alloc_started(&mut self, cx: &Ctx<'_>, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        if a.client_status != "pending" || a.desired_status != "run" {
            return;
        }
        let key = (a.namespace.clone(), a.job_id.clone());
        let version = a.job_version;
        let Some(job) = self.alloc_job(a) else { return };
        let Some(g) = group_of(&job, &a.task_group).cloned() else {
            return;
        };
        let exempt = self
            .jobs
            .get(&key)
            .is_some_and(|e| e.revert_versions.contains(&version));
        let failing = cx.faults.job_failing(&key.0, &key.1) && !exempt;
        let idx = cx.clock.next();
        let now = now_ns();
        let deployment_id = a.deployment_id.clone();
        let group_name = a.task_group.clone();
        let registrations = self.service_instances(cx.cfg, a, &job, &g, failing);
        let mut schedule_health = false;
        let mut batch_done = false;
        if let Some(a) = self.allocs.get_mut(id) {
            a.modify_index = idx;
            a.modify_time = now;
            if failing {
                a.client_status = "failed".into();
                a.client_description = "Failed tasks".into();
                a.started_at = Some(rfc3339(Duration::ZERO));
                a.finished_at = Some(rfc3339(Duration::ZERO));
                if !deployment_id.is_empty() {
                    let canary = a.canary();
                    a.deployment_status = Some(AllocDeploymentStatus {
                        healthy: Some(false),
                        timestamp: rfc3339(Duration::ZERO),
                        canary,
                        modify_index: idx,
                    });
                }
            } else {
                a.client_status = "running".into();
                a.client_description = "Tasks are running".into();
                a.started_at = Some(rfc3339(Duration::ZERO));
                if a.job_type == "batch" || a.job_type == "sysbatch" {
                    batch_done = true;
                } else if !deployment_id.is_empty() {
                    schedule_health = true;
                }
            }
            for inst in &registrations {
                a.registered.push(inst.id.clone());
            }
        }
        for inst in registrations {
            self.catalog_ops.push(CatalogOp::Register(Box::new(inst)));
        }
        if failing && !deployment_id.is_empty() {
            if let Some(st) = self
                .deployments
                .get_mut(&deployment_id)
                .and_then(|d| d.task_groups.get_mut(&group_name))
            {
                st.unhealthy_allocs += 1;
            }
            if let Some(d) = self.deployments.get_mut(&deployment_id) {
                d.modify_index = idx;
                d.modify_time = now;
            }
            self.tables.deployment = idx;
        }
        if schedule_health {
            // An allocation that cannot become healthy before the group's healthy
            // deadline (scaled like min_healthy_time) is marked unhealthy then.
            let health = cx.cfg.health_time(&g);
            let deadline = cx.cfg.healthy_deadline(&g);
            let (at, timer) = match deadline {
                Some(d) if d <= health => (d, Timer::AllocUnhealthy(id.into())),
                _ => (health, Timer::AllocHealthy(id.into())),
            };
            self.schedule(Instant::now() + at, timer);
        }
        if batch_done {
            self.schedule(
                Instant::now() + cx.cfg.healthy_delay().max(Duration::from_millis(1)),
                Timer::BatchComplete(id.into()),
            );
        }
        self.tables.allocs = idx;
        self.touch_summary(&key, idx);
        self.emit_alloc(cx.cfg, idx, "AllocationUpdated", id);
        self.refresh_job_status(&key, idx);
        self.after_change(cx, &key, idx);
    }

    fn alloc_healthy(&mut self, cx: &Ctx<'_>, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        if a.client_status != "running" || a.desired_status != "run" || a.deployment_id.is_empty() {
            return;
        }
        if a.deployment_status
            .as_ref()
            .is_some_and(|d| d.healthy.is_some())
        {
            return;
        }
        let key = (a.namespace.clone(), a.job_id.clone());
        let dep_id = a.deployment_id.clone();
        let group = a.task_group.clone();
        let active = self
            .deployments
            .get(&dep_id)
            .is_some_and(Deployment::active);
        let idx = cx.clock.next();
        if let Some(a) = self.allocs.get_mut(id) {
            let canary = a.canary();
            a.deployment_status = Some(AllocDeploymentStatus {
                healthy: Some(true),
                timestamp: rfc3339(Duration::ZERO),
                canary,
                modify_index: idx,
            });
            a.modify_index = idx;
            a.modify_time = now_ns();
        }
        self.tables.allocs = idx;
        if active {
            let g = self.job(&key).and_then(|j| group_of(j, &group)).cloned();
            let pd = g
                .as_ref()
                .map(|g| cx.cfg.progress_window(g))
                .unwrap_or_default();
            if let Some(st) = self
                .deployments
                .get_mut(&dep_id)
                .and_then(|d| d.task_groups.get_mut(&group))
            {
                st.healthy_allocs += 1;
                if st.progress_deadline > 0 {
                    st.require_progress_by = Some(rfc3339(pd));
                }
            }
            if let Some(d) = self.deployments.get_mut(&dep_id) {
                d.modify_index = idx;
                d.modify_time = now_ns();
            }
            self.tables.deployment = idx;
            self.emit_deployment(cx.cfg, idx, "DeploymentAllocHealth", &dep_id);
        }
        self.emit_alloc(cx.cfg, idx, "AllocationUpdated", id);
        self.after_change(cx, &key, idx);
    }

    /// The healthy deadline passed before the allocation became healthy.
    fn alloc_unhealthy(&mut self, cx: &Ctx<'_>, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        if a.client_status != "running" || a.desired_status != "run" || a.deployment_id.is_empty() {
            return;
        }
        if a.deployment_status
            .as_ref()
            .is_some_and(|d| d.healthy.is_some())
        {
            return;
        }
        let key = (a.namespace.clone(), a.job_id.clone());
        let dep_id = a.deployment_id.clone();
        let group = a.task_group.clone();
        let idx = cx.clock.next();
        if let Some(a) = self.allocs.get_mut(id) {
            let canary = a.canary();
            a.deployment_status = Some(AllocDeploymentStatus {
                healthy: Some(false),
                timestamp: rfc3339(Duration::ZERO),
                canary,
                modify_index: idx,
            });
            a.modify_index = idx;
            a.modify_time = now_ns();
        }
        self.tables.allocs = idx;
        if let Some(st) = self
            .deployments
            .get_mut(&dep_id)
            .and_then(|d| d.task_groups.get_mut(&group))
        {
            st.unhealthy_allocs += 1;
        }
        self.tables.deployment = idx;
        self.emit_alloc(cx.cfg, idx, "AllocationUpdated", id);
        self.after_change(cx, &key, idx);
    }

    /// After any allocation/deployment change: advance the deployment (promotion,
    /// success, failure and revert) and continue rolling updates.
    fn after_change(&mut self, cx: &Ctx<'_>, key: &JobKey, idx: u64) {
        let Some(job) = self.job(key).cloned() else {
            return;
        };
        let version = u(&job, "Version");
        let Some(dep_id) = self
            .job_deployments(key)
            .into_iter()
            .find(|d| d.job_version == version && d.active())
            .map(|d| d.id.clone())
        else {
            return;
        };
        let Some(dep) = self.deployments.get(&dep_id).cloned() else {
            return;
        };
        if dep.task_groups.values().any(|st| st.unhealthy_allocs > 0) {
            self.fail_deployment(cx, key, &dep_id, idx, "Failed due to unhealthy allocations");
            return;
        }
        // Canaries.
        let mut needs_promotion = false;
        let mut auto_promote = true;
        let mut canaries_healthy = true;
        for (gname, st) in &dep.task_groups {
            if st.desired_canaries > 0 && !st.promoted {
                needs_promotion = true;
                auto_promote &= st.auto_promote;
                let placed = st.placed_canaries.clone().unwrap_or_default();
                let healthy = placed
                    .iter()
                    .filter(|id| self.allocs.get(*id).is_some_and(Alloc::healthy))
                    .count();
                if (healthy as i64) < st.desired_canaries {
                    canaries_healthy = false;
                }
                let _ = gname;
            }
        }
        if needs_promotion {
            if canaries_healthy && auto_promote {
                self.promote(cx, key, &dep_id, idx);
                return;
            }
            let desc = if auto_promote {
                "Deployment is running pending automatic promotion"
            } else {
                "Deployment is running but requires manual promotion"
            };
            if let Some(d) = self.deployments.get_mut(&dep_id)
                && d.status_description != desc
            {
                d.status_description = desc.into();
                d.modify_index = idx;
                self.tables.deployment = idx;
                self.emit_deployment(cx.cfg, idx, "DeploymentStatusUpdate", &dep_id);
            }
            return;
        }
        // Continue rolling updates (places replacements as allocations get healthy).
        let before: usize = self.allocs.len();
        let eval_id = self
            .job_evals(key)
            .iter()
            .filter(|e| e.deployment_id == dep_id)
            .map(|e| e.id.clone())
            .next()
            .unwrap_or_default();
        let r = self.reconcile(cx, key, idx, &eval_id, false);
        for a in r.changed {
            self.emit_alloc(cx.cfg, idx, "PlanResult", &a);
        }
        let _ = before;
        // Success?
        let Some(dep) = self.deployments.get(&dep_id).cloned() else {
            return;
        };
        let old_live = self
            .job_allocs(key)
            .iter()
            .any(|a| !a.terminal() && a.job_version != version);
        let done = dep.task_groups.values().all(|st| {
            (st.desired_canaries == 0 || st.promoted) && st.healthy_allocs >= st.desired_total
        }) && !old_live;
        if done {
            if let Some(d) = self.deployments.get_mut(&dep_id) {
                d.status = "successful".into();
                d.status_description = "Deployment completed successfully".into();
                d.modify_index = idx;
                d.modify_time = now_ns();
            }
            self.tables.deployment = idx;
            self.set_stable(key, version, idx);
            self.emit_deployment(cx.cfg, idx, "DeploymentStatusUpdate", &dep_id);
            self.emit_job(cx.cfg, idx, "DeploymentStatusUpdate", key);
        }
    }

    fn set_stable(&mut self, key: &JobKey, version: u64, idx: u64) {
        if let Some(e) = self.jobs.get_mut(key) {
            if u(&e.job, "Version") == version {
                e.job["Stable"] = json!(true);
                e.job["ModifyIndex"] = json!(idx);
            }
            for v in e.versions.iter_mut() {
                if u(v, "Version") == version {
                    v["Stable"] = json!(true);
                    v["ModifyIndex"] = json!(idx);
                }
            }
            self.tables.jobs = idx;
            self.tables.job_version = idx;
        }
    }

    /// Promotes the canaries of a deployment.
    pub(crate) fn promote(&mut self, cx: &Ctx<'_>, key: &JobKey, dep_id: &str, idx: u64) {
        if let Some(d) = self.deployments.get_mut(dep_id) {
            for st in d.task_groups.values_mut() {
                if st.desired_canaries > 0 {
                    st.promoted = true;
                }
            }
            d.status_description = "Deployment is running".into();
            d.modify_index = idx;
            d.modify_time = now_ns();
        }
        self.tables.deployment = idx;
        self.emit_deployment(cx.cfg, idx, "DeploymentPromotion", dep_id);
        self.after_change(cx, key, idx);
    }

    pub(crate) fn fail_deployment(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        dep_id: &str,
        idx: u64,
        base: &str,
    ) {
        let Some(dep) = self.deployments.get(dep_id).cloned() else {
            return;
        };
        let auto_revert = dep.task_groups.values().any(|st| st.auto_revert);
        let mut description = base.to_string();
        let mut revert_to: Option<Value> = None;
        if auto_revert {
            let current = self.job(key).cloned();
            let stable = self.jobs.get(key).and_then(|e| {
                e.versions
                    .iter()
                    .filter(|v| b(v, "Stable") && u(v, "Version") < dep.job_version)
                    .max_by_key(|v| u(v, "Version"))
                    .cloned()
            });
            match (stable, current) {
                (None, _) => {
                    description = format!("{base} - no stable job version to auto revert to")
                }
                (Some(st), Some(cur)) if !spec_changed(&st, &cur) => {
                    description = format!(
                        "{base} - not rolling back to stable job version {} as current job has same specification",
                        u(&st, "Version")
                    );
                }
                (Some(st), _) => {
                    description =
                        format!("{base} - rolling back to job version {}", u(&st, "Version"));
                    revert_to = Some(st);
                }
            }
        }
        if let Some(d) = self.deployments.get_mut(dep_id) {
            d.status = "failed".into();
            d.status_description = description;
            d.modify_index = idx;
            d.modify_time = now_ns();
        }
        self.tables.deployment = idx;
        self.emit_deployment(cx.cfg, idx, "DeploymentStatusUpdate", dep_id);
        if let Some(mut job) = revert_to {
            job["Stop"] = json!(false);
            let _ = self.register(cx, job, None, false, "rollback", true);
        }
    }

    /// The Consul registrations of a starting allocation.
    fn service_instances(
        &self,
        cfg: &NomadSimConfig,
        a: &Alloc,
        job: &Value,
        g: &Value,
        failing: bool,
    ) -> Vec<ServiceInstance> {
        let key = (a.namespace.clone(), a.job_id.clone());
        let backend = self.backends.get(&key).copied();
        let status = if failing { "critical" } else { "passing" };
        let port_of = |label: &str| -> u16 {
            if let Ok(n) = label.parse::<u16>() {
                return n;
            }
            a.ports
                .iter()
                .find(|p| p.label == label)
                .map(|p| p.value)
                .unwrap_or(0)
        };
        let to_of = |label: &str| -> u16 {
            if let Ok(n) = label.parse::<u16>() {
                return n;
            }
            a.ports
                .iter()
                .find(|p| p.label == label)
                .map(|p| if p.to > 0 { p.to as u16 } else { p.value })
                .unwrap_or(0)
        };
        let mut out = Vec::new();
        let mut push = |sv: &Value, owner: &str| {
            if s(sv, "Provider") != "consul" {
                return;
            }
            let name = s(sv, "Name").to_string();
            let label = s(sv, "PortLabel").to_string();
            let id = format!("_nomad-task-{}-{}-{}-{}", a.id, owner, name, label);
            let (address, port) = match backend {
                Some(sa) => (sa.ip().to_string(), sa.port()),
                None => (cfg.service_address.clone(), port_of(&label)),
            };
            let mut meta: BTreeMap<String, String> = sv["Meta"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            meta.insert("external-source".into(), "nomad".into());
            let tags: Vec<String> = arr(sv, "Tags")
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect();
            let checks: Vec<CheckInstance> = arr(sv, "Checks")
                .iter()
                .map(|c| CheckInstance {
                    check_id: format!(
                        "_nomad-check-{}",
                        short_hash(&format!("{id}/{}", s(c, "Name")))
                    ),
                    name: s(c, "Name").into(),
                    status: status.into(),
                    kind: s(c, "Type").into(),
                    output: if failing {
                        "connection refused".into()
                    } else {
                        "HTTP GET: 200 OK".into()
                    },
                })
                .collect();
            out.push(ServiceInstance {
                id: id.clone(),
                name: name.clone(),
                kind: String::new(),
                tags,
                meta: meta.clone(),
                address: address.clone(),
                port,
                proxy: None,
                checks,
            });
            let sidecar = &sv["Connect"]["SidecarService"];
            if sidecar.is_object() {
                let proxy_label = format!("connect-proxy-{name}");
                let sidecar_id = format!("{id}-sidecar-proxy");
                let upstreams = arr(&sidecar["Proxy"], "Upstreams")
                    .iter()
                    .map(|up| Upstream {
                        destination_name: s(up, "DestinationName").into(),
                        local_bind_port: i(up, "LocalBindPort").clamp(0, 65535) as u16,
                    })
                    .collect();
                let local_port = {
                    let lsp = i(&sidecar["Proxy"], "LocalServicePort");
                    if lsp > 0 { lsp as u16 } else { to_of(&label) }
                };
                let sidecar_tags: Vec<String> = match sidecar["Tags"].as_array() {
                    Some(t) => t
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    None => arr(sv, "Tags")
                        .iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect(),
                };
                out.push(ServiceInstance {
                    id: sidecar_id.clone(),
                    name: format!("{name}-sidecar-proxy"),
                    kind: "connect-proxy".into(),
                    tags: sidecar_tags,
                    meta: meta.clone(),
                    address: cfg.service_address.clone(),
                    port: port_of(&proxy_label),
                    proxy: Some(ProxyInstance {
                        destination_service_name: name.clone(),
                        destination_service_id: id.clone(),
                        local_service_address: "127.0.0.1".into(),
                        local_service_port: local_port,
                        upstreams,
                    }),
                    checks: vec![
                        CheckInstance {
                            check_id: format!("service:{sidecar_id}:1"),
                            name: "Connect Sidecar Listening".into(),
                            status: status.into(),
                            kind: "tcp".into(),
                            output: String::new(),
                        },
                        CheckInstance {
                            check_id: format!("service:{sidecar_id}:2"),
                            name: "Connect Sidecar Aliasing".into(),
                            status: status.into(),
                            kind: "alias".into(),
                            output: String::new(),
                        },
                    ],
                });
            }
        };
        let gname = format!("group-{}", s(g, "Name"));
        for sv in arr(g, "Services") {
            push(sv, &gname);
        }
        for t in arr(g, "Tasks") {
            for sv in arr(t, "Services") {
                push(sv, s(t, "Name"));
            }
        }
        let _ = job;
        out
    }

    /// Deregisters a job; returns the evaluation (empty for an unknown job without
    /// purge).
    pub(crate) fn deregister(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        purge: bool,
    ) -> RegisterOutcome {
        let Some(existing) = self.job(key).cloned() else {
            if !purge {
                return RegisterOutcome {
                    index: self.tables.jobs,
                    ..RegisterOutcome::default()
                };
            }
            let idx = cx.clock.next();
            let eval_id = self.create_eval(cx, key, idx, "job-deregister", idx);
            if let Some(e) = self.evals.get_mut(&eval_id) {
                e.status = "complete".into();
            }
            return RegisterOutcome {
                eval_id,
                eval_create_index: idx,
                job_modify_index: idx,
                index: idx,
            };
        };
        let periodic = existing["Periodic"].is_object() || existing["ParameterizedJob"].is_object();
        let idx = cx.clock.next();
        if purge {
            self.jobs.remove(key);
            self.tables.jobs = idx;
            self.tables.job_summary = idx;
            self.tables.job_version = idx;
            self.emit(
                cx.cfg,
                idx,
                "Job",
                "JobDeregistered",
                &key.1,
                &key.0,
                Vec::new(),
                json!({ "Job": existing }),
            );
        } else {
            let mut job = existing.clone();
            job["Stop"] = json!(true);
            job["Version"] = json!(u(&existing, "Version") + 1);
            job["ModifyIndex"] = json!(idx);
            job["JobModifyIndex"] = json!(idx);
            job["SubmitTime"] = json!(now_ns());
            job["Stable"] = json!(false);
            let tracked = cx.cfg.job_tracked_versions.max(1);
            if let Some(e) = self.jobs.get_mut(key) {
                e.job = job.clone();
                e.versions.insert(0, job);
                e.versions.truncate(tracked);
            }
            self.tables.jobs = idx;
            self.tables.job_version = idx;
            self.emit_job(cx.cfg, idx, "JobDeregistered", key);
        }
        if periodic {
            self.refresh_job_status(key, idx);
            return RegisterOutcome {
                eval_id: String::new(),
                eval_create_index: 0,
                job_modify_index: idx,
                index: idx,
            };
        }
        let eval_id = self.create_eval(cx, key, idx, "job-deregister", idx);
        if let Some(e) = self.evals.get_mut(&eval_id) {
            e.job_type = s(&existing, "Type").into();
            e.priority = i(&existing, "Priority");
        }
        self.process_eval(cx, key, &eval_id, false);
        RegisterOutcome {
            eval_id,
            eval_create_index: idx,
            job_modify_index: idx,
            index: idx,
        }
    }

    /// What the scheduler would do with `job` (plan annotations), without changing
    /// anything.
    pub(crate) fn plan_updates(
        &self,
        cfg: &NomadSimConfig,
        key: &JobKey,
        job: &Value,
        spec_changed_: bool,
    ) -> (BTreeMap<String, DesiredUpdates>, PlacementFailures) {
        let mut out = BTreeMap::new();
        let mut failed = BTreeMap::new();
        let stopped = b(job, "Stop");
        let current_version = self.job(key).map(|j| u(j, "Version"));
        for g in arr(job, "TaskGroups") {
            let gname = s(g, "Name").to_string();
            let count = i(g, "Count").max(0) as u64;
            let live: Vec<&Alloc> = self
                .job_allocs(key)
                .into_iter()
                .filter(|a| !a.terminal() && a.task_group == gname)
                .collect();
            let mut du = DesiredUpdates::default();
            if stopped {
                du.stop = live.len() as u64;
                out.insert(gname, du);
                continue;
            }
            let mut ignore = 0u64;
            let mut inplace = 0u64;
            let mut destructive = 0u64;
            for a in &live {
                let same = !spec_changed_ && Some(a.job_version) == current_version;
                if same {
                    ignore += 1;
                    continue;
                }
                match self.alloc_job(a) {
                    Some(aj) if !tasks_updated(&aj, job, &gname) => inplace += 1,
                    _ => destructive += 1,
                }
            }
            let total = live.len() as u64;
            if count > total {
                du.place = count - total;
            } else if total > count {
                let mut excess = total - count;
                let from_destructive = excess.min(destructive);
                destructive -= from_destructive;
                excess -= from_destructive;
                let from_inplace = excess.min(inplace);
                inplace -= from_inplace;
                excess -= from_inplace;
                ignore = ignore.saturating_sub(excess);
                du.stop = total - count;
            }
            du.in_place_update = inplace;
            if destructive > 0 {
                match update_of(g) {
                    Some(up) if i(up, "Canary") > 0 => {
                        du.canary = i(up, "Canary") as u64;
                        ignore += destructive;
                    }
                    Some(up) => {
                        let limit = i(up, "MaxParallel").max(0) as u64;
                        du.destructive_update = destructive.min(limit);
                        ignore += destructive - du.destructive_update;
                    }
                    None => du.destructive_update = destructive,
                }
            }
            du.ignore = ignore;
            if let Some(reason) = self.placement_blocked(cfg, job, g)
                && du.place + du.destructive_update + du.canary > 0
            {
                failed.insert(gname.clone(), (du.place.max(1), reason));
            }
            out.insert(gname, du);
        }
        (out, failed)
    }
}

/// Groups that could not be placed: `(allocations, reason)`.
pub(crate) type PlacementFailures = BTreeMap<String, (u64, &'static str)>;

/// What one reconciliation did.
#[derive(Debug, Default)]
struct ReconcileOutcome {
    changed: Vec<String>,
    deployment_id: Option<String>,
    failed: BTreeMap<String, (u64, &'static str)>,
    queued: BTreeMap<String, u64>,
}

fn short_hash(s: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// `FailedTGAllocs` (`AllocMetric` per group) for placement failures.
pub(crate) fn failed_tg_allocs(
    cfg: &NomadSimConfig,
    failed: &BTreeMap<String, (u64, &'static str)>,
) -> Value {
    let mut m = serde_json::Map::new();
    for (g, (n, reason)) in failed {
        let (filtered, available) = if *reason == "datacenter" {
            (Value::Null, json!({}))
        } else {
            (json!({ *reason: 1 }), json!({ cfg.datacenter.clone(): 1 }))
        };
        m.insert(
            g.clone(),
            json!({
                "AllocationTime": 20000,
                "ClassExhausted": null,
                "ClassFiltered": null,
                "CoalescedFailures": n.saturating_sub(1),
                "ConstraintFiltered": filtered,
                "DimensionExhausted": null,
                "NodesAvailable": available,
                "NodesEvaluated": if *reason == "datacenter" { 0 } else { 1 },
                "NodesExhausted": 0,
                "NodesFiltered": if *reason == "datacenter" { 0 } else { 1 },
                "NodesInPool": 1,
                "QuotaExhausted": null,
                "ResourcesExhausted": null,
                "ScoreMetaData": null,
                "Scores": null,
            }),
        );
    }
    Value::Object(m)
}
