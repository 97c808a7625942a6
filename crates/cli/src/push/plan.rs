//! The push plan: pure comparison of the local documents with the keys in Consul.

use std::collections::{BTreeMap, BTreeSet};

use steward_hashi::consul::txn::{MAX_KV_VALUE_BYTES, MAX_TXN_BODY_BYTES, fits_one_txn};
use steward_hashi::consul::{KvPair, TxnOp};
use steward_spec::{Diagnostic, Severity};

/// Operations per `/v1/txn`: Consul takes at most 64; pushes use 63, the operator's
/// status-writer batch size (64 minus one guard op), so both stay comfortably inside
/// the limit if a guard op is ever added here too. Batches are cut by bytes as well
/// (see [`steward_hashi::consul::txn::batches`]).
pub const OPS_PER_TXN: usize = steward_hashi::consul::txn::MAX_TXN_OPS - 1;

/// One local spec document, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDoc {
    /// `namespace/name` from its metadata.
    pub spec_key: String,
    /// `<prefix>/specs/<namespace>/<name>`.
    pub kv_key: String,
    /// The file it came from (for messages).
    pub file: String,
    /// The document, stored byte for byte.
    pub text: String,
}

/// What a push does with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// New key (CAS index 0).
    Create,
    /// Different bytes or a different source marker (CAS on the read ModifyIndex).
    Update,
    /// Same bytes and same source: nothing written.
    Unchanged,
    /// This source pushed it earlier and its file is gone: deleted (`--prune`).
    Prune,
    /// Like `Prune`, but `--prune` was not given: kept, and said so.
    Stale,
}

impl Action {
    /// Lower-case word for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Prune => "prune",
            Action::Stale => "stale",
        }
    }
}

/// One key of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// Full KV key.
    pub kv_key: String,
    /// `namespace/name` (from the document, or from the key for prunes).
    pub spec_key: String,
    /// What happens.
    pub action: Action,
    /// The local file, when there is one.
    pub file: Option<String>,
    /// The stored document, when the key exists.
    pub old: Option<Vec<u8>>,
    /// The local document, when there is one.
    pub new: Option<String>,
    /// The ModifyIndex read at the start (0 for new keys): the CAS index.
    pub index: u64,
    /// The key exists and was last written by another source (or by hand).
    pub other_source: Option<u64>,
}

/// Keys pushed by more than one file: `(kv key, files)`.
pub fn duplicates(local: &[LocalDoc]) -> Vec<(String, Vec<String>)> {
    let mut by_key: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for doc in local {
        by_key
            .entry(&doc.kv_key)
            .or_default()
            .push(doc.file.clone());
    }
    by_key
        .into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(k, files)| (k.to_owned(), files))
        .collect()
}

/// One diagnostic per document Consul would refuse to store: a value over its KV limit,
/// or one whose transaction operation (base64-encoded) exceeds a request body on its
/// own. Checked before anything is written, so a push never stops half-way on a 413.
pub fn too_large_for_consul(local: &[LocalDoc]) -> Vec<Diagnostic> {
    local
        .iter()
        .filter(|doc| {
            !fits_one_txn(&TxnOp::Cas {
                key: doc.kv_key.clone(),
                value: doc.text.as_bytes().to_vec(),
                flags: u64::MAX,
                index: u64::MAX,
            })
        })
        .map(|doc| {
            let first_line = doc.text.lines().next().unwrap_or_default();
            Diagnostic {
                file: doc.file.clone(),
                line: 1,
                column: 1,
                end_column: first_line.chars().count().max(1) + 1,
                path: String::new(),
                message: format!(
                    "the document is {} bytes, too large for Consul: a KV value is limited to {} KiB (kv_max_value_size), and one transaction to {} KiB (txn_max_req_len), in which values travel base64-encoded (about 4/3 their size); split the spec or make it smaller",
                    doc.text.len(),
                    MAX_KV_VALUE_BYTES / 1024,
                    MAX_TXN_BODY_BYTES / 1024,
                ),
                severity: Severity::Error,
                code: "too-large-for-consul".into(),
                excerpt: first_line.to_owned(),
            }
        })
        .collect()
}

/// `<prefix>/specs/` (a trailing `/` on the prefix is ignored).
pub fn specs_prefix(prefix: &str) -> String {
    format!("{}/specs/", prefix.trim_end_matches('/'))
}

/// `<prefix>/status/`.
pub fn status_prefix(prefix: &str) -> String {
    format!("{}/status/", prefix.trim_end_matches('/'))
}

/// Compares the local documents with the keys read under the specs prefix. Sorted by
/// key. `flags` is this source's marker; only keys carrying it are ever pruned.
pub fn plan(
    local: &[LocalDoc],
    existing: &[KvPair],
    specs_prefix: &str,
    flags: u64,
    prune: bool,
) -> Vec<PlanItem> {
    let stored: BTreeMap<&str, &KvPair> = existing.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut items = Vec::new();
    let mut pushed = BTreeSet::new();
    for doc in local {
        pushed.insert(doc.kv_key.as_str());
        let current = stored.get(doc.kv_key.as_str());
        let (action, old, index, other) = match current {
            None => (Action::Create, None, 0, None),
            Some(pair) => {
                let same_bytes = pair.value == doc.text.as_bytes();
                let action = if same_bytes && pair.flags == flags {
                    Action::Unchanged
                } else {
                    Action::Update
                };
                let other = (pair.flags != flags).then_some(pair.flags);
                (action, Some(pair.value.clone()), pair.modify_index, other)
            }
        };
        items.push(PlanItem {
            kv_key: doc.kv_key.clone(),
            spec_key: doc.spec_key.clone(),
            action,
            file: Some(doc.file.clone()),
            old,
            new: Some(doc.text.clone()),
            index,
            other_source: other,
        });
    }
    for pair in existing {
        let ours = pair.flags == flags;
        let under = pair.key.starts_with(specs_prefix) && !pair.key.ends_with('/');
        if !ours || !under || pushed.contains(pair.key.as_str()) {
            continue;
        }
        items.push(PlanItem {
            kv_key: pair.key.clone(),
            spec_key: pair.key[specs_prefix.len()..].to_owned(),
            action: if prune { Action::Prune } else { Action::Stale },
            file: None,
            old: Some(pair.value.clone()),
            new: None,
            index: pair.modify_index,
            other_source: None,
        });
    }
    items.sort_by(|a, b| a.kv_key.cmp(&b.kv_key));
    items
}

/// The transaction operations of a plan, writes before deletes, each with the position
/// of its plan item: `cas` with the read ModifyIndex (0 = must not exist) for creates
/// and updates, `delete-cas` for prunes.
pub fn ops(plan: &[PlanItem], flags: u64) -> Vec<(usize, TxnOp)> {
    let writes = plan
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item.action {
            Action::Create | Action::Update => Some((
                i,
                TxnOp::Cas {
                    key: item.kv_key.clone(),
                    value: item.new.clone().unwrap_or_default().into_bytes(),
                    flags,
                    index: item.index,
                },
            )),
            _ => None,
        });
    let deletes = plan
        .iter()
        .enumerate()
        .filter(|(_, item)| item.action == Action::Prune)
        .map(|(i, item)| {
            (
                i,
                TxnOp::DeleteCas {
                    key: item.kv_key.clone(),
                    index: item.index,
                },
            )
        });
    writes.chain(deletes).collect()
}

/// Counts per action, in a fixed order, for the summary line.
pub fn counts(plan: &[PlanItem]) -> Vec<(Action, usize)> {
    let mut out: BTreeMap<Action, usize> = BTreeMap::new();
    for item in plan {
        *out.entry(item.action).or_default() += 1;
    }
    out.into_iter().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OURS: u64 = 7;

    fn doc(name: &str, text: &str) -> LocalDoc {
        LocalDoc {
            spec_key: format!("ns/{name}"),
            kv_key: format!("steward/specs/ns/{name}"),
            file: format!("{name}.yaml"),
            text: text.to_owned(),
        }
    }

    fn pair(name: &str, text: &str, flags: u64, index: u64) -> KvPair {
        KvPair {
            key: format!("steward/specs/ns/{name}"),
            modify_index: index,
            create_index: index,
            flags,
            value: text.as_bytes().to_vec(),
            ..KvPair::default()
        }
    }

    fn actions(items: &[PlanItem]) -> Vec<(&str, Action)> {
        items
            .iter()
            .map(|i| (i.spec_key.as_str(), i.action))
            .collect()
    }

    #[test]
    fn new_changed_and_equal_documents_are_create_update_unchanged() {
        let local = [doc("a", "A"), doc("b", "B2"), doc("c", "C")];
        let existing = [pair("b", "B", OURS, 5), pair("c", "C", OURS, 6)];
        let p = plan(&local, &existing, "steward/specs/", OURS, false);
        assert_eq!(
            actions(&p),
            [
                ("ns/a", Action::Create),
                ("ns/b", Action::Update),
                ("ns/c", Action::Unchanged)
            ]
        );
        assert_eq!(p[1].index, 5);
        assert_eq!(p[0].index, 0);
    }

    #[test]
    fn only_this_sources_removed_keys_are_pruned() {
        let local = [doc("a", "A")];
        let existing = [
            pair("a", "A", OURS, 1),
            pair("gone", "G", OURS, 2),
            pair("theirs", "T", 99, 3),
            pair("by-hand", "H", 0, 4),
        ];
        let p = plan(&local, &existing, "steward/specs/", OURS, true);
        assert_eq!(
            actions(&p),
            [("ns/a", Action::Unchanged), ("ns/gone", Action::Prune)]
        );
        let kept = plan(&local, &existing, "steward/specs/", OURS, false);
        assert_eq!(kept[1].action, Action::Stale);
        assert!(ops(&kept, OURS).is_empty());
    }

    #[test]
    fn keys_outside_the_specs_prefix_are_never_pruned() {
        let mut status = pair("x", "{}", OURS, 9);
        status.key = "steward/status/ns/x".into();
        let p = plan(&[], &[status], "steward/specs/", OURS, true);
        assert!(p.is_empty());
    }

    #[test]
    fn equal_bytes_from_another_source_are_taken_over() {
        let p = plan(
            &[doc("a", "A")],
            &[pair("a", "A", 42, 3)],
            "steward/specs/",
            OURS,
            false,
        );
        assert_eq!(p[0].action, Action::Update);
        assert_eq!(p[0].other_source, Some(42));
    }

    #[test]
    fn ops_are_cas_guarded_writes_then_delete_cas() {
        let local = [doc("b", "B2"), doc("a", "A")];
        let existing = [pair("b", "B", OURS, 5), pair("z", "Z", OURS, 8)];
        let p = plan(&local, &existing, "steward/specs/", OURS, true);
        let ops = ops(&p, OURS);
        assert_eq!(
            ops.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
            [
                TxnOp::Cas {
                    key: "steward/specs/ns/a".into(),
                    value: b"A".to_vec(),
                    flags: OURS,
                    index: 0
                },
                TxnOp::Cas {
                    key: "steward/specs/ns/b".into(),
                    value: b"B2".to_vec(),
                    flags: OURS,
                    index: 5
                },
                TxnOp::DeleteCas {
                    key: "steward/specs/ns/z".into(),
                    index: 8
                },
            ]
        );
    }

    #[test]
    fn duplicate_keys_name_every_file() {
        let mut other = doc("a", "A2");
        other.file = "copy.yaml".into();
        let d = duplicates(&[doc("a", "A"), other, doc("b", "B")]);
        assert_eq!(
            d,
            [(
                "steward/specs/ns/a".to_owned(),
                vec!["a.yaml".to_owned(), "copy.yaml".to_owned()]
            )]
        );
    }

    #[test]
    fn documents_consul_cannot_store_are_diagnostics_naming_their_file() {
        let fits = doc("fits", &"#".repeat(300 * 1024));
        let body_too_large = doc("body", &"#".repeat(450 * 1024));
        let value_too_large = doc("value", &"#".repeat(MAX_KV_VALUE_BYTES + 1));
        let found = too_large_for_consul(&[fits, body_too_large, value_too_large]);
        let files: Vec<&str> = found.iter().map(|d| d.file.as_str()).collect();
        assert_eq!(files, ["body.yaml", "value.yaml"]);
        assert!(found.iter().all(Diagnostic::is_error));
        assert!(
            found[0].message.contains("460800 bytes"),
            "{}",
            found[0].message
        );
        assert_eq!((found[0].line, found[0].column), (1, 1));
    }

    #[test]
    fn prefixes_ignore_a_trailing_slash() {
        assert_eq!(specs_prefix("steward/"), "steward/specs/");
        assert_eq!(status_prefix("team/steward"), "team/steward/status/");
    }
}
