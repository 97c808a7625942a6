//! Vault access: paths and capabilities.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Access to one Vault path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretAccess {
    /// Vault API path (KV v2 paths include `data/` or `metadata/`), e.g.
    /// `secret/data/trading/order-api/*`. No leading `/`, at least a mount and one
    /// segment before any wildcard, `*` only as the last character, `+` only as a whole
    /// segment. Required.
    pub path: String,
    /// Vault capabilities on the path (at least one). Required.
    pub capabilities: Vec<Capability>,
}

/// A Vault ACL capability.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Create new data at the path.
    Create,
    /// Read data at the path.
    Read,
    /// Change existing data at the path.
    Update,
    /// Partially update data at the path.
    Patch,
    /// Delete data at the path.
    Delete,
    /// List keys under the path.
    List,
    /// Root-protected operations on the path.
    Sudo,
    /// Deny everything on the path (wins over every other capability).
    Deny,
}

impl Capability {
    /// The capability as Vault writes it.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        }
    }
}
