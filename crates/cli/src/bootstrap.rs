//! `steward bootstrap`: creates, idempotently, what a fresh cluster lacks before
//! `steward run` can converge anything: the Nomad namespaces of the specs, the edge
//! gateway entry, and Vault's JWT auth method for Nomad workload identities with its
//! config. It only creates: an object that exists is left as it is, whatever it holds.

use std::collections::BTreeSet;

use anyhow::Context as _;
use serde_json::{Value, json};
use steward_hashi::{RequestSpec, WriteOptions};
use steward_operator::OperatorConfig;

use crate::args::BootstrapArgs;
use crate::cluster::{self, Servers, get_json};
use crate::exit::{Exit, fail};
use crate::operator::edge_gateway_entry;

/// The role Vault's JWT auth method falls back to for an identity that names none;
/// the name Nomad's `nomad setup vault` uses (Steward's jobs always name their role).
pub const DEFAULT_ROLE: &str = "nomad-workloads";

/// What bootstrap does (or did) with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It was missing and is created.
    Create,
    /// It exists; nothing is written.
    Exists,
}

/// One object and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Create or leave.
    pub action: Action,
    /// The object, e.g. `nomad namespace trading`.
    pub object: String,
    /// What was found or is written.
    pub detail: String,
}

/// The body of Nomad's namespace upsert.
pub fn namespace_body(name: &str) -> Value {
    json!({"Name": name, "Description": "created by steward bootstrap"})
}

/// The body that enables the JWT auth method.
pub fn jwt_mount_body() -> Value {
    json!({
        "type": "jwt",
        "description": "Nomad workload identities (created by steward bootstrap)",
    })
}

/// The JWT auth config for Nomad workload identities, as Nomad's Vault integration
/// guide sets it: Nomad's JWKS URL, its signing algorithms, a default role.
pub fn jwt_config_body(nomad_base_url: &str) -> Value {
    json!({
        "jwks_url": cluster::nomad_jwks_url(nomad_base_url),
        "jwt_supported_algs": ["RS256", "EdDSA"],
        "default_role": DEFAULT_ROLE,
    })
}

/// The namespace steps: every needed namespace, created when missing.
pub fn namespace_steps(needed: &BTreeSet<String>, existing: &BTreeSet<String>) -> Vec<Step> {
    needed
        .iter()
        .map(|ns| Step {
            action: if existing.contains(ns) {
                Action::Exists
            } else {
                Action::Create
            },
            object: format!("nomad namespace {ns}"),
            detail: String::new(),
        })
        .collect()
}

/// The lines printed: one per object, then what was written.
pub fn report(steps: &[Step], dry_run: bool) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let action = match (s.action, dry_run) {
                (Action::Create, true) => "would create",
                (Action::Create, false) => "created",
                (Action::Exists, _) => "exists",
            };
            vec![action.to_owned(), s.object.clone(), s.detail.clone()]
        })
        .collect();
    let mut out = crate::table::table(&["ACTION", "OBJECT", "DETAIL"], &rows);
    let created = steps.iter().filter(|s| s.action == Action::Create).count();
    out.push_str(&match (created, dry_run) {
        (0, _) => "nothing to do: everything exists (nothing written)\n".to_owned(),
        (n, true) => format!("dry run: {n} to create (nothing written)\n"),
        (n, false) => format!("created {n}, {} existed\n", steps.len() - n),
    });
    out
}

fn write_failed(what: String) -> impl FnOnce(steward_hashi::Error) -> anyhow::Error {
    move |e| fail(Exit::WriteFailed, anyhow::Error::new(e).context(what))
}

async fn namespaces(
    servers: &Servers,
    config: &OperatorConfig,
    from_files: BTreeSet<String>,
    dry_run: bool,
) -> anyhow::Result<Vec<Step>> {
    let mut needed = cluster::kv_spec_namespaces(&servers.consul, &config.prefix)
        .await
        .context("cannot list the specs in Consul KV")?;
    needed.extend(from_files);
    let t = servers.nomad.transport();
    let existing = get_json(t, "/v1/namespaces")
        .await
        .context("cannot list Nomad's namespaces")?
        .as_ref()
        .map(cluster::namespace_names)
        .unwrap_or_default();
    let steps = namespace_steps(&needed, &existing);
    if !dry_run {
        for name in needed.iter().filter(|n| !existing.contains(*n)) {
            let spec = RequestSpec::put(format!("/v1/namespace/{name}")).json(namespace_body(name));
            t.call(spec, |_| Ok(()))
                .await
                .map_err(write_failed(format!(
                    "cannot create Nomad namespace {name}"
                )))?;
        }
    }
    Ok(steps)
}

async fn gateway(
    servers: &Servers,
    config: &OperatorConfig,
    dry_run: bool,
) -> anyhow::Result<Step> {
    let g = &config.edge_gateway;
    let object = format!("consul {} {}", g.kind, g.name);
    let t = servers.consul.transport();
    let existing = get_json(t, &format!("/v1/config/{}/{}", g.kind, g.name))
        .await
        .with_context(|| format!("cannot read the edge gateway {}/{}", g.kind, g.name))?;
    if existing.is_some() {
        return Ok(Step {
            action: Action::Exists,
            object,
            detail: String::new(),
        });
    }
    let entry = edge_gateway_entry(g);
    let listener = entry["Listeners"][0]["Name"]
        .as_str()
        .unwrap_or("http")
        .to_owned();
    if !dry_run {
        // Create-only (cas=0): an entry someone writes meanwhile is theirs to keep.
        servers
            .consul
            .config_put(&entry, &WriteOptions::cas(0))
            .await
            .map_err(write_failed(format!(
                "cannot create the edge gateway {}/{}",
                g.kind, g.name
            )))?;
    }
    Ok(Step {
        action: Action::Create,
        object,
        detail: format!("listener {listener} (http, port 8080)"),
    })
}

async fn jwt_auth(
    servers: &Servers,
    config: &OperatorConfig,
    dry_run: bool,
) -> anyhow::Result<Vec<Step>> {
    let t = servers.vault.transport();
    let mount = config.jwt_auth_mount.trim_matches('/');
    let table = get_json(t, "/v1/sys/auth")
        .await
        .context("cannot list Vault's auth methods")?
        .unwrap_or(Value::Null);
    let mount_object = format!("vault auth method {mount}/");
    let config_object = format!("vault auth config {mount}/");
    let config_body = jwt_config_body(servers.nomad.transport().base_url());
    let config_detail = format!(
        "jwks_url {}",
        config_body["jwks_url"].as_str().unwrap_or_default()
    );
    let mut steps = Vec::new();
    let configured = match cluster::auth_mount_type(&table, mount).as_deref() {
        Some("jwt") => {
            steps.push(Step {
                action: Action::Exists,
                object: mount_object,
                detail: "type jwt".to_owned(),
            });
            get_json(t, &format!("/v1/auth/{mount}/config"))
                .await
                .with_context(|| format!("cannot read auth/{mount}/config"))?
                .as_ref()
                .and_then(cluster::jwt_config_verifier)
        }
        Some(other) => {
            return Err(fail(
                Exit::Invalid,
                anyhow::anyhow!(
                    "Vault's auth method at {mount}/ is a {other} method, not jwt: pass --jwt-auth-mount with another path"
                ),
            ));
        }
        None => {
            if !dry_run {
                t.call(
                    RequestSpec::new(reqwest::Method::POST, format!("/v1/sys/auth/{mount}"))
                        .idempotency(steward_hashi::Idempotency::Unguarded)
                        .json(jwt_mount_body()),
                    |_| Ok(()),
                )
                .await
                .map_err(write_failed(format!(
                    "cannot enable the JWT auth method at {mount}/"
                )))?;
            }
            steps.push(Step {
                action: Action::Create,
                object: mount_object,
                detail: "type jwt".to_owned(),
            });
            None
        }
    };
    match configured {
        Some(verifier) => steps.push(Step {
            action: Action::Exists,
            object: config_object,
            detail: verifier,
        }),
        None => {
            if !dry_run {
                t.call(
                    RequestSpec::new(reqwest::Method::POST, format!("/v1/auth/{mount}/config"))
                        .idempotency(steward_hashi::Idempotency::Unguarded)
                        .json(config_body),
                    |_| Ok(()),
                )
                .await
                .map_err(write_failed(format!(
                    "cannot configure auth/{mount}/config"
                )))?;
            }
            steps.push(Step {
                action: Action::Create,
                object: config_object,
                detail: config_detail,
            });
        }
    }
    Ok(steps)
}

/// Runs `steward bootstrap`.
///
/// # Errors
/// Usage errors (exit 2), invalid spec files (exit 1), a failed write (exit 3).
pub async fn run(args: &BootstrapArgs) -> anyhow::Result<Exit> {
    let config = cluster::cluster_config(&args.cluster)?;
    let from_files: BTreeSet<String> = match &args.specs {
        Some(dir) => crate::push::local_docs(dir, &config.prefix, None)?
            .iter()
            .filter_map(|d| d.spec_key.split_once('/').map(|(ns, _)| ns.to_owned()))
            .collect(),
        None => BTreeSet::new(),
    };
    let servers = Servers::from_env()?;
    let mut steps = namespaces(&servers, &config, from_files, args.dry_run).await?;
    steps.push(gateway(&servers, &config, args.dry_run).await?);
    steps.extend(jwt_auth(&servers, &config, args.dry_run).await?);
    print!("{}", report(&steps, args.dry_run));
    Ok(Exit::Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_namespaces_are_created() {
        let needed: BTreeSet<String> = ["default", "trading"].map(str::to_owned).into();
        let existing: BTreeSet<String> = ["default"].map(str::to_owned).into();
        let steps = namespace_steps(&needed, &existing);
        assert_eq!(steps[0].action, Action::Exists);
        assert_eq!(steps[1].action, Action::Create);
        assert_eq!(steps[1].object, "nomad namespace trading");
    }

    #[test]
    fn the_jwt_config_follows_nomads_guide() {
        let body = jwt_config_body("http://127.0.0.1:4646");
        assert_eq!(
            body["jwks_url"],
            "http://127.0.0.1:4646/.well-known/jwks.json"
        );
        assert_eq!(body["jwt_supported_algs"], json!(["RS256", "EdDSA"]));
        assert_eq!(body["default_role"], "nomad-workloads");
        assert_eq!(jwt_mount_body()["type"], "jwt");
    }

    #[test]
    fn the_report_says_when_nothing_was_written() {
        let exists = Step {
            action: Action::Exists,
            object: "nomad namespace trading".into(),
            detail: String::new(),
        };
        let text = report(std::slice::from_ref(&exists), false);
        assert!(text.contains("exists  nomad namespace trading"), "{text}");
        assert!(text.ends_with("nothing to do: everything exists (nothing written)\n"));
        let create = Step {
            action: Action::Create,
            ..exists
        };
        let dry = report(std::slice::from_ref(&create), true);
        assert!(
            dry.contains("would create  nomad namespace trading"),
            "{dry}"
        );
        assert!(dry.ends_with("dry run: 1 to create (nothing written)\n"));
        assert!(report(&[create], false).ends_with("created 1, 0 existed\n"));
    }
}
