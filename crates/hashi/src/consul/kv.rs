//! Consul KV: `/v1/kv/<key>` requests and responses (reference §2).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Product, Result};
use crate::request::{Idempotency, QueryOptions, RequestSpec, WriteOptions};
use crate::response::{RawResponse, Response};
use crate::util::{base64_bytes, encode_path};

/// One KV entry as Consul returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    /// Full key.
    pub key: String,
    /// Index of creation (never changes).
    #[serde(default)]
    pub create_index: u64,
    /// Index of the last write.
    #[serde(default)]
    pub modify_index: u64,
    /// Number of successful lock acquisitions.
    #[serde(default)]
    pub lock_index: u64,
    /// Opaque user flags (full u64 range).
    #[serde(default)]
    pub flags: u64,
    /// Value bytes (`null` on the wire reads as empty).
    #[serde(default, with = "base64_bytes")]
    pub value: Vec<u8>,
    /// Session holding the lock, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

fn check_key(key: &str) -> Result<()> {
    if key.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "consul KV key {key:?} must not start with '/'"
        )));
    }
    Ok(())
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", encode_path(key))
}

/// `GET /v1/kv/<key>` (blocking-capable). 404 is an answer (`None`), not an error.
///
/// # Errors
/// `InvalidArgument` for a key with a leading `/` or bad options.
pub fn get(key: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_key(key)?;
    if key.is_empty() {
        return Err(Error::invalid_argument("consul KV get needs a key"));
    }
    opts.apply(
        Product::Consul,
        RequestSpec::get(kv_path(key)).accept(&[404]),
    )
}

/// Decodes a single-key read: `Some(pair)` or `None` on 404, with the metadata either way
/// (a watch on a missing key still needs the index).
///
/// # Errors
/// `Decode` for a bad body or meta header.
pub fn parse_get(raw: &RawResponse) -> Result<Response<Option<KvPair>>> {
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response { value: None, meta });
    }
    let mut pairs: Vec<KvPair> = raw.json()?;
    let value = if pairs.is_empty() {
        None
    } else {
        Some(pairs.swap_remove(0))
    };
    Ok(Response { value, meta })
}

/// `GET /v1/kv/<prefix>?recurse`.
///
/// # Errors
/// `InvalidArgument` for a prefix with a leading `/` or bad options.
pub fn list(prefix: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_key(prefix)?;
    opts.apply(
        Product::Consul,
        RequestSpec::get(kv_path(prefix))
            .flag("recurse")
            .accept(&[404]),
    )
}

/// Decodes a recursive read; 404 (nothing under the prefix) is an empty list.
///
/// # Errors
/// `Decode` for a bad body or meta header; `FilteredByAcls` when the token could not
/// read every key under the prefix (a partial list would make the rest look absent).
pub fn parse_list(raw: &RawResponse) -> Result<Response<Vec<KvPair>>> {
    raw.reject_filtered_by_acls()?;
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response {
            value: Vec::new(),
            meta,
        });
    }
    Ok(Response {
        value: raw.json()?,
        meta,
    })
}

/// `GET /v1/kv/<prefix>?keys[&separator=<sep>]`.
///
/// # Errors
/// `InvalidArgument` for a prefix with a leading `/` or bad options.
pub fn keys(prefix: &str, separator: Option<&str>, opts: &QueryOptions) -> Result<RequestSpec> {
    check_key(prefix)?;
    let mut spec = RequestSpec::get(kv_path(prefix))
        .flag("keys")
        .accept(&[404]);
    if let Some(sep) = separator {
        spec = spec.query("separator", sep);
    }
    opts.apply(Product::Consul, spec)
}

/// Decodes a keys listing; 404 is an empty list.
///
/// # Errors
/// `Decode` for a bad body or meta header; `FilteredByAcls` when the token could not
/// read every key under the prefix.
pub fn parse_keys(raw: &RawResponse) -> Result<Response<Vec<String>>> {
    raw.reject_filtered_by_acls()?;
    let meta = raw.meta()?;
    if raw.status == 404 {
        return Ok(Response {
            value: Vec::new(),
            meta,
        });
    }
    Ok(Response {
        value: raw.json()?,
        meta,
    })
}

/// `PUT /v1/kv/<key>[?flags=N][&cas=I]` with the raw value. Without `flags` Consul
/// resets the flags to 0. Answer: [`parse_bool`].
///
/// # Errors
/// `InvalidArgument` for a bad key.
pub fn put(
    key: &str,
    value: &[u8],
    flags: Option<u64>,
    opts: &WriteOptions,
) -> Result<RequestSpec> {
    check_key(key)?;
    let mut spec = RequestSpec::put(kv_path(key)).bytes(value.to_vec());
    if let Some(f) = flags {
        spec = spec.query("flags", f);
    }
    if let Some(cas) = opts.cas {
        spec = spec.query("cas", cas).idempotency(Idempotency::CasGuarded);
    }
    Ok(opts.apply_scope(Product::Consul, spec))
}

/// `PUT /v1/kv/<key>?acquire=<session>[&flags=N]`: take the lock and write the value.
///
/// # Errors
/// `InvalidArgument` for a bad key or an empty session, or `cas` in `opts`.
pub fn acquire(
    key: &str,
    value: &[u8],
    session: &str,
    flags: Option<u64>,
    opts: &WriteOptions,
) -> Result<RequestSpec> {
    lock_op(key, value, "acquire", session, flags, opts)
}

/// `PUT /v1/kv/<key>?release=<session>`: give the lock up (only the holder can).
///
/// # Errors
/// `InvalidArgument` for a bad key or an empty session, or `cas` in `opts`.
pub fn release(
    key: &str,
    value: &[u8],
    session: &str,
    flags: Option<u64>,
    opts: &WriteOptions,
) -> Result<RequestSpec> {
    lock_op(key, value, "release", session, flags, opts)
}

fn lock_op(
    key: &str,
    value: &[u8],
    op: &str,
    session: &str,
    flags: Option<u64>,
    opts: &WriteOptions,
) -> Result<RequestSpec> {
    check_key(key)?;
    if session.is_empty() {
        return Err(Error::invalid_argument(format!(
            "consul KV {op} needs a session"
        )));
    }
    if opts.cas.is_some() {
        return Err(Error::invalid_argument(format!(
            "consul KV {op} cannot be combined with cas"
        )));
    }
    let mut spec = RequestSpec::put(kv_path(key))
        .bytes(value.to_vec())
        .query(op, session)
        // The lock itself guards the write: a duplicate by the holder is a no-op.
        .idempotency(Idempotency::CasGuarded);
    if let Some(f) = flags {
        spec = spec.query("flags", f);
    }
    Ok(opts.apply_scope(Product::Consul, spec))
}

/// `DELETE /v1/kv/<key>[?cas=I]` (`cas=0` never deletes). Answer: [`parse_bool`].
///
/// # Errors
/// `InvalidArgument` for a bad key.
pub fn delete(key: &str, opts: &WriteOptions) -> Result<RequestSpec> {
    check_key(key)?;
    if key.is_empty() {
        return Err(Error::invalid_argument("consul KV delete needs a key"));
    }
    let mut spec = RequestSpec::delete(kv_path(key));
    if let Some(cas) = opts.cas {
        spec = spec.query("cas", cas).idempotency(Idempotency::CasGuarded);
    }
    Ok(opts.apply_scope(Product::Consul, spec))
}

/// `DELETE /v1/kv/<prefix>?recurse`. Answer: [`parse_bool`].
///
/// # Errors
/// `InvalidArgument` for a bad prefix or `cas` (Consul rejects `recurse` with `cas`).
pub fn delete_tree(prefix: &str, opts: &WriteOptions) -> Result<RequestSpec> {
    check_key(prefix)?;
    if opts.cas.is_some() {
        return Err(Error::invalid_argument("recursive delete cannot use cas"));
    }
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::delete(kv_path(prefix)).flag("recurse"),
    ))
}

/// Decodes the `true`/`false` answer of KV writes.
///
/// # Errors
/// `Decode` when the body is not a boolean.
pub fn parse_bool(raw: &RawResponse) -> Result<bool> {
    raw.bool()
}
