//! Allocation lifecycle: an allocation starts, becomes healthy or unhealthy.

use super::*;

impl Inner {
    pub(super) fn alloc_started(&mut self, cx: &Ctx<'_>, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        if a.client_status != "pending" || a.desired_status != "run" {
            return;
        }
        let key = (a.namespace.clone(), a.job_id.clone());
        let version = a.job_version;
        let Some(job) = self.alloc_job(a) else { return };
        let Some(g) = group_of(&job, &a.task_group) else {
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
        let registrations = self.service_instances(cx.cfg, a, &job, g, failing);
        // What is needed of the group, so the shared job can be let go before it is
        // changed below (no copy on write).
        let health = cx.cfg.health_time(g);
        let healthy_deadline = cx.cfg.healthy_deadline(g);
        drop(job);
        let mut schedule_health = false;
        let mut batch_done = false;
        if let Some(a) = self.alloc_mut(id) {
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
            let (at, timer) = match healthy_deadline {
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

    pub(super) fn alloc_healthy(&mut self, cx: &Ctx<'_>, id: &str) {
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
        if let Some(a) = self.alloc_mut(id) {
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
            let pd = self
                .job(&key)
                .and_then(|j| group_of(j, &group))
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
    pub(super) fn alloc_unhealthy(&mut self, cx: &Ctx<'_>, id: &str) {
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
        if let Some(a) = self.alloc_mut(id) {
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
}
