//! Start-up detection: the servers' versions against Steward's minimums
//! ([`steward_hashi::versions`]) and the features Steward relies on, probed the cheap
//! way each server allows (reference §10). [`assess`] decides from the answers (pure);
//! [`probe`] asks the servers. `steward run` refuses to start on positive knowledge of
//! an unsupported server or a missing feature unless `--allow-unsupported`; either way
//! the result is logged, shown in `/readyz` (`cluster`) and in the metrics
//! (`steward_server_supported`, `steward_server_feature`).
//!
//! A server that cannot be asked (down, refused) is *unknown*, not unsupported: the
//! watches then say what is wrong, and nothing is refused on uncertainty.

use serde::Serialize;
use serde_json::Value;
use steward_hashi::versions::{self, Version};
use steward_hashi::{Product, QueryOptions, RequestSpec};

use steward_hashi::{ConsulClient, NomadClient, VaultClient};

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The server has it.
    Available,
    /// The server lacks it (its answer).
    Missing(String),
    /// Could not tell (why).
    Unknown(String),
}

/// The servers' answers [`assess`] decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// Each product's version text (`Err`: why it could not be read).
    pub versions: Vec<(Product, Result<String, String>)>,
    /// Each config-entry kind Steward writes.
    pub config_kinds: Vec<(String, Probe)>,
    /// `Meta` in the job list's stubs (`Unknown` when no job exists to look at).
    pub job_list_meta: Probe,
    /// The JWT auth mount for Nomad workload identities.
    pub jwt_mount: Probe,
}

/// One server's version against its minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    /// `consul`, `nomad` or `vault`.
    pub product: String,
    /// The version it reports (`None`: not read).
    pub version: Option<String>,
    /// Steward's minimum.
    pub minimum: String,
    /// `true`/`false`; `None` when the version could not be read.
    pub supported: Option<bool>,
    /// Why, in words.
    pub detail: String,
}

/// One feature Steward relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureReport {
    /// The product that has it.
    pub product: String,
    /// Short name (`config-entry kind http-route`, `job list Meta`...).
    pub feature: String,
    /// `true`/`false`; `None` when it could not be told.
    pub available: Option<bool>,
    /// What the server answered, or why it could not be told.
    pub detail: String,
    /// What Steward does without it.
    pub without: String,
}

/// Everything start-up detection found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// The three servers.
    pub servers: Vec<ServerReport>,
    /// The features.
    pub features: Vec<FeatureReport>,
}

/// Features of the servers the operator adapts to (see [`Detected::server_features`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFeatures {
    /// Nomad's event stream and deployment list take `namespace=*` as every namespace
    /// (Nomad ≥ 1.2). Without: deployments are listed per namespace, every few seconds.
    pub nomad_namespace_wildcard: bool,
    /// Nomad's job list returns each stub's `Meta` with `meta=true`. Without: each
    /// job's owner is read from the job, once per job and change.
    pub nomad_job_list_meta: bool,
    /// Consul has the `http-route` config-entry kind (Consul >= 1.15). Without, and
    /// with an xDS server, the edge mode drops its api-gateway half
    /// ([`crate::EdgeSettings::degrade_for`]).
    pub consul_http_route: bool,
}

impl Default for ServerFeatures {
    fn default() -> Self {
        Self {
            nomad_namespace_wildcard: true,
            nomad_job_list_meta: true,
            consul_http_route: true,
        }
    }
}

/// The first Nomad with `namespace=*` on the event stream and the deployment list
/// (hashicorp/nomad#10935; before, `*` was a namespace literally named so).
const NOMAD_WILDCARD_SINCE: Version = Version::new(1, 2, 0);

fn product_name(p: Product) -> &'static str {
    match p {
        Product::Consul => "consul",
        Product::Nomad => "nomad",
        Product::Vault => "vault",
    }
}

/// Decides support from the servers' answers.
#[must_use]
pub fn assess(answers: &Answers, jwt_mount: &str) -> Detected {
    let mut nomad = None;
    let servers = answers
        .versions
        .iter()
        .map(|(product, answer)| {
            let minimum = versions::minimum(*product);
            let (version, supported, detail) = match answer {
                Err(e) => (None, None, format!("the version could not be read: {e}")),
                Ok(text) => match Version::parse(text) {
                    None => (
                        Some(text.clone()),
                        None,
                        format!("unreadable version {text:?}"),
                    ),
                    Some(v) => {
                        if *product == Product::Nomad {
                            nomad = Some(v);
                        }
                        let ok = versions::is_supported(*product, v);
                        let detail = if ok {
                            format!("{text} (minimum {minimum})")
                        } else {
                            format!("{text} is older than the minimum {minimum}")
                        };
                        (Some(text.clone()), Some(ok), detail)
                    }
                },
            };
            ServerReport {
                product: product_name(*product).to_owned(),
                version,
                minimum: minimum.to_string(),
                supported,
                detail,
            }
        })
        .collect();

    let mut features = Vec::new();
    for (kind, probe) in &answers.config_kinds {
        let without = if kind == "http-route" {
            "with an xDS server (--xds-listen) edge routes reach the edge over xDS only; \
             without one, specs with edge routes wait (condition CacheUnavailable names the \
             kind); every other spec reconciles"
        } else {
            "specs that render this kind wait (condition CacheUnavailable names the kind)"
        };
        features.push(feature(
            Product::Consul,
            format!("config-entry kind {kind}"),
            probe,
            without,
        ));
    }
    // Stubs without `Meta` cannot be told apart from an empty list: a server at the
    // minimum has it; below, without a job to look at, assume the worst.
    let meta = match (&answers.job_list_meta, nomad) {
        (Probe::Unknown(_), Some(v)) if versions::is_supported(Product::Nomad, v) => {
            Probe::Available
        }
        (Probe::Unknown(why), Some(v)) => Probe::Missing(format!(
            "Nomad {v} is older than {}, and {why}",
            versions::minimum(Product::Nomad)
        )),
        (p, _) => p.clone(),
    };
    features.push(feature(
        Product::Nomad,
        "job list Meta".to_owned(),
        &meta,
        "each job's owner is read from the job itself, once per job and change (one \
         request per job at start-up)",
    ));
    let wildcard = match nomad {
        Some(v) if v >= NOMAD_WILDCARD_SINCE => Probe::Available,
        Some(v) => Probe::Missing(format!(
            "Nomad {v} takes `namespace=*` as a namespace named `*` (fixed in {NOMAD_WILDCARD_SINCE})"
        )),
        None => Probe::Unknown("the Nomad version is not known".to_owned()),
    };
    features.push(feature(
        Product::Nomad,
        "namespace=* on the event stream and deployment list".to_owned(),
        &wildcard,
        "deployments are listed per namespace every 5 s instead of followed on the \
         event stream (one request per namespace each time; rollouts are seen later)",
    ));
    features.push(feature(
        Product::Vault,
        format!("JWT auth mount {jwt_mount}"),
        &answers.jwt_mount,
        "Vault roles cannot be written: specs with Vault access go to Error",
    ));
    Detected { servers, features }
}

fn feature(product: Product, name: String, probe: &Probe, without: &str) -> FeatureReport {
    let (available, detail) = match probe {
        Probe::Available => (Some(true), "available".to_owned()),
        Probe::Missing(why) => (Some(false), why.clone()),
        Probe::Unknown(why) => (None, format!("could not tell: {why}")),
    };
    FeatureReport {
        product: product_name(product).to_owned(),
        feature: name,
        available,
        detail,
        without: without.to_owned(),
    }
}

impl Detected {
    /// The slower ways the operator takes for what the servers lack.
    #[must_use]
    pub fn server_features(&self) -> ServerFeatures {
        let lacks = |name: &str| {
            self.features
                .iter()
                .any(|f| f.feature.starts_with(name) && f.available == Some(false))
        };
        ServerFeatures {
            nomad_namespace_wildcard: !lacks("namespace=*"),
            nomad_job_list_meta: !lacks("job list Meta"),
            consul_http_route: !lacks("config-entry kind http-route"),
        }
    }

    /// What is known to be unsupported or missing: empty when Steward may start.
    #[must_use]
    pub fn unsupported(&self) -> Vec<String> {
        let servers = self
            .servers
            .iter()
            .filter(|s| s.supported == Some(false))
            .map(|s| format!("{}: {}", s.product, s.detail));
        let features = self
            .features
            .iter()
            .filter(|f| f.available == Some(false))
            .map(|f| format!("{} {}: {}", f.product, f.feature, f.detail));
        servers.chain(features).collect()
    }

    /// What Steward does without each missing feature.
    #[must_use]
    pub fn degradations(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| f.available == Some(false))
            .map(|f| format!("without {} ({}): {}", f.feature, f.product, f.without))
            .collect()
    }

    /// The degradations that touch a spec owning objects of `kinds` (`nomad-job`,
    /// `vault-role`, a config-entry kind...): what its status says about the servers.
    #[must_use]
    pub fn degradations_for<'k>(&self, kinds: impl IntoIterator<Item = &'k str>) -> Vec<String> {
        let kinds: std::collections::BTreeSet<&str> = kinds.into_iter().collect();
        self.features
            .iter()
            .filter(|f| f.available == Some(false))
            .filter(|f| match f.product.as_str() {
                "nomad" => kinds.contains("nomad-job"),
                "vault" => kinds.contains("vault-role"),
                _ => f
                    .feature
                    .strip_prefix("config-entry kind ")
                    .is_some_and(|kind| kinds.contains(kind)),
            })
            .map(|f| format!("without {} ({}): {}", f.feature, f.product, f.without))
            .collect()
    }

    /// A table for people: one line per server and feature.
    #[must_use]
    pub fn table(&self) -> String {
        let mark = |v: Option<bool>| match v {
            Some(true) => "ok",
            Some(false) => "MISSING",
            None => "unknown",
        };
        let mut out = String::new();
        for s in &self.servers {
            let m = match s.supported {
                Some(false) => "TOO OLD",
                other => mark(other),
            };
            out.push_str(&format!(
                "  {:<8} {:<7} version {}\n",
                s.product, m, s.detail
            ));
        }
        for f in &self.features {
            out.push_str(&format!(
                "  {:<8} {:<7} {}: {}\n",
                f.product,
                mark(f.available),
                f.feature,
                f.detail
            ));
            if f.available == Some(false) {
                out.push_str(&format!("           without it: {}\n", f.without));
            }
        }
        out
    }
}

async fn get_json(
    transport: &steward_hashi::transport::Transport,
    spec: RequestSpec,
) -> Result<Value, steward_hashi::Error> {
    transport.call(spec, |raw| raw.json::<Value>()).await
}

fn version_of(
    answer: Result<Value, steward_hashi::Error>,
    pick: fn(&Value) -> Option<&str>,
) -> Result<String, String> {
    match answer {
        Ok(v) => pick(&v)
            .map(str::to_owned)
            .ok_or_else(|| "the answer carries no version".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Asks the servers what [`assess`] needs (reads only); `jwt_auth_mount` as configured.
pub async fn probe(
    consul_client: &ConsulClient,
    nomad_client: &NomadClient,
    vault_client: &VaultClient,
    jwt_auth_mount: &str,
) -> Answers {
    let consul = consul_client.transport();
    let nomad = nomad_client.transport();
    let vault = vault_client.transport();
    let versions = vec![
        (
            Product::Consul,
            version_of(
                get_json(consul, RequestSpec::get("/v1/agent/self")).await,
                versions::consul_version,
            ),
        ),
        (
            Product::Nomad,
            version_of(
                get_json(nomad, RequestSpec::get("/v1/agent/self")).await,
                versions::nomad_version,
            ),
        ),
        (
            Product::Vault,
            version_of(
                get_json(
                    vault,
                    // Standby, sealed and uninitialised servers answer with other codes
                    // and the same body.
                    RequestSpec::get("/v1/sys/health").accept(&[429, 472, 473, 501, 503]),
                )
                .await,
                versions::vault_version,
            ),
        ),
    ];
    let mut config_kinds = Vec::new();
    for kind in ["service-defaults", "service-intentions", "http-route"] {
        let probe = match consul_client
            .config_list_raw(kind, &QueryOptions::new())
            .await
        {
            Ok(_) => Probe::Available,
            Err(e) if e.to_string().contains("invalid config entry kind") => {
                Probe::Missing(e.to_string())
            }
            Err(e) => Probe::Unknown(e.to_string()),
        };
        config_kinds.push((kind.to_owned(), probe));
    }
    let jobs = QueryOptions::new().namespace("*");
    let job_list_meta = match jobs.apply(
        Product::Nomad,
        RequestSpec::get("/v1/jobs").query("meta", "true"),
    ) {
        Err(e) => Probe::Unknown(e.to_string()),
        Ok(spec) => match get_json(nomad, spec).await {
            Ok(Value::Array(stubs)) => match stubs.first() {
                None => Probe::Unknown("no job exists to look at".to_owned()),
                Some(stub) if stub.get("Meta").is_some() => Probe::Available,
                Some(_) => {
                    Probe::Missing("`GET /v1/jobs?meta=true` returns stubs without Meta".to_owned())
                }
            },
            Ok(other) => Probe::Unknown(format!("unexpected job list: {other}")),
            Err(e) => Probe::Unknown(e.to_string()),
        },
    };
    let mount = jwt_auth_mount.trim_matches('/');
    let jwt_mount = match get_json(vault, RequestSpec::get("/v1/sys/auth")).await {
        Ok(table) => {
            // Older Vaults answer the mounts at the top level, newer ones under `data`.
            let entry = table
                .get("data")
                .and_then(|d| d.get(format!("{mount}/")))
                .or_else(|| table.get(format!("{mount}/")));
            match entry.and_then(|e| e.get("type")).and_then(Value::as_str) {
                Some("jwt" | "oidc") => Probe::Available,
                Some(other) => {
                    Probe::Missing(format!("{mount}/ is a {other} auth method, not jwt"))
                }
                None => Probe::Missing(format!("no auth method is mounted at {mount}/")),
            }
        }
        Err(e) => Probe::Unknown(e.to_string()),
    };
    Answers {
        versions,
        config_kinds,
        job_list_meta,
        jwt_mount,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answers(consul: &str, nomad: &str, vault: &str) -> Answers {
        Answers {
            versions: vec![
                (Product::Consul, Ok(consul.to_owned())),
                (Product::Nomad, Ok(nomad.to_owned())),
                (Product::Vault, Ok(vault.to_owned())),
            ],
            config_kinds: ["service-defaults", "service-intentions", "http-route"]
                .iter()
                .map(|k| ((*k).to_owned(), Probe::Available))
                .collect(),
            job_list_meta: Probe::Unknown("no job exists to look at".to_owned()),
            jwt_mount: Probe::Available,
        }
    }

    #[test]
    fn servers_at_the_minimums_with_every_feature_are_supported() {
        let d = assess(&answers("1.16.0", "1.10.3", "1.15.2"), "jwt-nomad");
        assert!(d.unsupported().is_empty(), "{:?}", d.unsupported());
        assert!(d.degradations().is_empty());
        assert!(d.server_features().nomad_namespace_wildcard);
        assert!(
            d.table()
                .contains("nomad    ok      version 1.10.3 (minimum 1.10.0)")
        );
    }

    #[test]
    fn the_servers_of_reference_section_10_are_refused_with_what_is_missing() {
        let mut a = answers("1.10.12", "1.1.2", "1.7.3");
        a.config_kinds[2].1 = Probe::Missing(
            "500 Internal Server Error: invalid config entry kind: http-route".into(),
        );
        let d = assess(&a, "jwt-nomad");
        let refused = d.unsupported();
        assert!(
            refused
                .iter()
                .any(|r| r.starts_with("consul: 1.10.12 is older than the minimum 1.16.0")),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|r| r.starts_with("nomad: 1.1.2 is older")),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|r| r.starts_with("vault: 1.7.3 is older")),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|r| r.contains("config-entry kind http-route: 500")),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|r| r.contains("namespace=*") && r.contains("fixed in 1.2.0")),
            "{refused:?}"
        );
        // No job to look at, and a Nomad below the minimum: assume the stubs lack Meta.
        assert!(
            refused.iter().any(|r| r.contains("job list Meta")),
            "{refused:?}"
        );
        let degraded = d.degradations();
        assert!(
            degraded
                .iter()
                .any(|d| d.contains("http-route") && d.contains("every other spec reconciles")),
            "{degraded:?}"
        );
        assert!(
            degraded
                .iter()
                .any(|d| d.contains("listed per namespace every 5 s")),
            "{degraded:?}"
        );
        assert!(!d.server_features().nomad_namespace_wildcard);
        assert!(d.table().contains("TOO OLD"), "{}", d.table());
    }

    #[test]
    fn what_cannot_be_asked_is_unknown_never_refused() {
        let mut a = answers("1.16.0", "1.10.3", "1.15.2");
        a.versions[1].1 = Err("connection refused".to_owned());
        a.jwt_mount = Probe::Unknown("403 permission denied".to_owned());
        let d = assess(&a, "jwt-nomad");
        assert!(d.unsupported().is_empty(), "{:?}", d.unsupported());
        let nomad = &d.servers[1];
        assert_eq!(nomad.supported, None);
        assert!(nomad.detail.contains("connection refused"));
        assert!(d.table().contains("unknown"));
    }

    #[test]
    fn a_spec_hears_only_of_what_touches_its_kinds() {
        let mut a = answers("1.16.0", "1.10.3", "1.15.2");
        a.config_kinds[2].1 = Probe::Missing("invalid config entry kind: http-route".into());
        a.jwt_mount = Probe::Missing("no auth method is mounted at jwt-nomad/".into());
        let d = assess(&a, "jwt-nomad");
        assert!(
            d.degradations_for(["nomad-job", "service-defaults"])
                .is_empty()
        );
        let routed = d.degradations_for(["nomad-job", "http-route"]);
        assert_eq!(routed.len(), 1, "{routed:?}");
        assert!(routed[0].contains("http-route"));
        let vaulted = d.degradations_for(["vault-policy", "vault-role"]);
        assert_eq!(vaulted.len(), 1, "{vaulted:?}");
        assert!(vaulted[0].contains("JWT auth mount jwt-nomad"));
    }

    #[test]
    fn stubs_without_meta_are_missing_whatever_the_version() {
        let mut a = answers("1.16.0", "1.10.3", "1.15.2");
        a.job_list_meta =
            Probe::Missing("`GET /v1/jobs?meta=true` returns stubs without Meta".into());
        let d = assess(&a, "jwt-nomad");
        assert_eq!(d.unsupported().len(), 1, "{:?}", d.unsupported());
        assert!(d.degradations()[0].contains("read from the job itself"));
        assert!(!d.server_features().nomad_job_list_meta);
    }
}
