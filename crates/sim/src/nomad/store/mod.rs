//! The Nomad state store and the scheduling model: registrations, evaluations,
//! placements, allocation lifecycles, deployments (rolling updates, canaries, auto
//! revert) and the event buffer. Everything here runs under the state lock; every
//! write takes its index from the product's clock while the lock is held.
//!
//! This file holds the state itself ([`Inner`]), the context the core decides with,
//! and the small accessors. `impl Inner` continues in the submodules, one area each:
//! [`state`] (stored records and their serialised forms), [`registration`]
//! (register, deregister, plan, evaluations), [`scheduler`] (the reconciler and
//! placements), [`allocs`] (allocation lifecycle), [`deployments`] (rolling updates,
//! canaries, auto revert), [`services`] (Consul registrations of allocations),
//! [`events`] (the event buffer) and [`timers`].

use super::NomadSimConfig;
use super::canon::spec_changed;
use super::catalog::{CatalogOp, CheckInstance, ProxyInstance, ServiceInstance, Upstream};
use super::diff::{DesiredUpdates, tasks_updated};
use super::json::jv as json;
use super::json::{arr, b, i, s, u};
use super::model::{
    Alloc, AllocDeploymentStatus, AllocPort, Deployment, DeploymentState, Eval, Namespace,
};
use crate::faults::FaultController;
use crate::index::IndexClock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod allocs;
mod deployments;
mod events;
mod registration;
mod scheduler;
mod services;
mod state;
mod timers;

pub(crate) use events::{Event, Frame, Payload};
use scheduler::short_hash;
pub(crate) use scheduler::{PlacementFailures, failed_tg_allocs};
use state::{Children, GroupSummaries};
pub(crate) use state::{
    GroupSummary, JobEntry, JobKey, JobSnapshot, JobSummary, Tables, version_json,
};
pub(crate) use timers::Timer;

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
    /// Timers fired since start (to check that an idle simulator stays idle).
    pub(crate) timers_fired: u64,
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
        self.jobs.get(key).map(|e| e.job().as_ref())
    }

    /// The current job, shared.
    pub(crate) fn job_arc(&self, key: &JobKey) -> Option<Arc<Value>> {
        self.jobs.get(key).map(|e| e.job().clone())
    }

    /// A tracked version with its `ModifyIndex` (which the value may not carry).
    fn version_of(&self, key: &JobKey, version: u64) -> Option<(&Arc<Value>, u64)> {
        self.jobs
            .get(key)?
            .versions()
            .find(|(v, _)| u(v, "Version") == version)
    }

    /// The job as of an allocation's version (or the current job); its
    /// `ModifyIndex` may be the current job's (see [`Inner::alloc_job_json`]).
    pub(crate) fn alloc_job(&self, a: &Alloc) -> Option<Arc<Value>> {
        let key = (a.namespace.clone(), a.job_id.clone());
        self.version_of(&key, a.job_version)
            .map(|(v, _)| v.clone())
            .or_else(|| self.job_arc(&key))
    }

    /// Drops a job's cached `JobSummary`: its allocations or evaluations changed.
    pub(crate) fn invalidate_summary(&mut self, key: &JobKey) {
        if let Some(e) = self.jobs.get_mut(key) {
            e.summary = std::sync::OnceLock::new();
        }
    }

    /// An allocation, for changing it (its job's cached summary is dropped).
    fn alloc_mut(&mut self, id: &str) -> Option<&mut Alloc> {
        let key = self
            .allocs
            .get(id)
            .map(|a| (a.namespace.clone(), a.job_id.clone()))?;
        self.invalidate_summary(&key);
        self.allocs.get_mut(id)
    }

    /// An evaluation, for changing it (its job's cached summary is dropped).
    fn eval_mut(&mut self, id: &str) -> Option<&mut Eval> {
        let key = self
            .evals
            .get(id)
            .map(|e| (e.namespace.clone(), e.job_id.clone()))?;
        self.invalidate_summary(&key);
        self.evals.get_mut(id)
    }

    /// The serialised `JobSummary` of a job (cached until something it depends on
    /// changes).
    pub(crate) fn entry_summary_json<'a>(&self, key: &JobKey, entry: &'a JobEntry) -> &'a [u8] {
        let fresh = || {
            serde_json::to_vec(&self.job_summary(key))
                .unwrap_or_default()
                .into_boxed_slice()
        };
        let cached = entry.summary.get_or_init(fresh);
        debug_assert_eq!(
            String::from_utf8_lossy(cached),
            String::from_utf8_lossy(&fresh()),
            "stale cached summary of {key:?}"
        );
        cached
    }

    /// The job as of an allocation's version (or the current job), as the API shows
    /// it.
    pub(crate) fn alloc_job_json(&self, a: &Alloc) -> Option<Value> {
        let key = (a.namespace.clone(), a.job_id.clone());
        match self.version_of(&key, a.job_version) {
            Some((v, mi)) => Some(version_json(v, mi)),
            None => self.job(&key).cloned(),
        }
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
        self.job_summary(key)
            .and_then(|sm| serde_json::to_value(&sm).ok())
    }

    /// `JobSummary` of a job, ready to serialise.
    pub(crate) fn job_summary<'a>(&self, key: &'a JobKey) -> Option<JobSummary<'a>> {
        let entry = self.jobs.get(key)?;
        let parts = entry.stub_parts();
        let alloc_ids = self.allocs_by_job.get(key);
        let allocs = || {
            alloc_ids
                .into_iter()
                .flatten()
                .filter_map(|id| self.allocs.get(id))
        };
        let blocked = parts.queues
            && self
                .evals_by_job
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|id| self.evals.get(id))
                .any(|e| e.status == "blocked");
        let counts = parts
            .groups
            .iter()
            .map(|(name, count)| {
                let mut sum = GroupSummary::default();
                for a in allocs().filter(|a| a.task_group == *name) {
                    match a.client_status.as_str() {
                        "pending" if a.desired_status == "run" => sum.starting += 1,
                        "running" => sum.running += 1,
                        "failed" => sum.failed += 1,
                        "complete" => sum.complete += 1,
                        "lost" => sum.lost += 1,
                        _ => {}
                    }
                }
                if blocked {
                    sum.queued = (count - sum.starting - sum.running).max(0);
                }
                sum
            })
            .collect();
        Some(JobSummary {
            children: Children::default(),
            create_index: entry.summary_create_index,
            // Jobs are keyed by their `Namespace` and `ID`.
            job_id: &key.1,
            modify_index: entry.summary_modify_index,
            namespace: &key.0,
            summary: GroupSummaries { parts, counts },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::state::JobBytes;
    use super::*;
    use crate::nomad::canon::{CanonOptions, canonicalize};
    use serde_json::json as sj;

    fn canonical(id: &str) -> Value {
        let api = sj!({
            "ID": id, "Type": "service", "Datacenters": ["dc1"],
            "Meta": {"steward.spec": format!("default/{id}")},
            "TaskGroups": [{
                "Name": "web", "Count": 2,
                "Update": {"MaxParallel": 1, "MinHealthyTime": 1_000_000_000u64},
                "Networks": [{"Mode": "bridge", "DynamicPorts": [{"Label": "http", "To": 8080}]}],
                "Services": [{"Name": id, "PortLabel": "http",
                    "Connect": {"SidecarService": {}},
                    "Checks": [{"Name": "alive", "Type": "http", "Path": "/", "Interval": 10_000_000_000u64, "Timeout": 1_000_000_000u64}]}],
                "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": "x:1"}}]
            }]
        });
        let opts = CanonOptions {
            namespace: "default".into(),
            region: "global".into(),
            vault_identity: true,
            consul_service_identity: true,
            consul_task_identity: true,
            api_form: false,
        };
        canonicalize(&api, &opts).unwrap()
    }

    /// Registers a job in a fresh state.
    fn registered() -> (Inner, NomadSimConfig, IndexClock, FaultController) {
        let cfg = NomadSimConfig::default();
        let mut inner = Inner::new(&cfg);
        let clock = IndexClock::new(1);
        let faults = FaultController::new(1);
        let cx = Ctx {
            clock: &clock,
            cfg: &cfg,
            faults: &faults,
        };
        inner
            .register(&cx, canonical("web"), None, false, "job-register", false)
            .unwrap();
        (inner, cfg, clock, faults)
    }

    /// Events used to be JSON objects built at once; their deferred serialisation
    /// must give the same bytes.
    #[test]
    fn events_serialise_like_the_event_objects() {
        let (inner, cfg, ..) = registered();
        let mut kinds = BTreeSet::new();
        for frame in &inner.events {
            for e in &frame.events {
                let payload = match &e.payload {
                    Payload::Job(job) => {
                        let mut raw = Vec::new();
                        job.write(&mut raw);
                        sj!({"Job": serde_json::from_slice::<Value>(&raw).unwrap()})
                    }
                    Payload::Allocation(a) => {
                        sj!({"Allocation": a.stub(&cfg.node_id, &cfg.node_name)})
                    }
                    Payload::Deployment(d) => sj!({"Deployment": d}),
                    Payload::Evaluation(ev) => sj!({"Evaluation": ev}),
                };
                let want = sj!({
                    "FilterKeys": if e.filter_keys.is_empty() { Value::Null } else { sj!(e.filter_keys) },
                    "Index": frame.index,
                    "Key": e.key,
                    "Namespace": e.namespace,
                    "Payload": payload,
                    "Topic": e.topic,
                    "Type": e.kind,
                });
                let mut got = Vec::new();
                e.write_json(frame.index, &cfg, &mut got);
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    serde_json::to_string(&want).unwrap()
                );
                kinds.insert(e.topic);
            }
        }
        assert_eq!(
            kinds,
            ["Allocation", "Deployment", "Evaluation", "Job"].into()
        );
    }

    /// A job event carries the job as it was when the event was made.
    #[test]
    fn job_events_keep_the_job_as_it_was() {
        let (inner, ..) = registered();
        let key = ("default".to_string(), "web".to_string());
        let jobs: Vec<Value> = inner
            .events
            .iter()
            .flat_map(|f| f.events.iter())
            .filter_map(|e| match &e.payload {
                Payload::Job(job) => {
                    let mut raw = Vec::new();
                    job.write(&mut raw);
                    Some(serde_json::from_slice(&raw).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(jobs[0]["Status"], "pending");
        assert_eq!(jobs.last().unwrap()["Status"], "running");
        assert_eq!(jobs.last().unwrap(), inner.job(&key).unwrap());
    }

    #[test]
    fn a_serialised_job_takes_in_place_changes() {
        let mut job = canonical("web");
        let bytes = JobBytes::of(&job);
        assert_eq!(bytes.spans.len(), 3);
        assert_eq!(bytes.render(&job), serde_json::to_vec(&job).unwrap());
        job["Status"] = sj!("running");
        job["ModifyIndex"] = sj!(123456);
        job["Stable"] = sj!(true);
        assert_eq!(bytes.render(&job), serde_json::to_vec(&job).unwrap());
        // Without one of the fields every form is serialised afresh.
        job.as_object_mut().unwrap().remove("Stable");
        let bytes = JobBytes::of(&job);
        assert!(bytes.spans.is_empty());
        job["Status"] = sj!("dead");
        assert_eq!(bytes.render(&job), serde_json::to_vec(&job).unwrap());
    }

    #[test]
    fn stub_parts_give_the_list_stub() {
        let (inner, ..) = registered();
        let key = ("default".to_string(), "web".to_string());
        let entry = &inner.jobs[&key];
        let summary = inner.summary(&key).unwrap();
        for meta in [false, true] {
            let mut got = Vec::new();
            entry
                .stub_parts()
                .write(inner.entry_summary_json(&key, entry), meta, &mut got);
            let want = crate::nomad::jobs::stub_value(entry.job(), summary.clone(), meta);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
        }
        assert_eq!(
            summary,
            sj!({
                "Children": {"Dead": 0, "Pending": 0, "Running": 0},
                "CreateIndex": entry.summary_create_index,
                "JobID": "web",
                "ModifyIndex": entry.summary_modify_index,
                "Namespace": "default",
                "Summary": {"web": {"Complete": 0, "Failed": 0, "Lost": 0, "Queued": 0,
                                    "Running": 0, "Starting": 2, "Unknown": 0}},
            })
        );
    }

    /// The newest version is stored once with the job, yet persists as before (one
    /// object per version, with its own `ModifyIndex`), and loads back the same.
    #[test]
    fn versions_persist_one_by_one_and_load_back() {
        let job = |v: u64, mi: u64| {
            let mut j = canonical("web");
            j["Version"] = sj!(v);
            j["ModifyIndex"] = sj!(mi);
            Arc::new(j)
        };
        let mut e = JobEntry::new(job(0, 10), 10);
        e.set_status("running", 11);
        e.set_stable(0, 12);
        e.push_version(job(1, 20), 6);
        e.set_status("running", 21);
        let saved = serde_json::to_value(&e).unwrap();
        let versions = saved["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(saved["job"]["ModifyIndex"], 21);
        assert_eq!(versions[0]["ModifyIndex"], 20);
        assert_eq!(versions[0]["Status"], "running");
        assert_eq!(versions[1]["ModifyIndex"], 12);
        assert_eq!(versions[1]["Stable"], true);
        let back: JobEntry = serde_json::from_value(saved.clone()).unwrap();
        assert_eq!(back.head, Some(20));
        assert_eq!(serde_json::to_value(&back).unwrap(), saved);
        // A newest version that differs from the job in more than its index is kept
        // as it is.
        let mut odd = saved.clone();
        odd["versions"][0]["Meta"] = sj!({"odd": "1"});
        let back: JobEntry = serde_json::from_value(odd.clone()).unwrap();
        assert_eq!(back.head, None);
        assert_eq!(serde_json::to_value(&back).unwrap(), odd);
    }
}
