//! Every rule of every policy in `deploy/acl/` is needed, and the policies are enough.
//!
//! For each policy the test parses the file into rules (a top-level attribute, a block
//! with a `policy`, each item of a `capabilities` list, each other attribute of a block
//! such as Consul's `intentions`), then starts the simulator with ACLs on (default
//! deny) and a token holding the policy: every operation of the Steward command that
//! uses it succeeds. Then, once per rule, with a token holding the policy minus that
//! rule: at least one of those operations is refused, and the refusal names what is
//! missing as the server says it (Consul: `Permission denied: ... lacks permission
//! 'key:write' on "steward/status/team/web"`; Nomad: `Permission denied`; Vault:
//! `permission denied`). A rule whose removal refuses nothing fails the test.
//!
//! The operations are the requests Steward's commands make, through Steward's own
//! clients (`steward_hashi`), each on objects a management token prepared. Consul
//! answers a listing the token may read only in part with the entries it may read and
//! `X-Consul-Results-Filtered-By-ACLs: true` instead of a 403; Steward's client refuses
//! such an answer (`Error::FilteredByAcls`), and that refusal counts as one here.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::time::Duration;

use hcl::{Body, Expression, Structure};
use serde_json::{Value, json};
use steward_e2e::{Env, Tokens, clients_with, guardrails, repo_path, sim_config, web};
use steward_hashi::consul::{SessionCreate, TxnOp, TxnOutcome};
use steward_hashi::nomad::RegisterOptions;
use steward_hashi::vault::JwtRole;
use steward_hashi::{Error, QueryOptions, RequestSpec, WriteOptions};
use steward_operator::Clients;
use steward_render::{Desired, RenderContext};
use steward_sim::{Product, TokenConfig};

/// The namespace and name of the spec whose objects the operations touch.
const NS: &str = "team";
const NAME: &str = "web";

/// Who uses a policy; decides which operations are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `steward run`, Consul.
    RunConsul,
    /// `steward run`, Nomad.
    RunNomad,
    /// `steward run`, Vault.
    RunVault,
    /// `steward push [--prune] [--wait]` in CI.
    PushConsul,
    /// `steward doctor` and `steward diff`, Consul.
    ReadOnlyConsul,
    /// `steward doctor` and the reads of `steward diff`, Nomad.
    ReadOnlyNomad,
    /// `steward diff`'s job plan.
    PlanNomad,
    /// `steward doctor` and `steward diff`, Vault.
    ReadOnlyVault,
}

impl Role {
    fn product(self) -> Product {
        match self {
            Role::RunConsul | Role::PushConsul | Role::ReadOnlyConsul => Product::Consul,
            Role::RunNomad | Role::ReadOnlyNomad | Role::PlanNomad => Product::Nomad,
            Role::RunVault | Role::ReadOnlyVault => Product::Vault,
        }
    }
}

/// What one operation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Refused for want of a permission: the server's words.
    Denied(String),
    /// Failed otherwise (a broken test, not a finding).
    Failed(String),
}

fn outcome<T>(r: Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e @ (Error::PermissionDenied { .. } | Error::FilteredByAcls { .. })) => {
            Outcome::Denied(e.to_string())
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A transaction refused by ACLs is rolled back (HTTP 409) with Consul's permission
/// text per operation, not answered 403.
fn txn_outcome(r: Result<steward_hashi::Response<TxnOutcome>, Error>) -> Outcome {
    match r {
        Ok(resp) => match resp.value {
            TxnOutcome::Committed(_) => Outcome::Ok,
            TxnOutcome::RolledBack(errors) => {
                let text: Vec<String> = errors.iter().map(|e| e.what.clone()).collect();
                let text = text.join("; ");
                if text.contains("Permission denied") {
                    Outcome::Denied(format!("transaction rolled back: {text}"))
                } else {
                    Outcome::Failed(format!("transaction rolled back: {text}"))
                }
            }
        },
        Err(e) => outcome::<()>(Err(e)),
    }
}

/// One rule of a policy: what it is, and the policy without it.
struct Rule {
    what: String,
    without: String,
}

fn label(block: &hcl::Block) -> String {
    let labels: Vec<String> = block
        .labels
        .iter()
        .map(|l| format!("{:?}", l.as_str()))
        .collect();
    if labels.is_empty() {
        block.identifier.to_string()
    } else {
        format!("{} {}", block.identifier, labels.join(" "))
    }
}

fn expr_text(e: &Expression) -> String {
    match e {
        Expression::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The rules of a policy, each with the policy text that lacks it.
fn rules_of(text: &str) -> Vec<Rule> {
    let body: Body = hcl::parse(text).unwrap();
    let mut out = Vec::new();
    let without = |edit: &dyn Fn(&mut Vec<Structure>)| {
        let mut b = body.clone();
        edit(&mut b.0);
        hcl::to_string(&b).unwrap()
    };
    for (i, s) in body.0.iter().enumerate() {
        match s {
            Structure::Attribute(a) => out.push(Rule {
                what: format!("{} = {}", a.key, expr_text(&a.expr)),
                without: without(&|v| {
                    v.remove(i);
                }),
            }),
            Structure::Block(b) => {
                let head = label(b);
                let has_policy = b.body.attributes().any(|a| a.key() == "policy");
                if has_policy {
                    let policy = b
                        .body
                        .attributes()
                        .find(|a| a.key() == "policy")
                        .map(|a| expr_text(a.expr()))
                        .unwrap_or_default();
                    out.push(Rule {
                        what: format!("{head} {{ policy = {policy} }}"),
                        without: without(&|v| {
                            v.remove(i);
                        }),
                    });
                }
                for (j, inner) in b.body.0.iter().enumerate() {
                    let Structure::Attribute(a) = inner else {
                        continue;
                    };
                    match &a.expr {
                        Expression::Array(items) => {
                            for (k, item) in items.iter().enumerate() {
                                out.push(Rule {
                                    what: format!("{head} {} {}", a.key, expr_text(item)),
                                    without: without(&|v| {
                                        let Structure::Block(block) = &mut v[i] else {
                                            unreachable!("a block at {i}");
                                        };
                                        let Structure::Attribute(attr) = &mut block.body.0[j]
                                        else {
                                            unreachable!("an attribute at {j}");
                                        };
                                        let Expression::Array(list) = &mut attr.expr else {
                                            unreachable!("an array");
                                        };
                                        list.remove(k);
                                        // A rule left with no capability is no rule.
                                        if list.is_empty() && !has_policy {
                                            v.remove(i);
                                        }
                                    }),
                                });
                            }
                        }
                        _ if a.key() != "policy" => out.push(Rule {
                            what: format!("{head} {} = {}", a.key, expr_text(&a.expr)),
                            without: without(&|v| {
                                let Structure::Block(block) = &mut v[i] else {
                                    unreachable!("a block at {i}");
                                };
                                block.body.0.remove(j);
                            }),
                        }),
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

fn policy_text(file: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("deploy/acl/{file}")))
        .unwrap_or_else(|e| panic!("deploy/acl/{file}: {e}"))
}

/// The objects of the spec `team/web`, rendered as the operator renders them.
fn desired() -> Desired {
    let policy = guardrails();
    let loaded = steward_spec::load("web.yaml", &web(NS, NAME, "1.0"), Some(&policy));
    let spec = loaded.spec.unwrap();
    steward_render::render(&spec, &RenderContext::default()).unwrap()
}

const ADMIN_CONSUL: &str = "acl-test-consul-admin";
const ADMIN_NOMAD: &str = "acl-test-nomad-admin";
const ROLE_TOKEN: &str = "acl-test-role-token";

/// A simulator whose `role.product()` gives the role token `rules`, with management
/// tokens for the test's own set-up.
struct World {
    env: Env,
    role: Clients,
    desired: Desired,
}

impl World {
    async fn start(role: Role, rules: &str) -> World {
        let mut config = sim_config();
        let mut token = |product, secret: &str, management, rules: &str| {
            config.tokens.push(TokenConfig {
                product,
                secret: secret.to_owned(),
                management,
                rules: rules.to_owned(),
            });
        };
        token(Product::Consul, ADMIN_CONSUL, true, "");
        token(Product::Nomad, ADMIN_NOMAD, true, "");
        let admin = Tokens {
            consul: Some(ADMIN_CONSUL.to_owned()),
            nomad: Some(ADMIN_NOMAD.to_owned()),
            vault: "root".to_owned(),
        };
        let mut role_tokens = admin.clone();
        match role.product() {
            Product::Consul => role_tokens.consul = Some(ROLE_TOKEN.to_owned()),
            Product::Nomad => role_tokens.nomad = Some(ROLE_TOKEN.to_owned()),
            Product::Vault => role_tokens.vault = ROLE_TOKEN.to_owned(),
        }
        // A Vault token of inline rules also holds Vault's `default` policy, as every
        // token created without `no_default_policy` does.
        token(role.product(), ROLE_TOKEN, false, rules);
        let env = Env::start_with_tokens(config, admin).await;
        let role_clients = clients_with(
            &env.sim.consul_url(),
            &env.sim.nomad_url(),
            &env.sim.vault_url(),
            &role_tokens,
        );
        World {
            env,
            role: role_clients,
            desired: desired(),
        }
    }

    fn admin(&self) -> &Clients {
        &self.env.clients
    }

    fn job(&self) -> &Value {
        &self.desired.nomad_job.job
    }

    fn entry(&self, kind: &str) -> &steward_render::ConfigEntry {
        match kind {
            "service-defaults" => self.desired.service_defaults.as_ref(),
            "service-intentions" => self.desired.service_intentions.as_ref(),
            _ => self.desired.http_routes.first(),
        }
        .unwrap_or_else(|| panic!("the spec renders a {kind}"))
    }

    fn policy_hcl(&self) -> &str {
        &self.desired.vault_policy.as_ref().unwrap().hcl
    }

    fn jwt_role(&self) -> JwtRole {
        serde_json::from_value(self.desired.vault_role.as_ref().unwrap().body.clone()).unwrap()
    }

    /// What a management token prepares for `role`'s operations.
    async fn prepare(&self, role: Role) -> Option<String> {
        let admin = self.admin();
        let w = WriteOptions::new();
        match role.product() {
            Product::Consul => {
                let consul = &admin.consul;
                let spec = web(NS, NAME, "1.0");
                let specs = format!("steward/specs/{NS}/{NAME}");
                assert!(
                    consul
                        .kv_put(&specs, spec.as_bytes(), None, &w)
                        .await
                        .unwrap()
                );
                let status = format!("steward/status/{NS}/{NAME}");
                assert!(consul.kv_put(&status, b"{}", None, &w).await.unwrap());
                for kind in ["service-defaults", "service-intentions", "http-route"] {
                    assert!(consul.config_put(&self.entry(kind).body, &w).await.unwrap());
                }
                let session = consul
                    .session_create(&SessionCreate::ttl_only(
                        "acl-test",
                        Duration::from_secs(30),
                    ))
                    .await
                    .unwrap();
                assert!(
                    consul
                        .kv_acquire("steward/leader", b"", &session, None)
                        .await
                        .unwrap()
                );
                Some(session)
            }
            Product::Nomad => {
                let t = admin.nomad.transport();
                let ns = RequestSpec::put(format!("/v1/namespace/{NS}"))
                    .json(json!({"Name": NS, "Description": "acl test"}));
                t.call(ns, |_| Ok(())).await.unwrap();
                let opts = RegisterOptions {
                    namespace: Some(NS.to_owned()),
                    ..RegisterOptions::default()
                };
                admin.nomad.register_job(self.job(), &opts).await.unwrap();
                None
            }
            Product::Vault => {
                let vault = &admin.vault;
                let name = format!("steward-{NS}-{NAME}");
                vault.put_policy(&name, self.policy_hcl()).await.unwrap();
                vault
                    .put_jwt_role("jwt-nomad", &name, &self.jwt_role())
                    .await
                    .unwrap();
                None
            }
        }
    }

    /// Runs `role`'s operations with the role token, in an order where each one finds
    /// what it needs.
    async fn operations(&self, role: Role, session: Option<&str>) -> Vec<(String, Outcome)> {
        let mut out: Vec<(String, Outcome)> = Vec::new();
        let mut op = |name: &str, o: Outcome| out.push((name.to_owned(), o));
        let c = &self.role;
        let q = QueryOptions::new();
        let w = WriteOptions::new();
        let specs = format!("steward/specs/{NS}/{NAME}");
        let status = format!("steward/status/{NS}/{NAME}");
        let policy = format!("steward-{NS}-{NAME}");
        let nsq = QueryOptions::new().namespace(NS);
        let get = |path: &str| RequestSpec::get(path.to_owned());
        match role {
            Role::RunConsul => {
                let session = session.unwrap();
                op(
                    "watch the specs (GET /v1/kv/steward/specs/?recurse)",
                    outcome(c.consul.kv_list("steward/specs/", &q).await),
                );
                op(
                    "cache the statuses (GET /v1/kv/steward/status/?recurse)",
                    outcome(c.consul.kv_list("steward/status/", &q).await),
                );
                op(
                    "create the leader session (PUT /v1/session/create)",
                    outcome(
                        c.consul
                            .session_create(&SessionCreate::ttl_only(
                                "steward",
                                Duration::from_secs(10),
                            ))
                            .await,
                    ),
                );
                op(
                    "renew the leader session (PUT /v1/session/renew/<id>)",
                    outcome(c.consul.session_renew(session).await),
                );
                op(
                    "read the leader lock (GET /v1/kv/steward/leader)",
                    outcome(c.consul.kv_get("steward/leader", &q).await),
                );
                op(
                    "acquire the leader lock (PUT /v1/kv/steward/leader?acquire)",
                    outcome(
                        c.consul
                            .kv_acquire("steward/leader", b"", session, None)
                            .await,
                    ),
                );
                let fenced = [
                    TxnOp::CheckSession {
                        key: "steward/leader".to_owned(),
                        session: session.to_owned(),
                    },
                    TxnOp::Set {
                        key: status.clone(),
                        value: b"{\"phase\":\"Synced\"}".to_vec(),
                        flags: 0,
                    },
                ];
                op(
                    "write a status, fenced by the session (PUT /v1/txn)",
                    txn_outcome(c.consul.txn(&fenced, &q).await),
                );
                op(
                    "release the leader lock (PUT /v1/kv/steward/leader?release)",
                    outcome(
                        c.consul
                            .kv_release("steward/leader", b"", session, None)
                            .await,
                    ),
                );
                for kind in ["service-defaults", "service-intentions", "http-route"] {
                    let entry = self.entry(kind);
                    op(
                        &format!("read the {kind} (GET /v1/config/{kind}/<name>)"),
                        outcome(c.consul.config_get_raw(kind, &entry.name, &q).await),
                    );
                    op(
                        &format!("write the {kind} (PUT /v1/config)"),
                        outcome(c.consul.config_put(&entry.body, &w).await),
                    );
                }
                op(
                    "read the edge gateway (GET /v1/config/api-gateway/edge)",
                    outcome(c.consul.config_get_raw("api-gateway", "edge", &q).await),
                );
                // Not service-defaults: the route still there would keep it (Consul
                // validates the graph on delete); its rule is the one of its write.
                for kind in ["http-route", "service-intentions"] {
                    let entry = self.entry(kind);
                    op(
                        &format!("GC: delete the {kind} (DELETE /v1/config/{kind}/<name>)"),
                        outcome(c.consul.config_delete(kind, &entry.name, &w).await),
                    );
                }
                op(
                    "read the server version (GET /v1/agent/self)",
                    outcome(c.consul.agent_self().await),
                );
            }
            Role::PushConsul => {
                op(
                    "compare with the specs in KV (GET /v1/kv/steward/specs/?recurse)",
                    outcome(c.consul.kv_list("steward/specs/", &q).await),
                );
                let pushed = [TxnOp::Cas {
                    key: format!("steward/specs/{NS}/api"),
                    value: b"apiVersion: steward/v1".to_vec(),
                    flags: 0,
                    index: 0,
                }];
                op(
                    "write a new spec, check-and-set (PUT /v1/txn)",
                    txn_outcome(c.consul.txn(&pushed, &q).await),
                );
                op(
                    "read a spec back after an unknown outcome (GET /v1/kv/<spec>)",
                    outcome(c.consul.kv_get(&specs, &q).await),
                );
                op(
                    "wait: read the statuses (GET /v1/kv/steward/status/?recurse)",
                    outcome(c.consul.kv_list("steward/status/", &q).await),
                );
                let index = self
                    .admin()
                    .consul
                    .kv_get(&specs, &q)
                    .await
                    .unwrap()
                    .value
                    .map_or(0, |p| p.modify_index);
                let prune = [TxnOp::DeleteCas {
                    key: specs.clone(),
                    index,
                }];
                op(
                    "prune a spec, check-and-set (PUT /v1/txn)",
                    txn_outcome(c.consul.txn(&prune, &q).await),
                );
            }
            Role::ReadOnlyConsul => {
                op(
                    "doctor: the server version (GET /v1/agent/self)",
                    outcome(c.consul.agent_self().await),
                );
                op(
                    "doctor: the token (GET /v1/acl/token/self)",
                    outcome(
                        c.consul
                            .transport()
                            .call(get("/v1/acl/token/self"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
                op(
                    "doctor: the namespaces of the specs (GET /v1/kv/steward/specs/?keys)",
                    outcome(c.consul.kv_keys("steward/specs/", None, &q).await),
                );
                op(
                    "doctor: the edge gateway (GET /v1/config/api-gateway/edge)",
                    outcome(c.consul.config_get_raw("api-gateway", "edge", &q).await),
                );
                op(
                    "diff: the specs in KV (GET /v1/kv/steward/specs/?recurse)",
                    outcome(c.consul.kv_list("steward/specs/", &q).await),
                );
                for kind in ["service-defaults", "service-intentions", "http-route"] {
                    let entry = self.entry(kind);
                    op(
                        &format!("diff: the live {kind} (GET /v1/config/{kind}/<name>)"),
                        outcome(c.consul.config_get_raw(kind, &entry.name, &q).await),
                    );
                }
            }
            Role::RunNomad => {
                let t = c.nomad.transport();
                op(
                    "start-up: list jobs with their meta (GET /v1/jobs?meta=true)",
                    outcome(
                        t.call(get("/v1/jobs").query("meta", "true"), |raw| {
                            raw.json::<Value>()
                        })
                        .await,
                    ),
                );
                op(
                    "list the namespaces (GET /v1/namespaces)",
                    outcome(
                        t.call(get("/v1/namespaces"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
                op(
                    "read the job (GET /v1/job/<id>)",
                    outcome(c.nomad.get_job(NAME, &nsq).await),
                );
                op(
                    "read the job's versions (GET /v1/job/<id>/versions)",
                    outcome(c.nomad.job_versions(NAME, false, &nsq).await),
                );
                op(
                    "read the job's deployment (GET /v1/job/<id>/deployment)",
                    outcome(c.nomad.latest_deployment(NAME, &nsq).await),
                );
                op(
                    "plan the job (PUT /v1/job/<id>/plan)",
                    outcome(c.nomad.plan_job(self.job(), Some(NS)).await),
                );
                let opts = RegisterOptions {
                    namespace: Some(NS.to_owned()),
                    ..RegisterOptions::default()
                };
                op(
                    "register the job (PUT /v1/jobs)",
                    outcome(c.nomad.register_job(self.job(), &opts).await),
                );
                op(
                    "GC: stop the job (DELETE /v1/job/<id>)",
                    outcome(
                        c.nomad
                            .deregister_job(NAME, false, &WriteOptions::new().namespace(NS))
                            .await,
                    ),
                );
                op(
                    "read the server version (GET /v1/agent/self)",
                    outcome(
                        t.call(get("/v1/agent/self"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
            }
            Role::ReadOnlyNomad => {
                let t = c.nomad.transport();
                op(
                    "doctor: the server version (GET /v1/agent/self)",
                    outcome(
                        t.call(get("/v1/agent/self"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
                op(
                    "doctor: the token (GET /v1/acl/token/self)",
                    outcome(
                        t.call(get("/v1/acl/token/self"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
                op(
                    "doctor: the namespaces (GET /v1/namespaces)",
                    outcome(
                        t.call(get("/v1/namespaces"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
                op(
                    "diff: the live job (GET /v1/job/<id>)",
                    outcome(c.nomad.get_job(NAME, &nsq).await),
                );
                op(
                    "diff: the namespace of a job it cannot plan (GET /v1/namespace/<ns>)",
                    outcome(
                        t.call(get(&format!("/v1/namespace/{NS}")), |raw| {
                            raw.json::<Value>()
                        })
                        .await,
                    ),
                );
            }
            Role::PlanNomad => {
                op(
                    "diff: plan the job (PUT /v1/job/<id>/plan)",
                    outcome(c.nomad.plan_job(self.job(), Some(NS)).await),
                );
            }
            Role::RunVault => {
                let new = format!("steward-{NS}-api");
                op(
                    "read a policy (GET /v1/sys/policies/acl/<name>)",
                    outcome(c.vault.get_policy(&policy).await),
                );
                op(
                    "write a new policy (PUT /v1/sys/policies/acl/<name>)",
                    outcome(c.vault.put_policy(&new, self.policy_hcl()).await),
                );
                op(
                    "rewrite a policy (PUT /v1/sys/policies/acl/<name>)",
                    outcome(c.vault.put_policy(&policy, self.policy_hcl()).await),
                );
                op(
                    "list the policies (LIST /v1/sys/policies/acl)",
                    outcome(c.vault.list_policies().await),
                );
                op(
                    "read a JWT role (GET /v1/auth/jwt-nomad/role/<name>)",
                    outcome(c.vault.get_jwt_role("jwt-nomad", &policy).await),
                );
                op(
                    "create a JWT role (POST /v1/auth/jwt-nomad/role/<name>)",
                    outcome(
                        c.vault
                            .put_jwt_role("jwt-nomad", &new, &self.jwt_role())
                            .await,
                    ),
                );
                op(
                    "update a JWT role (POST /v1/auth/jwt-nomad/role/<name>)",
                    outcome(
                        c.vault
                            .put_jwt_role("jwt-nomad", &policy, &self.jwt_role())
                            .await,
                    ),
                );
                op(
                    "list the JWT roles (LIST /v1/auth/jwt-nomad/role)",
                    outcome(c.vault.list_jwt_roles("jwt-nomad").await),
                );
                op(
                    "GC: delete a JWT role (DELETE /v1/auth/jwt-nomad/role/<name>)",
                    outcome(c.vault.delete_jwt_role("jwt-nomad", &policy).await),
                );
                op(
                    "GC: delete a policy (DELETE /v1/sys/policies/acl/<name>)",
                    outcome(c.vault.delete_policy(&policy).await),
                );
                op(
                    "start-up: the JWT auth mount (GET /v1/sys/auth)",
                    outcome(
                        c.vault
                            .transport()
                            .call(get("/v1/sys/auth"), |raw| raw.json::<Value>())
                            .await,
                    ),
                );
            }
            Role::ReadOnlyVault => {
                let t = c.vault.transport();
                op(
                    "doctor: the server version (GET /v1/sys/health)",
                    outcome(c.vault.health().await),
                );
                let caps = RequestSpec::new(http::Method::POST, "/v1/sys/capabilities-self")
                    .json(json!({"paths": [format!("sys/policies/acl/{policy}")]}));
                op(
                    "doctor: the token's capabilities (POST /v1/sys/capabilities-self)",
                    outcome(t.call(caps, |raw| raw.json::<Value>()).await),
                );
                op(
                    "doctor: the JWT auth mount (GET /v1/sys/auth)",
                    outcome(t.call(get("/v1/sys/auth"), |raw| raw.json::<Value>()).await),
                );
                op(
                    "doctor: the JWT auth config (GET /v1/auth/jwt-nomad/config)",
                    outcome(
                        t.call(get("/v1/auth/jwt-nomad/config").accept(&[404]), |_| Ok(()))
                            .await,
                    ),
                );
                op(
                    "diff: a live policy (GET /v1/sys/policies/acl/<name>)",
                    outcome(c.vault.get_policy(&policy).await),
                );
                op(
                    "diff: a live JWT role (GET /v1/auth/jwt-nomad/role/<name>)",
                    outcome(
                        t.call(get(&format!("/v1/auth/jwt-nomad/role/{policy}")), |raw| {
                            raw.json::<Value>()
                        })
                        .await,
                    ),
                );
            }
        }
        out
    }
}

async fn run_role(role: Role, rules: &str) -> Vec<(String, Outcome)> {
    let world = World::start(role, rules).await;
    let session = world.prepare(role).await;
    let out = world.operations(role, session.as_deref()).await;
    world.env.finish().await;
    out
}

/// The whole check for the policy `file` used by `role`; returns the table of which
/// operation each rule's removal refused.
async fn every_rule_is_needed(role: Role, file: &str) -> String {
    let text = policy_text(file);
    let full = run_role(role, &text).await;
    let failed: Vec<&(String, Outcome)> = full.iter().filter(|(_, o)| *o != Outcome::Ok).collect();
    assert!(
        failed.is_empty(),
        "deploy/acl/{file} is not enough for {role:?}: {failed:#?}"
    );
    let rules = rules_of(&text);
    assert!(!rules.is_empty(), "deploy/acl/{file} has no rule");
    let mut table = format!("deploy/acl/{file}\n");
    for rule in rules {
        let results = run_role(role, &rule.without).await;
        let broken: Vec<&(String, Outcome)> = results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .collect();
        assert!(
            broken.is_empty(),
            "without `{}` in {file}, operations failed for another reason than a permission: {broken:#?}",
            rule.what
        );
        let denied: Vec<(&str, &str)> = results
            .iter()
            .filter_map(|(name, o)| match o {
                Outcome::Denied(why) => Some((name.as_str(), why.as_str())),
                _ => None,
            })
            .collect();
        assert!(
            !denied.is_empty(),
            "`{}` in deploy/acl/{file} is unnecessary: without it every operation of {role:?} still succeeds",
            rule.what
        );
        for (name, why) in &denied {
            let named = match role.product() {
                // Consul names the permission (`lacks permission 'key:write' on ...`);
                // a filtered listing is Steward's own refusal.
                Product::Consul => {
                    why.contains("lacks permission '") || why.contains("results filtered by ACLs")
                }
                Product::Nomad => why.contains("Permission denied"),
                Product::Vault => why.contains("permission denied"),
            };
            assert!(
                named,
                "without `{}`, {name} was refused without the server's permission text: {why}",
                rule.what
            );
        }
        let _ = writeln!(table, "  without `{}`:", rule.what);
        for (name, why) in denied {
            let _ = writeln!(table, "    refused: {name}: {why}");
        }
    }
    table
}

/// The operations that need no permission at all: the caller's own token, Vault's
/// health and `sys/capabilities-self` (Vault's `default` policy), and Nomad's namespace
/// list (filtered to the namespaces the token has a capability in).
const OPEN: &[&str] = &[
    "doctor: the token (GET /v1/acl/token/self)",
    "doctor: the namespaces (GET /v1/namespaces)",
    "list the namespaces (GET /v1/namespaces)",
    "doctor: the server version (GET /v1/sys/health)",
    "doctor: the token's capabilities (POST /v1/sys/capabilities-self)",
];

/// The simulator's authorizer covers every endpoint Steward calls: with a token that
/// holds no rule (a Vault token holds only `default` and an unrelated path), each
/// operation of every role is refused, except the few that need no permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_steward_calls_is_refused_to_a_token_without_rules() {
    let roles = [
        Role::RunConsul,
        Role::PushConsul,
        Role::ReadOnlyConsul,
        Role::RunNomad,
        Role::ReadOnlyNomad,
        Role::PlanNomad,
        Role::RunVault,
        Role::ReadOnlyVault,
    ];
    let mut seen_open = Vec::new();
    for role in roles {
        let nothing = match role.product() {
            Product::Vault => r#"path "unrelated/*" { capabilities = ["read"] }"#,
            _ => "",
        };
        for (name, o) in run_role(role, nothing).await {
            if OPEN.contains(&name.as_str()) {
                assert_eq!(o, Outcome::Ok, "{role:?}: {name} needs no permission");
                seen_open.push(name);
            } else {
                assert!(
                    matches!(o, Outcome::Denied(_)),
                    "{role:?}: {name} was not refused to a token without rules: {o:?}"
                );
            }
        }
    }
    for name in OPEN {
        assert!(seen_open.iter().any(|s| s == name), "{name} was not tried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_operators_consul_policy_is_needed() {
    let table = every_rule_is_needed(Role::RunConsul, "consul-steward.hcl").await;
    println!("{table}");
    // The three writes each have their own rule, each named in Consul's refusal.
    assert!(
        table.contains("lacks permission 'service:write'"),
        "{table}"
    );
    assert!(
        table.contains("lacks permission 'intention:write'"),
        "{table}"
    );
    assert!(table.contains("lacks permission 'mesh:write'"), "{table}");
    assert!(
        table.contains("lacks permission 'session:write'"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_operators_nomad_policy_is_needed() {
    let table = every_rule_is_needed(Role::RunNomad, "nomad-steward.hcl").await;
    println!("{table}");
    assert!(table.contains("\"submit-job\""), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_operators_vault_policy_is_needed() {
    let table = every_rule_is_needed(Role::RunVault, "vault-steward.hcl").await;
    println!("{table}");
    // A new JWT role is a create, an existing one an update.
    assert!(
        table.contains("\"create\"`:\n    refused: create a JWT role"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_ci_push_policy_is_needed() {
    let table = every_rule_is_needed(Role::PushConsul, "consul-ci-push.hcl").await;
    println!("{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_read_only_consul_policy_is_needed() {
    let table = every_rule_is_needed(Role::ReadOnlyConsul, "consul-readonly.hcl").await;
    println!("{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_read_only_nomad_policies_is_needed() {
    let table = every_rule_is_needed(Role::ReadOnlyNomad, "nomad-readonly.hcl").await;
    println!("{table}");
    let table = every_rule_is_needed(Role::PlanNomad, "nomad-plan.hcl").await;
    println!("{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_read_only_vault_policy_is_needed() {
    let table = every_rule_is_needed(Role::ReadOnlyVault, "vault-readonly.hcl").await;
    println!("{table}");
}

#[test]
fn policies_split_into_rules_down_to_each_capability() {
    let rules = rules_of(
        r#"
        key_prefix "a/" { policy = "read" }
        service_prefix "" {
          policy     = "write"
          intentions = "write"
        }
        mesh = "write"
        path "x/*" { capabilities = ["read", "update"] }
        "#,
    );
    let names: Vec<&str> = rules.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(
        names,
        [
            r#"key_prefix "a/" { policy = "read" }"#,
            r#"service_prefix "" { policy = "write" }"#,
            r#"service_prefix "" intentions = "write""#,
            r#"mesh = "write""#,
            r#"path "x/*" capabilities "read""#,
            r#"path "x/*" capabilities "update""#,
        ]
    );
    // Removing one capability keeps the others; removing the last removes the block.
    let two = rules_of(r#"path "x/*" { capabilities = ["read", "update"] }"#);
    assert!(two[0].without.contains("\"update\"") && !two[0].without.contains("\"read\""));
    let single = rules_of(r#"path "y" { capabilities = ["list"] }"#);
    assert!(!single[0].without.contains("path"), "{}", single[0].without);
    assert!(!rules[2].without.contains("intentions"));
    assert!(rules[2].without.contains("service_prefix"));
}
