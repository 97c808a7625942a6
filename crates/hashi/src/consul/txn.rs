//! Consul transactions: `PUT /v1/txn` with typed KV operations (reference §2.7).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::kv::KvPair;
use crate::error::{Error, Product, Result};
use crate::request::{Idempotency, QueryOptions, RequestSpec};
use crate::response::{RawResponse, Response};
use crate::util::null_default;

/// Most operations Consul accepts in one transaction.
pub const MAX_TXN_OPS: usize = 64;

/// Consul's default `txn_max_req_len`: a `/v1/txn` body over this answers 413. Consul
/// takes the larger of this and `kv_max_value_size`; both default to 512 KiB.
pub const MAX_TXN_BODY_BYTES: usize = 512 * 1024;

/// Consul's default `kv_max_value_size`: a larger KV value answers 413.
pub const MAX_KV_VALUE_BYTES: usize = 512 * 1024;

/// The JSON of an operation without its key, value and session, at its longest: every
/// field present, both numbers at `u64::MAX` (measured: 114 bytes), with slack.
const OP_FRAME_BYTES: usize = 128;

/// Longest JSON escape of one byte of a string (`\u001f`).
const MAX_ESCAPE_BYTES: usize = 6;

/// One KV operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Write unconditionally.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// Flags.
        flags: u64,
    },
    /// Write if `ModifyIndex == index` (0 = must not exist).
    Cas {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// Flags.
        flags: u64,
        /// Expected modify index.
        index: u64,
    },
    /// Read; fails the transaction if the key is missing.
    Get {
        /// Key.
        key: String,
    },
    /// Read every key under a prefix.
    GetTree {
        /// Prefix.
        key: String,
    },
    /// Fail unless `ModifyIndex == index`.
    CheckIndex {
        /// Key.
        key: String,
        /// Expected modify index.
        index: u64,
    },
    /// Fail unless the key is locked by `session` (fencing).
    CheckSession {
        /// Key.
        key: String,
        /// Session.
        session: String,
    },
    /// Fail if the key exists.
    CheckNotExists {
        /// Key.
        key: String,
    },
    /// Delete unconditionally.
    Delete {
        /// Key.
        key: String,
    },
    /// Delete every key under a prefix.
    DeleteTree {
        /// Prefix.
        key: String,
    },
    /// Delete if `ModifyIndex == index`.
    DeleteCas {
        /// Key.
        key: String,
        /// Expected modify index.
        index: u64,
    },
    /// Acquire the lock with `session` and write.
    Lock {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// Flags.
        flags: u64,
        /// Session.
        session: String,
    },
    /// Release the lock held by `session` and write.
    Unlock {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
        /// Flags.
        flags: u64,
        /// Session.
        session: String,
    },
}

impl TxnOp {
    /// The operation as `{"KV": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut kv = Map::new();
        let mut put = |k: &str, v: Value| {
            kv.insert(k.to_owned(), v);
        };
        let (verb, key) = match self {
            TxnOp::Set { key, .. } => ("set", key),
            TxnOp::Cas { key, .. } => ("cas", key),
            TxnOp::Get { key } => ("get", key),
            TxnOp::GetTree { key } => ("get-tree", key),
            TxnOp::CheckIndex { key, .. } => ("check-index", key),
            TxnOp::CheckSession { key, .. } => ("check-session", key),
            TxnOp::CheckNotExists { key } => ("check-not-exists", key),
            TxnOp::Delete { key } => ("delete", key),
            TxnOp::DeleteTree { key } => ("delete-tree", key),
            TxnOp::DeleteCas { key, .. } => ("delete-cas", key),
            TxnOp::Lock { key, .. } => ("lock", key),
            TxnOp::Unlock { key, .. } => ("unlock", key),
        };
        put("Verb", json!(verb));
        put("Key", json!(key));
        match self {
            TxnOp::Set { value, flags, .. } => {
                put("Value", json!(STANDARD.encode(value)));
                put("Flags", json!(flags));
            }
            TxnOp::Cas {
                value,
                flags,
                index,
                ..
            } => {
                put("Value", json!(STANDARD.encode(value)));
                put("Flags", json!(flags));
                put("Index", json!(index));
            }
            TxnOp::CheckIndex { index, .. } | TxnOp::DeleteCas { index, .. } => {
                put("Index", json!(index));
            }
            TxnOp::CheckSession { session, .. } => put("Session", json!(session)),
            TxnOp::Lock {
                value,
                flags,
                session,
                ..
            }
            | TxnOp::Unlock {
                value,
                flags,
                session,
                ..
            } => {
                put("Value", json!(STANDARD.encode(value)));
                put("Flags", json!(flags));
                put("Session", json!(session));
            }
            _ => {}
        }
        json!({ "KV": kv })
    }

    /// An upper bound on the bytes of [`TxnOp::to_json`] once serialised: values travel
    /// base64-encoded (4 bytes per 3, padded) and every byte of a key or session is
    /// counted as its longest JSON escape, so the bound holds whatever the key holds.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let (key, value, session) = match self {
            TxnOp::Set { key, value, .. } | TxnOp::Cas { key, value, .. } => (key, value.len(), 0),
            TxnOp::Lock {
                key,
                value,
                session,
                ..
            }
            | TxnOp::Unlock {
                key,
                value,
                session,
                ..
            } => (key, value.len(), session.len()),
            TxnOp::CheckSession { key, session } => (key, 0, session.len()),
            TxnOp::Get { key }
            | TxnOp::GetTree { key }
            | TxnOp::CheckIndex { key, .. }
            | TxnOp::CheckNotExists { key }
            | TxnOp::Delete { key }
            | TxnOp::DeleteTree { key }
            | TxnOp::DeleteCas { key, .. } => (key, 0, 0),
        };
        OP_FRAME_BYTES + (key.len() + session) * MAX_ESCAPE_BYTES + value.div_ceil(3) * 4
    }

    fn is_read(&self) -> bool {
        matches!(
            self,
            TxnOp::Get { .. }
                | TxnOp::GetTree { .. }
                | TxnOp::CheckIndex { .. }
                | TxnOp::CheckSession { .. }
                | TxnOp::CheckNotExists { .. }
        )
    }

    /// Operations that make the whole transaction conditional.
    fn is_guard(&self) -> bool {
        matches!(
            self,
            TxnOp::Cas { .. }
                | TxnOp::CheckIndex { .. }
                | TxnOp::CheckSession { .. }
                | TxnOp::CheckNotExists { .. }
                | TxnOp::DeleteCas { .. }
                | TxnOp::Lock { .. }
                | TxnOp::Unlock { .. }
        )
    }
}

/// Why one operation rolled the transaction back.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnError {
    /// Position of the failing operation.
    pub op_index: usize,
    /// Server text.
    pub what: String,
}

/// The result of a transaction: applied (200) or rolled back (409) with per-op errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every operation applied; one entry per non-delete KV op (`Value` only for reads).
    Committed(Vec<KvPair>),
    /// Nothing applied.
    RolledBack(Vec<TxnError>),
}

impl TxnOutcome {
    /// True when applied.
    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed(_))
    }
}

/// `PUT /v1/txn`. Read-only transactions honour `stale`/`consistent`; no transaction
/// blocks. A transaction containing a guard (cas, check-*, lock) is retried like a
/// CAS write; one that only reads like a read.
///
/// # Errors
/// `InvalidArgument` for no operations, more than 64, or a blocking index.
pub fn txn(ops: &[TxnOp], opts: &QueryOptions) -> Result<RequestSpec> {
    if ops.is_empty() || ops.len() > MAX_TXN_OPS {
        return Err(Error::invalid_argument(format!(
            "a consul transaction needs 1 to {MAX_TXN_OPS} operations, got {}",
            ops.len()
        )));
    }
    if opts.index != 0 {
        return Err(Error::invalid_argument("consul transactions never block"));
    }
    let idempotency = if ops.iter().all(TxnOp::is_read) {
        Idempotency::Read
    } else if ops.iter().any(TxnOp::is_guard) {
        Idempotency::CasGuarded
    } else {
        Idempotency::Unguarded
    };
    let body = Value::Array(ops.iter().map(TxnOp::to_json).collect());
    let spec = RequestSpec::put("/v1/txn")
        .json(body)
        .idempotency(idempotency)
        .accept(&[409]);
    opts.apply(Product::Consul, spec)
}

/// Cuts `ops` into consecutive transactions, in order, each within `max_ops` operations
/// and, by [`TxnOp::encoded_len`], within `max_body_bytes` of JSON body (`[`, `]` and
/// the commas included). An operation too large for any body goes alone in its own
/// batch: callers that must not send it check [`fits_one_txn`] first.
#[must_use]
pub fn batches(ops: &[TxnOp], max_ops: usize, max_body_bytes: usize) -> Vec<&[TxnOp]> {
    let mut out = Vec::new();
    let mut start = 0;
    // `[` and `]`; each operation adds its length and a comma (one too many: slack).
    let mut body = 2;
    for (i, op) in ops.iter().enumerate() {
        let len = op.encoded_len() + 1;
        let full = i - start >= max_ops.max(1) || body + len > max_body_bytes;
        if i > start && full {
            out.push(&ops[start..i]);
            start = i;
            body = 2;
        }
        body += len;
    }
    if start < ops.len() {
        out.push(&ops[start..]);
    }
    out
}

/// Whether `op` can be sent at all with Consul's default limits: its value within
/// [`MAX_KV_VALUE_BYTES`] and its JSON, alone in a body, within [`MAX_TXN_BODY_BYTES`].
/// Because values are base64-encoded, the second bound is the tighter one: about
/// 384 KiB of value.
#[must_use]
pub fn fits_one_txn(op: &TxnOp) -> bool {
    let value = match op {
        TxnOp::Set { value, .. }
        | TxnOp::Cas { value, .. }
        | TxnOp::Lock { value, .. }
        | TxnOp::Unlock { value, .. } => value.len(),
        _ => 0,
    };
    value <= MAX_KV_VALUE_BYTES && op.encoded_len() + 2 <= MAX_TXN_BODY_BYTES
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TxnBody {
    #[serde(default, deserialize_with = "null_default")]
    results: Vec<TxnResult>,
    #[serde(default, deserialize_with = "null_default")]
    errors: Vec<TxnError>,
}

#[derive(Deserialize)]
struct TxnResult {
    #[serde(rename = "KV")]
    kv: Option<KvPair>,
}

/// Decodes 200 (committed) and 409 (rolled back) answers.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_txn(raw: &RawResponse) -> Result<Response<TxnOutcome>> {
    let meta = raw.meta()?;
    let body: TxnBody = raw.json()?;
    let value = if raw.status == 409 || !body.errors.is_empty() {
        TxnOutcome::RolledBack(body.errors)
    } else {
        TxnOutcome::Committed(body.results.into_iter().filter_map(|r| r.kv).collect())
    };
    Ok(Response { value, meta })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cas(key: &str, value_len: usize) -> TxnOp {
        TxnOp::Cas {
            key: key.into(),
            value: vec![b'x'; value_len],
            flags: u64::MAX,
            index: u64::MAX,
        }
    }

    fn every_kind(key: &str, value_len: usize) -> Vec<TxnOp> {
        let value = vec![0xff; value_len];
        let session = format!("{key}-session");
        vec![
            TxnOp::Set {
                key: key.into(),
                value: value.clone(),
                flags: u64::MAX,
            },
            cas(key, value_len),
            TxnOp::Get { key: key.into() },
            TxnOp::GetTree { key: key.into() },
            TxnOp::CheckIndex {
                key: key.into(),
                index: u64::MAX,
            },
            TxnOp::CheckSession {
                key: key.into(),
                session: session.clone(),
            },
            TxnOp::CheckNotExists { key: key.into() },
            TxnOp::Delete { key: key.into() },
            TxnOp::DeleteTree { key: key.into() },
            TxnOp::DeleteCas {
                key: key.into(),
                index: u64::MAX,
            },
            TxnOp::Lock {
                key: key.into(),
                value: value.clone(),
                flags: u64::MAX,
                session: session.clone(),
            },
            TxnOp::Unlock {
                key: key.into(),
                value,
                flags: u64::MAX,
                session,
            },
        ]
    }

    fn body_len(ops: &[TxnOp]) -> usize {
        serde_json::to_vec(&Value::Array(ops.iter().map(TxnOp::to_json).collect()))
            .unwrap()
            .len()
    }

    #[test]
    fn the_encoded_length_bounds_the_real_json_of_every_operation() {
        for key in ["k", "steward/specs/ns/name", "\u{1}\"quoted\"\u{7f}/é"] {
            for value_len in [0, 1, 2, 3, 4, 1000, 8 * 1024] {
                for op in every_kind(key, value_len) {
                    let real = body_len(std::slice::from_ref(&op)) - 2;
                    assert!(op.encoded_len() >= real, "{op:?}: {real}");
                    // Conservative, not wildly so: a tenth of a value's bytes at most.
                    assert!(op.encoded_len() <= real + 512 + value_len / 10, "{op:?}");
                }
            }
        }
    }

    #[test]
    fn batches_stay_within_both_the_operation_and_the_byte_limit() {
        let ops: Vec<TxnOp> = (0..1000)
            .map(|i| cas(&format!("steward/specs/team/svc-{i:04}"), 8 * 1024))
            .collect();
        let cut = batches(&ops, 63, MAX_TXN_BODY_BYTES);
        assert_eq!(cut.iter().map(|b| b.len()).sum::<usize>(), 1000);
        assert!(cut.len() >= 16, "{}", cut.len());
        for batch in &cut {
            assert!(batch.len() <= 63);
            assert!(body_len(batch) <= MAX_TXN_BODY_BYTES, "{}", body_len(batch));
        }
        // In order, nothing skipped or repeated.
        let flat: Vec<&TxnOp> = cut.iter().flat_map(|b| b.iter()).collect();
        assert!(flat.iter().zip(&ops).all(|(a, b)| *a == b));

        let small: Vec<TxnOp> = (0..130).map(|i| cas(&format!("k{i}"), 10)).collect();
        let counts: Vec<usize> = batches(&small, 63, MAX_TXN_BODY_BYTES)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(counts, [63, 63, 4]);
        assert!(batches(&[], 63, MAX_TXN_BODY_BYTES).is_empty());
    }

    #[test]
    fn an_operation_larger_than_any_body_goes_alone_and_does_not_fit() {
        let ops = [cas("a", 10), cas("big", 400 * 1024), cas("b", 10)];
        let counts: Vec<usize> = batches(&ops, 63, MAX_TXN_BODY_BYTES)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(counts, [1, 1, 1]);
        assert!(!fits_one_txn(&ops[1]));
        assert!(fits_one_txn(&cas("k", 380 * 1024)));
        assert!(!fits_one_txn(&cas("k", MAX_KV_VALUE_BYTES + 1)));
    }
}
