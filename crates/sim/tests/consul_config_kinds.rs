//! Config-entry kinds a server does not know (reference §9 "Consul config entries",
//! §10): a kind Consul never had, and kinds made unavailable the way an older Consul
//! lacks them (`ConsulSimConfig::unsupported_config_kinds`,
//! `SimHandle::set_unsupported_config_kinds`; Consul < 1.15 has no `api-gateway` or
//! `http-route`).
#![allow(clippy::unwrap_used)]

mod consul_support;
use consul_support::*;
use serde_json::{Value, json};

const TEXT: &str = "text/plain; charset=utf-8";

/// One answer reduced to what a client can tell apart: status, body, Content-Type.
type Answer = (u16, String, Option<String>);

fn answer(r: &Resp) -> Answer {
    (r.status, r.text(), r.content_type())
}

fn route(name: &str) -> Value {
    json!({"Kind": "http-route", "Name": name,
        "Parents": [{"Kind": "api-gateway", "Name": "public", "SectionName": "http"}],
        "Rules": [{"Matches": [{"Path": {"Match": "prefix", "Value": "/"}}],
                   "Services": [{"Name": "web", "Weight": 1}]}]})
}

/// Writes an http-route to service `web` (which a route needs to speak HTTP).
async fn put_route(c: &Consul, name: &str) {
    let r = c
        .put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        )
        .await;
    assert_eq!(r.json(), json!(true), "{}", r.text());
    let r = c.put_json("/v1/config", &route(name)).await;
    assert_eq!(r.json(), json!(true), "{}", r.text());
}

/// GET list, GET one, PUT and DELETE of `kind`, in that order.
async fn answers_for(c: &Consul, kind: &str) -> Vec<Answer> {
    vec![
        answer(&c.get(&format!("/v1/config/{kind}")).await),
        answer(&c.get(&format!("/v1/config/{kind}/web")).await),
        answer(
            &c.put_json("/v1/config", &json!({"Kind": kind, "Name": "web"}))
                .await,
        ),
        answer(&c.delete(&format!("/v1/config/{kind}/web")).await),
    ]
}

/// What Consul answers for a kind it does not know: its `ConfigEntry.Get`/`List` RPCs
/// fail (500), the write and delete handlers refuse the kind before any RPC (400).
fn unknown_kind_answers(kind: &str) -> Vec<Answer> {
    let text = Some(TEXT.to_string());
    vec![
        (
            500,
            format!("invalid config entry kind: {kind}"),
            text.clone(),
        ),
        (
            500,
            format!("invalid config entry kind: {kind}"),
            text.clone(),
        ),
        (
            400,
            format!("Bad request: Request decoding failed: invalid config entry kind: {kind}"),
            text.clone(),
        ),
        (
            400,
            format!("Bad request: invalid config entry kind: {kind}"),
            text,
        ),
    ]
}

async fn service_defaults_still_work(c: &Consul) {
    let r = c
        .put_json(
            "/v1/config",
            &json!({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}),
        )
        .await;
    assert_eq!((r.status, r.json()), (200, json!(true)), "{}", r.text());
    let r = c.get("/v1/config/service-defaults/api").await;
    assert_eq!(
        (r.status, r.json()["Protocol"].clone()),
        (200, json!("grpc"))
    );
    let r = c.get("/v1/config/service-defaults").await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["Name"] == "api")
    );
    let r = c.delete("/v1/config/service-defaults/api").await;
    assert_eq!((r.status, r.json()), (200, json!({})));
}

#[tokio::test]
async fn a_kind_consul_never_had_is_500_on_reads_and_400_on_writes_and_deletes() {
    let sim = start().await;
    let c = Consul::new(&sim);
    assert_eq!(
        answers_for(&c, "service-defaultz").await,
        unknown_kind_answers("service-defaultz")
    );
    // A blocking read does not wait: the kind is refused before the wait.
    let r = bounded(5, c.get("/v1/config/service-defaultz?index=1&wait=30s")).await;
    assert_eq!(r.status, 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn configured_unsupported_kinds_answer_as_unknown_kinds_every_time() {
    let sim = start_with(|cfg| {
        cfg.consul.unsupported_config_kinds = vec!["api-gateway".into(), "http-route".into()];
    })
    .await;
    let c = Consul::new(&sim);
    for kind in ["http-route", "api-gateway"] {
        for _ in 0..2 {
            assert_eq!(answers_for(&c, kind).await, unknown_kind_answers(kind));
        }
    }
    // The exact bytes of reference §10.
    let r = c.get("/v1/config/http-route").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "invalid config entry kind: http-route")
    );
    let r = bounded(5, c.get("/v1/config/http-route?index=1&wait=30s")).await;
    assert_eq!(r.status, 500);
    // A full route body is refused for its kind before any field is looked at.
    let r = c.put_json("/v1/config", &route("r1")).await;
    assert_eq!(answer(&r), unknown_kind_answers("http-route")[2]);
    service_defaults_still_work(&c).await;
    let r = c.get("/v1/config/tcp-route").await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    sim.shutdown().await;
}

#[tokio::test]
async fn kinds_can_be_made_unavailable_and_available_again_at_run_time() {
    let sim = start().await;
    let c = Consul::new(&sim);
    put_route(&c, "r1").await;
    let before = c.get("/v1/config/http-route/r1").await.json();

    sim.set_unsupported_config_kinds(&["http-route"]);
    assert_eq!(
        answers_for(&c, "http-route").await,
        unknown_kind_answers("http-route")
    );
    let r = c.delete("/v1/config/http-route/r1").await;
    assert_eq!(r.status, 400);
    service_defaults_still_work(&c).await;

    sim.set_unsupported_config_kinds(&[]);
    // The stored route was kept, unchanged.
    let r = c.get("/v1/config/http-route/r1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ModifyIndex"], before["ModifyIndex"]);
    let r = c.get("/v1/config/http-route").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    put_route(&c, "r2").await;
    let r = c.delete("/v1/config/http-route/r2").await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    sim.shutdown().await;
}

#[tokio::test]
async fn blocked_reads_of_a_kind_end_with_the_error_when_it_becomes_unavailable() {
    let sim = start().await;
    let c = Consul::new(&sim);
    put_route(&c, "r1").await;
    let index = c.get("/v1/config/http-route").await.index();
    let list = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get(&format!("/v1/config/http-route?index={index}&wait=60s"))
                .await
        })
    };
    let one = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get(&format!("/v1/config/http-route/r1?index={index}&wait=60s"))
                .await
        })
    };
    // Reads of other kinds keep waiting.
    let other = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get(&format!(
                "/v1/config/service-defaults?index={index}&wait=1s"
            ))
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    sim.set_unsupported_config_kinds(&["http-route"]);
    let list = bounded(5, list).await.unwrap();
    let one = bounded(5, one).await.unwrap();
    assert_eq!(answer(&list), unknown_kind_answers("http-route")[0]);
    assert_eq!(answer(&one), unknown_kind_answers("http-route")[1]);
    let other = bounded(5, other).await.unwrap();
    assert_eq!(other.status, 200);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "the service-defaults read did not wait"
    );
    sim.shutdown().await;
}
