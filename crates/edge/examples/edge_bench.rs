//! The edge benchmark without the `steward` binary: `cargo run --release -p steward-edge
//! --example edge_bench [TRANSLATE_ROUTES] [ENVOY_ROUTES] [SAMPLES]` from the repository
//! root (Envoy from `scripts/install-test-deps.sh`). `steward bench edge` runs the same.

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), String> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let config = steward_edge::bench::BenchConfig {
        translate_routes: arg(1, 10_000),
        envoy_routes: arg(2, 1_000),
        samples: arg(3, 50),
        envoy: steward_edge::envoy_bin::find(&root)?,
        timeout: Duration::from_secs(60),
    };
    let report = steward_edge::bench::run(&config).await?;
    print!("{}", report.table());
    Ok(())
}
