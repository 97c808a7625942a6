//! JSON paths into a document (`spec.edge.routes[1].host`) naming where a finding applies.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key (field name or map key).
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// A path from the document root to a value, displayed like `spec.edge.routes[1].host`.
///
/// Keys that are not plain identifiers are displayed quoted:
/// `metadata.labels["app.kubernetes.io/name"]`. The root is displayed as the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root.
    #[must_use]
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses the dotted form used in code: `spec.edge.routes[1].host`
    /// (keys are split on `.`, `[n]` is an index; no quoting).
    #[must_use]
    pub fn parse(dotted: &str) -> Self {
        let mut segments = Vec::new();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            let (key, mut rest) = match part.find('[') {
                Some(i) => part.split_at(i),
                None => (part, ""),
            };
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_owned()));
            }
            while let Some(open) = rest.strip_prefix('[') {
                let Some((index, after)) = open.split_once(']') else {
                    break;
                };
                match index.parse() {
                    Ok(i) => segments.push(Segment::Index(i)),
                    Err(_) => segments.push(Segment::Key(index.to_owned())),
                }
                rest = after;
            }
        }
        Self(segments)
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by an index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// The segments, root first.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `prefix` is this path or one of its ancestors.
    #[must_use]
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The parent path (the root's parent is the root).
    #[must_use]
    pub fn parent(&self) -> Self {
        let mut parent = self.clone();
        parent.0.pop();
        parent
    }

    /// The last key of the path, if it ends in a key.
    #[must_use]
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }
}

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_indices_and_quoted_keys() {
        let path = FieldPath::root()
            .key("spec")
            .key("edge")
            .key("routes")
            .index(1)
            .key("host");
        assert_eq!(path.to_string(), "spec.edge.routes[1].host");
        let label = FieldPath::root()
            .key("metadata")
            .key("labels")
            .key("app.kubernetes.io/name");
        assert_eq!(
            label.to_string(),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
        assert_eq!(FieldPath::root().to_string(), "");
    }

    #[test]
    fn parses_the_dotted_form() {
        let path = FieldPath::parse("spec.edge.routes[1].host");
        assert_eq!(
            path,
            FieldPath::root()
                .key("spec")
                .key("edge")
                .key("routes")
                .index(1)
                .key("host")
        );
        assert!(path.starts_with(&FieldPath::parse("spec.edge")));
        assert!(!FieldPath::parse("spec.edge").starts_with(&path));
        assert_eq!(path.parent().to_string(), "spec.edge.routes[1]");
    }
}
