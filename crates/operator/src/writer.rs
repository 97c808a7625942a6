//! The status writer: one task that batches status writes of many keys into fenced
//! transactions of at most 64 operations (`check-session` on the leader key + 63 sets or
//! deletes), so 10,000 statuses take ~160 requests at cold start. Writers wait for their
//! transaction's outcome.

use std::collections::VecDeque;
use std::sync::Arc;

use steward_hashi::consul::TxnOp;
use steward_hashi::consul::txn::{MAX_TXN_BODY_BYTES, MAX_TXN_OPS};
use steward_runtime::leader::{ConsulLock, Fence, FencedWrite, LockBackend, fenced_txn};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Most bytes of values in one transaction, by the rough [`StatusOp::size`]: half of
/// Consul's default request limit, which leaves room for base64 (values travel encoded)
/// and for the last status added past the mark. Status documents are a few KiB, so the
/// operation limit is nearly always reached first.
const MAX_BATCH_BYTES: usize = MAX_TXN_BODY_BYTES / 2;

/// Why a status write did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// We no longer hold the leader lock: nothing was written.
    #[error("not written: this instance no longer holds the leader lock")]
    Fenced,
    /// The transaction was rolled back.
    #[error("not written: the transaction was rolled back: {0}")]
    RolledBack(String),
    /// The request failed.
    #[error("not written: {0}")]
    Backend(String),
    /// The writer stopped (shutdown).
    #[error("not written: the status writer stopped")]
    Closed,
}

/// One status operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOp {
    /// Set the full KV key to the value.
    Set {
        /// Full KV key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete the full KV key.
    Delete {
        /// Full KV key.
        key: String,
    },
}

impl StatusOp {
    fn size(&self) -> usize {
        match self {
            StatusOp::Set { key, value } => key.len() + value.len() * 4 / 3 + 64,
            StatusOp::Delete { key } => key.len() + 64,
        }
    }

    fn to_txn(&self) -> TxnOp {
        match self {
            StatusOp::Set { key, value } => TxnOp::Set {
                key: key.clone(),
                value: value.clone(),
                flags: 0,
            },
            StatusOp::Delete { key } => TxnOp::Delete { key: key.clone() },
        }
    }
}

struct Request {
    op: StatusOp,
    fence: Option<Fence>,
    done: oneshot::Sender<Result<u64, WriteError>>,
}

/// Handle to the status writer task (cheap to clone).
#[derive(Clone, Debug)]
pub struct StatusWriter {
    tx: mpsc::UnboundedSender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("op", &self.op).finish()
    }
}

/// The writer task, to be run by the operator (see [`StatusWriter::new`]).
#[derive(Debug)]
pub struct WriterTask {
    rx: mpsc::UnboundedReceiver<Request>,
}

impl WriterTask {
    /// Writes batches until every [`StatusWriter`] handle is dropped.
    pub async fn run(self, lock: Arc<ConsulLock>, metrics: Metrics) {
        run(self.rx, lock, metrics).await;
    }
}

impl StatusWriter {
    /// A writer handle and the task that serves it.
    #[must_use]
    pub fn new() -> (Self, WriterTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, WriterTask { rx })
    }

    /// Writes `op` under `fence` (unfenced when `None`) and waits for the outcome: the
    /// `ModifyIndex` of a set (0 for a delete).
    ///
    /// # Errors
    /// [`WriteError`] when nothing was written.
    pub async fn write(&self, op: StatusOp, fence: Option<&Fence>) -> Result<u64, WriteError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Request {
                op,
                fence: fence.cloned(),
                done,
            })
            .map_err(|_| WriteError::Closed)?;
        rx.await.unwrap_or(Err(WriteError::Closed))
    }
}

/// Takes the next batch: the first request and whatever else is queued with the same
/// fence, within the operation and size limits. Requests with another fence wait in
/// `held` for the next batch.
fn next_batch(
    first: Request,
    rx: &mut mpsc::UnboundedReceiver<Request>,
    held: &mut VecDeque<Request>,
) -> Vec<Request> {
    let max_ops = MAX_TXN_OPS - 1; // one slot for the guard
    let mut size = first.op.size();
    let fence = first.fence.clone();
    let mut batch = vec![first];
    let mut keep = VecDeque::new();
    while batch.len() < max_ops && size < MAX_BATCH_BYTES {
        let Some(r) = held.pop_front().or_else(|| rx.try_recv().ok()) else {
            break;
        };
        if r.fence != fence || batch.iter().any(|b| same_key(&b.op, &r.op)) {
            keep.push_back(r);
            continue;
        }
        size += r.op.size();
        batch.push(r);
    }
    keep.append(held);
    *held = keep;
    batch
}

fn key_of(op: &StatusOp) -> &str {
    match op {
        StatusOp::Set { key, .. } | StatusOp::Delete { key } => key,
    }
}

fn same_key(a: &StatusOp, b: &StatusOp) -> bool {
    key_of(a) == key_of(b)
}

async fn run(mut rx: mpsc::UnboundedReceiver<Request>, lock: Arc<ConsulLock>, metrics: Metrics) {
    let mut held: VecDeque<Request> = VecDeque::new();
    loop {
        let first = match held.pop_front() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        let batch = next_batch(first, &mut rx, &mut held);
        let ops: Vec<TxnOp> = batch.iter().map(|r| r.op.to_txn()).collect();
        metrics.status_writes.inc();
        let outcome = match &batch[0].fence {
            Some(fence) => fenced_txn(&*lock, fence, ops).await,
            None => lock.txn(ops).await.map(|o| match o {
                steward_hashi::consul::TxnOutcome::Committed(r) => {
                    // Unfenced: pretend a guard result came first, as fenced_txn has one.
                    let mut all = vec![steward_hashi::consul::KvPair::default()];
                    all.extend(r);
                    FencedWrite::Committed(all)
                }
                steward_hashi::consul::TxnOutcome::RolledBack(e) => FencedWrite::RolledBack(e),
            }),
        };
        match outcome {
            Ok(FencedWrite::Committed(results)) => {
                // results[0] is the guard; then one per set (deletes have none).
                let mut sets = results.into_iter().skip(1);
                for r in batch {
                    let index = match r.op {
                        StatusOp::Set { .. } => sets.next().map_or(0, |p| p.modify_index),
                        StatusOp::Delete { .. } => 0,
                    };
                    let _ = r.done.send(Ok(index));
                }
            }
            Ok(FencedWrite::Fenced) => {
                for r in batch {
                    let _ = r.done.send(Err(WriteError::Fenced));
                }
            }
            Ok(FencedWrite::RolledBack(errors)) => {
                let text = errors
                    .iter()
                    .map(|e| format!("op {}: {}", e.op_index, e.what))
                    .collect::<Vec<_>>()
                    .join("; ");
                for r in batch {
                    let _ = r.done.send(Err(WriteError::RolledBack(text.clone())));
                }
            }
            Err(error) => {
                let text = crate::error::chain(&error);
                for r in batch {
                    let _ = r.done.send(Err(WriteError::Backend(text.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(
        key: &str,
        fence: Option<&Fence>,
    ) -> (Request, oneshot::Receiver<Result<u64, WriteError>>) {
        let (done, rx) = oneshot::channel();
        (
            Request {
                op: StatusOp::Set {
                    key: key.into(),
                    value: b"{}".to_vec(),
                },
                fence: fence.cloned(),
                done,
            },
            rx,
        )
    }

    #[test]
    fn batches_hold_at_most_63_writes_of_one_fence_and_one_per_key() {
        let fence = Fence {
            key: "steward/leader".into(),
            session: "s1".into(),
            lock_index: 1,
        };
        let other = Fence {
            session: "s2".into(),
            ..fence.clone()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut receivers = Vec::new();
        for i in 0..100 {
            let (r, done) = req(&format!("k{i}"), Some(&fence));
            receivers.push(done);
            tx.send(r).unwrap();
        }
        let (r, _d) = req("k70", Some(&fence));
        tx.send(r).unwrap();
        let (r, _d2) = req("x", Some(&other));
        tx.send(r).unwrap();
        let mut held = VecDeque::new();
        let first = rx.try_recv().unwrap();
        let batch = next_batch(first, &mut rx, &mut held);
        assert_eq!(batch.len(), 63);
        assert!(held.is_empty());
        let first = rx.try_recv().unwrap();
        let batch = next_batch(first, &mut rx, &mut held);
        // 37 remaining k-writes (the second write of k70 and the other fence wait).
        assert_eq!(batch.len(), 37);
        assert!(batch.iter().all(|r| r.fence.as_ref() == Some(&fence)));
        let rest: Vec<_> = held.iter().map(|r| key_of(&r.op).to_owned()).collect();
        assert_eq!(rest, vec!["k70", "x"]);
    }
}
