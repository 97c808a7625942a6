//! Applying the plan: CAS-guarded `/v1/txn` batches, in order, stopping at the first
//! failure.

use std::collections::BTreeMap;

use steward_hashi::consul::txn::{MAX_TXN_BODY_BYTES, batches};
use steward_hashi::consul::{TxnError, TxnOp, TxnOutcome};
use steward_hashi::{ConsulClient, QueryOptions};

use super::plan::OPS_PER_TXN;

/// Why applying stopped.
#[derive(Debug)]
pub enum ApplyError {
    /// A CAS guard failed: someone else wrote these keys since they were read.
    Conflict {
        /// `(key, server text)` of each failed operation.
        keys: Vec<(String, String)>,
    },
    /// The transaction could not be sent or was refused.
    Request(steward_hashi::Error),
}

/// What was written.
#[derive(Debug, Default)]
pub struct Applied {
    /// New ModifyIndex of every written key (the spec's new generation).
    pub generations: BTreeMap<String, u64>,
    /// Deleted keys.
    pub deleted: Vec<String>,
    /// Transactions committed.
    pub txns: usize,
    /// Set when a batch failed; earlier batches stay applied.
    pub error: Option<ApplyError>,
}

fn key_of(op: &TxnOp) -> &str {
    match op {
        TxnOp::Set { key, .. }
        | TxnOp::Cas { key, .. }
        | TxnOp::Get { key }
        | TxnOp::GetTree { key }
        | TxnOp::CheckIndex { key, .. }
        | TxnOp::CheckSession { key, .. }
        | TxnOp::CheckNotExists { key }
        | TxnOp::Delete { key }
        | TxnOp::DeleteTree { key }
        | TxnOp::DeleteCas { key, .. }
        | TxnOp::Lock { key, .. }
        | TxnOp::Unlock { key, .. } => key,
    }
}

/// Maps the per-op errors of a rolled-back transaction to keys.
pub fn conflicts(batch: &[TxnOp], errors: &[TxnError]) -> Vec<(String, String)> {
    errors
        .iter()
        .map(|e| {
            let key = batch.get(e.op_index).map_or_else(
                || format!("operation {}", e.op_index),
                |op| key_of(op).to_owned(),
            );
            (key, e.what.clone())
        })
        .collect()
}

/// Sends `ops` in batches of at most [`OPS_PER_TXN`] operations and
/// [`MAX_TXN_BODY_BYTES`] of body (Consul answers 413 past either); `progress(done)`
/// after each batch.
pub async fn apply(
    consul: &ConsulClient,
    ops: &[TxnOp],
    mut progress: impl FnMut(usize),
) -> Applied {
    let mut applied = Applied::default();
    let mut done = 0;
    for batch in batches(ops, OPS_PER_TXN, MAX_TXN_BODY_BYTES) {
        match consul.txn(batch, &QueryOptions::new()).await {
            Ok(response) => match response.value {
                TxnOutcome::Committed(results) => {
                    applied.txns += 1;
                    for pair in results {
                        applied.generations.insert(pair.key, pair.modify_index);
                    }
                    for op in batch {
                        if let TxnOp::DeleteCas { key, .. } = op {
                            applied.deleted.push(key.clone());
                        }
                    }
                }
                TxnOutcome::RolledBack(errors) => {
                    applied.error = Some(ApplyError::Conflict {
                        keys: conflicts(batch, &errors),
                    });
                    return applied;
                }
            },
            Err(e) => {
                // The transaction may have landed and only its answer been lost: read
                // the keys back. It is atomic: all of it is there, or none.
                let may_have_landed = e.status().map_or(!e.is_connect(), |s| s >= 500);
                let found = if may_have_landed {
                    landed(consul, batch).await
                } else {
                    None
                };
                let Some(found) = found else {
                    applied.error = Some(ApplyError::Request(e));
                    return applied;
                };
                eprintln!(
                    "note: Consul's answer to a transaction was lost ({e}); reading its {} keys back shows it was applied",
                    batch.len()
                );
                applied.txns += 1;
                applied.generations.extend(found.generations);
                applied.deleted.extend(found.deleted);
            }
        }
        done += batch.len();
        progress(done);
    }
    applied
}

/// What a transaction whose answer was lost left in the store.
struct Landed {
    generations: BTreeMap<String, u64>,
    deleted: Vec<String>,
}

/// Whether every operation of `batch` shows in the store (a set: its value and flags;
/// a delete: the key gone); `None` when one does not, or a read fails (unknown is not
/// landed).
async fn landed(consul: &ConsulClient, batch: &[TxnOp]) -> Option<Landed> {
    let mut out = Landed {
        generations: BTreeMap::new(),
        deleted: Vec::new(),
    };
    for op in batch {
        let stored = consul
            .kv_get(key_of(op), &QueryOptions::new())
            .await
            .ok()?
            .value;
        match (op, stored) {
            (
                TxnOp::Cas {
                    key, value, flags, ..
                }
                | TxnOp::Set { key, value, flags },
                Some(pair),
            ) if pair.value == *value && pair.flags == *flags => {
                out.generations.insert(key.clone(), pair.modify_index);
            }
            (TxnOp::DeleteCas { key, .. } | TxnOp::Delete { key }, None) => {
                out.deleted.push(key.clone());
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_ops_are_named_by_key() {
        let batch = [
            TxnOp::Cas {
                key: "s/specs/a/b".into(),
                value: vec![],
                flags: 1,
                index: 0,
            },
            TxnOp::DeleteCas {
                key: "s/specs/a/c".into(),
                index: 4,
            },
        ];
        let errors = [
            TxnError {
                op_index: 1,
                what: "index is stale".into(),
            },
            TxnError {
                op_index: 9,
                what: "?".into(),
            },
        ];
        assert_eq!(
            conflicts(&batch, &errors),
            [
                ("s/specs/a/c".to_owned(), "index is stale".to_owned()),
                ("operation 9".to_owned(), "?".to_owned())
            ]
        );
    }
}
