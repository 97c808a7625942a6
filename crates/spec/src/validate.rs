//! Semantic validation of a typed ServiceSpec: every rule that the schema cannot express.
//!
//! Each rule returns [`Finding`]s addressed by path; the loader locates them in the text.

mod network;
mod schedule;
mod secrets;
mod workload;

use crate::finding::Finding;
use crate::path::FieldPath;
use crate::types::ServiceSpec;

pub use secrets::check_secret_path;

/// Checks every semantic rule on `spec` and returns all findings (errors and warnings).
///
/// The bounds that the JSON Schema already states (replicas 0..=1000, cpu 10..=64000 MHz,
/// memory 10..=262144 MB, ports 1..=65535, ...) are enforced by the loader's structural
/// pass; this function re-checks none of them except where two fields interact.
#[must_use]
pub fn validate_spec(spec: &ServiceSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    workload::check(spec, &mut out);
    network::check(spec, &mut out);
    secrets::check(spec, &mut out);
    schedule::check(spec, &mut out);
    out
}

/// Root path of the body, `spec`.
pub(crate) fn body() -> FieldPath {
    FieldPath::root().key("spec")
}

/// Why `name` is not an RFC 1123 DNS label, or `None` if it is one.
pub(crate) fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("it contains upper-case letters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only lower-case letters, digits and `-` are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it must start and end with a letter or digit");
    }
    None
}

/// A finding when `value` at `path` is not a DNS label.
pub(crate) fn check_dns_label(
    path: FieldPath,
    value: &str,
    what: &str,
    code: &str,
) -> Option<Finding> {
    dns_label_problem(value).map(|problem| {
        Finding::error(
            path,
            code,
            format!(
                "{what} `{value}` is not a valid DNS label: {problem} (use at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit)"
            ),
        )
    })
}

/// Why `host` is not an RFC 1123 host name (optionally `*.`-prefixed), or `None`.
pub(crate) fn host_problem(host: &str) -> Option<String> {
    let (wildcard, rest) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if rest.contains('*') {
        return Some("`*` is only allowed as the whole first label (`*.example.com`)".to_owned());
    }
    if host.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "host names are lower-case: write `{}`",
            host.to_ascii_lowercase()
        ));
    }
    if rest.len() > 253 {
        return Some("it is longer than 253 characters".to_owned());
    }
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.len() < 2 {
        return Some(if wildcard {
            "a wildcard needs at least two labels after `*.` (`*.example.com`)".to_owned()
        } else {
            "use a fully qualified name with at least two labels (`api.example.com`)".to_owned()
        });
    }
    for label in labels {
        if label.is_empty() {
            return Some("it has an empty label (a leading, trailing or doubled `.`)".to_owned());
        }
        if let Some(problem) = dns_label_problem(label) {
            return Some(format!("label `{label}`: {problem}"));
        }
    }
    None
}

/// Why `path` is not a usable HTTP path (`/`-prefixed, no spaces, no fragment), or `None`.
pub(crate) fn http_path_problem(path: &str, allow_query: bool) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("path `{path}` must start with `/`"));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "path `{path}` must not contain spaces or control characters"
        ));
    }
    if path.contains('#') {
        return Some(format!("path `{path}` must not contain a `#` fragment"));
    }
    if !allow_query && path.contains('?') {
        return Some(format!("path `{path}` must not contain a `?` query"));
    }
    if path.len() > 1024 {
        return Some("path is longer than 1024 characters".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_follow_rfc_1123() {
        assert_eq!(dns_label_problem("order-api"), None);
        assert_eq!(dns_label_problem("a1"), None);
        assert!(dns_label_problem("Order").is_some());
        assert!(dns_label_problem("order_api").is_some());
        assert!(dns_label_problem("-api").is_some());
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
        assert_eq!(dns_label_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn hosts_allow_a_leading_wildcard_only() {
        assert_eq!(host_problem("api.example.com"), None);
        assert_eq!(host_problem("*.trading.example.com"), None);
        assert!(host_problem("api.*.example.com").is_some());
        assert!(host_problem("*.com").is_some());
        assert!(host_problem("localhost").is_some());
        assert!(host_problem("API.example.com").is_some());
        assert!(host_problem("api_v1.example.com").is_some());
        assert!(host_problem("api.example.com.").is_some());
    }

    #[test]
    fn http_paths_start_with_a_slash() {
        assert_eq!(http_path_problem("/orders", false), None);
        assert!(http_path_problem("orders", false).is_some());
        assert!(http_path_problem("/a b", false).is_some());
        assert!(http_path_problem("/h?x=1", false).is_some());
        assert_eq!(http_path_problem("/h?x=1", true), None);
    }
}
