//! `steward bench`: the harness runs end to end and reports in the documented JSON shape.
//! A behaviour check: it asserts what converged and what was counted, never a time.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_with, steward};
use serde_json::Value;

#[test]
fn bench_cold_reports_every_spec_synced_in_json() {
    let mut cmd = steward();
    cmd.args([
        "bench",
        "cold",
        "--specs",
        "20",
        "--output",
        "json",
        "--timeout",
        "120s",
    ]);
    let run = run_with(cmd, Duration::from_secs(180));
    run.expect_code(0);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["config"]["scenario"], "cold");
    assert_eq!(report["config"]["specs"], 20);
    assert!(report["cores"].as_u64().unwrap() >= 1);
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "{report:#}");
    let cold = &scenarios[0];
    assert_eq!(cold["scenario"], "cold");
    assert_eq!(cold["synced"], 20, "{cold:#}");
    assert_eq!(cold["phases"]["Synced"], 20, "{cold:#}");
    assert!(cold["wall_s"].as_f64().is_some());
    let latency = &cold["latencies"][0];
    assert_eq!(latency["count"], 20);
    for field in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(latency[field].as_f64().is_some(), "{field} in {latency}");
    }
    // Every spec owns a job, intentions, service-defaults, a policy, a role and a route:
    // each was written (at least once) by the operator.
    assert!(
        cold["writes"]["objects"].as_u64().unwrap() >= 20 * 6,
        "{cold:#}"
    );
    let products: Vec<&str> = cold["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product"].as_str().unwrap())
        .collect();
    for p in ["consul", "nomad", "vault"] {
        assert!(products.contains(&p), "{p} in {products:?}");
    }
    assert_eq!(
        cold["requests_total"].as_u64().unwrap(),
        cold["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(cold["rss"]["peak_mib"].as_f64().unwrap() > 0.0);
    assert!(cold["cpu"]["operator_s"].as_f64().is_some());
}
