use serde_json::json;
use steward_operator::status::{Condition, ObjectStatus};

use super::*;

fn row(key: &str, phase: Option<Phase>, generation: u64, observed: u64, message: &str) -> SpecRow {
    SpecRow {
        key: key.to_owned(),
        generation: Some(generation),
        phase,
        observed: phase.map(|_| observed),
        message: message.to_owned(),
        since: None,
    }
}

fn keys(rows: &[SpecRow]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

#[test]
fn failing_and_blocked_specs_come_before_progressing_and_synced_ones() {
    let mut rows = vec![
        row("a/synced", Some(Phase::Synced), 5, 5, ""),
        row("a/stale-synced", Some(Phase::Synced), 6, 5, ""),
        row("a/progressing", Some(Phase::Progressing), 5, 5, ""),
        row("b/blocked", Some(Phase::Blocked), 5, 5, ""),
        row("b/invalid", Some(Phase::Invalid), 5, 5, ""),
        row("c/error", Some(Phase::Error), 5, 5, ""),
        row("c/degraded", Some(Phase::Degraded), 5, 5, ""),
        row("a/new", None, 5, 0, ""),
        row("a/pending", Some(Phase::Pending), 5, 5, ""),
    ];
    sort_by_attention(&mut rows);
    assert_eq!(
        keys(&rows),
        [
            "c/error",
            "c/degraded",
            "b/invalid",
            "b/blocked",
            "a/progressing",
            "a/pending",
            "a/new",
            // Synced, but of an older generation: the new one is on its way.
            "a/stale-synced",
            "a/synced",
        ]
    );
    assert_eq!(rows[7].attention(), Attention::InProgress);
    assert_eq!(rows[8].attention(), Attention::Healthy);
}

#[test]
fn the_filter_matches_namespace_phase_and_text_case_insensitively() {
    let rows = [
        row(
            "trading/order-api",
            Some(Phase::Synced),
            1,
            1,
            "all objects converged",
        ),
        row(
            "trading/ticker",
            Some(Phase::Error),
            1,
            1,
            "Nomad answered 500",
        ),
        row(
            "storefront/web-api",
            Some(Phase::Synced),
            1,
            1,
            "all objects converged",
        ),
        row("tools/new", None, 1, 0, "no status yet"),
    ];
    let pass = |f: &Filter| -> Vec<&str> {
        rows.iter()
            .filter(|r| f.matches(r))
            .map(|r| r.key.as_str())
            .collect()
    };
    let ns = Filter {
        namespace: Some("trading".into()),
        ..Filter::default()
    };
    assert_eq!(pass(&ns), ["trading/order-api", "trading/ticker"]);
    let phase = Filter {
        phase: Some(PhaseFilter::Is(Phase::Synced)),
        ..Filter::default()
    };
    assert_eq!(pass(&phase), ["trading/order-api", "storefront/web-api"]);
    let none = Filter {
        phase: Some(PhaseFilter::None),
        ..Filter::default()
    };
    assert_eq!(pass(&none), ["tools/new"]);
    let text = Filter {
        text: Some("NOMAD".into()),
        ..Filter::default()
    };
    assert_eq!(pass(&text), ["trading/ticker"]);
    let all = Filter {
        namespace: Some("trading".into()),
        phase: Some(PhaseFilter::Is(Phase::Synced)),
        text: Some("order".into()),
    };
    assert_eq!(pass(&all), ["trading/order-api"]);
    // A namespace is matched whole, not as a prefix.
    let partial = Filter {
        namespace: Some("trad".into()),
        ..Filter::default()
    };
    assert!(pass(&partial).is_empty());
}

#[test]
fn queries_parse_into_filters_and_bad_ones_say_what_is_wrong() {
    let q = OverviewQuery {
        ns: Some(" trading ".into()),
        phase: Some("synced".into()),
        q: Some("".into()),
        page: Some("3".into()),
    };
    let (f, page) = q.parse().unwrap();
    assert_eq!(f.namespace.as_deref(), Some("trading"));
    assert_eq!(f.phase, Some(PhaseFilter::Is(Phase::Synced)));
    assert_eq!(f.text, None);
    assert_eq!(page, 3);
    assert_eq!(f.query(3), "ns=trading&phase=Synced&page=3");
    assert_eq!(
        OverviewQuery::default().parse().unwrap(),
        (Filter::default(), 1)
    );

    let bad = OverviewQuery {
        phase: Some("Happy".into()),
        ..OverviewQuery::default()
    };
    let e = bad.parse().unwrap_err();
    assert_eq!(e, QueryError::UnknownPhase("Happy".into()));
    assert!(
        e.to_string().contains("Pending, Progressing, Synced"),
        "{e}"
    );
    let bad = OverviewQuery {
        page: Some("0".into()),
        ..OverviewQuery::default()
    };
    assert_eq!(bad.parse().unwrap_err(), QueryError::BadPage("0".into()));
}

#[test]
fn query_values_are_percent_encoded_for_links() {
    let f = Filter {
        text: Some("a b&c=d/é".into()),
        ..Filter::default()
    };
    assert_eq!(f.query(1), "q=a%20b%26c%3Dd%2F%C3%A9");
}

#[test]
fn pages_split_rows_and_clamp_out_of_range_pages() {
    assert_eq!(
        paginate(0, 1, 50),
        PageInfo {
            page: 1,
            pages: 1,
            start: 0,
            end: 0
        }
    );
    assert_eq!(
        paginate(120, 2, 50),
        PageInfo {
            page: 2,
            pages: 3,
            start: 50,
            end: 100
        }
    );
    assert_eq!(
        paginate(120, 9, 50),
        PageInfo {
            page: 3,
            pages: 3,
            start: 100,
            end: 120
        }
    );
    assert_eq!(paginate(100, 2, 50).end, 100);
}

#[test]
fn the_overview_counts_every_spec_but_shows_one_filtered_page() {
    let mut rows = Vec::new();
    for i in 0..120 {
        let phase = if i % 40 == 0 {
            Phase::Error
        } else {
            Phase::Synced
        };
        rows.push(row(&format!("ns{}/s{i:03}", i % 3), Some(phase), 1, 1, ""));
    }
    rows.push(row("ns0/fresh", None, 1, 0, ""));
    let o = overview(rows.clone(), Filter::default(), 1);
    assert_eq!(o.total, 121);
    assert_eq!(o.matched, 121);
    assert_eq!(o.rows.len(), PAGE_SIZE);
    assert_eq!(o.no_status, 1);
    assert_eq!(
        o.counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .copied()
            .collect::<Vec<_>>(),
        [(Phase::Synced, 117), (Phase::Error, 3)]
    );
    assert_eq!(o.counts.len(), Phase::ALL.len());
    assert_eq!(
        keys(&o.rows[..4]),
        ["ns0/s000", "ns1/s040", "ns2/s080", "ns0/fresh"]
    );
    assert_eq!(
        o.namespaces,
        [("ns0".into(), 41), ("ns1".into(), 40), ("ns2".into(), 40)]
    );

    let f = Filter {
        namespace: Some("ns1".into()),
        ..Filter::default()
    };
    let o = overview(rows, f, 2);
    assert_eq!((o.total, o.matched), (121, 40));
    assert_eq!(o.page.page, 1, "clamped to the only page");
    assert_eq!(o.rows.len(), 40);
    // Counts stay those of every spec: the filter narrows the list only.
    assert_eq!(o.counts[2], (Phase::Synced, 117));
}

#[test]
fn ages_read_as_people_say_them() {
    let now: jiff::Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
    let ago = |s: i64| {
        age(
            now,
            jiff::Timestamp::from_second(now.as_second() - s).unwrap(),
        )
    };
    assert_eq!(ago(0), "just now");
    assert_eq!(ago(45), "45s");
    assert_eq!(ago(12 * 60 + 5), "12m");
    assert_eq!(ago(3 * 3600), "3h");
    assert_eq!(ago(3 * 3600 + 5 * 60), "3h 5m");
    assert_eq!(ago(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
    assert_eq!(ago(-5), "in the future");
    let t = jiff::Timestamp::from_second(now.as_second() - 45).unwrap();
    assert_eq!(super::ago(now, t), "45s ago");
    assert_eq!(super::ago(now, now), "just now");
}

#[test]
fn degraded_holding_is_bad_news_and_other_conditions_holding_good() {
    assert_eq!(condition_class(ConditionStatus::True, "Available"), "good");
    assert_eq!(condition_class(ConditionStatus::False, "Available"), "bad");
    assert_eq!(condition_class(ConditionStatus::True, "Degraded"), "bad");
    assert_eq!(condition_class(ConditionStatus::False, "Degraded"), "good");
    assert_eq!(
        condition_class(ConditionStatus::Unknown, "Accepted"),
        "unknown"
    );
}

fn status_with_objects() -> StatusDoc {
    StatusDoc {
        observed_generation: 7,
        phase: Phase::Progressing,
        message: "m".into(),
        spec_hash: None,
        replicas: None,
        next_scaling_change: None,
        job_modify_index: None,
        conditions: vec![Condition {
            type_: "Accepted".into(),
            status: ConditionStatus::True,
            reason: "Valid".into(),
            message: String::new(),
            last_transition_time: None,
        }],
        objects: vec![
            ObjectStatus {
                kind: "vault-policy".into(),
                name: "steward-a-b".into(),
                state: ObjectState::Synced,
                message: None,
            },
            ObjectStatus {
                kind: "nomad-job".into(),
                name: "b".into(),
                state: ObjectState::Updated,
                message: Some("image".into()),
            },
        ],
        diagnostics: vec![],
        events: vec![],
    }
}

#[test]
fn objects_join_status_plan_and_desired_bodies() {
    let desired = json!({
        "nomad_job": {"namespace": "a", "id": "b", "job": {"ID": "b", "Count": 3}},
        "vault_policy": {"name": "steward-a-b", "hcl": "path \"x\" {}"},
        "http_routes": [{"kind": "http-route", "name": "a-b", "body": {"Kind": "http-route"}}],
    });
    let diff = json!({
        "conflicts": [],
        "steps": [
            {"kind": "nomad-job", "name": "b", "action": "update",
             "changes": [{"path": "TaskGroups[b].Count", "desired": 3, "live": 2},
                         {"path": "Meta[\"x\"]", "desired": null, "live": "y"}]},
            {"kind": "http-route", "name": "a-b", "action": "create", "changes": []},
        ],
        "inSync": [{"kind": "vault-policy", "name": "steward-a-b"}],
    });
    let out = objects(Some(&status_with_objects()), &desired, &diff);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].plan, Plan::InSync);
    assert_eq!(out[0].desired.as_deref(), Some("path \"x\" {}"));
    assert_eq!(
        out[1].plan,
        Plan::Update(vec![
            FieldDiff {
                path: "TaskGroups[b].Count".into(),
                desired: Some("3".into()),
                live: Some("2".into()),
            },
            FieldDiff {
                path: "Meta[\"x\"]".into(),
                desired: None,
                live: Some("\"y\"".into()),
            },
        ])
    );
    assert_eq!(out[1].state, Some(ObjectState::Updated));
    assert!(out[1].desired.as_deref().unwrap().contains("\"Count\": 3"));
    // Known to the plan only: not in the status yet.
    assert_eq!((out[2].kind.as_str(), out[2].state), ("http-route", None));
    assert_eq!(out[2].plan, Plan::Create);
    assert!(out[2].desired.is_some());
}

#[test]
fn a_conflict_or_an_unknown_live_view_is_said_so() {
    let diff = json!({
        "conflicts": [{"kind": "nomad-job", "name": "b", "message": "owned by spec x/b"}],
        "steps": [], "inSync": [],
    });
    let out = objects(Some(&status_with_objects()), &json!(null), &diff);
    assert_eq!(out[1].plan, Plan::Conflict("owned by spec x/b".into()));
    assert_eq!(out[0].plan, Plan::Unknown);

    let waiting = json!({
        "error": "caches this spec needs have not synced",
        "waitingFor": [{"kind": "nomad-job", "cache": "nomad-jobs", "error": "403 Forbidden"}],
    });
    assert_eq!(
        plan_note(&waiting).unwrap(),
        "caches this spec needs have not synced: nomad-jobs (403 Forbidden)"
    );
    assert!(plan_note(&diff).is_none());
    assert!(plan_note(&json!(null)).is_some());
}

#[test]
fn rows_cover_stored_specs_and_statuses_of_gone_keys() {
    let s = status_with_objects();
    let rows = rows_of(
        vec![("a/b".into(), 7), ("a/new".into(), 3)],
        vec![("a/b".into(), s.clone()), ("a/gone".into(), s)],
    );
    let by_key = |k: &str| rows.iter().find(|r| r.key == k).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(by_key("a/b").phase, Some(Phase::Progressing));
    assert_eq!(by_key("a/new").phase, None);
    assert_eq!(by_key("a/gone").generation, None);
    assert!(by_key("a/gone").current());
}
