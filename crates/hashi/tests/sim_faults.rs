//! Fault kinds of the simulator mapped to errors and retry behaviour, and ACL denials
//! whose text never contains the token.
#![allow(clippy::unwrap_used)]

mod simutil;

use std::time::Duration;

use simutil::{bounded, consul, consul_with, job, nomad, nomad_with, sim, sim_with};
use steward_hashi::nomad::RegisterOptions;
use steward_hashi::{ConsulClient, ConsulConfig, Error, QueryOptions, RetryPolicy, WriteOptions};
use steward_sim::{FaultRule, FaultRuleKind, Product, SimConfig, TokenConfig};

fn rule(
    product: Product,
    prefix: &str,
    method: &str,
    count: u64,
    kind: FaultRuleKind,
) -> FaultRule {
    FaultRule {
        id: 0,
        product,
        path_prefix: Some(prefix.to_owned()),
        methods: Some(vec![method.to_owned()]),
        count: Some(count),
        kind,
    }
}

fn error(status: u16) -> FaultRuleKind {
    FaultRuleKind::Error { status, rate: 1.0 }
}

#[tokio::test]
async fn reads_are_retried_through_transient_5xx_and_429() {
    let h = sim().await;
    let c = consul(&h);
    c.kv_put("steward/a", b"1", None, &WriteOptions::new())
        .await
        .unwrap();
    for status in [500, 503, 429] {
        h.faults().add(rule(
            Product::Consul,
            "/v1/kv/steward/a",
            "GET",
            2,
            error(status),
        ));
        let r = bounded(c.kv_get("steward/a", &QueryOptions::new()))
            .await
            .unwrap();
        assert_eq!(
            r.value.unwrap().value,
            b"1",
            "status {status}: third attempt succeeds"
        );
    }
    // more failures than attempts: the error surfaces, typed
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/steward/a",
        "GET",
        3,
        error(503),
    ));
    let err = bounded(c.kv_get("steward/a", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/steward/a",
        "GET",
        3,
        error(429),
    ));
    let err = bounded(c.kv_get("steward/a", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Overloaded { status: 429, .. }) && err.is_retryable(),
        "{err:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn writes_are_not_repeated_after_a_5xx_but_cas_writes_are_after_a_429() {
    let h = sim().await;
    let c = consul(&h);
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/steward/b",
        "PUT",
        1,
        error(500),
    ));
    let err = bounded(c.kv_put("steward/b", b"1", None, &WriteOptions::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        bounded(c.kv_get("steward/b", &QueryOptions::new()))
            .await
            .unwrap()
            .value
            .is_none(),
        "sent once"
    );

    // A 5xx may follow a write that landed: a check-and-set write is not repeated
    // either; after a 429 (refused before anything happened) it is.
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/steward/b",
        "PUT",
        1,
        error(503),
    ));
    assert!(
        bounded(c.kv_put("steward/b", b"1", None, &WriteOptions::cas(0)))
            .await
            .is_err()
    );
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/steward/b",
        "PUT",
        2,
        error(429),
    ));
    assert!(
        bounded(c.kv_put("steward/b", b"1", None, &WriteOptions::cas(0)))
            .await
            .unwrap()
    );

    // Nomad EnforceIndex registrations are guarded too
    let n = nomad(&h);
    h.faults()
        .add(rule(Product::Nomad, "/v1/jobs", "PUT", 1, error(429)));
    let opts = RegisterOptions {
        enforce_index: Some(0),
        ..Default::default()
    };
    bounded(n.register_job(&job("web", "default", "nginx", 1), &opts))
        .await
        .unwrap();
    h.faults()
        .add(rule(Product::Nomad, "/v1/jobs", "PUT", 1, error(500)));
    let err = bounded(n.register_job(
        &job("api", "default", "nginx", 1),
        &RegisterOptions::default(),
    ))
    .await
    .unwrap_err();
    assert!(
        err.is_retryable() && matches!(err, Error::Unavailable { .. }),
        "{err:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn connection_resets_and_stalls_are_unavailable() {
    let h = sim().await;
    let c = ConsulClient::new(
        ConsulConfig::default()
            .with_address(&format!("http://{}", h.consul_addr()))
            .unwrap()
            .with_retry(RetryPolicy::none())
            .with_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/",
        "GET",
        1,
        FaultRuleKind::Reset { rate: 1.0 },
    ));
    let err = bounded(c.kv_get("steward/c", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { status: None, .. }) && err.is_retryable(),
        "{err:?}"
    );
    h.faults().add(rule(
        Product::Consul,
        "/v1/kv/",
        "GET",
        1,
        FaultRuleKind::Stall {
            stall_ms: 2000,
            rate: 1.0,
        },
    ));
    let err = bounded(c.kv_get("steward/c", &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(err.is_retryable());
    h.shutdown().await;
}

#[tokio::test]
async fn latency_is_tolerated() {
    let h = sim().await;
    let c = consul(&h);
    h.faults().inject(
        Product::Consul,
        FaultRuleKind::Latency {
            fixed_ms: 50,
            jitter_ms: 20,
        },
    );
    assert!(
        bounded(c.kv_put("steward/d", b"1", None, &WriteOptions::new()))
            .await
            .unwrap()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn leader_loss_is_retryable_unavailability() {
    let h = sim().await;
    let c = consul(&h);
    h.faults().lose_leader(Product::Consul, None);
    let err = bounded(c.kv_get("steward/e", &QueryOptions::new())).await;
    match err {
        Err(e) => assert!(e.is_retryable(), "{e:?}"),
        Ok(r) => assert!(
            !r.meta.known_leader,
            "a stale answer must say the leader is unknown"
        ),
    }
    h.faults().restore_leader(Product::Consul);
    let n = nomad(&h);
    h.faults()
        .lose_leader(Product::Nomad, Some(Duration::from_millis(50)));
    // the window ends before the retries run out
    let r = bounded(n.list_jobs(None, false, &QueryOptions::new())).await;
    assert!(r.is_ok() || r.unwrap_err().is_retryable());
    h.shutdown().await;
}

#[tokio::test]
async fn index_reset_makes_watches_start_over() {
    let h = sim().await;
    let c = consul(&h);
    for i in 0..5 {
        c.kv_put(
            &format!("steward/specs/k{i}"),
            b"v",
            None,
            &WriteOptions::new(),
        )
        .await
        .unwrap();
    }
    let before = c
        .kv_list("steward/specs", &QueryOptions::new())
        .await
        .unwrap()
        .meta
        .index;
    assert!(h.faults().reset_indexes(Product::Consul));
    c.kv_put("steward/specs/new", b"v", None, &WriteOptions::new())
        .await
        .unwrap();
    let after = c
        .kv_list("steward/specs", &QueryOptions::new())
        .await
        .unwrap()
        .meta
        .index;
    assert!(
        after < before,
        "snapshot restore lowers indexes ({after} vs {before})"
    );
    assert_eq!(
        steward_hashi::next_index(before, after),
        steward_hashi::NextIndex::Relist
    );
    h.shutdown().await;
}

#[tokio::test]
async fn acl_denials_never_contain_the_token() {
    let consul_secret = "c0ffee00-1111-2222-3333-444455556666";
    let nomad_secret = "n0mad000-1111-2222-3333-444455556666";
    let h = sim_with(SimConfig {
        tokens: vec![
            TokenConfig {
                product: Product::Consul,
                secret: "mgmt-consul-token-0001".into(),
                management: true,
                rules: String::new(),
            },
            TokenConfig {
                product: Product::Nomad,
                secret: "mgmt-nomad-token-00001".into(),
                management: true,
                rules: String::new(),
            },
        ],
        ..SimConfig::default()
    })
    .await;
    let c = consul_with(&h, Some(consul_secret));
    let err = bounded(c.kv_put("steward/x", b"1", None, &WriteOptions::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!format!("{err} {err:?}").contains(consul_secret));
    assert!(
        bounded(consul_with(&h, Some("mgmt-consul-token-0001")).kv_put(
            "steward/x",
            b"1",
            None,
            &WriteOptions::new()
        ))
        .await
        .unwrap()
    );

    let n = nomad_with(&h, Some(nomad_secret));
    let err = bounded(n.list_jobs(None, false, &QueryOptions::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(nomad_secret));
    h.shutdown().await;
}
