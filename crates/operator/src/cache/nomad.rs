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
use serde_json::Value;
use std::collections::BTreeMap;

use serde::Deserialize;
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
    /// Meta (listed with `meta=true`).
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
}

/// `GET /v1/jobs?meta=true&namespace=*`, blocking, decoded into [`JobStub`]s keyed
/// `<namespace>/<id>`.
#[derive(Clone, Debug)]
pub struct JobListSource {
    client: NomadClient,
    wait: Duration,
}

impl JobListSource {
    /// Lists every namespace's jobs, blocking for at most `wait`.
    #[must_use]
    pub fn new(client: NomadClient, wait: Duration) -> Self {
        Self { client, wait }
    }
}

impl ListSource for JobListSource {
    type Key = String;
    type Item = JobStub;
    type Error = steward_hashi::Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, JobStub>, Self::Error> {
        let opts = QueryOptions::blocking(min_index, self.wait).namespace("*");
        let spec = steward_hashi::nomad::job::list(None, true, &opts)?;
        let r = self
            .client
            .transport()
            .call(spec, |raw| raw.json_with_meta::<Option<Vec<JobStub>>>())
            .await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: r
                .value
                .unwrap_or_default()
                .into_iter()
                .map(|job| {
                    ListingEntry::new(job_key(&job.namespace, &job.id), job.modify_index, job)
                })
                .collect(),
        })
    }
}

/// The owner recorded in a job list stub's `Meta`.
#[must_use]
pub fn stub_owner(stub: &JobStub) -> Option<String> {
    let meta = stub.meta.as_ref()?;
    if meta.get(names::META_MANAGED_BY).map(String::as_str) != Some(names::MANAGED_BY) {
        return None;
    }
    let key = meta.get(names::META_SPEC)?;
    names::SpecKey::parse(key).map(|k| k.to_string())
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

/// The fields of an event-stream job body the cache decodes (straight from the payload,
/// without copying the body).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventJob {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
    #[serde(default)]
    job_modify_index: u64,
    #[serde(default)]
    modify_index: u64,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    stable: bool,
    #[serde(default)]
    stop: bool,
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

/// A deployment as the cache keeps it: without the fields the operator never reads
/// (`extra` of the deployment and of each group). With the last
/// [`DEPLOYMENTS_PER_JOB`] deployments of 10,000 jobs kept, those unread fields were
/// the largest part of this cache (tens of MB at 10,000 specs).
fn compact(mut d: Deployment) -> Deployment {
    d.extra = serde_json::Map::new();
    for group in d.task_groups.values_mut() {
        group.extra = serde_json::Map::new();
    }
    d
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

    /// Applies one event of the job list watcher and publishes what changed: the job
    /// and its old and new owners (a first listing: every owner before and after).
    pub fn apply_list(&self, event: &Event<String, JobStub>, changes: &Changes) {
        match event {
            Event::Restarted(all) => {
                let map: HashMap<String, Arc<JobStub>> = all
                    .iter()
                    .map(|(k, s)| (k.clone(), Arc::new(s.clone())))
                    .collect();
                let mut keys: Vec<SpecKey> = map
                    .values()
                    .filter_map(|s| stub_owner(s))
                    .map(SpecKey::from)
                    .collect();
                keys.extend(
                    self.stubs
                        .read()
                        .values()
                        .filter_map(|s| stub_owner(s))
                        .map(SpecKey::from),
                );
                self.overlay
                    .lock()
                    .retain(|k, o| o.base == map.get(k).map(|s| s.job_modify_index));
                *self.stubs.write() = map;
                self.jobs_health.mark_synced();
                changes.publish(Change::Replaced {
                    source: Source::NomadJobList,
                    owners: keys,
                });
            }
            Event::Applied(k, stub) => {
                let old = self.stubs.write().insert(k.clone(), Arc::new(stub.clone()));
                self.forget_seen_write(k, Some(stub.job_modify_index));
                let change = ObjectChange::new(
                    k,
                    old.as_deref().and_then(stub_owner).as_deref(),
                    stub_owner(stub).as_deref(),
                );
                changes.publish(Change::object(Source::NomadJobList, change));
            }
            Event::Deleted(k) => {
                let old = self.stubs.write().remove(k);
                self.forget_seen_write(k, None);
                self.facts.lock().remove(k);
                self.deployments.write().remove(k);
                self.versions.lock().remove(k);
                let change =
                    ObjectChange::new(k, old.as_deref().and_then(stub_owner).as_deref(), None);
                changes.publish(Change::object(Source::NomadJobList, change));
            }
            Event::Error(_) => {}
        }
    }

    /// Applies one frame of the event stream and publishes the jobs (with their owners)
    /// and the owned jobs' deployments it changed.
    pub fn apply_frame(&self, frame: &EventFrame, changes: &Changes) {
        for e in &frame.events {
            match e.topic.as_str() {
                "Job" => {
                    let Some(raw) = e.payload.get("Job").filter(|j| j.is_object()) else {
                        continue;
                    };
                    let Ok(job) = EventJob::deserialize(raw) else {
                        continue;
                    };
                    let key = job_key(&job.namespace, &job.id);
                    let meta = job.meta.unwrap_or_default();
                    let owned = meta.get(names::META_MANAGED_BY).map(String::as_str)
                        == Some(names::MANAGED_BY);
                    let owner = meta
                        .get(names::META_SPEC)
                        .filter(|_| owned)
                        .and_then(|k| names::SpecKey::parse(k))
                        .map(|k| k.to_string());
                    self.store_version_hash(&key, job.version, meta.get(names::META_HASH).cloned());
                    let facts = JobFacts {
                        job_modify_index: job.job_modify_index,
                        modify_index: job.modify_index,
                        version: job.version,
                        stable: job.stable,
                        stop: job.stop,
                        owner: owner.clone(),
                    };
                    self.store_facts(key.clone(), facts);
                    let change = ObjectChange::new(&key, None, owner.as_deref());
                    changes.publish(Change::object(Source::NomadJobEvent, change));
                }
                "Deployment" => {
                    let Some(raw) = e.payload.get("Deployment") else {
                        continue;
                    };
                    // Decoded from the borrowed payload: no copy of the whole object.
                    let Ok(d) = Deployment::deserialize(raw) else {
                        continue;
                    };
                    let key = job_key(&d.namespace, &d.job_id);
                    self.upsert_deployment(&key, d);
                    if let Some(owner) = self.owner_of(&key) {
                        let change = ObjectChange::new(&key, None, Some(&owner));
                        changes.publish(Change::object(Source::NomadDeployments, change));
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds or updates one deployment of job `key` (an event, or a direct read).
    pub fn upsert_deployment(&self, key: &str, d: Deployment) {
        let d = compact(d);
        let mut map = self.deployments.write();
        let list = map.entry(key.to_owned()).or_default();
        match list.iter().position(|x| x.id == d.id) {
            Some(i) if list[i].modify_index > d.modify_index => return,
            Some(i) => list[i] = Arc::new(d),
            None => list.push(Arc::new(d)),
        }
        list.sort_by_key(|d| std::cmp::Reverse(d.create_index));
        list.truncate(DEPLOYMENTS_PER_JOB);
    }

    /// Replaces every deployment with a full listing.
    pub fn replace_deployments(&self, all: Vec<Deployment>, changes: &Changes) {
        let mut map: HashMap<String, Vec<Arc<Deployment>>> = HashMap::new();
        for d in all {
            map.entry(job_key(&d.namespace, &d.job_id))
                .or_default()
                .push(Arc::new(compact(d)));
        }
        for list in map.values_mut() {
            list.sort_by_key(|d| std::cmp::Reverse(d.create_index));
            list.truncate(DEPLOYMENTS_PER_JOB);
        }
        let changed: Vec<String> = {
            let old = self.deployments.read();
            map.iter()
                .filter(|(k, v)| old.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect()
        };
        *self.deployments.write() = map;
        self.deployments_health.mark_synced();
        changes.publish(Change::Replaced {
            source: Source::NomadDeployments,
            owners: changed
                .iter()
                .filter_map(|k| self.owner_of(k))
                .map(SpecKey::from)
                .collect(),
        });
    }

    /// Watches the job list until dropped.
    pub async fn run_list<S>(self: Arc<Self>, source: S, config: WatcherConfig, changes: Changes)
    where
        S: ListSource<Key = String, Item = JobStub> + 'static,
    {
        // 50 µs per job: 0.5 s between lists at 10,000 jobs. Hand edits (drift) are seen
        // through this list, so the spacing bounds how late a repair starts; at 300 µs
        // (3 s) drift repair missed its 1 s target, and the extra lists during a cold
        // start cost little next to the writes.
        let mut events = pin!(watcher(
            Observed::new(source, self.jobs_health.clone(), Duration::from_micros(50)),
            config
        ));
        while let Some(event) = events.next().await {
            self.apply_list(&event, &changes);
        }
    }

    /// Lists every deployment, then follows the event stream; on any failure starts
    /// over (with backoff). Runs until dropped.
    pub async fn run_events(self: Arc<Self>, client: NomadClient, changes: Changes) {
        let mut backoff = Backoff::new(
            BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(30))
                .reset_after(Duration::from_secs(30)),
        );
        loop {
            match self.follow(&client, &changes).await {
                Ok(()) => backoff.success(),
                Err(error) => {
                    // `Health` logs it at WARN (rate-limited) with Nomad's answer.
                    self.deployments_health.failed(&error);
                    let delay = backoff.failure();
                    tracing::debug!(%error, ?delay, "nomad event stream interrupted");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn follow(&self, client: &NomadClient, changes: &Changes) -> Result<(), String> {
        let spec = QueryOptions::new()
            .namespace("*")
            .apply(
                steward_hashi::Product::Nomad,
                RequestSpec::get("/v1/deployments"),
            )
            .map_err(|e| e.to_string())?;
        let listed = client
            .transport()
            .call(spec, |raw| raw.json_with_meta::<Option<Vec<Deployment>>>())
            .await
            .map_err(|e| e.to_string())?;
        let start = listed.meta.index;
        self.replace_deployments(listed.value.unwrap_or_default(), changes);
        let opts = EventStreamOptions {
            topics: vec!["Job".into(), "Deployment".into()],
            index: start.saturating_add(1),
            namespace: Some("*".into()),
            ..EventStreamOptions::default()
        };
        let stream = client
            .event_stream(&opts)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = pin!(stream);
        let mut last = start;
        while let Some(item) = stream.next().await {
            let frame = item.map_err(|e| e.to_string())?;
            if frame.index < last {
                // Indexes went backwards (snapshot restore): list again.
                return Err(format!(
                    "event index went backwards ({} after {last})",
                    frame.index
                ));
            }
            last = frame.index;
            self.deployments_health.succeeded();
            self.apply_frame(&frame, changes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
