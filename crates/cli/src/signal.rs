//! Waiting for Ctrl-C or SIGTERM (what `kill`, systemd and Nomad send).

use std::future::Future;

/// Registers the Ctrl-C (SIGINT) and SIGTERM handlers now and returns a future that
/// resolves on the first of them.
///
/// Registration happens at the call, not at the first poll: a command calls this before
/// it prints its addresses, so a supervisor that reads them and signals at once never
/// meets the default action (which would kill the process without a clean shutdown).
/// Must be called inside the Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, interrupt) {
                (Some(mut term), Some(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Some(mut term), None) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                (None, Some(mut interrupt)) => {
                    let _ = interrupt.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
