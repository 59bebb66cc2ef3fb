//! One module per subcommand. Servers (`coordinator`, `party`) expose `serve` for in-process
//! use (demo, tests) beside `run` for the command line; clients go through `client`.

pub mod admission;
pub mod api;
pub mod assemble;
pub mod client;
pub mod coordinator;
pub mod demo;
pub mod drain;
pub mod init;
pub mod keygen;
pub mod logging;
pub mod notary;
pub mod party;
pub mod prove;
pub mod query;
pub mod ratelimit;
pub mod share;
pub mod sources;
pub mod status;

use std::path::{Path, PathBuf};

/// Default place of a role's file: next to the cluster file, e.g. `party0.key.pem`.
pub fn beside(cluster_file: &Path, name: &str) -> PathBuf {
    cluster_file
        .parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
