//! Deployments: advancing them after every change (rolling updates, canaries and
//! promotion, success, failure, auto revert), stable versions.

use super::*;

impl Inner {
    /// After any allocation/deployment change: advance the deployment (promotion,
    /// success, failure and revert) and continue rolling updates.
    pub(super) fn after_change(&mut self, cx: &Ctx<'_>, key: &JobKey, idx: u64) {
        let Some(version) = self.job(key).map(|j| u(j, "Version")) else {
            return;
        };
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

    pub(super) fn set_stable(&mut self, key: &JobKey, version: u64, idx: u64) {
        if let Some(e) = self.jobs.get_mut(key) {
            e.set_stable(version, idx);
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
        let mut revert_to: Option<Arc<Value>> = None;
        if auto_revert {
            let current = self.job_arc(key);
            let stable = self.jobs.get(key).and_then(|e| {
                e.versions()
                    .map(|(v, _)| v)
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
        if let Some(job) = revert_to {
            let mut job = Value::clone(&job);
            job["Stop"] = json!(false);
            let _ = self.register(cx, job, None, false, "rollback", true);
        }
    }
}
