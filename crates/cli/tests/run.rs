//! `steward run` against an in-process simulator named by the standard env vars.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Lines, run_with, sigterm, steward, wait_bounded};
use steward_sim::{Sim, SimConfig};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn run_converges_pushed_specs_and_stops_on_sigterm() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(Sim::start(SimConfig::default())).unwrap();
    let env = [
        ("CONSUL_HTTP_ADDR", sim.consul_url()),
        ("NOMAD_ADDR", sim.nomad_url()),
        ("VAULT_ADDR", sim.vault_url()),
        ("VAULT_TOKEN", "root".to_owned()),
    ];
    let listen = format!("127.0.0.1:{}", free_port());
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("api-token");
    std::fs::write(&token_file, "run-test-api-token-0123456789\n").unwrap();

    let mut cmd = steward();
    cmd.envs(env.clone())
        .env("STEWARD_API_TOKEN_FILE", &token_file)
        .args([
            "run",
            "--policy",
            "deploy/guardrails.yaml",
            "--listen",
            &listen,
            "--log-format",
            "json",
        ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut logs = Lines::new(child.stderr.take().unwrap());
    let _out = Lines::new(child.stdout.take().unwrap());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hello.yaml"),
        "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: hello}\nspec:\n  image: registry.example/hello:1.0\n  port: 8080\n",
    )
    .unwrap();
    let mut push = steward();
    push.envs(env.clone()).args([
        "push",
        dir.path().to_str().unwrap(),
        "--source",
        "run-test",
        "--wait",
        "--timeout",
        "90s",
    ]);
    let r = run_with(push, Duration::from_secs(120));
    r.expect_code(0);
    assert!(r.stdout.contains("default/hello  Synced"), "{}", r.stdout);

    let mut events = steward();
    events.args(["events", "--operator", &format!("http://{listen}")]);
    let r = run_with(events, Duration::from_secs(30));
    r.expect_code(0);
    assert!(r.stdout.contains("default/hello  Synced:"), "{}", r.stdout);

    // `gc approve` sends the token: the operator answers (nothing is blocked), it does
    // not refuse the request; without the token it does, and says what to set.
    let operator = format!("http://{listen}");
    let approve = [
        "gc",
        "approve",
        "--digest",
        "0000",
        "--operator",
        operator.as_str(),
    ];
    let mut with_token = steward();
    with_token
        .env("STEWARD_API_TOKEN", "run-test-api-token-0123456789")
        .args(approve);
    let r = run_with(with_token, Duration::from_secs(30));
    r.expect_code(1);
    assert!(r.stderr.contains("HTTP 404"), "{}", r.stderr);
    let mut without = steward();
    without
        .env_remove("STEWARD_API_TOKEN")
        .env_remove("STEWARD_API_TOKEN_FILE")
        .args(approve);
    let r = run_with(without, Duration::from_secs(30));
    r.expect_code(1);
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    assert!(r.stderr.contains("set STEWARD_API_TOKEN"), "{}", r.stderr);

    sigterm(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}; logs: {:?}", logs.seen);
    let lines = logs.rest(Duration::from_secs(5));
    assert!(!lines.is_empty());
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("--log-format json writes JSON lines: {e}: {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn run_refuses_an_invalid_policy_or_config() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: steward/v1\nkind: GuardrailPolicy\nregistires: []\n",
    )
    .unwrap();
    let mut cmd = steward();
    cmd.args(["run", "--policy", policy.to_str().unwrap()]);
    let r = run_with(cmd, Duration::from_secs(30));
    r.expect_code(1);
    assert!(r.stderr.contains("registires"), "{}", r.stderr);

    let config = dir.path().join("steward.json");
    std::fs::write(&config, "{\"concurency\": 3}").unwrap();
    let mut cmd = steward();
    cmd.args(["run", "--config", config.to_str().unwrap()]);
    let r = run_with(cmd, Duration::from_secs(30));
    r.expect_code(2);
    assert!(r.stderr.contains("concurency"), "{}", r.stderr);

    // An API reachable from other machines needs a token.
    let mut cmd = steward();
    cmd.env_remove("STEWARD_API_TOKEN")
        .env_remove("STEWARD_API_TOKEN_FILE")
        .args(["run", "--listen", "0.0.0.0:0"]);
    let r = run_with(cmd, Duration::from_secs(30));
    assert_ne!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("0.0.0.0:0 is reachable from other machines")
            && r.stderr.contains("STEWARD_API_TOKEN"),
        "{}",
        r.stderr
    );
    let mut cmd = steward();
    cmd.env("STEWARD_API_TOKEN", "short")
        .args(["run", "--listen", "127.0.0.1:0"]);
    let r = run_with(cmd, Duration::from_secs(30));
    assert_ne!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("at least 16"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("short"),
        "the token never appears: {}",
        r.stderr
    );
}

/// A simulator that answers like the servers of reference §10 (Consul 1.10, Nomad 1.1,
/// Vault 1.7): no `http-route` kind, job stubs without `Meta`, no `namespace=*`.
fn old_servers() -> SimConfig {
    let mut config = SimConfig::default();
    config.consul.version = "1.10.12".into();
    config.consul.unsupported_config_kinds = vec!["http-route".into(), "api-gateway".into()];
    config.nomad.version = "1.1.2".into();
    config.nomad.job_list_meta = false;
    config.nomad.namespace_wildcard = false;
    config.vault.version = "1.7.3".into();
    config
}

#[test]
fn run_refuses_servers_older_than_the_minimums_unless_allowed_and_then_says_what_is_off() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(Sim::start(old_servers())).unwrap();
    let env = [
        ("CONSUL_HTTP_ADDR", sim.consul_url()),
        ("NOMAD_ADDR", sim.nomad_url()),
        ("VAULT_ADDR", sim.vault_url()),
        ("VAULT_TOKEN", "root".to_owned()),
    ];
    let mut refused = steward();
    refused
        .envs(env.clone())
        .args(["run", "--listen", "127.0.0.1:0"]);
    let r = run_with(refused, Duration::from_secs(60));
    r.expect_code(1);
    for needle in [
        "consul   TOO OLD version 1.10.12 is older than the minimum 1.16.0",
        "TOO OLD",
        "config-entry kind http-route",
        "invalid config entry kind",
        "takes `namespace=*` as a namespace named `*`",
        "job list Meta",
        "--allow-unsupported",
    ] {
        assert!(
            r.stderr.contains(needle),
            "{needle:?} missing in:\n{}",
            r.stderr
        );
    }

    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = steward();
    cmd.envs(env.clone())
        .args(["run", "--allow-unsupported", "--listen", &listen]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut logs = Lines::new(child.stderr.take().unwrap());
    let _out = Lines::new(child.stdout.take().unwrap());
    let get = |path: &str| {
        rt.block_on(async {
            let url = format!("http://{listen}{path}");
            for _ in 0..200 {
                if let Ok(r) = reqwest::get(&url).await {
                    return r.text().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{url} never answered")
        })
    };
    let ready: serde_json::Value = serde_json::from_str(&get("/readyz")).unwrap();
    let degradations = ready["cluster"]["degradations"].to_string();
    assert!(
        degradations.contains("listed per namespace every 5 s")
            && degradations.contains("read from the job itself")
            && degradations.contains("every other spec reconciles"),
        "{ready}"
    );
    let nomad = &ready["cluster"]["servers"][1];
    assert_eq!(nomad["supported"], false, "{ready}");
    let metrics = get("/metrics");
    assert!(
        metrics.contains(
            "steward_server_feature{product=\"nomad\",feature=\"namespace=* on the event stream and deployment list\"} 0"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("steward_server_supported{product=\"vault\",feature=\"\"} 0"),
        "{metrics}"
    );
    sigterm(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let lines = logs.rest(Duration::from_secs(5));
    let all = [logs.seen.clone(), lines].concat().join("\n");
    assert!(all.contains("running with --allow-unsupported"), "{all}");
    assert!(all.contains("WARN"), "{all}");
    rt.block_on(sim.shutdown());
}
