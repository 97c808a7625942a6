//! A simulator on its own runtime and, when asked, `steward run` against it: the cluster
//! that `steward diff` and the CI pipeline commands are run against.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use steward_sim::{Sim, SimConfig, SimHandle};

use super::{Lines, Run, run_with, sigterm, steward, wait_bounded};

/// The simulator, its runtime, and an optional operator child process.
pub struct Stack {
    rt: tokio::runtime::Runtime,
    sim: Option<SimHandle>,
    operator: Option<(Child, Lines)>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Stack {
    /// A fresh simulator (ACLs off; Vault's root token `root`).
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(Sim::start(SimConfig::default())).unwrap();
        Self {
            rt,
            sim: Some(sim),
            operator: None,
        }
    }

    /// The simulator.
    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().unwrap()
    }

    /// The addresses of the three servers, as the standard variables.
    pub fn addresses(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CONSUL_HTTP_ADDR", self.sim().consul_url()),
            ("NOMAD_ADDR", self.sim().nomad_url()),
            ("VAULT_ADDR", self.sim().vault_url()),
        ]
    }

    /// `steward <args>` with the addresses and Vault's root token, from `cwd` (the
    /// repository root when `None`), bounded by `timeout`.
    pub fn steward_in(&self, cwd: Option<&Path>, args: &[&str], timeout: Duration) -> Run {
        let mut cmd = steward();
        cmd.envs(self.addresses())
            .env("VAULT_TOKEN", "root")
            .args(args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        run_with(cmd, timeout)
    }

    /// `steward <args>` from the repository root (at most 2 minutes).
    pub fn steward(&self, args: &[&str]) -> Run {
        self.steward_in(None, args, Duration::from_secs(120))
    }

    /// Creates the Nomad namespaces (and the rest a fresh cluster lacks) for `specs`.
    pub fn bootstrap(&self, specs: &Path) {
        self.steward(&["bootstrap", "--specs", specs.to_str().unwrap()])
            .expect_code(0);
    }

    /// Starts `steward run` with the example guardrail policy; returns once it listens.
    pub fn start_operator(&mut self) {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cmd = steward();
        cmd.envs(self.addresses())
            .env("VAULT_TOKEN", "root")
            .args([
                "run",
                "--policy",
                "deploy/guardrails.yaml",
                "--listen",
                &listen,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let logs = Lines::new(child.stderr.take().unwrap());
        self.operator = Some((child, logs));
    }

    /// Stops the operator (SIGTERM, bounded) so that nothing else writes.
    pub fn stop_operator(&mut self) {
        if let Some((mut child, logs)) = self.operator.take() {
            sigterm(&child);
            let status = wait_bounded(&mut child, Duration::from_secs(30));
            assert!(status.success(), "{status:?}; logs: {:?}", logs.seen);
        }
    }

    /// State-changing requests the simulator has answered so far, all products.
    pub fn writes(&self) -> u64 {
        self.sim().stats().all_writes()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

/// Copies the spec files of `from` into `to`.
pub fn copy_specs(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}
