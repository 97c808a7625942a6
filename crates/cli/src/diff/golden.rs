//! Golden files of every section of the three renderings (`src/diff/snapshots/`):
//! fixed previews in, text, markdown and JSON out. Regenerate after an intended change
//! with `INSTA_UPDATE=always cargo test -p steward-cli diff::golden` (or `cargo insta
//! review`), and read the diff of the files before committing.
#![allow(clippy::unwrap_used)]

use super::model::*;
use super::output;

fn spec(key: &str, action: SpecAction) -> SpecDiff {
    let name = key.rsplit('/').next().unwrap();
    SpecDiff::new(
        Some(key.to_owned()),
        (action != SpecAction::Delete).then(|| format!("specs/{name}.yaml")),
        action,
    )
}

fn report(specs: Vec<SpecDiff>) -> Report {
    Report {
        format_version: FORMAT_VERSION,
        source: "git@example:acme/platform.git#specs".to_owned(),
        specs,
        unchanged: 4,
        stale: Vec::new(),
    }
}

fn nomad_update() -> SpecDiff {
    let mut s = spec("trading/order-api", SpecAction::Update);
    s.nomad = Some(NomadSection {
        job: "trading/order-api".into(),
        change: JobChange::Update,
        fields: vec![
            JobField {
                path: "TaskGroups[order-api].Count".into(),
                old: Some("3".into()),
                new: Some("4".into()),
                annotations: vec!["forces create".into()],
            },
            JobField {
                path: "TaskGroups[order-api].Tasks[app].Config.image".into(),
                old: Some("registry.example/order-api:1.4.2".into()),
                new: Some("registry.example/order-api:1.5.0".into()),
                annotations: vec![],
            },
            JobField {
                path: "TaskGroups[order-api].Tasks[app].Env[FEATURE_X]".into(),
                old: None,
                new: Some("on".into()),
                annotations: vec![],
            },
            JobField {
                path: "TaskGroups[order-api].Tasks[app].Env[LEGACY|MODE]".into(),
                old: Some("1".into()),
                new: None,
                annotations: vec![],
            },
        ],
        placements: vec![Placement {
            group: "order-api".into(),
            place: 1,
            destructive_update: 1,
            ignore: 2,
            ..Placement::default()
        }],
        failures: vec![],
        warnings: vec!["Group \"order-api\" has warnings: 1 error occurred".into()],
        next_periodic_launch: None,
    });
    s
}

fn nomad_create_failing() -> SpecDiff {
    let mut s = spec("trading/nightly-settlement", SpecAction::Create);
    s.nomad = Some(NomadSection {
        job: "trading/nightly-settlement".into(),
        change: JobChange::Create,
        fields: vec![],
        placements: vec![Placement {
            group: "nightly-settlement".into(),
            place: 2,
            ..Placement::default()
        }],
        failures: vec![PlacementFailure {
            group: "nightly-settlement".into(),
            allocations: 2,
            reasons: vec![
                "No nodes were eligible for evaluation".into(),
                "Constraint \"missing drivers\": 1 nodes excluded by filter".into(),
            ],
        }],
        warnings: vec![],
        next_periodic_launch: Some("2026-12-08T02:00:00+09:00".into()),
    });
    s
}

fn intentions() -> SpecDiff {
    let mut s = spec("trading/order-api", SpecAction::Update);
    let change = |verb, source: &str, requests: &str| IntentionChange {
        verb,
        source: source.into(),
        destination: "trading/order-api".into(),
        requests: requests.into(),
    };
    s.intentions = vec![
        change(IntentionVerb::Opens, "storefront/web-api", "GET /orders"),
        change(
            IntentionVerb::Closes,
            "trading/nightly-settlement",
            "POST /settle",
        ),
        change(IntentionVerb::Denies, "batch", "DELETE"),
        change(IntentionVerb::StopsDenying, "batch", "all traffic"),
        change(
            IntentionVerb::Reorders,
            "mobile-bff",
            "deny DELETE, then allow all requests",
        ),
        change(IntentionVerb::Opens, "any service", "all traffic"),
    ];
    s
}

fn vault() -> SpecDiff {
    let mut s = spec("trading/order-api", SpecAction::Update);
    let change = |path: &str, added: &[&str], removed: &[&str]| CapabilityChange {
        policy: "steward-trading-order-api".into(),
        path: path.into(),
        added: added.iter().map(|c| (*c).to_owned()).collect(),
        removed: removed.iter().map(|c| (*c).to_owned()).collect(),
    };
    s.vault = vec![
        change("secret/data/trading/order-api/*", &["list"], &["delete"]),
        change(
            "secret/metadata/trading/order-api/*",
            &["list", "read"],
            &[],
        ),
        change("secret/data/trading/shared/*", &[], &["read"]),
    ];
    s
}

fn routes() -> SpecDiff {
    let mut s = spec("storefront/web-api", SpecAction::Update);
    let change = |verb, path: &str, detail: &str| RouteChange {
        verb,
        host: "shop.example.com".into(),
        path: path.into(),
        detail: detail.into(),
    };
    s.routes = vec![
        change(RouteVerb::Added, "/health (exact)", "→ web-api"),
        change(
            RouteVerb::Changed,
            "/api/",
            "timeout 5s → 10s, rewrite / → (none)",
        ),
        change(RouteVerb::Removed, "/old/", "→ web-api, retries 2"),
    ];
    s
}

fn deleted() -> SpecDiff {
    let mut s = spec("tools/ledger-reader", SpecAction::Delete);
    s.nomad = Some(NomadSection {
        job: "tools/ledger-reader".into(),
        change: JobChange::Stop,
        fields: vec![],
        placements: vec![],
        failures: vec![],
        warnings: vec![],
        next_periodic_launch: None,
    });
    s.intentions = vec![IntentionChange {
        verb: IntentionVerb::Closes,
        source: "trading/order-api".into(),
        destination: "tools/ledger-reader".into(),
        requests: "all traffic".into(),
    }];
    s.deletions = vec![
        Deletion {
            kind: "nomad-job".into(),
            name: "tools/ledger-reader".into(),
            how: "stopped".into(),
        },
        Deletion {
            kind: "service-intentions".into(),
            name: "ledger-reader".into(),
            how: "deleted".into(),
        },
        Deletion {
            kind: "vault-role".into(),
            name: "jwt-nomad/steward-tools-ledger-reader".into(),
            how: "deleted".into(),
        },
    ];
    s
}

fn problem(line: usize, path: &str, code: &str, message: &str) -> Problem {
    Problem {
        file: "specs/order-api.yaml".into(),
        line,
        column: 7,
        path: path.into(),
        code: code.into(),
        message: message.into(),
    }
}

fn guardrails() -> SpecDiff {
    let mut s = spec("trading/order-api", SpecAction::Invalid);
    s.guardrails = vec![
        problem(
            31,
            "spec.secrets[0].path",
            "guardrail-vault-path",
            "secret/data/finance/* is outside the paths allowed for trading/order-api: secret/data/trading/order-api/*",
        ),
        problem(
            9,
            "spec.image",
            "guardrail-registry",
            "registry docker.io is not allowed; allowed: registry.example",
        ),
    ];
    s
}

fn invalid() -> SpecDiff {
    let mut s = SpecDiff::new(None, Some("specs/broken.yaml".into()), SpecAction::Invalid);
    s.invalid = vec![problem(
        3,
        "",
        "yaml-syntax",
        "did not find expected key <here>",
    )];
    s
}

fn warnings_and_errors() -> SpecDiff {
    let mut s = spec("payments/ledger", SpecAction::Create);
    s.warnings = vec![
        "Nomad namespace payments does not exist, so the job cannot be planned: create it first (`steward bootstrap`)".into(),
        "http-route payments-ledger exists and is not owned by this spec: the operator will not change it (Conflict)".into(),
    ];
    s.errors = vec![
        "cannot read Vault policy steward-payments-ledger: Vault GET /v1/sys/policies/acl/steward-payments-ledger: permission denied: 1 error occurred: * permission denied".into(),
    ];
    s
}

fn document_only() -> SpecDiff {
    spec("trading/price-feed", SpecAction::Update)
}

fn sections() -> Vec<(&'static str, SpecDiff)> {
    vec![
        ("nomad_update", nomad_update()),
        ("nomad_create_failing", nomad_create_failing()),
        ("intentions", intentions()),
        ("vault", vault()),
        ("routes", routes()),
        ("deleted", deleted()),
        ("guardrails", guardrails()),
        ("invalid", invalid()),
        ("warnings_and_errors", warnings_and_errors()),
        ("document_only", document_only()),
    ]
}

#[test]
fn every_section_renders_to_its_golden_text_and_markdown() {
    for (name, section) in sections() {
        let r = report(vec![section]);
        insta::assert_snapshot!(format!("{name}.txt"), output::text(&r));
        insta::assert_snapshot!(format!("{name}.md"), output::markdown(&r));
    }
}

#[test]
fn the_whole_report_renders_to_its_golden_files_in_every_format() {
    let mut r = report(sections().into_iter().map(|(_, s)| s).collect());
    r.stale = vec!["old/thing".into()];
    insta::assert_snapshot!("report.txt", output::text(&r));
    insta::assert_snapshot!("report.md", output::markdown(&r));
    insta::assert_snapshot!("report.json", output::json(&r));
}

#[test]
fn no_change_says_so_in_every_format() {
    let r = report(vec![]);
    insta::assert_snapshot!("no_change.txt", output::text(&r));
    insta::assert_snapshot!("no_change.md", output::markdown(&r));
    insta::assert_snapshot!("no_change.json", output::json(&r));
}

#[test]
fn exit_codes_follow_terraforms_detailed_exit_codes() {
    use crate::exit::Exit;
    assert_eq!(super::exit_for(&report(vec![])), Exit::Ok);
    assert_eq!(super::exit_for(&report(vec![routes()])), Exit::Changes);
    // A document-only change is still a change: the push writes it.
    assert_eq!(
        super::exit_for(&report(vec![document_only()])),
        Exit::Changes
    );
    assert_eq!(
        super::exit_for(&report(vec![routes(), guardrails()])),
        Exit::Invalid
    );
    assert_eq!(
        super::exit_for(&report(vec![warnings_and_errors()])),
        Exit::Invalid,
        "an incomplete preview is never 'no change' nor 'changes'"
    );
    // Warnings alone (a missing namespace, a conflict) do not make the input invalid.
    let mut warned = routes();
    warned.warnings.push("w".into());
    assert_eq!(super::exit_for(&report(vec![warned])), Exit::Changes);
}

#[test]
fn markdown_is_one_collapsible_section_per_spec_and_escapes_user_text() {
    let r = report(sections().into_iter().map(|(_, s)| s).collect());
    let md = output::markdown(&r);
    assert!(md.starts_with(output::MARKDOWN_MARKER));
    assert_eq!(md.matches("<details>").count(), sections().len());
    assert_eq!(md.matches("</details>").count(), sections().len());
    // `<here>` from a diagnostic must not become an HTML tag.
    assert!(md.contains("\\<here\\>"), "{md}");
    // A `|` inside a table cell must not split the cell.
    assert!(md.contains("Env[LEGACY\\|MODE]"), "{md}");
}
