//! The event stream (`topic=Job&topic=Deployment`, one connection): job facts and
//! deployments; on every (re)connect the deployments are listed once.

use std::collections::BTreeMap;

use super::*;

/// How often the deployments are listed per namespace when the server has no
/// `namespace=*` (one request per namespace each time).
pub const PER_NAMESPACE_POLL: Duration = Duration::from_secs(5);

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

/// A deployment as the cache keeps it: without the fields the operator never reads
/// (`extra` of the deployment and of each group). With the last
/// [`DEPLOYMENTS_PER_JOB`] deployments of 10,000 jobs kept, those unread fields were
/// the largest part of this cache (tens of MB at 10,000 specs).
/// The part of a `Job` event's payload the cache reads: `{"Job": {...}}`, decoded from
/// the payload's text.
#[derive(Deserialize)]
struct JobPayload {
    #[serde(rename = "Job")]
    job: Option<EventJob>,
}

/// The part of a `Deployment` event's payload the cache reads.
#[derive(Deserialize)]
struct DeploymentPayload {
    #[serde(rename = "Deployment")]
    deployment: Option<Deployment>,
}

fn compact(mut d: Deployment) -> Deployment {
    d.extra = serde_json::Map::new();
    for group in d.task_groups.values_mut() {
        group.extra = serde_json::Map::new();
    }
    d
}

impl NomadCache {
    /// Applies one frame of the event stream and publishes the jobs (with their owners)
    /// and the owned jobs' deployments it changed.
    pub fn apply_frame(&self, frame: &EventFrame, changes: &Changes) {
        for e in &frame.events {
            match e.topic.as_str() {
                "Job" => {
                    // A missing, non-object or undecodable `Job` is skipped, as before.
                    let Ok(JobPayload { job: Some(job) }) = e.payload.decode() else {
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
                    // Decoded straight from the payload's text.
                    let Ok(DeploymentPayload {
                        deployment: Some(d),
                    }) = e.payload.decode()
                    else {
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

    /// Lists every deployment, then follows the event stream; on any failure starts
    /// over (with backoff). Runs until dropped. Without `namespace_wildcard` (Nomad <
    /// 1.2 takes `namespace=*` as a namespace named `*`, so the stream and the list show
    /// nothing), the deployments of each namespace are listed every
    /// [`PER_NAMESPACE_POLL`] instead: slower, but rollouts are seen.
    pub async fn run_events(
        self: Arc<Self>,
        client: NomadClient,
        changes: Changes,
        namespace_wildcard: bool,
    ) {
        let mut backoff = Backoff::new(
            BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(30))
                .reset_after(Duration::from_secs(30)),
        );
        loop {
            let followed = if namespace_wildcard {
                self.follow(&client, &changes).await
            } else {
                self.poll_per_namespace(&client, &changes).await
            };
            match followed {
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

    /// Lists the namespaces, then each one's deployments, every [`PER_NAMESPACE_POLL`];
    /// returns on the first failure.
    async fn poll_per_namespace(
        &self,
        client: &NomadClient,
        changes: &Changes,
    ) -> Result<(), String> {
        let transport = client.transport();
        loop {
            let namespaces = transport
                .call(RequestSpec::get("/v1/namespaces"), |raw| {
                    raw.json::<Option<Vec<serde_json::Value>>>()
                })
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let mut all = Vec::new();
            for name in namespaces
                .iter()
                .filter_map(|n| n.get("Name").and_then(serde_json::Value::as_str))
            {
                let spec = QueryOptions::new()
                    .namespace(name)
                    .apply(
                        steward_hashi::Product::Nomad,
                        RequestSpec::get("/v1/deployments"),
                    )
                    .map_err(|e| e.to_string())?;
                let listed = transport
                    .call(spec, |raw| raw.json::<Option<Vec<Deployment>>>())
                    .await
                    .map_err(|e| e.to_string())?;
                all.extend(listed.unwrap_or_default());
            }
            self.replace_deployments(all, changes);
            self.deployments_health.succeeded();
            tokio::time::sleep(PER_NAMESPACE_POLL).await;
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
