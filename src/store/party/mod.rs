//! A party's store: its replicated share pair (x_i, x_{i+1}) of every contribution, first as
//! `pending` (checked, waiting for the coordinator's decision), then `committed` with the
//! dataset sequence number the coordinator assigned. Queries read committed rows only.
//! What the party released and what it charged against each dataset's budgets is in
//! `releases`.

mod releases;

pub use releases::{Charge, Release, Reserved};

use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};

use crate::wire::Id;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS contributions (
    id       BLOB PRIMARY KEY,
    dataset  TEXT NOT NULL,
    a        BLOB NOT NULL,
    b        BLOB NOT NULL,
    seq      INTEGER,
    created  INTEGER NOT NULL,
    -- Proven contributions: the attestation used (single use) and a keyed hash of the
    -- account id (one contribution per account and dataset). NULL for unproven ones.
    attestation BLOB UNIQUE,
    account_tag BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS contributions_seq ON contributions(dataset, seq);
CREATE UNIQUE INDEX IF NOT EXISTS contributions_account ON contributions(dataset, account_tag);
";

/// Single-use markers of a proven contribution.
#[derive(Clone, Copy, Debug)]
pub struct Markers {
    pub attestation: [u8; 32],
    pub account_tag: [u8; 32],
}

/// Handle to a party's database; safe to share between tasks.
pub struct PartyStore {
    conn: Mutex<rusqlite::Connection>,
}

fn blob(v: u128) -> [u8; 16] {
    v.to_le_bytes()
}

fn unblob(b: Vec<u8>) -> Result<u128> {
    let arr: [u8; 16] = b
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("corrupt share: {} bytes, expected 16", b.len()))?;
    Ok(u128::from_le_bytes(arr))
}

impl PartyStore {
    pub fn open(path: &Path) -> Result<PartyStore> {
        Ok(PartyStore {
            conn: Mutex::new(super::open(path, &format!("{SCHEMA}{}", releases::SCHEMA))?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a checked share pair as pending. A second write of the same id is an error;
    /// so is a proven contribution whose attestation or account was used before (pending
    /// or committed).
    pub fn put_pending(
        &self,
        id: &Id,
        dataset: &str,
        a: u128,
        b: u128,
        markers: Option<Markers>,
    ) -> Result<()> {
        let conn = self.conn();
        if let Some(m) = markers {
            let used: Option<String> = conn
                .query_row(
                    "SELECT CASE WHEN attestation = ?1 THEN 'attestation' ELSE 'account' END
                     FROM contributions WHERE attestation = ?1 OR (dataset = ?2 AND account_tag = ?3)",
                    params![&m.attestation[..], dataset, &m.account_tag[..]],
                    |r| r.get(0),
                )
                .optional()?;
            match used.as_deref() {
                Some("attestation") => bail!("this attestation was already used"),
                Some(_) => bail!("this account already contributed to {dataset}"),
                None => {}
            }
        }
        conn.execute(
            "INSERT INTO contributions (id, dataset, a, b, seq, created, attestation, account_tag)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)",
            params![
                &id[..],
                dataset,
                &blob(a)[..],
                &blob(b)[..],
                super::now_secs(),
                markers.map(|m| m.attestation.to_vec()),
                markers.map(|m| m.account_tag.to_vec())
            ],
        )
        .context("cannot store the contribution")?;
        Ok(())
    }

    /// Marks a pending contribution committed as number `seq` of its dataset. Idempotent.
    pub fn commit(&self, id: &Id, seq: u64) -> Result<()> {
        let conn = self.conn();
        let current: Option<Option<i64>> = conn
            .query_row(
                "SELECT seq FROM contributions WHERE id = ?1",
                params![&id[..]],
                |r| r.get(0),
            )
            .optional()?;
        match current {
            None => bail!("commit for unknown contribution {}", hex::encode(id)),
            Some(Some(s)) if s as u64 == seq => Ok(()),
            Some(Some(s)) => bail!(
                "contribution {} is already committed as {s}, not {seq}",
                hex::encode(id)
            ),
            Some(None) => {
                conn.execute(
                    "UPDATE contributions SET seq = ?2 WHERE id = ?1",
                    params![&id[..], seq as i64],
                )?;
                Ok(())
            }
        }
    }

    /// Forgets a pending contribution (committed ones are never removed).
    pub fn abort(&self, id: &Id) -> Result<()> {
        self.conn().execute(
            "DELETE FROM contributions WHERE id = ?1 AND seq IS NULL",
            params![&id[..]],
        )?;
        Ok(())
    }

    /// The committed share pairs of `dataset` numbered 1..=upto, in order. Fails unless every
    /// one of them is here (a missed commit would make the parties compute over different sets).
    pub fn committed(&self, dataset: &str, upto: u64) -> Result<Vec<(u128, u128)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a, b FROM contributions WHERE dataset = ?1 AND seq IS NOT NULL AND seq <= ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![dataset, upto as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::with_capacity(upto.min(1 << 24) as usize);
        for row in rows {
            let (a, b) = row?;
            out.push((unblob(a)?, unblob(b)?));
        }
        if out.len() as u64 != upto {
            bail!(
                "this party has {} of the {upto} committed contributions of {dataset}",
                out.len()
            );
        }
        Ok(out)
    }

    /// Highest committed sequence number per dataset.
    pub fn committed_counts(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT dataset, MAX(seq) FROM contributions WHERE seq IS NOT NULL GROUP BY dataset ORDER BY dataset",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of rows of any state, for tests and status.
    pub fn rows(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM contributions", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_commit_abort() {
        let dir = tempfile::tempdir().unwrap();
        let s = PartyStore::open(&dir.path().join("p.db")).unwrap();
        s.put_pending(&[1; 16], "d", 5, u128::MAX, None).unwrap();
        s.put_pending(&[2; 16], "d", 6, 7, None).unwrap();
        assert!(s.put_pending(&[1; 16], "d", 5, 5, None).is_err());
        assert!(s.committed("d", 1).is_err());
        s.commit(&[1; 16], 1).unwrap();
        s.commit(&[1; 16], 1).unwrap();
        assert!(s.commit(&[1; 16], 2).is_err());
        assert_eq!(s.committed("d", 1).unwrap(), vec![(5, u128::MAX)]);
        s.abort(&[2; 16]).unwrap();
        s.abort(&[1; 16]).unwrap();
        assert_eq!(s.rows().unwrap(), 1);
        drop(s);
        let s = PartyStore::open(&dir.path().join("p.db")).unwrap();
        assert_eq!(s.committed_counts().unwrap(), vec![("d".to_string(), 1)]);
    }

    #[test]
    fn attestations_and_accounts_are_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let s = PartyStore::open(&dir.path().join("p.db")).unwrap();
        let m = |a: u8, t: u8| {
            Some(Markers {
                attestation: [a; 32],
                account_tag: [t; 32],
            })
        };
        s.put_pending(&[1; 16], "d", 1, 2, m(1, 1)).unwrap();
        let e = s.put_pending(&[2; 16], "d", 1, 2, m(1, 2)).unwrap_err();
        assert!(e.to_string().contains("attestation"), "{e}");
        let e = s.put_pending(&[3; 16], "d", 1, 2, m(3, 1)).unwrap_err();
        assert!(e.to_string().contains("account"), "{e}");
        // The same account may contribute to another dataset.
        s.put_pending(&[4; 16], "e", 1, 2, m(4, 1)).unwrap();
        // An aborted attempt frees its markers.
        s.abort(&[1; 16]).unwrap();
        s.put_pending(&[5; 16], "d", 1, 2, m(1, 1)).unwrap();
        // Unproven contributions carry no markers and never collide.
        s.put_pending(&[6; 16], "d", 1, 2, None).unwrap();
        s.put_pending(&[7; 16], "d", 1, 2, None).unwrap();
    }
}
