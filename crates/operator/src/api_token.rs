//! The bearer token that guards the HTTP API's mutating endpoints (`POST
//! /api/v1/gc/approve`, and any later one): without it, the API is read-only.
//!
//! The token is a secret: it never appears in `Debug` output, in logs, or in any answer
//! of the API, and it is compared in constant time.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Shortest token accepted: guessing 16 random characters is out of reach, a short
/// word is not.
pub const MIN_TOKEN_LEN: usize = 16;

/// The API token (cheap to clone).
#[derive(Clone)]
pub struct ApiToken {
    /// SHA-256 of the token: comparisons hash the candidate and compare digests, so
    /// neither its length nor its content leaks through timing.
    digest: Arc<[u8; 32]>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Empty after trimming.
    #[error("the API token is empty")]
    Empty,
    /// Too short to resist guessing.
    #[error(
        "the API token is {0} characters long; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)"
    )]
    TooShort(usize),
}

impl ApiToken {
    /// A token from its text (surrounding whitespace, e.g. a file's final newline, is
    /// not part of it).
    ///
    /// # Errors
    /// [`TokenError`] for an empty or short token.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        let chars = text.chars().count();
        if chars < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort(chars));
        }
        Ok(Self {
            digest: Arc::new(Sha256::digest(text.as_bytes()).into()),
        })
    }

    /// Whether `candidate` is this token, in time independent of where they differ.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let diff = self
            .digest
            .iter()
            .zip(other.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl PartialEq for ApiToken {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

/// What a request's `Authorization` header amounts to, for an API whose token is
/// `token` (`None`: read-only API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The right bearer token.
    Granted,
    /// The API has no token: nothing may change through it.
    ReadOnly,
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is not the API's.
    Wrong,
}

/// Decides access from the `Authorization` header's value.
#[must_use]
pub fn access(token: Option<&ApiToken>, authorization: Option<&str>) -> Access {
    let Some(token) = token else {
        return Access::ReadOnly;
    };
    let Some(given) = authorization.and_then(bearer) else {
        return Access::Missing;
    };
    if token.matches(given) {
        Access::Granted
    } else {
        Access::Wrong
    }
}

/// The credentials of an `Authorization: Bearer <token>` value (scheme case-insensitive,
/// as RFC 7235 says).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn only_the_exact_bearer_token_is_granted() {
        let t = ApiToken::new(&format!("{TOKEN}\n")).unwrap();
        assert_eq!(
            access(Some(&t), Some(&format!("Bearer {TOKEN}"))),
            Access::Granted
        );
        assert_eq!(
            access(Some(&t), Some(&format!("bearer  {TOKEN} "))),
            Access::Granted
        );
        assert_eq!(
            access(Some(&t), Some(&format!("Bearer {TOKEN}x"))),
            Access::Wrong
        );
        assert_eq!(access(Some(&t), Some(TOKEN)), Access::Missing);
        assert_eq!(
            access(Some(&t), Some(&format!("Basic {TOKEN}"))),
            Access::Missing
        );
        assert_eq!(access(Some(&t), Some("Bearer ")), Access::Missing);
        assert_eq!(access(Some(&t), None), Access::Missing);
        assert_eq!(
            access(None, Some(&format!("Bearer {TOKEN}"))),
            Access::ReadOnly
        );
    }

    #[test]
    fn short_or_empty_tokens_are_refused_and_debug_hides_the_token() {
        assert_eq!(ApiToken::new(" \n").unwrap_err(), TokenError::Empty);
        assert_eq!(
            ApiToken::new("secret").unwrap_err(),
            TokenError::TooShort(6)
        );
        let t = ApiToken::new(TOKEN).unwrap();
        assert_eq!(format!("{t:?}"), "ApiToken(<redacted>)");
        assert!(!format!("{:?}", Some(t)).contains(TOKEN));
    }
}
