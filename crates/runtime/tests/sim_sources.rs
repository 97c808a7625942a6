//! The watcher adapters (Nomad job list, Consul config entries, polled Vault policies)
//! against the simulator.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use serde_json::json;
use steward_hashi::nomad::RegisterOptions;
use steward_hashi::{
    ConsulClient, ConsulConfig, NomadClient, NomadConfig, VaultClient, VaultConfig, WriteOptions,
};
use steward_runtime::sources::{ConsulConfigEntrySource, NomadJobSource, vault_policy_source};
use steward_runtime::watcher::{Event, WatcherConfig, watcher};
use steward_sim::{Product, Sim, SimConfig};

/// The next event (skipping errors) that `pred` accepts, within `bound`.
async fn next_matching<K, V, S>(
    stream: &mut S,
    bound: Duration,
    pred: impl Fn(&Event<K, V>) -> bool,
) -> Event<K, V>
where
    S: Stream<Item = Event<K, V>> + Unpin,
{
    tokio::time::timeout(bound, async {
        loop {
            let e = stream.next().await.expect("watchers never end");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("the expected event within the bound")
}

fn keys<K: Clone, V>(e: &Event<K, V>) -> Vec<K> {
    e.keys().into_iter().cloned().collect()
}

fn job(id: &str, ns: &str) -> serde_json::Value {
    json!({
        "ID": id, "Name": id, "Namespace": ns, "Type": "service", "Datacenters": ["dc1"],
        "Meta": {"steward.managed-by": "steward", "steward.spec": format!("{ns}/{id}")},
        "TaskGroups": [{
            "Name": id, "Count": 1,
            "Tasks": [{"Name": "app", "Driver": "docker", "Config": {"image": "nginx:1"},
                       "Resources": {"CPU": 100, "MemoryMB": 128}}]
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_job_watcher_does_not_spin_on_a_fresh_server_and_follows_jobs() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let nomad = NomadClient::new(
        NomadConfig::default()
            .with_address(&sim.nomad_url())
            .unwrap(),
    )
    .unwrap();
    let source = NomadJobSource::new(nomad.clone()).wait(Duration::from_secs(1));
    let mut events = Box::pin(watcher(source, WatcherConfig::default()));
    let first = next_matching(&mut events, Duration::from_secs(5), |_| true).await;
    assert!(
        matches!(&first, Event::Restarted(v) if v.is_empty()),
        "{first:?}"
    );

    // Idle for 3 s: a watcher spinning on index 0 would make hundreds of calls.
    let before = sim.stats().count(Product::Nomad, "GET", "/v1/jobs");
    let idle = tokio::time::timeout(Duration::from_secs(3), events.next()).await;
    assert!(idle.is_err(), "no event without a change: {idle:?}");
    let calls = sim.stats().count(Product::Nomad, "GET", "/v1/jobs") - before;
    assert!(calls <= 6, "{calls} list calls in 3 s");

    nomad
        .register_job(&job("web", "default"), &RegisterOptions::default())
        .await
        .unwrap();
    let e = next_matching(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Applied(..))
    })
    .await;
    let Event::Applied(key, stub) = e else {
        unreachable!()
    };
    assert_eq!(key, "default/web");
    assert_eq!(
        stub.meta.unwrap()["steward.spec"],
        "default/web",
        "listed with meta=true"
    );
    nomad
        .deregister_job("web", true, &WriteOptions::new())
        .await
        .unwrap();
    let e = next_matching(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Deleted(_))
    })
    .await;
    assert_eq!(keys(&e), vec!["default/web".to_owned()]);
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_entry_watcher_follows_one_kind() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let consul = ConsulClient::new(
        ConsulConfig::default()
            .with_address(&sim.consul_url())
            .unwrap(),
    )
    .unwrap();
    let put = |name: &str| {
        let consul = consul.clone();
        let entry = json!({"Kind": "service-defaults", "Name": name, "Protocol": "http"});
        async move {
            assert!(
                consul
                    .config_put(&entry, &WriteOptions::new())
                    .await
                    .unwrap()
            );
        }
    };
    put("web").await;
    let source = ConsulConfigEntrySource::new(consul.clone(), "service-defaults")
        .wait(Duration::from_secs(2));
    let mut events = Box::pin(watcher(source, WatcherConfig::default()));
    let first = next_matching(&mut events, Duration::from_secs(5), |_| true).await;
    assert_eq!(keys(&first), vec!["web".to_owned()]);
    assert!(matches!(first, Event::Restarted(_)));

    put("api").await;
    let e = next_matching(&mut events, Duration::from_secs(10), |e| {
        !matches!(e, Event::Error(_))
    })
    .await;
    assert!(
        matches!(&e, Event::Applied(k, v) if k == "api" && v["Protocol"] == "http"),
        "{e:?}"
    );

    consul
        .config_delete("service-defaults", "web", &WriteOptions::new())
        .await
        .unwrap();
    let e = next_matching(&mut events, Duration::from_secs(10), |e| {
        !matches!(e, Event::Error(_))
    })
    .await;
    assert!(matches!(&e, Event::Deleted(k) if k == "web"), "{e:?}");
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_policies_are_polled() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let vault = VaultClient::new(
        VaultConfig::default()
            .with_address(&sim.vault_url())
            .unwrap()
            .with_token("root"),
    )
    .unwrap();
    let hcl = "path \"secret/data/x\" { capabilities = [\"read\"] }";
    vault.put_policy("steward-ns-a", hcl).await.unwrap();
    vault.put_policy("someone-else", hcl).await.unwrap();
    let source = vault_policy_source(
        vault.clone(),
        Duration::from_millis(200),
        Some("steward-".into()),
    );
    let mut events = Box::pin(watcher(source, WatcherConfig::default()));
    let first = next_matching(&mut events, Duration::from_secs(5), |_| true).await;
    assert!(matches!(first, Event::Restarted(_)));
    assert_eq!(keys(&first), vec!["steward-ns-a".to_owned()]);

    vault.put_policy("steward-ns-b", hcl).await.unwrap();
    vault.delete_policy("steward-ns-a").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = next_matching(&mut events, Duration::from_secs(5), |e| {
            !matches!(e, Event::Error(_))
        })
        .await;
        seen.push(match e {
            Event::Applied(k, _) => format!("applied {k}"),
            Event::Deleted(k) => format!("deleted {k}"),
            other => panic!("unexpected {other:?}"),
        });
    }
    seen.sort();
    assert_eq!(seen, vec!["applied steward-ns-b", "deleted steward-ns-a"]);
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops");
}
