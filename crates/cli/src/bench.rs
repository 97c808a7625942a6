//! `steward bench`: wiring of the `steward-bench` harness (which does the work).

use std::time::Duration;

use steward_bench::{BenchConfig, Report, Scenario};

use crate::args::{BenchArgs, BenchOutput, BenchScenario, LogFormat};
use crate::exit::Exit;
use crate::logging;

/// The harness settings for `args`.
pub fn config(args: &BenchArgs) -> BenchConfig {
    let defaults = BenchConfig::default();
    BenchConfig {
        scenario: match args.scenario {
            BenchScenario::Cold => Scenario::Cold,
            BenchScenario::Change => Scenario::Change,
            BenchScenario::Drift => Scenario::Drift,
            BenchScenario::Steady => Scenario::Steady,
            BenchScenario::Failover => Scenario::Failover,
            BenchScenario::All => Scenario::All,
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
    }
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
    let report = steward_bench::run(config(args)).await?;
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
        let c = config(&args);
        assert_eq!(c.scenario, Scenario::Change);
        assert_eq!(c.specs, 1000);
        assert_eq!(c.rtt, Duration::from_millis(5));
        assert_eq!(c.changes, 20);
        assert_eq!(c.idle, Duration::from_secs(3));
        assert_eq!(c.lock_delay, Duration::from_secs(1));
        assert_eq!(c.leader_ttl, BenchConfig::default().leader_ttl);
        assert_eq!(args.output, BenchOutput::Json);
    }
}
