//! Scheduler timers: the `Timer` kinds, scheduling and re-arming them (after a
//! restore), and dispatching the ones that are due.

use super::*;

/// Something the scheduler must do at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    AllocStart(String),
    AllocHealthy(String),
    AllocUnhealthy(String),
    BatchComplete(String),
    ProgressDeadline(String),
}

impl Inner {
    pub(super) fn schedule(&mut self, at: Instant, timer: Timer) {
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
        self.timers_fired += out.len() as u64;
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
}

impl Inner {
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
                if let Some(a) = self.alloc_mut(&id) {
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
                    // A deadline that already passed without the deployment being
                    // late cannot make it late any more (its groups have all their
                    // healthy allocations, which only grow): check again after the
                    // default window instead of re-arming in a tight loop.
                    let wait = match next {
                        Some(t) if t > now => {
                            let nanos = t.as_nanosecond() - now.as_nanosecond();
                            Duration::from_nanos(nanos.max(1_000_000) as u64)
                        }
                        // (At least a second, should the time factor be 0.)
                        _ => cx
                            .cfg
                            .scaled(Duration::from_secs(600))
                            .max(Duration::from_secs(1)),
                    };
                    self.schedule(Instant::now() + wait, Timer::ProgressDeadline(id));
                }
            }
        }
    }
}
