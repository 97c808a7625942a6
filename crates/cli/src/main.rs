//! `steward`: argument parsing and wiring. Decisions live in small pure functions in
//! the modules below (each with unit tests); the libraries do the work.

mod api_token;
mod args;
mod bench;
mod bootstrap;
mod cluster;
mod diff;
mod doctor;
mod edge;
mod events;
mod exit;
mod files;
mod gc;
mod logging;
mod operator;
mod push;
mod render;
mod schema;
mod signal;
mod sim;
mod status;
mod style;
mod table;
mod validate;
mod version;

use std::process::ExitCode;

use clap::Parser as _;

use args::{Cli, Command, EdgeCommand, GcCommand};
use exit::{Exit, exit_of};

// jemalloc rather than glibc malloc for the whole binary (the operator, the simulator
// and the bench): glibc spent about a third of the operator's CPU in
// `_int_malloc`/`malloc_consolidate` on the cold path and kept freed memory as RSS.
// Its settings are in `.cargo/config.toml` (README, "Dependency notes"). The
// `system-allocator` feature leaves it out, for heap profilers that hook `malloc`
// (heaptrack): see BENCHMARKS.md.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            eprintln!("error: {}", error_text(&error));
            ExitCode::from(exit_of(&error).code())
        }
    }
}

/// Prints a parse error (or help) as clap does. A usage error of `steward diff` exits 1,
/// not clap's 2: for `diff`, 2 means "changes" and CI must not take a typo for one.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS;
    }
    let is_diff = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_some_and(|a| a == "diff");
    ExitCode::from(if is_diff {
        Exit::Invalid.code()
    } else {
        Exit::Usage.code()
    })
}

/// The error and its causes, one per line.
fn error_text(error: &anyhow::Error) -> String {
    let error = match error.downcast_ref::<exit::Failure>() {
        Some(f) => &f.error,
        None => error,
    };
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    text
}

async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Validate(a) => validate::run(&a),
        Command::Render(a) => render::run(&a),
        Command::Schema(a) => Ok(schema::run(&a)),
        Command::Sim(a) => {
            logging::init("warn", args::LogFormat::Text)?;
            sim::run(&a).await
        }
        Command::Push(a) => push::run(&a).await,
        Command::Diff(a) => diff::run(&a).await,
        Command::Status(a) => status::run(&a).await,
        Command::Events(a) => events::run(&a).await,
        Command::Gc(GcCommand::Approve(a)) => gc::approve(&a).await,
        Command::Run(a) => operator::run(&a).await,
        Command::Dev(a) => operator::dev(&a).await,
        Command::Doctor(a) => doctor::run(&a).await,
        Command::Bootstrap(a) => bootstrap::run(&a).await,
        Command::Bench(a) => bench::run(&a).await,
        Command::Edge(EdgeCommand::EnvoyBootstrap(a)) => Ok(edge::envoy_bootstrap(&a)),
    }
}
