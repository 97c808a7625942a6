//! The key of the work queue: a spec's KV key below the specs prefix.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use steward_render::names;

/// A spec key as the work queue carries it: the KV key below `<prefix>/specs/`,
/// normally `<ns>/<name>`.
///
/// Lenient on purpose: KV may hold a key that is not a valid `<ns>/<name>` (a typo, a
/// nested path), and the reconcile of such a key must still run to report it as an
/// `Invalid` status. A queue of [`names::SpecKey`] could not carry it, so this type
/// holds the key as written and [`SpecKey::parse`] gives the strict form where it is
/// valid. An `Arc<str>` keeps it one pointer-sized clone: the queue, the controller
/// and every trigger copy keys freely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpecKey(Arc<str>);

impl SpecKey {
    /// The key as written in KV (below the specs prefix).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The strict `<ns>/<name>` form, when the key is one.
    #[must_use]
    pub fn parse(&self) -> Option<names::SpecKey> {
        names::SpecKey::parse(&self.0)
    }
}

impl fmt::Debug for SpecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SpecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SpecKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SpecKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SpecKey {
    fn from(key: &str) -> Self {
        Self(Arc::from(key))
    }
}

impl From<String> for SpecKey {
    fn from(key: String) -> Self {
        Self(Arc::from(key))
    }
}

impl From<&String> for SpecKey {
    fn from(key: &String) -> Self {
        Self::from(key.as_str())
    }
}

impl From<&names::SpecKey> for SpecKey {
    fn from(key: &names::SpecKey) -> Self {
        Self::from(key.to_string())
    }
}

impl PartialEq<str> for SpecKey {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SpecKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_ns_slash_name_is_still_a_key() {
        let odd = SpecKey::from("shop/web/extra");
        assert_eq!(odd.as_str(), "shop/web/extra");
        assert!(odd.parse().is_none());
        let good = SpecKey::from("shop/web");
        assert_eq!(good.parse(), Some(names::SpecKey::new("shop", "web")));
        assert_eq!(good, "shop/web");
        assert_eq!(SpecKey::from(&names::SpecKey::new("shop", "web")), good);
    }
}
