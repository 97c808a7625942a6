//! `OperatorConfig`: every knob of one operator instance, with defaults for production
//! and a serde form for a config file.
//!
//! The file form uses the field names below (snake_case); durations are strings in
//! Go/humantime syntax (`"30s"`, `"1m30s"`, `"250ms"`) or numbers of seconds; every field
//! may be left out. Example:
//!
//! ```
//! let config: steward_operator::OperatorConfig = serde_json::from_str(r#"{
//!     "prefix": "steward",
//!     "concurrency": 32,
//!     "vault_poll_interval": "15s",
//!     "leader": {"ttl": "30s", "lock_delay": "15s"},
//!     "listen": "127.0.0.1:7070"
//! }"#).expect("valid config");
//! assert_eq!(config.concurrency, 32);
//! assert_eq!(config.vault_poll_interval, std::time::Duration::from_secs(15));
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_render::GatewayRef;
use steward_spec::GuardrailPolicy;

use crate::error::{Error, Result};

/// Settings of one operator instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorConfig {
    /// KV prefix: specs under `<prefix>/specs/`, statuses under `<prefix>/status/`, the
    /// leader lock at `<prefix>/leader`. Default `steward`.
    pub prefix: String,
    /// The gateway `http-route` entries attach to (not owned by Steward; it must exist).
    /// Default `api-gateway` `edge`, listener `http`.
    pub edge_gateway: GatewayRef,
    /// How edge routes reach the edge: `http-route` entries, Steward's own xDS server,
    /// or both. Default: `consul-api-gateway`, no xDS server.
    pub edge: EdgeSettings,
    /// Mount of the JWT auth method Nomad workload identities log in with. Default
    /// `jwt-nomad`.
    pub jwt_auth_mount: String,
    /// Audience of Nomad's Vault workload identity, bound by every role. Default
    /// `vault.io`.
    pub jwt_audience: String,
    /// The platform's guardrail policy every spec is checked against. Default: the
    /// spec crate's safe default (no registry allowed until the platform lists some).
    pub policy: GuardrailPolicy,
    /// Most reconciles running at once. Default 64: a reconcile is a chain of
    /// sequential round trips (Vault, Consul, Nomad, route, status), so on a cold start
    /// the rate is concurrency / chain latency; with 5 ms per request 16 took ~4.8 s for
    /// 1,000 specs and 64 takes ~2 s (`steward bench cold --rtt 5`), at ~10 MiB more
    /// peak RSS at 10,000 specs (more requests and bodies in flight).
    pub concurrency: usize,
    /// Most keys handed to reconciles per second (a token bucket; burst of the same
    /// size). Requests are bounded by `concurrency` anyway; this bounds CPU on mass
    /// requeues. Default 10,000 (a new leader checks 10,000 converged specs at once).
    pub max_reconcile_rate: f64,
    /// Mass-deletion guard, counted in specs: a GC pass that would remove the objects of
    /// more than max(1, floor(this share × the specs owning objects)) specs is blocked
    /// until approved. "Specs owning objects" are the distinct owners of the objects GC
    /// can see (their key present or gone), the removed ones included: a spec that
    /// never applied (invalid, conflicting) owns nothing and does not dilute the share.
    /// Removing one spec, with all its objects, is never blocked. Default 0.20 (with the
    /// 7 examples: 1 spec per pass; with 50 specs: 10).
    pub gc_max_share: f64,
    /// Mass-deletion guard: a GC pass that would remove the objects of more than this
    /// many specs is blocked until approved, whatever the share (a value below 1 acts as
    /// 1). Default 10.
    pub gc_max_count: usize,
    /// Purge Nomad jobs of removed specs instead of stopping them. Default false.
    pub purge_on_delete: bool,
    /// How often the orphan sweep (a GC pass) runs. Default 60 s.
    #[serde(with = "duration")]
    pub orphan_sweep_interval: Duration,
    /// How long a GC pass waits after a spec deletion, so that a burst of deletions is
    /// one pass. Default 500 ms.
    #[serde(with = "duration")]
    pub gc_debounce: Duration,
    /// How often Vault policy and role names are listed (Vault has no watch; policies and
    /// roles are listed on alternate ticks). Default 30 s; tests use ~200 ms.
    #[serde(with = "duration")]
    pub vault_poll_interval: Duration,
    /// How many owned Vault policies or roles have their content re-read on each poll
    /// tick (a rolling check that notices hand edits). Default 1.
    pub vault_checks_per_poll: usize,
    /// Wait of the blocking queries behind the watches (Consul caps it at 10 min; Nomad
    /// watches use at most 5 min, Nomad's cap). Default 10 min: an idle operator makes
    /// few requests.
    #[serde(with = "duration")]
    pub watch_wait: Duration,
    /// Leader election.
    pub leader: LeaderSettings,
    /// Create a missing Nomad namespace before registering a job in it (`steward dev`);
    /// when false, such a spec goes to phase `Error` naming the namespace. Default false.
    pub create_nomad_namespaces: bool,
    /// Where [`crate::Operator::run`] serves the HTTP API; `None` serves nothing (embed
    /// [`crate::Operator::api_router`] yourself). Default `127.0.0.1:7070`.
    pub listen: Option<SocketAddr>,
    /// Written on the leader lock key to say who holds it. Default `steward`.
    pub instance_name: String,
    /// The bearer token the API's mutating endpoints require; `None`: the API is
    /// read-only. Never read from or written to a config file (it is a secret): `steward
    /// run` takes it from `STEWARD_API_TOKEN` or `STEWARD_API_TOKEN_FILE`.
    #[serde(skip)]
    pub api_token: Option<crate::api_token::ApiToken>,
    /// What the servers can do, as start-up detection found it (`steward run` sets
    /// it; not read from a config file): the slower ways for older servers.
    #[serde(skip)]
    pub server_features: crate::detect::ServerFeatures,
    /// What start-up detection found (`steward run` sets it): shown in `/readyz`, the
    /// metrics and the conditions of the specs it touches. `None`: detection did not
    /// run (`steward dev`, embedders).
    #[serde(skip)]
    pub cluster: Option<crate::detect::Detected>,
}

/// How edge routes reach the edge (DESIGN: "Names and versions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeMode {
    /// Steward's xDS server programs the edge Envoys; no `http-route` entries are
    /// rendered or owned.
    Xds,
    /// `http-route` entries on Consul's API gateway (Consul >= 1.15).
    #[default]
    ConsulApiGateway,
    /// Both.
    Both,
}

impl EdgeMode {
    /// Whether the xDS server runs.
    #[must_use]
    pub const fn xds(self) -> bool {
        matches!(self, EdgeMode::Xds | EdgeMode::Both)
    }

    /// Whether `http-route` entries are rendered and owned.
    #[must_use]
    pub const fn api_gateway(self) -> bool {
        matches!(self, EdgeMode::ConsulApiGateway | EdgeMode::Both)
    }

    /// As written in a config file and on the command line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EdgeMode::Xds => "xds",
            EdgeMode::ConsulApiGateway => "consul-api-gateway",
            EdgeMode::Both => "both",
        }
    }
}

/// The edge control plane's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeSettings {
    /// The edge mode. Default `consul-api-gateway`.
    pub mode: EdgeMode,
    /// Where the xDS (ADS, gRPC) server listens; required when the mode includes xDS.
    pub xds_listen: Option<SocketAddr>,
    /// The HTTP listeners sent to an Envoy whose bootstrap names none of its own (the
    /// bootstrap `steward edge envoy-bootstrap` prints names one). Default: `edge-http`
    /// on `0.0.0.0:8080`.
    pub listeners: Vec<steward_edge::EdgeListener>,
    /// Why the mode differs from the one configured (start-up detection turned the
    /// api-gateway half off); shown in `/readyz` and in the edge condition. Not read
    /// from a config file.
    #[serde(skip)]
    pub degraded: Option<String>,
}

impl EdgeSettings {
    /// Turns the api-gateway half of the mode off when Consul lacks `http-route` and an
    /// xDS server is configured (issue #11: "edge routes over xDS only"), saying so in
    /// [`EdgeSettings::degraded`]. Returns whether it changed anything.
    pub fn degrade_for(&mut self, features: &crate::detect::ServerFeatures) -> bool {
        if features.consul_http_route || !self.mode.api_gateway() || self.xds_listen.is_none() {
            return false;
        }
        self.degraded = Some(format!(
            "Consul lacks the http-route config-entry kind: edge mode {} runs as xds \
             (no http-route entries; edge routes reach the edge over xDS only)",
            self.mode.as_str()
        ));
        self.mode = EdgeMode::Xds;
        true
    }
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            mode: EdgeMode::default(),
            xds_listen: None,
            listeners: vec![steward_edge::EdgeListener {
                name: "edge-http".to_owned(),
                address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            }],
            degraded: None,
        }
    }
}

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderSettings {
    /// Session TTL (Consul accepts 10 s to 24 h). Default 10 s: a crashed leader's
    /// session ends 10 to 20 s after its last renewal (Consul doubles the TTL), which
    /// bounds a crash failover. Renewals (every TTL/2) are the only cost of a short TTL.
    #[serde(with = "duration")]
    pub ttl: Duration,
    /// Lock delay after the leader's session is invalidated (Consul caps it at 60 s):
    /// how long a failover waits at least. Default 2 s. A short delay is safe because
    /// a leader steps down a whole TTL after its last renewal was sent, before Consul
    /// can end its session; its status writes are fenced by the session and its object
    /// writes are check-and-set, so a write still in flight cannot undo the new
    /// leader's. A graceful shutdown releases the lock first, which skips the delay.
    #[serde(with = "duration")]
    pub lock_delay: Duration,
    /// Pause after a failed acquisition (the lock delay, or a lost race). Default 1 s.
    #[serde(with = "duration")]
    pub retry_pause: Duration,
    /// Wait of the blocking reads of the lock key. Default 10 min (losing the session is
    /// noticed by the renewals, not by this read; a lock released by the leader wakes
    /// the followers at once).
    #[serde(with = "duration")]
    pub monitor_wait: Duration,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            lock_delay: Duration::from_secs(2),
            retry_pause: Duration::from_secs(1),
            monitor_wait: Duration::from_secs(600),
        }
    }
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            prefix: "steward".to_owned(),
            edge_gateway: GatewayRef::default(),
            edge: EdgeSettings::default(),
            jwt_auth_mount: steward_render::names::DEFAULT_JWT_AUTH_MOUNT.to_owned(),
            jwt_audience: steward_render::context::DEFAULT_JWT_AUDIENCE.to_owned(),
            policy: GuardrailPolicy::default(),
            concurrency: 64,
            max_reconcile_rate: 10_000.0,
            gc_max_share: 0.20,
            gc_max_count: 10,
            purge_on_delete: false,
            orphan_sweep_interval: Duration::from_secs(60),
            gc_debounce: Duration::from_millis(500),
            vault_poll_interval: Duration::from_secs(30),
            vault_checks_per_poll: 1,
            watch_wait: Duration::from_secs(600),
            leader: LeaderSettings::default(),
            create_nomad_namespaces: false,
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7070))),
            instance_name: "steward".to_owned(),
            api_token: None,
            server_features: crate::detect::ServerFeatures::default(),
            cluster: None,
        }
    }
}

impl OperatorConfig {
    /// Checks values that would make the operator misbehave.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| {
            Err(Error::Config {
                message: format!("{field}: {why}"),
            })
        };
        if self.edge.mode.xds() && self.edge.xds_listen.is_none() {
            return bad(
                "edge.xds_listen",
                "the edge mode includes xds, so the xDS server needs an address (--xds-listen)",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for l in &self.edge.listeners {
            if l.name.is_empty() || !names.insert(l.name.as_str()) {
                return bad(
                    "edge.listeners",
                    "every listener needs a name of its own (names must be unique and non-empty)",
                );
            }
        }
        let prefix_ok = !self.prefix.is_empty()
            && !self.prefix.starts_with('/')
            && !self.prefix.ends_with('/')
            && !self.prefix.contains("//")
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !prefix_ok {
            return bad(
                "prefix",
                "must be a KV path of [A-Za-z0-9._/-] without leading, trailing or double '/'",
            );
        }
        if self.concurrency == 0 {
            return bad("concurrency", "must be at least 1");
        }
        if let Some(addr) = self.listen
            && !addr.ip().is_loopback()
            && self.api_token.is_none()
        {
            return bad(
                "listen",
                &format!(
                    "{addr} is reachable from other machines, and without an API token anyone \
                     who reaches it could approve a mass deletion: set STEWARD_API_TOKEN or \
                     STEWARD_API_TOKEN_FILE, or listen on 127.0.0.1"
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.gc_max_share) {
            return bad("gc_max_share", "must be between 0 and 1");
        }
        if self.vault_poll_interval.is_zero() {
            return bad("vault_poll_interval", "must be positive");
        }
        if self.orphan_sweep_interval.is_zero() {
            return bad("orphan_sweep_interval", "must be positive");
        }
        if self.watch_wait < Duration::from_millis(1) {
            return bad("watch_wait", "must be at least 1 ms");
        }
        if self.leader.ttl.is_zero() {
            return bad("leader.ttl", "must be positive");
        }
        if self.leader.lock_delay > Duration::from_secs(60) {
            return bad("leader.lock_delay", "Consul caps the lock delay at 60 s");
        }
        if self.jwt_auth_mount.is_empty() || self.jwt_auth_mount.contains("//") {
            return bad("jwt_auth_mount", "must be a mount path");
        }
        Ok(())
    }

    /// `<prefix>/specs/`.
    #[must_use]
    pub fn specs_prefix(&self) -> String {
        format!("{}/specs/", self.prefix)
    }

    /// `<prefix>/status/`.
    #[must_use]
    pub fn status_prefix(&self) -> String {
        format!("{}/status/", self.prefix)
    }

    /// `<prefix>/leader`.
    #[must_use]
    pub fn leader_key(&self) -> String {
        format!("{}/leader", self.prefix)
    }
}

/// Serde for durations: `"30s"`-style strings or numbers of seconds.
mod duration {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(f64),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(text) => humantime::parse_duration(text.trim())
                .map_err(|e| D::Error::custom(format!("bad duration {text:?}: {e}"))),
            Raw::Seconds(secs) if secs.is_finite() && secs >= 0.0 => {
                Ok(Duration::from_secs_f64(secs))
            }
            Raw::Seconds(secs) => Err(D::Error::custom(format!("bad duration {secs}"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_xds_mode_needs_an_xds_address() {
        let mut c = OperatorConfig::default();
        c.edge.mode = EdgeMode::Xds;
        let e = c.validate().expect_err("refused");
        assert!(e.to_string().contains("edge.xds_listen"), "{e}");
        c.edge.xds_listen = Some(SocketAddr::from(([127, 0, 0, 1], 18000)));
        assert!(c.validate().is_ok());
        let json: OperatorConfig =
            serde_json::from_str(r#"{"edge": {"mode": "both", "xds_listen": "127.0.0.1:18000"}}"#)
                .expect("parses");
        assert_eq!(json.edge.mode, EdgeMode::Both);
    }

    #[test]
    fn without_http_route_an_xds_server_makes_the_edge_xds_only() {
        let lacking = crate::detect::ServerFeatures {
            consul_http_route: false,
            ..crate::detect::ServerFeatures::default()
        };
        let mut edge = EdgeSettings {
            mode: EdgeMode::Both,
            xds_listen: Some(SocketAddr::from(([127, 0, 0, 1], 18000))),
            ..EdgeSettings::default()
        };
        assert!(edge.degrade_for(&lacking));
        assert_eq!(edge.mode, EdgeMode::Xds);
        assert!(
            edge.degraded
                .as_deref()
                .is_some_and(|d| d.contains("http-route"))
        );
        // Without an xDS server there is nothing to fall back to: unchanged.
        let mut gateway_only = EdgeSettings::default();
        assert!(!gateway_only.degrade_for(&lacking));
        assert_eq!(gateway_only.mode, EdgeMode::ConsulApiGateway);
        // With http-route present nothing changes.
        let mut fine = edge.clone();
        fine.mode = EdgeMode::Both;
        assert!(!fine.degrade_for(&crate::detect::ServerFeatures::default()));
    }

    #[test]
    fn an_api_reachable_from_elsewhere_needs_a_token() {
        let mut c = OperatorConfig {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 7070))),
            ..OperatorConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("listen: 0.0.0.0:7070 is reachable"), "{err}");
        c.api_token = Some(crate::api_token::ApiToken::new("0123456789abcdef").unwrap());
        assert!(c.validate().is_ok());
        // Loopback, or no API at all, is fine without one.
        for listen in [Some(SocketAddr::from(([127, 0, 0, 1], 7070))), None] {
            let c = OperatorConfig {
                listen,
                ..OperatorConfig::default()
            };
            assert!(c.validate().is_ok(), "{listen:?}");
        }
        let v6 = OperatorConfig {
            listen: Some("[::]:7070".parse().unwrap()),
            ..OperatorConfig::default()
        };
        assert!(v6.validate().is_err());
    }

    #[test]
    fn defaults_follow_the_design() {
        let c = OperatorConfig::default();
        assert_eq!(c.prefix, "steward");
        assert_eq!(c.concurrency, 64);
        assert!((c.gc_max_share - 0.2).abs() < f64::EPSILON);
        assert_eq!(c.gc_max_count, 10);
        assert!(!c.purge_on_delete);
        assert_eq!(c.orphan_sweep_interval, Duration::from_secs(60));
        assert_eq!(c.vault_poll_interval, Duration::from_secs(30));
        assert_eq!(c.leader.ttl, Duration::from_secs(10));
        assert_eq!(c.leader.lock_delay, Duration::from_secs(2));
        assert!(!c.create_nomad_namespaces);
        assert_eq!(c.edge_gateway.name, "edge");
        c.validate().unwrap();
        assert_eq!(c.specs_prefix(), "steward/specs/");
        assert_eq!(c.status_prefix(), "steward/status/");
        assert_eq!(c.leader_key(), "steward/leader");
    }

    #[test]
    fn a_config_file_may_give_any_subset_and_durations_in_either_form() {
        let c: OperatorConfig = serde_json::from_value(serde_json::json!({
            "prefix": "ops/steward",
            "orphan_sweep_interval": 90,
            "gc_debounce": "250ms",
            "leader": {"lock_delay": "1s"},
            "listen": null,
            "create_nomad_namespaces": true
        }))
        .unwrap();
        assert_eq!(c.prefix, "ops/steward");
        assert_eq!(c.orphan_sweep_interval, Duration::from_secs(90));
        assert_eq!(c.gc_debounce, Duration::from_millis(250));
        assert_eq!(c.leader.lock_delay, Duration::from_secs(1));
        assert_eq!(
            c.leader.ttl,
            Duration::from_secs(10),
            "unset fields keep defaults"
        );
        assert_eq!(c.listen, None);
        assert!(c.create_nomad_namespaces);
        let back = serde_json::to_value(&c).unwrap();
        let again: OperatorConfig = serde_json::from_value(back).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(
            serde_json::from_value::<OperatorConfig>(serde_json::json!({"prefx": "x"})).is_err()
        );
        assert!(
            serde_json::from_value::<OperatorConfig>(
                serde_json::json!({"vault_poll_interval": "soon"})
            )
            .is_err()
        );
        for bad in [
            OperatorConfig {
                prefix: "/steward".into(),
                ..OperatorConfig::default()
            },
            OperatorConfig {
                concurrency: 0,
                ..OperatorConfig::default()
            },
            OperatorConfig {
                gc_max_share: 1.5,
                ..OperatorConfig::default()
            },
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("invalid operator configuration"), "{err}");
        }
    }
}
