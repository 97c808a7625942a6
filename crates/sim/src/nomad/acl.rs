//! Nomad ACLs: tokens from the simulator configuration, policies in Nomad's HCL
//! policy language (`namespace "x" { policy = "write" }`, `capabilities`, `agent`,
//! `node`, `operator`), and the real error texts.

use crate::Product;
use crate::config::TokenConfig;
use std::collections::{BTreeMap, BTreeSet};

/// Namespace capabilities granted by the coarse policies.
fn policy_caps(policy: &str) -> &'static [&'static str] {
    const READ: &[&str] = &[
        "list-jobs",
        "parse-job",
        "read-job",
        "csi-list-volume",
        "csi-read-volume",
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "host-volume-read",
    ];
    const WRITE: &[&str] = &[
        "list-jobs",
        "parse-job",
        "read-job",
        "csi-list-volume",
        "csi-read-volume",
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "host-volume-read",
        "scale-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-lifecycle",
        "csi-mount-volume",
        "csi-write-volume",
        "submit-recommendation",
        "host-volume-create",
        "host-volume-write",
    ];
    const SCALE: &[&str] = &[
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "scale-job",
    ];
    match policy {
        "read" => READ,
        "write" => WRITE,
        "scale" => SCALE,
        _ => &[],
    }
}

/// One token's parsed policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    namespaces: BTreeMap<String, BTreeSet<String>>,
    agent: String,
    node: String,
    operator: String,
}

fn level_ok(have: &str, want: &str) -> bool {
    match want {
        "read" => matches!(have, "read" | "write"),
        "write" => have == "write",
        _ => false,
    }
}

/// The merged level of two `policy` values of the same rule: `deny` wins, then the
/// higher of read and write (as Nomad merges a token's policies).
fn stronger(have: &str, new: String) -> String {
    let rank = |p: &str| match p {
        "deny" => 3,
        "write" => 2,
        "read" => 1,
        _ => 0,
    };
    if rank(&new) >= rank(have) {
        new
    } else {
        have.to_owned()
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == name;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(p) {
                return false;
            }
            rest = &rest[p.len()..];
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else if let Some(pos) = rest.find(p) {
            rest = &rest[pos + p.len()..];
        } else {
            return false;
        }
    }
    true
}

impl Policy {
    /// Parses Nomad policy HCL.
    pub(crate) fn parse(rules: &str) -> Result<Policy, String> {
        let body = hcl::parse(rules).map_err(|e| format!("Failed to parse ACL Policy: {e}"))?;
        let mut p = Policy::default();
        for block in body.blocks() {
            let attr = |name: &str| -> Option<hcl::Expression> {
                block
                    .body()
                    .attributes()
                    .find(|a| a.key() == name)
                    .map(|a| a.expr().clone())
            };
            let policy = match attr("policy") {
                Some(hcl::Expression::String(s)) => s,
                _ => String::new(),
            };
            match block.identifier() {
                "namespace" => {
                    let name = block
                        .labels()
                        .first()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default();
                    let mut caps: BTreeSet<String> =
                        policy_caps(&policy).iter().map(|c| c.to_string()).collect();
                    if policy == "deny" {
                        caps.insert("deny".into());
                    }
                    if let Some(hcl::Expression::Array(list)) = attr("capabilities") {
                        for c in list {
                            if let hcl::Expression::String(s) = c {
                                caps.insert(s);
                            }
                        }
                    }
                    // A token's policies are merged: the same namespace named twice
                    // (two policies concatenated) grants the union, and `deny` in
                    // either stays and wins.
                    p.namespaces.entry(name).or_default().extend(caps);
                }
                "agent" => p.agent = stronger(&p.agent, policy),
                "node" => p.node = stronger(&p.node, policy),
                "operator" => p.operator = stronger(&p.operator, policy),
                _ => {}
            }
        }
        Ok(p)
    }

    fn ns_caps(&self, ns: &str) -> Option<&BTreeSet<String>> {
        if let Some(c) = self.namespaces.get(ns) {
            return Some(c);
        }
        // Closest glob: the longest pattern that matches.
        self.namespaces
            .iter()
            .filter(|(pat, _)| glob_match(pat, ns))
            .max_by_key(|(pat, _)| pat.len())
            .map(|(_, c)| c)
    }
}

/// What a caller may do.
#[derive(Debug, Clone)]
pub(crate) enum Authz {
    /// ACLs disabled or a management token.
    All,
    /// A client token with a policy.
    Policy(Policy),
}

impl Authz {
    /// Whether the caller has `cap` in namespace `ns`.
    pub(crate) fn allow_ns(&self, ns: &str, cap: &str) -> bool {
        match self {
            Authz::All => true,
            Authz::Policy(p) => p
                .ns_caps(ns)
                .is_some_and(|c| !c.contains("deny") && c.contains(cap)),
        }
    }

    /// Whether the caller has any capability in the namespace.
    pub(crate) fn any_ns(&self, ns: &str) -> bool {
        match self {
            Authz::All => true,
            Authz::Policy(p) => p
                .ns_caps(ns)
                .is_some_and(|c| !c.contains("deny") && !c.is_empty()),
        }
    }

    /// Agent read/write.
    pub(crate) fn agent(&self, want: &str) -> bool {
        match self {
            Authz::All => true,
            Authz::Policy(p) => level_ok(&p.agent, want),
        }
    }

    /// Node read/write.
    pub(crate) fn node(&self, want: &str) -> bool {
        match self {
            Authz::All => true,
            Authz::Policy(p) => level_ok(&p.node, want),
        }
    }

    /// Whether this is a management token (or ACLs are off).
    pub(crate) fn management(&self) -> bool {
        matches!(self, Authz::All)
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acl {
    enabled: bool,
    tokens: BTreeMap<String, Result<Authz, String>>,
    /// Accessor ID of each token (by secret), as `acl/token/self` shows it.
    accessors: BTreeMap<String, String>,
}

impl Acl {
    /// From the simulator configuration.
    pub(crate) fn from_config<'a>(tokens: impl Iterator<Item = &'a TokenConfig>) -> Acl {
        let mut acl = Acl::default();
        for t in tokens.filter(|t| t.product == Product::Nomad) {
            acl.enabled = true;
            let authz = if t.management {
                Ok(Authz::All)
            } else {
                Policy::parse(&t.rules).map(Authz::Policy)
            };
            acl.tokens.insert(t.secret.clone(), authz);
            acl.accessors
                .insert(t.secret.clone(), uuid::Uuid::new_v4().to_string());
        }
        acl
    }

    /// `GET /v1/acl/token/self`: the caller's token, or the status and text Nomad
    /// answers: 400 `ACL support disabled` with ACLs off (the RPC's coded error), 403
    /// `ACL token not found` for an unknown secret. Without a token the anonymous
    /// token is shown, as Nomad resolves an empty secret to it.
    pub(crate) fn token_self(
        &self,
        token: Option<&str>,
    ) -> Result<serde_json::Value, (u16, &'static str)> {
        if !self.enabled {
            return Err((400, "ACL support disabled"));
        }
        let Some(secret) = token else {
            return Ok(serde_json::json!({
                "AccessorID": "anonymous",
                "SecretID": "anonymous",
                "Name": "Anonymous Token",
                "Type": "client",
                "Policies": ["anonymous"],
                "Roles": null,
                "Global": false,
                "ExpirationTime": null,
                "CreateIndex": 0,
                "ModifyIndex": 0,
            }));
        };
        let Some(authz) = self.tokens.get(secret) else {
            return Err((403, "ACL token not found"));
        };
        let management = matches!(authz, Ok(Authz::All));
        Ok(serde_json::json!({
            "AccessorID": self.accessors.get(secret).cloned().unwrap_or_default(),
            "SecretID": secret,
            "Name": "",
            "Type": if management { "management" } else { "client" },
            "Policies": if management { serde_json::Value::Null } else { serde_json::json!(["sim-rules"]) },
            "Roles": null,
            "Global": true,
            "ExpirationTime": null,
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }))
    }

    /// Whether ACLs are enforced.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Resolves a request's token; `Err` is the 403 body.
    pub(crate) fn resolve(&self, token: Option<&str>) -> Result<Authz, &'static str> {
        if !self.enabled {
            return Ok(Authz::All);
        }
        match token {
            None => Ok(Authz::Policy(Policy::default())),
            Some(t) => match self.tokens.get(t) {
                None => Err("ACL token not found"),
                Some(Ok(a)) => Ok(a.clone()),
                Some(Err(_)) => Ok(Authz::Policy(Policy::default())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_self_answers_as_nomad_with_acls_off_unknown_anonymous_and_known_tokens() {
        assert_eq!(
            Acl::default().token_self(Some("x")),
            Err((400, "ACL support disabled"))
        );
        let tokens = [TokenConfig {
            product: Product::Nomad,
            secret: "s3cret".into(),
            management: true,
            rules: String::new(),
        }];
        let acl = Acl::from_config(tokens.iter());
        assert_eq!(
            acl.token_self(Some("nope")),
            Err((403, "ACL token not found"))
        );
        assert_eq!(acl.token_self(None).unwrap()["AccessorID"], "anonymous");
        let known = acl.token_self(Some("s3cret")).unwrap();
        assert_eq!(known["Type"], "management");
        assert_eq!(known["SecretID"], "s3cret");
    }

    #[test]
    fn namespace_policies_grant_capabilities_with_globs() {
        let p = Policy::parse(
            r#"
            namespace "trading" { policy = "write" }
            namespace "ops-*" {
              policy       = "read"
              capabilities = ["submit-job"]
            }
            namespace "secret" { policy = "deny" }
            agent { policy = "read" }
            "#,
        )
        .unwrap();
        let a = Authz::Policy(p);
        assert!(a.allow_ns("trading", "submit-job"));
        assert!(a.allow_ns("ops-eu", "read-job"));
        assert!(a.allow_ns("ops-eu", "submit-job"));
        assert!(!a.allow_ns("default", "read-job"));
        assert!(!a.allow_ns("secret", "read-job"));
        assert!(a.agent("read"));
        assert!(!a.agent("write"));
    }

    #[test]
    fn policies_concatenated_into_one_token_grant_the_union_and_deny_wins() {
        let p = Policy::parse(
            r#"
            namespace "*" { capabilities = ["read-job"] }
            agent { policy = "read" }
            namespace "*" { capabilities = ["submit-job"] }
            namespace "secret" { policy = "write" }
            namespace "secret" { policy = "deny" }
            agent { policy = "write" }
            "#,
        )
        .unwrap();
        let a = Authz::Policy(p);
        assert!(a.allow_ns("web", "read-job"));
        assert!(a.allow_ns("web", "submit-job"));
        assert!(!a.allow_ns("web", "list-jobs"));
        assert!(!a.allow_ns("secret", "read-job"));
        assert!(a.agent("write"));
    }
}
