//! A verifier's side of the AND-gate proof kept in group form (`and_levels`) through the
//! plain levels: each level only records its challenge, and the last entries are
//! computed once at the end, piece by piece in cache. The values are exactly those of
//! materialising the side and folding it level by level (the proof, its soundness and its
//! zero knowledge do not change); what changes is the cost. The verifier needs its
//! vectors only for the last step, so it never writes them out: a piece of 64 groups
//! (4,096 entries, 32 KiB) is materialised, folded through up to 12 levels while it stays
//! in cache, and leaves 4,096 / 2^12 or more entries; the few left fold on as a plain
//! vector. Before, each verifier side was a vector of 8 entries per word, written once
//! and re-read at every level from memory. This module holds the arithmetic only: no
//! rounds, no randomness.

use super::and_levels::{USide, VSide};
use super::gf64::Gf64;
use super::recursion::VerifierSide;

/// Entries of a piece: 2^PIECE_LOG (64 groups of 64).
const PIECE_LOG: usize = 12;
const PIECE_GROUPS: usize = (1 << PIECE_LOG) / 64;

/// A group form whose entries can be written out a range of groups at a time.
pub(crate) trait Groups: Send + Sync {
    fn groups(&self) -> usize;
    /// The entries of groups g0..g1, 64 per group, into `out` (its allocation reused).
    fn materialise_groups(&self, g0: usize, g1: usize, out: &mut Vec<Gf64>);
}

impl Groups for USide {
    fn groups(&self) -> usize {
        USide::groups(self)
    }
    fn materialise_groups(&self, g0: usize, g1: usize, out: &mut Vec<Gf64>) {
        USide::materialise_groups(self, g0, g1, out)
    }
}

impl Groups for VSide {
    fn groups(&self) -> usize {
        VSide::groups(self)
    }
    fn materialise_groups(&self, g0: usize, g1: usize, out: &mut Vec<Gf64>) {
        VSide::materialise_groups(self, g0, g1, out)
    }
}

/// A side in group form, its plain levels' challenges, and (after `finish`) its entries.
pub(crate) struct Deferred<S> {
    pub side: S,
    challenges: Vec<Gf64>,
    entries: Vec<Gf64>,
}

impl<S: Groups> Deferred<S> {
    pub fn new(side: S) -> Self {
        Deferred {
            side,
            challenges: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<S: Groups> VerifierSide<Gf64> for Deferred<S> {
    fn fold(&mut self, r: Gf64) {
        self.challenges.push(r);
    }

    /// Piece k covers entries k · 2^12 onwards. Folding l ≤ 12 levels maps its entries to
    /// the plain vector's entries k · 2^(12 − l) onwards, because every piece but the last
    /// is a whole aligned block of 2^12 entries: at each of those levels the entries
    /// before the last piece are even in number, so a level's padding zero falls in the
    /// last piece exactly when the whole vector is padded. The levels beyond 12 then run on
    /// the pieces' results as on the plain vector.
    fn finish(&mut self) {
        let groups = self.side.groups();
        let inside = self.challenges.len().min(PIECE_LOG);
        let (first, rest) = self.challenges.split_at(inside);
        let len = (64 * groups).div_ceil(1 << inside);
        self.entries.clear();
        self.entries.resize(len, Gf64::ZERO);
        let side = &self.side;
        crate::engine::par::each_piece(
            &mut self.entries,
            1 << (PIECE_LOG - inside),
            || Vec::with_capacity(1 << PIECE_LOG),
            |buf: &mut Vec<Gf64>, k, dst| {
                let g0 = k * PIECE_GROUPS;
                side.materialise_groups(g0, (g0 + PIECE_GROUPS).min(groups), buf);
                for r in first {
                    buf.fold(*r);
                }
                dst.copy_from_slice(buf);
            },
        );
        for r in rest {
            self.entries.fold(*r);
        }
        if self.entries.is_empty() {
            self.entries.push(Gf64::ZERO);
        }
    }

    fn entries(&self) -> &[Gf64] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The deferred side's entries equal the materialised vector folded level by level
    /// (with the plain levels' padding), for sizes below, at and across a piece, with
    /// fewer levels than a piece holds, exactly as many, and more, on both sides' forms.
    #[test]
    fn deferred_entries_equal_the_plain_folds() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        for (groups, q) in [
            (1usize, 2usize),
            (3, 4),
            (63, 16),
            (64, 16),
            (65, 16),
            (200, 8),
            (1000, 16),
        ] {
            let u = USide {
                q,
                coef: (0..q * groups).map(|_| Gf64::random(&mut rng)).collect(),
                bits: (0..q * groups).map(|_| rng.gen()).collect(),
            };
            let v = VSide {
                q,
                coef: (0..q).map(|_| Gf64::random(&mut rng)).collect(),
                bits: (0..q * groups).map(|_| rng.gen()).collect(),
            };
            let n = 64 * groups;
            let all_levels = usize::BITS as usize - (n - 1).leading_zeros() as usize;
            for levels in [0, 1, 5, 6, 11, 12, 13, all_levels, all_levels + 2] {
                let rs: Vec<Gf64> = (0..levels).map(|_| Gf64::random(&mut rng)).collect();
                let mut plain_u = Vec::new();
                u.materialise_into(&mut plain_u);
                let mut plain_v = Vec::new();
                v.materialise_into(&mut plain_v);
                let mut du = Deferred::new(USide {
                    q,
                    coef: u.coef.clone(),
                    bits: u.bits.clone(),
                });
                let mut dv = Deferred::new(VSide {
                    q,
                    coef: v.coef.clone(),
                    bits: v.bits.clone(),
                });
                for r in &rs {
                    plain_u.fold(*r);
                    plain_v.fold(*r);
                    du.fold(*r);
                    dv.fold(*r);
                }
                plain_u.finish();
                plain_v.finish();
                du.finish();
                dv.finish();
                assert_eq!(
                    du.entries(),
                    &plain_u[..],
                    "U: {groups} groups, {levels} levels"
                );
                assert_eq!(
                    dv.entries(),
                    &plain_v[..],
                    "V: {groups} groups, {levels} levels"
                );
            }
        }
    }
}
