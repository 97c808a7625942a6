//! TLS against a local server that requires client certificates (rcgen CA, server and
//! client certs; tokio-rustls + hyper), answering like Consul's `/v1/kv/<key>`.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use steward_hashi::{ConsulClient, ConsulConfig, Error, QueryOptions, RetryPolicy};
use tokio::net::TcpListener;

struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A CA, a server cert for `server_names`, a client cert, all written as PEM files.
fn pki(server_names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(
        server_names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["steward-client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();

    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::create_dir(dir.path().join("cadir")).unwrap();
    std::fs::write(dir.path().join("cadir/ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("client-key.pem"),
        client_key.serialize_pem(),
    )
    .unwrap();
    Pki {
        ca_der: ca.der().clone(),
        server_chain: vec![server_cert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        dir,
    }
}

async fn start_server(pki: &Pki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let key = req.uri().path().trim_start_matches("/v1/kv/").to_owned();
                        let body = format!(
                            r#"[{{"Key":"{key}","CreateIndex":7,"ModifyIndex":7,"LockIndex":0,"Flags":0,"Value":"aGVsbG8="}}]"#
                        );
                        let resp = http::Response::builder()
                            .status(200)
                            .header("Content-Type", "application/json")
                            .header("X-Consul-Index", "7")
                            .header("X-Consul-Knownleader", "true")
                            .header("X-Consul-Lastcontact", "0")
                            .body(axum::body::Body::from(body))
                            .unwrap();
                        Ok::<_, Infallible>(resp)
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    addr
}

fn env_map(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

async fn get(client: &ConsulClient) -> Result<Vec<u8>, Error> {
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client.kv_get("steward/specs/a/b", &QueryOptions::new()),
    )
    .await
    .expect("bounded wait")?;
    Ok(r.value.unwrap().value)
}

#[tokio::test]
async fn ca_file_and_client_cert_from_env_succeed() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let addr = start_server(&pki).await;
    let cfg = ConsulConfig::from_env_map(env_map(vec![
        ("CONSUL_HTTP_ADDR", format!("https://{addr}")),
        ("CONSUL_CACERT", s(&pki.path("ca.pem"))),
        ("CONSUL_CLIENT_CERT", s(&pki.path("client.pem"))),
        ("CONSUL_CLIENT_KEY", s(&pki.path("client-key.pem"))),
    ]))
    .unwrap();
    let client = ConsulClient::new(cfg).unwrap();
    assert_eq!(get(&client).await.unwrap(), b"hello");
}

#[tokio::test]
async fn ca_directory_works_too() {
    let pki = pki(&["127.0.0.1"]);
    let addr = start_server(&pki).await;
    let cfg = ConsulConfig::from_env_map(env_map(vec![
        ("CONSUL_HTTP_ADDR", format!("127.0.0.1:{}", addr.port())),
        ("CONSUL_HTTP_SSL", "true".into()),
        ("CONSUL_CAPATH", s(&pki.path("cadir"))),
        ("CONSUL_CLIENT_CERT", s(&pki.path("client.pem"))),
        ("CONSUL_CLIENT_KEY", s(&pki.path("client-key.pem"))),
    ]))
    .unwrap();
    assert_eq!(
        get(&ConsulClient::new(cfg).unwrap()).await.unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn without_the_ca_the_handshake_fails_with_a_clear_error() {
    let pki = pki(&["127.0.0.1"]);
    let addr = start_server(&pki).await;
    let cfg = ConsulConfig::default()
        .with_address(&format!("https://{addr}"))
        .unwrap()
        .with_client_cert(pki.path("client.pem"), pki.path("client-key.pem"))
        .with_retry(RetryPolicy::none());
    let err = get(&ConsulClient::new(cfg).unwrap()).await.unwrap_err();
    match &err {
        Error::Tls { message, .. } => {
            assert!(message.contains("certificate"), "{message}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
}

#[tokio::test]
async fn without_a_client_certificate_the_server_refuses() {
    let pki = pki(&["127.0.0.1"]);
    let addr = start_server(&pki).await;
    let cfg = ConsulConfig::default()
        .with_address(&format!("https://{addr}"))
        .unwrap()
        .with_ca_file(pki.path("ca.pem"))
        .with_retry(RetryPolicy::none());
    let err = get(&ConsulClient::new(cfg).unwrap()).await.unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. } | Error::Unavailable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn tls_server_name_overrides_the_verified_host() {
    let pki = pki(&["consul.service.internal"]);
    let addr = start_server(&pki).await;
    let base = ConsulConfig::default()
        .with_address(&format!("https://{addr}"))
        .unwrap()
        .with_ca_file(pki.path("ca.pem"))
        .with_client_cert(pki.path("client.pem"), pki.path("client-key.pem"))
        .with_retry(RetryPolicy::none());
    let err = get(&ConsulClient::new(base.clone()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. }),
        "cert is not valid for 127.0.0.1: {err:?}"
    );
    let named = base.with_tls_server_name("consul.service.internal");
    assert_eq!(
        get(&ConsulClient::new(named).unwrap()).await.unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn skip_verify_accepts_an_unknown_ca() {
    let pki = pki(&["127.0.0.1"]);
    let addr = start_server(&pki).await;
    let cfg = ConsulConfig::from_env_map(env_map(vec![
        ("CONSUL_HTTP_ADDR", format!("https://{addr}")),
        ("CONSUL_HTTP_SSL_VERIFY", "false".into()),
        ("CONSUL_CLIENT_CERT", s(&pki.path("client.pem"))),
        ("CONSUL_CLIENT_KEY", s(&pki.path("client-key.pem"))),
    ]))
    .unwrap();
    assert_eq!(
        get(&ConsulClient::new(cfg).unwrap()).await.unwrap(),
        b"hello"
    );
}

#[test]
fn unreadable_or_bogus_tls_files_fail_at_build_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ConsulConfig::default().with_ca_file(dir.path().join("missing.pem"));
    let err = ConsulClient::new(cfg).unwrap_err();
    assert!(err.to_string().contains("CA file"), "{err}");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let cfg = ConsulConfig::default().with_ca_file(dir.path().join("junk.pem"));
    let err = ConsulClient::new(cfg).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_addresses_work() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("consul.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let app = axum::Router::new().route(
        "/v1/status/leader",
        axum::routing::get(|| async { axum::Json("127.0.0.1:8300") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cfg = ConsulConfig::from_env_map(env_map(vec![(
        "CONSUL_HTTP_ADDR",
        format!("unix://{}", sock.display()),
    )]))
    .unwrap();
    let client = ConsulClient::new(cfg).unwrap();
    let leader = tokio::time::timeout(Duration::from_secs(10), client.status_leader())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leader.as_deref(), Some("127.0.0.1:8300"));
}
