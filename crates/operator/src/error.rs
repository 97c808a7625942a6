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

/// `error: cause: cause...` on one line, without repeats (for logs, status messages and
/// events: what a server answered, never a token).
#[must_use]
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cur = error.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}
