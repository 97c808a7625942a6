//! Consul client against the simulator: every call, blocking reads and watches.
#![allow(clippy::unwrap_used)]

mod simutil;

use std::time::Duration;

use futures::StreamExt;
use simutil::{bounded, consul, sim};
use steward_hashi::consul::{
    CatalogRegistration, IntentionSource, ServiceDefaults, ServiceIntentions, SessionCreate, TxnOp,
    TxnOutcome,
};
use steward_hashi::{Error, QueryOptions, WatchConfig, WriteOptions, watch};

#[tokio::test]
async fn kv_round_trip_with_cas() {
    let h = sim().await;
    let c = consul(&h);
    let missing = bounded(c.kv_get("steward/specs/a/b", &QueryOptions::new()))
        .await
        .unwrap();
    assert!(missing.value.is_none());
    assert!(missing.meta.index >= 1, "404 still carries an index");

    assert!(
        bounded(c.kv_put("steward/specs/a/b", b"v1", None, &WriteOptions::new()))
            .await
            .unwrap()
    );
    let got = bounded(c.kv_get("steward/specs/a/b", &QueryOptions::new()))
        .await
        .unwrap();
    let pair = got.value.unwrap();
    assert_eq!(pair.value, b"v1");
    assert_eq!(got.meta.index, pair.modify_index);

    assert!(
        !bounded(c.kv_put(
            "steward/specs/a/b",
            b"v2",
            None,
            &WriteOptions::cas(pair.modify_index + 100)
        ))
        .await
        .unwrap()
    );
    assert!(
        !bounded(c.kv_put("steward/specs/a/b", b"v2", None, &WriteOptions::cas(0)))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.kv_put(
            "steward/specs/a/b",
            b"v2",
            Some(7),
            &WriteOptions::cas(pair.modify_index)
        ))
        .await
        .unwrap()
    );
    assert!(
        bounded(c.kv_put("steward/specs/a/c", b"", None, &WriteOptions::cas(0)))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.kv_put("steward/specs/x/y", b"z", None, &WriteOptions::new()))
            .await
            .unwrap()
    );

    let list = bounded(c.kv_list("steward/specs/a", &QueryOptions::new()))
        .await
        .unwrap();
    let keys: Vec<_> = list.value.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["steward/specs/a/b", "steward/specs/a/c"]);
    assert_eq!(list.value[0].flags, 7);
    assert!(list.value[1].value.is_empty());
    let keys = bounded(c.kv_keys("steward/specs/", Some("/"), &QueryOptions::new()))
        .await
        .unwrap();
    assert_eq!(keys.value, ["steward/specs/a/", "steward/specs/x/"]);
    assert!(
        bounded(c.kv_list("nothing/here", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_empty()
    );

    let current = bounded(c.kv_get("steward/specs/a/b", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert!(
        !bounded(c.kv_delete("steward/specs/a/b", &WriteOptions::cas(0)))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.kv_delete(
            "steward/specs/a/b",
            &WriteOptions::cas(current.modify_index)
        ))
        .await
        .unwrap()
    );
    assert!(bounded(c.kv_delete_tree("steward/specs")).await.unwrap());
    assert!(
        bounded(c.kv_list("steward", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_empty()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn blocking_get_returns_on_change_and_on_creation() {
    let h = sim().await;
    let c = consul(&h);
    let first = bounded(c.kv_get("steward/leader-test", &QueryOptions::new()))
        .await
        .unwrap();
    let writer = c.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer
            .kv_put("steward/leader-test", b"x", None, &WriteOptions::new())
            .await
    });
    let opts = QueryOptions::blocking(first.meta.index, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let r = bounded(c.kv_get("steward/leader-test", &opts))
        .await
        .unwrap();
    assert_eq!(r.value.unwrap().value, b"x");
    assert!(r.meta.index > first.meta.index);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "woke up on the write"
    );

    // a blocking read with a short wait times out with the same index
    let again = bounded(c.kv_get(
        "steward/leader-test",
        &QueryOptions::blocking(r.meta.index, Duration::from_millis(300)),
    ))
    .await
    .unwrap();
    assert_eq!(again.meta.index, r.meta.index);
    h.shutdown().await;
}

#[tokio::test]
async fn sessions_and_locks() {
    let h = sim().await;
    let c = consul(&h);
    let s1 = bounded(
        c.session_create(
            &SessionCreate::ttl_only("steward-leader", Duration::from_secs(15))
                .lock_delay(Duration::from_secs(1)),
        ),
    )
    .await
    .unwrap();
    let s2 = bounded(c.session_create(&SessionCreate::ttl_only(
        "steward-standby",
        Duration::from_secs(15),
    )))
    .await
    .unwrap();
    assert!(
        bounded(c.kv_acquire("steward/leader", b"a", &s1, None))
            .await
            .unwrap()
    );
    assert!(
        !bounded(c.kv_acquire("steward/leader", b"b", &s2, None))
            .await
            .unwrap()
    );
    let held = bounded(c.kv_get("steward/leader", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(held.session.as_deref(), Some(s1.as_str()));
    assert_eq!(held.lock_index, 1);
    assert!(
        !bounded(c.kv_release("steward/leader", b"b", &s2, None))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.kv_release("steward/leader", b"a", &s1, None))
            .await
            .unwrap()
    );

    let renewed = bounded(c.session_renew(&s1)).await.unwrap();
    assert!(renewed.ttl.unwrap() >= Duration::from_secs(15));
    let info = bounded(c.session_info(&s1, &QueryOptions::new()))
        .await
        .unwrap();
    assert_eq!(info.value.unwrap().name, "steward-leader");
    assert_eq!(
        bounded(c.session_list(&QueryOptions::new()))
            .await
            .unwrap()
            .value
            .len(),
        2
    );

    assert!(bounded(c.session_destroy(&s1)).await.unwrap());
    assert!(
        bounded(c.session_destroy(&s1)).await.unwrap(),
        "destroy of a gone session is true"
    );
    let err = bounded(c.session_renew(&s1)).await.unwrap_err();
    assert!(matches!(err, Error::SessionNotFound { .. }), "{err:?}");
    assert!(
        bounded(c.session_info(&s1, &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none()
    );
    let err = bounded(c.session_create(&SessionCreate {
        ttl: None,
        ..SessionCreate::ttl_only("x", Duration::from_secs(15))
    }))
    .await;
    assert!(err.is_ok(), "a session without TTL is valid");
    h.shutdown().await;
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let h = sim().await;
    let c = consul(&h);
    assert!(
        bounded(c.kv_put("steward/specs/a/b", b"v1", None, &WriteOptions::new()))
            .await
            .unwrap()
    );
    let idx = bounded(c.kv_get("steward/specs/a/b", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap()
        .modify_index;
    let ok = bounded(c.txn(
        &[
            TxnOp::Cas {
                key: "steward/specs/a/b".into(),
                value: b"v2".to_vec(),
                flags: 0,
                index: idx,
            },
            TxnOp::Set {
                key: "steward/status/a/b".into(),
                value: b"ok".to_vec(),
                flags: 0,
            },
            TxnOp::Get {
                key: "steward/specs/a/b".into(),
            },
        ],
        &QueryOptions::new(),
    ))
    .await
    .unwrap();
    match ok.value {
        TxnOutcome::Committed(results) => {
            assert_eq!(results.len(), 3);
            assert_eq!(results[2].value, b"v2");
        }
        other => panic!("{other:?}"),
    }
    let conflict = bounded(c.txn(
        &[
            TxnOp::Cas {
                key: "steward/specs/a/b".into(),
                value: b"v3".to_vec(),
                flags: 0,
                index: idx,
            },
            TxnOp::Set {
                key: "steward/status/a/b".into(),
                value: b"nope".to_vec(),
                flags: 0,
            },
        ],
        &QueryOptions::new(),
    ))
    .await
    .unwrap();
    match conflict.value {
        TxnOutcome::RolledBack(errors) => assert_eq!(errors[0].op_index, 0),
        other => panic!("{other:?}"),
    }
    let status = bounded(c.kv_get("steward/status/a/b", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(status.value, b"ok", "rolled back entirely");
    h.shutdown().await;
}

#[tokio::test]
async fn config_entries() {
    let h = sim().await;
    let c = consul(&h);
    let mut sd = ServiceDefaults::new("order-api", "http");
    sd.meta
        .insert("steward.managed-by".into(), "steward".into());
    assert!(
        bounded(c.config_put(&sd, &WriteOptions::cas(0)))
            .await
            .unwrap()
    );
    let got = bounded(c.config_get::<ServiceDefaults>("order-api", &QueryOptions::new()))
        .await
        .unwrap();
    let stored = got.value.unwrap();
    assert_eq!(stored.protocol.as_deref(), Some("http"));
    assert!(got.meta.index >= stored.modify_index);
    let mut grpc = stored.clone();
    grpc.protocol = Some("grpc".into());
    assert!(
        !bounded(c.config_put(&grpc, &WriteOptions::cas(stored.modify_index + 50)))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.config_put(&grpc, &WriteOptions::cas(stored.modify_index)))
            .await
            .unwrap()
    );

    let si = ServiceIntentions::new(
        "order-api",
        vec![
            IntentionSource {
                name: "*".into(),
                action: Some("deny".into()),
                ..Default::default()
            },
            IntentionSource {
                name: "web".into(),
                action: Some("allow".into()),
                ..Default::default()
            },
        ],
    );
    assert!(
        bounded(c.config_put(&si, &WriteOptions::new()))
            .await
            .unwrap()
    );
    let read = bounded(c.config_get::<ServiceIntentions>("order-api", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        read.sources[0].name, "web",
        "sources come back sorted by precedence"
    );
    assert_eq!(read.sources[0].precedence, Some(9));
    let raw = bounded(c.config_get_raw("service-intentions", "order-api", &QueryOptions::new()))
        .await
        .unwrap();
    assert_eq!(raw.value.unwrap()["Kind"], "service-intentions");
    assert_eq!(
        bounded(c.config_list::<ServiceDefaults>(&QueryOptions::new()))
            .await
            .unwrap()
            .value
            .len(),
        1
    );
    assert_eq!(
        bounded(c.config_list_raw("service-intentions", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .len(),
        1
    );

    assert!(
        bounded(c.config_delete("service-intentions", "order-api", &WriteOptions::new()))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.config_delete("service-intentions", "order-api", &WriteOptions::new()))
            .await
            .unwrap(),
        "non-CAS delete of a missing entry answers {{}}"
    );
    let missing = bounded(c.config_get::<ServiceIntentions>("order-api", &QueryOptions::new()))
        .await
        .unwrap();
    assert!(missing.value.is_none());
    assert!(missing.meta.index > 0);
    let sd_now = bounded(c.config_get::<ServiceDefaults>("order-api", &QueryOptions::new()))
        .await
        .unwrap()
        .value
        .unwrap();
    assert!(
        !bounded(c.config_delete("service-defaults", "order-api", &WriteOptions::cas(0)))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.config_delete(
            "service-defaults",
            "order-api",
            &WriteOptions::cas(sd_now.modify_index)
        ))
        .await
        .unwrap()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn l7_intentions_on_a_tcp_service_are_invalid_requests() {
    let h = sim().await;
    let c = consul(&h);
    let si: ServiceIntentions = serde_json::from_value(serde_json::json!({
        "Kind": "service-intentions", "Name": "price-feed",
        "Sources": [{"Name": "order-api", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/quotes"}}]}]
    })).unwrap();
    let err = bounded(c.config_put(&si, &WriteOptions::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { status: 500, .. }),
        "{err:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn catalog_health_status_agent() {
    let h = sim().await;
    let c = consul(&h);
    let reg: CatalogRegistration = serde_json::from_value(serde_json::json!({
        "Node": "edge-1", "Address": "127.0.0.1",
        "Service": {"ID": "web-1", "Service": "web", "Port": 8080},
    }))
    .unwrap();
    assert!(bounded(c.catalog_register(&reg)).await.unwrap());
    let services = bounded(c.catalog_services(&QueryOptions::new()))
        .await
        .unwrap();
    assert!(services.value.contains_key("web"));
    let health = bounded(c.health_service("web", true, &QueryOptions::new()))
        .await
        .unwrap();
    assert_eq!(health.value.len(), 1);
    assert_eq!(health.value[0].service.port, 8080);
    assert!(
        bounded(c.catalog_deregister("edge-1", Some("web-1")))
            .await
            .unwrap()
    );
    assert!(
        bounded(c.health_service("web", false, &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_empty()
    );
    assert!(bounded(c.status_leader()).await.unwrap().is_some());
    let me = bounded(c.agent_self()).await.unwrap();
    assert!(!me.datacenter.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn watch_over_a_prefix_yields_only_changes() {
    let h = sim().await;
    let c = consul(&h);
    let reader = c.clone();
    let mut w = Box::pin(watch(
        move |index| {
            let reader = reader.clone();
            async move {
                reader
                    .kv_list(
                        "steward/specs",
                        &QueryOptions::blocking(index, Duration::from_secs(5)),
                    )
                    .await
            }
        },
        WatchConfig::default(),
    ));
    let first = bounded(w.next()).await.unwrap().unwrap();
    assert!(first.value.is_empty());
    c.kv_put("steward/specs/a/b", b"1", None, &WriteOptions::new())
        .await
        .unwrap();
    let second = bounded(w.next()).await.unwrap().unwrap();
    assert_eq!(second.value.len(), 1);
    // an identical write wakes nobody / is suppressed; a real change comes through
    c.kv_put("steward/specs/a/b", b"1", None, &WriteOptions::new())
        .await
        .unwrap();
    c.kv_put("steward/specs/a/c", b"2", None, &WriteOptions::new())
        .await
        .unwrap();
    let third = bounded(w.next()).await.unwrap().unwrap();
    assert_eq!(third.value.len(), 2);
    h.shutdown().await;
}
