//! Pure reading of a job's deployments: where the rollout stands, and whether Nomad
//! reverted the version the spec asks for (then Steward must not register it again, or
//! it would fight the auto-revert forever).

use std::sync::Arc;

use steward_hashi::nomad::{Deployment, Job};

use crate::status::Rollout;

/// Whether a deployment status is still moving.
fn active(status: &str) -> bool {
    matches!(
        status,
        "running" | "pending" | "paused" | "blocked" | "unblocking" | "initializing"
    )
}

fn healthy(d: &Deployment) -> (u64, u64) {
    d.task_groups.values().fold((0, 0), |(h, t), g| {
        (h + g.healthy_allocs, t + g.desired_total)
    })
}

/// What the rollout needs to know about the live job: from its body, or only from the
/// job list (which has no version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    /// `JobModifyIndex` (deployments carry it as `JobSpecModifyIndex`).
    pub job_modify_index: u64,
    /// Version, when the body is known.
    pub version: Option<u64>,
    /// The version is marked stable (a deployment of it succeeded).
    pub stable: bool,
    /// Stopped.
    pub stop: bool,
}

impl JobState {
    /// From a job body.
    #[must_use]
    pub fn of(job: &Job) -> Self {
        Self {
            job_modify_index: job.view.job_modify_index,
            version: Some(job.view.version),
            stable: job.view.stable,
            stop: job.view.stop,
        }
    }
}

/// Where the rollout of `job` stands, from its deployments (newest first).
/// `batch`: periodic/batch jobs have no deployments; registered is available.
/// `available_before`: what the last status said, used when no deployment of the live
/// version is known (Nomad garbage-collects old deployments).
#[must_use]
pub fn rollout(
    job: Option<JobState>,
    deployments: &[Arc<Deployment>],
    batch: bool,
    available_before: bool,
) -> Rollout {
    let Some(job) = job.filter(|j| !j.stop) else {
        return Rollout::NoJob;
    };
    if batch {
        return Rollout::Batch;
    }
    let current = deployments
        .iter()
        .filter(|d| {
            (job.job_modify_index != 0 && d.job_spec_modify_index == job.job_modify_index)
                || Some(d.job_version) == job.version
        })
        .max_by_key(|d| d.create_index);
    let Some(d) = current else {
        return if job.stable || (available_before && job.version.is_none()) {
            Rollout::Available("the live job version is stable".to_owned())
        } else {
            Rollout::Pending
        };
    };
    let (ok, total) = healthy(d);
    match d.status.as_str() {
        "successful" => Rollout::Available(format!(
            "deployment {} of job version {} successful: {ok}/{total} healthy",
            short(&d.id),
            d.job_version
        )),
        "failed" => Rollout::Failed(format!(
            "deployment {} of job version {} failed: {}",
            short(&d.id),
            d.job_version,
            d.status_description
        )),
        s if active(s) => Rollout::Running(format!(
            "deployment {} of job version {} {s}: {ok}/{total} healthy",
            short(&d.id),
            d.job_version
        )),
        other => Rollout::Running(format!(
            "deployment {} of job version {} is {other}",
            short(&d.id),
            d.job_version
        )),
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The outcome of [`reverted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertCheck {
    /// No failed deployment of the desired version: applying it is fine.
    NotReverted,
    /// The newest deployment of a version carrying `desired_hash` failed: hold (message
    /// for the status).
    Reverted(String),
    /// The hash of this job version is not known yet: read the job versions first.
    NeedVersion(u64),
}

/// Whether the spec's version (`desired_hash`) was deployed, failed and is no longer the
/// live job (Nomad auto-reverted, or someone rolled back). `hash_of` gives the
/// `steward.hash` of a job version (`None` = not known yet, `Some(None)` = no hash).
#[must_use]
pub fn reverted(
    desired_hash: &str,
    live: &Job,
    deployments: &[Arc<Deployment>],
    hash_of: impl Fn(u64) -> Option<Option<String>>,
) -> RevertCheck {
    let live_hash = live
        .view
        .meta
        .get(steward_render::names::META_HASH)
        .map(String::as_str);
    if live_hash == Some(desired_hash) {
        return RevertCheck::NotReverted;
    }
    let mut newest_first: Vec<&Arc<Deployment>> = deployments.iter().collect();
    newest_first.sort_by_key(|d| std::cmp::Reverse(d.create_index));
    for d in newest_first {
        if d.job_version == live.view.version {
            continue;
        }
        match hash_of(d.job_version) {
            None => return RevertCheck::NeedVersion(d.job_version),
            Some(Some(h)) if h == desired_hash => {
                return if d.status == "failed" {
                    RevertCheck::Reverted(format!(
                        "deployment {} of job version {} failed ({}); Nomad now runs job version {}. \
                         Not registering this spec again until it changes",
                        short(&d.id),
                        d.job_version,
                        d.status_description,
                        live.view.version
                    ))
                } else {
                    RevertCheck::NotReverted
                };
            }
            Some(_) => {}
        }
    }
    RevertCheck::NotReverted
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;
    use steward_hashi::nomad::{DeploymentState, TaskGroups};

    use super::*;

    fn job(version: u64, hash: &str, stable: bool) -> Job {
        Job::from_value(
            json!({"ID": "web", "Namespace": "a", "Version": version, "Stable": stable,
            "JobModifyIndex": 100 + version, "Meta": {"steward.hash": hash}}),
        )
        .unwrap()
    }

    fn state(j: &Job) -> Option<JobState> {
        Some(JobState::of(j))
    }

    fn dep(id: &str, version: u64, create: u64, status: &str, healthy: u64) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.into(),
            job_version: version,
            create_index: create,
            status: status.into(),
            status_description: format!("{status} description"),
            task_groups: TaskGroups::from([(
                "web".to_owned(),
                DeploymentState {
                    desired_total: 2,
                    healthy_allocs: healthy,
                    ..DeploymentState::default()
                },
            )]),
            ..Deployment::default()
        })
    }

    #[test]
    fn the_rollout_follows_the_deployment_of_the_live_version() {
        let j = job(1, "h1", false);
        assert_eq!(rollout(None, &[], false, false), Rollout::NoJob);
        assert_eq!(rollout(state(&j), &[], true, false), Rollout::Batch);
        assert_eq!(rollout(state(&j), &[], false, false), Rollout::Pending);
        let old = dep("d0000000", 0, 1, "successful", 2);
        assert_eq!(
            rollout(state(&j), std::slice::from_ref(&old), false, false),
            Rollout::Pending
        );
        let running = dep("d1111111", 1, 2, "running", 1);
        assert!(matches!(
            rollout(state(&j), &[running, old.clone()], false, false),
            Rollout::Running(m) if m.contains("1/2 healthy")
        ));
        let done = dep("d1111111", 1, 2, "successful", 2);
        assert!(matches!(
            rollout(state(&j), &[done.clone(), old.clone()], false, false),
            Rollout::Available(_)
        ));
        // Known from the job list only: matched through JobSpecModifyIndex.
        let listed = JobState {
            job_modify_index: 101,
            version: None,
            stable: false,
            stop: false,
        };
        let mut by_index = (*done).clone();
        by_index.job_version = 99;
        by_index.job_spec_modify_index = 101;
        assert!(matches!(
            rollout(
                Some(listed),
                &[Arc::new(by_index), old.clone()],
                false,
                false
            ),
            Rollout::Available(_)
        ));
        assert_eq!(rollout(Some(listed), &[], false, false), Rollout::Pending);
        assert!(matches!(
            rollout(Some(listed), &[], false, true),
            Rollout::Available(_)
        ));
        let failed = dep("d1111111", 1, 2, "failed", 0);
        assert!(matches!(
            rollout(state(&j), &[failed, old], false, false),
            Rollout::Failed(m) if m.contains("failed description")
        ));
        assert!(matches!(
            rollout(state(&job(3, "h", true)), &[], false, false),
            Rollout::Available(_)
        ));
    }

    #[test]
    fn a_reverted_version_is_held_until_the_spec_changes() {
        // v0 (h0) stable, v1 (h1) failed, v2 = revert to h0.
        let live = job(2, "h0", true);
        let deps = [
            dep("d2222222", 2, 3, "successful", 2),
            dep("d1111111", 1, 2, "failed", 0),
            dep("d0000000", 0, 1, "successful", 2),
        ];
        let hashes = |v: u64| match v {
            0 | 2 => Some(Some("h0".to_owned())),
            1 => Some(Some("h1".to_owned())),
            _ => None,
        };
        assert!(matches!(
            reverted("h1", &live, &deps, hashes),
            RevertCheck::Reverted(m) if m.contains("job version 1 failed")
        ));
        // A new spec (h3) is applied normally.
        assert_eq!(
            reverted("h3", &live, &deps, hashes),
            RevertCheck::NotReverted
        );
        // The live job already is the desired version: nothing to hold.
        assert_eq!(
            reverted("h0", &live, &deps, hashes),
            RevertCheck::NotReverted
        );
        // Unknown version hashes must be read first.
        assert_eq!(
            reverted("h1", &live, &deps, |_| None),
            RevertCheck::NeedVersion(1)
        );
    }
}
