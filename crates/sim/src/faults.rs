//! Fault injection, per product and optionally per path prefix, deterministic for a
//! given seed. Driven through [`FaultController`] (from tests, through the handle) and
//! through the admin endpoint `/_sim/v1/faults` (see [`crate::admin`]).
//!
//! Request-level faults (latency, error status, connection reset, stall) are applied by
//! the server before a request reaches the product; the after-commit faults let the
//! product handle it (a write lands) and then lose its answer. State-level faults (index reset,
//! leader loss, Vault sealed, failing Nomad allocations) are read by the products.

use crate::Product;
use crate::product::ProductState;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// A request-level fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Assigned by the controller when the rule is added.
    #[serde(default)]
    pub id: u64,
    /// Product whose API the rule applies to.
    pub product: Product,
    /// Only requests whose path starts with this (e.g. `/v1/kv/steward/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Only these HTTP methods (upper case); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Stop after firing this many times; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// What the rule does.
    #[serde(flatten)]
    pub kind: FaultRuleKind,
}

/// What a request-level fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FaultRuleKind {
    /// Adds `fixed_ms` plus a uniform random `0..=jitter_ms` before every matching request.
    Latency {
        /// Fixed delay.
        fixed_ms: u64,
        /// Random extra delay, uniform.
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Answers with `status` (500, 503, 429, …) and the product's error body, with
    /// probability `rate`.
    Error {
        /// Status to answer with.
        status: u16,
        /// Probability in 0..=1.
        #[serde(default = "one")]
        rate: f64,
    },
    /// Closes the connection without any response, with probability `rate`.
    Reset {
        /// Probability in 0..=1.
        #[serde(default = "one")]
        rate: f64,
    },
    /// Handles the request (a write lands), then answers `status` with the product's
    /// error body instead of its real answer, with probability `rate`: an answer lost
    /// after the commit, as when a server fails between applying a write and replying.
    ErrorAfterCommit {
        /// Status to answer with.
        status: u16,
        /// Probability in 0..=1.
        #[serde(default = "one")]
        rate: f64,
    },
    /// Handles the request (a write lands), then closes the connection without the
    /// answer, with probability `rate`.
    ResetAfterCommit {
        /// Probability in 0..=1.
        #[serde(default = "one")]
        rate: f64,
    },
    /// Holds the request for `stall_ms` before handling it, with probability `rate`
    /// (clients with shorter timeouts see a stalled server).
    Stall {
        /// How long to hold the request.
        stall_ms: u64,
        /// Probability in 0..=1.
        #[serde(default = "one")]
        rate: f64,
    },
}

fn one() -> f64 {
    1.0
}

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handle it normally.
    Pass,
    /// Answer with this status and the product's error body.
    Error(u16),
    /// Drop the connection without answering.
    Reset,
    /// Hold the request this long, then handle it.
    Stall(Duration),
    /// Handle it, then answer with this status and the product's error body.
    ErrorAfterCommit(u16),
    /// Handle it, then drop the connection without answering.
    ResetAfterCommit,
}

/// The decision for one request: a delay, then an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Added latency before the outcome.
    pub delay: Duration,
    /// What happens after the delay.
    pub outcome: Outcome,
}

/// Controls every fault. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct FaultController {
    inner: Arc<Inner>,
}

struct Inner {
    rng: Mutex<StdRng>,
    next_id: AtomicU64,
    rules: Mutex<Vec<FaultRule>>,
    /// Leader lost until this instant (`None` inside = until cleared).
    leader_lost: Mutex<HashMap<Product, Option<Instant>>>,
    vault_sealed: AtomicBool,
    failing_jobs: Mutex<BTreeSet<(String, String)>>,
    states: Mutex<HashMap<Product, Weak<dyn ProductState>>>,
}

impl std::fmt::Debug for FaultController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultController")
            .field("rules", &*self.inner.rules.lock())
            .finish()
    }
}

/// A serialisable view of every active fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultsView {
    /// Request-level rules.
    pub rules: Vec<FaultRule>,
    /// Products currently without a known leader.
    pub leader_lost: Vec<Product>,
    /// Whether Vault is sealed.
    pub vault_sealed: bool,
    /// Nomad jobs (`namespace`, `job`) whose allocations fail.
    pub failing_jobs: Vec<(String, String)>,
}

impl FaultController {
    /// A controller with no faults, whose random decisions follow `seed`.
    pub fn new(seed: u64) -> Self {
        FaultController {
            inner: Arc::new(Inner {
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                next_id: AtomicU64::new(1),
                rules: Mutex::new(Vec::new()),
                leader_lost: Mutex::new(HashMap::new()),
                vault_sealed: AtomicBool::new(false),
                failing_jobs: Mutex::new(BTreeSet::new()),
                states: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn register_state(&self, state: Weak<dyn ProductState>, product: Product) {
        self.inner.states.lock().insert(product, state);
    }

    /// Adds a request-level rule and returns its id.
    pub fn add(&self, mut rule: FaultRule) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        rule.id = id;
        self.inner.rules.lock().push(rule);
        id
    }

    /// Convenience: adds a rule for `product` with no path or method filter.
    pub fn inject(&self, product: Product, kind: FaultRuleKind) -> u64 {
        self.add(FaultRule {
            id: 0,
            product,
            path_prefix: None,
            methods: None,
            count: None,
            kind,
        })
    }

    /// Removes one rule; `false` when no rule has that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.inner.rules.lock();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Removes every fault of every kind (rules, leader loss, seal, failing jobs).
    pub fn clear(&self) {
        self.inner.rules.lock().clear();
        self.inner.leader_lost.lock().clear();
        self.inner.vault_sealed.store(false, Ordering::SeqCst);
        self.inner.failing_jobs.lock().clear();
    }

    /// Every active fault.
    pub fn view(&self) -> FaultsView {
        let now = Instant::now();
        let mut leader_lost: Vec<Product> = self
            .inner
            .leader_lost
            .lock()
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
            .map(|(p, _)| *p)
            .collect();
        leader_lost.sort();
        FaultsView {
            rules: self.inner.rules.lock().clone(),
            leader_lost,
            vault_sealed: self.vault_sealed(),
            failing_jobs: self.inner.failing_jobs.lock().iter().cloned().collect(),
        }
    }

    /// Decides what happens to one request. Deterministic for a given seed and
    /// sequence of requests.
    pub fn decide(&self, product: Product, method: &str, path: &str) -> Decision {
        let mut rules = self.inner.rules.lock();
        if rules.is_empty() {
            return Decision {
                delay: Duration::ZERO,
                outcome: Outcome::Pass,
            };
        }
        let mut rng = self.inner.rng.lock();
        let mut delay = Duration::ZERO;
        let mut outcome = Outcome::Pass;
        for rule in rules.iter_mut() {
            if rule.product != product
                || rule.count == Some(0)
                || rule
                    .path_prefix
                    .as_deref()
                    .is_some_and(|p| !path.starts_with(p))
                || rule
                    .methods
                    .as_ref()
                    .is_some_and(|m| !m.iter().any(|m| m.eq_ignore_ascii_case(method)))
            {
                continue;
            }
            let fired = match &rule.kind {
                FaultRuleKind::Latency {
                    fixed_ms,
                    jitter_ms,
                } => {
                    let jitter = if *jitter_ms > 0 {
                        rng.random_range(0..=*jitter_ms)
                    } else {
                        0
                    };
                    delay += Duration::from_millis(fixed_ms + jitter);
                    true
                }
                FaultRuleKind::Error { status, rate } => {
                    let hit = outcome == Outcome::Pass && rng.random_bool(rate.clamp(0.0, 1.0));
                    if hit {
                        outcome = Outcome::Error(*status);
                    }
                    hit
                }
                FaultRuleKind::Reset { rate } => {
                    let hit = outcome == Outcome::Pass && rng.random_bool(rate.clamp(0.0, 1.0));
                    if hit {
                        outcome = Outcome::Reset;
                    }
                    hit
                }
                FaultRuleKind::ErrorAfterCommit { status, rate } => {
                    let hit = outcome == Outcome::Pass && rng.random_bool(rate.clamp(0.0, 1.0));
                    if hit {
                        outcome = Outcome::ErrorAfterCommit(*status);
                    }
                    hit
                }
                FaultRuleKind::ResetAfterCommit { rate } => {
                    let hit = outcome == Outcome::Pass && rng.random_bool(rate.clamp(0.0, 1.0));
                    if hit {
                        outcome = Outcome::ResetAfterCommit;
                    }
                    hit
                }
                FaultRuleKind::Stall { stall_ms, rate } => {
                    let hit = outcome == Outcome::Pass && rng.random_bool(rate.clamp(0.0, 1.0));
                    if hit {
                        outcome = Outcome::Stall(Duration::from_millis(*stall_ms));
                    }
                    hit
                }
            };
            if fired && let Some(c) = rule.count.as_mut() {
                *c -= 1;
            }
        }
        rules.retain(|r| r.count != Some(0));
        Decision { delay, outcome }
    }

    /// Starts a leader-loss window: Consul/Nomad answer 500 `No cluster leader` to
    /// consistent requests and report `KnownLeader: false`. `None` = until cleared.
    pub fn lose_leader(&self, product: Product, window: Option<Duration>) {
        let until = window.map(|w| Instant::now() + w);
        self.inner.leader_lost.lock().insert(product, until);
    }

    /// Ends a leader-loss window.
    pub fn restore_leader(&self, product: Product) {
        self.inner.leader_lost.lock().remove(&product);
    }

    /// Whether the product currently has a leader.
    pub fn leader_known(&self, product: Product) -> bool {
        let mut lost = self.inner.leader_lost.lock();
        match lost.get(&product) {
            None => true,
            Some(Some(until)) if *until <= Instant::now() => {
                lost.remove(&product);
                true
            }
            Some(_) => false,
        }
    }

    /// Seals or unseals Vault.
    pub fn set_vault_sealed(&self, sealed: bool) {
        self.inner.vault_sealed.store(sealed, Ordering::SeqCst);
    }

    /// Whether Vault is sealed.
    pub fn vault_sealed(&self) -> bool {
        self.inner.vault_sealed.load(Ordering::SeqCst)
    }

    /// Makes the allocations of one Nomad job fail (its deployments fail, and revert
    /// when the job's update block says `AutoRevert`), or stops doing so.
    pub fn set_job_failing(&self, namespace: &str, job: &str, failing: bool) {
        let key = (namespace.to_string(), job.to_string());
        let mut jobs = self.inner.failing_jobs.lock();
        if failing {
            jobs.insert(key);
        } else {
            jobs.remove(&key);
        }
    }

    /// Whether allocations of this job are made to fail.
    pub fn job_failing(&self, namespace: &str, job: &str) -> bool {
        self.inner
            .failing_jobs
            .lock()
            .contains(&(namespace.to_string(), job.to_string()))
    }

    /// Simulates a snapshot restore of `product`: every index goes backwards, once.
    /// Blocked Consul reads answer at once with the lower index; blocked Nomad reads
    /// stay blocked until their index is passed or their wait ends (as each server's
    /// blocking loop treats an abandoned state store, see `blocking::OnRestore`).
    /// Returns `false` when the product is not running.
    pub fn reset_indexes(&self, product: Product) -> bool {
        let state = self
            .inner
            .states
            .lock()
            .get(&product)
            .and_then(Weak::upgrade);
        match state {
            Some(state) => {
                state.reset_indexes();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(seed: u64) -> Vec<Outcome> {
        let f = FaultController::new(seed);
        f.inject(
            Product::Consul,
            FaultRuleKind::Error {
                status: 503,
                rate: 0.5,
            },
        );
        (0..50)
            .map(|_| f.decide(Product::Consul, "GET", "/v1/kv/x").outcome)
            .collect()
    }

    #[test]
    fn decisions_are_deterministic_for_a_seed() {
        assert_eq!(decisions(7), decisions(7));
        let d = decisions(7);
        assert!(d.contains(&Outcome::Error(503)) && d.contains(&Outcome::Pass));
    }

    #[test]
    fn rules_match_product_path_and_method_and_expire_after_count() {
        let f = FaultController::new(1);
        f.add(FaultRule {
            id: 0,
            product: Product::Nomad,
            path_prefix: Some("/v1/jobs".into()),
            methods: Some(vec!["PUT".into()]),
            count: Some(2),
            kind: FaultRuleKind::Reset { rate: 1.0 },
        });
        assert_eq!(
            f.decide(Product::Consul, "PUT", "/v1/jobs").outcome,
            Outcome::Pass
        );
        assert_eq!(
            f.decide(Product::Nomad, "GET", "/v1/jobs").outcome,
            Outcome::Pass
        );
        assert_eq!(
            f.decide(Product::Nomad, "PUT", "/v1/job/x").outcome,
            Outcome::Pass
        );
        assert_eq!(
            f.decide(Product::Nomad, "PUT", "/v1/jobs").outcome,
            Outcome::Reset
        );
        assert_eq!(
            f.decide(Product::Nomad, "PUT", "/v1/jobs").outcome,
            Outcome::Reset
        );
        assert_eq!(
            f.decide(Product::Nomad, "PUT", "/v1/jobs").outcome,
            Outcome::Pass
        );
        assert!(f.view().rules.is_empty());
    }

    #[test]
    fn latency_adds_up_and_stays_within_jitter() {
        let f = FaultController::new(1);
        f.inject(
            Product::Vault,
            FaultRuleKind::Latency {
                fixed_ms: 10,
                jitter_ms: 5,
            },
        );
        f.inject(
            Product::Vault,
            FaultRuleKind::Latency {
                fixed_ms: 1,
                jitter_ms: 0,
            },
        );
        for _ in 0..20 {
            let d = f.decide(Product::Vault, "GET", "/v1/sys/health").delay;
            assert!(
                d >= Duration::from_millis(11) && d <= Duration::from_millis(16),
                "{d:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_loss_window_ends_by_itself() {
        let f = FaultController::new(1);
        f.lose_leader(Product::Consul, Some(Duration::from_secs(2)));
        assert!(!f.leader_known(Product::Consul));
        assert!(f.leader_known(Product::Nomad));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(f.leader_known(Product::Consul));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let json =
            r#"{"product":"consul","pathPrefix":"/v1/kv","kind":"error","status":429,"rate":0.25}"#;
        let rule: FaultRule = serde_json::from_str(json).expect("parses");
        assert_eq!(
            rule.kind,
            FaultRuleKind::Error {
                status: 429,
                rate: 0.25
            }
        );
        let back = serde_json::to_value(&rule).expect("serialises");
        assert_eq!(back["kind"], "error");
        assert_eq!(back["pathPrefix"], "/v1/kv");
    }
}
