//! Request counters per product, method and route, so tests and benchmarks can assert
//! things like "a converged pass makes zero writes".

use crate::Product;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Route label for requests answered by an injected fault before routing.
pub const INJECTED_ROUTE: &str = "<injected-fault>";
/// Route label for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// What one counter counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StatKey {
    /// Product.
    pub product: Product,
    /// HTTP method, upper case (`LIST` for Vault's LIST verb).
    pub method: String,
    /// Route template, e.g. `/v1/kv/{*key}`.
    pub route: String,
}

impl StatKey {
    /// Whether this request changes state on the server: a mutating method on a route
    /// that is not a dry run (`plan`, `validate`, `parse`) or a session renewal (which
    /// real Consul keeps in memory, not in the Raft log).
    pub fn is_write(&self) -> bool {
        let mutating = matches!(self.method.as_str(), "PUT" | "POST" | "DELETE" | "PATCH");
        let dry_run = self.route.ends_with("/plan")
            || self.route.starts_with("/v1/validate/")
            || self.route.starts_with("/v1/jobs/parse")
            || self.route.starts_with("/v1/session/renew")
            // Vault answers capability queries through POST; they change nothing.
            || self.route.starts_with("/v1/sys/capabilities")
            || self.route.starts_with("/_sim/");
        mutating && !dry_run && self.route != INJECTED_ROUTE
    }
}

/// One row of [`RequestStats::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatRow {
    /// What was counted.
    #[serde(flatten)]
    pub key: StatKey,
    /// How many requests.
    pub count: u64,
}

/// Request counters. Cheap to clone; clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    counts: Arc<Mutex<BTreeMap<StatKey, u64>>>,
    statuses: Arc<Mutex<BTreeMap<(Product, u16), u64>>>,
}

impl RequestStats {
    /// Counts one request.
    pub fn record(&self, product: Product, method: &str, route: &str, status: u16) {
        let key = StatKey {
            product,
            method: method.to_string(),
            route: route.to_string(),
        };
        *self.counts.lock().entry(key).or_insert(0) += 1;
        *self.statuses.lock().entry((product, status)).or_insert(0) += 1;
    }

    /// Every counter, sorted.
    pub fn snapshot(&self) -> Vec<StatRow> {
        self.counts
            .lock()
            .iter()
            .map(|(k, v)| StatRow {
                key: k.clone(),
                count: *v,
            })
            .collect()
    }

    /// Requests answered with each status, per product.
    pub fn statuses(&self) -> Vec<(Product, u16, u64)> {
        self.statuses
            .lock()
            .iter()
            .map(|((p, s), n)| (*p, *s, *n))
            .collect()
    }

    /// Requests to one product and route with one method.
    pub fn count(&self, product: Product, method: &str, route: &str) -> u64 {
        let key = StatKey {
            product,
            method: method.to_string(),
            route: route.to_string(),
        };
        self.counts.lock().get(&key).copied().unwrap_or(0)
    }

    /// Every request to one product.
    pub fn total(&self, product: Product) -> u64 {
        self.counts
            .lock()
            .iter()
            .filter(|(k, _)| k.product == product)
            .map(|(_, v)| v)
            .sum()
    }

    /// State-changing requests to one product (see [`StatKey::is_write`]).
    pub fn writes(&self, product: Product) -> u64 {
        self.counts
            .lock()
            .iter()
            .filter(|(k, _)| k.product == product && k.is_write())
            .map(|(_, v)| v)
            .sum()
    }

    /// State-changing requests to every product.
    pub fn all_writes(&self) -> u64 {
        Product::ALL.iter().map(|p| self.writes(*p)).sum()
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.counts.lock().clear();
        self.statuses.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_exclude_reads_dry_runs_and_renewals() {
        let s = RequestStats::default();
        s.record(Product::Consul, "GET", "/v1/kv/{*key}", 200);
        s.record(Product::Consul, "PUT", "/v1/kv/{*key}", 200);
        s.record(Product::Consul, "PUT", "/v1/session/renew/{id}", 200);
        s.record(Product::Nomad, "PUT", "/v1/job/{id}/plan", 200);
        s.record(Product::Nomad, "PUT", "/v1/jobs", 200);
        s.record(Product::Vault, "LIST", "/v1/sys/policies/acl", 200);
        s.record(Product::Vault, "POST", "/v1/sys/capabilities-self", 200);
        assert_eq!(s.writes(Product::Consul), 1);
        assert_eq!(s.writes(Product::Nomad), 1);
        assert_eq!(s.writes(Product::Vault), 0);
        assert_eq!(s.total(Product::Consul), 3);
        assert_eq!(s.count(Product::Consul, "PUT", "/v1/kv/{*key}"), 1);
        s.reset();
        assert_eq!(s.all_writes(), 0);
    }
}
