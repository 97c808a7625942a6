//! Measuring: latency percentiles, the operators' requests (through the clients'
//! observer hook, so the harness's own requests never count), CPU per runtime and RSS
//! from `/proc/self` (and from `/proc/<pid>` of the simulator's child process).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use steward_hashi::{Observation, Observer, Product};

/// Percentiles of a set of latencies (nearest rank), in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// What was measured.
    pub name: String,
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (`None` when there are none).
    #[must_use]
    pub fn of(name: &str, samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> f64 {
            // Nearest rank: the smallest sample with at least p % of samples at or below.
            let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            let d = sorted[idx.clamp(1, sorted.len()) - 1];
            ms(d)
        };
        Some(Self {
            name: name.to_owned(),
            count: sorted.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: sorted.last().map_or(0.0, |d| ms(*d)),
        })
    }
}

/// Milliseconds, rounded to 0.01.
#[must_use]
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Seconds, rounded to 0.001.
#[must_use]
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

// ----- memory ------------------------------------------------------------------------

/// Resident memory of one process, in MiB: the bench process (its operators and the
/// harness, plus the simulator when it runs in-process) or the simulator's child process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Rss {
    /// `VmRSS` now.
    pub current_mib: f64,
    /// `VmHWM`: the peak since the process started or since [`reset_peak_rss`].
    pub peak_mib: f64,
}

/// `/proc/self` or `/proc/<pid>`.
fn proc_dir(pid: Option<u32>) -> String {
    pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"))
}

impl Rss {
    /// Reads `/proc/self/status` (zeros where it is unavailable).
    #[must_use]
    pub fn now() -> Self {
        Self::of(None)
    }

    /// Reads `/proc/<pid>/status` (`None`: this process); zeros where it is unavailable
    /// (not Linux, or the process is gone).
    #[must_use]
    pub fn of(pid: Option<u32>) -> Self {
        let status =
            std::fs::read_to_string(format!("{}/status", proc_dir(pid))).unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0.0, |kib| (kib / 1024.0 * 10.0).round() / 10.0)
        };
        Self {
            current_mib: field("VmRSS:"),
            peak_mib: field("VmHWM:"),
        }
    }
}

/// Resets `VmHWM` of this process (`None`) or of `pid` (a child of the same user) to its
/// current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), so each scenario of a
/// run reports its own peak. `false` when the kernel refused.
pub fn reset_peak_rss(pid: Option<u32>) -> bool {
    std::fs::write(format!("{}/clear_refs", proc_dir(pid)), b"5").is_ok()
}

// ----- CPU ---------------------------------------------------------------------------

/// CPU seconds by side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Cpu {
    /// Threads of operator runtimes (`op-*`). With the simulator in a child process or
    /// external, threads of the bench process that exited during the measurement (a
    /// killed operator's) count here too: their time remains only in the process total.
    pub operator_s: f64,
    /// The simulator. In a child process: that process's user + system time. In-process:
    /// the process total minus operators and harness (threads that exited during the
    /// measurement, e.g. a killed operator's, count here too). External: 0 (not seen).
    pub sim_s: f64,
    /// Every other thread of the bench process (the harness and the caller's runtime).
    pub harness_s: f64,
    /// Every side: the bench process, plus the simulator's child process.
    pub total_s: f64,
}

/// Which side a thread works for, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Operator,
    Sim,
    Harness,
}

/// Where the simulator's CPU time is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimCpu {
    /// Threads `sim-rt*` of this process.
    #[default]
    InProcess,
    /// The child process with this id.
    Child(u32),
    /// Nowhere the bench can see (an external simulator).
    Unseen,
}

/// CPU seconds of every live thread (by thread id), of the process, and of the
/// simulator's child process when there is one.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    threads: BTreeMap<String, (Side, f64)>,
    total: f64,
    sim: SimCpu,
    /// The simulator child process's CPU ([`SimCpu::Child`] only).
    sim_process: f64,
}

impl CpuSnapshot {
    /// CPU used so far by this process and by the simulator (`sim`).
    #[must_use]
    pub fn now(sim: SimCpu) -> Self {
        let total = stat_cpu("/proc/self/stat").unwrap_or(0.0);
        let mut threads = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for task in dir.flatten() {
                let path = task.path();
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                let side = if comm.starts_with("op-") {
                    Side::Operator
                } else if comm.starts_with("sim-rt") {
                    Side::Sim
                } else {
                    Side::Harness
                };
                let cpu = stat_cpu(&path.join("stat").to_string_lossy()).unwrap_or(0.0);
                threads.insert(task.file_name().to_string_lossy().into_owned(), (side, cpu));
            }
        }
        let sim_process = match sim {
            SimCpu::Child(pid) => stat_cpu(&format!("/proc/{pid}/stat")).unwrap_or(0.0),
            SimCpu::InProcess | SimCpu::Unseen => 0.0,
        };
        Self {
            threads,
            total,
            sim,
            sim_process,
        }
    }

    /// CPU used between `earlier` and `self` by side, rounded to 0.01 s. Threads born
    /// since count whole; threads gone since count in the simulator's share when it is
    /// in-process, in the operators' otherwise.
    #[must_use]
    pub fn since(&self, earlier: &CpuSnapshot) -> Cpu {
        let (mut operator, mut harness) = (0.0, 0.0);
        for (tid, (side, cpu)) in &self.threads {
            let before = earlier.threads.get(tid).map_or(0.0, |(_, c)| *c);
            let d = (cpu - before).max(0.0);
            match side {
                Side::Operator => operator += d,
                Side::Harness => harness += d,
                Side::Sim => {}
            }
        }
        let process = (self.total - earlier.total).max(0.0);
        let rest = (process - operator - harness).max(0.0);
        let r = |v: f64| (v.max(0.0) * 100.0).round() / 100.0;
        if self.sim == SimCpu::InProcess {
            Cpu {
                operator_s: r(operator),
                sim_s: r(rest),
                harness_s: r(harness),
                total_s: r(process),
            }
        } else {
            let sim = (self.sim_process - earlier.sim_process).max(0.0);
            Cpu {
                operator_s: r(operator + rest),
                sim_s: r(sim),
                harness_s: r(harness),
                total_s: r(process + sim),
            }
        }
    }
}

/// utime + stime of a `stat` file, in seconds (USER_HZ = 100 on Linux).
fn stat_cpu(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

// ----- the operators' requests -------------------------------------------------------

/// What kind of request one observation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads, blocking queries, dry runs (`/plan`), session renewals and creations.
    Read,
    /// A write of an owned object (Nomad job, config entry, Vault policy or role,
    /// namespace) or a deletion.
    Object,
    /// A status transaction (`/v1/txn`) or the leader lock key.
    Bookkeeping,
}

/// Classifies a request the way the issue counts writes: status documents and the leader
/// lock are bookkeeping; dry runs and session calls are not writes.
#[must_use]
pub fn kind(method: &str, path: &str, prefix: &str) -> Kind {
    let mutating = matches!(method, "PUT" | "POST" | "DELETE" | "PATCH");
    if !mutating || path.ends_with("/plan") || path.starts_with("/v1/session/") {
        return Kind::Read;
    }
    let kv_leader = format!("/v1/kv/{prefix}/leader");
    if path == "/v1/txn" || path.starts_with(&kv_leader) {
        return Kind::Bookkeeping;
    }
    Kind::Object
}

/// A request path with names taken out, so counts group by endpoint
/// (`/v1/config/http-route/{name}`, `/v1/kv/steward/status/…`).
#[must_use]
pub fn endpoint(path: &str) -> String {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let keep = |n: usize, tail: &str| -> String {
        let mut out = String::new();
        for s in segs.iter().take(n) {
            out.push('/');
            out.push_str(s);
        }
        if segs.iter().skip(n).any(|s| !s.is_empty()) {
            out.push_str(tail);
        } else if segs.len() > n {
            out.push('/');
        }
        out
    };
    match segs.as_slice() {
        ["v1", "kv", ..] => keep(4, "/…"),
        ["v1", "config", _kind, _name, ..] => keep(3, "/{name}"),
        ["v1", "job", _id, rest @ ..] => {
            let mut out = "/v1/job/{id}".to_owned();
            for r in rest {
                out.push('/');
                out.push_str(r);
            }
            out
        }
        ["v1", "sys", "policies", "acl", _name, ..] => keep(4, "/{name}"),
        ["v1", "sys", "policy", _name, ..] => keep(3, "/{name}"),
        ["v1", "auth", _mount, "role", _name, ..] => keep(4, "/{name}"),
        ["v1", "session", op, _id, ..] if *op != "list" => keep(3, "/{id}"),
        ["v1", "namespace", _name, ..] => keep(2, "/{name}"),
        ["v1", "deployment", _id, ..] | ["v1", "allocation", _id, ..] => keep(2, "/{id}"),
        _ => path.to_owned(),
    }
}

/// One write an operator made.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// When its answer arrived.
    pub at: Instant,
    /// Which operator.
    pub operator: Arc<str>,
    /// Object write or bookkeeping.
    pub kind: Kind,
    /// Product.
    pub product: Product,
    /// Method.
    pub method: &'static str,
    /// Path.
    pub path: Box<str>,
    /// Status (`None`: no answer).
    pub status: Option<u16>,
}

/// `method` as a static string (the methods the clients send; any other is `OTHER`).
fn static_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "LIST" => "LIST",
        "HEAD" => "HEAD",
        "PATCH" => "PATCH",
        _ => "OTHER",
    }
}

/// Request counters, by product, method and endpoint.
pub type Counts = BTreeMap<(String, String, String), u64>;

#[derive(Default)]
struct LogInner {
    counts: Counts,
    writes: Vec<WriteRecord>,
}

/// Every request of every operator: counts by endpoint, and each write with its time.
#[derive(Default, Clone)]
pub struct OpLog {
    inner: Arc<Mutex<LogInner>>,
    prefix: Arc<str>,
}

impl OpLog {
    /// A log for operators using the KV `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            inner: Arc::default(),
            prefix: Arc::from(prefix),
        }
    }

    /// The observer to put on operator `name`'s clients.
    #[must_use]
    pub fn observer(&self, name: &str) -> Observer {
        let log = self.clone();
        let name: Arc<str> = Arc::from(name);
        Arc::new(move |o: &Observation<'_>| {
            let at = Instant::now();
            let method = o.method.as_str();
            let kind = kind(method, o.path, &log.prefix);
            let mut inner = log.inner.lock();
            let key = (o.product.to_string(), method.to_owned(), endpoint(o.path));
            *inner.counts.entry(key).or_insert(0) += 1;
            if kind != Kind::Read {
                // Kept small: the log lives in the bench process, whose peak RSS is
                // reported as the operator's (61,500 writes at 10,000 specs).
                inner.writes.push(WriteRecord {
                    at,
                    operator: name.clone(),
                    kind,
                    product: o.product,
                    method: static_method(method),
                    path: Box::from(o.path),
                    status: o.status,
                });
            }
        })
    }

    /// The counters now.
    #[must_use]
    pub fn counts(&self) -> Counts {
        self.inner.lock().counts.clone()
    }

    /// How many writes were recorded so far (a position to look from).
    #[must_use]
    pub fn mark(&self) -> usize {
        self.inner.lock().writes.len()
    }

    /// The writes recorded since `mark`.
    #[must_use]
    pub fn writes_since(&self, mark: usize) -> Vec<WriteRecord> {
        self.inner
            .lock()
            .writes
            .get(mark..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// The last write recorded since `mark` with `pred`, if any.
    #[must_use]
    pub fn last_write_since(
        &self,
        mark: usize,
        pred: impl Fn(&WriteRecord) -> bool,
    ) -> Option<WriteRecord> {
        let inner = self.inner.lock();
        inner
            .writes
            .get(mark..)
            .and_then(|w| w.iter().rev().find(|w| pred(w)).cloned())
    }
}

/// The growth of every counter between two snapshots.
#[must_use]
pub fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of("x", &samples).unwrap();
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 1e-9);
        assert!((p.p90_ms - 90.0).abs() < 1e-9);
        assert!((p.p99_ms - 99.0).abs() < 1e-9);
        assert!((p.max_ms - 100.0).abs() < 1e-9);
        let one = Percentiles::of("y", &[Duration::from_millis(7)]).unwrap();
        assert!((one.p99_ms - 7.0).abs() < 1e-9);
        assert!(Percentiles::of("z", &[]).is_none());
    }

    #[test]
    fn writes_are_classified_like_the_issue_counts_them() {
        assert_eq!(kind("PUT", "/v1/jobs", "steward"), Kind::Object);
        assert_eq!(kind("PUT", "/v1/config", "steward"), Kind::Object);
        assert_eq!(kind("POST", "/v1/job/web/plan", "steward"), Kind::Read);
        assert_eq!(kind("PUT", "/v1/txn", "steward"), Kind::Bookkeeping);
        assert_eq!(
            kind("PUT", "/v1/kv/steward/leader", "steward"),
            Kind::Bookkeeping
        );
        assert_eq!(kind("PUT", "/v1/session/renew/abc", "steward"), Kind::Read);
        assert_eq!(kind("GET", "/v1/jobs", "steward"), Kind::Read);
    }

    #[test]
    fn endpoints_drop_names() {
        assert_eq!(
            endpoint("/v1/kv/steward/status/team-1/svc-00001"),
            "/v1/kv/steward/status/…"
        );
        assert_eq!(endpoint("/v1/kv/steward/specs/"), "/v1/kv/steward/specs/");
        assert_eq!(
            endpoint("/v1/config/http-route/team-1-svc"),
            "/v1/config/http-route/{name}"
        );
        assert_eq!(endpoint("/v1/config/http-route"), "/v1/config/http-route");
        assert_eq!(endpoint("/v1/job/svc/plan"), "/v1/job/{id}/plan");
        assert_eq!(
            endpoint("/v1/sys/policies/acl/steward-a-b"),
            "/v1/sys/policies/acl/{name}"
        );
        assert_eq!(
            endpoint("/v1/auth/jwt-nomad/role/steward-a-b"),
            "/v1/auth/jwt-nomad/role/{name}"
        );
        assert_eq!(endpoint("/v1/session/renew/abc"), "/v1/session/renew/{id}");
    }

    #[test]
    fn counter_deltas_keep_only_growth() {
        let k = |s: &str| ("consul".to_owned(), "GET".to_owned(), s.to_owned());
        let before: Counts = [(k("a"), 2), (k("b"), 5)].into_iter().collect();
        let after: Counts = [(k("a"), 2), (k("b"), 7), (k("c"), 1)]
            .into_iter()
            .collect();
        let d = delta(&after, &before);
        assert_eq!(d.len(), 2);
        assert_eq!(d[&k("b")], 2);
        assert_eq!(d[&k("c")], 1);
    }
}
