//! Consul sessions: create/renew/destroy/info/list (reference §3).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Product, Result};
use crate::request::{Idempotency, QueryOptions, RequestSpec, WriteOptions, duration_text};
use crate::response::{RawResponse, Response};
use crate::util::{encode_segment, nanos, null_default, parse_go_duration};

/// What happens to held locks when the session dies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionBehavior {
    /// Release the locks (default).
    #[default]
    Release,
    /// Delete the locked keys.
    Delete,
}

/// Body of `PUT /v1/session/create`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCreate {
    /// Name.
    pub name: String,
    /// TTL (10 s..24 h); `None` = no TTL.
    pub ttl: Option<Duration>,
    /// Lock delay after invalidation (server default 15 s, max 60 s; zero disables).
    pub lock_delay: Option<Duration>,
    /// Behavior on invalidation.
    pub behavior: SessionBehavior,
    /// Node (defaults to the agent's node).
    pub node: Option<String>,
    /// Node checks; `Some(vec![])` makes a TTL-only session (no `serfHealth`).
    pub node_checks: Option<Vec<String>>,
    /// Service check IDs.
    pub service_checks: Option<Vec<String>>,
}

impl SessionCreate {
    /// A TTL-only session (empty `NodeChecks`), what a leader lock outside an agent's
    /// node needs.
    pub fn ttl_only(name: impl Into<String>, ttl: Duration) -> Self {
        Self {
            name: name.into(),
            ttl: Some(ttl),
            node_checks: Some(Vec::new()),
            service_checks: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// Sets the lock delay.
    pub fn lock_delay(mut self, d: Duration) -> Self {
        self.lock_delay = Some(d);
        self
    }

    /// Sets the behavior.
    pub fn behavior(mut self, b: SessionBehavior) -> Self {
        self.behavior = b;
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Name".into(), json!(self.name));
        if let Some(ttl) = self.ttl {
            m.insert("TTL".into(), json!(duration_text(ttl)));
        }
        if let Some(d) = self.lock_delay {
            m.insert("LockDelay".into(), json!(duration_text(d)));
        }
        m.insert("Behavior".into(), json!(self.behavior));
        if let Some(node) = &self.node {
            m.insert("Node".into(), json!(node));
        }
        if let Some(checks) = &self.node_checks {
            m.insert("NodeChecks".into(), json!(checks));
        }
        if let Some(checks) = &self.service_checks {
            let v: Vec<Value> = checks.iter().map(|id| json!({ "ID": id })).collect();
            m.insert("ServiceChecks".into(), Value::Array(v));
        }
        Value::Object(m)
    }
}

fn ttl_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_go_duration(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("bad session TTL {s:?}"))),
    }
}

/// A session as Consul reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionInfo {
    /// Session ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Node.
    #[serde(default)]
    pub node: String,
    /// Lock delay (integer nanoseconds on the wire).
    #[serde(default, deserialize_with = "nanos::deserialize")]
    pub lock_delay: Duration,
    /// Behavior.
    #[serde(default)]
    pub behavior: SessionBehavior,
    /// TTL; a renew may hand back a larger one, which the caller must adopt.
    #[serde(rename = "TTL", default, deserialize_with = "ttl_text")]
    pub ttl: Option<Duration>,
    /// Node checks.
    #[serde(default, deserialize_with = "null_default")]
    pub node_checks: Vec<String>,
    /// Service checks.
    #[serde(default, deserialize_with = "null_default")]
    pub service_checks: Vec<Value>,
    /// Create index.
    #[serde(default)]
    pub create_index: u64,
    /// Modify index.
    #[serde(default)]
    pub modify_index: u64,
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid_argument("consul session id is empty"));
    }
    Ok(())
}

/// `PUT /v1/session/create`.
///
/// # Errors
/// `InvalidArgument` for a TTL outside 10 s..24 h.
pub fn create(session: &SessionCreate, opts: &WriteOptions) -> Result<RequestSpec> {
    if let Some(ttl) = session.ttl
        && (ttl < Duration::from_secs(10) || ttl > Duration::from_secs(86400))
    {
        return Err(Error::invalid_argument(format!(
            "consul session TTL must be between 10s and 24h, got {ttl:?}"
        )));
    }
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::put("/v1/session/create").json(session.to_json()),
    ))
}

#[derive(Deserialize)]
struct CreateAnswer {
    #[serde(rename = "ID")]
    id: String,
}

/// Decodes `{"ID": "..."}`.
///
/// # Errors
/// `Decode` for a bad body.
pub fn parse_create(raw: &RawResponse) -> Result<String> {
    Ok(raw.json::<CreateAnswer>()?.id)
}

/// `PUT /v1/session/renew/<id>`; 404 goes to [`parse_renew`].
///
/// # Errors
/// `InvalidArgument` for an empty id.
pub fn renew(id: &str, opts: &WriteOptions) -> Result<RequestSpec> {
    check_id(id)?;
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::put(format!("/v1/session/renew/{}", encode_segment(id)))
            // Renewing twice is harmless.
            .idempotency(Idempotency::CasGuarded)
            .accept(&[404]),
    ))
}

/// Decodes a renew: the session (adopt its TTL) or [`Error::SessionNotFound`].
///
/// # Errors
/// `SessionNotFound` on 404 or an empty answer; `Decode` for a bad body.
pub fn parse_renew(raw: &RawResponse, id: &str) -> Result<SessionInfo> {
    if raw.status == 404 {
        return Err(Error::SessionNotFound { id: id.to_owned() });
    }
    let mut list: Vec<SessionInfo> = raw.json()?;
    if list.is_empty() {
        return Err(Error::SessionNotFound { id: id.to_owned() });
    }
    Ok(list.swap_remove(0))
}

/// `PUT /v1/session/destroy/<id>` (answers `true` even when already gone).
///
/// # Errors
/// `InvalidArgument` for an empty id.
pub fn destroy(id: &str, opts: &WriteOptions) -> Result<RequestSpec> {
    check_id(id)?;
    Ok(opts.apply_scope(
        Product::Consul,
        RequestSpec::put(format!("/v1/session/destroy/{}", encode_segment(id)))
            .idempotency(Idempotency::CasGuarded),
    ))
}

/// `GET /v1/session/info/<id>` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for an empty id or bad options.
pub fn info(id: &str, opts: &QueryOptions) -> Result<RequestSpec> {
    check_id(id)?;
    opts.apply(
        Product::Consul,
        RequestSpec::get(format!("/v1/session/info/{}", encode_segment(id))),
    )
}

/// Decodes an info answer: `[]` means unknown (`None`).
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_info(raw: &RawResponse) -> Result<Response<Option<SessionInfo>>> {
    let r = raw.json_with_meta::<Option<Vec<SessionInfo>>>()?;
    Ok(r.map(|v| {
        v.and_then(|mut l| {
            if l.is_empty() {
                None
            } else {
                Some(l.swap_remove(0))
            }
        })
    }))
}

/// `GET /v1/session/list` (blocking-capable).
///
/// # Errors
/// `InvalidArgument` for bad options.
pub fn list(opts: &QueryOptions) -> Result<RequestSpec> {
    opts.apply(Product::Consul, RequestSpec::get("/v1/session/list"))
}

/// Decodes a session list.
///
/// # Errors
/// `Decode` for a bad body or header.
pub fn parse_list(raw: &RawResponse) -> Result<Response<Vec<SessionInfo>>> {
    Ok(raw
        .json_with_meta::<Option<Vec<SessionInfo>>>()?
        .map(Option::unwrap_or_default))
}
