//! The stored records and their serialised forms: job entries with their versions
//! and cached JSON bytes, list stubs, table indexes, and job summaries.

use super::*;

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
    pub(super) job: Arc<Value>,
    /// `ModifyIndex` of the newest tracked version when that version is the current
    /// job; `None` when every tracked version is in `older`.
    pub(super) head: Option<u64>,
    /// The other tracked versions, newest first, each with its `ModifyIndex`.
    pub(super) older: Vec<(Arc<Value>, u64)>,
    pub(crate) summary_create_index: u64,
    pub(crate) summary_modify_index: u64,
    /// Versions registered by an auto revert (the failing-job fault spares them).
    pub(crate) revert_versions: BTreeSet<u64>,
    /// The job's part of its `JobListStub`, serialised once per job change.
    pub(super) stub: std::sync::OnceLock<Arc<StubParts>>,
    /// The serialised `JobSummary`, made once per change to the job, its allocations
    /// or its evaluations (see [`Inner::invalidate_summary`]).
    pub(super) summary: std::sync::OnceLock<Box<[u8]>>,
    /// The job serialised, kept across changes to the fields that change in place
    /// (see [`JobBytes`]).
    pub(super) bytes: std::sync::OnceLock<Arc<JobBytes>>,
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
    pub(super) fn job_mut_in_place(&mut self) -> &mut Value {
        self.stub = std::sync::OnceLock::new();
        self.summary = std::sync::OnceLock::new();
        Arc::make_mut(&mut self.job)
    }

    /// The current job serialised (compact), as `serde_json::to_vec` writes it.
    pub(crate) fn job_json(&self) -> Vec<u8> {
        self.job_bytes().render(&self.job)
    }

    pub(super) fn job_bytes(&self) -> &Arc<JobBytes> {
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
    pub(super) fn set_status(&mut self, status: &str, idx: u64) {
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
    pub(super) fn set_stable(&mut self, version: u64, idx: u64) {
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
    pub(super) bytes: Vec<u8>,
    /// `(field, byte range of its value)`, in order; empty when a field is missing
    /// (then every form is serialised afresh).
    pub(super) spans: Vec<(&'static str, std::ops::Range<usize>)>,
}

impl JobBytes {
    /// The fields whose values are spliced in.
    const IN_PLACE: [&'static str; 3] = ["Status", "ModifyIndex", "Stable"];

    pub(super) fn of(job: &Value) -> JobBytes {
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
    pub(super) fn render(&self, job: &Value) -> Vec<u8> {
        if self.spans.is_empty() {
            return serde_json::to_vec(job).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 16);
        self.write_with(self.spans.iter().map(|(f, _)| &job[*f]), &mut out);
        out
    }

    /// Appends these bytes with the in-place fields' values taken from `values` (in
    /// the order of the spans).
    pub(super) fn write_with<'a>(
        &self,
        values: impl Iterator<Item = &'a Value>,
        out: &mut Vec<u8>,
    ) {
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
    pub(super) groups: Vec<(String, i64)>,
    /// Whether a blocked evaluation queues allocations (not for stopped, periodic or
    /// parameterized jobs).
    pub(super) queues: bool,
}

impl StubParts {
    const MARK: &'static [u8] = b"\"JobSummary\":null";

    pub(super) fn of(job: &Value) -> StubParts {
        let v = super::super::jobs::stub_value(job, Value::Null, false);
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

/// A job's `JobSummary`, serialised exactly as the JSON object the API returns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct JobSummary<'a> {
    pub(super) children: Children,
    pub(super) create_index: u64,
    #[serde(rename = "JobID")]
    pub(super) job_id: &'a str,
    pub(super) modify_index: u64,
    pub(super) namespace: &'a str,
    pub(super) summary: GroupSummaries,
}

/// `JobSummary.Children` (no parameterized or periodic children are simulated).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Children {
    pub(super) dead: i64,
    pub(super) pending: i64,
    pub(super) running: i64,
}

/// One task group's allocation counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GroupSummary {
    pub(super) complete: i64,
    pub(super) failed: i64,
    pub(super) lost: i64,
    pub(super) queued: i64,
    pub(super) running: i64,
    pub(super) starting: i64,
    pub(super) unknown: i64,
}

/// Group name → counts, in task group order.
#[derive(Debug)]
pub(super) struct GroupSummaries {
    pub(super) parts: Arc<StubParts>,
    pub(super) counts: Vec<GroupSummary>,
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
