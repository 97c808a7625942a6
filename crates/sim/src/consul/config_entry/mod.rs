//! Config entries (reference §4): `PUT /v1/config`, `GET /v1/config/<kind>[/<name>]`,
//! `DELETE /v1/config/<kind>/<name>`, and the legacy `GET /v1/connect/intentions`
//! view.
//!
//! A write goes through Consul's pipeline: decode (strict: a misspelt field is 400
//! `invalid config key`), normalise (intention `Type`/`Precedence` and ordering,
//! lower-cased protocols, defaults), validate (500 with the server's messages), ACL,
//! skip identical upserts (answer `true` without a write, even with a stale `cas`),
//! CAS, cross-entry graph validation (500), store, and the gateway controller's
//! `Status` on api-gateway/http-route entries.
//!
//! A kind listed in `ConsulSimConfig::unsupported_config_kinds` is answered as an
//! unknown kind on every endpoint, as an older Consul answers it (reference §10).

pub(crate) mod graph;
mod normalize;
mod schema;

pub use schema::ALL_KINDS;

use super::ConsulState;
use super::acl::{Access, AclError, Authz, Global, Res};
use super::store::{Change, ConfigRecord, Store, Watch};
use super::web::{self, ApiError, ApiResult, Meta, Req};
use serde_json::{Map, Value, json};

type Obj = Map<String, Value>;

fn s<'a>(o: &'a Obj, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Kinds whose `Status` is written by Consul's controller.
fn controlled(kind: &str) -> bool {
    matches!(kind, "api-gateway" | "http-route" | "tcp-route")
}

fn bad_request(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Bad request: Request decoding failed: {msg}"))
}

/// The protocol a sidecar of `service` gets in `Proxy.Config.protocol` (from
/// service-defaults, else proxy-defaults), if any is configured.
pub(crate) fn protocol_hint(store: &Store, service: &str) -> Option<String> {
    let cfg = &store.data.config;
    if let Some(p) = cfg
        .get("service-defaults")
        .and_then(|m| m.get(service))
        .map(|r| s(&r.entry, "Protocol"))
        .filter(|p| !p.is_empty())
    {
        return Some(p.to_string());
    }
    cfg.get("proxy-defaults")
        .and_then(|m| m.get("global"))
        .and_then(|r| r.entry.get("Config"))
        .and_then(|c| c.get("protocol"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
}

/// Rebuilds derived indexes after a restore.
pub(crate) fn rebuild_indexes(store: &mut Store) {
    graph::rebuild_route_index(store);
}

/// Decodes a `PUT /v1/config` body into its kind and Go-shaped JSON form.
fn decode_entry(state: &ConsulState, body: &Value) -> Result<(String, Obj), ApiError> {
    let Value::Object(raw) = body else {
        return Err(bad_request(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            super::catalog::json_kind(body)
        )));
    };
    let kind = match raw.get("Kind").or_else(|| raw.get("kind")) {
        None => {
            return Err(bad_request(
                "Payload does not contain a kind/Kind key at the top level",
            ));
        }
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(bad_request("Kind value in payload is not a string")),
    };
    if !state.knows_config_kind(&kind) {
        return Err(bad_request(unknown_kind(&kind)));
    }
    let Some(schema) = schema::schema_for(&kind) else {
        let mut entry = raw.clone();
        entry.remove("CreateIndex");
        entry.remove("ModifyIndex");
        entry.remove("kind");
        entry.insert("Kind".into(), kind.clone().into());
        return Ok((kind, entry));
    };
    let mut unused = Vec::new();
    let decoded = schema::decode(schema, raw, "", &mut unused)
        .map_err(|e| bad_request(format!("1 error(s) decoding:\n\n* {e}")))?;
    let errors: Vec<String> = unused
        .into_iter()
        .filter(|k| !matches!(k.as_str(), "CreateIndex" | "ModifyIndex" | "Kind" | "kind" | "Hash"))
        .map(|k| {
            let lower = k.to_lowercase();
            if lower.ends_with("namespace") {
                format!("invalid config key {k:?}, namespaces are a consul enterprise feature")
            } else if lower.contains("jwt") {
                format!(
                    "invalid config key {k:?}, api-gateway jwt validation is a consul enterprise feature"
                )
            } else {
                format!("invalid config key {k:?}")
            }
        })
        .collect();
    if !errors.is_empty() {
        let mut errors = errors;
        errors.sort();
        return Err(bad_request(normalize::multierror(&errors)));
    }
    Ok((kind, schema::encode(schema, &decoded)))
}

/// `CanRead` of each kind.
fn can_read(authz: &Authz, kind: &str, name: &str) -> Result<(), AclError> {
    match kind {
        "service-intentions" => authz.check(Res::Intention, Access::Read, name),
        "proxy-defaults" | "mesh" => Ok(()),
        "service-defaults"
        | "service-router"
        | "service-splitter"
        | "service-resolver"
        | "ingress-gateway"
        | "terminating-gateway"
        | "api-gateway" => authz.check(Res::Service, Access::Read, name),
        _ => authz.check_global(Global::Mesh, Access::Read),
    }
}

/// `CanWrite` of each kind.
fn can_write(authz: &Authz, kind: &str, name: &str, entry: Option<&Obj>) -> Result<(), AclError> {
    match kind {
        "service-intentions" => authz.check(Res::Intention, Access::Write, name),
        "service-defaults" => authz.check(Res::Service, Access::Write, name),
        "service-router" | "service-splitter" | "service-resolver" => {
            authz.check(Res::Service, Access::Write, name)?;
            if let Some(e) = entry {
                for svc in graph_related(kind, name, e) {
                    authz.check(Res::Service, Access::Read, &svc)?;
                }
            }
            Ok(())
        }
        _ => authz.check_global(Global::Mesh, Access::Write),
    }
}

fn graph_related(kind: &str, name: &str, e: &Obj) -> Vec<String> {
    let mut out = Vec::new();
    let list = |k: &str| {
        e.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    match kind {
        "service-router" => {
            for r in list("Routes") {
                if let Some(svc) = r["Destination"]["Service"]
                    .as_str()
                    .filter(|x| !x.is_empty())
                {
                    out.push(svc.to_string());
                }
            }
        }
        "service-splitter" => {
            for sp in list("Splits") {
                if let Some(svc) = sp["Service"].as_str().filter(|x| !x.is_empty()) {
                    out.push(svc.to_string());
                }
            }
        }
        _ => {}
    }
    out.retain(|x| x != name);
    out
}

/// Compares two stored forms, ignoring what the controller owns.
fn same_entry(kind: &str, a: &Obj, b: &Obj) -> bool {
    if !controlled(kind) {
        return a == b;
    }
    // Equal apart from `Status` (compared in place, as maps: order does not matter).
    let len = |o: &Obj| o.len() - usize::from(o.contains_key("Status"));
    len(a) == len(b)
        && a.iter()
            .filter(|(k, _)| k.as_str() != "Status")
            .all(|(k, v)| b.get(k) == Some(v))
}

/// What Consul's `MakeConfigEntry` says about a kind it does not know. Reads (the
/// `ConfigEntry.Get`/`List` RPCs) answer it as a 500; the HTTP handlers of writes and
/// deletes check the kind first and answer 400 (reference §9, §10).
fn unknown_kind(kind: &str) -> String {
    format!("invalid config entry kind: {kind}")
}

/// The index a blocking read of `kind` waits on. Once the kind is made unknown the
/// read must end and answer the error: an index above any the reader can hold ends
/// the wait.
fn read_index(state: &ConsulState, store: &Store, kind: &str) -> u64 {
    if state.knows_config_kind(kind) {
        store.data.indexes.config
    } else {
        u64::MAX
    }
}

fn parse_cas(req: &Req) -> Result<Option<u64>, ApiError> {
    match req.get("cas").filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(raw) => raw.parse::<u64>().map(Some).map_err(|_| {
            ApiError::internal(format!(
                "strconv.ParseUint: parsing {raw:?}: invalid syntax"
            ))
        }),
    }
}

/// Writes an entry (the whole pipeline after decoding). `Ok(false)` = CAS failure.
pub(crate) fn upsert(
    state: &ConsulState,
    authz: &Authz,
    kind: &str,
    mut entry: Obj,
    cas: Option<u64>,
) -> Result<bool, ApiError> {
    normalize::normalize(kind, &mut entry).map_err(ApiError::internal)?;
    normalize::validate(kind, &entry).map_err(ApiError::internal)?;
    let name = s(&entry, "Name").to_string();
    can_write(authz, kind, &name, Some(&entry))?;
    let mut store = state.store.lock();
    let stored = store.data.config.get(kind).and_then(|m| m.get(&name));
    if let Some(rec) = stored
        && same_entry(kind, &rec.entry, &entry)
    {
        return Ok(true);
    }
    // What is needed of the stored entry: `(CreateIndex, ModifyIndex, Status)`.
    let existing = stored.map(|r| {
        let status = controlled(kind)
            .then(|| r.entry.get("Status").cloned())
            .flatten();
        (r.create_index, r.modify_index, status)
    });
    match (cas, &existing) {
        (Some(0), Some(_)) | (Some(1..), None) => return Ok(false),
        (Some(c), Some((_, modify_index, _))) if c != *modify_index => return Ok(false),
        _ => {}
    }
    graph::validate(
        &store,
        &graph::Proposal {
            kind,
            name: &name,
            entry: Some(&entry),
        },
    )
    .map_err(ApiError::internal)?;
    if controlled(kind) {
        // The controller owns Status: keep what it wrote until it recomputes.
        let status = existing
            .as_ref()
            .and_then(|(_, _, status)| status.clone())
            .unwrap_or_else(|| json!({"Conditions": null}));
        entry.insert("Status".into(), status);
    }
    let mut tx = store.begin(&state.clock);
    let idx = tx.index();
    let create_index = existing.as_ref().map_or(idx, |(c, _, _)| *c);
    let record = ConfigRecord::new(entry, create_index, idx);
    let old = store
        .data
        .config
        .entry(kind.to_string())
        .or_default()
        .insert(name.clone(), record);
    store.data.indexes.config = idx;
    tx.changed(Change::Config {
        kind: kind.to_string(),
        name: name.clone(),
    });
    if kind == "http-route" {
        let new_keys = store
            .data
            .config
            .get(kind)
            .and_then(|m| m.get(&name))
            .map(|r| graph::route_keys(&r.entry))
            .unwrap_or_default();
        let old_keys = old
            .as_ref()
            .map(|r| graph::route_keys(&r.entry))
            .unwrap_or_default();
        graph::reindex_route_keys(&mut store, &name, old_keys, new_keys);
    }
    graph::refresh_status(&mut store, &mut tx, kind, &name);
    store.commit(&state.clock, tx);
    Ok(true)
}

/// `PUT /v1/config[?cas=N]`.
pub(crate) fn apply(state: &ConsulState, req: &Req, body: &[u8]) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    let value: Value = serde_json::from_slice(body).map_err(bad_request)?;
    let (kind, entry) = decode_entry(state, &value)?;
    let cas = parse_cas(req)?;
    let ok = upsert(state, &authz, &kind, entry, cas)?;
    Ok(web::json(state, req, &Value::Bool(ok)))
}

/// `GET /v1/config/<kind>/<name>`.
pub(crate) async fn get(state: &ConsulState, req: &Req, kind: &str, name: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    if !state.knows_config_kind(kind) {
        return Err(ApiError::internal(unknown_kind(kind)));
    }
    can_read(&authz, kind, name)?;
    web::block(
        state,
        &opts,
        &Watch::ConfigEntry(kind.to_string(), name.to_string()),
        |st| read_index(state, st, kind),
    )
    .await;
    // The kind may have been made unknown while the read waited.
    if !state.knows_config_kind(kind) {
        return Err(ApiError::internal(unknown_kind(kind)));
    }
    let store = state.store.lock();
    let meta = Meta::index(store.data.indexes.config);
    let entry = store
        .data
        .config
        .get(kind)
        .and_then(|m| m.get(name))
        .map(ConfigRecord::to_json);
    drop(store);
    match entry {
        Some(e) => Ok(web::json_meta(state, req, &e, &meta)),
        None => {
            let mut resp = web::error(
                state,
                &ApiError::new(
                    404,
                    format!("Config entry not found for {kind:?} / {name:?}"),
                ),
            );
            web::add_meta(state, &mut resp, &meta);
            Ok(resp)
        }
    }
}

/// `GET /v1/config/<kind>`: every entry of the kind, `[]` when none.
pub(crate) async fn list(state: &ConsulState, req: &Req, kind: &str) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    if !state.knows_config_kind(kind) {
        return Err(ApiError::internal(unknown_kind(kind)));
    }
    web::block(state, &opts, &Watch::ConfigKind(kind.to_string()), |st| {
        read_index(state, st, kind)
    })
    .await;
    // The kind may have been made unknown while the read waited.
    if !state.knows_config_kind(kind) {
        return Err(ApiError::internal(unknown_kind(kind)));
    }
    let mut store = state.store.lock();
    let mut filtered = false;
    let pretty = req.has("pretty");
    let mut entries: Vec<Value> = Vec::new();
    // Compact listings are assembled from each record's cached serialised form.
    let mut raw: Vec<bytes::Bytes> = Vec::new();
    for (n, r) in store
        .data
        .config
        .get_mut(kind)
        .into_iter()
        .flat_map(|m| m.iter_mut())
    {
        if can_read(&authz, kind, n).is_err() {
            filtered = true;
            continue;
        }
        if pretty {
            entries.push(r.to_json());
        } else {
            raw.push(r.json_bytes());
        }
    }
    let meta = Meta {
        index: store.data.indexes.config.max(1),
        filtered,
        consistency: None,
    };
    drop(store);
    if pretty {
        return Ok(web::json_meta(state, req, &Value::Array(entries), &meta));
    }
    let mut body = Vec::with_capacity(raw.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, b) in raw.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b);
    }
    body.push(b']');
    Ok(web::raw_json_meta(state, body, &meta))
}

/// `DELETE /v1/config/<kind>/<name>[?cas=N]`: `{}` without `cas` (also for a missing
/// entry), `true`/`false` with it.
pub(crate) fn delete(state: &ConsulState, req: &Req, kind: &str, name: &str) -> ApiResult {
    web::check_dc(state, req)?;
    let authz = web::authz(state, req)?;
    if !state.knows_config_kind(kind) {
        return Err(ApiError::bad_request(format!(
            "Bad request: {}",
            unknown_kind(kind)
        )));
    }
    if kind == "proxy-defaults" && !name.is_empty() && name != "global" {
        return Err(ApiError::internal(format!(
            "invalid name ({name:?}), only \"global\" is supported"
        )));
    }
    can_write(&authz, kind, name, None)?;
    let cas = parse_cas(req)?;
    let answer = |deleted: bool| match cas {
        Some(_) => Value::Bool(deleted),
        None => json!({}),
    };
    let mut store = state.store.lock();
    let Some(existing) = store
        .data
        .config
        .get(kind)
        .and_then(|m| m.get(name))
        .cloned()
    else {
        drop(store);
        return Ok(web::json(state, req, &answer(true)));
    };
    if let Some(c) = cas
        && c != existing.modify_index
    {
        drop(store);
        return Ok(web::json(state, req, &answer(false)));
    }
    graph::validate(
        &store,
        &graph::Proposal {
            kind,
            name,
            entry: None,
        },
    )
    .map_err(ApiError::internal)?;
    let mut tx = store.begin(&state.clock);
    let idx = tx.index();
    if let Some(m) = store.data.config.get_mut(kind) {
        m.remove(name);
        if m.is_empty() {
            store.data.config.remove(kind);
        }
    }
    store.data.indexes.config = idx;
    tx.changed(Change::Config {
        kind: kind.to_string(),
        name: name.to_string(),
    });
    if kind == "http-route" {
        graph::reindex_route(&mut store, name, Some(&existing.entry), None);
    }
    graph::refresh_status(&mut store, &mut tx, kind, name);
    store.commit(&state.clock, tx);
    drop(store);
    Ok(web::json(state, req, &answer(true)))
}

/// `GET /v1/connect/intentions`: the legacy view over `service-intentions` entries.
pub(crate) async fn legacy_intentions(state: &ConsulState, req: &Req) -> ApiResult {
    let opts = web::read_opts(state, req)?;
    let authz = web::authz(state, req)?;
    web::block(
        state,
        &opts,
        &Watch::ConfigKind("service-intentions".into()),
        |st| st.data.indexes.config,
    )
    .await;
    let store = state.store.lock();
    let mut out: Vec<Value> = Vec::new();
    let mut filtered = false;
    for (dest, rec) in store
        .data
        .config
        .get("service-intentions")
        .into_iter()
        .flat_map(|m| m.iter())
    {
        if !authz.allows(Res::Intention, Access::Read, dest) {
            filtered = true;
            continue;
        }
        let meta = rec.entry.get("Meta").cloned();
        for src in rec
            .entry
            .get("Sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut m = Map::new();
            if let Some(d) = src.get("Description").filter(|d| d.as_str() != Some("")) {
                m.insert("Description".into(), d.clone());
            }
            m.insert("SourceNS".into(), "default".into());
            m.insert("SourceName".into(), src["Name"].clone());
            m.insert("DestinationNS".into(), "default".into());
            m.insert("DestinationName".into(), dest.clone().into());
            m.insert("SourceType".into(), src["Type"].clone());
            if let Some(a) = src.get("Action") {
                m.insert("Action".into(), a.clone());
            }
            if let Some(p) = src.get("Permissions") {
                m.insert("Permissions".into(), p.clone());
            }
            if let Some(meta) = meta
                .clone()
                .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
            {
                m.insert("Meta".into(), meta);
            }
            m.insert("Precedence".into(), src["Precedence"].clone());
            m.insert("CreateIndex".into(), rec.create_index.into());
            m.insert("ModifyIndex".into(), rec.modify_index.into());
            out.push(Value::Object(m));
        }
    }
    out.sort_by(|a, b| {
        let p = |v: &Value| v["Precedence"].as_i64().unwrap_or(0);
        p(b).cmp(&p(a))
            .then_with(|| a["SourceName"].as_str().cmp(&b["SourceName"].as_str()))
            .then_with(|| {
                a["DestinationName"]
                    .as_str()
                    .cmp(&b["DestinationName"].as_str())
            })
    });
    let meta = Meta {
        index: store.data.indexes.config.max(1),
        filtered,
        consistency: None,
    };
    drop(store);
    Ok(web::json_meta(state, req, &Value::Array(out), &meta))
}

impl ConsulState {
    /// Whether this server knows the config-entry kind: Consul has it and it is not
    /// one of the kinds made unknown (`ConsulSimConfig::unsupported_config_kinds`).
    pub(crate) fn knows_config_kind(&self, kind: &str) -> bool {
        schema::ALL_KINDS.contains(&kind) && !self.unsupported_config_kinds.read().contains(kind)
    }

    /// Replaces the kinds answered as unknown. Blocking reads of a kind that becomes
    /// unknown end at once with the error, as the connections to a server replaced by
    /// an older version would; stored entries of the kind are kept and show again once
    /// the kind is known again.
    pub(crate) fn set_unsupported_config_kinds(&self, kinds: &[&str]) {
        let new: std::collections::BTreeSet<String> =
            kinds.iter().map(|k| (*k).to_string()).collect();
        let old = std::mem::replace(&mut *self.unsupported_config_kinds.write(), new.clone());
        let mut store = self.store.lock();
        for kind in old.symmetric_difference(&new) {
            store.publish(Change::ConfigKindAvailability(kind.clone()));
        }
        drop(store);
        self.clock.touch();
    }

    /// Writes a config entry as a management token would (for the Nomad module, which
    /// writes ingress-gateway entries for jobs with `gateway.ingress` blocks).
    ///
    /// # Errors
    /// The message Consul would answer (decode, validation or graph errors).
    #[allow(dead_code)] // part of the API offered to the Nomad module
    pub(crate) fn upsert_config_entry(&self, entry: Value) -> Result<bool, String> {
        let (kind, obj) = decode_entry(self, &entry).map_err(|e| e.msg)?;
        upsert(self, &Authz::AllowAll, &kind, obj, None).map_err(|e| e.msg)
    }

    /// A config entry's API form, if it exists.
    #[allow(dead_code)] // part of the API offered to the Nomad module
    pub(crate) fn config_entry(&self, kind: &str, name: &str) -> Option<Value> {
        let store = self.store.lock();
        store
            .data
            .config
            .get(kind)
            .and_then(|m| m.get(name))
            .map(ConfigRecord::to_json)
    }
}
