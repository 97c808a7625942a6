//! Registration, deregistration and planning: job versions, evaluations and their
//! processing, job garbage collection, status and summaries.

use super::*;

impl Inner {
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
        let existing = self.job_arc(&key);
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
            let (old_mi, old_jmi) = existing
                .as_ref()
                .map(|o| (u(o, "ModifyIndex"), u(o, "JobModifyIndex")))
                .unwrap_or_default();
            // Not held while the job's status may change (no copy on write).
            drop(existing);
            if periodic {
                return Ok(RegisterOutcome {
                    eval_id: String::new(),
                    eval_create_index: 0,
                    job_modify_index: old_mi,
                    index: old_mi,
                });
            }
            let idx = cx.clock.next();
            let eval_id = self.create_eval(cx, &key, idx, triggered_by, old_jmi);
            self.process_eval(cx, &key, &eval_id, false);
            return Ok(RegisterOutcome {
                eval_id,
                eval_create_index: idx,
                job_modify_index: old_mi,
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
        let job = Arc::new(job);
        match self.jobs.get_mut(&key) {
            Some(entry) => {
                entry.push_version(job, tracked);
                if from_revert {
                    entry.revert_versions.insert(version);
                }
            }
            None => {
                let mut entry = JobEntry::new(job, idx);
                if from_revert {
                    entry.revert_versions.insert(version);
                }
                self.jobs.insert(key.clone(), entry);
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

    pub(super) fn create_eval(
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
        self.invalidate_summary(key);
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
    pub(super) fn process_eval(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        eval_id: &str,
        new_version: bool,
    ) {
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
            if let Some(e) = self.eval_mut(&id) {
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
            self.invalidate_summary(key);
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
        if let Some(e) = self.eval_mut(eval_id) {
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
    pub(super) fn gc_job(&mut self, key: &JobKey) {
        self.invalidate_summary(key);
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
    pub(super) fn refresh_job_status(&mut self, key: &JobKey, idx: u64) {
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
            && entry.job()["Status"] != status
        {
            entry.set_status(status, idx);
            self.tables.jobs = idx;
        }
    }

    pub(super) fn touch_summary(&mut self, key: &JobKey, idx: u64) {
        self.invalidate_summary(key);
        if let Some(e) = self.jobs.get_mut(key) {
            e.summary_modify_index = idx;
            self.tables.job_summary = idx;
        }
    }
}

impl Inner {
    /// Deregisters a job; returns the evaluation (empty for an unknown job without
    /// purge).
    pub(crate) fn deregister(
        &mut self,
        cx: &Ctx<'_>,
        key: &JobKey,
        purge: bool,
    ) -> RegisterOutcome {
        let Some(existing) = self.job_arc(key) else {
            if !purge {
                return RegisterOutcome {
                    index: self.tables.jobs,
                    ..RegisterOutcome::default()
                };
            }
            let idx = cx.clock.next();
            let eval_id = self.create_eval(cx, key, idx, "job-deregister", idx);
            if let Some(e) = self.eval_mut(&eval_id) {
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
            let payload = self.jobs.remove(key).map(|e| Payload::job(&e));
            self.tables.jobs = idx;
            self.tables.job_summary = idx;
            self.tables.job_version = idx;
            if let Some(payload) = payload {
                self.emit(
                    cx.cfg,
                    idx,
                    "Job",
                    "JobDeregistered",
                    &key.1,
                    &key.0,
                    Vec::new(),
                    payload,
                );
            }
        } else {
            let mut job = Value::clone(&existing);
            job["Stop"] = json!(true);
            job["Version"] = json!(u(&existing, "Version") + 1);
            job["ModifyIndex"] = json!(idx);
            job["JobModifyIndex"] = json!(idx);
            job["SubmitTime"] = json!(now_ns());
            job["Stable"] = json!(false);
            let tracked = cx.cfg.job_tracked_versions.max(1);
            if let Some(e) = self.jobs.get_mut(key) {
                e.push_version(Arc::new(job), tracked);
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
        if let Some(e) = self.eval_mut(&eval_id) {
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
