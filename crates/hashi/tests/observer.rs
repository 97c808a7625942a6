//! The optional observer hook sees every request attempt, retries and failures included.
#![allow(clippy::unwrap_used)]

mod simutil;

use std::sync::{Arc, Mutex};

use simutil::{bounded, consul, nomad, sim, vault};
use steward_hashi::{Observation, Observer, Product, QueryOptions, WriteOptions};
use steward_sim::{FaultRule, FaultRuleKind};

type Seen = Arc<Mutex<Vec<(Product, String, String, Option<u16>)>>>;

fn recorder() -> (Observer, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let observer: Observer = Arc::new(move |o: &Observation<'_>| {
        sink.lock()
            .unwrap()
            .push((o.product, o.method.to_string(), o.path.to_owned(), o.status));
    });
    (observer, seen)
}

#[tokio::test]
async fn observers_see_every_attempt_with_its_status() {
    let h = sim().await;
    let (observer, seen) = recorder();
    let c = consul(&h).with_observer(observer.clone());
    bounded(c.kv_put("a/b", b"1", None, &WriteOptions::new()))
        .await
        .unwrap();
    bounded(c.kv_get("a/missing", &QueryOptions::new()))
        .await
        .unwrap();
    // Two 500s then success: three attempts observed.
    h.faults().add(FaultRule {
        id: 0,
        product: steward_sim::Product::Consul,
        path_prefix: Some("/v1/kv/a/b".into()),
        methods: Some(vec!["GET".into()]),
        count: Some(2),
        kind: FaultRuleKind::Error {
            status: 500,
            rate: 1.0,
        },
    });
    bounded(c.kv_get("a/b", &QueryOptions::new()))
        .await
        .unwrap();
    let n = nomad(&h).with_observer(observer.clone());
    bounded(n.list_jobs(None, false, &QueryOptions::new()))
        .await
        .unwrap();
    let v = vault(&h).with_observer(observer);
    bounded(v.list_policies()).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<_> = seen
        .iter()
        .map(|(p, m, path, s)| (*p, m.as_str(), path.as_str(), *s))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Product::Consul, "PUT", "/v1/kv/a/b", Some(200)),
            (Product::Consul, "GET", "/v1/kv/a/missing", Some(404)),
            (Product::Consul, "GET", "/v1/kv/a/b", Some(500)),
            (Product::Consul, "GET", "/v1/kv/a/b", Some(500)),
            (Product::Consul, "GET", "/v1/kv/a/b", Some(200)),
            (Product::Nomad, "GET", "/v1/jobs", Some(200)),
            (Product::Vault, "LIST", "/v1/sys/policies/acl", Some(200)),
        ]
    );
}

#[tokio::test]
async fn clients_without_observers_are_unaffected_and_failures_have_no_status() {
    let h = sim().await;
    let (observer, seen) = recorder();
    let plain = consul(&h);
    let observed = plain.with_observer(observer);
    bounded(plain.kv_put("x", b"1", None, &WriteOptions::new()))
        .await
        .unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "the original client has no observer"
    );
    h.faults().add(FaultRule {
        id: 0,
        product: steward_sim::Product::Consul,
        path_prefix: None,
        methods: None,
        count: None,
        kind: FaultRuleKind::Reset { rate: 1.0 },
    });
    assert!(
        bounded(observed.kv_get("x", &QueryOptions::new()))
            .await
            .is_err()
    );
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|(_, _, _, status)| status.is_none()),
        "{seen:?}"
    );
}
