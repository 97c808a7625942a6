//! The operator API token as the CLI finds it: `STEWARD_API_TOKEN`, or the file named by
//! `STEWARD_API_TOKEN_FILE` (for secrets mounted as files, e.g. by Nomad or Vault Agent).

use std::path::Path;

use anyhow::Context as _;
use steward_operator::api_token::ApiToken;

/// The variable holding the token itself.
pub const TOKEN_VAR: &str = "STEWARD_API_TOKEN";
/// The variable naming a file that holds the token.
pub const TOKEN_FILE_VAR: &str = "STEWARD_API_TOKEN_FILE";

/// The token's text from the environment, checked; `None` when neither variable is set.
///
/// # Errors
/// Both variables set, an unreadable file (named), an empty or short token.
pub fn from_env() -> anyhow::Result<Option<String>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    from_sources(var(TOKEN_VAR), var(TOKEN_FILE_VAR), |path| {
        std::fs::read_to_string(path)
    })
}

/// [`from_env`] as the operator keeps it.
///
/// # Errors
/// As [`from_env`].
pub fn operator_token_from_env() -> anyhow::Result<Option<ApiToken>> {
    from_env()?
        .map(|text| ApiToken::new(&text).map_err(anyhow::Error::new))
        .transpose()
}

/// The decision of [`from_env`], with the file read injected (tests).
fn from_sources(
    value: Option<String>,
    file: Option<String>,
    read: impl Fn(&Path) -> std::io::Result<String>,
) -> anyhow::Result<Option<String>> {
    let (text, origin) = match (value, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            anyhow::bail!("both {TOKEN_VAR} and {TOKEN_FILE_VAR} are set; set only one of them")
        }
        (Some(text), None) => (text, TOKEN_VAR.to_owned()),
        (None, Some(path)) => {
            let text = read(Path::new(&path)).with_context(|| {
                format!("cannot read the API token file {path} ({TOKEN_FILE_VAR})")
            })?;
            (text, format!("{path} ({TOKEN_FILE_VAR})"))
        }
    };
    ApiToken::new(&text).with_context(|| format!("the API token in {origin}"))?;
    Ok(Some(text.trim().to_owned()))
}

/// A fresh random token (`steward dev` without one configured): 32 hex digits.
#[must_use]
pub fn generate() -> String {
    use rand::Rng as _;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn no_file(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory",
        ))
    }

    #[test]
    fn the_value_or_the_file_but_not_both() {
        assert_eq!(from_sources(None, None, no_file).unwrap(), None);
        assert_eq!(
            from_sources(Some(TOKEN.into()), None, no_file).unwrap(),
            Some(TOKEN.to_owned())
        );
        let from_file = from_sources(None, Some("/run/secrets/t".into()), |p| {
            assert_eq!(p, Path::new("/run/secrets/t"));
            Ok(format!("{TOKEN}\n"))
        });
        assert_eq!(from_file.unwrap(), Some(TOKEN.to_owned()));
        let both = from_sources(Some(TOKEN.into()), Some("/t".into()), no_file).unwrap_err();
        assert!(format!("{both:#}").contains("set only one"), "{both:#}");
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let missing = from_sources(None, Some("/run/secrets/t".into()), no_file).unwrap_err();
        let text = format!("{missing:#}");
        assert!(text.contains("/run/secrets/t"), "{text}");
        assert!(text.contains(TOKEN_FILE_VAR), "{text}");
        let short = from_sources(Some("abc".into()), None, no_file).unwrap_err();
        let text = format!("{short:#}");
        assert!(
            text.contains(TOKEN_VAR) && text.contains("at least 16"),
            "{text}"
        );
        assert!(!text.contains("abc"), "the token never appears: {text}");
    }

    #[test]
    fn generated_tokens_are_long_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(ApiToken::new(&a).is_ok());
    }
}
