//! Rules on Vault paths and capabilities.

use std::collections::BTreeMap;

use crate::finding::Finding;
use crate::path::FieldPath;
use crate::types::{Capability, ServiceSpec};

use super::body;

/// Vault path prefixes no service may be granted (Vault's own configuration and auth).
const FORBIDDEN_ROOTS: [&str; 3] = ["sys", "auth", "identity"];

pub(super) fn check(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let path = body().key("secrets");
    let mut seen: BTreeMap<&str, FieldPath> = BTreeMap::new();
    for (i, secret) in spec.spec.secrets.iter().enumerate() {
        let item = path.index(i);
        if let Err((code, message)) = check_secret_path(&secret.path) {
            out.push(Finding::error(item.key("path"), code, message));
        } else if let Some(first) = seen.get(secret.path.as_str()) {
            out.push(
                Finding::error(
                    item.key("path"),
                    "duplicate-secret-path",
                    format!("path `{}` is already listed at {first}; merge the capabilities into one entry", secret.path),
                )
                .related(first.clone()),
            );
        } else {
            seen.insert(&secret.path, item.key("path"));
        }
        capabilities(&secret.capabilities, &item, out);
    }
}

fn capabilities(caps: &[Capability], item: &FieldPath, out: &mut Vec<Finding>) {
    let path = item.key("capabilities");
    if caps.is_empty() {
        out.push(Finding::error(
            path,
            "empty-capabilities",
            "list at least one capability (create, read, update, patch, delete, list, sudo, deny)",
        ));
        return;
    }
    for (i, cap) in caps.iter().enumerate() {
        if caps[..i].contains(cap) {
            out.push(Finding::warning(
                path.index(i),
                "duplicate-capability",
                format!("capability `{}` is listed twice", cap.as_str()),
            ));
        }
    }
    if caps.contains(&Capability::Deny) && caps.len() > 1 {
        out.push(Finding::warning(
            path,
            "deny-overrides",
            "`deny` overrides every other capability on this path; the others have no effect",
        ));
    }
}

/// Checks the shape of a Vault path a spec asks for.
///
/// Rules: not empty, no leading `/`, no empty, `.` or `..` segments (a single trailing `/`
/// is allowed), no spaces or templating, `*` only as the very last character, `+` only as
/// a whole segment, at least two literal segments (a mount and one more) before any
/// wildcard, and not under `sys/`, `auth/` or `identity/`.
///
/// # Errors
/// Returns the diagnostic code and message for the first rule broken.
pub fn check_secret_path(path: &str) -> Result<(), (&'static str, String)> {
    let bad = |message: String| Err(("invalid-secret-path", message));
    if path.is_empty() {
        return bad("a secret path must not be empty".to_owned());
    }
    if path.starts_with('/') {
        return bad(format!(
            "secret path `{path}` must not start with `/` (write `{}`)",
            path.trim_start_matches('/')
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad(format!("secret path `{path}` must not contain spaces"));
    }
    if path.contains("{{") || path.contains("}}") {
        return bad(format!(
            "secret path `{path}`: policy templating is not supported"
        ));
    }
    if let Some(star) = path.find('*')
        && star != path.len() - 1
    {
        return bad(format!(
            "secret path `{path}`: `*` is only allowed as the last character"
        ));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() && i != last {
            return bad(format!("secret path `{path}` has an empty segment (`//`)"));
        }
        if matches!(*segment, "." | "..") {
            return bad(format!(
                "secret path `{path}` must not contain `.` or `..` segments"
            ));
        }
        if segment.contains('+') && *segment != "+" {
            return bad(format!(
                "secret path `{path}`: `+` is only allowed as a whole segment (`a/+/b`)"
            ));
        }
    }
    let literal = segments
        .iter()
        .take_while(|s| !s.contains('*') && **s != "+")
        .count();
    let has_wildcard = path.contains('*') || segments.contains(&"+");
    if has_wildcard && literal < 2 {
        return Err((
            "secret-path-too-broad",
            format!(
                "secret path `{path}` is too broad: name at least a mount and one segment before any wildcard (e.g. `secret/data/<namespace>/<name>/*`)"
            ),
        ));
    }
    if FORBIDDEN_ROOTS.contains(&segments[0]) {
        return Err((
            "forbidden-secret-path",
            format!(
                "secret path `{path}`: `sys/`, `auth/` and `identity/` cannot be granted to a service"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_kv_paths() {
        for ok in [
            "secret/data/trading/order-api/*",
            "secret/metadata/trading/order-api/",
            "secret/data/trading/+/config",
            "database/creds/order-api",
            "secret/data/team/app-*",
        ] {
            assert_eq!(check_secret_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_root_bare_and_malformed_paths() {
        let code = |p: &str| check_secret_path(p).err().map(|e| e.0);
        assert_eq!(code(""), Some("invalid-secret-path"));
        assert_eq!(code("*"), Some("secret-path-too-broad"));
        assert_eq!(code("secret/*"), Some("secret-path-too-broad"));
        assert_eq!(code("+/data/x"), Some("secret-path-too-broad"));
        assert_eq!(code("/secret/data/x"), Some("invalid-secret-path"));
        assert_eq!(code("secret/*/x"), Some("invalid-secret-path"));
        assert_eq!(code("secret/data/a+b"), Some("invalid-secret-path"));
        assert_eq!(code("secret//x"), Some("invalid-secret-path"));
        assert_eq!(code("secret/../x"), Some("invalid-secret-path"));
        assert_eq!(code("sys/policies/acl/x"), Some("forbidden-secret-path"));
        assert_eq!(code("auth/token/create"), Some("forbidden-secret-path"));
    }
}
