//! The client API's cache: a small SQLite file holding the answers it fetched (as the JSON
//! it serves, by dataset, query key and epoch) and each dataset's contribution count over
//! time. It holds only released statistics, never a share or a secret; deleting it loses
//! nothing but the history.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;
use rusqlite::{params, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS answers (
    dataset  TEXT NOT NULL,
    query    TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    json     TEXT NOT NULL,
    configured INTEGER NOT NULL,
    computed INTEGER NOT NULL,
    PRIMARY KEY (dataset, query, epoch)
);
CREATE TABLE IF NOT EXISTS history (
    dataset TEXT NOT NULL,
    at      INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (dataset, at)
);
";

/// Most history points kept per dataset (older ones are dropped).
const MAX_HISTORY: i64 = 2000;

pub struct Cache {
    conn: Mutex<rusqlite::Connection>,
}

impl Cache {
    pub fn open(path: &Path) -> Result<Cache> {
        Ok(Cache {
            conn: Mutex::new(crate::store::open(path, SCHEMA)?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer to `query` over `epoch`.
    pub fn get(&self, dataset: &str, query: &str, epoch: u64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT json FROM answers WHERE dataset = ?1 AND query = ?2 AND epoch = ?3",
                params![dataset, query, epoch as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn put(
        &self,
        dataset: &str,
        query: &str,
        epoch: u64,
        json: &str,
        configured: bool,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO answers (dataset, query, epoch, json, configured, computed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                dataset,
                query,
                epoch as i64,
                json,
                configured,
                crate::store::now_secs()
            ],
        )?;
        Ok(())
    }

    /// Stores an epoch's configured answers (dataset, query key, epoch, JSON) in one
    /// transaction, so that a reader sees all of them or none.
    pub fn put_configured(&self, answers: &[(&str, &str, u64, &str)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (dataset, query, epoch, json) in answers {
            tx.execute(
                "INSERT OR REPLACE INTO answers (dataset, query, epoch, json, configured, computed)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                params![
                    dataset,
                    query,
                    *epoch as i64,
                    json,
                    crate::store::now_secs()
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every configured answer of the newest epoch that has any, with that epoch.
    pub fn configured(&self, dataset: &str) -> Result<(u64, Vec<String>)> {
        let conn = self.conn();
        let epoch: Option<i64> = conn.query_row(
            "SELECT MAX(epoch) FROM answers WHERE dataset = ?1 AND configured = 1",
            params![dataset],
            |r| r.get(0),
        )?;
        let Some(epoch) = epoch else {
            return Ok((0, Vec::new()));
        };
        let mut stmt = conn.prepare(
            "SELECT json FROM answers WHERE dataset = ?1 AND configured = 1 AND epoch = ?2 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![dataset, epoch], |r| r.get::<_, String>(0))?;
        Ok((epoch as u64, rows.collect::<rusqlite::Result<_>>()?))
    }

    /// Records the count of `dataset` now, if it changed since the last record.
    pub fn record_count(&self, dataset: &str, count: u64) -> Result<()> {
        let conn = self.conn();
        let last: Option<i64> = conn
            .query_row(
                "SELECT count FROM history WHERE dataset = ?1 ORDER BY at DESC LIMIT 1",
                params![dataset],
                |r| r.get(0),
            )
            .optional()?;
        if last == Some(count as i64) {
            return Ok(());
        }
        conn.execute(
            "INSERT OR REPLACE INTO history (dataset, at, count) VALUES (?1, ?2, ?3)",
            params![dataset, crate::store::now_secs(), count as i64],
        )?;
        conn.execute(
            "DELETE FROM history WHERE dataset = ?1 AND at NOT IN
             (SELECT at FROM history WHERE dataset = ?1 ORDER BY at DESC LIMIT ?2)",
            params![dataset, MAX_HISTORY],
        )?;
        Ok(())
    }

    /// (unix time, count) of `dataset`, oldest first.
    pub fn history(&self, dataset: &str) -> Result<Vec<(i64, u64)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT at, count FROM history WHERE dataset = ?1 ORDER BY at")?;
        let rows = stmt.query_map(params![dataset], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_history_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.db");
        let c = Cache::open(&path).unwrap();
        c.put("d", "k1", 1, "{\"a\":1}", true).unwrap();
        c.put("d", "k1", 2, "{\"a\":2}", true).unwrap();
        c.put("d", "k2", 2, "{\"b\":2}", false).unwrap();
        c.record_count("d", 10).unwrap();
        c.record_count("d", 10).unwrap();
        drop(c);
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.get("d", "k1", 1).unwrap().as_deref(), Some("{\"a\":1}"));
        assert_eq!(c.get("d", "k2", 1).unwrap(), None);
        assert_eq!(
            c.configured("d").unwrap(),
            (2, vec!["{\"a\":2}".to_string()])
        );
        assert_eq!(c.configured("e").unwrap(), (0, vec![]));
        assert_eq!(c.history("d").unwrap().len(), 1);
    }
}
