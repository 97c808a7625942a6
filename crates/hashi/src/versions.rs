//! The oldest Consul, Nomad and Vault versions Steward supports, declared once, and
//! the version parsing `steward doctor` (and start-up detection) compare with.
//!
//! Why these minimums: Consul 1.16 has the `api-gateway`/`http-route` kinds with their
//! status controller (1.15 added them); Nomad 1.10 carries job `Meta` in list stubs,
//! `namespace=*` on the event stream and deployments, and Vault workload identities
//! only; Vault 1.15 is the oldest release whose JWT auth and policy API answer as the
//! reference describes (reference §10 lists what older servers do instead).

use std::fmt;

use serde_json::Value;

use crate::error::Product;

/// A `major.minor.patch` release number; pre-release and build suffixes are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl Version {
    /// A version from its parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `1.21.4`, `v1.10.0-beta.1`, `1.18.3+ent` or `1.16`; `None` when the text
    /// does not start with `major.minor`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+', ' ']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Oldest supported Consul.
pub const CONSUL_MIN: Version = Version::new(1, 16, 0);
/// Oldest supported Nomad.
pub const NOMAD_MIN: Version = Version::new(1, 10, 0);
/// Oldest supported Vault.
pub const VAULT_MIN: Version = Version::new(1, 15, 0);

/// The oldest supported version of a product.
pub fn minimum(product: Product) -> Version {
    match product {
        Product::Consul => CONSUL_MIN,
        Product::Nomad => NOMAD_MIN,
        Product::Vault => VAULT_MIN,
    }
}

/// Whether `version` of `product` is supported.
pub fn is_supported(product: Product, version: Version) -> bool {
    version >= minimum(product)
}

/// The version in Consul's `/v1/agent/self` (`Config.Version`).
pub fn consul_version(agent_self: &Value) -> Option<&str> {
    agent_self
        .pointer("/Config/Version")
        .and_then(Value::as_str)
}

/// The version in Nomad's `/v1/agent/self`: `config.Version.Version` (an object since
/// Nomad 0.x's agent config grew build info), a plain `config.Version` string, or the
/// member's `build` tag.
pub fn nomad_version(agent_self: &Value) -> Option<&str> {
    agent_self
        .pointer("/config/Version/Version")
        .or_else(|| agent_self.pointer("/config/Version"))
        .and_then(Value::as_str)
        .or_else(|| {
            agent_self
                .pointer("/member/Tags/build")
                .and_then(Value::as_str)
        })
}

/// The version in Vault's `/v1/sys/health` (`version`).
pub fn vault_version(health: &Value) -> Option<&str> {
    health.get("version").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_and_without_suffixes() {
        assert_eq!(Version::parse("1.21.4"), Some(Version::new(1, 21, 4)));
        assert_eq!(
            Version::parse("v1.10.0-beta.1"),
            Some(Version::new(1, 10, 0))
        );
        assert_eq!(Version::parse("1.18.3+ent"), Some(Version::new(1, 18, 3)));
        assert_eq!(Version::parse("1.16"), Some(Version::new(1, 16, 0)));
        assert_eq!(Version::parse("dev"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn minimums_compare_numerically_not_as_text() {
        assert!(is_supported(Product::Nomad, Version::new(1, 10, 0)));
        assert!(!is_supported(Product::Nomad, Version::new(1, 9, 7)));
        assert!(is_supported(Product::Consul, Version::new(1, 21, 4)));
        assert!(!is_supported(Product::Consul, Version::new(1, 10, 12)));
        assert!(!is_supported(Product::Vault, Version::new(1, 7, 3)));
        assert_eq!(minimum(Product::Vault).to_string(), "1.15.0");
    }
}
