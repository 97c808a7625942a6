//! Secrets (tokens, basic-auth passwords) that never print.

use std::fmt;

/// An ACL token or other secret. `Debug` and `Display` print `<redacted>`; the only way
/// to read it is [`SecretToken::expose`], used by the executor to set the auth header.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of the secret in `text` with `<redacted>`.
    ///
    /// Secrets shorter than 8 characters are left alone: they are dev tokens such as
    /// `root`, and scrubbing them would mangle ordinary words in server messages.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 8 {
            return text.to_owned();
        }
        text.replace(&self.0, "<redacted>")
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretToken {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretToken {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// HTTP basic-auth credentials (`CONSUL_HTTP_AUTH`/`NOMAD_HTTP_AUTH`, `user[:pass]`).
/// The password never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password, possibly absent.
    pub password: Option<SecretToken>,
}

impl BasicAuth {
    /// Parses `user[:pass]` the way the Go clients do (split at the first `:`).
    pub fn parse(value: &str) -> Self {
        match value.split_once(':') {
            Some((user, pass)) => Self {
                username: user.to_owned(),
                password: Some(SecretToken::new(pass)),
            },
            None => Self {
                username: value.to_owned(),
                password: None,
            },
        }
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let t = SecretToken::new("s3cr3t-token-value");
        assert_eq!(format!("{t}"), "<redacted>");
        assert_eq!(format!("{t:?}"), "<redacted>");
        assert_eq!(t.expose(), "s3cr3t-token-value");
    }

    #[test]
    fn scrub_removes_long_secrets_only() {
        let t = SecretToken::new("s3cr3t-token-value");
        assert_eq!(
            t.scrub("bad token s3cr3t-token-value!"),
            "bad token <redacted>!"
        );
        let short = SecretToken::new("root");
        assert_eq!(
            short.scrub("cannot delete root policy"),
            "cannot delete root policy"
        );
    }

    #[test]
    fn basic_auth_splits_at_first_colon_and_hides_password() {
        let a = BasicAuth::parse("alice:pa:ss");
        assert_eq!(a.username, "alice");
        assert_eq!(a.password.as_ref().unwrap().expose(), "pa:ss");
        assert!(!format!("{a:?}").contains("pa:ss"));
        let b = BasicAuth::parse("bob");
        assert_eq!(b.username, "bob");
        assert!(b.password.is_none());
    }
}
