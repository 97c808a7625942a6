//! `steward sim`: starts, prints where it listens, answers, stops on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{Lines, run, sigterm, steward, wait_bounded};

/// `GET path` over plain HTTP/1.1 (keeps the test free of an HTTP client).
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn http_put(addr: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `NAME=http://ADDR` from the export line.
fn export_addr(line: &str, name: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=http://")))
        .unwrap()
        .to_owned()
}

#[test]
fn sim_serves_until_sigterm_and_flushes_its_state() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = steward();
    cmd.args([
        "sim",
        "--consul",
        "127.0.0.1:0",
        "--nomad",
        "127.0.0.1:0",
        "--vault",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let export = out.until(Duration::from_secs(30), |l| {
        l.contains("export CONSUL_HTTP_ADDR=")
    });
    let consul = export_addr(&export, "CONSUL_HTTP_ADDR");
    let nomad = export_addr(&export, "NOMAD_ADDR");
    let vault = export_addr(&export, "VAULT_ADDR");
    assert!(export.contains("VAULT_TOKEN=root"), "{export}");
    assert!(
        out.seen.iter().any(|l| l == "Vault root token: root"),
        "{:?}",
        out.seen
    );

    assert!(http_get(&consul, "/v1/status/leader").starts_with("HTTP/1.1 200"));
    assert!(http_get(&nomad, "/v1/status/leader").starts_with("HTTP/1.1 200"));
    assert!(http_get(&vault, "/v1/sys/health").starts_with("HTTP/1.1 200"));
    assert!(http_put(&consul, "/v1/kv/kept/across/restarts", "yes").contains("true"));

    sigterm(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let lines = out.rest(Duration::from_secs(5));
    assert!(lines.iter().any(|l| l == "simulator stopped"), "{lines:?}");
    let state = std::fs::read_to_string(data.path().join("state.json")).unwrap();
    assert!(
        state.contains("kept/across/restarts"),
        "state was flushed on shutdown"
    );
}

#[test]
fn a_taken_port_is_a_clear_error_suggesting_port_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(&[
        "sim",
        "--consul",
        &addr,
        "--nomad",
        "127.0.0.1:0",
        "--vault",
        "127.0.0.1:0",
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("already in use"), "{}", r.stderr);
    assert!(r.stderr.contains("`--consul 127.0.0.1:0`"), "{}", r.stderr);
}

#[test]
fn bad_token_flags_are_usage_errors() {
    let r = run(&["sim", "--consul", "127.0.0.1:0", "--token", "etcd:x"]);
    r.expect_code(2);
    assert!(r.stderr.contains("consul, nomad or vault"), "{}", r.stderr);
}
