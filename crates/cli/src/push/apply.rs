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
                applied.error = Some(ApplyError::Request(e));
                return applied;
            }
        }
        done += batch.len();
        progress(done);
    }
    applied
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
