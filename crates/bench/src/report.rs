//! The record of a run: serialisable (`--output json`) and printable as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{BenchConfig, SimPlacement};
use crate::measure::{Counts, Cpu, Percentiles, Rss};

/// One run: its settings and one record per scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Settings.
    pub config: BenchConfig,
    /// CPUs available to the process.
    pub cores: usize,
    /// What the memory figures include.
    pub rss_note: String,
    /// The scenarios, in the order they ran (`cold` first: it loads the specs).
    pub scenarios: Vec<ScenarioReport>,
}

/// A named figure of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// What it is.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its unit (`s`, `ms`, `count`, `per spec`...).
    pub unit: String,
}

/// Requests to one product with one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRow {
    /// `consul`, `nomad`, `vault`.
    pub product: String,
    /// HTTP method.
    pub method: String,
    /// How many.
    pub count: u64,
}

/// Requests to one endpoint (names taken out of the path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRow {
    /// Product.
    pub product: String,
    /// Method.
    pub method: String,
    /// Endpoint, e.g. `/v1/config/http-route/{name}`.
    pub endpoint: String,
    /// How many.
    pub count: u64,
}

/// Writes the operators made during the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Writes {
    /// Writes (and deletions) of owned objects: jobs, config entries, Vault policies and
    /// roles.
    pub objects: u64,
    /// Status transactions and leader-lock writes.
    pub bookkeeping: u64,
}

/// The figures of one scenario.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScenarioReport {
    /// Scenario name.
    pub scenario: String,
    /// Specs loaded.
    pub specs: usize,
    /// Wall time of the measured part.
    pub wall_s: f64,
    /// Specs Synced at their current generation at the end.
    pub synced: usize,
    /// Specs by phase at the end (`none`: no status yet).
    pub phases: BTreeMap<String, usize>,
    /// Latency distributions; the first is the scenario's headline.
    pub latencies: Vec<Percentiles>,
    /// Other figures.
    pub figures: Vec<Figure>,
    /// Operator requests by product and method.
    pub requests: Vec<RequestRow>,
    /// Operator requests in all.
    pub requests_total: u64,
    /// Operator requests by endpoint.
    pub endpoints: Vec<EndpointRow>,
    /// Operator writes.
    pub writes: Writes,
    /// CPU seconds by side.
    pub cpu: Cpu,
    /// Memory of the bench process, peak over this scenario: the operators and the
    /// harness, plus the simulator when it runs in-process.
    pub rss: Rss,
    /// The operators' own memory: the bench process's, when the simulator runs outside
    /// it (`child`, `external`); it still includes the harness (its clients, the
    /// request log, the specs in flight). `null` in-process, where it cannot be told
    /// apart from the simulator's.
    pub operator_rss: Option<Rss>,
    /// The simulator child process's memory, peak over this scenario (`child` only).
    pub sim_rss: Option<Rss>,
    /// Anything the figures need to be read right.
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// Adds a figure.
    pub fn figure(&mut self, name: &str, value: f64, unit: &str) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
        });
    }

    /// Sets the memory figures: `process` is the bench process, `sim` the simulator's
    /// child process (if any).
    pub fn set_memory(&mut self, placement: &SimPlacement, process: Rss, sim: Option<Rss>) {
        self.rss = process;
        self.operator_rss = (*placement != SimPlacement::InProcess).then_some(process);
        self.sim_rss = sim;
    }

    /// Fills requests and endpoints from a counter delta.
    pub fn set_requests(&mut self, counts: &Counts) {
        let mut by_method: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((product, method, endpoint), n) in counts {
            *by_method
                .entry((product.clone(), method.clone()))
                .or_default() += n;
            self.endpoints.push(EndpointRow {
                product: product.clone(),
                method: method.clone(),
                endpoint: endpoint.clone(),
                count: *n,
            });
        }
        self.endpoints.sort_by_key(|e| std::cmp::Reverse(e.count));
        self.requests = by_method
            .into_iter()
            .map(|((product, method), count)| RequestRow {
                product,
                method,
                count,
            })
            .collect();
        self.requests_total = self.requests.iter().map(|r| r.count).sum();
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// The report as text: a summary table, then each scenario's details.
    #[must_use]
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "steward bench {}: {} specs, rtt {} ms, concurrency {}, {} cores, simulator {}",
            c.scenario,
            c.specs,
            num(c.rtt.as_secs_f64() * 1e3),
            c.concurrency,
            self.cores,
            c.sim
        );
        // In-process, one process holds both sides: one memory column says so.
        let split = c.sim != SimPlacement::InProcess;
        let memory = if split {
            "op peak RSS MiB | sim peak RSS MiB |"
        } else {
            "peak RSS MiB (op + sim) |"
        };
        let _ = writeln!(
            out,
            "| scenario | wall s | synced | headline latency | p50 ms | p90 ms | p99 ms | requests | object writes | status/lock writes | op CPU s | sim CPU s | {memory}"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
            if split { "---:|" } else { "" }
        );
        for s in &self.scenarios {
            let (name, p50, p90, p99) = s.latencies.first().map_or_else(
                || {
                    (
                        "-".to_owned(),
                        "-".to_owned(),
                        "-".to_owned(),
                        "-".to_owned(),
                    )
                },
                |p| (p.name.clone(), num(p.p50_ms), num(p.p90_ms), num(p.p99_ms)),
            );
            let memory = if split {
                format!(
                    "{} | {} |",
                    num(s.rss.peak_mib),
                    s.sim_rss
                        .map_or_else(|| "-".to_owned(), |r| num(r.peak_mib))
                )
            } else {
                format!("{} |", num(s.rss.peak_mib))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {memory}",
                s.scenario,
                num(s.wall_s),
                s.synced,
                s.specs,
                name,
                p50,
                p90,
                p99,
                s.requests_total,
                s.writes.objects,
                s.writes.bookkeeping,
                num(s.cpu.operator_s),
                num(s.cpu.sim_s),
            );
        }
        for s in &self.scenarios {
            let _ = writeln!(out, "\n{} ({} specs)", s.scenario, s.specs);
            for p in &s.latencies {
                let _ = writeln!(
                    out,
                    "  latency {:<34} n {:>6}  p50 {:>9} ms  p90 {:>9} ms  p99 {:>9} ms  max {:>9} ms",
                    p.name,
                    p.count,
                    num(p.p50_ms),
                    num(p.p90_ms),
                    num(p.p99_ms),
                    num(p.max_ms)
                );
            }
            for f in &s.figures {
                let _ = writeln!(out, "  {:<42} {:>12} {}", f.name, num(f.value), f.unit);
            }
            let reqs: Vec<String> = s
                .requests
                .iter()
                .map(|r| format!("{} {} {}", r.product, r.method, r.count))
                .collect();
            let _ = writeln!(
                out,
                "  requests {}: {}",
                s.requests_total,
                if reqs.is_empty() {
                    "none".to_owned()
                } else {
                    reqs.join(", ")
                }
            );
            for e in s.endpoints.iter().take(12) {
                let _ = writeln!(
                    out,
                    "    {:>8}  {} {} {}",
                    e.count, e.product, e.method, e.endpoint
                );
            }
            let phases: Vec<String> = s.phases.iter().map(|(p, n)| format!("{p} {n}")).collect();
            let _ = writeln!(
                out,
                "  writes: objects {}, status/lock {}; phases: {}",
                s.writes.objects,
                s.writes.bookkeeping,
                phases.join(", ")
            );
            let _ = writeln!(
                out,
                "  cpu s: operator {}, simulator {}, harness {}, total {}",
                num(s.cpu.operator_s),
                num(s.cpu.sim_s),
                num(s.cpu.harness_s),
                num(s.cpu.total_s),
            );
            let mut rss = match s.operator_rss {
                Some(op) => format!(
                    "  operator peak RSS {} MiB (now {})",
                    num(op.peak_mib),
                    num(op.current_mib)
                ),
                None => format!(
                    "  peak RSS (operators + simulator, one process) {} MiB (now {})",
                    num(s.rss.peak_mib),
                    num(s.rss.current_mib)
                ),
            };
            if let Some(sim) = s.sim_rss {
                let _ = write!(
                    rss,
                    "; simulator peak RSS {} MiB (now {})",
                    num(sim.peak_mib),
                    num(sim.current_mib)
                );
            }
            let _ = writeln!(out, "{rss}");
            for n in &s.notes {
                let _ = writeln!(out, "  note: {n}");
            }
        }
        let _ = writeln!(out, "\nnote: {}", self.rss_note);
        out
    }
}
