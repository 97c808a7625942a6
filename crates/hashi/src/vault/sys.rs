//! Vault `sys/health` and `auth/token/lookup-self` (reference §7.2, §7.7).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::request::RequestSpec;
use crate::response::RawResponse;
use crate::util::null_default;

/// Server state by `sys/health` status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// 200: initialized, unsealed, active.
    Active,
    /// 429: unsealed standby.
    Standby,
    /// 472: disaster-recovery secondary.
    DrSecondary,
    /// 473: performance standby.
    PerformanceStandby,
    /// 501: not initialized.
    Uninitialized,
    /// 503: sealed.
    Sealed,
    /// Any other status (custom codes).
    Other(u16),
}

impl HealthState {
    /// Maps the status code.
    pub fn from_status(status: u16) -> Self {
        match status {
            200 => HealthState::Active,
            429 => HealthState::Standby,
            472 => HealthState::DrSecondary,
            473 => HealthState::PerformanceStandby,
            501 => HealthState::Uninitialized,
            503 => HealthState::Sealed,
            s => HealthState::Other(s),
        }
    }

    /// True when the node can serve requests (active or a standby that forwards).
    pub fn is_serving(self) -> bool {
        matches!(
            self,
            HealthState::Active | HealthState::Standby | HealthState::PerformanceStandby
        )
    }
}

/// Body of `sys/health`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct HealthBody {
    /// Initialized.
    #[serde(default)]
    pub initialized: bool,
    /// Sealed.
    #[serde(default)]
    pub sealed: bool,
    /// Standby.
    #[serde(default)]
    pub standby: bool,
    /// Performance standby.
    #[serde(default)]
    pub performance_standby: bool,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Cluster name.
    #[serde(default)]
    pub cluster_name: String,
    /// Cluster ID.
    #[serde(default)]
    pub cluster_id: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Result of a health check.
#[derive(Clone, Debug, PartialEq)]
pub struct VaultHealth {
    /// State from the status code.
    pub state: HealthState,
    /// The body (default when the body was empty, e.g. on HEAD).
    pub body: HealthBody,
}

/// `GET /v1/sys/health` accepting every documented status.
pub fn health() -> RequestSpec {
    RequestSpec::get("/v1/sys/health").accept(&[429, 472, 473, 501, 503])
}

/// Decodes a health answer.
///
/// # Errors
/// `Decode` for a body that is not the health JSON.
pub fn parse_health(raw: &RawResponse) -> Result<VaultHealth> {
    let body = if raw.body.iter().all(u8::is_ascii_whitespace) {
        HealthBody::default()
    } else {
        raw.json()?
    };
    Ok(VaultHealth {
        state: HealthState::from_status(raw.status),
        body,
    })
}

/// The token description from `lookup-self` (the token itself is not kept).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TokenInfo {
    /// Accessor (not secret).
    #[serde(default)]
    pub accessor: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Policies.
    #[serde(default, deserialize_with = "null_default")]
    pub policies: Vec<String>,
    /// Remaining TTL in seconds (0 = never expires).
    #[serde(default)]
    pub ttl: u64,
    /// Expiry time (RFC 3339) or `None`.
    #[serde(default)]
    pub expire_time: Option<String>,
    /// Renewable.
    #[serde(default)]
    pub renewable: bool,
    /// `service` or `batch`.
    #[serde(rename = "type", default)]
    pub token_type: String,
    /// Entity ID.
    #[serde(default)]
    pub entity_id: String,
    /// Creation path.
    #[serde(default)]
    pub path: String,
    /// Orphan token.
    #[serde(default)]
    pub orphan: bool,
}

/// `GET /v1/auth/token/lookup-self`.
pub fn lookup_self() -> RequestSpec {
    RequestSpec::get("/v1/auth/token/lookup-self")
}

/// Decodes `lookup-self`.
///
/// # Errors
/// `Decode` for a bad envelope.
pub fn parse_lookup_self(raw: &RawResponse) -> Result<TokenInfo> {
    super::parse_data(raw)
}
