//! Nomad jobs and deployments.
//!
//! - The job list (`GET /v1/jobs?meta=true&namespace=*`, blocking) is the authority on
//!   which jobs exist, with their `JobModifyIndex` and ownership `Meta`.
//! - The event stream (`topic=Job&topic=Deployment`, one connection) carries full job
//!   bodies and deployments; on every (re)connect the deployments are listed once. Of a
//!   job body only its [`JobFacts`] are kept (version, stability, owner: what the
//!   rollout and the status need), never the body: 10,000 canonicalised jobs are
//!   hundreds of megabytes. A reconcile that needs the body (to diff it) reads it.
//!   Lost or reordered events cost at most that read: facts are used only while their
//!   `JobModifyIndex` equals the list's.
//! - Our own registrations are kept as an overlay until the list shows them.

use std::collections::{BTreeSet, HashMap};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde_json::Value;
use steward_hashi::nomad::{Deployment, EventFrame, EventStreamOptions, Job};
use steward_hashi::{NomadClient, QueryOptions, RequestSpec};
use steward_render::names;
use steward_runtime::backoff::{Backoff, BackoffConfig};
use steward_runtime::watcher::{Event, ListSource, Listing, ListingEntry, WatcherConfig, watcher};

use crate::rollout::JobState;

use super::{Change, Changes, Health, ObjectChange, Observed, Source};
use crate::key::SpecKey;

/// Deployments kept per job (newest first).
const DEPLOYMENTS_PER_JOB: usize = 4;

/// `(version, steward.hash)` of one job's newest versions, sorted by version.
type VersionHashes = Vec<(u64, Option<String>)>;

/// Job versions whose `steward.hash` is remembered per job (the newest).
const VERSIONS_PER_JOB: usize = 8;

/// `<namespace>/<job id>`, the key of jobs in this cache (and the spec key of an owned
/// job, by the naming rules).
#[must_use]
pub fn job_key(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}

/// The fields of a job list entry the operator uses. Decoding only these (serde skips
/// the rest, e.g. the per-group `JobSummary`) keeps relisting 10,000 jobs cheap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobStub {
    /// Job ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Stopped.
    #[serde(default)]
    pub stop: bool,
    /// Moves on any job write.
    #[serde(default)]
    pub modify_index: u64,
    /// Moves on spec changes.
    #[serde(default)]
    pub job_modify_index: u64,
    /// The owning spec key, from the ownership `Meta` (listed with `meta=true`).
    /// Decoded straight from the list: a `BTreeMap` of the whole `Meta` cost ~800 bytes
    /// a job, the largest part of 10,000 cached stubs, for the two keys read here.
    #[serde(rename = "Meta", default, deserialize_with = "owner_of_meta")]
    pub owner: Option<String>,
}

/// The owner in a job list entry's `Meta` (a map of strings, or `null`): its
/// `steward.spec` when `steward.managed-by` is ours, as [`names::owner_from_meta`] reads
/// a job body's.
fn owner_of_meta<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of strings or null")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            // Every value is decoded as a string, as the map of strings this replaces
            // was (a non-string value is still an error); a repeated key: the last wins.
            let (mut managed_by, mut spec) = (None, None);
            while let Some(key) = map.next_key::<String>()? {
                let value: String = map.next_value()?;
                match key.as_str() {
                    names::META_MANAGED_BY => managed_by = Some(value),
                    names::META_SPEC => spec = Some(value),
                    _ => {}
                }
            }
            if managed_by.as_deref() != Some(names::MANAGED_BY) {
                return Ok(None);
            }
            Ok(spec
                .as_deref()
                .and_then(names::SpecKey::parse)
                .map(|k| k.to_string()))
        }
    }
    deserializer.deserialize_option(Visit)
}

/// What the operator keeps of a job body: identity and the few fields the rollout and
/// the status need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobFacts {
    /// Moves on spec changes.
    pub job_modify_index: u64,
    /// Moves on any job write.
    pub modify_index: u64,
    /// Version.
    pub version: u64,
    /// A deployment of this version succeeded.
    pub stable: bool,
    /// Stopped.
    pub stop: bool,
    /// The owning spec key, from the ownership `Meta`.
    pub owner: Option<String>,
}

impl JobFacts {
    /// The facts of a job body.
    #[must_use]
    pub fn of(job: &Job) -> Self {
        Self {
            job_modify_index: job.view.job_modify_index,
            modify_index: job.view.modify_index,
            version: job.view.version,
            stable: job.view.stable,
            stop: job.view.stop,
            owner: names::owner_from_meta(job.raw.get("Meta").unwrap_or(&Value::Null))
                .map(|k| k.to_string()),
        }
    }

    /// The rollout's view of the job.
    #[must_use]
    pub fn state(&self) -> JobState {
        JobState {
            job_modify_index: self.job_modify_index,
            version: Some(self.version),
            stable: self.stable,
            stop: self.stop,
        }
    }
}

#[derive(Debug, Clone)]
struct Overlay {
    /// `JobModifyIndex` of the job we replaced (`None` = it did not exist).
    base: Option<u64>,
    /// What we wrote (`None` = we purged it).
    job: Option<WrittenJob>,
}

/// What is kept of a job we registered until the list shows it: not the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenJob {
    /// The job as the register answer left it (its new `JobModifyIndex`).
    pub state: JobState,
    /// [`steward_render::value_digest`] of the `Job` object we sent.
    pub digest: u64,
}

/// A job as the cache knows it.
#[derive(Debug, Clone)]
pub enum CachedJob {
    /// Not listed.
    Absent,
    /// We registered it and the list has not caught up.
    Written(WrittenJob),
    /// Listed: read the body when it is needed.
    Listed(Arc<JobStub>),
}

/// Nomad jobs and deployments.
#[derive(Debug)]
pub struct NomadCache {
    stubs: RwLock<HashMap<String, Arc<JobStub>>>,
    facts: Mutex<HashMap<String, JobFacts>>,
    overlay: Mutex<HashMap<String, Overlay>>,
    deployments: RwLock<HashMap<String, Vec<Arc<Deployment>>>>,
    /// `steward.hash` by job version, the newest [`VERSIONS_PER_JOB`] per job.
    versions: Mutex<HashMap<String, VersionHashes>>,
    namespaces: Mutex<Option<BTreeSet<String>>>,
    jobs_health: Arc<Health>,
    deployments_health: Arc<Health>,
}

impl Default for NomadCache {
    fn default() -> Self {
        Self::new()
    }
}

fn newer(a: &JobFacts, b: &JobFacts) -> bool {
    (a.job_modify_index, a.modify_index) >= (b.job_modify_index, b.modify_index)
}

impl NomadCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self {
            stubs: RwLock::new(HashMap::new()),
            facts: Mutex::new(HashMap::new()),
            overlay: Mutex::new(HashMap::new()),
            deployments: RwLock::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(None),
            jobs_health: Arc::new(Health::new("nomad-jobs")),
            deployments_health: Arc::new(Health::new("nomad-deployments")),
        }
    }

    /// Health of the job list.
    #[must_use]
    pub fn jobs_health(&self) -> &Health {
        &self.jobs_health
    }

    /// Health of the event stream / deployments.
    #[must_use]
    pub fn deployments_health(&self) -> &Health {
        &self.deployments_health
    }

    /// The list entry of a job.
    #[must_use]
    pub fn stub(&self, key: &str) -> Option<Arc<JobStub>> {
        self.stubs.read().get(key).cloned()
    }

    /// The job `key` (`<ns>/<id>`).
    #[must_use]
    pub fn job(&self, key: &str) -> CachedJob {
        let stub = self.stub(key);
        {
            let mut overlay = self.overlay.lock();
            if let Some(o) = overlay.get(key) {
                if stub.as_ref().map(|s| s.job_modify_index) == o.base {
                    return match &o.job {
                        Some(j) => CachedJob::Written(*j),
                        None => CachedJob::Absent,
                    };
                }
                overlay.remove(key);
            }
        }
        match stub {
            Some(stub) => CachedJob::Listed(stub),
            None => CachedJob::Absent,
        }
    }

    /// The rollout's view of the listed job: from its facts when they are of the listed
    /// `JobModifyIndex`, else `None` (the caller knows more, or reads the job).
    #[must_use]
    pub fn job_state(&self, key: &str) -> Option<JobState> {
        let stub = self.stub(key)?;
        let facts = self.facts.lock();
        let f = facts.get(key)?;
        (f.job_modify_index == stub.job_modify_index && f.stop == stub.stop).then(|| f.state())
    }

    /// Keeps the facts of a job body (read directly, or from the event stream).
    pub fn store_body(&self, job: &Job) {
        let key = job_key(&job.view.namespace, &job.view.id);
        self.store_facts(key, JobFacts::of(job));
    }

    fn store_facts(&self, key: String, facts: JobFacts) {
        let mut all = self.facts.lock();
        match all.get(&key) {
            Some(old) if !newer(&facts, old) => {}
            _ => {
                all.insert(key, facts);
            }
        }
    }

    /// Records our registration (`base` = the replaced `JobModifyIndex`, `None` when
    /// created) or purge (`job` = `None`).
    pub fn record_write(&self, key: &str, base: Option<u64>, job: Option<WrittenJob>) {
        self.overlay
            .lock()
            .insert(key.to_owned(), Overlay { base, job });
    }

    /// Drops our write of `key` once the list shows something other than what it
    /// replaced (`listed`: the listed `JobModifyIndex`, `None` = not listed): the list
    /// has caught up, and the body we sent need not be kept.
    fn forget_seen_write(&self, key: &str, listed: Option<u64>) {
        let mut overlay = self.overlay.lock();
        if overlay.get(key).is_some_and(|o| o.base != listed) {
            overlay.remove(key);
        }
    }

    /// Forgets our unseen writes.
    pub fn clear_overlay(&self) {
        self.overlay.lock().clear();
    }

    /// The deployments of a job, newest first.
    #[must_use]
    pub fn deployments(&self, key: &str) -> Vec<Arc<Deployment>> {
        self.deployments
            .read()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// The `steward.hash` of one job version, when looked up before (`Some(None)` =
    /// that version has no hash).
    #[must_use]
    pub fn version_hash(&self, key: &str, version: u64) -> Option<Option<String>> {
        let all = self.versions.lock();
        let job = all.get(key)?;
        job.iter()
            .find(|(v, _)| *v == version)
            .map(|(_, hash)| hash.clone())
    }

    /// Every `(version, steward.hash)` remembered of a job.
    #[must_use]
    pub fn version_hashes(&self, key: &str) -> Vec<(u64, Option<String>)> {
        self.versions.lock().get(key).cloned().unwrap_or_default()
    }

    /// Remembers the hashes of job versions (versions never change).
    pub fn store_version_hashes(&self, key: &str, versions: &[Job]) {
        for v in versions {
            self.store_version_hash(
                key,
                v.view.version,
                v.view.meta.get(names::META_HASH).cloned(),
            );
        }
    }

    /// Remembers the hash of one job version (`None`: it has none, or it is gone).
    pub fn store_version_hash(&self, key: &str, version: u64, hash: Option<String>) {
        let mut all = self.versions.lock();
        let job = all.entry(key.to_owned()).or_default();
        match job.binary_search_by_key(&version, |(v, _)| *v) {
            Ok(at) => job[at].1 = hash,
            Err(at) => job.insert(at, (version, hash)),
        }
        // Only recent versions are ever compared (the deployments kept per job).
        if job.len() > VERSIONS_PER_JOB {
            job.remove(0);
        }
    }

    /// Known Nomad namespaces (`None` until listed).
    #[must_use]
    pub fn namespaces(&self) -> Option<BTreeSet<String>> {
        self.namespaces.lock().clone()
    }

    /// Sets the known namespaces.
    pub fn set_namespaces(&self, namespaces: BTreeSet<String>) {
        *self.namespaces.lock() = Some(namespaces);
    }

    /// Adds one namespace to the known ones.
    pub fn add_namespace(&self, namespace: &str) {
        if let Some(set) = self.namespaces.lock().as_mut() {
            set.insert(namespace.to_owned());
        }
    }

    /// Every owned job as `(owner key, job key, stopped)`.
    #[must_use]
    pub fn owned(&self) -> Vec<(String, String, bool)> {
        self.stubs
            .read()
            .iter()
            .filter_map(|(k, s)| stub_owner(s).map(|o| (o, k.clone(), s.stop)))
            .collect()
    }

    fn owner_of(&self, key: &str) -> Option<String> {
        if let Some(s) = self.stub(key) {
            return stub_owner(&s);
        }
        self.facts.lock().get(key)?.owner.clone()
    }
}

mod events;
mod list;

pub use list::{JobListSource, stub_owner};

#[cfg(test)]
mod tests;
