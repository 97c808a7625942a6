//! The job list: `GET /v1/jobs?meta=true&namespace=*`, blocking, the authority on which
//! jobs exist, with their `JobModifyIndex` and ownership `Meta`.

use super::*;

/// `GET /v1/jobs?meta=true&namespace=*`, blocking, decoded into [`JobStub`]s keyed
/// `<namespace>/<id>`.
#[derive(Clone, Debug)]
pub struct JobListSource {
    client: NomadClient,
    wait: Duration,
    /// Read each job's owner from its body (a Nomad whose stubs carry no `Meta`), once
    /// per job and `JobModifyIndex`: `key → (JobModifyIndex, owner)`.
    owners_read: Option<HashMap<String, (u64, Option<String>)>>,
}

impl JobListSource {
    /// Lists every namespace's jobs, blocking for at most `wait`.
    #[must_use]
    pub fn new(client: NomadClient, wait: Duration) -> Self {
        Self {
            client,
            wait,
            owners_read: None,
        }
    }

    /// For a Nomad whose job list stubs carry no `Meta` (found at start-up): each
    /// job's owner is read from the job itself, once per job and change (one request
    /// per job at start, then one per changed job). Slower, but owned jobs are known,
    /// so garbage collection finds them.
    #[must_use]
    pub fn reading_owners(mut self, read: bool) -> Self {
        self.owners_read = read.then(HashMap::new);
        self
    }

    /// Fills the owners the stubs lack from the jobs' bodies (see
    /// [`Self::reading_owners`]).
    async fn fill_owners(&mut self, stubs: &mut [JobStub]) -> Result<(), steward_hashi::Error> {
        let Some(memo) = self.owners_read.as_mut() else {
            return Ok(());
        };
        let mut seen = std::collections::HashSet::with_capacity(stubs.len());
        for stub in stubs.iter_mut().filter(|s| s.owner.is_none()) {
            let key = job_key(&stub.namespace, &stub.id);
            seen.insert(key.clone());
            if let Some((index, owner)) = memo.get(&key)
                && *index == stub.job_modify_index
            {
                stub.owner.clone_from(owner);
                continue;
            }
            let read = self
                .client
                .get_job(
                    &stub.id,
                    &QueryOptions::new().namespace(stub.namespace.clone()),
                )
                .await?;
            let owner = read.value.and_then(|job| {
                names::owner_from_meta(job.raw.get("Meta").unwrap_or(&Value::Null))
                    .map(|k| k.to_string())
            });
            memo.insert(key, (stub.job_modify_index, owner.clone()));
            stub.owner = owner;
        }
        memo.retain(|k, _| seen.contains(k));
        Ok(())
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
        let mut stubs = r.value.unwrap_or_default();
        self.fill_owners(&mut stubs).await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: stubs
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
    stub.owner.clone()
}

impl NomadCache {
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
}
