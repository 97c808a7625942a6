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
