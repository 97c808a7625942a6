//! Container image references (`registry.example:5000/team/app:1.2@sha256:…`).

use std::fmt;

/// Why an image reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The reference was empty.
    #[error("the image reference is empty")]
    Empty,
    /// Longer than 255 characters (registry and repository together).
    #[error("the image name is longer than 255 characters")]
    TooLong,
    /// The registry host or port is malformed.
    #[error(
        "invalid registry `{registry}`: use a host name (letters, digits, `-`, `.`) with an optional `:port`"
    )]
    InvalidRegistry {
        /// The registry as written.
        registry: String,
    },
    /// A repository path component is malformed.
    #[error(
        "invalid repository path component `{component}`: use lower-case letters and digits, separated by `.`, `_`, `__` or `-`"
    )]
    InvalidPath {
        /// The component as written.
        component: String,
    },
    /// The tag is malformed.
    #[error(
        "invalid tag `{tag}`: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
    )]
    InvalidTag {
        /// The tag as written.
        tag: String,
    },
    /// The digest is malformed.
    #[error("invalid digest `{digest}`: write `sha256:` followed by 64 lower-case hex digits")]
    InvalidDigest {
        /// The digest as written.
        digest: String,
    },
}

/// The default registry when a reference names none (Docker Hub).
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference.
///
/// `nginx:1.25` is `docker.io/library/nginx` with tag `1.25`, the way Docker reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port (`docker.io` when none was written).
    pub registry: String,
    /// Repository path under the registry (`library/nginx` for official Hub images).
    pub repository: String,
    /// Tag, if written.
    pub tag: Option<String>,
    /// Digest (`sha256:<hex>`), if written.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference following the distribution reference grammar: optional
    /// `registry[:port]/`, lower-case path components, optional `:tag`, optional
    /// `@sha256:<64 hex>` (or `@sha512:<128 hex>`).
    ///
    /// # Errors
    /// Returns [`Error`] naming the malformed part.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.is_empty() {
            return Err(Error::Empty);
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if name.chars().count() > 255 {
            return Err(Error::TooLong);
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_registry(first)?;
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        for component in path.split('/') {
            check_path_component(component)?;
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// `registry/repository`, the string guardrail registry prefixes are matched against.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the reference pins a version (a tag other than `latest`, or a digest).
    #[must_use]
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some() || self.tag.as_deref().is_some_and(|t| t != "latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_registry(registry: &str) -> Result<(), Error> {
    let invalid = || Error::InvalidRegistry {
        registry: registry.to_owned(),
    };
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    if let Some(port) = port {
        let valid_port = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid_port {
            return Err(invalid());
        }
    }
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(invalid());
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), Error> {
    let invalid = || Error::InvalidPath {
        component: component.to_owned(),
    };
    // alnum+ (separator alnum+)*, separator = `.` | `_` | `__` | `-`+
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !bytes.last().is_some_and(|b| is_alnum(*b)) {
        return Err(invalid());
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return Err(invalid());
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), Error> {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

fn check_digest(digest: &str) -> Result<(), Error> {
    let hex_len = match digest.split_once(':') {
        Some(("sha256", hex)) => (hex, 64),
        Some(("sha512", hex)) => (hex, 128),
        _ => {
            return Err(Error::InvalidDigest {
                digest: digest.to_owned(),
            });
        }
    };
    let (hex, len) = hex_len;
    if hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::InvalidDigest {
            digest: digest.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_paths_tags_and_digests() {
        let image = ImageRef::parse("registry.example/order-api:1.4.2").unwrap();
        assert_eq!(image.registry, "registry.example");
        assert_eq!(image.repository, "order-api");
        assert_eq!(image.tag.as_deref(), Some("1.4.2"));
        let hub = ImageRef::parse("nginx:1.25").unwrap();
        assert_eq!(hub.name(), "docker.io/library/nginx");
        let port = ImageRef::parse("localhost:5000/team/app").unwrap();
        assert_eq!((port.registry.as_str(), port.tag), ("localhost:5000", None));
        let digest = format!("ghcr.io/acme/web@sha256:{}", "a".repeat(64));
        let pinned = ImageRef::parse(&digest).unwrap();
        assert!(pinned.is_pinned());
        assert_eq!(pinned.to_string(), digest);
        let both = format!("ghcr.io/acme/web:2.0@sha256:{}", "0".repeat(64));
        assert_eq!(ImageRef::parse(&both).unwrap().tag.as_deref(), Some("2.0"));
        assert!(ImageRef::parse("a/b__c/d-e.f:v_1").is_ok());
    }

    #[test]
    fn rejects_malformed_references() {
        assert_eq!(ImageRef::parse(""), Err(Error::Empty));
        assert!(matches!(
            ImageRef::parse("Registry.Example/App:1"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            ImageRef::parse("reg..example/app"),
            Err(Error::InvalidRegistry { .. })
        ));
        assert!(matches!(
            ImageRef::parse("reg.example:99999/app"),
            Err(Error::InvalidRegistry { .. })
        ));
        assert!(matches!(
            ImageRef::parse("app:-bad"),
            Err(Error::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageRef::parse("app:"),
            Err(Error::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageRef::parse("app@sha256:abc"),
            Err(Error::InvalidDigest { .. })
        ));
        assert!(matches!(
            ImageRef::parse("team//app"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            ImageRef::parse("team/app_"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            ImageRef::parse("team/a___b"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(!ImageRef::parse("app:latest").unwrap().is_pinned());
        assert!(!ImageRef::parse("app").unwrap().is_pinned());
    }
}
