//! The reconciler: what a group needs against what it has, placements (ports,
//! failures), stopping allocations, and the placement failures evaluations report.

use super::*;

impl Inner {
    pub(super) fn placement_blocked(
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

    pub(super) fn reconcile(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        idx: u64,
        eval_id: &str,
        new_version: bool,
    ) -> ReconcileOutcome {
        let mut out = ReconcileOutcome::default();
        let Some(job) = self.job_arc(key) else {
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
                let old_job = self.version_of(key, a.job_version).map(|(v, _)| v.clone());
                let destroy = match &old_job {
                    None => true,
                    Some(oj) => tasks_updated(oj, &job, &gname),
                };
                if destroy {
                    destructive.push(id);
                } else {
                    // In-place update.
                    let running = a.client_status == "running";
                    if let Some(a) = self.alloc_mut(&id) {
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
                    if let Some(a) = self.alloc_mut(&id) {
                        a.next_allocation = new.clone();
                    }
                    if let Some(a) = self.alloc_mut(&new) {
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

    pub(super) fn live_alloc_ids(&self, key: &JobKey, group: Option<&str>) -> Vec<String> {
        self.job_allocs(key)
            .into_iter()
            .filter(|a| !a.terminal() && group.is_none_or(|g| a.task_group == g))
            .map(|a| a.id.clone())
            .collect()
    }

    pub(super) fn cancel_deployments(
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
    pub(super) fn place(
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
            if let Some(a) = self.alloc_mut(&fid) {
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
        self.invalidate_summary(key);
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

    pub(super) fn next_dynamic_port(&mut self, cfg: &NomadSimConfig) -> u16 {
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

    pub(super) fn stop_alloc(&mut self, id: &str, idx: u64, why: &str) {
        let Some(a) = self.alloc_mut(id) else {
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
}

/// Groups that could not be placed: `(allocations, reason)`.
pub(crate) type PlacementFailures = BTreeMap<String, (u64, &'static str)>;

/// What one reconciliation did.
#[derive(Debug, Default)]
pub(super) struct ReconcileOutcome {
    pub(super) changed: Vec<String>,
    pub(super) deployment_id: Option<String>,
    pub(super) failed: BTreeMap<String, (u64, &'static str)>,
    pub(super) queued: BTreeMap<String, u64>,
}

pub(super) fn short_hash(s: &str) -> String {
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
