//! The whole life of a few specs with ACLs on (default deny) and tokens holding exactly
//! the policies of `deploy/acl/`: `steward bootstrap` (management tokens), `steward
//! doctor --read-only` and `steward diff` (read-only tokens; diff's Nomad token adds
//! `nomad-plan.hcl`), `steward push` (CI token),
//! two operators (`steward run`'s tokens) that create, update, repair drift, fail over
//! and garbage-collect a blocked, then approved, deletion. Nothing any of them asks is
//! refused. `crates/cli/tests`, not `tests/e2e`: only this crate's tests can run the
//! real `steward` binary; the operators run in-process through the e2e harness, so one
//! can crash while the other takes over.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use steward_e2e::{Env, Tokens, repo_path, sim_config, wait_for, web};
use steward_operator::Phase;
use steward_sim::{Product, TokenConfig};
use tower::ServiceExt as _;

const NS: &str = "team";

/// Token secrets, one per party.
const CONSUL_ADMIN: &str = "consul-admin-secret";
const NOMAD_ADMIN: &str = "nomad-admin-secret";
const CONSUL_OPERATOR: &str = "consul-operator-secret";
const NOMAD_OPERATOR: &str = "nomad-operator-secret";
const VAULT_OPERATOR: &str = "vault-operator-secret";
const CONSUL_CI: &str = "consul-ci-secret";
const CONSUL_READ_ONLY: &str = "consul-readonly-secret";
const NOMAD_READ_ONLY: &str = "nomad-readonly-secret";
const NOMAD_DIFF: &str = "nomad-diff-secret";
const VAULT_READ_ONLY: &str = "vault-readonly-secret";

/// Vault policy names the platform team gives the files (not `steward-*`: that prefix
/// is Steward's own).
const VAULT_OPERATOR_POLICY: &str = "platform-steward";
const VAULT_READ_ONLY_POLICY: &str = "platform-steward-readonly";

fn policy(file: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("deploy/acl/{file}"))).unwrap()
}

fn token(product: Product, secret: &str, management: bool, rules: String) -> TokenConfig {
    TokenConfig {
        product,
        secret: secret.to_owned(),
        management,
        rules,
    }
}

/// The simulator's tokens: management ones for the platform team, and one per role
/// holding exactly its policies. Vault tokens name policies the admin writes below.
fn tokens() -> Vec<TokenConfig> {
    vec![
        token(Product::Consul, CONSUL_ADMIN, true, String::new()),
        token(Product::Nomad, NOMAD_ADMIN, true, String::new()),
        token(
            Product::Consul,
            CONSUL_OPERATOR,
            false,
            policy("consul-steward.hcl"),
        ),
        token(
            Product::Nomad,
            NOMAD_OPERATOR,
            false,
            policy("nomad-steward.hcl"),
        ),
        token(
            Product::Vault,
            VAULT_OPERATOR,
            false,
            VAULT_OPERATOR_POLICY.to_owned(),
        ),
        token(
            Product::Consul,
            CONSUL_CI,
            false,
            policy("consul-ci-push.hcl"),
        ),
        token(
            Product::Consul,
            CONSUL_READ_ONLY,
            false,
            policy("consul-readonly.hcl"),
        ),
        token(
            Product::Nomad,
            NOMAD_READ_ONLY,
            false,
            policy("nomad-readonly.hcl"),
        ),
        // Two policies on one token: Nomad grants their union.
        token(
            Product::Nomad,
            NOMAD_DIFF,
            false,
            format!(
                "{}\n{}",
                policy("nomad-readonly.hcl"),
                policy("nomad-plan.hcl")
            ),
        ),
        token(
            Product::Vault,
            VAULT_READ_ONLY,
            false,
            VAULT_READ_ONLY_POLICY.to_owned(),
        ),
    ]
}

/// Runs the real `steward` with `args`, the servers of `env` and the tokens given
/// (`None` sends none), off the async runtime.
async fn steward(
    env: &Env,
    consul: &str,
    nomad: Option<&str>,
    vault: Option<&str>,
    args: &[&str],
) -> common::Run {
    let mut cmd = common::steward();
    cmd.env("CONSUL_HTTP_ADDR", env.sim.consul_url())
        .env("NOMAD_ADDR", env.sim.nomad_url())
        .env("VAULT_ADDR", env.sim.vault_url())
        .env("CONSUL_HTTP_TOKEN", consul)
        .args(args);
    if let Some(t) = nomad {
        cmd.env("NOMAD_TOKEN", t);
    }
    if let Some(t) = vault {
        cmd.env("VAULT_TOKEN", t);
    }
    tokio::task::spawn_blocking(move || common::run_with(cmd, Duration::from_secs(120)))
        .await
        .unwrap()
}

/// CI's `steward push`.
async fn push(env: &Env, dir: &Path, extra: &[&str]) -> common::Run {
    let dir = dir.display().to_string();
    let mut args = vec![
        "push",
        dir.as_str(),
        "--source",
        "acl-test",
        "--policy",
        "deploy/guardrails.yaml",
    ];
    args.extend_from_slice(extra);
    // CI holds no Nomad or Vault token: push never talks to them.
    steward(env, CONSUL_CI, None, None, &args).await
}

/// `steward doctor --read-only` with the read-only tokens: every check passes.
async fn doctor_read_only(env: &Env) {
    let r = steward(
        env,
        CONSUL_READ_ONLY,
        Some(NOMAD_READ_ONLY),
        Some(VAULT_READ_ONLY),
        &["doctor", "--read-only"],
    )
    .await;
    r.expect_code(0);
    assert!(!r.stdout.contains('✗'), "{}", r.stdout);
}

/// `steward doctor` with the operator's tokens: everything `run` needs passes; only the
/// JWT auth config check fails, as the operator never reads that path (its policy does
/// not grant it; the read-only one does).
async fn doctor_with_operator_tokens(env: &Env) {
    let r = steward(
        env,
        CONSUL_OPERATOR,
        Some(NOMAD_OPERATOR),
        Some(VAULT_OPERATOR),
        &["doctor"],
    )
    .await;
    r.expect_code(1);
    let failed: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert!(failed[0].contains("JWT auth config"), "{}", r.stdout);
}

/// `steward diff` with the read-only tokens (Nomad's holds `nomad-readonly.hcl` and
/// `nomad-plan.hcl`): it exits `expect` (0 no change, 2 changes) with every read and
/// plan answered (no `errors` in any spec's preview), and registers no job version
/// (its Nomad token could: the plan needs `submit-job`). Returns the JSON report.
async fn steward_diff_with_read_only_tokens(
    env: &Env,
    dir: &Path,
    extra: &[&str],
    expect: i32,
) -> Value {
    let versions = env.job_versions(NS, "web").await.len();
    let dir = dir.display().to_string();
    let mut args = vec![
        "diff",
        dir.as_str(),
        "--source",
        "acl-test",
        "--policy",
        "deploy/guardrails.yaml",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let r = steward(
        env,
        CONSUL_READ_ONLY,
        Some(NOMAD_DIFF),
        Some(VAULT_READ_ONLY),
        &args,
    )
    .await;
    r.expect_code(expect);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    for spec in report["specs"].as_array().unwrap() {
        assert_eq!(spec["errors"], json!([]), "{}", r.stdout);
    }
    assert_eq!(env.job_versions(NS, "web").await.len(), versions);
    report
}

fn write_specs(dir: &Path, names: &[(&str, &str)]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, tag) in names {
        std::fs::write(dir.join(format!("{name}.yaml")), web(NS, name, tag)).unwrap();
    }
}

async fn post_approve(router: &axum::Router, digest: &str) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(
            Request::post("/api/v1/gc/approve")
                .header("content-type", "application/json")
                .header(
                    "authorization",
                    format!("Bearer {}", steward_e2e::API_TOKEN),
                )
                .body(Body::from(json!({"digest": digest}).to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_lifecycle_runs_with_exactly_the_least_privilege_policies() {
    let mut config = sim_config();
    config.tokens = tokens();
    let admin = Tokens {
        consul: Some(CONSUL_ADMIN.to_owned()),
        nomad: Some(NOMAD_ADMIN.to_owned()),
        vault: "root".to_owned(),
    };
    let mut env = Env::start_with_tokens(config, admin).await;
    let vault = &env.clients.vault;
    vault
        .put_policy(VAULT_OPERATOR_POLICY, &policy("vault-steward.hcl"))
        .await
        .unwrap();
    vault
        .put_policy(VAULT_READ_ONLY_POLICY, &policy("vault-readonly.hcl"))
        .await
        .unwrap();

    let specs = tempfile::tempdir().unwrap();
    let dir: PathBuf = specs.path().to_owned();
    write_specs(&dir, &[("web", "1.0"), ("api", "1.0"), ("cart", "1.0")]);

    // The platform team prepares the cluster with its management tokens.
    let dir_arg = dir.display().to_string();
    steward(
        &env,
        CONSUL_ADMIN,
        Some(NOMAD_ADMIN),
        Some("root"),
        &["bootstrap", "--specs", dir_arg.as_str()],
    )
    .await
    .expect_code(0);
    doctor_read_only(&env).await;

    // CI pushes; two operators start, one leads, and everything converges.
    push(&env, &dir, &[]).await.expect_code(0);
    env.operator_tokens = Tokens {
        consul: Some(CONSUL_OPERATOR.to_owned()),
        nomad: Some(NOMAD_OPERATOR.to_owned()),
        vault: VAULT_OPERATOR.to_owned(),
    };
    let mut operator_config = env.config();
    // Namespaces are the platform team's (bootstrap); the operator cannot create them.
    operator_config.create_nomad_namespaces = false;
    let a = env.operator_with("a", operator_config.clone()).await;
    let b = env.operator_with("b", operator_config).await;
    for name in ["web", "api", "cart"] {
        env.wait_synced_now(&format!("{NS}/{name}"), steward_e2e::WAIT)
            .await;
    }
    doctor_read_only(&env).await;
    doctor_with_operator_tokens(&env).await;
    let same = steward_diff_with_read_only_tokens(&env, &dir, &[], 0).await;
    assert_eq!(same["specs"], json!([]), "{same}");

    // Update: the pull request's preview shows the new image in Nomad's plan; CI
    // pushes it and waits for the operator to report it.
    write_specs(&dir, &[("web", "1.1"), ("api", "1.0"), ("cart", "1.0")]);
    let preview = steward_diff_with_read_only_tokens(&env, &dir, &[], 2).await;
    let specs = preview["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 1, "{preview}");
    assert_eq!(specs[0]["key"], "team/web", "{preview}");
    assert_eq!(specs[0]["action"], "update", "{preview}");
    assert!(specs[0]["nomad"].is_object(), "{preview}");
    let r = push(&env, &dir, &["--wait", "--timeout", "60s"]).await;
    r.expect_code(0);
    assert!(r.stdout.contains("converged: 3/3 Synced"), "{}", r.stdout);
    let job = env.job(NS, "web").await.unwrap();
    assert!(job.raw.to_string().contains("web:1.1"), "{}", job.raw);

    // Drift: someone widens the Vault policy by hand (its marker comment stays, so it
    // is still Steward's); the operator's rolling check finds it and restores it.
    let name = format!("steward-{NS}-web");
    let original = env.policy(&name).await.unwrap();
    let widened =
        format!("{original}\npath \"secret/data/other/*\" {{ capabilities = [\"read\"] }}\n");
    env.clients.vault.put_policy(&name, &widened).await.unwrap();
    wait_for("the policy to be restored", steward_e2e::WAIT, || async {
        match env.policy(&name).await {
            Some(p) if p == original => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Failover: the leader crashes and its session ends (as when its TTL lapses); the
    // other instance takes the lock after the lock-delay and does the work.
    let (leader, follower, follower_handle) = if a.is_leader() {
        ("a", "b", b.clone())
    } else {
        ("b", "a", a.clone())
    };
    let session = env.kill(leader).unwrap();
    assert!(env.sim.consul_expire_session(&session));
    wait_for(
        &format!("{follower} to lead"),
        steward_e2e::WAIT,
        || async {
            if follower_handle.is_leader() {
                Ok(())
            } else {
                Err("follower".to_owned())
            }
        },
    )
    .await;
    write_specs(&dir, &[("web", "1.2"), ("api", "1.0"), ("cart", "1.0")]);
    push(&env, &dir, &["--wait", "--timeout", "60s"])
        .await
        .expect_code(0);

    // GC: CI prunes two of three specs; the guard blocks, the platform team approves.
    write_specs(&dir, &[("web", "1.2")]);
    let preview = steward_diff_with_read_only_tokens(&env, &dir, &["--prune"], 2).await;
    let deleted: Vec<&Value> = preview["specs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "delete" && !s["deletions"].as_array().unwrap().is_empty())
        .map(|s| &s["key"])
        .collect();
    assert_eq!(
        deleted,
        [&json!("team/api"), &json!("team/cart")],
        "{preview}"
    );
    push(&env, &dir, &["--prune"]).await.expect_code(0);
    let gc = wait_for(
        "the GC status to say Blocked",
        steward_e2e::WAIT,
        || async {
            match env.status_json("_gc").await {
                Some(v) if v["phase"] == "Blocked" => Ok(v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(gc["specs"], json!(["team/api", "team/cart"]), "{gc}");
    let digest = gc["digest"].as_str().unwrap().to_owned();
    let router = steward_operator::api::router(follower_handle.clone());
    let (status, body) = post_approve(&router, &digest).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(
        "api and cart to be collected",
        steward_e2e::WAIT,
        || async {
            let mut left = Vec::new();
            for name in ["api", "cart"] {
                if !env.job(NS, name).await.unwrap().view.stop {
                    left.push(format!("job {name}"));
                }
                if env.entry("service-defaults", name).await.is_some() {
                    left.push(format!("service-defaults {name}"));
                }
                if env.policy(&format!("steward-{NS}-{name}")).await.is_some() {
                    left.push(format!("policy {name}"));
                }
                if env.status_json(&format!("{NS}/{name}")).await.is_some() {
                    left.push(format!("status {name}"));
                }
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join(", "))
            }
        },
    )
    .await;
    let web = env.status(&format!("{NS}/web")).await.unwrap();
    assert_eq!(web.phase, Phase::Synced);
    doctor_read_only(&env).await;

    // With exactly these policies, no request of either operator was refused.
    let refused: Vec<_> = env
        .log
        .all()
        .into_iter()
        .filter(|r| r.status == Some(403))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    env.finish().await;
}
