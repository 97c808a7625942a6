//! Vault capability changes per policy path: the live policy text against the desired
//! one, both parsed (comments and formatting do not count), as "secret/data/x/*: adds
//! read; removes delete".

use std::collections::BTreeSet;

use serde_json::Value;
use steward_render::normalise::parse_policy;

use super::model::CapabilityChange;

/// The capabilities of each path of a policy text (`None` text: no policy).
fn capabilities(text: Option<&str>) -> Result<Vec<(String, BTreeSet<String>)>, String> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let parsed = parse_policy(text)?;
    Ok(parsed
        .paths
        .iter()
        .map(|(path, block)| {
            let caps = block
                .get("capabilities")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (path.clone(), caps)
        })
        .collect())
}

/// Capabilities added and removed per path, from `live` to `desired` (policy texts;
/// `None` when the policy does not exist or will not), paths in the desired policy's
/// order, then the removed ones.
///
/// # Errors
/// A text that does not parse as a policy: which side, and the parser's message.
pub fn capability_changes(
    policy: &str,
    live: Option<&str>,
    desired: Option<&str>,
) -> Result<Vec<CapabilityChange>, String> {
    let live =
        capabilities(live).map_err(|e| format!("the live policy {policy} does not parse: {e}"))?;
    let desired = capabilities(desired)
        .map_err(|e| format!("the desired policy {policy} does not parse: {e}"))?;
    let empty = BTreeSet::new();
    let find = |list: &[(String, BTreeSet<String>)], path: &str| {
        list.iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| empty.clone())
    };
    let mut paths: Vec<&str> = desired.iter().map(|(p, _)| p.as_str()).collect();
    for (p, _) in &live {
        if !paths.contains(&p.as_str()) {
            paths.push(p);
        }
    }
    Ok(paths
        .into_iter()
        .filter_map(|path| {
            let (before, after) = (find(&live, path), find(&desired, path));
            let added: Vec<String> = after.difference(&before).cloned().collect();
            let removed: Vec<String> = before.difference(&after).cloned().collect();
            (!added.is_empty() || !removed.is_empty()).then(|| CapabilityChange {
                policy: policy.to_owned(),
                path: path.to_owned(),
                added,
                removed,
            })
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIVE: &str = "# managed-by: steward; spec: trading/order-api\npath \"secret/data/trading/order-api/*\" {\n  capabilities = [\"read\", \"delete\"]\n}\npath \"secret/data/trading/old/*\" {\n  capabilities = [\"read\"]\n}\n";
    const DESIRED: &str = "# managed-by: steward; spec: trading/order-api\npath \"secret/data/trading/order-api/*\" {\n  capabilities = [\"read\", \"list\"]\n}\npath \"secret/metadata/trading/order-api/*\" {\n  capabilities = [\"list\", \"read\"]\n}\n";

    fn words(live: Option<&str>, desired: Option<&str>) -> Vec<String> {
        capability_changes("steward-trading-order-api", live, desired)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn capabilities_are_added_and_removed_per_path() {
        assert_eq!(
            words(Some(LIVE), Some(DESIRED)),
            [
                "secret/data/trading/order-api/*: adds list; removes delete",
                "secret/metadata/trading/order-api/*: adds list, read",
                "secret/data/trading/old/*: removes read",
            ]
        );
    }

    #[test]
    fn a_new_policy_adds_everything_a_deleted_one_removes_everything_equal_ones_nothing() {
        assert_eq!(words(None, Some(LIVE)).len(), 2);
        assert_eq!(
            words(Some(LIVE), None),
            [
                "secret/data/trading/order-api/*: removes delete, read",
                "secret/data/trading/old/*: removes read",
            ]
        );
        let reformatted = LIVE.replace("\"read\", \"delete\"", "\"delete\",\"read\"");
        assert!(words(Some(LIVE), Some(&reformatted)).is_empty());
    }

    #[test]
    fn a_policy_that_does_not_parse_is_an_error_naming_the_side() {
        let e = capability_changes("p", Some("path {"), Some(DESIRED)).unwrap_err();
        assert!(e.starts_with("the live policy p does not parse"), "{e}");
    }
}
