//! The coordinator's store: admission decisions (never a share). A contribution is
//! `preparing` until all three parties stored it, then `committed` with the next sequence
//! number of its dataset, or `aborted`. Decisions (commit or abort) not yet acknowledged by a
//! party wait in an outbox and are delivered again until they are: a party that missed an
//! abort would otherwise keep a pending row, and with it the single-use markers of a proven
//! contribution, forever.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::params;

use crate::wire::Id;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS contributions (
    id       BLOB PRIMARY KEY,
    dataset  TEXT NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('preparing', 'committed', 'aborted')),
    seq      INTEGER,
    created  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS contributions_seq ON contributions(dataset, seq);
CREATE TABLE IF NOT EXISTS attestations (
    id           BLOB PRIMARY KEY,
    contribution BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS abort_reasons (
    id       BLOB PRIMARY KEY,
    reason   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_buckets (
    kind     TEXT NOT NULL,
    address  TEXT NOT NULL,
    tokens   REAL NOT NULL,
    at_ms    INTEGER NOT NULL,
    PRIMARY KEY (kind, address)
);
CREATE TABLE IF NOT EXISTS outbox (
    id       BLOB NOT NULL,
    party    INTEGER NOT NULL,
    PRIMARY KEY (id, party)
);
";

pub struct CoordinatorStore {
    conn: Mutex<rusqlite::Connection>,
}

fn id_of(b: Vec<u8>) -> rusqlite::Result<Id> {
    b.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })
}

impl CoordinatorStore {
    pub fn open(path: &Path) -> Result<CoordinatorStore> {
        Ok(CoordinatorStore {
            conn: Mutex::new(super::open(path, SCHEMA)?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every rate bucket kept: (kind, address, tokens, when in Unix milliseconds).
    pub fn rate_buckets(&self) -> Result<Vec<(String, String, f64, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT kind, address, tokens, at_ms FROM rate_buckets")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Writes one rate bucket's state.
    pub fn save_rate_bucket(
        &self,
        kind: &str,
        address: &str,
        tokens: f64,
        at_ms: i64,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO rate_buckets (kind, address, tokens, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, address) DO UPDATE SET tokens = ?3, at_ms = ?4",
                params![kind, address, tokens, at_ms],
            )
            .context("cannot record a rate limit")?;
        Ok(())
    }

    /// Forgets rate buckets last written before `at_ms` (full again by then).
    pub fn prune_rate_buckets(&self, before_ms: i64) -> Result<()> {
        self.conn().execute(
            "DELETE FROM rate_buckets WHERE at_ms < ?1",
            params![before_ms],
        )?;
        Ok(())
    }

    pub fn begin(&self, id: &Id, dataset: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO contributions (id, dataset, state, seq, created) VALUES (?1, ?2, 'preparing', NULL, ?3)",
            params![&id[..], dataset, super::now_secs()],
        ).context("cannot record the contribution")?;
        Ok(())
    }

    /// Decides commit: assigns the next sequence number of the dataset and queues the commit
    /// message for every party, in one transaction. Returns the sequence number.
    pub fn commit(&self, id: &Id) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let dataset: String = tx.query_row(
            "SELECT dataset FROM contributions WHERE id = ?1 AND state = 'preparing'",
            params![&id[..]],
            |r| r.get(0),
        )?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM contributions WHERE dataset = ?1",
            params![dataset],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE contributions SET state = 'committed', seq = ?2 WHERE id = ?1",
            params![&id[..], seq],
        )?;
        for party in 0..3 {
            tx.execute(
                "INSERT INTO outbox (id, party) VALUES (?1, ?2)",
                params![&id[..], party],
            )?;
        }
        tx.commit()?;
        Ok(seq as u64)
    }

    /// Decides abort of a contribution still being prepared, recording `reason` (what the
    /// provider is told when it asks for the outcome; never a value or a share).
    pub fn abort(&self, id: &Id, reason: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE contributions SET state = 'aborted' WHERE id = ?1 AND state = 'preparing'",
            params![&id[..]],
        )?;
        if n == 1 {
            tx.execute(
                "INSERT OR REPLACE INTO abort_reasons (id, reason) VALUES (?1, ?2)",
                params![&id[..], reason],
            )?;
            for party in 0..3 {
                tx.execute(
                    "INSERT OR IGNORE INTO outbox (id, party) VALUES (?1, ?2)",
                    params![&id[..], party],
                )?;
            }
        }
        tx.commit()?;
        // An attestation whose contribution failed may be tried again (within its age).
        conn.execute(
            "DELETE FROM attestations WHERE contribution = ?1",
            params![&id[..]],
        )?;
        Ok(())
    }

    /// Reserves an attestation for a contribution; false if it was used before.
    pub fn use_attestation(&self, attestation: &[u8; 32], id: &Id) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO attestations (id, contribution) VALUES (?1, ?2)",
            params![&attestation[..], &id[..]],
        )?;
        Ok(n == 1)
    }

    /// Contributions left undecided by a crash; they are aborted at startup.
    pub fn abort_undecided(&self) -> Result<Vec<Id>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM contributions WHERE state = 'preparing'")?;
        let ids = stmt
            .query_map([], |r| id_of(r.get(0)?))?
            .collect::<rusqlite::Result<Vec<Id>>>()?;
        for id in &ids {
            conn.execute(
                "INSERT OR REPLACE INTO abort_reasons (id, reason) VALUES (?1, ?2)",
                params![&id[..], "the coordinator restarted before it was decided"],
            )?;
            for party in 0..3 {
                conn.execute(
                    "INSERT OR IGNORE INTO outbox (id, party) VALUES (?1, ?2)",
                    params![&id[..], party],
                )?;
            }
        }
        conn.execute(
            "UPDATE contributions SET state = 'aborted' WHERE state = 'preparing'",
            [],
        )?;
        conn.execute(
            "DELETE FROM attestations WHERE contribution IN (SELECT id FROM contributions WHERE state = 'aborted')",
            [],
        )?;
        Ok(ids)
    }

    /// Decisions `party` has not acknowledged yet: the sequence number of a commit, or
    /// `None` for an abort.
    pub fn outbox(&self, party: usize) -> Result<Vec<(Id, Option<u64>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.seq FROM outbox o JOIN contributions c ON c.id = o.id WHERE o.party = ?1 ORDER BY c.created",
        )?;
        let rows = stmt.query_map(params![party as i64], |r| {
            Ok((
                id_of(r.get(0)?)?,
                r.get::<_, Option<i64>>(1)?.map(|s| s as u64),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delivered(&self, id: &Id, party: usize) -> Result<()> {
        self.conn().execute(
            "DELETE FROM outbox WHERE id = ?1 AND party = ?2",
            params![&id[..], party as i64],
        )?;
        Ok(())
    }

    /// What became of contribution `id`: `None` if it was never issued.
    pub fn outcome(&self, id: &Id) -> Result<Option<crate::wire::ContributionOutcome>> {
        use crate::wire::ContributionOutcome as O;
        let conn = self.conn();
        let row = conn.query_row(
            "SELECT c.dataset, c.state, c.seq, r.reason FROM contributions c \
             LEFT JOIN abort_reasons r ON r.id = c.id WHERE c.id = ?1",
            params![&id[..]],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        );
        let (dataset, state, seq, reason) = match row {
            Ok(r) => r,
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
            Err(e) => return Err(e).context("cannot read the contribution's state"),
        };
        Ok(Some(match (state.as_str(), seq) {
            ("committed", Some(seq)) => O::Committed {
                dataset,
                count: seq as u64,
            },
            ("aborted", _) => O::Aborted {
                reason: reason.unwrap_or_else(|| "not admitted".into()),
            },
            _ => O::Pending,
        }))
    }

    /// Committed contributions of a dataset (= its highest sequence number).
    pub fn count(&self, dataset: &str) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM contributions WHERE dataset = ?1 AND state = 'committed'",
            params![dataset],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_assigns_sequence_and_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let s = CoordinatorStore::open(&dir.path().join("c.db")).unwrap();
        s.begin(&[1; 16], "d").unwrap();
        s.begin(&[2; 16], "d").unwrap();
        s.begin(&[3; 16], "e").unwrap();
        assert_eq!(s.commit(&[2; 16]).unwrap(), 1);
        assert_eq!(s.commit(&[1; 16]).unwrap(), 2);
        assert!(s.commit(&[1; 16]).is_err());
        assert_eq!(s.count("d").unwrap(), 2);
        assert_eq!(s.outbox(1).unwrap().len(), 2);
        s.delivered(&[2; 16], 1).unwrap();
        assert_eq!(s.outbox(1).unwrap(), vec![([1; 16], Some(2))]);
        assert_eq!(s.abort_undecided().unwrap(), vec![[3; 16]]);
        assert_eq!(s.count("e").unwrap(), 0);
        // The abort waits in the outbox too, for every party.
        assert_eq!(s.outbox(0).unwrap().last(), Some(&([3; 16], None)));
        s.begin(&[4; 16], "d").unwrap();
        s.abort(&[4; 16], "first").unwrap();
        s.abort(&[4; 16], "second").unwrap();
        assert_eq!(
            s.outbox(2)
                .unwrap()
                .iter()
                .filter(|(id, _)| *id == [4; 16])
                .count(),
            1
        );
    }

    #[test]
    fn outcome_follows_each_decision_and_survives_reopening() {
        use crate::wire::ContributionOutcome as O;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let s = CoordinatorStore::open(&path).unwrap();
        for id in 1..=4u8 {
            s.begin(&[id; 16], "d").unwrap();
        }
        assert_eq!(s.outcome(&[1; 16]).unwrap(), Some(O::Pending));
        assert_eq!(s.outcome(&[9; 16]).unwrap(), None);
        s.commit(&[1; 16]).unwrap();
        s.commit(&[2; 16]).unwrap();
        s.abort(&[3; 16], "party 1: no submission within 20 s")
            .unwrap();
        // A second decision does not change the first one's outcome.
        s.abort(&[2; 16], "late").unwrap();
        drop(s);
        let s = CoordinatorStore::open(&path).unwrap();
        assert_eq!(s.abort_undecided().unwrap(), vec![[4; 16]]);
        let committed = |count| O::Committed {
            dataset: "d".into(),
            count,
        };
        assert_eq!(s.outcome(&[1; 16]).unwrap(), Some(committed(1)));
        assert_eq!(s.outcome(&[2; 16]).unwrap(), Some(committed(2)));
        assert_eq!(
            s.outcome(&[3; 16]).unwrap(),
            Some(O::Aborted {
                reason: "party 1: no submission within 20 s".into()
            })
        );
        assert!(matches!(
            s.outcome(&[4; 16]).unwrap(),
            Some(O::Aborted { reason }) if reason.contains("restarted")
        ));
    }
}
