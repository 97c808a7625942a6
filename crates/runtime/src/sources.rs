//! [`ListSource`] adapters on the `steward-hashi` clients: Consul KV prefix, Consul
//! config entries of a kind, Nomad job list, and polled Vault listings.

use std::time::Duration;

use serde_json::Value;
use steward_hashi::consul::KvPair;
use steward_hashi::nomad::JobListStub;
use steward_hashi::{ConsulClient, Error, NomadClient, QueryOptions, VaultClient};

use crate::watcher::{ListSource, Listing, ListingEntry, PollSource};

/// Default blocking wait of the adapters (well under both servers' caps).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// `GET /v1/kv/<prefix>?recurse`, blocking. Keys are the full KV keys.
#[derive(Clone, Debug)]
pub struct ConsulKvSource {
    client: ConsulClient,
    prefix: String,
    wait: Duration,
}

impl ConsulKvSource {
    /// Watches every key under `prefix` (include the trailing `/` to avoid matching
    /// `specs-old/...` when watching `specs/`).
    pub fn new(client: ConsulClient, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            wait: DEFAULT_WAIT,
        }
    }

    /// Sets the blocking wait.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl ListSource for ConsulKvSource {
    type Key = String;
    type Item = KvPair;
    type Error = Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, KvPair>, Error> {
        let r = self
            .client
            .kv_list(&self.prefix, &QueryOptions::blocking(min_index, self.wait))
            .await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: r
                .value
                .into_iter()
                .map(|pair| ListingEntry::new(pair.key.clone(), pair.modify_index, pair))
                .collect(),
        })
    }
}

/// `GET /v1/config/<kind>`, blocking. Keys are entry names; items the raw JSON (the
/// operator decodes the kinds it owns and ignores the rest).
#[derive(Clone, Debug)]
pub struct ConsulConfigEntrySource {
    client: ConsulClient,
    kind: String,
    wait: Duration,
}

impl ConsulConfigEntrySource {
    /// Watches every config entry of `kind`.
    pub fn new(client: ConsulClient, kind: impl Into<String>) -> Self {
        Self {
            client,
            kind: kind.into(),
            wait: DEFAULT_WAIT,
        }
    }

    /// Sets the blocking wait.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl ListSource for ConsulConfigEntrySource {
    type Key = String;
    type Item = Value;
    type Error = Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, Value>, Error> {
        let r = self
            .client
            .config_list_raw(&self.kind, &QueryOptions::blocking(min_index, self.wait))
            .await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: r
                .value
                .into_iter()
                .map(|entry| {
                    let name = entry
                        .get("Name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let modify = entry
                        .get("ModifyIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or_default();
                    ListingEntry::new(name, modify, entry)
                })
                .collect(),
        })
    }
}

/// `GET /v1/jobs?meta=true&namespace=*`, blocking. Keys are `<namespace>/<job id>`.
#[derive(Clone, Debug)]
pub struct NomadJobSource {
    client: NomadClient,
    namespace: String,
    wait: Duration,
}

impl NomadJobSource {
    /// Watches the jobs of every namespace.
    pub fn new(client: NomadClient) -> Self {
        Self {
            client,
            namespace: "*".into(),
            wait: DEFAULT_WAIT,
        }
    }

    /// Watches one namespace only.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the blocking wait.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl ListSource for NomadJobSource {
    type Key = String;
    type Item = JobListStub;
    type Error = Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, JobListStub>, Error> {
        let opts = QueryOptions::blocking(min_index, self.wait).namespace(self.namespace.clone());
        let r = self.client.list_jobs(None, true, &opts).await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            entries: r
                .value
                .into_iter()
                .map(|job| {
                    let key = format!("{}/{}", job.namespace, job.id);
                    ListingEntry::new(key, job.modify_index, job)
                })
                .collect(),
        })
    }
}

fn names(list: Vec<String>, prefix: Option<&str>) -> Vec<ListingEntry<String, String>> {
    list.into_iter()
        .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
        .map(|n| ListingEntry::new(n.clone(), 0, n))
        .collect()
}

/// Vault ACL policy names (those starting with `name_prefix`, when given), listed every
/// `interval` (Vault has no blocking queries). Items are the names; a key appears as
/// `Applied` once and as `Deleted` when a successful list no longer has it.
pub fn vault_policy_source(
    client: VaultClient,
    interval: Duration,
    name_prefix: Option<String>,
) -> impl ListSource<Key = String, Item = String, Error = Error> {
    PollSource::new(interval, move || {
        let client = client.clone();
        let prefix = name_prefix.clone();
        async move { Ok(names(client.list_policies().await?, prefix.as_deref())) }
    })
}

/// Vault JWT auth role names on `mount`, listed every `interval`.
pub fn vault_jwt_role_source(
    client: VaultClient,
    mount: impl Into<String>,
    interval: Duration,
    name_prefix: Option<String>,
) -> impl ListSource<Key = String, Item = String, Error = Error> {
    let mount = mount.into();
    PollSource::new(interval, move || {
        let client = client.clone();
        let mount = mount.clone();
        let prefix = name_prefix.clone();
        async move {
            Ok(names(
                client.list_jwt_roles(&mount).await?,
                prefix.as_deref(),
            ))
        }
    })
}
