//! Persistence of the simulated state across restarts (`--data-dir`).
//!
//! The whole state of the three products lives in one file, `state.json`, written
//! atomically (temporary file, fsync, rename, fsync of the directory) and debounced
//! after changes. A file that exists but cannot be parsed is reported and left in
//! place: a torn or corrupt file is never silently replaced by an empty state.

use crate::product::ProductState;
use crate::{Error, Product, Result};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Marker written in every state file, to recognise foreign files.
pub const FORMAT: &str = "steward-sim-state";
/// Current state-file version.
pub const VERSION: u64 = 1;
/// File name inside the data directory.
pub const FILE_NAME: &str = "state.json";

/// The state file inside `dir`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the saved snapshot of each product, if a state file exists.
///
/// # Errors
/// [`Error::ReadState`] when the file cannot be read, [`Error::CorruptState`] when it
/// is torn, not JSON, or not a simulator state file.
pub fn load(dir: &Path) -> Result<Option<Vec<(Product, Value)>>> {
    let path = state_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::ReadState { path, source }),
    };
    let corrupt = |reason: String| Error::CorruptState {
        path: path.clone(),
        reason,
    };
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(corrupt(format!("missing \"format\": \"{FORMAT}\" marker")));
    }
    match doc.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        other => {
            return Err(corrupt(format!(
                "unsupported version {other:?}, expected {VERSION}"
            )));
        }
    }
    let mut out = Vec::new();
    for product in Product::ALL {
        match doc.get(product.as_str()) {
            Some(v) => out.push((product, v.clone())),
            None => return Err(corrupt(format!("no \"{product}\" section"))),
        }
    }
    Ok(Some(out))
}

/// Writes the snapshot of every product atomically.
///
/// # Errors
/// [`Error::WriteState`] when any step of the atomic write fails; the previous file
/// is then still intact.
pub fn save(dir: &Path, states: &[Arc<dyn ProductState>]) -> Result<()> {
    // `{"format":...,"version":1,"consul":{...},"nomad":{...},"vault":{...}}`: each
    // product's section is serialised straight from its tables.
    let mut doc =
        serde_json::to_vec(&json!({ "format": FORMAT, "version": VERSION })).unwrap_or_default();
    doc.pop();
    for state in states {
        doc.push(b',');
        doc.extend(serde_json::to_vec(state.product().as_str()).unwrap_or_default());
        doc.push(b':');
        doc.extend(state.snapshot_json());
    }
    doc.extend_from_slice(b"}\n");
    let path = state_path(dir);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&doc)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|source| Error::WriteState { path, source })
}

/// Runs until `cancel`: after any change in any product, waits `debounce` and writes
/// the state file; writes once more on cancellation. While changes keep coming, writes
/// are at least [`WRITE_SPACING`] times the last write's duration apart, so a large
/// state under constant change costs a bounded share of the CPU.
pub(crate) async fn run_writer(
    dir: PathBuf,
    states: Vec<Arc<dyn ProductState>>,
    debounce: Duration,
    cancel: CancellationToken,
) {
    let mut receivers: Vec<_> = states.iter().map(|s| s.clock().subscribe()).collect();
    let mut last_write = Duration::ZERO;
    loop {
        let changed = async {
            let futs = receivers.iter_mut().map(|rx| Box::pin(rx.changed()));
            let _ = futures::future::select_all(futs).await;
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = changed => {}
        }
        let wait = debounce.max(last_write * WRITE_SPACING);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        for rx in receivers.iter_mut() {
            rx.borrow_and_update();
        }
        let started = std::time::Instant::now();
        write_logged(&dir, &states).await;
        last_write = started.elapsed();
    }
    write_logged(&dir, &states).await;
}

/// Writes under constant change are at least this many times the duration of the
/// last write apart (the writer then uses at most about 1/(1+this) of a core).
pub const WRITE_SPACING: u32 = 8;

async fn write_logged(dir: &Path, states: &[Arc<dyn ProductState>]) {
    let dir = dir.to_path_buf();
    let states = states.to_vec();
    let result = tokio::task::spawn_blocking(move || save(&dir, &states)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "simulator state not saved"),
        Err(e) => tracing::error!(error = %e, "simulator state writer panicked"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The state file is written section by section from each product's serialised
    /// tables; it must hold exactly what the products' snapshots are, in the same
    /// layout as before (`format`, `version`, then one key per product).
    #[tokio::test]
    async fn the_state_file_holds_each_products_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let sim = crate::Sim::start(crate::SimConfig::default())
            .await
            .unwrap();
        let c = reqwest::Client::new();
        c.put(format!("{}/v1/kv/a/b", sim.consul_url()))
            .body("v")
            .send()
            .await
            .unwrap();
        let job = serde_json::json!({"Job": {"ID": "j", "Type": "batch", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "docker"}]}]}});
        c.put(format!("{}/v1/jobs", sim.nomad_url()))
            .json(&job)
            .send()
            .await
            .unwrap();
        let states: Vec<Arc<dyn ProductState>> =
            vec![sim.consul.clone(), sim.nomad.clone(), sim.vault.clone()];
        save(dir.path(), &states).unwrap();
        let text = std::fs::read_to_string(state_path(dir.path())).unwrap();
        assert!(text.ends_with("}\n"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["format", "version", "consul", "nomad", "vault"]);
        for s in &states {
            assert_eq!(doc[s.product().as_str()], s.snapshot(), "{}", s.product());
        }
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.len(), 3);
        sim.shutdown().await;
    }
}
