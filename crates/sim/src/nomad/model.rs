//! Stored objects other than jobs: evaluations, allocations, deployments, and their
//! wire forms.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// An evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Eval {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    pub(crate) namespace: String,
    pub(crate) priority: i64,
    #[serde(rename = "Type")]
    pub(crate) job_type: String,
    pub(crate) triggered_by: String,
    #[serde(rename = "JobID")]
    pub(crate) job_id: String,
    #[serde(default)]
    pub(crate) job_modify_index: u64,
    #[serde(rename = "DeploymentID", default, skip_serializing_if = "is_empty")]
    pub(crate) deployment_id: String,
    pub(crate) status: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub(crate) status_description: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub(crate) previous_eval: String,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub(crate) blocked_eval: String,
    #[serde(
        rename = "FailedTGAllocs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) failed_tg_allocs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) class_eligibility: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) queued_allocations: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) snapshot_index: u64,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
    pub(crate) create_time: i64,
    pub(crate) modify_time: i64,
}

impl Eval {
    /// Whether the evaluation is finished.
    pub(crate) fn terminal(&self) -> bool {
        matches!(self.status.as_str(), "complete" | "failed" | "canceled")
    }
}

/// An allocation's deployment health.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AllocDeploymentStatus {
    pub(crate) healthy: Option<bool>,
    pub(crate) timestamp: String,
    pub(crate) canary: bool,
    pub(crate) modify_index: u64,
}

/// One port of an allocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct AllocPort {
    pub(crate) label: String,
    pub(crate) value: u16,
    pub(crate) to: i64,
}

/// An allocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Alloc {
    pub(crate) id: String,
    pub(crate) eval_id: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) job_id: String,
    pub(crate) job_type: String,
    pub(crate) job_version: u64,
    pub(crate) task_group: String,
    pub(crate) desired_status: String,
    pub(crate) desired_description: String,
    pub(crate) client_status: String,
    pub(crate) client_description: String,
    pub(crate) deployment_id: String,
    pub(crate) deployment_status: Option<AllocDeploymentStatus>,
    pub(crate) tasks: Vec<String>,
    pub(crate) ports: Vec<AllocPort>,
    pub(crate) previous_allocation: String,
    pub(crate) next_allocation: String,
    pub(crate) started_at: Option<String>,
    pub(crate) finished_at: Option<String>,
    /// Service IDs registered in Consul for this allocation.
    pub(crate) registered: Vec<String>,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
    pub(crate) alloc_modify_index: u64,
    pub(crate) create_time: i64,
    pub(crate) modify_time: i64,
}

impl Alloc {
    /// `TerminalStatus()`: desired stop/evict or a finished client status.
    pub(crate) fn terminal(&self) -> bool {
        matches!(self.desired_status.as_str(), "stop" | "evict")
            || matches!(self.client_status.as_str(), "complete" | "failed" | "lost")
    }

    /// Whether the deployment considers this allocation healthy.
    pub(crate) fn healthy(&self) -> bool {
        self.deployment_status
            .as_ref()
            .is_some_and(|d| d.healthy == Some(true))
    }

    /// Whether this is a canary.
    pub(crate) fn canary(&self) -> bool {
        self.deployment_status.as_ref().is_some_and(|d| d.canary)
    }

    fn task_states(&self) -> Value {
        let (state, failed) = match self.client_status.as_str() {
            "pending" => ("pending", false),
            "running" => ("running", false),
            "failed" => ("dead", true),
            _ => ("dead", false),
        };
        let mut m = serde_json::Map::new();
        for t in &self.tasks {
            let mut events = vec![task_event(
                "Received",
                "Task received by client",
                self.create_time,
            )];
            if self.client_status != "pending" {
                events.push(task_event(
                    "Task Setup",
                    "Building Task Directory",
                    self.create_time,
                ));
            }
            if self.started_at.is_some() {
                events.push(task_event(
                    "Started",
                    "Task started by client",
                    self.modify_time,
                ));
            }
            if self.client_status == "failed" {
                events.push(task_event(
                    "Driver Failure",
                    "failed to start task",
                    self.modify_time,
                ));
                events.push(task_event(
                    "Not Restarting",
                    "Error was unrecoverable",
                    self.modify_time,
                ));
            }
            if self.client_status == "complete" {
                events.push(task_event(
                    "Killed",
                    "Task successfully killed",
                    self.modify_time,
                ));
            }
            m.insert(
                t.clone(),
                json!({
                    "Events": events,
                    "Failed": failed,
                    "FinishedAt": self.finished_at,
                    "LastRestart": null,
                    "Paused": null,
                    "Restarts": 0,
                    "StartedAt": self.started_at,
                    "State": state,
                    "TaskHandle": null,
                }),
            );
        }
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    }

    /// `AllocationListStub`.
    pub(crate) fn stub(&self, node_id: &str, node_name: &str) -> Value {
        json!({
            "AllocatedResources": null,
            "ClientDescription": self.client_description,
            "ClientStatus": self.client_status,
            "CreateIndex": self.create_index,
            "CreateTime": self.create_time,
            "DeploymentStatus": self.deployment_status,
            "DesiredDescription": self.desired_description,
            "DesiredStatus": self.desired_status,
            "DesiredTransition": { "ForceReschedule": null, "Migrate": null, "Reschedule": null },
            "EvalID": self.eval_id,
            "FollowupEvalID": "",
            "ID": self.id,
            "JobID": self.job_id,
            "JobType": self.job_type,
            "JobVersion": self.job_version,
            "ModifyIndex": self.modify_index,
            "ModifyTime": self.modify_time,
            "Name": self.name,
            "Namespace": self.namespace,
            "NextAllocation": self.next_allocation,
            "NodeID": node_id,
            "NodeName": node_name,
            "PreemptedAllocations": null,
            "PreemptedByAllocation": "",
            "PreviousAllocation": self.previous_allocation,
            "RescheduleTracker": null,
            "TaskGroup": self.task_group,
            "TaskStates": self.task_states(),
        })
    }

    /// The full `Allocation` (GET /v1/allocation/:id).
    pub(crate) fn full(
        &self,
        node_id: &str,
        node_name: &str,
        address: &str,
        job: Value,
        group: &Value,
    ) -> Value {
        let mut v = self.stub(node_id, node_name);
        let dyn_ports: Vec<Value> = self
            .ports
            .iter()
            .map(|p| json!({"HostNetwork": "default", "Label": p.label, "To": p.to, "Value": p.value}))
            .collect();
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|p| json!({"HostIP": address, "Label": p.label, "To": p.to, "Value": p.value}))
            .collect();
        let mode = group["Networks"][0]["Mode"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let network = json!({
            "CIDR": "", "DNS": null, "Device": "", "DynamicPorts": if dyn_ports.is_empty() { Value::Null } else { Value::Array(dyn_ports) },
            "Hostname": "", "IP": address, "MBits": 0, "Mode": mode, "ReservedPorts": null,
        });
        let mut task_resources = serde_json::Map::new();
        let mut tasks_alloc = serde_json::Map::new();
        for t in group["Tasks"].as_array().into_iter().flatten() {
            let name = t["Name"].as_str().unwrap_or("").to_string();
            task_resources.insert(name.clone(), t["Resources"].clone());
            tasks_alloc.insert(
                name,
                json!({
                    "Cpu": { "CpuShares": t["Resources"]["CPU"], "ReservedCores": null },
                    "Devices": null,
                    "Memory": { "MemoryMB": t["Resources"]["MemoryMB"], "MemoryMaxMB": t["Resources"]["MemoryMaxMB"] },
                    "Networks": null,
                }),
            );
        }
        let disk = group["EphemeralDisk"]["SizeMB"].clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("AllocModifyIndex".into(), json!(self.alloc_modify_index));
            o.insert(
                "AllocatedResources".into(),
                json!({
                    "Shared": {
                        "DiskMB": disk,
                        "Networks": if self.ports.is_empty() { Value::Null } else { json!([network.clone()]) },
                        "Ports": if ports.is_empty() { Value::Null } else { Value::Array(ports) },
                    },
                    "TaskLifecycles": null,
                    "Tasks": tasks_alloc,
                }),
            );
            o.insert("DeploymentID".into(), json!(self.deployment_id));
            o.insert("Job".into(), job);
            o.insert(
                "Metrics".into(),
                json!({
                    "AllocationTime": 100000, "ClassExhausted": null, "ClassFiltered": null,
                    "CoalescedFailures": 0, "ConstraintFiltered": null, "DimensionExhausted": null,
                    "NodesAvailable": {}, "NodesEvaluated": 1, "NodesExhausted": 0, "NodesFiltered": 0,
                    "NodesInPool": 1, "QuotaExhausted": null, "ResourcesExhausted": null,
                    "ScoreMetaData": null, "Scores": null,
                }),
            );
            o.insert(
                "NetworkStatus".into(),
                json!({ "Address": if mode == "bridge" { address } else { "" }, "DNS": null, "InterfaceName": if mode == "bridge" { "eth0" } else { "" } }),
            );
            o.insert("Resources".into(), Value::Null);
            o.insert("SharedResources".into(), Value::Null);
            o.insert("TaskResources".into(), Value::Object(task_resources));
        }
        v
    }
}

fn task_event(kind: &str, message: &str, time: i64) -> Value {
    json!({
        "Details": {},
        "DisplayMessage": message,
        "ExitCode": 0,
        "FailsTask": kind == "Driver Failure",
        "Message": if kind == "Received" || kind == "Started" { "" } else { message },
        "Time": time,
        "Type": kind,
    })
}

/// One task group's deployment state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeploymentState {
    pub(crate) auto_promote: bool,
    pub(crate) auto_revert: bool,
    pub(crate) desired_canaries: i64,
    pub(crate) desired_total: i64,
    pub(crate) healthy_allocs: i64,
    pub(crate) placed_allocs: i64,
    pub(crate) placed_canaries: Option<Vec<String>>,
    pub(crate) progress_deadline: i64,
    pub(crate) promoted: bool,
    pub(crate) require_progress_by: Option<String>,
    pub(crate) unhealthy_allocs: i64,
}

/// A deployment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Deployment {
    pub(crate) create_index: u64,
    pub(crate) create_time: i64,
    pub(crate) eval_priority: i64,
    #[serde(rename = "ID")]
    pub(crate) id: String,
    pub(crate) is_multiregion: bool,
    pub(crate) job_create_index: u64,
    #[serde(rename = "JobID")]
    pub(crate) job_id: String,
    pub(crate) job_modify_index: u64,
    pub(crate) job_spec_modify_index: u64,
    pub(crate) job_version: u64,
    pub(crate) modify_index: u64,
    pub(crate) modify_time: i64,
    pub(crate) namespace: String,
    pub(crate) status: String,
    pub(crate) status_description: String,
    pub(crate) task_groups: BTreeMap<String, DeploymentState>,
}

impl Deployment {
    /// Whether the deployment is still in progress.
    pub(crate) fn active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "running" | "paused" | "pending" | "blocked" | "unblocking" | "initializing"
        )
    }
}

/// A namespace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) meta: Option<BTreeMap<String, String>>,
    pub(crate) quota: String,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

impl Namespace {
    /// Wire form.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Capabilities": null,
            "CreateIndex": self.create_index,
            "Description": self.description,
            "Meta": self.meta,
            "ModifyIndex": self.modify_index,
            "Name": self.name,
            "NodePoolConfiguration": null,
            "Quota": self.quota,
            "VaultConfiguration": null,
            "ConsulConfiguration": null,
        })
    }
}
