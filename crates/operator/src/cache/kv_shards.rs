//! A KV prefix watched in shards, so that one edit does not re-read every document under
//! the prefix.
//!
//! Consul answers a blocking read of a prefix with the whole prefix (10,000 specs are
//! about 12 MB), and it has no way to list only what changed. So the prefix is split
//! along its first level, which for specs and statuses is the namespace:
//!
//! - one blocking `GET /v1/kv/<prefix>?keys&separator=/` lists the shards: the folders
//!   `<prefix><ns>/` and any key stored directly under the prefix. Its index is the
//!   prefix's, so it wakes on every edit, but its answer is a few bytes per folder;
//! - each shard has its own recursive blocking watch, so an edit re-reads only the
//!   shard it is in.
//!
//! A shard that a successful folder listing no longer shows is stopped and reported as
//! an empty listing (its keys are gone: positive knowledge). The whole is *synced* once
//! every shard of the first folder listing has listed; it is *fresh* while neither the
//! folder watch nor any shard has failed since its last success ([`ShardedKv::is_fresh`]).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;
use steward_hashi::consul::KvPair;
use steward_hashi::{ConsulClient, QueryOptions};
use steward_runtime::sources::ConsulKvSource;
use steward_runtime::watcher::{Event, ListSource, Listing, ListingEntry, WatcherConfig, watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Health, Observed};

/// Where the events of a sharded watch go.
pub trait ShardSink: Send + Sync + 'static {
    /// The complete listing of one shard (full KV keys); replaces whatever the sink held
    /// in that shard (see [`in_shard`]). An empty listing: the shard is gone.
    fn listed(&self, shard: &str, pairs: Vec<KvPair>);
    /// One key was created or changed.
    fn applied(&self, pair: KvPair);
    /// One key is gone (a successful listing of its shard lacks it).
    fn deleted(&self, kv_key: &str);
    /// Every shard of the first folder listing has listed once.
    fn synced(&self);
}

/// Whether the full KV key `kv_key` belongs to `shard` (a folder `<prefix><ns>/`, or a
/// key stored directly under the prefix).
#[must_use]
pub fn in_shard(shard: &str, kv_key: &str) -> bool {
    if shard.ends_with('/') {
        kv_key.starts_with(shard)
    } else {
        kv_key == shard
    }
}

/// `GET /v1/kv/<prefix>?keys&separator=/`, blocking: the shards of a prefix.
#[derive(Clone, Debug)]
struct ShardListSource {
    client: ConsulClient,
    prefix: String,
    wait: Duration,
}

impl ListSource for ShardListSource {
    type Key = String;
    type Item = ();
    type Error = steward_hashi::Error;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, ()>, Self::Error> {
        let r = self
            .client
            .kv_keys(
                &self.prefix,
                Some("/"),
                &QueryOptions::blocking(min_index, self.wait),
            )
            .await?;
        Ok(Listing {
            index: r.meta.index,
            known_leader: r.meta.known_leader,
            // A shard has no version of its own: it is there or not.
            entries: r
                .value
                .into_iter()
                .map(|k| ListingEntry::new(k, 0, ()))
                .collect(),
        })
    }
}

/// Settings of a sharded watch.
#[derive(Clone, Debug)]
pub struct ShardedKvConfig {
    /// Blocking wait of every read.
    pub wait: Duration,
    /// The folder watch's settings (loop guard, backoff).
    pub shards: WatcherConfig,
    /// Each shard watch's settings.
    pub shard: WatcherConfig,
    /// Spacing of a shard's reads per entry of its last answer (see [`Observed`]).
    pub per_entry: Duration,
    /// While leading, how long a shard may wait before relisting (see
    /// [`Observed::hold_while_leader`]).
    pub leader_hold: Option<(
        tokio::sync::watch::Receiver<steward_runtime::Leadership>,
        Duration,
    )>,
}

/// A shard's watch task, aborted when dropped: the sharded watch runs until its own
/// task is dropped (the operator stops), and its shards must stop with it rather than
/// go on watching, detached, a server that may be gone (`steward dev` stops its
/// simulator right after the operator).
struct ShardTask(Option<JoinHandle<()>>);

impl ShardTask {
    /// Stops the task and waits until it has.
    async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ShardTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// One KV prefix, watched in shards; see the module docs.
#[derive(Debug)]
pub struct ShardedKv {
    health: Arc<Health>,
    /// Shards whose last read failed.
    stale: Mutex<BTreeSet<String>>,
}

impl ShardedKv {
    /// A sharded watch reporting to `health`.
    #[must_use]
    pub fn new(health: Arc<Health>) -> Self {
        Self {
            health,
            stale: Mutex::new(BTreeSet::new()),
        }
    }

    /// Synced, and neither the folder watch nor any shard failed since its last
    /// success.
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.health.is_fresh() && self.stale.lock().is_empty()
    }

    /// Watches `prefix` (with its trailing `/`) until the task is dropped.
    pub async fn run<S: ShardSink>(
        self: Arc<Self>,
        client: ConsulClient,
        prefix: String,
        config: ShardedKvConfig,
        sink: Arc<S>,
    ) {
        let source = ShardListSource {
            client: client.clone(),
            prefix: prefix.clone(),
            wait: config.wait,
        };
        let mut folders = pin!(watcher(
            Observed::new(source, self.health.clone(), Duration::ZERO),
            config.shards.clone()
        ));
        let mut running: BTreeMap<String, ShardTask> = BTreeMap::new();
        let (listed_tx, mut listed_rx) = mpsc::unbounded_channel::<String>();
        // Until synced: the shards of the first folder listing not listed yet.
        let mut awaiting: Option<BTreeSet<String>> = None;
        let mut listed_early: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                event = folders.next() => {
                    let Some(event) = event else { break };
                    let (start, stop): (Vec<String>, Vec<String>) = match event {
                        Event::Restarted(all) => {
                            let want: BTreeSet<String> = all.into_iter().map(|(k, ())| k).collect();
                            let stop = running.keys().filter(|s| !want.contains(*s)).cloned().collect();
                            let start = want.iter().filter(|s| !running.contains_key(*s)).cloned().collect();
                            if awaiting.is_none() {
                                awaiting = Some(want.difference(&listed_early).cloned().collect());
                            }
                            (start, stop)
                        }
                        Event::Applied(shard, ()) if !running.contains_key(&shard) => (vec![shard], Vec::new()),
                        Event::Deleted(shard) => (Vec::new(), vec![shard]),
                        Event::Applied(..) | Event::Error(_) => (Vec::new(), Vec::new()),
                    };
                    for shard in stop {
                        if let Some(task) = running.remove(&shard) {
                            // Wait for it to stop so that nothing it lists lands after
                            // the shard was emptied.
                            task.stop().await;
                        }
                        self.stale.lock().remove(&shard);
                        sink.listed(&shard, Vec::new());
                        if let Some(a) = awaiting.as_mut() {
                            a.remove(&shard);
                        }
                    }
                    for shard in start {
                        let task = tokio::spawn(self.clone().run_shard(
                            client.clone(),
                            shard.clone(),
                            config.clone(),
                            sink.clone(),
                            listed_tx.clone(),
                        ));
                        running.insert(shard, ShardTask(Some(task)));
                    }
                }
                Some(shard) = listed_rx.recv() => {
                    match awaiting.as_mut() {
                        Some(a) => { a.remove(&shard); }
                        None => { listed_early.insert(shard); }
                    }
                }
            }
            if awaiting.as_ref().is_some_and(BTreeSet::is_empty) && !self.health.is_synced() {
                sink.synced();
                self.health.mark_synced();
                listed_early.clear();
            }
        }
        // `running` drops here, or where this future is dropped: its shards stop.
    }

    async fn run_shard<S: ShardSink>(
        self: Arc<Self>,
        client: ConsulClient,
        shard: String,
        config: ShardedKvConfig,
        sink: Arc<S>,
        listed: mpsc::UnboundedSender<String>,
    ) {
        // A direct key `<prefix>foo` is listed as a prefix: `foobar` belongs to another
        // shard, so every event is filtered to this shard.
        let source = ConsulKvSource::new(client, shard.clone()).wait(config.wait);
        // Each shard's own freshness; its failures reach the shared health (and so the
        // log, `/readyz` and the metrics) as well.
        let own = Arc::new(Health::new(self.health.name()).quiet());
        let mut observed = Observed::new(source, own.clone(), config.per_entry);
        if let Some((leadership, hold)) = config.leader_hold.clone() {
            observed = observed.hold_while_leader(leadership, hold);
        }
        let mut events = pin!(watcher(observed, config.shard.clone()));
        while let Some(event) = events.next().await {
            match event {
                Event::Restarted(all) => {
                    let pairs = all
                        .into_iter()
                        .map(|(_, pair)| pair)
                        .filter(|pair| in_shard(&shard, &pair.key))
                        .collect();
                    sink.listed(&shard, pairs);
                    own.mark_synced();
                    // The receiver lives as long as the folder loop that owns this task.
                    let _ = listed.send(shard.clone());
                }
                Event::Applied(_, pair) if in_shard(&shard, &pair.key) => sink.applied(pair),
                Event::Deleted(key) if in_shard(&shard, &key) => sink.deleted(&key),
                Event::Applied(..) | Event::Deleted(_) => {}
                Event::Error(error) => {
                    self.stale.lock().insert(shard.clone());
                    self.health
                        .failed(&format!("{shard}: {}", crate::error::chain(&*error.source)));
                    continue;
                }
            }
            if own.is_fresh() {
                self.stale.lock().remove(&shard);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn folders_hold_their_keys_and_direct_keys_only_themselves() {
        assert!(in_shard("steward/specs/a/", "steward/specs/a/web"));
        assert!(!in_shard("steward/specs/a/", "steward/specs/ab/web"));
        assert!(in_shard("steward/specs/foo", "steward/specs/foo"));
        assert!(!in_shard("steward/specs/foo", "steward/specs/foobar"));
        assert!(!in_shard("steward/specs/foo", "steward/specs/foo/x"));
    }

    /// Counts what a sharded watch hands over.
    #[derive(Default)]
    struct Counting(Mutex<usize>);

    impl ShardSink for Counting {
        fn listed(&self, _shard: &str, _pairs: Vec<KvPair>) {
            *self.0.lock() += 1;
        }
        fn applied(&self, _pair: KvPair) {
            *self.0.lock() += 1;
        }
        fn deleted(&self, _kv_key: &str) {
            *self.0.lock() += 1;
        }
        fn synced(&self) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_watch_stops_every_shard_watch() {
        use steward_hashi::{ConsulConfig, WriteOptions};
        use steward_sim::{Product, Sim, SimConfig};

        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let consul = ConsulClient::new(
            ConsulConfig::default()
                .with_address(&sim.consul_url())
                .unwrap(),
        )
        .unwrap();
        for key in ["p/a/one", "p/b/one"] {
            consul
                .kv_put(key, b"1", None, &WriteOptions::new())
                .await
                .unwrap();
        }
        let (_leader, leadership) =
            tokio::sync::watch::channel(steward_runtime::Leadership::Follower);
        let config = ShardedKvConfig {
            wait: Duration::from_secs(30),
            shards: WatcherConfig::default(),
            shard: WatcherConfig::default(),
            per_entry: Duration::ZERO,
            leader_hold: Some((leadership, Duration::ZERO)),
        };
        let health = Arc::new(Health::new("test"));
        let watch = Arc::new(ShardedKv::new(health.clone()));
        let sink = Arc::new(Counting::default());
        let task = tokio::spawn(watch.run(consul.clone(), "p/".into(), config, sink.clone()));
        tokio::time::timeout(Duration::from_secs(10), health.wait_synced())
            .await
            .expect("the shards list");

        // Each shard watch is in a blocking query; a write wakes it and it relists (what
        // it reported is counted before the write: the relist may beat the put's answer).
        let seen = *sink.0.lock();
        consul
            .kv_put("p/a/two", b"2", None, &WriteOptions::new())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while *sink.0.lock() == seen {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a live shard watch sees the write");

        task.abort();
        let _ = task.await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reads = |sim: &steward_sim::SimHandle| {
            sim.stats().count(Product::Consul, "GET", "/v1/kv/{*key}")
        };
        let before = (reads(&sim), *sink.0.lock());
        consul
            .kv_put("p/a/three", b"3", None, &WriteOptions::new())
            .await
            .unwrap();
        consul
            .kv_put("p/b/two", b"2", None, &WriteOptions::new())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            (reads(&sim), *sink.0.lock()),
            before,
            "no shard watch reads or reports after the watch was dropped"
        );
        tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
            .await
            .expect("the simulator stops");
    }
}
