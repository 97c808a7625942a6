//! Every supported form of the standard environment variables, without touching the
//! process environment.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write as _;

use steward_hashi::config::Scheme;
use steward_hashi::{ConfigError, ConsulClient, ConsulConfig, NomadConfig, VaultConfig};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn token_file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

#[test]
fn consul_defaults_without_env() {
    let c = ConsulConfig::from_env_map(env(&[])).unwrap();
    assert_eq!(c.address.base_url(), "http://127.0.0.1:8500");
    assert!(c.token.is_none());
    assert!(!c.tls.insecure_skip_verify);
}

#[test]
fn consul_http_addr_forms() {
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "10.0.0.1:8500")])).unwrap();
    assert_eq!(c.address.base_url(), "http://10.0.0.1:8500");
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "http://consul:8500")])).unwrap();
    assert_eq!(c.address.scheme, Scheme::Http);
    let c =
        ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "https://consul:8501")])).unwrap();
    assert_eq!(c.address.scheme, Scheme::Https, "https:// turns TLS on");
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "https://lb.example/consul")]))
        .unwrap();
    assert_eq!(c.address.authority, "lb.example");
    assert_eq!(c.address.path_prefix, "/consul");
    let client = ConsulClient::new(c).unwrap();
    let p = client
        .transport()
        .prepare(&steward_hashi::consul::kv::get("a", &Default::default()).unwrap())
        .unwrap();
    assert_eq!(
        p.url, "https://lb.example/consul/v1/kv/a",
        "prefix goes before every path"
    );
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "unix:///var/run/consul.sock")]))
        .unwrap();
    assert_eq!(
        c.address.unix_socket.as_deref(),
        Some(std::path::Path::new("/var/run/consul.sock"))
    );
    let err = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_ADDR", "tcp://x:1")])).unwrap_err();
    assert!(err.to_string().contains("unknown protocol scheme"), "{err}");
}

#[test]
fn consul_http_ssl_and_verify() {
    let c = ConsulConfig::from_env_map(env(&[
        ("CONSUL_HTTP_ADDR", "consul:8501"),
        ("CONSUL_HTTP_SSL", "true"),
    ]))
    .unwrap();
    assert_eq!(c.address.base_url(), "https://consul:8501");
    let c = ConsulConfig::from_env_map(env(&[
        ("CONSUL_HTTP_ADDR", "http://consul:8501"),
        ("CONSUL_HTTP_SSL", "1"),
    ]))
    .unwrap();
    assert_eq!(
        c.address.scheme,
        Scheme::Https,
        "never revert to http when TLS was asked for"
    );
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_SSL_VERIFY", "false")])).unwrap();
    assert!(c.tls.insecure_skip_verify);
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_SSL_VERIFY", "true")])).unwrap();
    assert!(!c.tls.insecure_skip_verify);
    let err = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_SSL", "yes")])).unwrap_err();
    assert!(err.to_string().contains("CONSUL_HTTP_SSL"));
}

#[test]
fn consul_token_precedence() {
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_TOKEN", "env-token-123")])).unwrap();
    assert_eq!(c.token.unwrap().expose(), "env-token-123");

    let file = token_file("file-token-456\n");
    let path = file.path().to_str().unwrap();
    let c = ConsulConfig::from_env_map(env(&[
        ("CONSUL_HTTP_TOKEN", "env-token-123"),
        ("CONSUL_HTTP_TOKEN_FILE", path),
    ]))
    .unwrap();
    assert_eq!(
        c.token.as_ref().unwrap().expose(),
        "file-token-456",
        "file env beats token env"
    );
    let c = c.with_token("flag-token-789");
    assert_eq!(
        c.token.as_ref().unwrap().expose(),
        "flag-token-789",
        "flag beats env"
    );
    let flag_file = token_file("flag-file-000");
    let c = c
        .with_token_file(flag_file.path())
        .unwrap()
        .with_token("later-flag");
    assert_eq!(
        c.token.as_ref().unwrap().expose(),
        "flag-file-000",
        "token-file flag beats all"
    );

    let empty = token_file("  \n");
    let c = ConsulConfig::from_env_map(env(&[
        ("CONSUL_HTTP_TOKEN", "env-token-123"),
        ("CONSUL_HTTP_TOKEN_FILE", empty.path().to_str().unwrap()),
    ]))
    .unwrap();
    assert_eq!(
        c.token.unwrap().expose(),
        "env-token-123",
        "an empty file does not count"
    );

    let err = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_TOKEN_FILE", "/nonexistent/token")]))
        .unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }), "{err}");
}

#[test]
fn consul_tls_namespace_auth() {
    let c = ConsulConfig::from_env_map(env(&[
        ("CONSUL_CACERT", "/etc/consul/ca.pem"),
        ("CONSUL_CAPATH", "/etc/consul/cas"),
        ("CONSUL_CLIENT_CERT", "/etc/consul/cli.pem"),
        ("CONSUL_CLIENT_KEY", "/etc/consul/cli-key.pem"),
        ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul"),
        ("CONSUL_NAMESPACE", "team-a"),
        ("CONSUL_PARTITION", "part"),
        ("CONSUL_HTTP_AUTH", "ops:pa55word"),
    ]))
    .unwrap();
    assert_eq!(
        c.tls.ca_file.as_deref().unwrap().to_str(),
        Some("/etc/consul/ca.pem")
    );
    assert_eq!(
        c.tls.ca_path.as_deref().unwrap().to_str(),
        Some("/etc/consul/cas")
    );
    assert_eq!(c.tls.server_name.as_deref(), Some("server.dc1.consul"));
    assert_eq!(c.namespace.as_deref(), Some("team-a"));
    let auth = c.basic_auth.as_ref().unwrap();
    assert_eq!(auth.username, "ops");
    assert!(!format!("{c:?}").contains("pa55word"));

    for (k, other) in [
        ("CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY"),
        ("CONSUL_CLIENT_KEY", "CONSUL_CLIENT_CERT"),
    ] {
        let err = ConsulConfig::from_env_map(env(&[(k, "/x.pem")])).unwrap_err();
        assert!(
            matches!(err, ConfigError::CertKeyPair { .. }),
            "{k} without {other}: {err}"
        );
    }
}

#[test]
fn consul_namespace_is_added_to_every_request() {
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_NAMESPACE", "team-a")])).unwrap();
    let client = ConsulClient::new(c).unwrap();
    let spec = steward_hashi::consul::kv::put("a", b"v", None, &Default::default()).unwrap();
    let p = client.transport().prepare(&spec).unwrap();
    assert_eq!(p.url, "http://127.0.0.1:8500/v1/kv/a?ns=team-a");
}

#[test]
fn nomad_env() {
    let c = NomadConfig::from_env_map(env(&[])).unwrap();
    assert_eq!(c.address.base_url(), "http://127.0.0.1:4646");
    let c = NomadConfig::from_env_map(env(&[
        ("NOMAD_ADDR", "https://nomad.example:4646"),
        ("NOMAD_TOKEN", "nomad-secret-token"),
        ("NOMAD_REGION", "eu"),
        ("NOMAD_NAMESPACE", "trading"),
        ("NOMAD_HTTP_AUTH", "u:p"),
        ("NOMAD_CACERT", "/ca.pem"),
        ("NOMAD_CAPATH", "/cas"),
        ("NOMAD_CLIENT_CERT", "/c.pem"),
        ("NOMAD_CLIENT_KEY", "/k.pem"),
        ("NOMAD_TLS_SERVER_NAME", "server.global.nomad"),
        ("NOMAD_SKIP_VERIFY", "true"),
    ]))
    .unwrap();
    assert_eq!(c.address.scheme, Scheme::Https);
    assert_eq!(c.region.as_deref(), Some("eu"));
    assert_eq!(c.namespace.as_deref(), Some("trading"));
    assert!(c.tls.insecure_skip_verify);
    assert_eq!(c.tls.server_name.as_deref(), Some("server.global.nomad"));
    assert!(!format!("{c:?}").contains("nomad-secret-token"));
    let c = NomadConfig::from_env_map(env(&[("NOMAD_ADDR", "127.0.0.1:4646")])).unwrap();
    assert_eq!(c.address.base_url(), "http://127.0.0.1:4646");
    assert!(NomadConfig::from_env_map(env(&[("NOMAD_CLIENT_KEY", "/k.pem")])).is_err());
    assert!(NomadConfig::from_env_map(env(&[("NOMAD_SKIP_VERIFY", "maybe")])).is_err());

    // the env namespace applies unless a request names its own
    let c = NomadConfig::from_env_map(env(&[
        ("NOMAD_NAMESPACE", "trading"),
        ("NOMAD_REGION", "eu"),
    ]))
    .unwrap();
    let client = steward_hashi::NomadClient::new(c).unwrap();
    let list = steward_hashi::nomad::job::list(None, false, &Default::default()).unwrap();
    assert_eq!(
        client.transport().prepare(&list).unwrap().url,
        "http://127.0.0.1:4646/v1/jobs?region=eu&namespace=trading"
    );
    let job = serde_json::json!({"ID": "a", "Namespace": "batch"});
    let reg = steward_hashi::nomad::job::register(&job, &Default::default()).unwrap();
    assert_eq!(
        client.transport().prepare(&reg).unwrap().url,
        "http://127.0.0.1:4646/v1/jobs?namespace=batch&region=eu",
        "a job's own namespace is never moved by NOMAD_NAMESPACE"
    );
}

#[test]
fn vault_env() {
    let c = VaultConfig::from_env_map(env(&[])).unwrap();
    assert_eq!(c.address.base_url(), "https://127.0.0.1:8200");
    let c = VaultConfig::from_env_map(env(&[
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", "hvs.vault-secret-token"),
        ("VAULT_NAMESPACE", "admin/"),
        ("VAULT_CACERT_BYTES", "-----BEGIN CERTIFICATE-----\n..."),
        ("VAULT_SKIP_VERIFY", "1"),
        ("VAULT_TLS_SERVER_NAME", "vault.service"),
        ("VAULT_CLIENT_TIMEOUT", "30s"),
        ("VAULT_MAX_RETRIES", "4"),
    ]))
    .unwrap();
    assert_eq!(c.address.scheme, Scheme::Http);
    assert!(c.tls.ca_pem.as_ref().unwrap().starts_with(b"-----BEGIN"));
    assert!(c.tls.insecure_skip_verify);
    assert_eq!(c.http.timeout, std::time::Duration::from_secs(30));
    assert_eq!(c.http.retry.max_attempts, 5);
    assert!(!format!("{c:?}").contains("vault-secret-token"));
    let c = VaultConfig::from_env_map(env(&[
        ("VAULT_ADDR", "https://vault:8200"),
        ("VAULT_AGENT_ADDR", "http://127.0.0.1:8100"),
    ]))
    .unwrap();
    assert_eq!(
        c.address.base_url(),
        "http://127.0.0.1:8100",
        "agent address wins"
    );
    assert!(VaultConfig::from_env_map(env(&[("VAULT_CLIENT_CERT", "/c.pem")])).is_err());
    assert!(VaultConfig::from_env_map(env(&[("VAULT_SKIP_VERIFY", "nope")])).is_err());

    let c = VaultConfig::from_env_map(env(&[
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", "hvs.vault-secret-token"),
        ("VAULT_NAMESPACE", "admin/"),
    ]))
    .unwrap();
    let client = steward_hashi::VaultClient::new(c).unwrap();
    let p = client
        .transport()
        .prepare(&steward_hashi::vault::policy::get("a").unwrap())
        .unwrap();
    assert_eq!(p.headers["x-vault-request"], "true");
    assert_eq!(p.headers["x-vault-namespace"], "admin/");
    assert_eq!(p.headers["x-vault-token"], "hvs.vault-secret-token");
    assert!(!format!("{client:?}").contains("vault-secret-token"));
    assert!(!format!("{p:?}").contains("vault-secret-token"));
}

#[test]
fn tokens_never_appear_in_debug_of_configs_clients_or_errors() {
    let secret = "c0ffee00-dead-beef-0000-123456789abc";
    let c = ConsulConfig::from_env_map(env(&[("CONSUL_HTTP_TOKEN", secret)])).unwrap();
    assert!(!format!("{c:?}").contains(secret));
    let client = ConsulClient::new(c).unwrap();
    assert!(!format!("{client:?}").contains(secret));
    assert!(format!("{client:?}").contains("<redacted>"));
    let err = steward_hashi::error::classify_status(
        steward_hashi::Product::Consul,
        &http::Method::GET,
        "/v1/kv/a",
        403,
        "Permission denied".into(),
    );
    assert!(!format!("{err:?} {err}").contains(secret));
}
