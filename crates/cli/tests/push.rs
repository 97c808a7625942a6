//! `steward push` and `steward status` against an in-process simulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Run, Spawned, eventually, run_with, steward};
use steward_hashi::consul::KvPair;
use steward_hashi::{ConsulClient, ConsulConfig, QueryOptions, WriteOptions};
use steward_sim::{FaultRule, FaultRuleKind, Product, Sim, SimConfig, SimHandle};
use tokio::runtime::Runtime;

/// A simulator on its own runtime; the test thread stays free to run the binary.
struct Bed {
    rt: Runtime,
    sim: Option<SimHandle>,
    consul: ConsulClient,
}

impl Bed {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(Sim::start(SimConfig::default())).unwrap();
        let consul = ConsulClient::new(
            ConsulConfig::default()
                .with_address(&sim.consul_url())
                .unwrap(),
        )
        .unwrap();
        Self {
            rt,
            sim: Some(sim),
            consul,
        }
    }

    fn sim(&self) -> &SimHandle {
        self.sim.as_ref().unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = steward();
        cmd.env("CONSUL_HTTP_ADDR", self.sim().consul_url());
        cmd.args(args);
        cmd
    }

    fn steward(&self, args: &[&str]) -> Run {
        run_with(self.cmd(args), Duration::from_secs(60))
    }

    fn kv(&self, prefix: &str) -> Vec<KvPair> {
        self.rt
            .block_on(self.consul.kv_list(prefix, &QueryOptions::new()))
            .unwrap()
            .value
    }

    fn put(&self, key: &str, value: &str, flags: u64) {
        assert!(
            self.rt
                .block_on(self.consul.kv_put(
                    key,
                    value.as_bytes(),
                    Some(flags),
                    &WriteOptions::new()
                ))
                .unwrap()
        );
    }

    fn txns(&self) -> u64 {
        self.sim().stats().count(Product::Consul, "PUT", "/v1/txn")
    }

    fn writes(&self) -> u64 {
        self.sim().stats().writes(Product::Consul)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

fn spec(ns: &str, name: &str, tag: &str) -> String {
    format!(
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  image: registry.example/{name}:{tag}\n  port: 8080\n"
    )
}

fn write_specs(dir: &Path, ns: &str, names: &[String]) {
    for name in names {
        std::fs::write(dir.join(format!("{name}.yaml")), spec(ns, name, "1.0")).unwrap();
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("svc-{i:03}")).collect()
}

fn by_key(pairs: &[KvPair]) -> std::collections::BTreeMap<String, (u64, u64)> {
    pairs
        .iter()
        .map(|p| (p.key.clone(), (p.modify_index, p.flags)))
        .collect()
}

#[test]
fn pushes_write_in_batches_then_nothing_then_exactly_the_edited_key() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write_specs(dir.path(), "team", &names(130));

    let r = bed.steward(&["push", d, "--source", "test"]);
    r.expect_code(0);
    assert_eq!(bed.txns(), 3, "130 keys in ceil(130/63) = 3 transactions");
    let first = by_key(&bed.kv("steward/specs/"));
    assert_eq!(first.len(), 130);
    assert!(
        first
            .keys()
            .all(|k| k.starts_with("steward/specs/team/svc-"))
    );
    let flags: std::collections::BTreeSet<u64> = first.values().map(|(_, f)| *f).collect();
    assert_eq!(flags.len(), 1, "every key carries the source marker");
    assert!(
        r.stdout.contains("pushed 130 create in 3 transactions"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("team/svc-000  create"), "{}", r.stdout);

    let writes = bed.writes();
    let r = bed.steward(&["push", d, "--source", "test"]);
    r.expect_code(0);
    assert_eq!(bed.writes(), writes, "an unchanged push writes nothing");
    assert!(r.stdout.contains("130 unchanged"), "{}", r.stdout);

    std::fs::write(
        dir.path().join("svc-042.yaml"),
        spec("team", "svc-042", "2.0"),
    )
    .unwrap();
    let r = bed.steward(&["push", d, "--source", "test"]);
    r.expect_code(0);
    assert_eq!(bed.writes(), writes + 1, "one txn");
    let after = by_key(&bed.kv("steward/specs/"));
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != first[*k]).collect();
    assert_eq!(changed, ["steward/specs/team/svc-042"]);
    assert!(r.stdout.contains("1 update, 129 unchanged"), "{}", r.stdout);
    let stored = bed.kv("steward/specs/team/svc-042");
    assert_eq!(
        String::from_utf8(stored[0].value.clone()).unwrap(),
        spec("team", "svc-042", "2.0"),
        "the document is stored byte for byte"
    );
}

/// A valid spec of `bytes` bytes: YAML comments make up the weight, as a long `env`
/// would.
fn padded_spec(ns: &str, name: &str, tag: &str, bytes: usize) -> String {
    let mut text = spec(ns, name, tag);
    let line = format!("# {}\n", "x".repeat(78));
    while text.len() + line.len() <= bytes {
        text.push_str(&line);
    }
    text
}

#[test]
fn a_thousand_changed_8_kib_specs_are_cut_by_bytes_into_at_least_16_transactions() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let all: Vec<String> = (0..1000).map(|i| format!("svc-{i:04}")).collect();
    for (tag, expect) in [("1.0", "1000 create"), ("2.0", "1000 update")] {
        for name in &all {
            let text = padded_spec("team", name, tag, 8 * 1024);
            std::fs::write(dir.path().join(format!("{name}.yaml")), text).unwrap();
        }
        let before = bed.txns();
        let r = bed.steward(&["push", d, "--source", "test"]);
        // 63 such specs make a 680 KiB body: Consul (and the simulator) answer 413.
        r.expect_code(0);
        let txns = bed.txns() - before;
        assert!(txns >= 16, "{txns} transactions");
        assert!(
            r.stdout
                .contains(&format!("pushed {expect} in {txns} transactions")),
            "{}",
            r.stdout
        );
    }
    let stored = bed.kv("steward/specs/team/");
    assert_eq!(stored.len(), 1000);
    assert!(stored.iter().all(|p| p.value.len() > 8 * 1024 - 100));
    assert_eq!(
        String::from_utf8(stored[7].value.clone()).unwrap(),
        padded_spec("team", "svc-0007", "2.0", 8 * 1024)
    );
}

#[test]
fn a_spec_consul_cannot_store_is_a_diagnostic_and_nothing_is_written() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), "team", &names(70));
    // Under the KV value limit, but base64-encoded it is more than a transaction body.
    let body = padded_spec("team", "big", "1", 450 * 1024);
    std::fs::write(dir.path().join("big.yaml"), body).unwrap();
    // Over the KV value limit itself.
    let value = padded_spec("team", "huge", "1", 600 * 1024);
    std::fs::write(dir.path().join("huge.yaml"), value).unwrap();
    let r = bed.steward(&["push", dir.path().to_str().unwrap(), "--source", "t"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("error[too-large-for-consul]") && r.stderr.contains("big.yaml:1:1"),
        "{}",
        r.stderr
    );
    // Validation itself refuses a document over 512 KiB, where it passes the limit.
    assert!(
        r.stderr.contains("error[document-too-large]") && r.stderr.contains("huge.yaml:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);
    assert_eq!(
        bed.sim().stats().total(Product::Consul),
        0,
        "Consul was not even read"
    );
}

#[test]
fn prune_deletes_only_this_sources_removed_keys() {
    let bed = Bed::new();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_specs(a.path(), "alpha", &["x".into(), "y".into()]);
    write_specs(b.path(), "beta", &["z".into()]);
    let (ad, bd) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    bed.steward(&["push", ad, "--source", "repo-a"])
        .expect_code(0);
    bed.steward(&["push", bd, "--source", "repo-b"])
        .expect_code(0);
    bed.put(
        "steward/specs/default/by-hand",
        &spec("default", "by-hand", "1"),
        0,
    );

    std::fs::remove_file(a.path().join("y.yaml")).unwrap();
    let r = bed.steward(&["push", ad, "--source", "repo-a"]);
    r.expect_code(0);
    assert!(r.stdout.contains("alpha/y  stale"), "{}", r.stdout);
    assert!(r.stdout.contains("--prune"), "{}", r.stdout);
    assert_eq!(
        bed.kv("steward/specs/").len(),
        4,
        "nothing pruned without --prune"
    );

    // Another source's prune never touches repo-a's or hand-written keys.
    let r = bed.steward(&["push", bd, "--source", "repo-b", "--prune"]);
    r.expect_code(0);
    assert_eq!(bed.kv("steward/specs/").len(), 4);

    let r = bed.steward(&["push", ad, "--source", "repo-a", "--prune"]);
    r.expect_code(0);
    assert!(r.stdout.contains("alpha/y  prune"), "{}", r.stdout);
    let keys: Vec<String> = bed
        .kv("steward/specs/")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "steward/specs/alpha/x",
            "steward/specs/beta/z",
            "steward/specs/default/by-hand"
        ]
    );
}

#[test]
fn an_invalid_file_means_nothing_is_written() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), "team", &["good".into(), "fine".into()]);
    std::fs::write(dir.path().join("bad.yaml"), spec("team", "Bad_Name", "1")).unwrap();
    let r = bed.steward(&["push", dir.path().to_str().unwrap(), "--source", "t"]);
    r.expect_code(1);
    assert!(r.stderr.contains("bad.yaml:"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);
    assert_eq!(
        bed.sim().stats().total(Product::Consul),
        0,
        "Consul was not even read"
    );
}

#[test]
fn duplicate_keys_are_invalid_input() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), spec("team", "same", "1")).unwrap();
    std::fs::write(dir.path().join("two.yaml"), spec("team", "same", "2")).unwrap();
    let r = bed.steward(&["push", dir.path().to_str().unwrap(), "--source", "t"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("one.yaml") && r.stderr.contains("two.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(bed.writes(), 0);
}

#[test]
fn a_concurrent_write_is_a_cas_failure_with_exit_3() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), "team", &["racy".into()]);
    // Hold the transaction long enough for a competing write to land after the read.
    bed.sim().faults().add(FaultRule {
        id: 0,
        product: Product::Consul,
        path_prefix: Some("/v1/txn".into()),
        methods: Some(vec!["PUT".into()]),
        count: Some(1),
        kind: FaultRuleKind::Latency {
            fixed_ms: 1500,
            jitter_ms: 0,
        },
    });
    let push = Spawned::start(bed.cmd(&["push", dir.path().to_str().unwrap(), "--source", "t"]));
    eventually(Duration::from_secs(20), "the push to read the keys", || {
        bed.sim()
            .stats()
            .count(Product::Consul, "GET", "/v1/kv/{*key}")
            >= 1
    });
    bed.put("steward/specs/team/racy", "someone else", 0);
    let r = push.finish(Duration::from_secs(30));
    r.expect_code(3);
    assert!(r.stderr.contains("check-and-set failed"), "{}", r.stderr);
    assert!(r.stderr.contains("steward/specs/team/racy"), "{}", r.stderr);
    let stored = bed.kv("steward/specs/team/racy");
    assert_eq!(
        stored[0].value, b"someone else",
        "the other writer's value stays"
    );
}

fn txn_fault(bed: &Bed, kind: FaultRuleKind) {
    bed.sim().faults().add(FaultRule {
        id: 0,
        product: Product::Consul,
        path_prefix: Some("/v1/txn".into()),
        methods: Some(vec!["PUT".into()]),
        count: Some(1),
        kind,
    });
}

#[test]
fn a_transaction_whose_answer_was_lost_is_read_back_and_recognised() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    for (i, lost) in [
        FaultRuleKind::ErrorAfterCommit {
            status: 500,
            rate: 1.0,
        },
        FaultRuleKind::ResetAfterCommit { rate: 1.0 },
    ]
    .into_iter()
    .enumerate()
    {
        write_specs(dir.path(), "team", &[format!("lost-{i}")]);
        txn_fault(&bed, lost);
        let before = bed.txns();
        let r = bed.steward(&["push", path, "--source", "t"]);
        r.expect_code(0);
        assert!(
            r.stderr
                .contains("reading its 1 keys back shows it was applied"),
            "{}",
            r.stderr
        );
        assert_eq!(bed.txns() - before, 1, "sent once");
        assert_eq!(bed.kv(&format!("steward/specs/team/lost-{i}")).len(), 1);
    }
    // Refused before anything was applied: nothing there, so a write failure.
    write_specs(dir.path(), "team", &["refused".into()]);
    txn_fault(
        &bed,
        FaultRuleKind::Error {
            status: 500,
            rate: 1.0,
        },
    );
    let r = bed.steward(&["push", path, "--source", "t"]);
    r.expect_code(3);
    assert!(
        r.stderr.contains("writing to Consul failed"),
        "{}",
        r.stderr
    );
    assert!(bed.kv("steward/specs/team/refused").is_empty());
}

#[test]
fn dry_run_prints_the_plan_with_diffs_and_writes_nothing() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write_specs(dir.path(), "team", &["a".into(), "b".into()]);
    let r = bed.steward(&["push", d, "--source", "t", "--dry-run"]);
    r.expect_code(0);
    assert_eq!(bed.writes(), 0);
    assert!(r.stdout.contains("create     team/a"), "{}", r.stdout);
    assert!(
        r.stdout.contains("dry run: nothing written (2 create)"),
        "{}",
        r.stdout
    );

    bed.steward(&["push", d, "--source", "t"]).expect_code(0);
    let writes = bed.writes();
    std::fs::write(dir.path().join("b.yaml"), spec("team", "b", "9.9")).unwrap();
    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let r = bed.steward(&["push", d, "--source", "t", "--dry-run", "--prune"]);
    r.expect_code(0);
    assert_eq!(bed.writes(), writes);
    assert!(r.stdout.contains("prune      team/a"), "{}", r.stdout);
    assert!(r.stdout.contains("update     team/b"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("-  image: registry.example/b:1.0\n+  image: registry.example/b:9.9\n"),
        "{}",
        r.stdout
    );
}

fn write_status(bed: &Bed, key: &str, generation: u64, phase: &str) {
    let doc = serde_json::json!({
        "observedGeneration": generation,
        "phase": phase,
        "conditions": [{"type": "Available", "status": if phase == "Synced" {"True"} else {"False"},
                        "reason": "Test", "message": format!("{phase} by the test")}],
    });
    bed.put(&format!("steward/status/{key}"), &doc.to_string(), 0);
}

#[test]
fn wait_returns_0_once_every_status_observed_the_pushed_generation() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), "team", &["a".into(), "b".into()]);
    // An old status must not count.
    write_status(&bed, "team/a", 1, "Synced");
    let push = Spawned::start(bed.cmd(&[
        "push",
        dir.path().to_str().unwrap(),
        "--source",
        "t",
        "--wait",
        "--timeout",
        "30s",
    ]));
    eventually(Duration::from_secs(20), "the specs to be written", || {
        bed.kv("steward/specs/").len() == 2
    });
    // The fake operator: statuses at the generations the push wrote.
    for pair in bed.kv("steward/specs/") {
        let key = pair.key.trim_start_matches("steward/specs/").to_owned();
        write_status(&bed, &key, pair.modify_index, "Progressing");
    }
    std::thread::sleep(Duration::from_millis(200));
    for pair in bed.kv("steward/specs/") {
        let key = pair.key.trim_start_matches("steward/specs/").to_owned();
        write_status(&bed, &key, pair.modify_index, "Synced");
    }
    let r = push.finish(Duration::from_secs(40));
    r.expect_code(0);
    assert!(r.stdout.contains("converged: 2/2 Synced"), "{}", r.stdout);
    assert!(r.stdout.contains("team/a  Synced"), "{}", r.stdout);
}

#[test]
fn wait_exits_4_on_timeout_or_a_spec_that_is_not_synced() {
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write_specs(dir.path(), "team", &["a".into()]);
    let r = bed.steward(&["push", d, "--source", "t", "--wait", "--timeout", "1s"]);
    r.expect_code(4);
    assert!(
        r.stdout
            .contains("not converged: timed out after 1s (0/1 Synced)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("no status yet"), "{}", r.stdout);

    let generation = bed.kv("steward/specs/team/a")[0].modify_index;
    write_status(&bed, "team/a", generation, "Degraded");
    let r = bed.steward(&["push", d, "--source", "t", "--wait", "--timeout", "30s"]);
    r.expect_code(4);
    assert!(r.stdout.contains("team/a  Degraded"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not converged: 0/1 Synced"),
        "{}",
        r.stdout
    );
}

#[test]
fn status_shows_the_documents_as_a_table_json_and_details() {
    let bed = Bed::new();
    write_status(&bed, "team/a", 5, "Synced");
    write_status(&bed, "team/b", 7, "Degraded");
    let r = bed.steward(&["status"]);
    r.expect_code(0);
    assert_eq!(
        r.stdout,
        "KEY     PHASE     GENERATION  AGE  MESSAGE\n\
         team/a  Synced    5           -    \n\
         team/b  Degraded  7           -    Degraded by the test\n"
            .replace("    \n", "\n")
    );
    let r = bed.steward(&["status", "-o", "json"]);
    r.expect_code(0);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list[1]["key"], "team/b");
    assert_eq!(list[1]["status"]["observedGeneration"], 7);
    let r = bed.steward(&["status", "team/b"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("Phase:               Degraded"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Conditions:"), "{}", r.stdout);
    let r = bed.steward(&["status", "team/b", "-o", "json"]);
    r.expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["phase"],
        "Degraded"
    );
    bed.steward(&["status", "team/nope"]).expect_code(1);
}

#[test]
fn an_unreachable_consul_is_an_io_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), "team", &["a".into()]);
    let mut cmd = steward();
    cmd.env("CONSUL_HTTP_ADDR", format!("http://{addr}"));
    cmd.args(["push", dir.path().to_str().unwrap(), "--source", "t"]);
    let r = run_with(cmd, Duration::from_secs(60));
    r.expect_code(2);
    assert!(
        r.stderr.contains("cannot read steward/specs/"),
        "{}",
        r.stderr
    );
}
