//! Vault ACL policy documents: parsing and validation as `vault/policy.go`
//! (`ParseACLPolicy`) does it, and the built-in `default` policy.

use super::api::parse_duration_second;
use super::hcl1::{self, Node, ObjectItem, ObjectList, Tok};

/// Capability bits, as in `vault/policy.go`.
pub(crate) mod cap {
    pub const DENY: u32 = 1;
    pub const CREATE: u32 = 1 << 1;
    pub const READ: u32 = 1 << 2;
    pub const UPDATE: u32 = 1 << 3;
    pub const DELETE: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const SUDO: u32 = 1 << 6;
    pub const PATCH: u32 = 1 << 7;
    pub const SUBSCRIBE: u32 = 1 << 8;
    pub const RECOVER: u32 = 1 << 9;
}

/// The `default` policy a fresh Vault creates (text as a Vault 1.15 dev server
/// returned it from `GET /v1/sys/policies/acl/default`).
pub(crate) const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the
# accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;

/// One `path` block after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRule {
    /// The path with a leading `/` stripped and, for prefix rules, the trailing `*`.
    pub path: String,
    /// Ends in `*` (and has no `+` segment): a prefix rule.
    pub is_prefix: bool,
    /// Has a `+` segment: matched segment by segment.
    pub has_segment_wildcards: bool,
    /// Capability bits; a `deny` leaves only [`cap::DENY`].
    pub caps: u32,
}

/// A parsed ACL policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Policy {
    pub paths: Vec<PathRule>,
    /// Some path uses identity templating (`{{identity.entity.id}}`).
    pub templated: bool,
}

const VALID_TOP_KEYS: &[&str] = &["name", "path"];
const VALID_PATH_KEYS: &[&str] = &[
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "control_group",
    "subscribe_event_types",
    "pagination_limit",
];

/// `ParseACLPolicy`: parses and validates policy text. The error is the full message
/// Vault answers with (`failed to parse policy: ...`).
pub(crate) fn parse(raw: &str) -> Result<Policy, String> {
    let wrap = |e: String| format!("failed to parse policy: {e}");
    let root = hcl1::parse(raw).map_err(|e| wrap(e.to_string()))?;
    check_keys(&root, VALID_TOP_KEYS).map_err(wrap)?;
    for item in root.items.iter().filter(|i| key_of(i) == "name") {
        decode_string("name", &item.val).map_err(wrap)?;
    }
    let mut policy = Policy::default();
    for item in root.filter("path") {
        let key = match item.keys.first() {
            Some(k) => k.value().map_err(wrap)?,
            None => "path".to_string(),
        };
        if key.contains("{{") {
            validate_template(&key)
                .map_err(|e| wrap(format!("failed to validate policy templating: {e}")))?;
            policy.templated = true;
        }
        if let Some(rule) = parse_path(&key, &item).map_err(wrap)? {
            policy.paths.push(rule);
        }
    }
    Ok(policy)
}

fn key_of(item: &ObjectItem) -> String {
    item.keys
        .first()
        .and_then(|k| k.value().ok())
        .unwrap_or_default()
}

/// `hclutil.CheckHCLKeys`: a multi-error naming every key not in `valid`.
fn check_keys(list: &ObjectList, valid: &[&str]) -> Result<(), String> {
    let bad: Vec<String> = list
        .items
        .iter()
        .filter(|item| !valid.contains(&key_of(item).as_str()))
        .map(|item| {
            format!(
                "invalid key {} on line {}",
                go_quote(&key_of(item)),
                item.assign.line
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(multi_error(&bad))
    }
}

/// The text of a `go-multierror` error.
pub(crate) fn multi_error(errors: &[String]) -> String {
    if errors.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errors[0]);
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

/// Go's `%q` for simple strings.
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn parse_path(key: &str, item: &ObjectItem) -> Result<Option<PathRule>, String> {
    let prefix = format!("path {}:", go_quote(key));
    let Node::Object(body) = &item.val else {
        return Err(format!(
            "{prefix} cannot check HCL keys of type {}",
            item.val.go_type()
        ));
    };
    if let Err(e) = check_keys(&body.list, VALID_PATH_KEYS) {
        // multierror.Prefix puts the prefix on every inner error.
        let inner: Vec<String> = body
            .list
            .items
            .iter()
            .filter(|i| !VALID_PATH_KEYS.contains(&key_of(i).as_str()))
            .map(|i| {
                format!(
                    "{prefix} invalid key {} on line {}",
                    go_quote(&key_of(i)),
                    i.assign.line
                )
            })
            .collect();
        return Err(if inner.is_empty() {
            e
        } else {
            multi_error(&inner)
        });
    }
    let mut capabilities: Vec<String> = Vec::new();
    let mut old_policy = String::new();
    let mut min_ttl = None;
    let mut max_ttl = None;
    for field in &body.list.items {
        let name = key_of(field);
        let decoded = match name.as_str() {
            "capabilities" => {
                decode_string_slice(&name, &field.val).map(|v| capabilities.extend(v))
            }
            "policy" => decode_string(&name, &field.val).map(|v| old_policy = v),
            "required_parameters" | "mfa_methods" | "subscribe_event_types" => {
                decode_string_slice(&name, &field.val).map(|_| ())
            }
            "allowed_parameters" | "denied_parameters" => {
                check_parameters(&name, &field.val, &path_for_errors(key))
            }
            "min_wrapping_ttl" => {
                min_ttl = Some(literal_text(&field.val)?);
                Ok(())
            }
            "max_wrapping_ttl" => {
                max_ttl = Some(literal_text(&field.val)?);
                Ok(())
            }
            _ => Ok(()),
        };
        decoded.map_err(|e| format!("{prefix} {e}"))?;
    }

    let mut path = key.strip_prefix('/').unwrap_or(key).to_string();
    if path.contains("+*") {
        return Err(format!(
            "path {}: invalid use of wildcards ('+*' is forbidden)",
            go_quote(&path)
        ));
    }
    let has_segment_wildcards = path == "+" || path.contains("/+") || path.starts_with("+/");
    let mut is_prefix = false;
    if path.ends_with('*') && !has_segment_wildcards {
        path.pop();
        is_prefix = true;
    }
    match old_policy.as_str() {
        "" => {}
        "deny" => capabilities = vec!["deny".to_string()],
        "read" => capabilities.extend(["read".into(), "list".into()]),
        "write" => capabilities.extend(
            ["create", "read", "update", "delete", "list"]
                .iter()
                .map(|s| s.to_string()),
        ),
        "sudo" => capabilities.extend(
            ["create", "read", "update", "delete", "list", "sudo"]
                .iter()
                .map(|s| s.to_string()),
        ),
        other => {
            return Err(format!(
                "path {}: invalid policy {}",
                go_quote(key),
                go_quote(other)
            ));
        }
    }
    let mut caps = 0;
    for c in &capabilities {
        let bit = match c.as_str() {
            "deny" => {
                caps = cap::DENY;
                return Ok(Some(PathRule {
                    path,
                    is_prefix,
                    has_segment_wildcards,
                    caps,
                }));
            }
            "create" => cap::CREATE,
            "read" => cap::READ,
            "update" => cap::UPDATE,
            "delete" => cap::DELETE,
            "list" => cap::LIST,
            "sudo" => cap::SUDO,
            "patch" => cap::PATCH,
            "subscribe" => cap::SUBSCRIBE,
            "recover" => cap::RECOVER,
            _ => {
                return Err(format!(
                    "path {}: invalid capability {}",
                    go_quote(key),
                    go_quote(c)
                ));
            }
        };
        caps |= bit;
    }
    let min = parse_wrapping_ttl("min_wrapping_ttl", min_ttl)?;
    let max = parse_wrapping_ttl("max_wrapping_ttl", max_ttl)?;
    if min != 0 && max != 0 && max < min {
        return Err("max_wrapping_ttl cannot be less than min_wrapping_ttl".to_string());
    }
    Ok(Some(PathRule {
        path,
        is_prefix,
        has_segment_wildcards,
        caps,
    }))
}

fn path_for_errors(key: &str) -> String {
    let p = key.strip_prefix('/').unwrap_or(key);
    if p.ends_with('*') && !(p == "+" || p.contains("/+") || p.starts_with("+/")) {
        p[..p.len() - 1].to_string()
    } else {
        p.to_string()
    }
}

fn parse_wrapping_ttl(name: &str, raw: Option<String>) -> Result<i64, String> {
    match raw {
        None => Ok(0),
        Some(text) => parse_duration_second(&serde_json::Value::String(text))
            .map_err(|e| format!("error parsing {name}: {e}")),
    }
}

fn literal_text(node: &Node) -> Result<String, String> {
    match node {
        Node::Literal(t) => t.value(),
        other => Err(format!(
            "At {}: unknown type for duration {}",
            other.pos(),
            other.go_type()
        )),
    }
}

/// HCL's `decodeString`.
fn decode_string(name: &str, node: &Node) -> Result<String, String> {
    if let Node::Literal(t) = node {
        match t.kind {
            Tok::Number => return Ok(t.text.clone()),
            Tok::Str | Tok::Heredoc => return t.value(),
            _ => {}
        }
    }
    Err(format!(
        "At {}: {name}: unknown type for string {}",
        node.pos(),
        node.go_type()
    ))
}

/// HCL's `decodeSlice` of strings.
fn decode_string_slice(name: &str, node: &Node) -> Result<Vec<String>, String> {
    let Node::List(list) = node else {
        if let Node::Object(_) = node {
            return decode_string(&format!("{name}[0]"), node).map(|s| vec![s]);
        }
        return Err(format!(
            "At {}: unknown slice type: {}",
            node.pos(),
            node.go_type()
        ));
    };
    list.items
        .iter()
        .enumerate()
        .map(|(i, item)| decode_string(&format!("{name}[{i}]"), item))
        .collect()
}

/// `allowed_parameters` / `denied_parameters`: a map of lists; keys checked by
/// `validateParameter`.
fn check_parameters(name: &str, node: &Node, path: &str) -> Result<(), String> {
    let Node::Object(obj) = node else {
        return Err(format!(
            "At {}: {name}: unknown type for map {}",
            node.pos(),
            node.go_type()
        ));
    };
    for item in &obj.list.items {
        let key = key_of(item);
        if key.contains('*') {
            let ok = key == "*"
                || (key.starts_with('/')
                    && key.ends_with("/*")
                    && !key[..key.len() - 2].contains('*'));
            if !ok {
                return Err(format!(
                    "path {}: {name}: parameter key {} cannot contain non-tail wildcards",
                    go_quote(path),
                    go_quote(&key)
                ));
            }
        }
    }
    Ok(())
}

/// A light version of `identitytpl.PopulateString` in validity-check mode: every
/// `{{` must be closed.
fn validate_template(key: &str) -> Result<(), String> {
    let mut rest = key;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("closing brace not found".to_string());
        };
        rest = &after[end + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_default_policy_parses() {
        let p = parse(DEFAULT_POLICY).unwrap();
        assert!(p.templated);
        assert!(
            p.paths
                .iter()
                .any(|r| r.path == "cubbyhole/" && r.is_prefix)
        );
    }

    #[test]
    fn invalid_capabilities_and_keys_use_vault_texts() {
        assert_eq!(
            parse("path \"secret/*\" { capabilities = [\"reed\"] }").unwrap_err(),
            "failed to parse policy: path \"secret/*\": invalid capability \"reed\""
        );
        assert_eq!(
            parse("path \"secret/*\" {\n  capabilites = [\"read\"]\n}").unwrap_err(),
            "failed to parse policy: 1 error occurred:\n\t* path \"secret/*\": invalid key \"capabilites\" on line 2\n\n"
        );
        assert_eq!(
            parse("paths \"x\" { }").unwrap_err(),
            "failed to parse policy: 1 error occurred:\n\t* invalid key \"paths\" on line 0\n\n"
        );
        assert_eq!(
            parse("path \"secret/+*\" { capabilities = [\"read\"] }").unwrap_err(),
            "failed to parse policy: path \"secret/+*\": invalid use of wildcards ('+*' is forbidden)"
        );
        assert_eq!(
            parse("path \"a\" { capabilities = \"read\" }").unwrap_err(),
            "failed to parse policy: path \"a\": At 1:27: unknown slice type: *ast.LiteralType"
        );
    }

    #[test]
    fn deny_drops_every_other_capability() {
        let p = parse("path \"a/*\" { capabilities = [\"read\", \"deny\", \"bogus\"] }").unwrap();
        assert_eq!(p.paths[0].caps, cap::DENY);
        assert!(p.paths[0].is_prefix);
        assert_eq!(p.paths[0].path, "a/");
    }

    #[test]
    fn legacy_policy_values_map_to_capabilities() {
        let p = parse("path \"a\" { policy = \"write\" }").unwrap();
        assert_eq!(
            p.paths[0].caps,
            cap::CREATE | cap::READ | cap::UPDATE | cap::DELETE | cap::LIST
        );
        assert!(
            parse("path \"a\" { policy = \"admin\" }")
                .unwrap_err()
                .ends_with("path \"a\": invalid policy \"admin\"")
        );
    }

    #[test]
    fn json_policies_parse() {
        let p = parse(r#"{"path": {"secret/+/x": {"capabilities": ["list"]}}}"#).unwrap();
        assert!(p.paths[0].has_segment_wildcards);
        assert_eq!(p.paths[0].caps, cap::LIST);
    }
}
