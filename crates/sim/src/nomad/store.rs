//! The Nomad state store and the scheduling model: registrations, evaluations,
//! placements, allocation lifecycles, deployments (rolling updates, canaries, auto
//! revert) and the event buffer. Everything here runs under the state lock; every
//! write takes its index from the product's clock while the lock is held.

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

/// `(namespace, job ID)`.
pub(crate) type JobKey = (String, String);

/// A job with its tracked versions.
///
/// Jobs are shared (`Arc`) so that reading one never deep-copies it (a canonical job
/// is a tree of several hundred JSON nodes). The newest tracked version is, apart
/// from its `ModifyIndex`, always the current job itself (status changes apply to
/// both; only the job's `ModifyIndex` moves with them), so it is not stored twice:
/// `head` holds that version's `ModifyIndex`. Changes go through
/// [`JobEntry::job_mut`] / [`JobEntry::push_version`], which also drop the cached list
/// stub. The persisted form (`job`, `versions`, ...) is unchanged.
#[derive(Debug, Clone)]
pub(crate) struct JobEntry {
    /// The current job.
    job: Arc<Value>,
    /// `ModifyIndex` of the newest tracked version when that version is the current
    /// job; `None` when every tracked version is in `older`.
    head: Option<u64>,
    /// The other tracked versions, newest first, each with its `ModifyIndex`.
    older: Vec<(Arc<Value>, u64)>,
    pub(crate) summary_create_index: u64,
    pub(crate) summary_modify_index: u64,
    /// Versions registered by an auto revert (the failing-job fault spares them).
    pub(crate) revert_versions: BTreeSet<u64>,
    /// The job's part of its `JobListStub`, serialised once per job change.
    stub: std::sync::OnceLock<Arc<StubParts>>,
    /// The serialised `JobSummary`, made once per change to the job, its allocations
    /// or its evaluations (see [`Inner::invalidate_summary`]).
    summary: std::sync::OnceLock<Box<[u8]>>,
    /// The job serialised, kept across changes to the fields that change in place
    /// (see [`JobBytes`]).
    bytes: std::sync::OnceLock<Arc<JobBytes>>,
}

impl JobEntry {
    /// A new entry whose only version is `job`.
    pub(crate) fn new(job: Arc<Value>, summary_index: u64) -> JobEntry {
        JobEntry {
            head: Some(u(&job, "ModifyIndex")),
            job,
            older: Vec::new(),
            summary_create_index: summary_index,
            summary_modify_index: summary_index,
            revert_versions: BTreeSet::new(),
            stub: std::sync::OnceLock::new(),
            summary: std::sync::OnceLock::new(),
            bytes: std::sync::OnceLock::new(),
        }
    }

    /// Forgets what was derived from the job and its allocations.
    pub(crate) fn clear_caches(&mut self) {
        self.stub = std::sync::OnceLock::new();
        self.summary = std::sync::OnceLock::new();
        self.bytes = std::sync::OnceLock::new();
    }

    /// The current job for changing only [`JobBytes::IN_PLACE`] fields: the cached
    /// serialisation stays usable (those values are spliced in when it is used).
    fn job_mut_in_place(&mut self) -> &mut Value {
        self.stub = std::sync::OnceLock::new();
        self.summary = std::sync::OnceLock::new();
        Arc::make_mut(&mut self.job)
    }

    /// The current job serialised (compact), as `serde_json::to_vec` writes it.
    pub(crate) fn job_json(&self) -> Vec<u8> {
        self.job_bytes().render(&self.job)
    }

    fn job_bytes(&self) -> &Arc<JobBytes> {
        self.bytes.get_or_init(|| Arc::new(JobBytes::of(&self.job)))
    }

    /// The current job, as an event keeps it.
    pub(crate) fn job_snapshot(&self) -> JobSnapshot {
        let bytes = self.job_bytes();
        if bytes.spans.is_empty() {
            return JobSnapshot::Whole(bytes.render(&self.job).into_boxed_slice());
        }
        let values = bytes.spans.iter().map(|(f, _)| self.job[*f].clone());
        JobSnapshot::Spliced(bytes.clone(), values.collect())
    }

    /// The current job.
    pub(crate) fn job(&self) -> &Arc<Value> {
        &self.job
    }

    /// The current job, for changing it in place (copied first only when someone
    /// else holds it). The newest version follows, except for its `ModifyIndex`.
    pub(crate) fn job_mut(&mut self) -> &mut Value {
        self.clear_caches();
        Arc::make_mut(&mut self.job)
    }

    /// Makes `job` the current job and the newest tracked version, keeping at most
    /// `tracked` versions.
    pub(crate) fn push_version(&mut self, job: Arc<Value>, tracked: usize) {
        self.clear_caches();
        let mi = u(&job, "ModifyIndex");
        let previous = std::mem::replace(&mut self.job, job);
        if let Some(head) = self.head.replace(mi) {
            self.older.insert(0, (previous, head));
        }
        self.older.truncate(tracked.max(1) - 1);
    }

    /// Tracked versions, newest first, each with its `ModifyIndex` (which the shared
    /// job value may not carry; see [`version_json`]).
    pub(crate) fn versions(&self) -> impl Iterator<Item = (&Arc<Value>, u64)> {
        self.head
            .map(|mi| (&self.job, mi))
            .into_iter()
            .chain(self.older.iter().map(|(v, mi)| (v, *mi)))
    }

    /// Sets `Status` on the job and, as the server does, on the newest version.
    fn set_status(&mut self, status: &str, idx: u64) {
        let job = self.job_mut_in_place();
        job["Status"] = json!(status);
        job["ModifyIndex"] = json!(idx);
        if self.head.is_none() {
            let version = u(&self.job, "Version");
            if let Some((v, _)) = self.older.first_mut()
                && u(v, "Version") == version
            {
                Arc::make_mut(v)["Status"] = json!(status);
            }
        }
    }

    /// Marks a version stable at `idx` (the job too when it is that version).
    fn set_stable(&mut self, version: u64, idx: u64) {
        if u(&self.job, "Version") == version {
            let job = self.job_mut_in_place();
            job["Stable"] = json!(true);
            job["ModifyIndex"] = json!(idx);
            if let Some(head) = self.head.as_mut() {
                *head = idx;
            }
        }
        for (v, mi) in self.older.iter_mut() {
            if u(v, "Version") == version {
                let v = Arc::make_mut(v);
                v["Stable"] = json!(true);
                v["ModifyIndex"] = json!(idx);
                *mi = idx;
            }
        }
    }

    /// Applies `f` to every stored index field of the job and its versions
    /// (`ModifyIndex` of versions through their recorded index).
    pub(crate) fn lower_indexes(&mut self, lower: impl Fn(u64) -> u64) {
        const KEYS: [&str; 3] = ["CreateIndex", "ModifyIndex", "JobModifyIndex"];
        let lower_json = |v: &mut Value| {
            for k in KEYS {
                if let Some(n) = v.get(k).and_then(Value::as_u64) {
                    v[k] = json!(lower(n));
                }
            }
        };
        lower_json(self.job_mut());
        if let Some(head) = self.head.as_mut() {
            *head = lower(*head);
        }
        for (v, mi) in self.older.iter_mut() {
            lower_json(Arc::make_mut(v));
            *mi = lower(*mi);
        }
    }

    /// The cached stub parts, computed on first use after a change.
    pub(crate) fn stub_parts(&self) -> Arc<StubParts> {
        self.stub
            .get_or_init(|| Arc::new(StubParts::of(&self.job)))
            .clone()
    }
}

/// A job serialised once, with where the values of the top-level fields that change
/// in place (`Status`, `ModifyIndex`, `Stable`) are, so later forms of the same job
/// are a copy with those values re-written instead of a new serialisation.
#[derive(Debug)]
pub(crate) struct JobBytes {
    bytes: Vec<u8>,
    /// `(field, byte range of its value)`, in order; empty when a field is missing
    /// (then every form is serialised afresh).
    spans: Vec<(&'static str, std::ops::Range<usize>)>,
}

impl JobBytes {
    /// The fields whose values are spliced in.
    const IN_PLACE: [&'static str; 3] = ["Status", "ModifyIndex", "Stable"];

    fn of(job: &Value) -> JobBytes {
        let Some(map) = job.as_object() else {
            return JobBytes {
                bytes: serde_json::to_vec(job).unwrap_or_default(),
                spans: Vec::new(),
            };
        };
        // `{"k":v,...}` exactly as serde_json's compact formatter writes a map.
        let mut bytes = Vec::with_capacity(8192);
        let mut spans = Vec::new();
        bytes.push(b'{');
        for (n, (k, v)) in map.iter().enumerate() {
            if n > 0 {
                bytes.push(b',');
            }
            let _ = serde_json::to_writer(&mut bytes, k);
            bytes.push(b':');
            let start = bytes.len();
            let _ = serde_json::to_writer(&mut bytes, v);
            if let Some(field) = Self::IN_PLACE.iter().find(|f| **f == k.as_str()) {
                spans.push((*field, start..bytes.len()));
            }
        }
        bytes.push(b'}');
        if spans.len() != Self::IN_PLACE.len() {
            spans.clear();
        }
        JobBytes { bytes, spans }
    }

    /// The serialisation of `job`, which differs from the one these bytes were made
    /// from at most in the in-place fields.
    fn render(&self, job: &Value) -> Vec<u8> {
        if self.spans.is_empty() {
            return serde_json::to_vec(job).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 16);
        self.write_with(self.spans.iter().map(|(f, _)| &job[*f]), &mut out);
        out
    }

    /// Appends these bytes with the in-place fields' values taken from `values` (in
    /// the order of the spans).
    fn write_with<'a>(&self, values: impl Iterator<Item = &'a Value>, out: &mut Vec<u8>) {
        let mut at = 0;
        for ((_, range), value) in self.spans.iter().zip(values) {
            out.extend_from_slice(&self.bytes[at..range.start]);
            let _ = serde_json::to_writer(&mut *out, value);
            at = range.end;
        }
        out.extend_from_slice(&self.bytes[at..]);
    }
}

/// A job as it was at one moment, for an event: the job's shared serialisation and
/// the values its in-place fields had then (nothing is copied or written until a
/// subscriber reads the event).
#[derive(Debug)]
pub(crate) enum JobSnapshot {
    /// [`JobBytes`] with these values of its in-place fields.
    Spliced(Arc<JobBytes>, Vec<Value>),
    /// The job serialised (when [`JobBytes`] has no spans).
    Whole(Box<[u8]>),
}

impl JobSnapshot {
    /// Appends the job's JSON.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            JobSnapshot::Spliced(bytes, values) => bytes.write_with(values.iter(), out),
            JobSnapshot::Whole(raw) => out.extend_from_slice(raw),
        }
    }
}

/// A tracked version as the API shows it: the job value with the version's
/// `ModifyIndex`.
pub(crate) fn version_json(v: &Value, modify_index: u64) -> Value {
    let mut out = v.clone();
    if u(&out, "ModifyIndex") != modify_index {
        out["ModifyIndex"] = json!(modify_index);
    }
    out
}

/// Serialises like [`version_json`] without copying the job.
struct VersionOut<'a>(&'a Value, u64);

impl Serialize for VersionOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(map) = self.0.as_object() else {
            return self.0.serialize(s);
        };
        let replace = u(self.0, "ModifyIndex") != self.1;
        let missing = replace && !map.contains_key("ModifyIndex");
        let mut m = s.serialize_map(Some(map.len() + usize::from(missing)))?;
        for (k, v) in map {
            if replace && k == "ModifyIndex" {
                m.serialize_entry(k, &self.1)?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        if missing {
            m.serialize_entry("ModifyIndex", &self.1)?;
        }
        m.end()
    }
}

/// Whether two job values are equal apart from `ModifyIndex`.
fn same_but_modify_index(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => {
            let n = |m: &serde_json::Map<String, Value>| {
                m.len() - usize::from(m.contains_key("ModifyIndex"))
            };
            n(x) == n(y)
                && x.iter()
                    .filter(|(k, _)| k.as_str() != "ModifyIndex")
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => false,
    }
}

/// The persisted form of a [`JobEntry`] (unchanged from when versions were stored
/// one by one).
#[derive(Serialize)]
struct JobEntryOut<'a> {
    job: &'a Value,
    versions: Vec<VersionOut<'a>>,
    summary_create_index: u64,
    summary_modify_index: u64,
    revert_versions: &'a BTreeSet<u64>,
}

#[derive(Deserialize)]
struct JobEntryIn {
    job: Value,
    versions: Vec<Value>,
    summary_create_index: u64,
    summary_modify_index: u64,
    #[serde(default)]
    revert_versions: BTreeSet<u64>,
}

impl Serialize for JobEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        JobEntryOut {
            job: &self.job,
            versions: self.versions().map(|(v, mi)| VersionOut(v, mi)).collect(),
            summary_create_index: self.summary_create_index,
            summary_modify_index: self.summary_modify_index,
            revert_versions: &self.revert_versions,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for JobEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JobEntry, D::Error> {
        let e = JobEntryIn::deserialize(d)?;
        let mut versions = e.versions.into_iter();
        let mut older = Vec::new();
        let mut head = None;
        if let Some(first) = versions.next() {
            let mi = u(&first, "ModifyIndex");
            if same_but_modify_index(&first, &e.job) {
                head = Some(mi);
            } else {
                older.push((Arc::new(first), mi));
            }
        }
        older.extend(versions.map(|v| {
            let mi = u(&v, "ModifyIndex");
            (Arc::new(v), mi)
        }));
        Ok(JobEntry {
            job: Arc::new(e.job),
            head,
            older,
            summary_create_index: e.summary_create_index,
            summary_modify_index: e.summary_modify_index,
            revert_versions: e.revert_versions,
            stub: std::sync::OnceLock::new(),
            summary: std::sync::OnceLock::new(),
            bytes: std::sync::OnceLock::new(),
        })
    }
}

/// What listings need of a job, derived once per job change: its serialised
/// `JobListStub` around the `JobSummary` (which changes with allocations, not with
/// the job) — `head` ends with `"JobSummary":`, `tail` is the rest of the object
/// without `Meta`, `meta` is `,"Meta":{...}` for `?meta=true` — and what the summary
/// needs of the job.
#[derive(Debug)]
pub(crate) struct StubParts {
    pub(crate) head: Vec<u8>,
    pub(crate) tail: Vec<u8>,
    pub(crate) meta: Vec<u8>,
    /// Task group names (first occurrence order) with their `Count`.
    groups: Vec<(String, i64)>,
    /// Whether a blocked evaluation queues allocations (not for stopped, periodic or
    /// parameterized jobs).
    queues: bool,
}

impl StubParts {
    const MARK: &'static [u8] = b"\"JobSummary\":null";

    fn of(job: &Value) -> StubParts {
        let v = super::jobs::stub_value(job, Value::Null, false);
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        // Only `CreateIndex`, `Datacenters`, `ID` and `JobModifyIndex` come before
        // `JobSummary`; an unescaped quote cannot occur inside their string values.
        let at = bytes
            .windows(Self::MARK.len())
            .position(|w| w == Self::MARK)
            .unwrap_or(0);
        let head_len = at + Self::MARK.len() - 4;
        let mut meta = b",\"Meta\":".to_vec();
        meta.extend(serde_json::to_vec(&job["Meta"]).unwrap_or_default());
        let mut groups: Vec<(String, i64)> = Vec::new();
        for g in arr(job, "TaskGroups") {
            let (name, count) = (s(g, "Name"), i(g, "Count"));
            // A repeated name keeps its first place and takes the later count, as
            // inserting into a JSON map does.
            match groups.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = count,
                None => groups.push((name.to_string(), count)),
            }
        }
        let periodic = job["Periodic"].is_object() || job["ParameterizedJob"].is_object();
        StubParts {
            head: bytes[..head_len].to_vec(),
            tail: bytes[head_len + 4..].to_vec(),
            meta,
            groups,
            queues: !b(job, "Stop") && !periodic,
        }
    }

    /// Appends the stub with `summary` (serialised) to `out`.
    pub(crate) fn write(&self, summary: &[u8], with_meta: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(summary);
        if with_meta {
            // `tail` ends with the object's closing brace; `Meta` goes last.
            out.extend_from_slice(&self.tail[..self.tail.len().saturating_sub(1)]);
            out.extend_from_slice(&self.meta);
            out.push(b'}');
        } else {
            out.extend_from_slice(&self.tail);
        }
    }
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
    pub(crate) events: Vec<Arc<Event>>,
}

/// One event. Payloads are kept as what they describe — a job as its shared
/// serialisation plus the values its in-place fields had ([`JobSnapshot`]; a job is
/// large and changes in place soon after, so copying it would cost far more), the
/// other objects as copies — and turned into JSON only when a subscriber reads them:
/// most events leave the buffer unread.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) topic: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) key: String,
    pub(crate) namespace: String,
    pub(crate) filter_keys: Vec<String>,
    pub(crate) payload: Payload,
}

/// What an event carries.
#[derive(Debug)]
pub(crate) enum Payload {
    /// `{"Job": <job>}`.
    Job(JobSnapshot),
    /// `{"Allocation": <allocation stub>}`.
    Allocation(Box<Alloc>),
    /// `{"Deployment": <deployment>}`.
    Deployment(Box<Deployment>),
    /// `{"Evaluation": <evaluation>}`.
    Evaluation(Box<Eval>),
}

impl Payload {
    /// A job payload: the job as it is now.
    pub(crate) fn job(entry: &JobEntry) -> Payload {
        Payload::Job(entry.job_snapshot())
    }
}

impl Event {
    /// The event's JSON (`FilterKeys`, `Index`, `Key`, `Namespace`, `Payload`,
    /// `Topic`, `Type`, as the event object serialises), appended to `out`.
    pub(crate) fn write_json(&self, index: u64, cfg: &NomadSimConfig, out: &mut Vec<u8>) {
        fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.extend_from_slice(b"{\"FilterKeys\":");
        if self.filter_keys.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            put(out, &self.filter_keys);
        }
        out.extend_from_slice(format!(",\"Index\":{index},\"Key\":").as_bytes());
        put(out, &self.key);
        out.extend_from_slice(b",\"Namespace\":");
        put(out, &self.namespace);
        out.extend_from_slice(b",\"Payload\":{");
        match &self.payload {
            Payload::Job(job) => {
                out.extend_from_slice(b"\"Job\":");
                job.write(out);
            }
            Payload::Allocation(a) => {
                out.extend_from_slice(b"\"Allocation\":");
                put(out, &a.stub(&cfg.node_id, &cfg.node_name));
            }
            Payload::Deployment(d) => {
                out.extend_from_slice(b"\"Deployment\":");
                put(out, d.as_ref());
            }
            Payload::Evaluation(e) => {
                out.extend_from_slice(b"\"Evaluation\":");
                put(out, e.as_ref());
            }
        }
        out.extend_from_slice(b"},\"Topic\":");
        put(out, self.topic);
        out.extend_from_slice(b",\"Type\":");
        put(out, self.kind);
        out.push(b'}');
    }
}

/// A job's `JobSummary`, serialised exactly as the JSON object the API returns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct JobSummary<'a> {
    children: Children,
    create_index: u64,
    #[serde(rename = "JobID")]
    job_id: &'a str,
    modify_index: u64,
    namespace: &'a str,
    summary: GroupSummaries,
}

/// `JobSummary.Children` (no parameterized or periodic children are simulated).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Children {
    dead: i64,
    pending: i64,
    running: i64,
}

/// One task group's allocation counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GroupSummary {
    complete: i64,
    failed: i64,
    lost: i64,
    queued: i64,
    running: i64,
    starting: i64,
    unknown: i64,
}

/// Group name → counts, in task group order.
#[derive(Debug)]
struct GroupSummaries {
    parts: Arc<StubParts>,
    counts: Vec<GroupSummary>,
}

impl Serialize for GroupSummaries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.parts
                .groups
                .iter()
                .map(|(name, _)| name.as_str())
                .zip(self.counts.iter()),
        )
    }
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

    // ----- events -----

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        topic: &'static str,
        kind: &'static str,
        key: &str,
        namespace: &str,
        filter_keys: Vec<String>,
        payload: Payload,
    ) {
        let event = Arc::new(Event {
            topic,
            kind,
            key: key.to_string(),
            namespace: namespace.to_string(),
            filter_keys,
            payload,
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

    fn emit_job(&mut self, cfg: &NomadSimConfig, index: u64, kind: &'static str, key: &JobKey) {
        if let Some(payload) = self.jobs.get(key).map(Payload::job) {
            self.emit(cfg, index, "Job", kind, &key.1, &key.0, Vec::new(), payload);
        }
    }

    fn emit_alloc(&mut self, cfg: &NomadSimConfig, index: u64, kind: &'static str, id: &str) {
        let Some(a) = self.allocs.get(id) else { return };
        let mut keys = vec![a.job_id.clone()];
        if !a.deployment_id.is_empty() {
            keys.push(a.deployment_id.clone());
        }
        let ns = a.namespace.clone();
        let payload = Payload::Allocation(Box::new(a.clone()));
        self.emit(cfg, index, "Allocation", kind, id, &ns, keys, payload);
    }

    fn emit_deployment(&mut self, cfg: &NomadSimConfig, index: u64, kind: &'static str, id: &str) {
        let Some(d) = self.deployments.get(id) else {
            return;
        };
        let (ns, job) = (d.namespace.clone(), d.job_id.clone());
        let payload = Payload::Deployment(Box::new(d.clone()));
        self.emit(cfg, index, "Deployment", kind, id, &ns, vec![job], payload);
    }

    fn emit_eval(&mut self, cfg: &NomadSimConfig, index: u64, id: &str) {
        let Some(e) = self.evals.get(id) else { return };
        let (ns, job) = (e.namespace.clone(), e.job_id.clone());
        let payload = Payload::Evaluation(Box::new(e.clone()));
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
    fn gc_job(&mut self, key: &JobKey) {
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
            && entry.job()["Status"] != status
        {
            entry.set_status(status, idx);
            self.tables.jobs = idx;
        }
    }

    fn touch_summary(&mut self, key: &JobKey, idx: u64) {
        self.invalidate_summary(key);
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

    fn alloc_started(&mut self, cx: &Ctx<'_>, id: &str) {
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

    /// After any allocation/deployment change: advance the deployment (promotion,
    /// success, failure and revert) and continue rolling updates.
    fn after_change(&mut self, cx: &Ctx<'_>, key: &JobKey, idx: u64) {
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

    fn set_stable(&mut self, key: &JobKey, version: u64, idx: u64) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
