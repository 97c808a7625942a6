//! A problem found in a document, addressed by path (before it is given a line and column).

use crate::diagnostic::Severity;
use crate::path::FieldPath;

/// Which part of the node at [`Finding::path`] a finding points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// The value (for a mapping or sequence value: the key that holds it).
    Value,
    /// The mapping key (e.g. for an unknown field).
    Key,
}

/// A problem found by validation or guardrails, addressed by a JSON path.
///
/// The loader turns findings into [`crate::Diagnostic`]s by looking the path up in the
/// document; callers with a typed spec and no text (e.g. re-checking guardrails) can use
/// findings directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where the problem is.
    pub path: FieldPath,
    /// Stable short id, e.g. `unknown-field`, `guardrail-vault-path`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
    /// Point at the key or at the value.
    pub anchor: Anchor,
    /// Other paths the finding depends on; when one of them is already broken (e.g. has
    /// the wrong type) the finding is suppressed as a consequence, not a cause.
    pub related: Vec<FieldPath>,
}

impl Finding {
    /// An error at `path`'s value.
    #[must_use]
    pub fn error(path: FieldPath, code: &str, message: impl Into<String>) -> Self {
        Self {
            path,
            code: code.to_owned(),
            message: message.into(),
            severity: Severity::Error,
            anchor: Anchor::Value,
            related: Vec::new(),
        }
    }

    /// A warning at `path`'s value.
    #[must_use]
    pub fn warning(path: FieldPath, code: &str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, code, message)
        }
    }

    /// Points at the key instead of the value.
    #[must_use]
    pub fn at_key(mut self) -> Self {
        self.anchor = Anchor::Key;
        self
    }

    /// Adds a path this finding depends on.
    #[must_use]
    pub fn related(mut self, path: FieldPath) -> Self {
        self.related.push(path);
        self
    }

    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
