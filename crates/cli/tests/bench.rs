//! `steward bench`: the harness runs end to end and reports in the documented JSON shape.
//! A behaviour check: it asserts what converged and what was counted, never a time.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Lines, Spawned, run_with, steward};
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
    // The default runs the simulator as a child process: the operator's memory (the
    // bench process) and the simulator's are reported apart, both measured.
    assert_eq!(report["config"]["sim"], "child");
    assert!(cold["rss"]["peak_mib"].as_f64().unwrap() > 0.0);
    let operator = cold["operator_rss"]["peak_mib"].as_f64().unwrap();
    let simulator = cold["sim_rss"]["peak_mib"].as_f64().unwrap();
    assert!(operator > 0.0, "{cold:#}");
    assert!(simulator > 0.0, "{cold:#}");
    assert_eq!(cold["operator_rss"], cold["rss"]);
    assert!(cold["cpu"]["operator_s"].as_f64().is_some());
    assert!(cold["cpu"]["sim_s"].as_f64().is_some());
    assert!(
        report["rss_note"]
            .as_str()
            .unwrap()
            .contains("child process")
    );
}

#[test]
fn bench_in_process_keeps_one_memory_figure() {
    let mut cmd = steward();
    cmd.args([
        "bench",
        "cold",
        "--specs",
        "5",
        "--sim",
        "in-process",
        "--output",
        "json",
        "--timeout",
        "120s",
    ]);
    let run = run_with(cmd, Duration::from_secs(180));
    run.expect_code(0);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["config"]["sim"], "in-process");
    let cold = &report["scenarios"][0];
    assert_eq!(cold["synced"], 5, "{cold:#}");
    assert!(cold["rss"]["peak_mib"].as_f64().unwrap() > 0.0);
    assert!(cold["operator_rss"].is_null(), "{cold:#}");
    assert!(cold["sim_rss"].is_null(), "{cold:#}");
}

#[test]
fn bench_external_needs_the_addresses() {
    let mut cmd = steward();
    cmd.args(["bench", "cold", "--specs", "1", "--sim", "external"]);
    let run = run_with(cmd, Duration::from_secs(60));
    run.expect_code(2);
    assert!(run.stderr.contains("--consul"), "{}", run.stderr);
}

/// `NAME=http://ADDR` from the simulator's export line.
fn export_addr(line: &str, name: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[test]
fn bench_external_uses_a_running_simulator_once() {
    let mut sim = steward();
    sim.args([
        "sim",
        "--consul",
        "127.0.0.1:0",
        "--nomad",
        "127.0.0.1:0",
        "--vault",
        "127.0.0.1:0",
        "--alloc-start-delay",
        "20ms",
        "--min-healthy-time-factor",
        "0.01",
    ]);
    sim.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut sim = sim.spawn().unwrap();
    // Killed and reaped however the test ends.
    let mut out = Lines::new(sim.stdout.take().unwrap());
    let sim = Spawned::adopt(sim);
    let export = out.until(Duration::from_secs(30), |l| {
        l.contains("export CONSUL_HTTP_ADDR=")
    });
    let bench = || {
        let mut cmd = steward();
        cmd.args([
            "bench",
            "cold",
            "--specs",
            "3",
            "--rtt",
            "1",
            "--sim",
            "external",
            "--output",
            "json",
            "--timeout",
            "120s",
        ]);
        for var in ["CONSUL_HTTP_ADDR", "NOMAD_ADDR", "VAULT_ADDR"] {
            cmd.env(var, export_addr(&export, var));
        }
        run_with(cmd, Duration::from_secs(180))
    };
    let first = bench();
    first.expect_code(0);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["config"]["sim"], "external");
    let cold = &report["scenarios"][0];
    assert_eq!(cold["synced"], 3, "{cold:#}");
    assert!(cold["operator_rss"]["peak_mib"].as_f64().unwrap() > 0.0);
    assert!(cold["sim_rss"].is_null(), "{cold:#}");
    // A second run would meet the first one's specs and statuses: refused.
    let second = bench();
    second.expect_code(2);
    assert!(second.stderr.contains("fresh"), "{}", second.stderr);
    drop(sim);
}
