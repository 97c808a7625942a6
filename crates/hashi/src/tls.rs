//! Builds the reqwest client for an endpoint: CA bundle/dir, client identity,
//! server-name override, skip-verify, Unix sockets and the redirect rule.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Certificate, Identity};

use crate::config::{Address, ConfigError, Endpoint, Scheme};
use crate::error::Product;

/// The built HTTP client and the authority to put in URLs (differs from the configured
/// one when a TLS server name overrides the host).
pub(crate) struct BuiltClient {
    pub client: reqwest::Client,
    pub authority: String,
}

fn tls_err(product: Product, message: impl Into<String>, source: reqwest::Error) -> ConfigError {
    ConfigError::Tls {
        product,
        message: message.into(),
        source: Some(source),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certs_from_pem(
    product: Product,
    what: &str,
    pem: &[u8],
) -> Result<Vec<Certificate>, ConfigError> {
    let certs = Certificate::from_pem_bundle(pem)
        .map_err(|e| tls_err(product, format!("{what} is not a PEM bundle"), e))?;
    if certs.is_empty() {
        return Err(ConfigError::Tls {
            product,
            message: format!("{what} contains no certificate"),
            source: None,
        });
    }
    Ok(certs)
}

/// Loads every file under `dir` (recursively) as PEM certificates, like go-rootcerts.
fn certs_from_dir(product: Product, dir: &Path) -> Result<Vec<Certificate>, ConfigError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::File {
        what: "CA directory",
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            out.extend(certs_from_dir(product, &path)?);
        } else {
            let pem = read_file("CA file", &path)?;
            out.extend(certs_from_pem(product, &format!("CA file {path:?}"), &pem)?);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Tls {
            product,
            message: format!("CA directory {dir:?} contains no certificate"),
            source: None,
        });
    }
    Ok(out)
}

/// Resolves the TLS server name to the configured host, everything else normally, so
/// that SNI and certificate verification use the server name while the connection
/// goes to the configured address (Go's `tls.Config.ServerName`).
struct ServerNameResolver {
    server_name: String,
    target_host: String,
}

impl Resolve for ServerNameResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            self.target_host.clone()
        } else {
            name.as_str().to_owned()
        };
        Box::pin(async move {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into host and optional port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let host = &authority[..end + 2];
        let port = authority[end + 2..].strip_prefix(':');
        return (host, port);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

pub(crate) fn build_client(endpoint: &Endpoint) -> Result<BuiltClient, ConfigError> {
    let product = endpoint.product;
    let tls = &endpoint.tls;
    tls.check(product)?;
    let address: &Address = &endpoint.address;
    let mut authority = address.authority.clone();

    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("steward-hashi/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Follow at most one redirect (Vault standbys) and never downgrade to http.
            let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
                && attempt.url().scheme() == "http";
            if attempt.previous().len() > 1 || downgrade {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }));

    if let Some(path) = &address.unix_socket {
        #[cfg(unix)]
        {
            builder = builder.unix_socket(path.as_path());
        }
        #[cfg(not(unix))]
        {
            return Err(ConfigError::Address {
                address: format!("unix://{}", path.display()),
                reason: "unix sockets are not supported on this platform".into(),
            });
        }
    }

    let ca: Option<Vec<Certificate>> = if let Some(file) = &tls.ca_file {
        let pem = read_file("CA file", file)?;
        Some(certs_from_pem(product, &format!("CA file {file:?}"), &pem)?)
    } else if let Some(pem) = &tls.ca_pem {
        Some(certs_from_pem(product, "inline CA certificate", pem)?)
    } else if let Some(dir) = &tls.ca_path {
        Some(certs_from_dir(product, dir)?)
    } else {
        None
    };
    if let Some(certs) = ca {
        // Like the Go clients: a configured CA replaces the system roots.
        builder = builder.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = read_file("client certificate", cert)?;
        pem.push(b'\n');
        pem.extend(read_file("client key", key)?);
        let identity = Identity::from_pem(&pem)
            .map_err(|e| tls_err(product, "client certificate/key are not usable PEM", e))?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    if let Some(server_name) = tls.server_name.as_deref().filter(|s| !s.is_empty())
        && address.scheme == Scheme::Https
        && address.unix_socket.is_none()
    {
        let (host, port) = split_authority(&address.authority);
        builder = builder.dns_resolver(Arc::new(ServerNameResolver {
            server_name: server_name.to_owned(),
            target_host: host.to_owned(),
        }));
        authority = match port {
            Some(p) => format!("{server_name}:{p}"),
            None => server_name.to_owned(),
        };
    }
    let client = builder
        .build()
        .map_err(|e| tls_err(product, "cannot build the HTTP client", e))?;
    Ok(BuiltClient { client, authority })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_splits_host_and_port() {
        assert_eq!(
            split_authority("127.0.0.1:8500"),
            ("127.0.0.1", Some("8500"))
        );
        assert_eq!(split_authority("consul"), ("consul", None));
        assert_eq!(split_authority("[::1]:8500"), ("[::1]", Some("8500")));
        assert_eq!(split_authority("[::1]"), ("[::1]", None));
    }
}
