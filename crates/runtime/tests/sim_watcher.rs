//! The Consul KV watcher against the simulator, under index resets, leader loss and
//! injected 5xx/connection resets: no spurious deletions, and a map kept from its events
//! (as the operator's caches keep theirs) converges to the KV contents.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;
use steward_hashi::{ConsulClient, ConsulConfig, QueryOptions, RetryPolicy, WriteOptions};
use steward_runtime::backoff::BackoffConfig;
use steward_runtime::sources::ConsulKvSource;
use steward_runtime::watcher::{Event, WatcherConfig, watcher};
use steward_sim::{FaultRule, FaultRuleKind, Product, Sim, SimConfig};

const PREFIX: &str = "steward/specs/";

fn client(url: &str, retry: RetryPolicy) -> ConsulClient {
    let config = ConsulConfig::default()
        .with_address(url)
        .unwrap()
        .with_retry(retry)
        .with_timeout(Duration::from_secs(30));
    ConsulClient::new(config).unwrap()
}

/// Key → (ModifyIndex, value) as Consul has it now.
async fn truth(c: &ConsulClient) -> BTreeMap<String, (u64, Vec<u8>)> {
    c.kv_list(PREFIX, &QueryOptions::new())
        .await
        .unwrap()
        .value
        .into_iter()
        .map(|p| (p.key, (p.modify_index, p.value)))
        .collect()
}

/// Key → (ModifyIndex, value) as the watcher's events say; `None` before the first
/// complete listing.
type Mirror = Arc<Mutex<Option<BTreeMap<String, (u64, Vec<u8>)>>>>;

fn mirror(into: &Mirror, event: &Event<String, steward_hashi::consul::KvPair>) {
    let mut held = into.lock();
    match event {
        Event::Restarted(all) => {
            *held = Some(
                all.iter()
                    .map(|(k, p)| (k.clone(), (p.modify_index, p.value.clone())))
                    .collect(),
            );
        }
        Event::Applied(k, p) => {
            held.get_or_insert_default()
                .insert(k.clone(), (p.modify_index, p.value.clone()));
        }
        Event::Deleted(k) => {
            held.get_or_insert_default().remove(k);
        }
        Event::Error(_) => {}
    }
}

fn event_keys(event: &Event<String, steward_hashi::consul::KvPair>) -> Vec<&String> {
    match event {
        Event::Restarted(all) => all.iter().map(|(k, _)| k).collect(),
        Event::Applied(k, _) | Event::Deleted(k) => vec![k],
        Event::Error(_) => Vec::new(),
    }
}

fn cached(reader: &Mirror) -> BTreeMap<String, (u64, Vec<u8>)> {
    reader.lock().clone().unwrap_or_default()
}

async fn converge(c: &ConsulClient, reader: &Mirror) {
    let mut last = (BTreeMap::new(), BTreeMap::new());
    for _ in 0..400 {
        let want = truth(c).await;
        let have = cached(reader);
        if want == have {
            return;
        }
        last = (want, have);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "store did not converge:\n want {:?}\n have {:?}",
        last.0, last.1
    );
}

async fn put(c: &ConsulClient, key: &str, value: &str) {
    assert!(
        c.kv_put(
            &format!("{PREFIX}{key}"),
            value.as_bytes(),
            None,
            &WriteOptions::new()
        )
        .await
        .unwrap()
    );
}

async fn delete(c: &ConsulClient, key: &str, deleted: &Mutex<Vec<String>>) {
    deleted.lock().push(format!("{PREFIX}{key}"));
    assert!(
        c.kv_delete(&format!("{PREFIX}{key}"), &WriteOptions::new())
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_watcher_converges_without_spurious_deletions_under_faults() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let url = sim.consul_url();
    let admin = client(&url, RetryPolicy::default());
    for (k, v) in [
        ("ns/a", "1"),
        ("ns/b", "1"),
        ("ns/c", "1"),
        ("other/d", "1"),
    ] {
        put(&admin, k, v).await;
    }
    // outside the prefix: never seen
    assert!(
        admin
            .kv_put("steward/status/ns/a", b"x", None, &WriteOptions::new())
            .await
            .unwrap()
    );

    let source =
        ConsulKvSource::new(client(&url, RetryPolicy::none()), PREFIX).wait(Duration::from_secs(2));
    let config = WatcherConfig {
        backoff: BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(500)),
        max_list_rate: 50.0,
        list_burst: 10,
        ..WatcherConfig::default()
    };
    let reader: Mirror = Arc::default();
    let events: Arc<Mutex<Vec<Event<String, steward_hashi::consul::KvPair>>>> = Arc::default();
    let sink = events.clone();
    let held = reader.clone();
    let task = tokio::spawn(async move {
        let stream = watcher(source, config);
        futures::pin_mut!(stream);
        while let Some(e) = stream.next().await {
            mirror(&held, &e);
            sink.lock().push(e);
        }
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        while reader.lock().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("synced");
    assert_eq!(cached(&reader).len(), 4);
    let deleted: Mutex<Vec<String>> = Mutex::default();

    // plain changes
    put(&admin, "ns/e", "1").await;
    put(&admin, "ns/a", "2").await;
    put(&admin, "ns/a", "2").await; // identical: no index bump, no event
    delete(&admin, "ns/b", &deleted).await;
    converge(&admin, &reader).await;

    // snapshot restore: every index goes backwards
    let applied_a = |events: &[Event<String, steward_hashi::consul::KvPair>]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Applied(k, _) if k == &format!("{PREFIX}ns/a")))
            .count()
    };
    let before = applied_a(&events.lock());
    assert!(sim.faults().reset_indexes(Product::Consul));
    put(&admin, "ns/c", "2").await;
    converge(&admin, &reader).await;
    assert!(
        applied_a(&events.lock()) > before,
        "the relist after the reset re-applies unchanged keys"
    );

    // leader loss: reads fail for a while; nothing is deleted meanwhile
    // (longer than the blocking wait, so the watcher's next read meets it)
    let errors = |events: &[Event<String, steward_hashi::consul::KvPair>]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Error(_)))
            .count()
    };
    let before = errors(&events.lock());
    sim.faults()
        .lose_leader(Product::Consul, Some(Duration::from_millis(2500)));
    tokio::time::sleep(Duration::from_millis(2700)).await;
    assert!(errors(&events.lock()) > before, "the leader loss was seen");
    put(&admin, "ns/f", "1").await;
    delete(&admin, "ns/e", &deleted).await;
    converge(&admin, &reader).await;

    // flaky reads: half the list calls answer 503 or drop the connection
    let faults = sim.faults();
    let rules = [
        FaultRuleKind::Error {
            status: 503,
            rate: 0.3,
        },
        FaultRuleKind::Error {
            status: 500,
            rate: 0.2,
        },
        FaultRuleKind::Reset { rate: 0.2 },
    ]
    .map(|kind| {
        faults.add(FaultRule {
            id: 0,
            product: Product::Consul,
            path_prefix: Some(format!("/v1/kv/{PREFIX}")),
            methods: Some(vec!["GET".into()]),
            count: None,
            kind,
        })
    });
    for i in 0..10 {
        put(&admin, &format!("ns/g{i}"), "1").await;
        if i % 3 == 0 {
            delete(&admin, &format!("ns/g{i}"), &deleted).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in rules {
        assert!(faults.remove(id));
    }
    converge(&admin, &reader).await;

    {
        let events = events.lock();
        let errors = events
            .iter()
            .filter(|e| matches!(e, Event::Error(_)))
            .count();
        assert!(errors >= 2, "the faults were seen as errors ({errors})");
        let mut deletions: BTreeMap<String, usize> = BTreeMap::new();
        for e in events.iter() {
            if let Event::Deleted(k) = e {
                *deletions.entry(k.clone()).or_default() += 1;
            }
        }
        let mut really: BTreeMap<String, usize> = BTreeMap::new();
        for k in deleted.lock().iter() {
            *really.entry(k.clone()).or_default() += 1;
        }
        for (k, n) in &deletions {
            assert!(
                really.get(k).is_some_and(|m| n <= m),
                "spurious deletion of {k} ({n} times)"
            );
        }
        let restarts = events
            .iter()
            .filter(|e| matches!(e, Event::Restarted(_)))
            .count();
        assert_eq!(restarts, 1, "only the first listing is a restart");
        let seen: BTreeSet<&String> = events.iter().flat_map(event_keys).collect();
        assert!(seen.iter().all(|k| k.starts_with(PREFIX)));
    }
    task.abort();
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}
