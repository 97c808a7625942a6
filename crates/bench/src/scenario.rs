//! The scenarios. Each measures one thing and records the operators' requests, writes,
//! CPU and memory over its measured part; setup (loading specs, waiting for quiet) is
//! outside the measured part except in `cold`, whose measured part is the load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::json;
use steward_hashi::consul::TxnOp;
use steward_hashi::consul::txn::{MAX_TXN_OPS, TxnOutcome};
use steward_hashi::nomad::RegisterOptions;
use steward_hashi::{Product, QueryOptions};
use steward_operator::{OperatorHandle, Phase};

use crate::config::{BenchConfig, Scenario, SimPlacement};
use crate::error::{Error, Result};
use crate::measure::{self, CpuSnapshot, Kind, Percentiles, Rss, WriteRecord};
use crate::report::{Report, ScenarioReport, Writes};
use crate::specs;
use crate::world::{PREFIX, World};

/// How long without any operator write counts as quiet before a measurement.
const QUIET: Duration = Duration::from_secs(2);

/// Quiet between two hand edits of `drift`: the repair's deployment and status take
/// ~200 ms in the simulator.
const DRIFT_QUIET: Duration = Duration::from_millis(500);

/// Transactions of spec writes in flight during the cold load.
const PUSH_IN_FLIGHT: usize = 4;

/// Runs `cfg.scenario` and returns its figures. The scenarios other than `cold` start
/// with a cold load of `cfg.specs` (reported too).
///
/// # Errors
/// When the simulator or an operator cannot start, a request of the harness fails
/// after retries, or a wait runs out ([`Error::Timeout`]).
pub async fn run(cfg: BenchConfig) -> Result<Report> {
    let world = World::start(cfg.clone()).await?;
    let mut world = world;
    let result = run_in(&mut world).await;
    let shutdown = world.shutdown().await;
    let scenarios = result?;
    shutdown?;
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        rss_note: rss_note(&cfg.sim).to_owned(),
        config: cfg,
        scenarios,
    })
}

/// What the memory figures include, by where the simulator ran.
fn rss_note(sim: &SimPlacement) -> &'static str {
    match sim {
        SimPlacement::Child { .. } => {
            "operator peak RSS (`rss`, `operator_rss`) is the bench process: the operators \
             and the harness (its clients, the log of every operator write, the spec \
             documents in flight), no simulator; simulator peak RSS (`sim_rss`) is the \
             `steward sim` child process (every Consul KV entry, config entry, Nomad job, \
             allocation and Vault object it holds). Peaks are VmHWM, reset at the start \
             of each scenario."
        }
        SimPlacement::InProcess => {
            "RSS is the whole process: the simulator (every Consul KV entry, config \
             entry, Nomad job, allocation and Vault object it holds) shares it with the \
             operators and the harness; `cold` also says how much the process grew over \
             a loaded but idle simulator. Run with `--sim child` (the default) for the \
             operators' own figure."
        }
        SimPlacement::External(_) => {
            "operator peak RSS (`rss`, `operator_rss`) is the bench process: the operators \
             and the harness (its clients, the log of every operator write, the spec \
             documents in flight); the external simulator's memory and CPU are not \
             measured. Peaks are VmHWM, reset at the start of each scenario."
        }
    }
}

async fn run_in(world: &mut World) -> Result<Vec<ScenarioReport>> {
    let a = world.start_operator("a")?;
    let timeout = world.cfg.timeout;
    poll(
        "operator a to lead with its caches synced",
        timeout,
        10,
        || {
            if a.is_leader() && a.is_ready() {
                Ok(())
            } else {
                Err(format!("leader {} ready {}", a.is_leader(), a.is_ready()))
            }
        },
    )
    .await?;
    let mut out = vec![cold(world, &a).await?];
    let scenario = world.cfg.scenario;
    let all = scenario == Scenario::All;
    if all || scenario == Scenario::Change {
        settle(world).await?;
        out.push(change(world, &a).await?);
    }
    if all || scenario == Scenario::Drift {
        settle(world).await?;
        out.push(drift(world, &a).await?);
    }
    if all || scenario == Scenario::Steady {
        settle(world).await?;
        out.push(steady(world, &a).await?);
    }
    if all || scenario == Scenario::Failover {
        out.push(failover(world, "a").await?);
    }
    Ok(out)
}

// ----- helpers -----------------------------------------------------------------------

/// Calls `probe` every `every_ms` until it returns `Ok`, for at most `timeout`.
async fn poll<T>(
    what: &str,
    timeout: Duration,
    every_ms: u64,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
                seen,
            });
        }
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
    }
}

/// Waits until no operator wrote anything for [`QUIET`].
async fn settle(world: &World) -> Result<()> {
    settle_for(world, QUIET).await
}

/// Waits until no operator wrote anything for `quiet`.
async fn settle_for(world: &World, quiet: Duration) -> Result<()> {
    let log = world.log.clone();
    let mut mark = log.mark();
    let mut quiet_since = Instant::now();
    poll("the operators to go quiet", world.cfg.timeout, 50, || {
        let now = log.mark();
        if now != mark {
            mark = now;
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() >= quiet {
            Ok(())
        } else {
            Err(format!("last write {:?} ago", quiet_since.elapsed()))
        }
    })
    .await
}

/// What a measured part starts from.
struct Start {
    at: Instant,
    cpu: CpuSnapshot,
    counts: measure::Counts,
    mark: usize,
}

impl Start {
    fn now(world: &World) -> Start {
        // Each scenario reports its own peak.
        world.reset_peak_rss();
        Start {
            at: Instant::now(),
            cpu: CpuSnapshot::now(world.sim_cpu()),
            counts: world.log.counts(),
            mark: world.log.mark(),
        }
    }

    /// The common part of a report: requests, writes, CPU, memory, phases.
    fn finish(&self, world: &World, scenario: &str, handle: &OperatorHandle) -> ScenarioReport {
        let mut r = ScenarioReport {
            scenario: scenario.to_owned(),
            specs: world.cfg.specs,
            wall_s: measure::secs(self.at.elapsed()),
            cpu: CpuSnapshot::now(world.sim_cpu()).since(&self.cpu),
            ..ScenarioReport::default()
        };
        r.set_memory(&world.cfg.sim, Rss::now(), world.sim_rss());
        r.set_requests(&measure::delta(&world.log.counts(), &self.counts));
        r.writes = count_writes(&world.log.writes_since(self.mark));
        let (synced, phases) = phases(world, handle);
        r.synced = synced;
        r.phases = phases;
        r
    }
}

fn count_writes(writes: &[WriteRecord]) -> Writes {
    let mut w = Writes::default();
    for r in writes {
        match r.kind {
            Kind::Object => w.objects += 1,
            Kind::Bookkeeping => w.bookkeeping += 1,
            Kind::Read => {}
        }
    }
    w
}

/// Specs Synced at a generation at least the one the harness last wrote, and every
/// spec by phase.
fn phases(world: &World, handle: &OperatorHandle) -> (usize, BTreeMap<String, usize>) {
    let mut synced = 0;
    let mut by_phase: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..world.cfg.specs {
        let key = specs::key(i, world.cfg.namespaces);
        let name = match handle.phase(&key) {
            Some((phase, _)) => {
                if phase == Phase::Synced {
                    synced += 1;
                }
                phase.as_str().to_owned()
            }
            None => "none".to_owned(),
        };
        *by_phase.entry(name).or_default() += 1;
    }
    (synced, by_phase)
}

/// Writes spec documents in one transaction; returns each key's generation.
async fn put_specs(world: &World, docs: &[(String, String)]) -> Result<Vec<(String, u64)>> {
    let ops: Vec<TxnOp> = docs
        .iter()
        .map(|(key, text)| TxnOp::Set {
            key: format!("{PREFIX}/specs/{key}"),
            value: text.as_bytes().to_vec(),
            flags: 0,
        })
        .collect();
    let what = format!("spec write of {} keys", ops.len());
    let answer = world
        .clients
        .consul
        .txn(&ops, &QueryOptions::new())
        .await
        .map_err(|source| Error::Request {
            what: what.clone(),
            source,
        })?;
    match answer.value {
        TxnOutcome::Committed(pairs) => Ok(pairs
            .into_iter()
            .map(|p| {
                let key = p
                    .key
                    .strip_prefix(&format!("{PREFIX}/specs/"))
                    .unwrap_or(&p.key)
                    .to_owned();
                (key, p.modify_index)
            })
            .collect()),
        TxnOutcome::RolledBack(errors) => Err(Error::RolledBack {
            what,
            errors: format!("{errors:?}"),
        }),
    }
}

// ----- cold --------------------------------------------------------------------------

async fn cold(world: &mut World, a: &OperatorHandle) -> Result<ScenarioReport> {
    let n = world.cfg.specs;
    let ns = world.cfg.namespaces;
    let baseline = Rss::now();
    let sim_baseline = world.sim_rss();
    let (reconciles, renders, parses) = (a.reconciles(), a.renderings(), a.parses());
    let start = Start::now(world);
    // Pending: key → (generation, when its write was acknowledged).
    let mut pending: Vec<(String, u64, Instant)> = Vec::with_capacity(n);
    {
        let w: &World = world;
        let batches = (0..n)
            .step_by(MAX_TXN_OPS)
            .map(|lo| lo..(lo + MAX_TXN_OPS).min(n));
        let mut pushes = futures::stream::iter(batches.map(|range| async move {
            // Each batch's documents are made when it goes out and dropped once written:
            // the harness's memory counts in the bench process's (the operator's) figure.
            let docs: Vec<(String, String)> = range
                .map(|i| (specs::key(i, ns), specs::document(i, ns, "1.0.0")))
                .collect();
            let gens = put_specs(w, &docs).await?;
            Ok::<_, Error>((gens, Instant::now()))
        }))
        .buffer_unordered(PUSH_IN_FLIGHT);
        while let Some(done) = pushes.next().await {
            let (gens, at) = done?;
            pending.extend(gens.into_iter().map(|(k, g)| (k, g, at)));
        }
    }
    let pushed = start.at.elapsed();
    let mut to_synced = Vec::with_capacity(n);
    let mut all_status_at = None;
    // Each sample looks up every pending key: sparse enough not to compete with the
    // operator for the two cores, fine enough for a run of seconds.
    let poll_every = Duration::from_millis(100);
    let deadline = Instant::now() + world.cfg.timeout;
    let mut timed_out = false;
    while !pending.is_empty() {
        let now = Instant::now();
        let mut statuses_missing = 0;
        pending.retain(|(key, generation, pushed_at)| match a.phase(key) {
            Some((Phase::Synced, g)) if g >= *generation => {
                to_synced.push(now - *pushed_at);
                false
            }
            Some((_, g)) if g >= *generation => true,
            _ => {
                statuses_missing += 1;
                true
            }
        });
        if statuses_missing == 0 && all_status_at.is_none() {
            all_status_at = Some(now);
        }
        if pending.is_empty() {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(poll_every).await;
    }
    let all_synced = start.at.elapsed();
    let mut r = start.finish(world, "cold", a);
    r.wall_s = measure::secs(all_synced);
    r.latencies
        .extend(Percentiles::of("spec written → Synced", &to_synced));
    r.figure("push of all specs (txns of 64)", measure::secs(pushed), "s");
    if let Some(at) = all_status_at {
        r.figure(
            "first push → every status written",
            measure::secs(at - start.at),
            "s",
        );
    }
    let writes = world.log.writes_since(start.mark);
    if let Some(last) = writes.iter().rev().find(|w| w.kind == Kind::Object) {
        r.figure(
            "first push → last object write",
            measure::secs(last.at - start.at),
            "s",
        );
    }
    r.figure("first push → all Synced", measure::secs(all_synced), "s");
    if n > 0 {
        r.figure(
            "object writes per spec",
            (r.writes.objects as f64 / n as f64 * 100.0).round() / 100.0,
            "per spec",
        );
        r.figure(
            "requests per spec",
            (r.requests_total as f64 / n as f64 * 100.0).round() / 100.0,
            "per spec",
        );
        let per_spec = |count: u64| (count as f64 / n as f64 * 100.0).round() / 100.0;
        r.figure(
            "reconciles per spec",
            per_spec(a.reconciles() - reconciles),
            "per spec",
        );
        r.figure(
            "renderings per spec (the memo's misses)",
            per_spec(a.renderings() - renders),
            "per spec",
        );
        r.figure(
            "spec parses per spec",
            per_spec(a.parses() - parses),
            "per spec",
        );
    }
    let growth = |peak: f64, before: f64| ((peak - before) * 10.0).round() / 10.0;
    if world.cfg.sim == SimPlacement::InProcess {
        r.figure(
            "RSS before the specs (simulator loaded, operator idle)",
            baseline.current_mib,
            "MiB",
        );
        r.figure(
            "RSS growth over the load",
            growth(r.rss.peak_mib, baseline.current_mib),
            "MiB",
        );
    } else {
        r.figure(
            "operator RSS before the specs (operator idle)",
            baseline.current_mib,
            "MiB",
        );
        r.figure(
            "operator RSS growth over the load",
            growth(r.rss.peak_mib, baseline.current_mib),
            "MiB",
        );
    }
    if let (Some(before), Some(after)) = (sim_baseline, r.sim_rss) {
        r.figure("simulator RSS before the specs", before.current_mib, "MiB");
        r.figure(
            "simulator RSS growth over the load",
            growth(after.peak_mib, before.current_mib),
            "MiB",
        );
    }
    r.notes.push(format!(
        "latency is from each spec's transaction being acknowledged to the operator's status \
         showing Synced (deployment finished), sampled every {} ms; wall time is from the \
         first push to the last spec Synced",
        poll_every.as_millis()
    ));
    if timed_out {
        r.notes.push(format!(
            "TIMED OUT after {:?}: {} specs not Synced",
            world.cfg.timeout,
            pending.len()
        ));
    }
    Ok(r)
}

// ----- change ------------------------------------------------------------------------

async fn change(world: &mut World, a: &OperatorHandle) -> Result<ScenarioReport> {
    let n = world.cfg.specs.max(1);
    let ns = world.cfg.namespaces;
    let start = Start::now(world);
    let (mut to_write, mut to_status, mut to_synced) = (Vec::new(), Vec::new(), Vec::new());
    let mut single_write = 0usize;
    let mut object_writes = 0u64;
    for i in 0..world.cfg.changes {
        // Spread the edits over the specs (a prime stride visits distinct ones).
        let idx = (i * 7919 + 13) % n;
        let key = specs::key(idx, ns);
        let doc = specs::document(idx, ns, &format!("1.1.{i}"));
        let mark = world.log.mark();
        let gens = put_specs(world, &[(key.clone(), doc)]).await?;
        let t0 = Instant::now();
        let generation = gens.first().map_or(0, |(_, g)| *g);
        let mut status_at = None;
        let synced_at = poll(
            &format!("{key} Synced at generation {generation}"),
            world.cfg.timeout,
            1,
            || match a.phase(&key) {
                Some((phase, g)) if g >= generation => {
                    status_at.get_or_insert_with(Instant::now);
                    if phase == Phase::Synced {
                        Ok(Instant::now())
                    } else {
                        Err(format!("{phase:?} at {g}"))
                    }
                }
                other => Err(format!("{other:?}")),
            },
        )
        .await?;
        let writes = world.log.writes_since(mark);
        let objects: Vec<&WriteRecord> = writes.iter().filter(|w| w.kind == Kind::Object).collect();
        object_writes += objects.len() as u64;
        if objects.len() == 1 {
            single_write += 1;
        }
        if let Some(last) = objects.last() {
            to_write.push(last.at.saturating_duration_since(t0));
        }
        if let Some(at) = status_at {
            to_status.push(at - t0);
        }
        to_synced.push(synced_at - t0);
    }
    let mut r = start.finish(world, "change", a);
    r.latencies
        .extend(Percentiles::of("KV write → last owned write", &to_write));
    r.latencies
        .extend(Percentiles::of("KV write → status written", &to_status));
    r.latencies.extend(Percentiles::of(
        "KV write → Synced (deployment done)",
        &to_synced,
    ));
    let changes = world.cfg.changes;
    r.figure("edits", changes as f64, "count");
    r.figure(
        "edits with exactly one object write",
        single_write as f64,
        "count",
    );
    if changes > 0 {
        r.figure(
            "object writes per edit (one object changes: the job)",
            (object_writes as f64 / changes as f64 * 100.0).round() / 100.0,
            "per edit",
        );
    }
    r.notes.push(
        "each edit changes one spec's image (only its Nomad job must change) and waits until \
         that spec is Synced before the next; times start when the spec's KV transaction is \
         acknowledged; writes are timed when their answer arrives; status times are sampled \
         every 1 ms"
            .to_owned(),
    );
    Ok(r)
}

// ----- drift -------------------------------------------------------------------------

async fn drift(world: &mut World, a: &OperatorHandle) -> Result<ScenarioReport> {
    let n = world.cfg.specs.max(1);
    let nsn = world.cfg.namespaces;
    let start = Start::now(world);
    let mut to_repair = Vec::new();
    let mut not_repaired = 0usize;
    for i in 0..world.cfg.drifts {
        let idx = (i * 104_729 + 7) % n;
        let (ns, name) = (specs::namespace(idx, nsn), specs::name(idx));
        let nomad = &world.clients.nomad;
        let job = nomad
            .get_job(&name, &QueryOptions::new().namespace(&ns))
            .await
            .map_err(|source| Error::Request {
                what: format!("GET job {ns}/{name}"),
                source,
            })?
            .value;
        let Some(job) = job else {
            not_repaired += 1;
            continue;
        };
        let mut edited = job.raw.clone();
        edited["TaskGroups"][0]["Tasks"][0]["Config"]["image"] =
            json!(format!("registry.example/{name}:hand-edit-{i}"));
        let mark = world.log.mark();
        nomad
            .register_job(
                &edited,
                &RegisterOptions {
                    namespace: Some(ns.clone()),
                    ..RegisterOptions::default()
                },
            )
            .await
            .map_err(|source| Error::Request {
                what: format!("hand edit of job {ns}/{name}"),
                source,
            })?;
        let t0 = Instant::now();
        let log = world.log.clone();
        let repaired = poll(
            &format!("the repair of job {ns}/{name}"),
            world.cfg.timeout,
            1,
            || {
                log.last_write_since(mark, |w| {
                    w.kind == Kind::Object
                        && w.product == Product::Nomad
                        && &*w.path == "/v1/jobs"
                        && w.status.is_some_and(|s| s < 300)
                })
                .ok_or_else(|| "no job write yet".to_owned())
            },
        )
        .await?;
        to_repair.push(repaired.at.saturating_duration_since(t0));
        // Let the repair's deployment and status settle before the next edit.
        settle_for(world, DRIFT_QUIET).await?;
    }
    let mut r = start.finish(world, "drift", a);
    r.latencies.extend(Percentiles::of(
        "hand edit → repairing job write",
        &to_repair,
    ));
    r.figure("hand edits", world.cfg.drifts as f64, "count");
    if not_repaired > 0 {
        r.figure("jobs missing (skipped)", not_repaired as f64, "count");
    }
    r.notes.push(format!(
        "each edit re-registers one owned job with another image (as a person would with \
         `nomad job run`); the time runs from that registration's answer to the answer of \
         the operator's re-registration; the harness then waits {} ms without operator \
         writes before the next edit (wall time includes those waits)",
        DRIFT_QUIET.as_millis()
    ));
    Ok(r)
}

// ----- steady ------------------------------------------------------------------------

async fn steady(world: &mut World, a: &OperatorHandle) -> Result<ScenarioReport> {
    let start = Start::now(world);
    let sim_before = world.sim_requests().await?;
    tokio::time::sleep(world.cfg.idle).await;
    let sim_after = world.sim_requests().await?;
    let mut r = start.finish(world, "steady", a);
    let minutes = world.cfg.idle.as_secs_f64() / 60.0;
    // Session renewals keep the leader lock alive (every TTL/2): a fixed cost of
    // leadership, listed apart from the requests the specs cause.
    let renewals: u64 = r
        .endpoints
        .iter()
        .filter(|e| e.endpoint.starts_with("/v1/session/renew/"))
        .map(|e| e.count)
        .sum();
    if minutes > 0.0 {
        let per_minute = |n: u64| (n as f64 / minutes * 10.0).round() / 10.0;
        r.figure(
            "operator requests per minute",
            per_minute(r.requests_total.saturating_sub(renewals)),
            "req/min",
        );
        r.figure(
            "session renewals per minute (apart)",
            per_minute(renewals),
            "req/min",
        );
        r.figure(
            "operator writes per minute",
            ((r.writes.objects + r.writes.bookkeeping) as f64 / minutes * 10.0).round() / 10.0,
            "writes/min",
        );
    }
    if let (Some(before), Some(after)) = (sim_before, sim_after) {
        r.figure(
            "requests the simulator answered (cross-check)",
            after.saturating_sub(before) as f64,
            "count",
        );
    }
    r.figure("idle", world.cfg.idle.as_secs_f64(), "s");
    r.notes.push(
        "the harness makes no request while idle; object writes must be 0; requests are \
         blocking-query renewals and the Vault polls (Vault has no watch); the leader's \
         session renewals are counted apart"
            .to_owned(),
    );
    Ok(r)
}

// ----- failover ----------------------------------------------------------------------

async fn failover(world: &mut World, leader: &str) -> Result<ScenarioReport> {
    // A graceful hand-over first (the leader stops cleanly and releases the lock), then
    // a crash (the new leader is killed; its session lives until Consul ends it).
    let graceful = hand_over(world, leader, "b", Ending::Graceful).await?;
    let crash = hand_over(world, "b", "c", Ending::Crash).await?;
    // The crash first: its kill → new leader is the headline.
    let timings = |h: &HandOver| {
        [
            ("new leader", h.led),
            ("first reconcile", h.first),
            ("every spec verified", h.caught_up),
        ]
    };
    let (crashed, graceful) = (timings(&crash), timings(&graceful));
    let mut r = crash.report;
    r.latencies = [("crash: kill", crashed), ("graceful: stop", graceful)]
        .into_iter()
        .flat_map(|(how, took)| {
            took.into_iter()
                .flat_map(move |(what, t)| Percentiles::of(&format!("{how} → {what}"), &[t]))
        })
        .collect();
    r.figure(
        "leader session TTL",
        world.cfg.leader_ttl.as_secs_f64(),
        "s",
    );
    r.figure("lock delay", world.cfg.lock_delay.as_secs_f64(), "s");
    r.notes.push(format!(
        "operators: {:?} at the end; a graceful stop releases the lock, so the next leader \
         takes it at once; a killed leader's session lives until its TTL runs out (the \
         simulator, like Consul, may take up to twice the TTL), then the lock delay holds \
         the lock: these bound the crash failover, not the operator",
        world.operator_names()
    ));
    Ok(r)
}

/// How the leader of a [`hand_over`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Cancelled: releases the lock and destroys its session.
    Graceful,
    /// Killed like a crashed process.
    Crash,
}

/// What one hand-over took, from the leader's end.
struct HandOver {
    led: Duration,
    first: Duration,
    caught_up: Duration,
    report: ScenarioReport,
}

/// Starts `next`, lets it sync, ends `leader` and measures until `next` leads, has
/// reconciled and has verified every spec.
async fn hand_over(
    world: &mut World,
    leader: &str,
    next: &str,
    ending: Ending,
) -> Result<HandOver> {
    let timeout = world.cfg.timeout;
    let b = world.start_operator(next)?;
    poll(
        &format!("operator {next}'s caches to sync"),
        timeout,
        10,
        || {
            if b.is_ready() {
                Ok(())
            } else {
                Err("caches not synced".to_owned())
            }
        },
    )
    .await?;
    settle(world).await?;
    let start = Start::now(world);
    let before = b.reconciles();
    let verified_before = b.verified();
    let t0 = Instant::now();
    match ending {
        Ending::Graceful => world.stop(leader).await?,
        Ending::Crash => world.kill(leader),
    }
    let mut led_at = None;
    let first = poll(
        &format!("operator {next}'s first reconcile"),
        timeout,
        2,
        || {
            if led_at.is_none() && b.is_leader() {
                led_at = Some(Instant::now());
            }
            if b.reconciles() > before {
                Ok(Instant::now())
            } else {
                Err(format!("leader {}", b.is_leader()))
            }
        },
    )
    .await?;
    let n = world.cfg.specs;
    let caught_up = poll(
        &format!("operator {next} to verify every spec"),
        timeout,
        10,
        || {
            let v = b.verified();
            if v >= n && (v > verified_before || verified_before >= n) {
                Ok(Instant::now())
            } else {
                Err(format!("{v} of {n} verified"))
            }
        },
    )
    .await?;
    let report = start.finish(world, "failover", &b);
    let led = led_at.unwrap_or(first);
    Ok(HandOver {
        led: led.saturating_duration_since(t0),
        first: first.saturating_duration_since(t0),
        caught_up: caught_up.saturating_duration_since(t0),
        report,
    })
}
