//! What to run: the scenario and its sizes.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// One benchmark scenario (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// N specs pushed at once into a running operator.
    Cold,
    /// Single-spec edits one after another, N loaded.
    Change,
    /// Hand edits of owned Nomad jobs.
    Drift,
    /// Idle with N converged.
    Steady,
    /// The leader killed; a follower takes over.
    Failover,
    /// Every scenario in turn on one loaded simulator.
    All,
}

impl Scenario {
    /// The name used on the command line and in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Change => "change",
            Scenario::Drift => "drift",
            Scenario::Steady => "steady",
            Scenario::Failover => "failover",
            Scenario::All => "all",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sizes and settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchConfig {
    /// Scenario.
    pub scenario: Scenario,
    /// Specs loaded (each: Nomad job, intentions, Vault policy and role, http-route).
    pub specs: usize,
    /// Latency added to every simulated request of every product.
    #[serde(rename = "rtt_ms", serialize_with = "millis")]
    pub rtt: Duration,
    /// Edits of the `change` scenario.
    pub changes: usize,
    /// Hand edits of the `drift` scenario.
    pub drifts: usize,
    /// Idle period of the `steady` scenario.
    #[serde(rename = "idle_s", serialize_with = "seconds")]
    pub idle: Duration,
    /// The operator's `concurrency` (reconciles at once).
    pub concurrency: usize,
    /// Nomad namespaces the specs are spread over.
    pub namespaces: usize,
    /// Leader session TTL (production default 30 s).
    #[serde(rename = "leader_ttl_s", serialize_with = "seconds")]
    pub leader_ttl: Duration,
    /// Leader lock delay (production default 15 s).
    #[serde(rename = "lock_delay_s", serialize_with = "seconds")]
    pub lock_delay: Duration,
    /// Bound of every wait of the harness.
    #[serde(rename = "timeout_s", serialize_with = "seconds")]
    pub timeout: Duration,
}

impl Default for BenchConfig {
    fn default() -> Self {
        let production = steward_operator::LeaderSettings::default();
        Self {
            scenario: Scenario::Cold,
            specs: 10_000,
            rtt: Duration::ZERO,
            changes: 200,
            drifts: 50,
            idle: Duration::from_secs(60),
            concurrency: steward_operator::OperatorConfig::default().concurrency,
            namespaces: 10,
            leader_ttl: production.ttl,
            lock_delay: production.lock_delay,
            timeout: Duration::from_secs(600),
        }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
