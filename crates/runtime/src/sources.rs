//! [`ListSource`] adapters on the `steward-hashi` clients: a Consul KV prefix (the
//! operator's spec and status watches, one per namespace shard). The operator's other
//! watches decode only the facts they keep, so their sources live with their caches.

use std::time::Duration;

use steward_hashi::consul::KvPair;
use steward_hashi::{ConsulClient, Error, QueryOptions};

use crate::watcher::{ListSource, Listing, ListingEntry};

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
