//! The Consul state store: every table, the change log that blocking queries scan,
//! and the KV / session-invalidation operations shared by the HTTP API and `/v1/txn`.
//!
//! All tables live behind one mutex in [`super::ConsulState`]. Writes go through a
//! [`Tx`]: the index is the clock's next value, taken only when the write really
//! changes something (identical writes never tick the clock, reference §8.5), and the
//! changes are published to the [`ChangeLog`] before the clock wakes the watchers.

use crate::index::IndexClock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use tokio::time::Instant;

/// How many recent changes the log keeps; a watcher that fell further behind simply
/// wakes up (a blocking return never has to prove a change, reference §8.1).
const CHANGELOG_CAPACITY: usize = 1 << 16;

/// One KV entry (reference §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KvEntry {
    /// Raw value bytes (base64 in the snapshot).
    #[serde(with = "b64")]
    pub value: Vec<u8>,
    /// Opaque 64-bit flags.
    pub flags: u64,
    /// Session holding the lock, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Number of successful acquisitions.
    pub lock_index: u64,
    /// Index of the write that created the key.
    pub create_index: u64,
    /// Index of the last write that changed the key.
    pub modify_index: u64,
}

impl KvEntry {
    /// Consul's `DirEntry.Equal`: everything but the indexes.
    fn same_content(&self, other: &KvEntry) -> bool {
        self.value == other.value
            && self.flags == other.flags
            && self.session == other.session
            && self.lock_index == other.lock_index
    }
}

/// The JSON form of a KV entry, in Consul's field order. `with_value = false` blanks
/// the value (txn write results carry `"Value": null`).
pub(crate) fn kv_json(key: &str, e: &KvEntry, with_value: bool) -> serde_json::Value {
    use base64::Engine;
    let mut m = serde_json::Map::new();
    m.insert("LockIndex".into(), e.lock_index.into());
    m.insert("Key".into(), key.into());
    m.insert("Flags".into(), e.flags.into());
    let value = if with_value && !e.value.is_empty() {
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&e.value))
    } else {
        serde_json::Value::Null
    };
    m.insert("Value".into(), value);
    if let Some(s) = &e.session {
        m.insert("Session".into(), s.clone().into());
    }
    m.insert("CreateIndex".into(), e.create_index.into());
    m.insert("ModifyIndex".into(), e.modify_index.into());
    serde_json::Value::Object(m)
}

/// [`kv_json`] as a serialisable view: the same JSON, written without building it.
pub(crate) struct KvOut<'a>(pub &'a str, pub &'a KvEntry);

impl Serialize for KvOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        use serde::ser::SerializeMap;
        let (key, e) = (self.0, self.1);
        let mut m = s.serialize_map(Some(6 + usize::from(e.session.is_some())))?;
        m.serialize_entry("LockIndex", &e.lock_index)?;
        m.serialize_entry("Key", key)?;
        m.serialize_entry("Flags", &e.flags)?;
        if e.value.is_empty() {
            m.serialize_entry("Value", &())?;
        } else {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&e.value);
            m.serialize_entry("Value", &encoded)?;
        }
        if let Some(session) = &e.session {
            m.serialize_entry("Session", session)?;
        }
        m.serialize_entry("CreateIndex", &e.create_index)?;
        m.serialize_entry("ModifyIndex", &e.modify_index)?;
        m.end()
    }
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// A session check reference (`ServiceChecks` element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceCheckRef {
    /// Check ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Namespace (always empty in OSS).
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
}

/// A session (reference §3.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    /// Lock delay in nanoseconds, as given (the 60 s cap applies on invalidation).
    pub lock_delay_ns: u64,
    pub behavior: String,
    pub ttl: String,
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Option<Vec<ServiceCheckRef>>,
    /// Deprecated `Checks`, kept only when it is not the default.
    #[serde(default)]
    pub checks: Option<Vec<String>>,
    pub create_index: u64,
    pub modify_index: u64,
    /// When the TTL timer fires (2 × TTL after the last renewal); not persisted.
    #[serde(skip)]
    pub deadline: Option<Instant>,
}

impl Session {
    /// The session's JSON read form, in Consul's field order.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("ID".into(), self.id.clone().into());
        m.insert("Name".into(), self.name.clone().into());
        m.insert("Node".into(), self.node.clone().into());
        m.insert("LockDelay".into(), self.lock_delay_ns.into());
        m.insert("Behavior".into(), self.behavior.clone().into());
        m.insert("TTL".into(), self.ttl.clone().into());
        m.insert(
            "NodeChecks".into(),
            serde_json::to_value(&self.node_checks).unwrap_or_default(),
        );
        m.insert(
            "ServiceChecks".into(),
            serde_json::to_value(&self.service_checks).unwrap_or_default(),
        );
        if let Some(checks) = self.checks.as_ref().filter(|c| !c.is_empty()) {
            m.insert(
                "Checks".into(),
                serde_json::to_value(checks).unwrap_or_default(),
            );
        }
        m.insert("CreateIndex".into(), self.create_index.into());
        m.insert("ModifyIndex".into(), self.modify_index.into());
        serde_json::Value::Object(m)
    }

    /// Every check the session is tied to (node checks, service checks, legacy checks).
    pub(crate) fn check_ids(&self) -> impl Iterator<Item = &str> {
        self.node_checks
            .iter()
            .flatten()
            .map(String::as_str)
            .chain(self.checks.iter().flatten().map(String::as_str))
            .chain(self.service_checks.iter().flatten().map(|c| c.id.as_str()))
    }
}

/// A stored config entry: its normalised JSON form (without the indexes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigRecord {
    pub entry: serde_json::Map<String, serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
    /// [`ConfigRecord::to_json`] serialised, for listings; not persisted.
    #[serde(skip)]
    pub json: JsonCache,
}

/// A record's compact JSON, valid for the indexes it was made at. Every change to a
/// record moves its `ModifyIndex`; [`Store::reset_indexes`] clears it as well.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonCache(Option<(u64, u64, bytes::Bytes)>);

impl JsonCache {
    /// Forgets the cached form.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

impl PartialEq for JsonCache {
    /// A cache is not part of a record's value.
    fn eq(&self, _: &JsonCache) -> bool {
        true
    }
}

impl ConfigRecord {
    /// A record without a cached JSON form.
    pub(crate) fn new(
        entry: serde_json::Map<String, serde_json::Value>,
        create_index: u64,
        modify_index: u64,
    ) -> ConfigRecord {
        ConfigRecord {
            entry,
            create_index,
            modify_index,
            json: JsonCache::default(),
        }
    }

    /// The JSON returned by the API: the entry plus `CreateIndex`/`ModifyIndex`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut m = self.entry.clone();
        m.insert("CreateIndex".into(), self.create_index.into());
        m.insert("ModifyIndex".into(), self.modify_index.into());
        serde_json::Value::Object(m)
    }

    /// [`ConfigRecord::to_json`] serialised compactly, made once per change.
    pub(crate) fn json_bytes(&mut self) -> bytes::Bytes {
        if let Some((c, m, b)) = &self.json.0
            && *c == self.create_index
            && *m == self.modify_index
        {
            return b.clone();
        }
        let b = bytes::Bytes::from(serde_json::to_vec(&self.to_json()).unwrap_or_default());
        self.json.0 = Some((self.create_index, self.modify_index, b.clone()));
        b
    }
}

/// A catalog node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Node {
    pub id: String,
    pub name: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A service instance registered on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceInst {
    pub node: String,
    /// `""`, `connect-proxy`, `ingress-gateway`, `api-gateway`, ...
    pub kind: String,
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: Option<serde_json::Map<String, serde_json::Value>>,
    pub meta: BTreeMap<String, String>,
    pub port: u64,
    pub weights: (u64, u64),
    pub enable_tag_override: bool,
    /// `ConnectProxyConfig` JSON (without the `Mode`/`MeshGateway`/`Expose` defaults).
    pub proxy: serde_json::Map<String, serde_json::Value>,
    /// `ServiceConnect` JSON.
    pub connect: serde_json::Map<String, serde_json::Value>,
    /// The parent service ID when the agent created this sidecar.
    #[serde(default)]
    pub sidecar_of: Option<String>,
    /// Registered through the agent (listed by `/v1/agent/services`).
    #[serde(default)]
    pub local: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Check {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub check_type: String,
    pub interval: String,
    pub timeout: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Per-table index (the real servers' `index` table).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TableIndexes {
    pub kv: u64,
    pub sessions: u64,
    pub config: u64,
    pub nodes: u64,
    pub services: u64,
    pub checks: u64,
}

/// Everything that is persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Data {
    pub kv: BTreeMap<String, KvEntry>,
    /// Key (or deleted prefix) → index of the delete.
    pub tombstones: BTreeMap<String, u64>,
    pub sessions: BTreeMap<String, Session>,
    /// Kind → name → entry.
    pub config: BTreeMap<String, BTreeMap<String, ConfigRecord>>,
    pub nodes: BTreeMap<String, Node>,
    /// Node → service ID → instance.
    pub services: BTreeMap<String, BTreeMap<String, ServiceInst>>,
    /// Node → check ID → check.
    pub checks: BTreeMap<String, BTreeMap<String, Check>>,
    pub indexes: TableIndexes,
    /// Service name → index of the last change to any of its instances or checks.
    pub service_indexes: BTreeMap<String, u64>,
}

/// What a write changed, for blocking queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// One KV key was written or deleted.
    Kv(String),
    /// Every key under a prefix was deleted.
    KvTree(String),
    /// A session was created or invalidated.
    Session { id: String, node: String },
    /// A config entry was written or deleted.
    Config { kind: String, name: String },
    /// A config-entry kind became unknown to the server or known again (see
    /// `ConsulState::set_unsupported_config_kinds`): every read of the kind must look.
    ConfigKindAvailability(String),
    /// Catalog change on a node affecting these service names.
    Catalog {
        services: Vec<String>,
        node_level: bool,
    },
    /// Everything (snapshot restore).
    All,
}

/// What a blocking read watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    /// One KV key.
    Key(String),
    /// Every KV key under a prefix.
    Prefix(String),
    /// The session table.
    Sessions,
    /// One session.
    Session(String),
    /// The sessions of one node.
    NodeSessions(String),
    /// One config entry.
    ConfigEntry(String, String),
    /// Every config entry of a kind.
    ConfigKind(String),
    /// One service's instances and checks.
    Service(String),
    /// Anything in the catalog.
    Catalog,
    /// Nodes only.
    Nodes,
}

impl Watch {
    /// Whether `change` may change what this read returns.
    pub(crate) fn matches(&self, change: &Change) -> bool {
        match (self, change) {
            (_, Change::All) => true,
            (Watch::Key(k), Change::Kv(x)) => k == x,
            (Watch::Key(k), Change::KvTree(p)) => k.starts_with(p.as_str()),
            (Watch::Prefix(p), Change::Kv(x)) => x.starts_with(p.as_str()),
            (Watch::Prefix(p), Change::KvTree(q)) => {
                q.starts_with(p.as_str()) || p.starts_with(q.as_str())
            }
            (Watch::Sessions, Change::Session { .. }) => true,
            (Watch::Session(id), Change::Session { id: x, .. }) => id == x,
            (Watch::NodeSessions(n), Change::Session { node, .. }) => n == node,
            (Watch::ConfigEntry(k, n), Change::Config { kind, name }) => k == kind && n == name,
            (Watch::ConfigKind(k), Change::Config { kind, .. }) => k == kind,
            (
                Watch::ConfigEntry(k, _) | Watch::ConfigKind(k),
                Change::ConfigKindAvailability(kind),
            ) => k == kind,
            (
                Watch::Service(s),
                Change::Catalog {
                    services,
                    node_level,
                },
            ) => *node_level || services.iter().any(|x| x == s),
            (Watch::Catalog, Change::Catalog { .. }) => true,
            (Watch::Nodes, Change::Catalog { node_level, .. }) => *node_level,
            _ => false,
        }
    }
}

/// Recent changes, each with a sequence number, for blocking queries to scan.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    entries: VecDeque<Change>,
    /// Sequence number of `entries[0]`.
    first: u64,
}

impl ChangeLog {
    /// The sequence number the next change will get.
    pub(crate) fn cursor(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn push(&mut self, change: Change) {
        if self.entries.len() >= CHANGELOG_CAPACITY {
            self.entries.pop_front();
            self.first += 1;
        }
        self.entries.push_back(change);
    }

    /// Whether any change since `from` matches `watch` (true when the log no longer
    /// reaches back that far).
    pub(crate) fn any_since(&self, from: u64, watch: &Watch) -> bool {
        if from < self.first {
            return true;
        }
        let start = (from - self.first) as usize;
        self.entries.iter().skip(start).any(|c| watch.matches(c))
    }
}

/// Reversible record of one mutation inside a transaction.
#[derive(Debug)]
enum Undo {
    Kv(String, Option<KvEntry>),
    Tomb(String, Option<u64>),
    LockDelay(String, Option<Instant>),
    KvIndex(u64),
}

/// One write: a pending index (taken from the clock only on commit, and only when
/// something changed), the changes to publish, and an undo log for `/v1/txn`.
#[derive(Debug)]
pub(crate) struct Tx {
    idx: u64,
    used: bool,
    changes: Vec<Change>,
    undo: Vec<Undo>,
}

impl Tx {
    /// The index this write gets; marks the write as changing state.
    pub(crate) fn index(&mut self) -> u64 {
        self.used = true;
        self.idx
    }

    /// Records a change for the blocking queries.
    pub(crate) fn changed(&mut self, change: Change) {
        self.used = true;
        self.changes.push(change);
    }

    /// Whether the write changed anything so far.
    pub(crate) fn is_used(&self) -> bool {
        self.used
    }
}

/// The whole Consul state.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub data: Data,
    pub changes: ChangeLog,
    /// Key → end of its lock-delay window.
    pub lock_delays: HashMap<String, Instant>,
    /// Session → keys it holds.
    pub held: HashMap<String, BTreeSet<String>>,
    /// Tombstone key → when it was created (for reaping); not persisted.
    pub tomb_created: HashMap<String, Instant>,
    /// `svc:<service>` / `gw:<gateway>` → http-routes referring to it.
    pub route_refs: HashMap<String, BTreeSet<String>>,
    /// Service name → its instances `(node, id)`.
    pub svc_by_name: HashMap<String, BTreeSet<(String, String)>>,
    /// Proxied service name → its `connect-proxy` instances `(node, id)`.
    pub proxies_by_dest: HashMap<String, BTreeSet<(String, String)>>,
    /// `(node, service id)` → check IDs; service id `""` holds the node's checks.
    pub checks_by_svc: HashMap<(String, String), BTreeSet<String>>,
    /// Node → ports of its `connect-proxy` instances (with how many use each), so a
    /// sidecar registration finds a free port without scanning the node's services.
    pub proxy_ports: HashMap<String, BTreeMap<u64, usize>>,
}

impl Store {
    /// Starts a write whose index would be the clock's next value. Only valid while
    /// the state lock is held (nothing else can tick the clock meanwhile).
    pub(crate) fn begin(&self, clock: &IndexClock) -> Tx {
        Tx {
            idx: clock.current() + 1,
            used: false,
            changes: Vec::new(),
            undo: Vec::new(),
        }
    }

    /// Publishes the write: changes go to the log, then the clock ticks (waking the
    /// watchers, who will see the changes once the state lock is released).
    pub(crate) fn commit(&mut self, clock: &IndexClock, tx: Tx) {
        if !tx.used {
            return;
        }
        for c in tx.changes {
            self.changes.push(c);
        }
        let idx = clock.next();
        debug_assert_eq!(idx, tx.idx, "the clock moved under the state lock");
    }

    /// Undoes every KV mutation of a failed transaction.
    pub(crate) fn rollback(&mut self, tx: Tx) {
        for undo in tx.undo.into_iter().rev() {
            match undo {
                Undo::Kv(key, Some(prev)) => self.put_kv(key, prev),
                Undo::Kv(key, None) => {
                    self.remove_kv(&key);
                }
                Undo::Tomb(key, Some(prev)) => {
                    self.data.tombstones.insert(key, prev);
                }
                Undo::Tomb(key, None) => {
                    self.data.tombstones.remove(&key);
                    self.tomb_created.remove(&key);
                }
                Undo::LockDelay(key, Some(prev)) => {
                    self.lock_delays.insert(key, prev);
                }
                Undo::LockDelay(key, None) => {
                    self.lock_delays.remove(&key);
                }
                Undo::KvIndex(prev) => self.data.indexes.kv = prev,
            }
        }
    }

    /// Publishes a change that does not take an index (e.g. tombstone reaping).
    pub(crate) fn publish(&mut self, change: Change) {
        self.changes.push(change);
    }

    // ----- KV primitives -------------------------------------------------------

    fn put_kv(&mut self, key: String, entry: KvEntry) {
        if let Some(old) = self.data.kv.get(&key)
            && let Some(s) = &old.session
            && entry.session.as_ref() != Some(s)
            && let Some(set) = self.held.get_mut(s)
        {
            set.remove(&key);
        }
        if let Some(s) = &entry.session {
            self.held.entry(s.clone()).or_default().insert(key.clone());
        }
        self.data.kv.insert(key, entry);
    }

    fn remove_kv(&mut self, key: &str) -> Option<KvEntry> {
        let old = self.data.kv.remove(key)?;
        if let Some(s) = &old.session
            && let Some(set) = self.held.get_mut(s)
        {
            set.remove(key);
        }
        Some(old)
    }

    fn write_kv(&mut self, tx: &mut Tx, key: &str, entry: KvEntry) {
        let prev = self.data.kv.get(key).cloned();
        tx.undo.push(Undo::Kv(key.to_string(), prev));
        tx.undo.push(Undo::KvIndex(self.data.indexes.kv));
        self.data.indexes.kv = entry.modify_index;
        self.put_kv(key.to_string(), entry);
        tx.changed(Change::Kv(key.to_string()));
    }

    fn tombstone(&mut self, tx: &mut Tx, key: &str, idx: u64) {
        let prev = self.data.tombstones.insert(key.to_string(), idx);
        tx.undo.push(Undo::Tomb(key.to_string(), prev));
        self.tomb_created.insert(key.to_string(), Instant::now());
    }

    /// Consul's `kvsSetTxn`: creates or overwrites; keeps the lock holder unless
    /// `update_session`; skips the write when nothing changes. Returns the entry as
    /// stored afterwards.
    #[allow(clippy::too_many_arguments)] // the inputs of Consul's kvsSetTxn
    pub(crate) fn kv_set(
        &mut self,
        tx: &mut Tx,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: Option<String>,
        update_session: bool,
        lock_index: u64,
    ) -> KvEntry {
        let existing = self.data.kv.get(key);
        let session = if update_session {
            session
        } else {
            existing.and_then(|e| e.session.clone())
        };
        let mut entry = KvEntry {
            value,
            flags,
            session,
            lock_index,
            create_index: existing.map(|e| e.create_index).unwrap_or(0),
            modify_index: 0,
        };
        if let Some(existing) = existing
            && existing.same_content(&entry)
        {
            return existing.clone();
        }
        let idx = tx.index();
        if entry.create_index == 0 {
            entry.create_index = idx;
        }
        entry.modify_index = idx;
        self.write_kv(tx, key, entry.clone());
        entry
    }

    /// Consul's `kvsSetCASTxn`. `None` when the index check fails.
    pub(crate) fn kv_cas(
        &mut self,
        tx: &mut Tx,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        cas: u64,
    ) -> Option<KvEntry> {
        match (self.data.kv.get(key), cas) {
            (Some(_), 0) | (None, 1..) => return None,
            (Some(e), c) if e.modify_index != c => return None,
            _ => {}
        }
        Some(self.kv_set(tx, key, value, flags, None, false, 0))
    }

    /// Consul's `kvsLockTxn`: `Err` for a missing/unknown session, `Ok(None)` when
    /// another session holds the key. Lock-delay is checked by the caller.
    pub(crate) fn kv_lock(
        &mut self,
        tx: &mut Tx,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
    ) -> Result<Option<KvEntry>, String> {
        if session.is_empty() {
            return Err("missing session".into());
        }
        if !self.data.sessions.contains_key(session) {
            return Err(format!("invalid session {session:?}"));
        }
        let lock_index = match self.data.kv.get(key) {
            Some(e) if e.session.as_deref() == Some(session) => e.lock_index,
            Some(e) if e.session.is_some() => return Ok(None),
            Some(e) => e.lock_index + 1,
            None => 1,
        };
        Ok(Some(self.kv_set(
            tx,
            key,
            value,
            flags,
            Some(session.to_string()),
            true,
            lock_index,
        )))
    }

    /// Consul's `kvsUnlockTxn`: only the holder can release.
    pub(crate) fn kv_unlock(
        &mut self,
        tx: &mut Tx,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
    ) -> Result<Option<KvEntry>, String> {
        if session.is_empty() {
            return Err("missing session".into());
        }
        let lock_index = match self.data.kv.get(key) {
            Some(e) if e.session.as_deref() == Some(session) => e.lock_index,
            _ => return Ok(None),
        };
        Ok(Some(
            self.kv_set(tx, key, value, flags, None, true, lock_index),
        ))
    }

    /// Deletes one key (no-op when absent), leaving a tombstone.
    pub(crate) fn kv_delete(&mut self, tx: &mut Tx, key: &str) {
        if !self.data.kv.contains_key(key) {
            return;
        }
        let idx = tx.index();
        let prev = self.data.kv.get(key).cloned();
        tx.undo.push(Undo::Kv(key.to_string(), prev));
        tx.undo.push(Undo::KvIndex(self.data.indexes.kv));
        self.remove_kv(key);
        self.tombstone(tx, key, idx);
        self.data.indexes.kv = idx;
        tx.changed(Change::Kv(key.to_string()));
    }

    /// Consul's `kvsDeleteCASTxn`: `true` when deleted, or when the key is absent.
    pub(crate) fn kv_delete_cas(&mut self, tx: &mut Tx, key: &str, cas: u64) -> bool {
        match self.data.kv.get(key) {
            None => true,
            Some(e) if e.modify_index != cas => false,
            Some(_) => {
                self.kv_delete(tx, key);
                true
            }
        }
    }

    /// Deletes every key under `prefix`, with one tombstone for the prefix.
    pub(crate) fn kv_delete_tree(&mut self, tx: &mut Tx, prefix: &str) {
        let keys: Vec<String> = self.keys_under(prefix).map(str::to_string).collect();
        if keys.is_empty() {
            return;
        }
        let idx = tx.index();
        tx.undo.push(Undo::KvIndex(self.data.indexes.kv));
        for key in &keys {
            let prev = self.remove_kv(key);
            tx.undo.push(Undo::Kv(key.clone(), prev));
        }
        self.tombstone(tx, prefix, idx);
        self.data.indexes.kv = idx;
        tx.changed(Change::KvTree(prefix.to_string()));
    }

    /// Keys under a prefix, in order (proportional to the prefix, not the table).
    pub(crate) fn keys_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.entries_under(prefix).map(|(k, _)| k.as_str())
    }

    /// Entries under a prefix, in key order.
    pub(crate) fn entries_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a KvEntry)> {
        self.data
            .kv
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// The highest tombstone index under a prefix.
    pub(crate) fn graveyard_max(&self, prefix: &str) -> u64 {
        self.data
            .tombstones
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0)
    }

    /// The index a single-key read reports: the key's own `ModifyIndex`, or the KV
    /// table index when absent (never below 1).
    pub(crate) fn kv_key_index(&self, key: &str) -> u64 {
        match self.data.kv.get(key) {
            Some(e) => e.modify_index,
            None => self.data.indexes.kv,
        }
        .max(1)
    }

    /// The index a prefix read reports: the highest `ModifyIndex` under the prefix,
    /// tombstones included, or the table index when there is none.
    pub(crate) fn kv_prefix_index(&self, prefix: &str) -> u64 {
        let table = self.data.indexes.kv;
        let sub = if prefix.is_empty() {
            table
        } else {
            let live = self
                .entries_under(prefix)
                .map(|(_, e)| e.modify_index)
                .max()
                .unwrap_or(0);
            live.max(self.graveyard_max(prefix))
        };
        if sub != 0 { sub } else { table }.max(1)
    }

    /// Whether a lock-delay window is open on `key`.
    pub(crate) fn lock_delay_active(&self, key: &str) -> bool {
        self.lock_delays
            .get(key)
            .is_some_and(|until| *until > Instant::now())
    }

    // ----- sessions ------------------------------------------------------------

    /// Invalidates a session (destroy, TTL expiry, failed check): releases or deletes
    /// the keys it holds, opens their lock-delay windows, removes the session.
    /// Returns `false` when the session does not exist.
    pub(crate) fn invalidate_session(&mut self, tx: &mut Tx, id: &str) -> bool {
        let Some(session) = self.data.sessions.remove(id) else {
            return false;
        };
        let idx = tx.index();
        self.data.indexes.sessions = idx;
        tx.changed(Change::Session {
            id: id.to_string(),
            node: session.node.clone(),
        });
        let delay = std::time::Duration::from_nanos(session.lock_delay_ns).min(MAX_LOCK_DELAY);
        let now = Instant::now();
        let keys: Vec<String> = self
            .held
            .remove(id)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        for key in keys {
            let Some(entry) = self.data.kv.get(&key).cloned() else {
                continue;
            };
            if entry.session.as_deref() != Some(id) {
                continue;
            }
            if session.behavior == "delete" {
                self.kv_delete(tx, &key);
            } else {
                self.kv_set(
                    tx,
                    &key,
                    entry.value,
                    entry.flags,
                    None,
                    true,
                    entry.lock_index,
                );
            }
            if !delay.is_zero() {
                let prev = self.lock_delays.insert(key.clone(), now + delay);
                tx.undo.push(Undo::LockDelay(key, prev));
            }
        }
        true
    }

    // ----- snapshot-restore simulation -----------------------------------------

    /// Lowers every stored index (keeping their order) and the clock, and wakes every
    /// watcher: what a client sees after a snapshot restore (reference §8.2).
    pub(crate) fn reset_indexes(&mut self, clock: &IndexClock) {
        let old_max = clock.current();
        let mut used = BTreeSet::new();
        self.for_each_index(|i| {
            used.insert(*i);
        });
        let ranks: HashMap<u64, u64> = used
            .iter()
            .enumerate()
            .map(|(r, i)| (*i, r as u64 + 1))
            .collect();
        let dense_max = ranks.len() as u64;
        // Ranks keep the order; when they are not low enough, halve them too.
        let halve = dense_max.saturating_mul(2) > old_max.max(2);
        let map = |i: u64| -> u64 {
            if i == 0 {
                return 0;
            }
            let r = ranks.get(&i).copied().unwrap_or(1);
            if halve { r.div_ceil(2).max(1) } else { r }
        };
        self.for_each_index(|i| *i = map(*i));
        let new_max = if halve {
            dense_max.div_ceil(2)
        } else {
            dense_max
        }
        .max(1)
        .min(old_max.saturating_sub(1).max(1));
        self.changes.push(Change::All);
        clock.set(new_max);
    }

    /// Visits every stored index (not lock indexes, which are counters).
    fn for_each_index(&mut self, mut f: impl FnMut(&mut u64)) {
        let d = &mut self.data;
        for e in d.kv.values_mut() {
            f(&mut e.create_index);
            f(&mut e.modify_index);
        }
        for i in d.tombstones.values_mut() {
            f(i);
        }
        for s in d.sessions.values_mut() {
            f(&mut s.create_index);
            f(&mut s.modify_index);
        }
        for kind in d.config.values_mut() {
            for r in kind.values_mut() {
                f(&mut r.create_index);
                f(&mut r.modify_index);
                r.json.clear();
            }
        }
        for n in d.nodes.values_mut() {
            f(&mut n.create_index);
            f(&mut n.modify_index);
        }
        for node in d.services.values_mut() {
            for s in node.values_mut() {
                f(&mut s.create_index);
                f(&mut s.modify_index);
            }
        }
        for node in d.checks.values_mut() {
            for c in node.values_mut() {
                f(&mut c.create_index);
                f(&mut c.modify_index);
            }
        }
        for i in d.service_indexes.values_mut() {
            f(i);
        }
        let t = &mut d.indexes;
        for i in [
            &mut t.kv,
            &mut t.sessions,
            &mut t.config,
            &mut t.nodes,
            &mut t.services,
            &mut t.checks,
        ] {
            f(i);
        }
    }

    /// Rebuilds the derived (non-persisted) indexes after a restore.
    pub(crate) fn rebuild_derived(&mut self) {
        self.held.clear();
        for (k, e) in &self.data.kv {
            if let Some(s) = &e.session {
                self.held.entry(s.clone()).or_default().insert(k.clone());
            }
        }
        let now = Instant::now();
        self.tomb_created = self
            .data
            .tombstones
            .keys()
            .map(|k| (k.clone(), now))
            .collect();
        self.lock_delays.clear();
        self.svc_by_name.clear();
        self.proxies_by_dest.clear();
        self.checks_by_svc.clear();
        self.proxy_ports.clear();
        let services: Vec<ServiceInst> = self
            .data
            .services
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        for svc in &services {
            self.index_service(svc, true);
        }
        let checks: Vec<Check> = self
            .data
            .checks
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        for c in &checks {
            self.index_check(c, true);
        }
    }

    /// Adds or removes a service instance in the derived indexes.
    pub(crate) fn index_service(&mut self, s: &ServiceInst, add: bool) {
        let key = (s.node.clone(), s.id.clone());
        let toggle = |set: &mut BTreeSet<(String, String)>, key: (String, String)| {
            if add {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        };
        toggle(
            self.svc_by_name.entry(s.service.clone()).or_default(),
            key.clone(),
        );
        if s.kind == "connect-proxy" {
            let ports = self.proxy_ports.entry(s.node.clone()).or_default();
            if add {
                *ports.entry(s.port).or_insert(0) += 1;
            } else if let Some(n) = ports.get_mut(&s.port) {
                *n -= 1;
                if *n == 0 {
                    ports.remove(&s.port);
                }
            }
        }
        if s.kind == "connect-proxy"
            && let Some(dest) = s
                .proxy
                .get("DestinationServiceName")
                .and_then(|v| v.as_str())
        {
            toggle(
                self.proxies_by_dest.entry(dest.to_string()).or_default(),
                key,
            );
        }
    }

    /// Adds or removes a check in the derived indexes.
    pub(crate) fn index_check(&mut self, c: &Check, add: bool) {
        let set = self
            .checks_by_svc
            .entry((c.node.clone(), c.service_id.clone()))
            .or_default();
        if add {
            set.insert(c.check_id.clone());
        } else {
            set.remove(&c.check_id);
        }
    }

    /// The checks of one service instance (`""` = the node's own checks).
    pub(crate) fn checks_of<'a>(
        &'a self,
        node: &'a str,
        service_id: &str,
    ) -> impl Iterator<Item = &'a Check> + 'a {
        let ids = self
            .checks_by_svc
            .get(&(node.to_string(), service_id.to_string()));
        let node_checks = self.data.checks.get(node);
        ids.into_iter()
            .flatten()
            .filter_map(move |id| node_checks.and_then(|m| m.get(id)))
    }

    /// The highest index stored anywhere (for checking a restored snapshot).
    pub(crate) fn max_index(&mut self) -> u64 {
        let mut max = 0;
        self.for_each_index(|i| max = max.max(*i));
        max
    }
}

/// Consul caps lock-delay at 60 s when it applies it (`structs.MaxLockDelay`).
pub(crate) const MAX_LOCK_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(store: &mut Store, clock: &IndexClock, key: &str, v: &str) -> KvEntry {
        let mut tx = store.begin(clock);
        let e = store.kv_set(&mut tx, key, v.as_bytes().to_vec(), 0, None, false, 0);
        store.commit(clock, tx);
        e
    }

    #[test]
    fn identical_writes_do_not_tick_the_clock() {
        let clock = IndexClock::new(5);
        let mut store = Store::default();
        let e = set(&mut store, &clock, "a", "1");
        assert_eq!(e.modify_index, 6);
        let e = set(&mut store, &clock, "a", "1");
        assert_eq!(e.modify_index, 6);
        assert_eq!(clock.current(), 6);
        assert_eq!(set(&mut store, &clock, "a", "2").modify_index, 7);
    }

    #[test]
    fn prefix_index_counts_tombstones_and_falls_back_to_the_table() {
        let clock = IndexClock::new(0);
        let mut store = Store::default();
        set(&mut store, &clock, "p/a", "1");
        set(&mut store, &clock, "q/b", "1");
        let mut tx = store.begin(&clock);
        store.kv_delete(&mut tx, "p/a");
        store.commit(&clock, tx);
        assert_eq!(store.kv_prefix_index("p/"), 3);
        assert_eq!(store.kv_prefix_index("zzz/"), 3);
        assert_eq!(store.kv_key_index("q/b"), 2);
    }

    #[test]
    fn rollback_restores_every_key() {
        let clock = IndexClock::new(0);
        let mut store = Store::default();
        set(&mut store, &clock, "t/a", "1");
        let mut tx = store.begin(&clock);
        store.kv_set(&mut tx, "t/a", b"2".to_vec(), 0, None, false, 0);
        store.kv_delete_tree(&mut tx, "t/");
        store.rollback(tx);
        assert_eq!(store.data.kv["t/a"].value, b"1");
        assert!(store.data.tombstones.is_empty());
        assert_eq!(clock.current(), 1);
    }

    #[test]
    fn reset_keeps_order_and_lowers_everything() {
        let clock = IndexClock::new(0);
        let mut store = Store::default();
        for i in 0..20 {
            set(&mut store, &clock, &format!("k{i:02}"), "v");
        }
        let before = clock.current();
        store.reset_indexes(&clock);
        assert!(clock.current() < before);
        let a = store.data.kv["k01"].modify_index;
        let b = store.data.kv["k10"].modify_index;
        assert!(a <= b && b <= clock.current());
    }

    #[test]
    fn kv_entries_serialise_like_their_json() {
        let mut e = KvEntry {
            value: b"hello \"world\"".to_vec(),
            flags: 42,
            session: None,
            lock_index: 0,
            create_index: 3,
            modify_index: 9,
        };
        for _ in 0..3 {
            assert_eq!(
                serde_json::to_string(&KvOut("a/b", &e)).unwrap(),
                serde_json::to_string(&kv_json("a/b", &e, true)).unwrap()
            );
            if e.session.is_none() {
                e.session = Some("s1".into());
                e.lock_index = 1;
            } else {
                e.value.clear();
            }
        }
    }

    #[test]
    fn watches_match_the_changes_that_concern_them() {
        assert!(Watch::Prefix("a/".into()).matches(&Change::Kv("a/b".into())));
        assert!(!Watch::Prefix("a/".into()).matches(&Change::Kv("ab".into())));
        assert!(Watch::Prefix("a/b/".into()).matches(&Change::KvTree("a/".into())));
        assert!(Watch::Key("a/b".into()).matches(&Change::KvTree("a/".into())));
        assert!(!Watch::Key("a/b".into()).matches(&Change::Kv("a/c".into())));
        assert!(Watch::ConfigKind("k".into()).matches(&Change::All));
        let availability = Change::ConfigKindAvailability("k".into());
        assert!(Watch::ConfigKind("k".into()).matches(&availability));
        assert!(Watch::ConfigEntry("k".into(), "n".into()).matches(&availability));
        assert!(!Watch::ConfigKind("j".into()).matches(&availability));
    }
}
