//! Exit codes and the error type that carries one.

use std::fmt;

/// What the process exits with. Documented in `steward --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked (and, with `--wait`, converged; for `diff`: no change).
    Ok,
    /// The input is invalid: spec or policy diagnostics, duplicate keys (for `diff`:
    /// any failure).
    Invalid,
    /// Usage or I/O problem: bad flags, unreadable file, no files, unreachable server.
    Usage,
    /// `steward diff` only: the push would change something.
    Changes,
    /// A write failed: a CAS conflict (someone else wrote concurrently) or a failed txn.
    WriteFailed,
    /// `--wait` did not see every spec `Synced` before the timeout.
    NotConverged,
}

impl Exit {
    /// The process exit code. `Changes` shares 2 with `Usage`: `steward diff` exits 2
    /// for changes (as `terraform plan -detailed-exitcode` does) and 1 for every
    /// failure, so the two never meet.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Invalid => 1,
            Exit::Usage | Exit::Changes => 2,
            Exit::WriteFailed => 3,
            Exit::NotConverged => 4,
        }
    }
}

/// The exit-code table for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (with --wait: every spec Synced)
  1  invalid input (spec or policy diagnostics, duplicate keys)
  2  usage or I/O error (bad flags, unreadable file, no files found, server unreachable)
  3  write failure (CAS conflict: someone else wrote concurrently; failed transaction)
  4  not converged (--wait timed out, or a spec ended in a phase other than Synced)";

/// An error that decides the exit code; any other error exits with [`Exit::Usage`].
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub exit: Exit,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// Wraps `error` so it exits with `exit`.
pub fn fail(exit: Exit, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        error: error.into(),
    })
}

/// The exit code an error maps to.
pub fn exit_of(error: &anyhow::Error) -> Exit {
    error
        .downcast_ref::<Failure>()
        .map_or(Exit::Usage, |f| f.exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_errors_are_usage_errors_and_failures_keep_their_code() {
        assert_eq!(exit_of(&anyhow::anyhow!("boom")), Exit::Usage);
        let e = fail(Exit::WriteFailed, anyhow::anyhow!("cas"));
        assert_eq!(exit_of(&e), Exit::WriteFailed);
        assert_eq!(e.to_string(), "cas");
        assert_eq!(Exit::NotConverged.code(), 4);
        assert_eq!(Exit::Changes.code(), 2);
    }
}
