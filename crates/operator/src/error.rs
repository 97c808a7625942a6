//! Errors of the operator's public entry points.

use std::net::SocketAddr;

/// What [`crate::Operator::new`] and [`crate::Operator::run`] fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is unusable.
    #[error("invalid operator configuration: {message}")]
    Config {
        /// What is wrong, naming the field.
        message: String,
    },
    /// [`crate::Operator::run`] was called a second time on the same operator.
    #[error("the operator is already running (run may be called once)")]
    AlreadyRunning,
    /// The HTTP API could not listen.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP API server stopped with an error.
    #[error("the HTTP API server failed")]
    Serve {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A background task of the operator panicked or ended unexpectedly.
    #[error("operator task {task} failed: {message}")]
    TaskFailed {
        /// Which task.
        task: &'static str,
        /// What happened (panic payload or reason).
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
