//! `steward doctor` and `steward bootstrap` against an in-process simulator named by
//! the standard env vars.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Lines, run_with, sigterm, steward, wait_bounded};
use steward_sim::{Product, Sim, SimConfig, SimHandle, TokenConfig};

/// The simulator and the runtime that serves it (dropping the runtime stops it).
struct Stack {
    _rt: tokio::runtime::Runtime,
    sim: SimHandle,
}

impl Stack {
    /// A fresh simulator without the JWT auth mount it has by default, so nothing
    /// Steward needs beforehand exists.
    fn empty(tweak: impl FnOnce(&mut SimConfig)) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = SimConfig::default();
        config.vault.jwt_mounts.clear();
        tweak(&mut config);
        let sim = rt.block_on(Sim::start(config)).unwrap();
        Self { _rt: rt, sim }
    }

    fn env(&self, vault_token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("CONSUL_HTTP_ADDR", self.sim.consul_url()),
            ("NOMAD_ADDR", self.sim.nomad_url()),
            ("VAULT_ADDR", self.sim.vault_url()),
            ("VAULT_TOKEN", vault_token.to_owned()),
        ]
    }

    fn steward(&self, args: &[&str]) -> common::Run {
        self.steward_with_token("root", args)
    }

    fn steward_with_token(&self, vault_token: &str, args: &[&str]) -> common::Run {
        let mut cmd = steward();
        cmd.envs(self.env(vault_token)).args(args);
        run_with(cmd, Duration::from_secs(60))
    }

    fn writes(&self) -> u64 {
        self.sim.stats().all_writes()
    }

    fn push_examples(&self) {
        self.steward(&["push", "deploy/examples", "--source", "doctor-test"])
            .expect_code(0);
    }
}

fn failed_line<'a>(stdout: &'a str, what: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with('✗') && l.contains(what))
        .unwrap_or_else(|| panic!("no ✗ line for {what}:\n{stdout}"))
}

#[test]
fn bootstrap_creates_what_a_fresh_cluster_lacks_once_and_doctor_then_passes_without_writing() {
    let stack = Stack::empty(|_| {});
    stack.push_examples();

    let before = stack.writes();
    let dry = stack.steward(&["bootstrap", "--dry-run"]);
    dry.expect_code(0);
    assert_eq!(stack.writes(), before, "a dry run writes nothing");
    assert!(
        dry.stdout.contains("would create  nomad namespace trading"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("dry run: "), "{}", dry.stdout);

    let first = stack.steward(&["bootstrap"]);
    first.expect_code(0);
    for object in [
        "nomad namespace finance",
        "nomad namespace storefront",
        "nomad namespace tools",
        "nomad namespace trading",
        "consul api-gateway edge",
        "vault auth method jwt-nomad/",
        "vault auth config jwt-nomad/",
    ] {
        assert!(
            first.stdout.contains(&format!("created  {object}")),
            "{object}:\n{}",
            first.stdout
        );
    }
    assert!(
        first.stdout.contains("/.well-known/jwks.json"),
        "{}",
        first.stdout
    );

    let after_first = stack.writes();
    let second = stack.steward(&["bootstrap"]);
    second.expect_code(0);
    assert_eq!(stack.writes(), after_first, "a second run writes nothing");
    assert!(
        second
            .stdout
            .ends_with("nothing to do: everything exists (nothing written)\n"),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("created"), "{}", second.stdout);

    let doctor = stack.steward(&["doctor"]);
    doctor.expect_code(0);
    let checks: Vec<&str> = doctor
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("all "))
        .collect();
    assert!(checks.len() > 10, "{}", doctor.stdout);
    assert!(
        checks.iter().all(|l| l.starts_with('✓')),
        "{}",
        doctor.stdout
    );
    assert_eq!(stack.writes(), after_first, "doctor writes nothing");

    let json = stack.steward(&["doctor", "-o", "json"]);
    json.expect_code(0);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["ok"], true);
    assert_eq!(stack.writes(), after_first);
    for product in [Product::Consul, Product::Nomad, Product::Vault] {
        assert!(stack.sim.stats().total(product) > 0);
    }
}

#[test]
fn doctor_names_each_missing_prerequisite_and_its_fix() {
    let stack = Stack::empty(|c| {
        c.consul.unsupported_config_kinds = vec!["http-route".into(), "api-gateway".into()];
    });
    stack.push_examples();
    let before = stack.writes();
    let r = stack.steward(&["doctor"]);
    r.expect_code(1);
    assert_eq!(stack.writes(), before, "doctor writes nothing");
    let ns = failed_line(&r.stdout, "namespaces of the specs");
    assert!(ns.contains("finance, storefront, tools, trading"), "{ns}");
    assert!(ns.contains("steward bootstrap"), "{ns}");
    let kind = failed_line(&r.stdout, "config-entry kind http-route");
    assert!(kind.contains("upgrade Consul to 1.16"), "{kind}");
    failed_line(&r.stdout, "edge gateway api-gateway/edge/http");
    let mount = failed_line(&r.stdout, "JWT auth mount jwt-nomad/");
    assert!(
        mount.contains("vault auth enable -path=jwt-nomad jwt"),
        "{mount}"
    );
    assert!(r.stdout.contains("checks failed"), "{}", r.stdout);
}

#[test]
fn doctor_shows_the_policy_line_a_vault_token_lacks_and_refused_nomad_tokens() {
    let stack = Stack::empty(|c| {
        c.tokens.push(TokenConfig {
            product: Product::Vault,
            secret: "weak-token".into(),
            management: false,
            rules: r#"path "sys/policies/acl/*" { capabilities = ["read"] }"#.into(),
        });
        c.tokens.push(TokenConfig {
            product: Product::Nomad,
            secret: "nomad-mgmt".into(),
            management: true,
            rules: String::new(),
        });
    });
    let r = stack.steward_with_token("weak-token", &["doctor"]);
    r.expect_code(1);
    let caps = failed_line(
        &r.stdout,
        "token capabilities on sys/policies/acl/steward-*",
    );
    assert!(
        caps.contains(
            r#"path "sys/policies/acl/steward-*" { capabilities = ["read", "update", "delete"] }"#
        ),
        "{caps}"
    );
    // Nomad's ACLs are on and no NOMAD_TOKEN is set: the anonymous token.
    let nomad = failed_line(&r.stdout, "nomad token");
    assert!(nomad.contains("NOMAD_TOKEN"), "{nomad}");
    // Consul's ACLs are off: said, and passed.
    assert!(
        r.stdout.lines().any(|l| l.starts_with('✓')
            && l.contains("consul token")
            && l.contains("ACLs are disabled")),
        "{}",
        r.stdout
    );
}

#[test]
fn doctor_names_the_url_it_cannot_reach_and_bad_flags_are_usage_errors() {
    let mut cmd = steward();
    cmd.env("CONSUL_HTTP_ADDR", "http://127.0.0.1:1")
        .env("NOMAD_ADDR", "http://127.0.0.1:1")
        .env("VAULT_ADDR", "http://127.0.0.1:1")
        .env("VAULT_TOKEN", "root")
        .args(["doctor"]);
    let r = run_with(cmd, Duration::from_secs(60));
    r.expect_code(1);
    let line = failed_line(&r.stdout, "consul reachable");
    assert!(line.contains("cannot reach http://127.0.0.1:1"), "{line}");
    assert!(line.contains("CONSUL_HTTP_ADDR"), "{line}");

    // A bad flag is a usage error (2), not a failed check (1).
    let r = common::run(&["doctor", "--edge-gateway", "a//b"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--edge-gateway"), "{}", r.stderr);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn bootstrap_then_run_syncs_every_example_without_hand_setup() {
    let stack = Stack::empty(|_| {});
    stack
        .steward(&["bootstrap", "--specs", "deploy/examples"])
        .expect_code(0);

    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = steward();
    cmd.envs(stack.env("root"))
        .env("STEWARD_API_TOKEN", "doctor-test-api-token-0123456789")
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
    let logs = Lines::new(child.stderr.take().unwrap());
    let _out = Lines::new(child.stdout.take().unwrap());

    let mut push = steward();
    push.envs(stack.env("root")).args([
        "push",
        "deploy/examples",
        "--source",
        "doctor-test",
        "--policy",
        "deploy/guardrails.yaml",
        "--wait",
        "--timeout",
        "150s",
    ]);
    let r = run_with(push, Duration::from_secs(180));
    r.expect_code(0);
    assert!(r.stdout.contains("converged: 7/7 Synced"), "{}", r.stdout);

    sigterm(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}; logs: {:?}", logs.seen);
}
