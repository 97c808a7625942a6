//! `steward dev`: simulator + operator + examples in one process, then a user's first
//! commands against it, then a clean stop.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Lines, run_with, sigterm, steward, wait_bounded};

#[test]
fn dev_pushes_the_examples_converges_them_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = steward();
    cmd.args(["dev", "--data-dir", data.path().to_str().unwrap()]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let mut err = Lines::new(child.stderr.take().unwrap());
    out.until(Duration::from_secs(60), |l| l == "Ctrl-C stops everything.");
    let export = out
        .seen
        .iter()
        .find(|l| l.contains("export CONSUL_HTTP_ADDR="))
        .unwrap()
        .clone();
    let consul = export
        .split_whitespace()
        .find_map(|w| w.strip_prefix("CONSUL_HTTP_ADDR="))
        .unwrap()
        .to_owned();
    let api = out
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("Operator API: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        out.seen
            .iter()
            .any(|l| l == "pushed 7 create in 1 transaction"),
        "{:?}",
        out.seen
    );
    assert!(
        out.seen.iter().any(|l| l.contains("steward status")),
        "{:?}",
        out.seen
    );

    // What a new user runs next: the same push (same default source) waits for every
    // example to be Synced.
    let mut push = steward();
    push.env("CONSUL_HTTP_ADDR", &consul).args([
        "push",
        "deploy/examples",
        "--policy",
        "deploy/guardrails.yaml",
        "--wait",
        "--timeout",
        "90s",
    ]);
    let r = run_with(push, Duration::from_secs(120));
    r.expect_code(0);
    assert!(r.stdout.contains("7 unchanged"), "{}", r.stdout);
    assert!(r.stdout.contains("converged: 7/7 Synced"), "{}", r.stdout);

    let mut events = steward();
    events.args(["events", "--operator", &api, "--key", "trading/order-api"]);
    let r = run_with(events, Duration::from_secs(30));
    r.expect_code(0);
    assert!(
        r.stdout.contains("trading/order-api  Synced:"),
        "{}",
        r.stdout
    );

    let mut status = steward();
    status.env("CONSUL_HTTP_ADDR", &consul).args(["status"]);
    let r = run_with(status, Duration::from_secs(30));
    r.expect_code(0);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.contains("  Synced  "))
            .count(),
        7,
        "{}",
        r.stdout
    );

    sigterm(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let lines = out.rest(Duration::from_secs(5));
    assert!(
        lines.last().unwrap().starts_with("stopped; state saved in"),
        "{lines:?}"
    );
    assert!(data.path().join("state.json").is_file());
    let errors = err.rest(Duration::from_secs(5));
    assert!(errors.is_empty(), "nothing alarming on stderr: {errors:?}");
}
