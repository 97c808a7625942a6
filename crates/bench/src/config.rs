//! What to run: the scenario and its sizes.

use std::fmt;
use std::path::PathBuf;
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

/// Where the simulator runs, which decides what the memory and CPU figures can separate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimPlacement {
    /// `steward sim` as a child process of the bench, on loopback ephemeral ports,
    /// stopped (killed and reaped) when the run ends or fails. The bench process then
    /// holds only the operators and the harness, so its peak RSS is the operators' own,
    /// and the child's peak RSS and CPU time are read from `/proc/<pid>`.
    Child {
        /// The `steward` binary to run as `<program> sim …` (`None`: this executable).
        program: Option<PathBuf>,
    },
    /// The simulator on its own runtime inside the bench process (the figures before
    /// the simulator could run apart): the peak RSS mixes operators and simulator.
    InProcess,
    /// An already running `steward sim` (started by someone who wants to watch it); its
    /// memory and CPU are not measured.
    External(SimAddresses),
}

impl SimPlacement {
    /// The name used on the command line and in reports.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            SimPlacement::Child { .. } => "child",
            SimPlacement::InProcess => "in-process",
            SimPlacement::External(_) => "external",
        }
    }
}

impl fmt::Display for SimPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for SimPlacement {
    fn default() -> Self {
        SimPlacement::Child { program: None }
    }
}

impl Serialize for SimPlacement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The base URLs of a running simulator (`http://127.0.0.1:8500`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimAddresses {
    /// Consul API.
    pub consul: String,
    /// Nomad API.
    pub nomad: String,
    /// Vault API (root token `root`).
    pub vault: String,
}

/// Sizes and settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchConfig {
    /// Scenario.
    pub scenario: Scenario,
    /// Where the simulator runs (`child`, `in-process`, `external`).
    pub sim: SimPlacement,
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
            sim: SimPlacement::default(),
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
