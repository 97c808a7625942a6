use std::path::PathBuf;

/// Result alias for the simulator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the simulator could not start or persist its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen for {product} on {addr}")]
    Bind {
        /// Product whose listener failed.
        product: crate::Product,
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file exists but cannot be read.
    #[error("cannot read simulator state file {path}")]
    ReadState {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file is torn or corrupt. It is never replaced by an empty state:
    /// move it aside to start afresh.
    #[error(
        "simulator state file {path} is corrupt ({reason}); it was left untouched: move it aside to start with an empty state"
    )]
    CorruptState {
        /// File.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the state file failed.
    #[error("cannot write simulator state file {path}")]
    WriteState {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}
