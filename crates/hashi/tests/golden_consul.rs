//! Consul request builders and response parsers against captures from a real server.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::load;
use serde_json::json;
use steward_hashi::consul::{
    ConfigEntry, HttpRoute, IntentionSource, ServiceDefaults, ServiceIntentions, SessionBehavior,
    SessionCreate, TxnOp, TxnOutcome, catalog, config_entry, kv, session, txn,
};
use steward_hashi::{Error, Idempotency, Product, QueryOptions, WriteOptions};

fn fx(name: &str) -> common::Fixture {
    load("consul", name)
}

#[test]
fn kv_get_builds_the_captured_request_and_decodes_the_entry() {
    let f = fx("kv-get");
    let spec = kv::get("steward/trading/order-api/spec", &QueryOptions::new()).unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::Read);
    let r = kv::parse_get(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.meta.index, 42);
    assert!(r.meta.known_leader);
    assert_eq!(r.meta.last_contact, Duration::ZERO);
    let pair = r.value.unwrap();
    assert_eq!(pair.key, "steward/trading/order-api/spec");
    assert_eq!(
        (pair.create_index, pair.modify_index, pair.lock_index),
        (42, 42, 0)
    );
    assert_eq!(
        String::from_utf8(pair.value).unwrap(),
        r#"{"generation": 7, "hash": "abc123", "image": "registry.example/order-api:1.4.2"}"#
    );
    assert_eq!(pair.session, None);
}

#[test]
fn kv_get_missing_is_none_with_the_index_to_block_on() {
    let f = fx("kv-get-missing");
    f.assert_request(
        &kv::get(
            "steward/trading/order-api/does-not-exist",
            &QueryOptions::new(),
        )
        .unwrap(),
    );
    let r = kv::parse_get(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.value, None);
    assert_eq!(r.meta.index, 44);

    let f = fx("kv-get-blocking-missing-timeout");
    let spec = kv::get(
        "steward/trading/order-api/does-not-exist",
        &QueryOptions::blocking(48, Duration::from_secs(1)),
    )
    .unwrap();
    // The capture wrote `wait=1s`; this client renders milliseconds like the Go client.
    assert_eq!(
        spec.uri(),
        "/v1/kv/steward/trading/order-api/does-not-exist?index=48&wait=1000ms"
    );
    let r = kv::parse_get(&f.raw(Product::Consul)).unwrap();
    assert_eq!((r.value, r.meta.index), (None, 48));
}

#[test]
fn kv_blocking_timeout_returns_the_same_entry() {
    let r = kv::parse_get(&fx("kv-get-blocking-timeout").raw(Product::Consul)).unwrap();
    assert_eq!(r.meta.index, 48);
    assert_eq!(r.value.unwrap().modify_index, 48);
}

#[test]
fn kv_locked_entry_carries_the_session() {
    let f = fx("kv-get-locked");
    let pair = kv::parse_get(&f.raw(Product::Consul))
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        pair.session.as_deref(),
        Some("528eb4b6-7ac3-d558-dff4-c510799ce88b")
    );
    assert_eq!(pair.lock_index, 1);
    assert_eq!(pair.value, b"steward-0");
}

#[test]
fn kv_recurse_and_keys() {
    let f = fx("kv-get-recurse");
    f.assert_request(&kv::list("steward/trading/order-api", &QueryOptions::new()).unwrap());
    let r = kv::parse_list(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.meta.index, 44);
    let keys: Vec<_> = r.value.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "steward/trading/order-api/owner",
            "steward/trading/order-api/spec",
            "steward/trading/order-api/status"
        ]
    );
    assert_eq!(r.value[2].flags, 42);
    assert_eq!(r.value[2].value, b"deployed");

    let f = fx("kv-get-keys-separator");
    f.assert_request(
        &kv::keys(
            "steward/trading/order-api/",
            Some("/"),
            &QueryOptions::new(),
        )
        .unwrap(),
    );
    let r = kv::parse_keys(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.value[0], "steward/trading/order-api/canary/");
    assert_eq!(r.meta.index, 53);

    let f = fx("kv-get-keys-no-separator");
    f.assert_request(&kv::keys("steward/trading/order-api/", None, &QueryOptions::new()).unwrap());
    assert_eq!(
        kv::parse_keys(&f.raw(Product::Consul)).unwrap().value.len(),
        4
    );
}

#[test]
fn kv_list_of_a_missing_prefix_is_empty() {
    let raw = steward_hashi::RawResponse::new(
        Product::Consul,
        http::Method::GET,
        "/v1/kv/nothing",
        404,
        fx("kv-get-missing").raw(Product::Consul).headers,
        "",
    );
    let r = kv::parse_list(&raw).unwrap();
    assert!(r.value.is_empty());
    assert_eq!(r.meta.index, 44);
    assert!(kv::parse_keys(&raw).unwrap().value.is_empty());
}

#[test]
fn a_kv_listing_filtered_by_acls_is_an_error_not_a_shorter_list() {
    // Consul hides the keys the token may not read and says so in a header; a 404
    // then means "nothing you may see", not "nothing there".
    let mut headers = fx("kv-get-missing").raw(Product::Consul).headers;
    headers.insert(
        "x-consul-results-filtered-by-acls",
        http::HeaderValue::from_static("true"),
    );
    let raw = steward_hashi::RawResponse::new(
        Product::Consul,
        http::Method::GET,
        "/v1/kv/steward/specs/",
        404,
        headers,
        "",
    );
    let err = kv::parse_list(&raw).unwrap_err();
    assert!(matches!(err, Error::FilteredByAcls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("results filtered by ACLs"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(matches!(
        kv::parse_keys(&raw).unwrap_err(),
        Error::FilteredByAcls { .. }
    ));
}

#[test]
fn kv_writes_build_the_captured_requests() {
    let value =
        br#"{"generation": 7, "hash": "abc123", "image": "registry.example/order-api:1.4.2"}"#;
    let f = fx("kv-put");
    let spec = kv::put(
        "steward/trading/order-api/spec",
        value,
        None,
        &WriteOptions::new(),
    )
    .unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::Unguarded);
    assert!(kv::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("kv-put-cas-success");
    let spec = kv::put(
        "steward/trading/order-api/spec",
        value,
        None,
        &WriteOptions::cas(42),
    )
    .unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::CasGuarded);
    assert!(kv::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("kv-put-cas-failure");
    f.assert_request(
        &kv::put(
            "steward/trading/order-api/spec",
            b"stale write",
            None,
            &WriteOptions::cas(1),
        )
        .unwrap(),
    );
    assert!(
        !kv::parse_bool(&f.raw(Product::Consul)).unwrap(),
        "CAS failure is a value"
    );

    let f = fx("kv-put-cas-zero-existing");
    f.assert_request(
        &kv::put(
            "steward/trading/order-api/spec",
            b"create-only",
            None,
            &WriteOptions::cas(0),
        )
        .unwrap(),
    );
    assert!(!kv::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("kv-put-flags");
    f.assert_request(
        &kv::put(
            "steward/trading/order-api/status",
            b"deployed",
            Some(42),
            &WriteOptions::new(),
        )
        .unwrap(),
    );

    let f = fx("kv-delete");
    f.assert_request(&kv::delete("steward/trading/order-api/owner", &WriteOptions::new()).unwrap());
    assert!(kv::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("kv-delete-recurse");
    f.assert_request(&kv::delete_tree("steward/trading/scratch", &WriteOptions::new()).unwrap());
}

#[test]
fn kv_lock_requests() {
    let sid = "528eb4b6-7ac3-d558-dff4-c510799ce88b";
    let f = fx("kv-acquire-true");
    f.assert_request(
        &kv::acquire(
            "steward/leader",
            b"steward-0",
            sid,
            None,
            &WriteOptions::new(),
        )
        .unwrap(),
    );
    assert!(kv::parse_bool(&f.raw(Product::Consul)).unwrap());
    assert!(!kv::parse_bool(&fx("kv-acquire-false").raw(Product::Consul)).unwrap());
    let f = fx("kv-release");
    f.assert_request(
        &kv::release(
            "steward/leader",
            b"steward-0",
            sid,
            None,
            &WriteOptions::new(),
        )
        .unwrap(),
    );
}

#[test]
fn kv_builders_reject_bad_arguments_before_sending() {
    assert!(matches!(
        kv::get("/abs", &QueryOptions::new()),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(kv::acquire("k", b"", "", None, &WriteOptions::new()).is_err());
    assert!(kv::acquire("k", b"", "s", None, &WriteOptions::cas(1)).is_err());
    assert!(kv::delete_tree("p", &WriteOptions::cas(1)).is_err());
    assert!(kv::get("k", &QueryOptions::new().stale().consistent()).is_err());
}

#[test]
fn txn_success_and_conflict_are_typed_outcomes() {
    let f = fx("txn-success");
    let ops = [
        TxnOp::Cas {
            key: "steward/trading/order-api/spec".into(),
            value: br#"{"generation": 8, "hash": "def456"}"#.to_vec(),
            flags: 0,
            index: 42,
        },
        TxnOp::Set {
            key: "steward/trading/order-api/status".into(),
            value: b"rolling".to_vec(),
            flags: 0,
        },
        TxnOp::Get {
            key: "steward/trading/order-api/owner".into(),
        },
    ];
    let spec = txn::txn(&ops, &QueryOptions::new()).unwrap();
    assert_eq!(spec.uri(), f.uri());
    // the capture omitted Flags on the cas op; Consul treats absent and 0 alike
    let mut expected = f.request_body().clone();
    expected[0]["KV"]["Flags"] = json!(0);
    assert_eq!(spec.json_body().unwrap(), &expected);
    assert_eq!(spec.idempotency, Idempotency::CasGuarded);
    let r = txn::parse_txn(&f.raw(Product::Consul)).unwrap();
    match r.value {
        TxnOutcome::Committed(results) => {
            assert_eq!(results.len(), 3);
            assert_eq!(results[0].modify_index, 48);
            assert!(
                results[0].value.is_empty(),
                "write results carry Value null"
            );
            assert_eq!(results[2].value, b"team-trading");
        }
        other => panic!("expected commit, got {other:?}"),
    }

    let f = fx("txn-conflict");
    let ops = [
        TxnOp::Cas {
            key: "steward/trading/order-api/spec".into(),
            value: b"x".to_vec(),
            flags: 0,
            index: 42,
        },
        TxnOp::CheckIndex {
            key: "steward/trading/order-api/owner".into(),
            index: 1,
        },
    ];
    let spec = txn::txn(&ops, &QueryOptions::new()).unwrap();
    assert!(spec.accept.contains(&409));
    let mut expected = f.request_body().clone();
    expected[0]["KV"]["Flags"] = json!(0);
    assert_eq!(spec.json_body().unwrap(), &expected);
    let r = txn::parse_txn(&f.raw(Product::Consul)).unwrap();
    match r.value {
        TxnOutcome::RolledBack(errors) => {
            assert_eq!(errors.len(), 2);
            assert_eq!(errors[0].op_index, 0);
            assert!(errors[0].what.contains("index is stale"));
            assert_eq!(errors[1].op_index, 1);
        }
        other => panic!("expected rollback, got {other:?}"),
    }
}

#[test]
fn txn_classifies_idempotency_and_limits() {
    let read = [TxnOp::Get { key: "a".into() }];
    assert_eq!(
        txn::txn(&read, &QueryOptions::new().stale()).unwrap().uri(),
        "/v1/txn?stale"
    );
    assert_eq!(
        txn::txn(&read, &QueryOptions::new()).unwrap().idempotency,
        Idempotency::Read
    );
    let blind = [TxnOp::Set {
        key: "a".into(),
        value: vec![],
        flags: 0,
    }];
    assert_eq!(
        txn::txn(&blind, &QueryOptions::new()).unwrap().idempotency,
        Idempotency::Unguarded
    );
    let fenced = [
        TxnOp::CheckSession {
            key: "steward/leader".into(),
            session: "s".into(),
        },
        TxnOp::Set {
            key: "steward/status/a/b".into(),
            value: vec![],
            flags: 0,
        },
    ];
    let spec = txn::txn(&fenced, &QueryOptions::new()).unwrap();
    assert_eq!(spec.idempotency, Idempotency::CasGuarded);
    assert_eq!(spec.json_body().unwrap()[0]["KV"]["Verb"], "check-session");
    assert_eq!(spec.json_body().unwrap()[0]["KV"]["Session"], "s");
    let too_many: Vec<_> = (0..65)
        .map(|i| TxnOp::Get {
            key: format!("k{i}"),
        })
        .collect();
    assert!(txn::txn(&too_many, &QueryOptions::new()).is_err());
    assert!(txn::txn(&[], &QueryOptions::new()).is_err());
    assert!(txn::txn(&read, &QueryOptions::new().with_index(3)).is_err());
}

#[test]
fn every_txn_verb_serializes() {
    let ops = [
        (TxnOp::GetTree { key: "p".into() }, "get-tree"),
        (
            TxnOp::CheckNotExists { key: "k".into() },
            "check-not-exists",
        ),
        (TxnOp::Delete { key: "k".into() }, "delete"),
        (TxnOp::DeleteTree { key: "p".into() }, "delete-tree"),
        (
            TxnOp::DeleteCas {
                key: "k".into(),
                index: 3,
            },
            "delete-cas",
        ),
        (
            TxnOp::Lock {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 0,
                session: "s".into(),
            },
            "lock",
        ),
        (
            TxnOp::Unlock {
                key: "k".into(),
                value: b"v".to_vec(),
                flags: 0,
                session: "s".into(),
            },
            "unlock",
        ),
    ];
    for (op, verb) in ops {
        let v = op.to_json();
        assert_eq!(v["KV"]["Verb"], verb);
    }
    assert_eq!(
        TxnOp::DeleteCas {
            key: "k".into(),
            index: 3
        }
        .to_json()["KV"]["Index"],
        3
    );
    assert_eq!(
        TxnOp::Lock {
            key: "k".into(),
            value: b"v".to_vec(),
            flags: 0,
            session: "s".into()
        }
        .to_json()["KV"]["Value"],
        "dg=="
    );
}

#[test]
fn sessions() {
    let f = fx("session-create");
    let create = SessionCreate {
        name: "steward-leader".into(),
        ttl: Some(Duration::from_secs(30)),
        lock_delay: Some(Duration::from_secs(15)),
        behavior: SessionBehavior::Release,
        ..SessionCreate::default()
    };
    f.assert_request(&session::create(&create, &WriteOptions::new()).unwrap());
    assert_eq!(
        session::parse_create(&f.raw(Product::Consul)).unwrap(),
        "528eb4b6-7ac3-d558-dff4-c510799ce88b"
    );
    let f = fx("session-create-second");
    let create = SessionCreate {
        name: "steward-standby".into(),
        ttl: Some(Duration::from_secs(30)),
        lock_delay: Some(Duration::ZERO),
        behavior: SessionBehavior::Delete,
        ..SessionCreate::default()
    };
    f.assert_request(&session::create(&create, &WriteOptions::new()).unwrap());

    // TTL-only sessions send empty NodeChecks
    let ttl_only = SessionCreate::ttl_only("steward-leader", Duration::from_secs(15));
    let body = ttl_only.to_json();
    assert_eq!(body["NodeChecks"], json!([]));
    assert_eq!(body["TTL"], "15s");
    assert!(
        session::create(
            &SessionCreate::ttl_only("x", Duration::from_secs(5)),
            &WriteOptions::new()
        )
        .is_err()
    );

    let id = "528eb4b6-7ac3-d558-dff4-c510799ce88b";
    let f = fx("session-renew");
    f.assert_request(&session::renew(id, &WriteOptions::new()).unwrap());
    let s = session::parse_renew(&f.raw(Product::Consul), id).unwrap();
    assert_eq!(s.ttl, Some(Duration::from_secs(30)));
    assert_eq!(s.lock_delay, Duration::from_secs(15));
    assert_eq!(s.behavior, SessionBehavior::Release);
    assert_eq!(s.node_checks, ["serfHealth"]);

    let unknown = "5a1c2b3d-0000-4000-8000-000000000001";
    let f = fx("session-renew-unknown");
    let err = session::parse_renew(&f.raw(Product::Consul), unknown).unwrap_err();
    assert!(matches!(err, Error::SessionNotFound { ref id } if id == unknown));

    let f = fx("session-info");
    f.assert_request(&session::info(id, &QueryOptions::new()).unwrap());
    let r = session::parse_info(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.meta.index, 56);
    assert_eq!(r.value.unwrap().name, "steward-leader");
    let r = session::parse_info(&fx("session-info-unknown").raw(Product::Consul)).unwrap();
    assert!(r.value.is_none());

    let f = fx("session-list");
    f.assert_request(&session::list(&QueryOptions::new()).unwrap());
    let r = session::parse_list(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.value.len(), 2);
    assert_eq!(r.value[1].behavior, SessionBehavior::Delete);
    assert_eq!(r.value[1].lock_delay, Duration::ZERO);

    let f = fx("session-destroy");
    f.assert_request(&session::destroy(id, &WriteOptions::new()).unwrap());
}

#[test]
fn config_entries_typed_round_trip_and_keep_unknown_fields() {
    let f = fx("config-put-service-defaults-order-api");
    let entry = ServiceDefaults::new("order-api", "http");
    f.assert_request(&config_entry::put(&entry, &WriteOptions::new()).unwrap());
    assert!(config_entry::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("config-put-service-defaults-cas-stale");
    let spec = config_entry::put(
        &ServiceDefaults::new("order-api", "grpc"),
        &WriteOptions::cas(1),
    )
    .unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::CasGuarded);
    assert!(!config_entry::parse_bool(&f.raw(Product::Consul)).unwrap());

    let f = fx("config-get-service-defaults-order-api");
    f.assert_request(
        &config_entry::get(ServiceDefaults::KIND, "order-api", &QueryOptions::new()).unwrap(),
    );
    let r = config_entry::parse_get::<ServiceDefaults>(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.meta.index, 34);
    let sd = r.value.unwrap();
    assert_eq!(sd.protocol.as_deref(), Some("http"));
    assert_eq!(sd.modify_index, 34);
    assert!(
        sd.extra.contains_key("TransparentProxy"),
        "unknown fields are kept"
    );
    let back = serde_json::to_value(&sd).unwrap();
    assert_eq!(back["MeshGateway"], json!({}));
    assert_eq!(back["Kind"], "service-defaults");

    let f = fx("config-put-service-intentions-order-api");
    let mut entry =
        ServiceIntentions::new(
            "order-api",
            vec![
                IntentionSource {
                    name: "web".into(),
                    action: Some("allow".into()),
                    ..Default::default()
                },
                IntentionSource {
                    name: "batch-settle".into(),
                    permissions: vec![serde_json::from_value(json!(
                    {"Action": "allow", "HTTP": {"PathExact": "/settle", "Methods": ["POST"]}}
                ))
                .unwrap()],
                    ..Default::default()
                },
                IntentionSource {
                    name: "*".into(),
                    action: Some("deny".into()),
                    ..Default::default()
                },
            ],
        );
    entry
        .meta
        .insert("steward.managed-by".into(), "steward".into());
    f.assert_request(&config_entry::put(&entry, &WriteOptions::new()).unwrap());

    let f = fx("config-get-service-intentions-order-api");
    let si = config_entry::parse_get::<ServiceIntentions>(&f.raw(Product::Consul))
        .unwrap()
        .value
        .unwrap();
    assert_eq!(si.sources.len(), 3);
    assert_eq!(si.sources[0].precedence, Some(9));
    assert_eq!(si.sources[0].source_type.as_deref(), Some("consul"));
    let http = si.sources[1].permissions[0].http.as_ref().unwrap();
    assert_eq!(http.path_exact.as_deref(), Some("/settle"));
    assert_eq!(http.methods, ["POST"]);
    assert_eq!(si.meta["steward.managed-by"], "steward");
}

#[test]
fn config_entries_raw_missing_list_delete() {
    let f = fx("config-get-missing");
    f.assert_request(
        &config_entry::get("service-router", "price-feed", &QueryOptions::new()).unwrap(),
    );
    let r = config_entry::parse_get::<serde_json::Value>(&f.raw(Product::Consul)).unwrap();
    assert!(r.value.is_none());
    assert_eq!(r.meta.index, 37);

    let f = fx("config-get-ingress-gateway-edge");
    let r = config_entry::parse_get::<serde_json::Value>(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.value.unwrap()["Kind"], "ingress-gateway");

    let f = fx("config-list-service-defaults");
    f.assert_request(&config_entry::list("service-defaults", &QueryOptions::new()).unwrap());
    let r = config_entry::parse_list::<ServiceDefaults>(&f.raw(Product::Consul)).unwrap();
    assert_eq!(r.value.len(), 1);
    assert_eq!(r.meta.index, 39);
    let r = config_entry::parse_list::<ServiceIntentions>(
        &fx("config-list-service-intentions").raw(Product::Consul),
    )
    .unwrap();
    assert!(!r.value.is_empty());

    let f = fx("config-delete-service-intentions-order-api");
    let spec =
        config_entry::delete("service-intentions", "order-api", &WriteOptions::new()).unwrap();
    f.assert_request(&spec);
    assert_eq!(spec.idempotency, Idempotency::Unguarded);
    assert!(
        config_entry::parse_delete(&f.raw(Product::Consul)).unwrap(),
        "{{}} is success"
    );
    let spec =
        config_entry::delete("service-intentions", "order-api", &WriteOptions::cas(35)).unwrap();
    assert_eq!(spec.uri(), "/v1/config/service-intentions/order-api?cas=35");
    let false_raw = fx("kv-put-cas-failure").raw(Product::Consul);
    assert!(!config_entry::parse_delete(&false_raw).unwrap());
}

#[test]
fn config_protocol_violation_is_an_invalid_request_with_server_text() {
    let f = fx("config-put-service-intentions-l7-on-tcp-error");
    let err = f.raw(Product::Consul).status_error();
    match err {
        Error::InvalidRequest {
            status,
            ref message,
            ..
        } => {
            assert_eq!(status, 500);
            assert!(message.contains("incompatible with L7 intentions"));
        }
        ref other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
}

#[test]
fn http_route_keeps_status_out_of_writes() {
    let route: HttpRoute = serde_json::from_value(json!({
        "Kind": "http-route", "Name": "trading-order-api",
        "Parents": [{"Kind": "api-gateway", "Name": "edge", "SectionName": "http"}],
        "Hostnames": ["api.example.com"],
        "Rules": [{"Matches": [{"Path": {"Match": "prefix", "Value": "/orders"}}],
                   "Services": [{"Name": "order-api", "Weight": 1}]}],
        "Meta": {"steward.managed-by": "steward"},
        "Status": {"Conditions": [{"Type": "Accepted", "Status": "True"}]},
        "CreateIndex": 5, "ModifyIndex": 6, "Future": 1
    }))
    .unwrap();
    assert_eq!(route.name(), "trading-order-api");
    assert_eq!(route.parents[0].section_name, "http");
    assert!(route.status.is_some());
    let spec = config_entry::put(&route, &WriteOptions::cas(route.modify_index)).unwrap();
    let body = spec.json_body().unwrap();
    assert!(body.get("Status").is_none());
    assert_eq!(body["Future"], 1);
    assert_eq!(spec.uri(), "/v1/config?cas=6");
    assert!(config_entry::put(&json!({"Kind": "x"}), &WriteOptions::new()).is_err());
}

#[test]
fn health_catalog_status_agent() {
    let f = fx("health-service-order-api-passing");
    f.assert_request(&catalog::health_service("order-api", true, &QueryOptions::new()).unwrap());
    let r = catalog::parse_health_service(&f.raw(Product::Consul)).unwrap();
    assert!(r.value.is_empty());
    assert_eq!(r.meta.index, 25);

    let r = catalog::parse_health_service(
        &fx("health-service-order-api-agent-registered-passing").raw(Product::Consul),
    )
    .unwrap();
    assert_eq!(r.value[0].service.service, "order-api");
    assert!(r.value[0].checks.iter().all(|c| c.status == "passing"));
    let r =
        catalog::parse_health_service(&fx("health-service-ticker").raw(Product::Consul)).unwrap();
    assert!(!r.value.is_empty());

    let f = fx("catalog-services");
    f.assert_request(&catalog::catalog_services(&QueryOptions::new()).unwrap());
    let r = catalog::parse_catalog_services(&f.raw(Product::Consul)).unwrap();
    assert!(r.value.contains_key("consul"));

    let reg = steward_hashi::consul::CatalogRegistration {
        node: "edge-1".into(),
        address: "10.0.0.5".into(),
        ..Default::default()
    };
    let spec = catalog::catalog_register(&reg, &WriteOptions::new()).unwrap();
    assert_eq!(spec.uri(), "/v1/catalog/register");
    assert_eq!(spec.json_body().unwrap()["Node"], "edge-1");
    let spec = catalog::catalog_deregister("edge-1", Some("web-1"), &WriteOptions::new()).unwrap();
    assert_eq!(
        spec.json_body().unwrap(),
        &json!({"Node": "edge-1", "ServiceID": "web-1"})
    );

    let raw = steward_hashi::RawResponse::new(
        Product::Consul,
        http::Method::GET,
        "/v1/status/leader",
        200,
        http::HeaderMap::new(),
        r#""127.0.0.1:8300""#,
    );
    assert_eq!(
        catalog::parse_status_leader(&raw).unwrap().as_deref(),
        Some("127.0.0.1:8300")
    );
    let raw = steward_hashi::RawResponse::new(
        Product::Consul,
        http::Method::GET,
        "/v1/agent/self",
        200,
        http::HeaderMap::new(),
        r#"{"Config": {"Datacenter": "dc1", "NodeName": "n1", "Version": "1.21.0"}, "Member": {}}"#,
    );
    let a = catalog::parse_agent_self(&raw).unwrap();
    assert_eq!(
        (
            a.datacenter.as_str(),
            a.node_name.as_str(),
            a.version.as_str()
        ),
        ("dc1", "n1", "1.21.0")
    );
}
