//! A party's record of what it released, kept so that asking again reveals nothing new:
//! * the epoch size it first served each dataset with (a changed `cluster.toml` cannot move
//!   epoch boundaries, which would let two releases differ by fewer contributions);
//! * every answer it handed out, as its share pairs, so the same query over the same epoch
//!   gets the same answer (and, under differential privacy, the same noise);
//! * the charges against each dataset's budgets: distinct probing queries per epoch, and
//!   differential-privacy releases over the dataset's lifetime.
//!
//! It holds result shares only, never a plain result, and no contribution.

use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};

use super::PartyStore;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS epoch_sizes (
    dataset    TEXT PRIMARY KEY,
    epoch_size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    dataset TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    query   BLOB NOT NULL,
    count   INTEGER NOT NULL,
    pairs   BLOB NOT NULL,
    spent   INTEGER,
    created INTEGER NOT NULL,
    PRIMARY KEY (dataset, epoch, query)
);
CREATE TABLE IF NOT EXISTS charges (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    query   BLOB NOT NULL,
    kind    TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_dataset ON charges(dataset, kind, epoch);
";

/// An answer a party released: the count it was computed over, its share pairs of the
/// opened values, and under differential privacy the releases spent when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub count: u64,
    pub pairs: Vec<(u128, u128)>,
    pub spent: Option<u32>,
}

/// What a fresh computation of a query costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Nothing (a plain count, sum, mean, variance, min, max, median or Gini).
    Free,
    /// One of `cap` distinct probing queries of the epoch (asking the same one again is free).
    Probing { cap: u32 },
    /// One of the dataset's `releases` differentially private releases, over its lifetime.
    Private { releases: u32 },
}

/// A charge taken before a computation: `id` to cancel it if nothing was computed after all,
/// and under differential privacy the releases spent with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    pub id: Option<i64>,
    pub spent: Option<u32>,
}

/// Most result pairs one release may hold (the most a statistic opens, with room).
const MAX_PAIRS: usize = 1024;

fn encode_pairs(pairs: &[(u128, u128)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        .collect()
}

fn decode_pairs(bytes: &[u8]) -> Result<Vec<(u128, u128)>> {
    if !bytes.len().is_multiple_of(32) || bytes.len() / 32 > MAX_PAIRS {
        bail!("corrupt release: {} bytes of result pairs", bytes.len());
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let a = u128::from_le_bytes(c[..16].try_into().expect("16 bytes"));
            let b = u128::from_le_bytes(c[16..].try_into().expect("16 bytes"));
            (a, b)
        })
        .collect())
}

impl PartyStore {
    /// Records the epoch size `dataset` is served with, or checks it against the recorded
    /// one: epochs, once released, never move.
    pub fn pin_epoch_size(&self, dataset: &str, epoch_size: u64) -> Result<()> {
        let conn = self.conn();
        let known: Option<i64> = conn
            .query_row(
                "SELECT epoch_size FROM epoch_sizes WHERE dataset = ?1",
                params![dataset],
                |r| r.get(0),
            )
            .optional()?;
        match known {
            Some(k) if k as u64 == epoch_size => Ok(()),
            Some(k) => bail!(
                "dataset {dataset} was released in epochs of {k} contributions and the cluster \
                 file now says {epoch_size}; epochs cannot change once released (restore \
                 epoch_size = {k})"
            ),
            None => {
                conn.execute(
                    "INSERT INTO epoch_sizes (dataset, epoch_size) VALUES (?1, ?2)",
                    params![dataset, epoch_size as i64],
                )?;
                Ok(())
            }
        }
    }

    /// The answer this party released for `query` (a `Query::key`) over `epoch`, if any.
    pub fn release(&self, dataset: &str, epoch: u64, query: &[u8; 32]) -> Result<Option<Release>> {
        let conn = self.conn();
        let row: Option<(i64, Vec<u8>, Option<i64>)> = conn
            .query_row(
                "SELECT count, pairs, spent FROM releases WHERE dataset = ?1 AND epoch = ?2 AND query = ?3",
                params![dataset, epoch as i64, &query[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(count, pairs, spent)| {
            Ok(Release {
                count: count as u64,
                pairs: decode_pairs(&pairs)?,
                spent: spent.map(|s| s as u32),
            })
        })
        .transpose()
    }

    /// Keeps `release` as the answer to `query` over `epoch` (replacing an earlier one that
    /// not every party kept).
    pub fn keep_release(
        &self,
        dataset: &str,
        epoch: u64,
        query: &[u8; 32],
        release: &Release,
    ) -> Result<()> {
        if release.pairs.len() > MAX_PAIRS {
            bail!(
                "a release of {} values is too large to keep",
                release.pairs.len()
            );
        }
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO releases (dataset, epoch, query, count, pairs, spent, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    dataset,
                    epoch as i64,
                    &query[..],
                    release.count as i64,
                    encode_pairs(&release.pairs),
                    release.spent.map(i64::from),
                    super::super::now_secs()
                ],
            )
            .context("cannot keep the release")?;
        Ok(())
    }

    /// Takes the charge of a fresh computation of `query` over `epoch`, or refuses with the
    /// budget in the message. Check and charge are one step, so concurrent queries cannot
    /// both take the last unit.
    pub fn reserve(
        &self,
        dataset: &str,
        epoch: u64,
        query: &[u8; 32],
        charge: Charge,
    ) -> Result<Reserved> {
        let conn = self.conn();

        let insert = |kind: &str| -> Result<i64> {
            conn.execute(
                "INSERT INTO charges (dataset, epoch, query, kind, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![dataset, epoch as i64, &query[..], kind, super::super::now_secs()],
            )?;
            Ok(conn.last_insert_rowid())
        };
        match charge {
            Charge::Free => Ok(Reserved::default()),
            Charge::Probing { cap } => {
                let seen: Option<i64> = conn
                    .query_row(
                        "SELECT id FROM charges WHERE dataset = ?1 AND kind = 'probing' AND epoch = ?2 AND query = ?3",
                        params![dataset, epoch as i64, &query[..]],
                        |r| r.get(0),
                    )
                    .optional()?;
                if seen.is_some() {
                    return Ok(Reserved::default());
                }
                let used: i64 = conn.query_row(
                    "SELECT COUNT(DISTINCT query) FROM charges WHERE dataset = ?1 AND kind = 'probing' AND epoch = ?2",
                    params![dataset, epoch as i64],
                    |r| r.get(0),
                )?;
                let used = used as u32;
                if used >= cap {
                    bail!(
                        "query budget: dataset {dataset} answers at most {cap} distinct probing \
                         queries (a filter, a histogram, a quantile, a percentile or a Lorenz \
                         curve) per epoch, \
                         and epoch {epoch} has used {used}; repeat one of them, or ask again \
                         once the next epoch closes"
                    );
                }
                Ok(Reserved {
                    id: Some(insert("probing")?),
                    spent: None,
                })
            }
            Charge::Private { releases } => {
                let used = dp_spent(&conn, dataset)?;
                if used >= releases {
                    bail!(
                        "privacy budget: dataset {dataset} has spent all {releases} of its \
                         differentially private releases; earlier answers can still be asked \
                         again, new ones cannot be computed"
                    );
                }
                Ok(Reserved {
                    id: Some(insert("dp")?),
                    spent: Some(used + 1),
                })
            }
        }
    }

    /// Gives back a charge whose computation never started.
    pub fn cancel(&self, reserved: Reserved) -> Result<()> {
        if let Some(id) = reserved.id {
            self.conn()
                .execute("DELETE FROM charges WHERE id = ?1", params![id])?;
        }
        Ok(())
    }

    /// Differentially private releases `dataset` has spent.
    pub fn releases_spent(&self, dataset: &str) -> Result<u32> {
        dp_spent(&self.conn(), dataset)
    }
}

fn dp_spent(conn: &rusqlite::Connection, dataset: &str) -> Result<u32> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM charges WHERE dataset = ?1 AND kind = 'dp'",
        params![dataset],
        |r| r.get(0),
    )?;
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PartyStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = PartyStore::open(&dir.path().join("p.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn epoch_size_cannot_change_once_served() {
        let (_d, s) = store();
        s.pin_epoch_size("d", 10).unwrap();
        s.pin_epoch_size("d", 10).unwrap();
        let e = s.pin_epoch_size("d", 5).unwrap_err().to_string();
        assert!(e.contains("epochs cannot change"), "{e}");
        s.pin_epoch_size("other", 5).unwrap();
    }

    #[test]
    fn releases_are_kept_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let s = PartyStore::open(&path).unwrap();
        let r = Release {
            count: 20,
            pairs: vec![(1, u128::MAX), (3, 4)],
            spent: Some(2),
        };
        assert_eq!(s.release("d", 2, &[7; 32]).unwrap(), None);
        s.keep_release("d", 2, &[7; 32], &r).unwrap();
        drop(s);
        let s = PartyStore::open(&path).unwrap();
        assert_eq!(s.release("d", 2, &[7; 32]).unwrap(), Some(r));
        assert_eq!(s.release("d", 3, &[7; 32]).unwrap(), None);
        assert_eq!(s.release("d", 2, &[8; 32]).unwrap(), None);
    }

    #[test]
    fn probing_cap_counts_distinct_queries_per_epoch() {
        let (_d, s) = store();
        let cap = Charge::Probing { cap: 2 };
        s.reserve("d", 1, &[1; 32], cap).unwrap();
        // The same query again is free.
        assert_eq!(
            s.reserve("d", 1, &[1; 32], cap).unwrap(),
            Reserved::default()
        );
        s.reserve("d", 1, &[2; 32], cap).unwrap();
        let e = s.reserve("d", 1, &[3; 32], cap).unwrap_err().to_string();
        assert!(e.contains("at most 2 distinct probing queries"), "{e}");
        // The next epoch has its own cap; another dataset too.
        s.reserve("d", 2, &[3; 32], cap).unwrap();
        s.reserve("e", 1, &[3; 32], cap).unwrap();
        // A cancelled charge frees its unit.
        let r = s
            .reserve("d", 3, &[4; 32], Charge::Probing { cap: 1 })
            .unwrap();
        s.cancel(r).unwrap();
        s.reserve("d", 3, &[5; 32], Charge::Probing { cap: 1 })
            .unwrap();
    }

    #[test]
    fn privacy_budget_is_lifetime_and_charged_per_fresh_release() {
        let (_d, s) = store();
        let dp = Charge::Private { releases: 2 };
        assert_eq!(s.reserve("d", 1, &[1; 32], dp).unwrap().spent, Some(1));
        // Every fresh computation is charged, even of the same query (its noise is fresh).
        assert_eq!(s.reserve("d", 5, &[1; 32], dp).unwrap().spent, Some(2));
        let e = s.reserve("d", 9, &[2; 32], dp).unwrap_err().to_string();
        assert!(
            e.contains("all 2 of its differentially private releases"),
            "{e}"
        );
        assert_eq!(s.releases_spent("d").unwrap(), 2);
        assert_eq!(s.releases_spent("e").unwrap(), 0);
        assert_eq!(
            s.reserve("d", 1, &[1; 32], Charge::Free).unwrap(),
            Reserved::default()
        );
    }

    #[test]
    fn corrupt_release_is_an_error() {
        assert!(decode_pairs(&[0u8; 31]).is_err());
        assert!(decode_pairs(&vec![0u8; 32 * (MAX_PAIRS + 1)]).is_err());
        assert_eq!(
            decode_pairs(&encode_pairs(&[(5, 6)])).unwrap(),
            vec![(5, 6)]
        );
    }
}
