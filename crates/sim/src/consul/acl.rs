//! Consul ACLs: tokens from [`crate::SimConfig::tokens`], rules in Consul's HCL policy
//! language, and the authorizer the endpoints consult.
//!
//! ACLs are on (default policy `deny`) as soon as one Consul token is configured.
//! Rules: `key`/`key_prefix`, `session`/`session_prefix`, `service`/`service_prefix`
//! (with `intentions`), `node`/`node_prefix`, `agent`/`agent_prefix`,
//! `event`/`event_prefix`, `query`/`query_prefix`, and the global `operator`, `mesh`,
//! `acl`, `keyring`, `peering`. An exact-name rule beats every prefix rule; among
//! prefix rules the longest wins; no matching rule falls back to the default policy.

use crate::Product;
use crate::config::TokenConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Accessor ID of Consul's built-in anonymous token.
pub(crate) const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// An access level in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Deny,
    Read,
    List,
    Write,
}

impl Level {
    fn parse(s: &str) -> Result<Level, String> {
        match s {
            "deny" => Ok(Level::Deny),
            "read" => Ok(Level::Read),
            "list" => Ok(Level::List),
            "write" => Ok(Level::Write),
            other => Err(format!("Invalid rule policy: {other:?}")),
        }
    }
}

/// What is being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }

    fn allowed_by(self, level: Level) -> bool {
        match self {
            Access::Read => level >= Level::Read,
            Access::Write => level == Level::Write,
        }
    }
}

/// Exact and prefix rules for one resource type.
#[derive(Debug, Clone, Default)]
struct Rules {
    exact: HashMap<String, Level>,
    prefix: BTreeMap<String, Level>,
}

impl Rules {
    fn lookup(&self, name: &str) -> Option<Level> {
        if let Some(l) = self.exact.get(name) {
            return Some(*l);
        }
        // Longest matching prefix.
        self.prefix
            .iter()
            .filter(|(p, _)| name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, l)| *l)
    }

    /// Whether every rule at or under `prefix` grants `access` (KeyWritePrefix).
    fn allows_whole_prefix(&self, prefix: &str, access: Access) -> bool {
        let Some(level) = self.lookup(prefix) else {
            return false;
        };
        if !access.allowed_by(level) {
            return false;
        }
        self.exact
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .chain(self.prefix.iter().filter(|(k, _)| k.starts_with(prefix)))
            .all(|(_, l)| access.allowed_by(*l))
    }
}

/// A parsed Consul ACL policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    key: Rules,
    session: Rules,
    service: Rules,
    intentions: Rules,
    node: Rules,
    agent: Rules,
    event: Rules,
    query: Rules,
    operator: Option<Level>,
    mesh: Option<Level>,
    acl: Option<Level>,
    keyring: Option<Level>,
    peering: Option<Level>,
}

impl Policy {
    /// Parses Consul ACL rules written in HCL.
    pub(crate) fn parse(rules: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        if rules.trim().is_empty() {
            return Ok(p);
        }
        let body: hcl::Body = hcl::from_str(rules)
            .or_else(|_| hcl::from_str(&split_hcl1_attributes(rules)))
            .map_err(|e| format!("Failed to parse ACL rules: {e}"))?;
        for attr in body.attributes() {
            let level = expr_level(attr.expr())?;
            match attr.key() {
                "operator" => p.operator = Some(level),
                "mesh" => p.mesh = Some(level),
                "acl" => p.acl = Some(level),
                "keyring" => p.keyring = Some(level),
                "peering" => p.peering = Some(level),
                other => return Err(format!("Failed to parse ACL rules: unknown rule {other:?}")),
            }
        }
        for block in body.blocks() {
            let ident = block.identifier();
            let name = block
                .labels()
                .first()
                .map(|l| l.as_str().to_string())
                .unwrap_or_default();
            let mut policy = None;
            let mut intentions = None;
            for attr in block.body().attributes() {
                match attr.key() {
                    "policy" => policy = Some(expr_level(attr.expr())?),
                    "intentions" => intentions = Some(expr_level(attr.expr())?),
                    _ => {}
                }
            }
            let Some(level) = policy else {
                return Err(format!(
                    "Failed to parse ACL rules: {ident} {name:?} has no policy"
                ));
            };
            let (base, is_prefix) = match ident.strip_suffix("_prefix") {
                Some(b) => (b, true),
                None => (ident, false),
            };
            let rules = match base {
                "key" => &mut p.key,
                "session" => &mut p.session,
                "service" => &mut p.service,
                "node" => &mut p.node,
                "agent" => &mut p.agent,
                "event" => &mut p.event,
                "query" => &mut p.query,
                other => {
                    return Err(format!(
                        "Failed to parse ACL rules: unknown resource {other:?}"
                    ));
                }
            };
            insert(rules, &name, level, is_prefix);
            if base == "service" {
                // Intentions default to read when the service policy is read or write.
                let ixn = intentions.unwrap_or(if level >= Level::Read {
                    Level::Read
                } else {
                    Level::Deny
                });
                insert(&mut p.intentions, &name, ixn, is_prefix);
            }
        }
        Ok(p)
    }
}

/// Consul parses rules with HCL1, which accepts several attributes on one line
/// (`{ policy = "read" intentions = "write" }`); HCL2 does not. Rewrites blocks in
/// multi-line form: a line break after `{`, before `}`, and before every attribute
/// that follows a string value on the same line.
fn split_hcl1_attributes(rules: &str) -> String {
    let mut out = String::with_capacity(rules.len() + 16);
    let mut in_string = false;
    let mut after_string = false;
    let mut escaped = false;
    for c in rules.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                after_string = true;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                after_string = false;
                out.push(c);
            }
            '{' => {
                after_string = false;
                out.push_str("{\n");
            }
            '}' => {
                after_string = false;
                out.push_str("\n}");
            }
            c if after_string && (c.is_ascii_alphabetic() || c == '_') => {
                out.push('\n');
                after_string = false;
                out.push(c);
            }
            c => {
                if !c.is_whitespace() {
                    after_string = false;
                }
                out.push(c);
            }
        }
    }
    out
}

fn insert(rules: &mut Rules, name: &str, level: Level, prefix: bool) {
    if prefix {
        rules.prefix.insert(name.to_string(), level);
    } else {
        rules.exact.insert(name.to_string(), level);
    }
}

fn expr_level(expr: &hcl::Expression) -> Result<Level, String> {
    match expr {
        hcl::Expression::String(s) => Level::parse(s),
        other => Err(format!(
            "Failed to parse ACL rules: expected a string, got {other}"
        )),
    }
}

/// One configured token.
#[derive(Debug)]
struct Token {
    accessor: String,
    management: bool,
    policy: Arc<Policy>,
}

/// The ACL system of the simulated datacenter.
#[derive(Debug, Default)]
pub(crate) struct Acl {
    enabled: bool,
    tokens: HashMap<String, Token>,
}

impl Acl {
    /// ACLs from the simulator configuration. Rules that do not parse are logged and
    /// grant nothing (the token still resolves).
    pub(crate) fn from_config<'a>(tokens: impl Iterator<Item = &'a TokenConfig>) -> Acl {
        let mut acl = Acl::default();
        for t in tokens.filter(|t| t.product == Product::Consul) {
            acl.enabled = true;
            let policy = match Policy::parse(&t.rules) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "consul token rules do not parse; the token grants nothing");
                    Policy::default()
                }
            };
            acl.tokens.insert(
                t.secret.clone(),
                Token {
                    accessor: accessor_for(&t.secret),
                    management: t.management,
                    policy: Arc::new(policy),
                },
            );
        }
        acl
    }

    /// Whether ACLs are enforced.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The default policy reported in `X-Consul-Default-ACL-Policy`.
    pub(crate) fn default_policy(&self) -> &'static str {
        if self.enabled { "deny" } else { "allow" }
    }

    /// `GET /v1/acl/token/self`: the caller's token as Consul reads it back, or
    /// `Err((status, text))`: 401 `ACL support disabled` with ACLs off, 403 `ACL not
    /// found` for an unknown secret. No token is the anonymous token.
    pub(crate) fn token_self(
        &self,
        token: Option<&str>,
    ) -> Result<serde_json::Value, (u16, String)> {
        if !self.enabled {
            return Err((401, "ACL support disabled".to_string()));
        }
        match token {
            None | Some("") | Some("anonymous") => Ok(serde_json::json!({
                "AccessorID": ANONYMOUS_ACCESSOR,
                "SecretID": "anonymous",
                "Description": "Anonymous Token",
                "Local": false,
                "CreateIndex": 5,
                "ModifyIndex": 5,
            })),
            Some(secret) => match self.tokens.get(secret) {
                Some(t) => {
                    let policies = if t.management {
                        serde_json::json!([{
                            "ID": "00000000-0000-0000-0000-000000000001",
                            "Name": "global-management",
                        }])
                    } else {
                        serde_json::json!([{"ID": accessor_for(&format!("policy:{secret}")), "Name": "sim-rules"}])
                    };
                    Ok(serde_json::json!({
                        "AccessorID": t.accessor,
                        "SecretID": secret,
                        "Description": "",
                        "Policies": policies,
                        "Local": false,
                        "CreateIndex": 10,
                        "ModifyIndex": 10,
                    }))
                }
                None => Err((403, AclError::NotFound.to_string())),
            },
        }
    }

    /// Resolves the caller's token; `Err` is Consul's `ACL not found`.
    pub(crate) fn resolve(&self, token: Option<&str>) -> Result<Authz, AclError> {
        if !self.enabled {
            return Ok(Authz::AllowAll);
        }
        match token {
            None | Some("") | Some("anonymous") => Ok(Authz::Token {
                accessor: ANONYMOUS_ACCESSOR.to_string(),
                management: false,
                policy: Arc::new(Policy::default()),
            }),
            Some(secret) => match self.tokens.get(secret) {
                Some(t) => Ok(Authz::Token {
                    accessor: t.accessor.clone(),
                    management: t.management,
                    policy: t.policy.clone(),
                }),
                None => Err(AclError::NotFound),
            },
        }
    }
}

/// A stable accessor ID derived from the secret (FNV-1a, formatted as a UUID), so the
/// secret itself never appears in error bodies.
fn accessor_for(secret: &str) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in secret.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AclError {
    /// Unknown token secret.
    NotFound,
    /// The token lacks a permission.
    Denied {
        accessor: String,
        resource: &'static str,
        access: &'static str,
        name: Option<String>,
    },
}

impl std::fmt::Display for AclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclError::NotFound => f.write_str("ACL not found"),
            AclError::Denied {
                accessor,
                resource,
                access,
                name,
            } => {
                write!(
                    f,
                    "Permission denied: token with AccessorID '{accessor}' lacks permission '{resource}:{access}'"
                )?;
                if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
                    write!(f, " on {}", go_quote(n))?;
                }
                Ok(())
            }
        }
    }
}

/// Go's `%q` for the strings that appear in ACL messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The resolved permissions of one request.
#[derive(Debug, Clone)]
pub(crate) enum Authz {
    /// ACLs disabled.
    AllowAll,
    /// A token (or the anonymous token) under default-deny.
    Token {
        accessor: String,
        management: bool,
        policy: Arc<Policy>,
    },
}

/// The resource types whose names matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Res {
    Key,
    Session,
    Service,
    Intention,
    Node,
    Agent,
}

impl Res {
    fn label(self) -> &'static str {
        match self {
            Res::Key => "key",
            Res::Session => "session",
            Res::Service => "service",
            Res::Intention => "intention",
            Res::Node => "node",
            Res::Agent => "agent",
        }
    }
}

/// The global resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// `mesh` (falls back to `operator` when the policy does not set it).
    Mesh,
}

impl Authz {
    fn token(&self) -> Option<(&str, &Policy)> {
        match self {
            Authz::AllowAll => None,
            Authz::Token {
                management: true, ..
            } => None,
            Authz::Token {
                accessor, policy, ..
            } => Some((accessor.as_str(), policy.as_ref())),
        }
    }

    /// Checks access to a named resource.
    pub(crate) fn check(&self, res: Res, access: Access, name: &str) -> Result<(), AclError> {
        let Some((accessor, policy)) = self.token() else {
            return Ok(());
        };
        let rules = match res {
            Res::Key => &policy.key,
            Res::Session => &policy.session,
            Res::Service => &policy.service,
            Res::Intention => &policy.intentions,
            Res::Node => &policy.node,
            Res::Agent => &policy.agent,
        };
        // `list` is only checked with ACLEnableKeyListPolicy (off by default);
        // listing is filtered by read access instead.
        match rules.lookup(name) {
            Some(level) if access.allowed_by(level) => Ok(()),
            _ => Err(AclError::Denied {
                accessor: accessor.to_string(),
                resource: res.label(),
                access: access.as_str(),
                name: Some(name.to_string()),
            }),
        }
    }

    /// Whether access is granted (for filtering lists).
    pub(crate) fn allows(&self, res: Res, access: Access, name: &str) -> bool {
        self.check(res, access, name).is_ok()
    }

    /// `KeyWritePrefix`: write on the prefix and on every rule beneath it.
    pub(crate) fn check_key_write_prefix(&self, prefix: &str) -> Result<(), AclError> {
        let Some((accessor, policy)) = self.token() else {
            return Ok(());
        };
        if policy.key.allows_whole_prefix(prefix, Access::Write) {
            Ok(())
        } else {
            Err(AclError::Denied {
                accessor: accessor.to_string(),
                resource: "key",
                access: "write",
                name: Some(prefix.to_string()),
            })
        }
    }

    /// Checks a global permission; `mesh` falls back to `operator` when unset.
    pub(crate) fn check_global(&self, res: Global, access: Access) -> Result<(), AclError> {
        let Some((accessor, policy)) = self.token() else {
            return Ok(());
        };
        let level = match res {
            Global::Mesh => policy.mesh.or(policy.operator),
        };
        match level {
            Some(l) if access.allowed_by(l) => Ok(()),
            _ => Err(AclError::Denied {
                accessor: accessor.to_string(),
                resource: match res {
                    Global::Mesh => "mesh",
                },
                access: access.as_str(),
                name: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_self_answers_as_consul_with_acls_off_unknown_anonymous_and_known_tokens() {
        let off = Acl::default().token_self(Some("x")).unwrap_err();
        assert_eq!(off, (401, "ACL support disabled".to_string()));
        let tokens = [TokenConfig {
            product: Product::Consul,
            secret: "s3cret".into(),
            management: true,
            rules: String::new(),
        }];
        let acl = Acl::from_config(tokens.iter());
        assert_eq!(acl.token_self(Some("nope")).unwrap_err().0, 403);
        assert_eq!(
            acl.token_self(None).unwrap()["AccessorID"],
            ANONYMOUS_ACCESSOR
        );
        let known = acl.token_self(Some("s3cret")).unwrap();
        assert_eq!(known["Policies"][0]["Name"], "global-management");
        assert_eq!(known["AccessorID"], accessor_for("s3cret"));
    }

    fn authz(rules: &str) -> Authz {
        Authz::Token {
            accessor: "acc".into(),
            management: false,
            policy: Arc::new(Policy::parse(rules).unwrap()),
        }
    }

    #[test]
    fn exact_rules_beat_prefixes_and_the_longest_prefix_wins() {
        let a = authz(
            r#"
            key_prefix "" { policy = "read" }
            key_prefix "steward/" { policy = "write" }
            key_prefix "steward/secret/" { policy = "deny" }
            key "steward/secret/open" { policy = "write" }
            "#,
        );
        assert!(a.allows(Res::Key, Access::Write, "steward/x"));
        assert!(a.allows(Res::Key, Access::Read, "other"));
        assert!(!a.allows(Res::Key, Access::Write, "other"));
        assert!(!a.allows(Res::Key, Access::Read, "steward/secret/x"));
        assert!(a.allows(Res::Key, Access::Write, "steward/secret/open"));
        assert!(a.check_key_write_prefix("steward/specs/").is_ok());
        assert!(a.check_key_write_prefix("steward/").is_err());
    }

    #[test]
    fn denials_name_the_accessor_permission_and_resource() {
        let a = authz(r#"key_prefix "steward/" { policy = "read" }"#);
        let err = a.check(Res::Key, Access::Write, "steward/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Permission denied: token with AccessorID 'acc' lacks permission 'key:write' on \"steward/x\""
        );
    }

    #[test]
    fn intentions_default_to_read_and_mesh_falls_back_to_operator() {
        let a = authz(
            r#"
            service_prefix "" { policy = "write" }
            service "api" { policy = "read" intentions = "write" }
            operator = "write"
            "#,
        );
        assert!(a.allows(Res::Intention, Access::Read, "web"));
        assert!(!a.allows(Res::Intention, Access::Write, "web"));
        assert!(a.allows(Res::Intention, Access::Write, "api"));
        assert!(a.check_global(Global::Mesh, Access::Write).is_ok());
    }

    #[test]
    fn accessors_look_like_uuids_and_are_stable() {
        let a = accessor_for("secret");
        assert_eq!(a, accessor_for("secret"));
        assert_eq!(a.len(), 36);
        assert!(!a.contains("secret"));
    }
}
