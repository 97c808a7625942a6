//! `steward diff` against the simulator: a cluster converged by `steward run`, then
//! edits of the specs previewed with the operator stopped, so that any write the
//! simulator sees would be the diff's own.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::stack::{Stack, copy_specs};
use serde_json::Value;
use steward_sim::Product;

const POLICY: &str = "deploy/guardrails.yaml";
const SOURCE: &str = "diff-test";

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn spec<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["specs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {report:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn diff_previews_every_effect_of_a_change_on_a_converged_cluster_and_writes_nothing() {
    let mut stack = Stack::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("specs");
    copy_specs(&common::repo_root().join("deploy/examples"), &dir);
    let d = dir.to_str().unwrap();
    stack.bootstrap(&dir);
    stack.start_operator();
    stack
        .steward(&[
            "push",
            d,
            "--source",
            SOURCE,
            "--policy",
            POLICY,
            "--wait",
            "--timeout",
            "100s",
        ])
        .expect_code(0);
    stack.stop_operator();
    let diff = |extra: &[&str]| {
        let mut args = vec!["diff", d, "--source", SOURCE, "--policy", POLICY];
        args.extend_from_slice(extra);
        stack.steward(&args)
    };

    let before = stack.writes();
    let r = diff(&[]);
    r.expect_code(0);
    assert!(r.stdout.contains("no changes"), "{}", r.stdout);
    assert!(r.stdout.contains("7 unchanged"), "{}", r.stdout);

    // A change of image and edge route, an intention opened and one closed, a Vault path
    // dropped, a spec removed, and a new one that cannot be placed.
    edit(&dir, "web-api.yaml", "web-api:2.3.1", "web-api:2.4.0");
    edit(&dir, "web-api.yaml", "timeout: 15s", "timeout: 20s");
    edit(
        &dir,
        "order-api.yaml",
        "    - service: nightly-settlement\n      methods: [POST]\n      pathPrefix: /settle\n",
        "    - service: market-data-cache\n      methods: [GET]\n      pathPrefix: /quotes\n",
    );
    edit(
        &dir,
        "order-api.yaml",
        "    - path: secret/data/trading/shared/*\n      capabilities: [read]\n",
        "",
    );
    std::fs::remove_file(dir.join("ledger-reader.yaml")).unwrap();
    std::fs::write(
        dir.join("risk-engine.yaml"),
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: risk-engine, namespace: trading}\nspec:\n  image: registry.example/risk-engine:1.0.0\n  replicas: 2\n  port: 8080\n  datacenters: [mars-1]\n",
    )
    .unwrap();

    let plans_before = stack
        .sim()
        .stats()
        .count(Product::Nomad, "PUT", "/v1/job/{id}/plan");
    let r = diff(&["--prune", "--output", "json"]);
    r.expect_code(2);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["formatVersion"], 1);
    assert_eq!(report["unchanged"], 4, "{report:#}");

    let web = spec(&report, "storefront/web-api");
    assert_eq!(web["action"], "update");
    assert_eq!(web["nomad"]["change"], "update");
    let image = web["nomad"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("Config.image"))
        .unwrap_or_else(|| panic!("{web:#}"));
    assert_eq!(image["old"], "registry.example/storefront/web-api:2.3.1");
    assert_eq!(image["new"], "registry.example/storefront/web-api:2.4.0");
    assert_eq!(web["nomad"]["placements"][0]["canary"], 1, "{web:#}");
    assert_eq!(
        web["routes"],
        serde_json::json!([{"verb": "changed", "host": "shop.example.com", "path": "/", "detail": "timeout 15s → 20s"}])
    );

    let order = spec(&report, "trading/order-api");
    let words: Vec<String> = order["intentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} → {} ({})",
                c["verb"].as_str().unwrap(),
                c["source"].as_str().unwrap(),
                c["destination"].as_str().unwrap(),
                c["requests"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        words,
        [
            "opens trading/market-data-cache → trading/order-api (GET /quotes)",
            "closes trading/nightly-settlement → trading/order-api (POST /settle)",
        ]
    );
    assert_eq!(order["vault"][0]["path"], "secret/data/trading/shared/*");
    assert_eq!(strings(&order["vault"][0]["removed"]), ["read"]);

    let gone = spec(&report, "finance/ledger-reader");
    assert_eq!(gone["action"], "delete");
    let deleted: Vec<String> = gone["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["kind"].as_str().unwrap(),
                d["name"].as_str().unwrap(),
                d["how"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [
            "nomad-job finance/ledger-reader stopped",
            "service-intentions ledger-reader deleted",
            "service-defaults ledger-reader deleted",
            "vault-role jwt-nomad/steward-finance-ledger-reader deleted",
            "vault-policy steward-finance-ledger-reader deleted",
        ]
    );
    assert_eq!(gone["intentions"].as_array().unwrap().len(), 2, "{gone:#}");
    assert!(
        gone["intentions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["verb"] == "closes")
    );

    let new = spec(&report, "trading/risk-engine");
    assert_eq!(new["action"], "create");
    assert_eq!(new["nomad"]["change"], "create");
    assert_eq!(new["nomad"]["failures"][0]["allocations"], 2, "{new:#}");
    assert_eq!(
        strings(&new["nomad"]["failures"][0]["reasons"]),
        ["No nodes were eligible for evaluation"]
    );
    assert_eq!(
        new["intentions"],
        serde_json::json!([]),
        "a spec allowing no one opens nothing"
    );

    // Text and markdown say the same in words.
    let text = diff(&["--prune"]);
    text.expect_code(2);
    assert!(
        text.stdout
            .contains("    closes trading/nightly-settlement → trading/order-api (POST /settle)\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("- finance/ledger-reader: delete: "),
        "{}",
        text.stdout
    );
    let md = diff(&["--prune", "--output", "markdown"]);
    md.expect_code(2);
    assert!(
        md.stdout.starts_with("<!-- steward-diff -->\n"),
        "{}",
        md.stdout
    );
    assert_eq!(md.stdout.matches("<details>").count(), 4, "{}", md.stdout);

    // Without --prune the removed spec is kept and said so.
    let kept = diff(&[]);
    kept.expect_code(2);
    assert!(
        kept.stdout
            .contains("(kept; --prune deletes): finance/ledger-reader"),
        "{}",
        kept.stdout
    );

    // A guardrail violation is invalid input: exit 1, and the spec's section names it.
    edit(
        &dir,
        "web-api.yaml",
        "registry.example/storefront",
        "docker.io/storefront",
    );
    let bad = diff(&["--output", "json"]);
    bad.expect_code(1);
    let report: Value = serde_json::from_str(&bad.stdout).unwrap();
    let web = spec(&report, "storefront/web-api");
    assert_eq!(web["action"], "invalid");
    assert!(
        web["guardrails"][0]["code"]
            .as_str()
            .unwrap()
            .starts_with("guardrail-"),
        "{web:#}"
    );
    assert!(bad.stderr.contains("web-api.yaml:"), "{}", bad.stderr);

    assert_eq!(stack.writes(), before, "steward diff wrote to a server");
    assert!(
        stack
            .sim()
            .stats()
            .count(Product::Nomad, "PUT", "/v1/job/{id}/plan")
            > plans_before,
        "the Nomad section comes from Nomad's plan"
    );
}

#[test]
fn diff_fails_with_1_never_2_when_a_server_cannot_be_read() {
    let r = {
        let mut cmd = common::steward();
        // Nothing listens on port 1.
        cmd.env("CONSUL_HTTP_ADDR", "http://127.0.0.1:1").args([
            "diff",
            "deploy/examples",
            "--source",
            SOURCE,
        ]);
        common::run_with(cmd, std::time::Duration::from_secs(60))
    };
    r.expect_code(1);
    assert!(
        r.stderr.contains("cannot read steward/specs/"),
        "{}",
        r.stderr
    );
    let usage = common::run(&["diff", "deploy/examples", "--output", "yaml"]);
    usage.expect_code(1);
}
