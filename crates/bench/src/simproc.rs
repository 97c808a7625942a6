//! The simulator outside the bench process: a `steward sim` child (spawned on loopback
//! ephemeral ports, watched, stopped and reaped) and the admin API every `steward sim`
//! serves under `/_sim/v1/` (faults, request counters), which replaces the in-process
//! handle when the simulator is not in the bench's address space.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// How long the child may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the child may take to stop once its stdin is closed, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Lines of the child's stderr kept to explain a failure.
const STDERR_TAIL: usize = 20;

/// A `steward sim` child process. Dropping it kills the process (`kill_on_drop`; Tokio
/// reaps it in the background); [`SimChild::stop`] stops and reaps it in place.
pub(crate) struct SimChild {
    child: Child,
    pid: u32,
    program: String,
    /// Held open: the child runs with `--stop-on-stdin-eof`, so it also goes when the
    /// bench process dies without running any destructor (SIGKILL, abort).
    stdin: Option<ChildStdin>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    drains: Vec<JoinHandle<()>>,
    /// Consul, Nomad and Vault base URLs, as the child announced them.
    pub(crate) urls: [String; 3],
}

impl SimChild {
    /// Spawns `<program> sim` on ephemeral loopback ports with `args` (simulator
    /// settings) and waits for the addresses it prints.
    pub(crate) async fn spawn(program: &Path, args: &[String]) -> Result<SimChild> {
        let name = program.display().to_string();
        let fail = |message: String| Error::SimProcess {
            program: name.clone(),
            message,
        };
        let mut cmd = Command::new(program);
        cmd.args([
            "sim",
            "--consul",
            "127.0.0.1:0",
            "--nomad",
            "127.0.0.1:0",
            "--vault",
            "127.0.0.1:0",
            "--stop-on-stdin-eof",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| fail("exited at once (no process id)".to_owned()))?;
        let stdin = child.stdin.take();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut drains = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            drains.push(tokio::spawn(drain(stderr, move |line| {
                let mut t = tail.lock();
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            })));
        }
        let mut this = SimChild {
            child,
            pid,
            program: name,
            stdin,
            stderr_tail,
            drains,
            urls: Default::default(),
        };
        let Some(stdout) = this.child.stdout.take() else {
            return Err(this.failure("no stdout pipe").await);
        };
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(START_TIMEOUT, async {
            let mut urls: [Option<String>; 3] = Default::default();
            while let Ok(Some(line)) = lines.next_line().await {
                for (i, label) in ["Consul API:", "Nomad API:", "Vault API:"]
                    .iter()
                    .enumerate()
                {
                    if let Some(url) = line.strip_prefix(label) {
                        urls[i] = Some(url.trim().to_owned());
                    }
                }
                if let [Some(c), Some(n), Some(v)] = &urls {
                    return Some([c.clone(), n.clone(), v.clone()]);
                }
            }
            None
        })
        .await;
        match announced {
            Ok(Some(urls)) => this.urls = urls,
            Ok(None) => return Err(this.failure("exited before printing its addresses").await),
            Err(_) => {
                let what = format!("printed no addresses within {START_TIMEOUT:?}");
                return Err(this.failure(&what).await);
            }
        }
        // Keep reading: a child writing into a closed pipe would fail its shutdown.
        this.drains
            .push(tokio::spawn(drain(lines.into_inner(), |_| {})));
        Ok(this)
    }

    /// The process id (for `/proc/<pid>`).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// An error for a child that did not come up, with its exit status and the end of
    /// its stderr; the child is killed and reaped first.
    async fn failure(&mut self, what: &str) -> Error {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(STOP_GRACE, self.child.wait()).await;
        // Let the stderr reader catch the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tail: Vec<String> = self.stderr_tail.lock().iter().cloned().collect();
        let mut message = what.to_owned();
        if let Ok(Ok(status)) = status {
            message.push_str(&format!(" ({status})"));
        }
        if !tail.is_empty() {
            message.push_str(&format!("; stderr: {}", tail.join(" | ")));
        }
        Error::SimProcess {
            program: self.program.clone(),
            message,
        }
    }

    /// Stops the child: closes its stdin (it shuts down), kills it if it is still
    /// there after [`STOP_GRACE`], and reaps it. Read its figures before.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(STOP_GRACE, self.child.wait()).await;
        }
        for d in self.drains.drain(..) {
            d.abort();
        }
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        for d in &self.drains {
            d.abort();
        }
    }
}

/// Reads `from` line by line until its end, giving each line to `each`.
async fn drain(from: impl AsyncRead + Unpin, mut each: impl FnMut(String)) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        each(line);
    }
}

/// The simulator's admin API and the few plain requests the harness makes outside the
/// typed clients (Nomad namespaces: the clients have no call for them).
pub(crate) struct Admin {
    http: reqwest::Client,
    consul: String,
    nomad: String,
}

impl Admin {
    /// An admin client of the simulator whose Consul and Nomad APIs are at these URLs
    /// (the admin API is served on every product's listener).
    pub(crate) fn new(consul: &str, nomad: &str) -> Result<Admin> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Admin {
                what: "client setup".to_owned(),
                message: e.to_string(),
            })?;
        Ok(Admin {
            http,
            consul: consul.trim_end_matches('/').to_owned(),
            nomad: nomad.trim_end_matches('/').to_owned(),
        })
    }

    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let err = |message: String| Error::Admin {
            what: what.to_owned(),
            message,
        };
        let resp = req.send().await.map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(err(format!("{status}: {}", body.trim())));
        }
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).map_err(|e| err(format!("{e} in {body:?}")))
    }

    /// Adds a fixed latency to every request of `product`; returns the rule's id.
    pub(crate) async fn inject_latency(&self, product: &str, fixed_ms: u64) -> Result<u64> {
        let what = format!("POST /_sim/v1/faults (latency {fixed_ms} ms on {product})");
        let body =
            json!({"kind": "latency", "product": product, "fixedMs": fixed_ms, "jitterMs": 0});
        let answer = self
            .send(
                &what,
                self.http
                    .post(format!("{}/_sim/v1/faults", self.consul))
                    .json(&body),
            )
            .await?;
        answer["id"].as_u64().ok_or_else(|| Error::Admin {
            what,
            message: format!("no rule id in {answer}"),
        })
    }

    /// Removes fault rule `id` (an external simulator is left as it was found).
    pub(crate) async fn remove_fault(&self, id: u64) -> Result<()> {
        let what = format!("DELETE /_sim/v1/faults/{id}");
        self.send(
            &what,
            self.http
                .delete(format!("{}/_sim/v1/faults/{id}", self.consul)),
        )
        .await
        .map(drop)
    }

    /// Requests the simulator answered so far on the products' APIs (its admin API
    /// left out: these very requests would count).
    pub(crate) async fn requests_answered(&self) -> Result<u64> {
        let answer = self
            .send(
                "GET /_sim/v1/stats",
                self.http.get(format!("{}/_sim/v1/stats", self.consul)),
            )
            .await?;
        Ok(sum_requests(&answer))
    }

    /// Creates Nomad namespace `name` (`PUT /v1/namespace/<name>`, no-op when it exists).
    pub(crate) async fn create_namespace(&self, name: &str) -> Result<()> {
        let what = format!("PUT /v1/namespace/{name}");
        self.send(
            &what,
            self.http
                .put(format!("{}/v1/namespace/{name}", self.nomad))
                .json(&json!({"Name": name})),
        )
        .await
        .map(drop)
    }
}

/// The sum of the `requests` counters of a `/_sim/v1/stats` answer, routes of the
/// admin API left out.
fn sum_requests(stats: &Value) -> u64 {
    stats["requests"].as_array().map_or(0, |rows| {
        rows.iter()
            .filter(|r| {
                !r["route"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("/_sim/")
            })
            .filter_map(|r| r["count"].as_u64())
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_routes_do_not_count_as_answered_requests() {
        let stats = json!({"requests": [
            {"product": "consul", "method": "GET", "route": "/v1/kv/{*key}", "count": 5},
            {"product": "consul", "method": "GET", "route": "/_sim/v1/stats", "count": 2},
            {"product": "nomad", "method": "PUT", "route": "/v1/jobs", "count": 3},
        ]});
        assert_eq!(sum_requests(&stats), 8);
        assert_eq!(sum_requests(&json!({})), 0);
    }
}
