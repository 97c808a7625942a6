//! `steward render`: the objects a spec renders to, as the APIs take them.

use anyhow::Context as _;
use serde_json::{Value, json};
use steward_render::{Desired, RenderContext};

use crate::args::{Only, RenderArgs, RenderFormat};
use crate::exit::{Exit, fail};
use crate::style;
use crate::validate::load_policy;

/// The JSON view of `desired` restricted to `only`: with `Nomad`, exactly the
/// `PUT /v1/jobs` body; with `Consul`, the array of config entry bodies; with `Vault`,
/// the policy and role with their API paths; with `All`, all of them plus key and hash.
pub fn json_view(desired: &Desired, only: Only) -> Value {
    let nomad = desired.nomad_job.register_body(None);
    let consul = Value::Array(
        desired
            .config_entries()
            .into_iter()
            .map(|e| e.body.clone())
            .collect(),
    );
    let vault = json!({
        "policy": desired.vault_policy.as_ref().map(|p| json!({
            "path": format!("sys/policies/acl/{}", p.name),
            "name": p.name,
            "policy": p.hcl,
        })),
        "role": desired.vault_role.as_ref().map(|r| json!({
            "path": format!("auth/{}/role/{}", r.mount, r.name),
            "name": r.name,
            "body": r.body,
        })),
    });
    match only {
        Only::Nomad => nomad,
        Only::Consul => consul,
        Only::Vault => vault,
        Only::All => json!({
            "key": desired.key,
            "hash": desired.hash,
            "nomad": {"namespace": desired.nomad_job.namespace, "register": nomad},
            "consul": {"configEntries": consul},
            "vault": vault,
        }),
    }
}

/// HCL output: the Nomad jobspec and the Vault policy as HCL (through
/// `steward_render::hcl`); config entries and the role have no HCL form Steward writes,
/// so they follow as JSON, each under a comment saying so.
pub fn hcl_view(desired: &Desired, only: Only) -> String {
    let mut sections: Vec<String> = Vec::new();
    let want = |o: Only| only == Only::All || only == o;
    if want(Only::Nomad) {
        sections.push(format!(
            "# Nomad job {} in namespace {} (jobspec)\n{}",
            desired.nomad_job.id,
            desired.nomad_job.namespace,
            steward_render::hcl::job_hcl(&desired.nomad_job.job)
        ));
    }
    if want(Only::Consul) {
        for entry in desired.config_entries() {
            sections.push(format!(
                "# Consul {} {} (JSON: the body of PUT /v1/config; no HCL rendering)\n{}\n",
                entry.kind,
                entry.name,
                pretty(&entry.body)
            ));
        }
    }
    if want(Only::Vault) {
        if let Some(p) = &desired.vault_policy {
            sections.push(format!(
                "# Vault ACL policy {} (sys/policies/acl/{})\n{}",
                p.name, p.name, p.hcl
            ));
        }
        if let Some(r) = &desired.vault_role {
            sections.push(format!(
                "# Vault JWT role {} (JSON: the body of POST auth/{}/role/{}; no HCL rendering)\n{}\n",
                r.name,
                r.mount,
                r.name,
                pretty(&r.body)
            ));
        }
    }
    if sections.is_empty() {
        return format!("# {}: nothing to render for this selection\n", desired.key);
    }
    sections
        .iter()
        .map(|s| {
            if s.ends_with('\n') {
                s.clone()
            } else {
                format!("{s}\n")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The output text for a format.
///
/// # Errors
/// YAML serialisation failed (not expected for JSON values).
pub fn format_desired(
    desired: &Desired,
    format: RenderFormat,
    only: Only,
) -> anyhow::Result<String> {
    Ok(match format {
        RenderFormat::Json => format!("{}\n", pretty(&json_view(desired, only))),
        RenderFormat::Yaml => {
            serde_saphyr::to_string(&json_view(desired, only)).context("cannot write YAML")?
        }
        RenderFormat::Hcl => hcl_view(desired, only),
    })
}

/// Runs `steward render`.
///
/// # Errors
/// Unreadable file (exit 2), invalid spec or unrenderable spec (exit 1).
pub fn run(args: &RenderArgs) -> anyhow::Result<Exit> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let policy = match &args.policy {
        Some(path) => {
            let (policy, diagnostics) = load_policy(path)?;
            if policy.is_none() {
                eprint!("{}", steward_spec::render_all(&diagnostics));
                return Ok(Exit::Invalid);
            }
            policy
        }
        None => None,
    };
    let loaded = steward_spec::load(&args.file.display().to_string(), &text, policy.as_ref());
    if !loaded.diagnostics.is_empty() {
        eprint!(
            "{}",
            style::diagnostics(&loaded.render(), console::colors_enabled_stderr())
        );
    }
    let Some(spec) = loaded.spec else {
        return Ok(Exit::Invalid);
    };
    let ctx = RenderContext {
        generation: args.generation,
        ..RenderContext::default()
    };
    let desired = steward_render::render(&spec, &ctx).map_err(|e| {
        fail(
            Exit::Invalid,
            anyhow::Error::new(e).context("cannot render"),
        )
    })?;
    print!("{}", format_desired(&desired, args.format, args.only)?);
    Ok(Exit::Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn desired(text: &str) -> Desired {
        let spec = steward_spec::load("t.yaml", text, None).spec.unwrap();
        steward_render::render(&spec, &RenderContext::default()).unwrap()
    }

    const WEB: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web, namespace: shop}\nspec:\n  image: 'nginx:1.27'\n  port: 8080\n  secrets: [{path: secret/data/shop/web/*, capabilities: [read]}]\n";

    #[test]
    fn only_nomad_is_exactly_the_register_body() {
        let d = desired(WEB);
        let v = json_view(&d, Only::Nomad);
        assert_eq!(v, d.nomad_job.register_body(None));
        assert_eq!(v["Job"]["ID"], "web");
    }

    #[test]
    fn all_holds_every_product() {
        let v = json_view(&desired(WEB), Only::All);
        assert_eq!(v["key"], "shop/web");
        assert!(v["consul"]["configEntries"].as_array().unwrap().len() >= 2);
        assert_eq!(
            v["vault"]["policy"]["path"],
            "sys/policies/acl/steward-shop-web"
        );
        assert!(
            v["vault"]["role"]["path"]
                .as_str()
                .unwrap()
                .starts_with("auth/")
        );
    }

    #[test]
    fn hcl_says_which_parts_stay_json() {
        let text = hcl_view(&desired(WEB), Only::All);
        assert!(text.contains("job \"web\" {"), "{text}");
        assert!(
            text.contains("# managed-by: steward; spec: shop/web"),
            "{text}"
        );
        assert!(text.contains("(JSON: the body of PUT /v1/config; no HCL rendering)"));
        assert!(text.contains("(JSON: the body of POST auth/jwt-nomad/role/steward-shop-web"));
        let vault_only = hcl_view(&desired(WEB), Only::Vault);
        assert!(!vault_only.contains("job \"web\""));
    }
}
