//! `steward bench`: wiring of the `steward-bench` harness (which does the work).

use std::time::Duration;

use anyhow::Context as _;
use steward_bench::{BenchConfig, Report, Scenario, SimAddresses, SimPlacement};

use crate::args::{BenchArgs, BenchOutput, BenchScenario, BenchSim, LogFormat};
use crate::exit::Exit;
use crate::logging;

/// `host:port` or a URL, as a base URL.
fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Where the simulator runs.
///
/// # Errors
/// `--sim external` without all three addresses.
pub fn placement(args: &BenchArgs) -> anyhow::Result<SimPlacement> {
    Ok(match args.sim {
        // This very binary serves `steward sim`.
        BenchSim::Child => SimPlacement::Child {
            program: Some(std::env::current_exe().context("cannot find the steward executable")?),
        },
        BenchSim::InProcess => SimPlacement::InProcess,
        BenchSim::External => {
            let need = |v: &Option<String>, flag: &str, env: &str| {
                v.as_deref().map(base_url).with_context(|| {
                    format!("--sim external needs {flag} (or {env}): the simulator's address")
                })
            };
            SimPlacement::External(SimAddresses {
                consul: need(&args.consul, "--consul", "CONSUL_HTTP_ADDR")?,
                nomad: need(&args.nomad, "--nomad", "NOMAD_ADDR")?,
                vault: need(&args.vault, "--vault", "VAULT_ADDR")?,
            })
        }
    })
}

/// The harness settings for `args`.
///
/// # Errors
/// See [`placement`].
pub fn config(args: &BenchArgs) -> anyhow::Result<BenchConfig> {
    let defaults = BenchConfig::default();
    Ok(BenchConfig {
        sim: placement(args)?,
        scenario: match args.scenario {
            BenchScenario::Cold => Scenario::Cold,
            BenchScenario::Change => Scenario::Change,
            BenchScenario::Drift => Scenario::Drift,
            BenchScenario::Steady => Scenario::Steady,
            BenchScenario::Failover => Scenario::Failover,
            BenchScenario::All => Scenario::All,
            BenchScenario::Edge => {
                anyhow::bail!("`bench edge` does not use the operator harness")
            }
        },
        specs: args.specs,
        rtt: Duration::from_millis(args.rtt),
        changes: args.changes,
        drifts: args.drifts,
        idle: Duration::from_secs(args.idle),
        concurrency: args.concurrency.unwrap_or(defaults.concurrency),
        leader_ttl: args.leader_ttl.unwrap_or(defaults.leader_ttl),
        lock_delay: args.lock_delay.unwrap_or(defaults.lock_delay),
        timeout: args.timeout,
        ..defaults
    })
}

/// `steward bench edge`: the edge control plane's figures, with a real Envoy.
async fn edge(args: &BenchArgs) -> anyhow::Result<Exit> {
    let root = std::env::current_dir().context("cannot read the current directory")?;
    let envoy = steward_edge::envoy_bin::find(&root).map_err(|why| anyhow::anyhow!(why))?;
    let report = steward_edge::bench::run(&steward_edge::bench::BenchConfig {
        translate_routes: args.specs,
        envoy_routes: 1_000,
        samples: args.changes.clamp(1, 1_000),
        envoy,
        timeout: args.timeout,
    })
    .await
    .map_err(|why| anyhow::anyhow!(why))?;
    match args.output {
        BenchOutput::Table => print!("{}", report.table()),
        BenchOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(Exit::Ok)
}

/// Whether every scenario ended with every spec Synced.
fn converged(report: &Report) -> bool {
    report.scenarios.iter().all(|s| s.synced == s.specs)
}

/// Runs the benchmark and prints its report.
///
/// # Errors
/// When the harness could not produce figures (see `steward_bench::Error`).
pub async fn run(args: &BenchArgs) -> anyhow::Result<Exit> {
    // Logs would interleave with the report; RUST_LOG still wins.
    logging::init("error", LogFormat::Text)?;
    if args.scenario == BenchScenario::Edge {
        return edge(args).await;
    }
    let report = steward_bench::run(config(args)?).await?;
    match args.output {
        BenchOutput::Table => print!("{}", report.table()),
        BenchOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if converged(&report) {
        Exit::Ok
    } else {
        Exit::NotConverged
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command};

    #[test]
    fn flags_map_onto_the_harness_settings() {
        let cli = Cli::try_parse_from([
            "steward",
            "bench",
            "change",
            "--specs",
            "1000",
            "--rtt",
            "5",
            "--changes",
            "20",
            "--idle",
            "3",
            "--lock-delay",
            "1s",
            "-o",
            "json",
        ])
        .unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        let c = config(&args).unwrap();
        assert_eq!(c.scenario, Scenario::Change);
        assert_eq!(c.specs, 1000);
        assert_eq!(c.rtt, Duration::from_millis(5));
        assert_eq!(c.changes, 20);
        assert_eq!(c.idle, Duration::from_secs(3));
        assert_eq!(c.lock_delay, Duration::from_secs(1));
        assert_eq!(c.leader_ttl, BenchConfig::default().leader_ttl);
        assert_eq!(args.output, BenchOutput::Json);
        assert!(matches!(c.sim, SimPlacement::Child { program: Some(_) }));
    }

    fn bench_args(extra: &[&str]) -> BenchArgs {
        let mut argv = vec!["steward", "bench", "cold"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        args
    }

    #[test]
    fn external_takes_three_addresses_as_urls() {
        let args = bench_args(&[
            "--sim",
            "external",
            "--consul",
            "127.0.0.1:8500",
            "--nomad",
            "http://127.0.0.1:4646/",
            "--vault",
            "http://127.0.0.1:8200",
        ]);
        let SimPlacement::External(a) = placement(&args).unwrap() else {
            panic!("not external")
        };
        assert_eq!(a.consul, "http://127.0.0.1:8500");
        assert_eq!(a.nomad, "http://127.0.0.1:4646");
        assert_eq!(a.vault, "http://127.0.0.1:8200");
    }

    #[test]
    fn external_without_an_address_is_a_usage_error() {
        let mut args = bench_args(&["--sim", "external", "--consul", "127.0.0.1:8500"]);
        // The developer's shell may set NOMAD_ADDR / VAULT_ADDR: decide here.
        args.nomad = None;
        args.vault = Some("127.0.0.1:8200".to_owned());
        let e = placement(&args).unwrap_err().to_string();
        assert!(e.contains("--nomad"), "{e}");
        let mut args = bench_args(&["--sim", "in-process"]);
        args.consul = Some("ignored:1".to_owned());
        assert_eq!(placement(&args).unwrap(), SimPlacement::InProcess);
    }
}
