//! Why a benchmark run could not produce figures.

use std::time::Duration;

/// Why a benchmark run failed (a slow run is not a failure: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Tokio runtime could not be built.
    #[error("cannot start the {what} runtime")]
    Runtime {
        /// Which runtime.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The simulator did not start.
    #[error("the simulator did not start")]
    Sim(#[source] steward_sim::Error),
    /// The simulator process could not be spawned or did not announce its addresses.
    #[error("the simulator process `{program} sim` did not start: {message}")]
    SimProcess {
        /// The program run.
        program: String,
        /// What went wrong (with the end of its stderr when it exited).
        message: String,
    },
    /// A request to the simulator's admin API (`/_sim/v1/…`) failed.
    #[error("the simulator admin request {what} failed: {message}")]
    Admin {
        /// What was asked.
        what: String,
        /// Transport error or status and body.
        message: String,
    },
    /// The external simulator already holds state of an earlier run, which would skew
    /// every figure.
    #[error(
        "the simulator at {url} already holds {keys} keys under {prefix}/: start a fresh \
         `steward sim` for each bench run"
    )]
    NotFresh {
        /// Consul URL.
        url: String,
        /// KV prefix.
        prefix: String,
        /// How many keys.
        keys: usize,
    },
    /// A client of the simulator could not be configured.
    #[error("cannot configure the {product} client")]
    Client {
        /// Product.
        product: &'static str,
        /// Cause.
        #[source]
        source: steward_hashi::ConfigError,
    },
    /// The operator could not be built or its run failed.
    #[error("operator {name}")]
    Operator {
        /// Operator name.
        name: String,
        /// Cause.
        #[source]
        source: steward_operator::Error,
    },
    /// A request of the harness itself failed (after the client's retries).
    #[error("the harness request {what} failed")]
    Request {
        /// What was asked.
        what: String,
        /// Cause.
        #[source]
        source: steward_hashi::Error,
    },
    /// A Consul transaction of the harness was rolled back.
    #[error("the harness transaction {what} was rolled back: {errors}")]
    RolledBack {
        /// What was written.
        what: String,
        /// Server errors.
        errors: String,
    },
    /// A wait ran out.
    #[error("timed out after {after:?} waiting for {what}; last seen: {seen}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
        /// What the last check saw.
        seen: String,
    },
    /// The guardrail policy or a generated spec does not load (a bug of the harness).
    #[error("the bench input {what} is invalid: {message}")]
    Input {
        /// Which input.
        what: String,
        /// Diagnostics.
        message: String,
    },
    /// A task of the harness, the simulator or an operator panicked or was cancelled.
    #[error("the {what} task failed: {message}")]
    Task {
        /// Which task.
        what: String,
        /// Panic message or cancellation.
        message: String,
    },
}

/// Result of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;
