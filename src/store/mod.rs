//! Embedded SQLite stores (rusqlite, bundled, WAL): one per party (`party`) holding share
//! pairs, one for the coordinator (`coordinator`) holding admission decisions and no shares.
//! Every write that matters is one transaction, so a crash leaves no half-written row.

pub mod coordinator;
pub mod party;

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::Connection;

/// Opens (creating if needed) a database in WAL mode with durable commits.
pub(crate) fn open(path: &Path, schema: &str) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(schema)
        .with_context(|| format!("cannot create the schema in {}", path.display()))?;
    Ok(conn)
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
