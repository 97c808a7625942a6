//! Pure matching rules behind the guardrails: registry prefixes, Vault path containment,
//! edge host patterns and `{namespace}`/`{name}` templates.

/// Replaces `{namespace}` and `{name}` in a policy template.
pub(crate) fn expand(template: &str, namespace: &str, name: &str) -> String {
    template
        .replace("{namespace}", namespace)
        .replace("{name}", name)
}

/// Whether an allowed registry entry covers an image name (`registry/repository`).
///
/// The entry must match whole path components: `registry.example` covers
/// `registry.example/app` but not `registry.example.evil/app`; `ghcr.io/acme/` and
/// `ghcr.io/acme` both cover `ghcr.io/acme/web` but not `ghcr.io/acmecorp/web`.
pub(crate) fn registry_allows(entry: &str, image_name: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    if entry.is_empty() {
        return false;
    }
    image_name == entry
        || image_name
            .strip_prefix(entry)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether every path matched by the Vault pattern `requested` is also matched by the
/// pattern `template` (both may use a trailing `*` and whole-segment `+`).
pub(crate) fn vault_contains(template: &str, requested: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let r: Vec<&str> = requested.split('/').collect();
    for (i, segment) in t.iter().enumerate() {
        if i == t.len() - 1
            && let Some(literal) = segment.strip_suffix('*')
        {
            // A trailing glob: everything from here on must start with the literal.
            if r.len() <= i {
                return false;
            }
            return r[i..].join("/").starts_with(literal);
        }
        let Some(asked) = r.get(i) else {
            return false;
        };
        if asked.contains('*') {
            return false; // a glob in the request may span segments the template fixes
        }
        if *segment == "+" {
            continue;
        }
        if asked != segment {
            return false;
        }
    }
    r.len() == t.len()
}

/// Whether an edge host pattern allows `host` (which may itself be a `*.` wildcard).
///
/// A pattern `*.example.com` allows any name with one or more labels in front of
/// `example.com` (including wildcards below it), never `example.com` itself; any other
/// pattern allows exactly that host.
pub(crate) fn host_allowed(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        // `front` is `label.` (or `*.`) for a name below the suffix.
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|front| front.ends_with('.') && front.len() > 1),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_match_whole_components() {
        assert!(registry_allows(
            "registry.example",
            "registry.example/order-api"
        ));
        assert!(!registry_allows(
            "registry.example",
            "registry.example.evil/order-api"
        ));
        assert!(registry_allows("ghcr.io/acme/", "ghcr.io/acme/web"));
        assert!(registry_allows("ghcr.io/acme", "ghcr.io/acme/team/web"));
        assert!(!registry_allows("ghcr.io/acme", "ghcr.io/acmecorp/web"));
        assert!(!registry_allows("", "anything/x"));
    }

    #[test]
    fn vault_paths_must_be_contained_in_a_template() {
        let t = "secret/data/trading/order-api/*";
        assert!(vault_contains(t, "secret/data/trading/order-api/db"));
        assert!(vault_contains(t, "secret/data/trading/order-api/*"));
        assert!(vault_contains(t, "secret/data/trading/order-api/a/b/*"));
        assert!(vault_contains(t, "secret/data/trading/order-api/+/x"));
        assert!(!vault_contains(t, "secret/data/trading/order-api"));
        assert!(!vault_contains(t, "secret/data/trading/order-api*"));
        assert!(!vault_contains(t, "secret/data/trading/*"));
        assert!(!vault_contains(t, "secret/data/payments/ledger/*"));
        assert!(!vault_contains(t, "secret/data/+/order-api/db"));
        assert!(vault_contains(
            "secret/data/+/shared",
            "secret/data/x/shared"
        ));
        assert!(!vault_contains("secret/data/+/shared", "secret/data/*"));
        assert!(vault_contains("secret/data/app-*", "secret/data/app-x/y"));
        assert!(vault_contains("database/creds/ro", "database/creds/ro"));
        assert!(!vault_contains("database/creds/ro", "database/creds/ro/x"));
    }

    #[test]
    fn host_patterns_allow_subdomains_and_exact_names() {
        assert!(host_allowed(
            "*.trading.example.com",
            "api.trading.example.com"
        ));
        assert!(host_allowed(
            "*.trading.example.com",
            "a.b.trading.example.com"
        ));
        assert!(host_allowed(
            "*.trading.example.com",
            "*.trading.example.com"
        ));
        assert!(host_allowed("*.example.com", "*.trading.example.com"));
        assert!(!host_allowed(
            "*.trading.example.com",
            "trading.example.com"
        ));
        assert!(!host_allowed(
            "*.trading.example.com",
            "evil-trading.example.com"
        ));
        assert!(!host_allowed("*.trading.example.com", "*.example.com"));
        assert!(host_allowed("shop.example.com", "shop.example.com"));
        assert!(!host_allowed("shop.example.com", "*.shop.example.com"));
    }

    #[test]
    fn templates_expand_namespace_and_name() {
        assert_eq!(
            expand("secret/data/{namespace}/{name}/*", "trading", "order-api"),
            "secret/data/trading/order-api/*"
        );
    }
}
