//! Golden files of the pages for fixed inputs (`src/pages/snapshots/`), one tag per line
//! so that a change reads as a diff.

use steward_operator::detect::{FeatureReport, ServerReport};
use steward_operator::status::{Condition, DiagnosticDoc, EventDoc, ObjectStatus};
use steward_operator::{GcObject, StatusDoc};
use steward_render::ObjectKind;

use super::*;
use crate::view::{FieldDiff, Filter, ObjectView, SpecRow};

fn now() -> jiff::Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn lines(m: &Markup) -> String {
    m.clone().into_string().replace("><", ">\n<")
}

fn condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    t: &str,
) -> Condition {
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Some(at(t)),
    }
}

fn status(phase: Phase, observed: u64, message: &str) -> StatusDoc {
    StatusDoc {
        observed_generation: observed,
        phase,
        message: message.into(),
        spec_hash: Some("abc".into()),
        replicas: Some(3),
        next_scaling_change: None,
        job_modify_index: None,
        conditions: vec![
            condition(
                "Accepted",
                ConditionStatus::True,
                "Valid",
                "the spec is valid",
                "2026-12-07T11:00:00Z",
            ),
            condition(
                "ResourcesSynced",
                ConditionStatus::True,
                "Applied",
                "1 object updated",
                "2026-12-07T11:58:30Z",
            ),
            condition(
                "Available",
                ConditionStatus::False,
                "DeploymentRunning",
                "1 of 3 allocations healthy",
                "2026-12-07T11:59:15Z",
            ),
        ],
        objects: vec![
            ObjectStatus {
                kind: "vault-policy".into(),
                name: "steward-trading-order-api".into(),
                state: ObjectState::Synced,
                message: None,
            },
            ObjectStatus {
                kind: "nomad-job".into(),
                name: "order-api".into(),
                state: ObjectState::Updated,
                message: Some("image changed".into()),
            },
        ],
        diagnostics: vec![],
        events: vec![],
    }
}

#[test]
fn overview_golden() {
    let rows = vec![
        SpecRow::new(
            "trading/order-api".into(),
            Some(12),
            Some(&status(Phase::Progressing, 12, "deployment running")),
        ),
        SpecRow::new(
            "trading/ticker".into(),
            Some(9),
            Some(&status(Phase::Error, 9, "Nomad answered 500 <html>")),
        ),
        SpecRow::new(
            "storefront/web-api".into(),
            Some(4),
            Some(&status(Phase::Synced, 4, "all objects converged")),
        ),
        SpecRow::new("tools/new".into(), Some(30), None),
    ];
    let o = crate::view::overview(rows.clone(), Filter::default(), 1);
    insta::assert_snapshot!("overview", lines(&overview(&o, None, now())));

    let filtered = crate::view::overview(
        rows,
        Filter {
            namespace: Some("trading".into()),
            phase: None,
            text: Some("tick & co".into()),
        },
        1,
    );
    insta::assert_snapshot!(
        "overview_filtered_with_error",
        lines(&overview(
            &filtered,
            Some("page \"x\" is not a page number (1, 2, ...)"),
            now()
        ))
    );
}

#[test]
fn overview_pagination_golden_and_a_full_page_stays_light() {
    let rows: Vec<SpecRow> = (0..120)
        .map(|i| {
            SpecRow::new(
                format!("ns/spec-{i:03}"),
                Some(5),
                Some(&status(Phase::Synced, 5, "all objects converged")),
            )
        })
        .collect();
    let o = crate::view::overview(
        rows,
        Filter {
            text: Some("spec".into()),
            ..Filter::default()
        },
        2,
    );
    let html = overview(&o, None, now()).into_string();
    assert!(html.len() < 200 * 1024 - 20 * 1024, "{} bytes", html.len());
    let nav = &html[html.find("<nav class=\"pages\"").unwrap()..];
    insta::assert_snapshot!("overview_pages_nav", nav.replace("><", ">\n<"));
}

#[test]
fn spec_page_golden() {
    let mut s = status(Phase::Progressing, 12, "deployment running");
    s.events = vec![];
    let p = SpecPage {
        key: "trading/order-api".into(),
        document: Some((12, "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: order-api, namespace: trading}\nspec:\n  image: registry.example/order-api:1.4.3 # <new>\n".into())),
        objects: vec![
            ObjectView { kind: "vault-policy".into(), name: "steward-trading-order-api".into(), state: Some(ObjectState::Synced), message: None, plan: Plan::InSync, desired: Some("path \"secret/data/trading/*\" { capabilities = [\"read\"] }".into()) },
            ObjectView {
                kind: "nomad-job".into(), name: "order-api".into(), state: Some(ObjectState::Updated), message: Some("image changed".into()),
                plan: Plan::Update(vec![FieldDiff { path: "TaskGroups[order-api].Tasks[app].Config.image".into(), desired: Some("\"registry.example/order-api:1.4.3\"".into()), live: Some("\"registry.example/order-api:1.4.2\"".into()) }]),
                desired: Some("{\n  \"ID\": \"order-api\"\n}".into()),
            },
            ObjectView { kind: "http-route".into(), name: "trading-order-api".into(), state: None, message: None, plan: Plan::Create, desired: None },
        ],
        plan_note: None,
        events: vec![
            EventView { time: at("2026-12-07T11:59:15.123456789Z"), type_: "Normal".into(), reason: "JobRegistered".into(), message: "registered version 3".into(), object: Some("nomad job trading/order-api".into()) },
            EventView { time: at("2026-12-07T11:58:30Z"), type_: "Warning".into(), reason: "Drift".into(), message: "Count differs <2 vs 3>".into(), object: None },
        ],
        status: Some(s),
    };
    insta::assert_snapshot!("spec", lines(&spec(&p, now())));
}

#[test]
fn invalid_and_removed_specs_golden() {
    let mut s = status(Phase::Invalid, 3, "the document is invalid");
    s.conditions = vec![condition(
        "Accepted",
        ConditionStatus::False,
        "Invalid",
        "1 error",
        "2026-12-07T11:00:00Z",
    )];
    s.objects.clear();
    s.diagnostics = vec![DiagnosticDoc {
        line: 7,
        column: 3,
        path: "spec.replicas".into(),
        message: "must be at least 1".into(),
        severity: "error".into(),
        code: "minimum".into(),
    }];
    s.events = vec![EventDoc {
        time: at("2026-12-07T11:00:00Z"),
        type_: "Warning".into(),
        reason: "Invalid".into(),
        message: "1 error".into(),
        object: None,
    }];
    let p = SpecPage {
        key: "tools/broken".into(),
        document: None,
        objects: vec![],
        plan_note: Some("caches this spec needs have not synced: nomad-jobs (403)".into()),
        events: vec![],
        status: Some(s),
    };
    insta::assert_snapshot!("spec_invalid_removed", lines(&spec(&p, now())));
}

fn blocked() -> BlockedSet {
    BlockedSet {
        digest: "d1g3st".into(),
        specs: vec!["shop/cart".into(), "shop/web".into()],
        owning_specs: 2,
        count: 3,
        owned: 3,
        objects: vec![
            GcObject {
                owner: "shop/cart".into(),
                kind: ObjectKind::NomadJob,
                name: "cart".into(),
            },
            GcObject {
                owner: "shop/cart".into(),
                kind: ObjectKind::VaultPolicy,
                name: "steward-shop-cart".into(),
            },
            GcObject {
                owner: "shop/web".into(),
                kind: ObjectKind::ServiceDefaults,
                name: "web".into(),
            },
        ],
    }
}

#[test]
fn gc_pages_golden() {
    let nothing = GcPage {
        blocked: None,
        leader: true,
        token_configured: true,
        notice: None,
    };
    insta::assert_snapshot!("gc_nothing", lines(&gc(&nothing, now())));
    let blocked_page = GcPage {
        blocked: Some(blocked()),
        leader: true,
        token_configured: true,
        notice: Some(Notice::Refused(
            "that is not this operator's API token".into(),
        )),
    };
    let html = lines(&gc(&blocked_page, now()));
    assert!(
        !html.contains("value=\"e2e"),
        "a token is never echoed back"
    );
    insta::assert_snapshot!("gc_blocked_refused", html);
    let read_only = GcPage {
        blocked: Some(blocked()),
        leader: false,
        token_configured: false,
        notice: None,
    };
    let html = lines(&gc(&read_only, now()));
    assert!(!html.contains("<form class=\"approve\""), "{html}");
    insta::assert_snapshot!("gc_blocked_read_only_follower", html);
    let approved = GcPage {
        blocked: None,
        leader: true,
        token_configured: true,
        notice: Some(Notice::Approved("d1g3st".into())),
    };
    insta::assert_snapshot!("gc_approved", lines(&gc(&approved, now())));
}

#[test]
fn cluster_page_golden() {
    let detected = Detected {
        servers: vec![
            ServerReport {
                product: "consul".into(),
                version: Some("1.21.0".into()),
                minimum: "1.16.0".into(),
                supported: Some(true),
                detail: "1.21.0 ≥ 1.16.0".into(),
            },
            ServerReport {
                product: "vault".into(),
                version: None,
                minimum: "1.15.0".into(),
                supported: None,
                detail: "connection refused".into(),
            },
        ],
        features: vec![FeatureReport {
            product: "nomad".into(),
            feature: "job list Meta".into(),
            available: Some(false),
            detail: "no Meta in stubs".into(),
            without: "each job's owner is read from the job".into(),
        }],
    };
    let caches = vec![steward_operator::cache::CacheState {
        name: "nomad-jobs",
        synced: true,
        fresh: false,
        failures: 4,
        consecutive_failures: 2,
        error: Some("503 <no leader>".into()),
        failing_for_seconds: Some(12),
    }];
    let p = ClusterPage {
        detected: Some(detected),
        caches,
        edge: None,
    };
    insta::assert_snapshot!("cluster", lines(&cluster(&p)));
    let p = ClusterPage {
        detected: None,
        caches: vec![],
        edge: Some(vec![
            edge_proxy("edge-1", "10.0.0.5:4711", Some("v12"), None),
            edge_proxy("edge-2", "10.0.0.6:4711", None, Some("unknown cluster")),
        ]),
    };
    insta::assert_snapshot!("cluster_no_detection_with_edge", lines(&cluster(&p)));
}

fn edge_proxy(node: &str, address: &str, acked: Option<&str>, rejected: Option<&str>) -> EdgeProxy {
    EdgeProxy {
        node: node.into(),
        address: address.into(),
        acked_version: acked.map(Into::into),
        rejected: rejected.map(Into::into),
    }
}
