//! The Nomad section from a job plan (`PUT /v1/job/<id>/plan` with `Diff: true`):
//! changed fields from the structured diff, the scheduler's decisions per group
//! (`Annotations.DesiredTGUpdates`), and placement failures (`FailedTGAllocs`) with the
//! scheduler's reasons worded as `nomad job plan` words them.

use serde_json::Value;
use steward_hashi::nomad::{DiffType, FieldDiff, ObjectDiff, PlanResponse};
use steward_render::names::META_PREFIX;

use super::model::{JobChange, JobField, NomadSection, Placement, PlacementFailure};

/// Whether a diff field is one of Steward's ownership labels (`Meta[steward.hash]`...):
/// they change with every spec change and say nothing about the workload.
fn is_ownership_label(name: &str) -> bool {
    name.strip_prefix("Meta[")
        .is_some_and(|rest| rest.starts_with(META_PREFIX))
}

fn field(path: &str, f: &FieldDiff) -> Option<JobField> {
    if is_ownership_label(&f.name) {
        return None;
    }
    let full = if path.is_empty() {
        f.name.clone()
    } else {
        format!("{path}.{}", f.name)
    };
    let (old, new) = match f.diff_type {
        DiffType::None => return None,
        DiffType::Added => (None, Some(f.new.clone())),
        DiffType::Deleted => (Some(f.old.clone()), None),
        DiffType::Edited | DiffType::Unknown => (Some(f.old.clone()), Some(f.new.clone())),
    };
    Some(JobField {
        path: full,
        old,
        new,
        annotations: f.annotations.clone(),
    })
}

fn fields_of(path: &str, fields: &[FieldDiff], objects: &[ObjectDiff], out: &mut Vec<JobField>) {
    out.extend(fields.iter().filter_map(|f| field(path, f)));
    for o in objects.iter().filter(|o| o.diff_type != DiffType::None) {
        let sub = if path.is_empty() {
            o.name.clone()
        } else {
            format!("{path}.{}", o.name)
        };
        fields_of(&sub, &o.fields, &o.objects, out);
    }
}

/// `Task Group "web" (failed to place 2 allocations)` reasons, as the Nomad CLI's
/// `formatAllocMetrics` writes them.
pub fn failure_reasons(metrics: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let num = |k: &str| metrics.get(k).and_then(Value::as_u64).unwrap_or(0);
    let map = |k: &str| -> Vec<(String, u64)> {
        metrics
            .get(k)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    if num("NodesEvaluated") == 0 {
        out.push("No nodes were eligible for evaluation".to_owned());
    }
    for (dc, available) in map("NodesAvailable") {
        if available == 0 {
            out.push(format!("No nodes are available in datacenter {dc:?}"));
        }
    }
    for (class, n) in map("ClassFiltered") {
        out.push(format!("Class {class:?}: {n} nodes excluded by filter"));
    }
    for (constraint, n) in map("ConstraintFiltered") {
        out.push(format!(
            "Constraint {constraint:?}: {n} nodes excluded by filter"
        ));
    }
    let exhausted = num("NodesExhausted");
    if exhausted > 0 {
        out.push(format!("Resources exhausted on {exhausted} nodes"));
    }
    for (class, n) in map("ClassExhausted") {
        out.push(format!("Class {class:?} exhausted on {n} nodes"));
    }
    for (dim, n) in map("DimensionExhausted") {
        out.push(format!("Dimension {dim:?} exhausted on {n} nodes"));
    }
    for quota in metrics
        .get("QuotaExhausted")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(format!("Quota limit hit {quota:?}"));
    }
    out
}

/// The section for job `job` (`<namespace>/<id>`) from its plan.
pub fn nomad_section(job: &str, plan: &PlanResponse) -> NomadSection {
    let diff = plan.diff.clone().unwrap_or_default();
    let change = match diff.diff_type {
        DiffType::Added => JobChange::Create,
        DiffType::None => JobChange::Unchanged,
        _ if plan.job_modify_index == 0 => JobChange::Create,
        _ => JobChange::Update,
    };
    let mut fields = Vec::new();
    if change != JobChange::Create {
        fields_of("", &diff.fields, &diff.objects, &mut fields);
        for g in diff
            .task_groups
            .iter()
            .filter(|g| g.diff_type != DiffType::None)
        {
            let gpath = format!("TaskGroups[{}]", g.name);
            fields_of(&gpath, &g.fields, &g.objects, &mut fields);
            for t in g.tasks.iter().filter(|t| t.diff_type != DiffType::None) {
                let tpath = format!("{gpath}.Tasks[{}]", t.name);
                fields_of(&tpath, &t.fields, &t.objects, &mut fields);
            }
        }
    }
    let placements: Vec<Placement> = plan
        .annotations
        .as_ref()
        .map(|a| {
            a.desired_tg_updates
                .iter()
                .map(|(group, u)| Placement {
                    group: group.clone(),
                    place: u.place,
                    canary: u.canary,
                    destructive_update: u.destructive_update,
                    in_place_update: u.in_place_update,
                    stop: u.stop,
                    migrate: u.migrate,
                    preemptions: u.preemptions,
                    ignore: u.ignore,
                })
                .filter(Placement::changes)
                .collect()
        })
        .unwrap_or_default();
    let failures = plan
        .failed_tg_allocs
        .iter()
        .map(|(group, metrics)| PlacementFailure {
            group: group.clone(),
            allocations: metrics
                .get("CoalescedFailures")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                + 1,
            reasons: failure_reasons(metrics),
        })
        .collect();
    let mut warnings: Vec<String> = plan
        .warnings
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    // An edit of only the ownership labels is no change to the workload, unless the
    // scheduler still touches allocations for it (then say why).
    let change = match (
        change,
        fields.is_empty(),
        placements.iter().any(Placement::changes),
    ) {
        (JobChange::Update, true, false) => JobChange::Unchanged,
        (JobChange::Update, true, true) => {
            warnings.push(
                "only Steward's ownership labels (Meta[steward.*]) change, and the scheduler updates allocations for it".to_owned(),
            );
            JobChange::Update
        }
        (change, _, _) => change,
    };
    let next_periodic_launch = plan
        .next_periodic_launch
        .as_ref()
        .and_then(Value::as_str)
        .filter(|t| !t.starts_with("0001-01-01"))
        .map(str::to_owned);
    NomadSection {
        job: job.to_owned(),
        change,
        fields,
        placements,
        failures,
        warnings,
        next_periodic_launch,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(body: Value) -> PlanResponse {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn changed_fields_skip_ownership_labels_and_unchanged_values() {
        let p = plan(json!({
            "JobModifyIndex": 12,
            "Diff": {"Type": "Edited", "ID": "order-api",
                "Fields": [{"Type": "Edited", "Name": "Meta[steward.hash]", "Old": "a", "New": "b"}],
                "TaskGroups": [{"Type": "Edited", "Name": "api",
                    "Fields": [{"Type": "Edited", "Name": "Count", "Old": "2", "New": "3", "Annotations": ["forces create"]}],
                    "Tasks": [{"Type": "Edited", "Name": "app", "Objects": [{"Type": "Edited", "Name": "Config", "Fields": [
                        {"Type": "Edited", "Name": "image", "Old": "x:1", "New": "x:2"},
                        {"Type": "None", "Name": "ports[0]", "Old": "http", "New": "http"}]}]}],
                    "Updates": {"create": 1}}]},
            "Annotations": {"DesiredTGUpdates": {"api": {"Place": 1, "DestructiveUpdate": 1, "Ignore": 1}}}
        }));
        let s = nomad_section("trading/order-api", &p);
        assert_eq!(s.change, JobChange::Update);
        let paths: Vec<&str> = s.fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "TaskGroups[api].Count",
                "TaskGroups[api].Tasks[app].Config.image"
            ]
        );
        assert_eq!(
            s.placements[0].describe(),
            "1 to place, 1 to replace, 1 unchanged"
        );
        assert_eq!(
            s.summary(),
            "update, 2 fields, 1 placement, 1 destructive update"
        );
    }

    #[test]
    fn a_plan_editing_only_ownership_labels_is_unchanged() {
        let p = plan(json!({
            "JobModifyIndex": 12,
            "Diff": {"Type": "Edited", "Fields": [{"Type": "Edited", "Name": "Meta[steward.hash]", "Old": "a", "New": "b"}]},
            "Annotations": {"DesiredTGUpdates": {"api": {"Ignore": 2}}}
        }));
        let s = nomad_section("trading/order-api", &p);
        assert_eq!(s.change, JobChange::Unchanged);
        assert!(!s.changes());
    }

    #[test]
    fn placement_failures_carry_the_schedulers_reasons() {
        // As a real Nomad 1.1 answered for a docker job on a client without Docker.
        let p = plan(json!({
            "JobModifyIndex": 0,
            "Diff": {"Type": "Added"},
            "FailedTGAllocs": {"api": {"CoalescedFailures": 2, "ConstraintFiltered": {"missing drivers": 1},
                "NodesAvailable": {"dc1": 1}, "NodesEvaluated": 1, "NodesExhausted": 0}},
            "Annotations": {"DesiredTGUpdates": {"api": {"Place": 3}}}
        }));
        let s = nomad_section("trading/order-api", &p);
        assert_eq!(s.change, JobChange::Create);
        assert_eq!(
            s.failures,
            [PlacementFailure {
                group: "api".into(),
                allocations: 3,
                reasons: vec!["Constraint \"missing drivers\": 1 nodes excluded by filter".into()],
            }]
        );
        let none = failure_reasons(&json!({"NodesEvaluated": 0, "NodesAvailable": {"dc2": 0}}));
        assert_eq!(
            none,
            [
                "No nodes were eligible for evaluation",
                "No nodes are available in datacenter \"dc2\""
            ]
        );
    }
}
