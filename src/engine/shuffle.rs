//! Oblivious shuffle of replicated shares: one secret, uniformly random permutation applied to
//! every column of a table (records stay together), in three rounds.
//!
//! # Construction
//!
//! The shuffle is three passes, one per pair of parties (j, j + 1) for j = 0, 1, 2. In the pass
//! of pair (j, j + 1), with t = j + 2 the third party:
//!
//! * x = x_j + x_{j+1} + x_{j+2} is viewed as a 2-out-of-2 sharing of the pair: party j holds
//!   A = x_j + x_{j+1} (both its components), party j + 1 holds B = x_{j+2} (its `b`).
//! * Both derive π_j from randomness common to them (the stream of seed k_{j+1}, which t does
//!   not hold) and permute their part: π_j(A) + π_j(B) = π_j(x).
//! * The new components y_j and y_{j+2} are drawn fresh from the common streams of the pairs
//!   (j, t) and (j + 1, t) respectively; y_{j+1} = π_j(x) − y_j − y_{j+2} is formed by one
//!   exchange: party j sends π_j(A) − y_j to j + 1, party j + 1 sends π_j(B) − y_{j+2} to j,
//!   and both add the two masked parts.
//! * Party j ends with (y_j, y_{j+1}), party j + 1 with (y_{j+1}, y_{j+2}), party t with
//!   (y_{j+2}, y_j): a replicated sharing of π_j(x).
//!
//! One round per pass, all columns in one message, so 3 rounds in all; each party sends
//! n · columns ring elements in two of the three passes (2 · n · columns elements in total).
//!
//! # Security (semi-honest, one corrupted party)
//!
//! Consider one pass and a corrupted party P.
//! * If P = t, it receives nothing, and its new components y_{j+2}, y_j are fresh outputs of
//!   streams it shares with an honest party, independent of x and of π_j.
//! * If P = j, it receives π_j(B) − y_{j+2}; y_{j+2} is a fresh output of the stream of seed
//!   k_{j+2}, which P does not hold, so the message is uniformly random and independent of
//!   everything else P sees. Symmetrically for P = j + 1, whose incoming message is masked by
//!   y_j from the stream of seed k_j, which j + 1 does not hold.
//!
//! So every party's view of every pass is simulatable by uniform values (plus its own
//! permutations), and the output sharing is fresh. The overall permutation is
//! π = π_2 ∘ π_1 ∘ π_0; a party is the third party of exactly one pass and knows nothing of
//! that pass's permutation, which is uniform and independent of the other two, so π is
//! uniformly random and independent of the corrupted party's view.
//!
//! In a malicious session the same passes run over widened columns with a tag column and
//! are checked before the shuffle returns (`verify::shuffle_check`).
//!
//! Permutations are Fisher–Yates shuffles driven by a [`Prg`] stream whose 256-bit seed is
//! drawn from the pair's common randomness; indices are sampled without bias by rejection.

use crate::engine::prf::Prg;
use rand::{RngCore, SeedableRng};

use super::arith::{each_element, take_elements};
use super::error::{EngineError, Result};
use super::ring::{Ring, Z64};
use super::session::Session;
use super::share::Share;
use super::transport::{Expect, Outgoing, Peer, Transport};

/// A uniformly random integer in [0, bound), `bound` ≥ 1, without modulo bias: draws are
/// rejected in the incomplete top block of the u64 range.
pub(crate) fn uniform_below<G: RngCore>(rng: &mut G, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    // The largest multiple of `bound` that fits, minus one: accept draws ≤ zone.
    let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % bound;
        }
    }
}

/// A uniformly random permutation of 0..n (Fisher–Yates), as the list of source indices:
/// applying it to v gives w with w[i] = v[perm[i]].
pub(crate) fn random_permutation<G: RngCore>(rng: &mut G, n: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// The permutation of pass j, from 256 bits of randomness common with `peer`.
fn pass_permutation(c: &mut super::prf::Correlated, peer: Peer, n: usize) -> Vec<usize> {
    let words: Vec<Z64> = c.common_with(peer, 4);
    let mut seed = [0u8; 32];
    for (chunk, w) in seed.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.0.to_le_bytes());
    }
    random_permutation(&mut Prg::from_seed(seed), n)
}

impl<T: Transport> Session<T> {
    /// Applies one secret, uniformly random permutation to every column (all of the same
    /// length), so records stay together. Three rounds; each party sends
    /// 2 · n · columns ring elements. Unequal column lengths are `EngineError::Invalid`.
    pub async fn shuffle<R: Ring>(
        &mut self,
        columns: &[Vec<Share<R>>],
    ) -> Result<Vec<Vec<Share<R>>>> {
        self.shuffle_low(columns, R::BITS).await
    }

    /// [`Session::shuffle`] of columns whose values matter only mod 2^bits (keys compared
    /// on `bits` bits): against a malicious party the rows are guaranteed mod 2^bits only,
    /// which lets the tag check run in a narrower ring (`verify::shuffle_check`). Honest
    /// runs are exact at every bit, as with `shuffle`.
    pub async fn shuffle_low<R: Ring>(
        &mut self,
        columns: &[Vec<Share<R>>],
        bits: u32,
    ) -> Result<Vec<Vec<Share<R>>>> {
        let n = columns.first().map_or(0, Vec::len);
        if let Some(bad) = columns.iter().find(|c| c.len() != n) {
            return Err(EngineError::Invalid(format!(
                "shuffle: columns of different lengths {n} and {}",
                bad.len()
            )));
        }
        if self.malicious() {
            return self.tagged_shuffle(columns, n, bits.min(R::BITS)).await;
        }
        let mut flat: Vec<Share<R>> = columns.iter().flatten().copied().collect();
        for j in 0..3 {
            flat = self.shuffle_pass(j, flat, n).await?;
        }
        if n == 0 {
            return Ok(vec![Vec::new(); columns.len()]);
        }
        Ok(flat.chunks_exact(n).map(<[_]>::to_vec).collect())
    }

    /// The pass of pair (j, j + 1) on a flat column-major table with columns of length n.
    /// Each output is computed where it is needed: the masks are drawn a block at a time
    /// (in stream order, so the draws are those of one long draw), the permuted masked
    /// values are written straight into the result and encoded from it, and the received
    /// values are added into it; no whole-table temporaries.
    pub(crate) async fn shuffle_pass<R: Ring>(
        &mut self,
        j: usize,
        x: Vec<Share<R>>,
        n: usize,
    ) -> Result<Vec<Share<R>>> {
        let len = x.len();
        let me = self.id();
        let mut out: Vec<Share<R>> = Vec::with_capacity(len);
        if me == j || me == (j + 1) % 3 {
            // Party j holds A = x_j + x_{j+1} and masks with y_j, common with the third
            // party (its Prev); party j + 1 holds B = x_{j+2} and masks with y_{j+2},
            // common with the third party (its Next). Each sends π(value) − y to the other.
            let first = me == j;
            let (perm_peer, mask_peer, to) = if first {
                (Peer::Next, Peer::Prev, Peer::Next)
            } else {
                (Peer::Prev, Peer::Next, Peer::Prev)
            };
            let perm = pass_permutation(self.correlated(), perm_peer, n);
            let mut msg = Vec::with_capacity(len * R::BYTES);
            let mut masked = Vec::with_capacity(BLOCK.min(len));
            for start in (0..len).step_by(BLOCK) {
                let m = BLOCK.min(len - start);
                let y: Vec<R> = self.correlated().common_with(mask_peer, m);
                masked.clear();
                masked.extend(y.iter().enumerate().map(|(k, y)| {
                    let i = start + k;
                    let s = x[i / n * n + perm[i % n]];
                    let v = if first { s.a + s.b } else { s.b };
                    v - *y
                }));
                msg.extend_from_slice(&R::encode_slice(&masked));
                // Party j keeps (y_j, masked + theirs); party j + 1 (masked + theirs, y).
                out.extend(masked.iter().zip(&y).map(|(&v, &y)| {
                    if first {
                        Share { a: y, b: v }
                    } else {
                        Share { a: v, b: y }
                    }
                }));
            }
            drop(x);
            let (next, prev) = match to {
                Peer::Next => (Some(msg), None),
                Peer::Prev => (None, Some(msg)),
            };
            let expect = Expect {
                next: to == Peer::Next,
                prev: to == Peer::Prev,
            };
            let inc = self.exchange(Outgoing { next, prev }, expect).await?;
            let bytes = take_elements::<R>(if first { inc.next } else { inc.prev }, to, len)?;
            each_element::<R>(&bytes, |i, t| {
                if first {
                    out[i].b += t;
                } else {
                    out[i].a += t;
                }
            });
            Ok(out)
        } else {
            // The third party: y_{j+2} common with j + 1 (our Prev), y_j common with j (Next).
            drop(x);
            for start in (0..len).step_by(BLOCK) {
                let m = BLOCK.min(len - start);
                let y_mine: Vec<R> = self.correlated().common_with(Peer::Prev, m);
                let y_j: Vec<R> = self.correlated().common_with(Peer::Next, m);
                out.extend(y_mine.into_iter().zip(y_j).map(|(a, b)| Share { a, b }));
            }
            self.exchange(Outgoing::default(), Expect::default())
                .await?;
            Ok(out)
        }
    }
}

/// Elements per block of mask draws and encoding in a pass.
const BLOCK: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::run3;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::share::reconstruct;
    use crate::engine::transport::framed;
    use std::sync::Arc;

    /// Opens every column of `cols`, in one round.
    async fn open_cols<R: Ring, T: Transport>(
        s: &mut Session<T>,
        cols: &[Vec<Share<R>>],
    ) -> Result<Vec<Vec<R>>> {
        let n = cols.first().map_or(0, Vec::len);
        let flat: Vec<Share<R>> = cols.iter().flatten().copied().collect();
        let v = s.open(&flat).await?;
        if n == 0 {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        Ok(v.chunks_exact(n).map(<[_]>::to_vec).collect())
    }

    /// Party 0 inputs `cols`; all shuffle; returns the opened shuffled columns, the shuffle's
    /// counters delta and the raw output shares.
    async fn run_shuffle<R: Ring>(
        seed: u64,
        cols: Vec<Vec<R>>,
    ) -> [(Vec<Vec<R>>, u64, u64, Vec<Vec<Share<R>>>); 3] {
        let cols = Arc::new(cols);
        let out = run3(seed, move |mut s| {
            let cols = cols.clone();
            async move {
                let mut shared = Vec::new();
                for c in cols.iter() {
                    let mine = (s.id() == 0).then_some(&c[..]);
                    shared.push(s.input::<R>(0, mine, c.len()).await?);
                }
                let before = s.counters();
                let sh = s.shuffle(&shared).await?;
                let after = s.counters();
                let opened = open_cols(&mut s, &sh).await?;
                Ok((
                    opened,
                    after.rounds - before.rounds,
                    after.bytes_sent - before.bytes_sent,
                    sh,
                ))
            }
        })
        .await;
        out.map(|r| r.unwrap())
    }

    #[test]
    fn permutations_are_permutations_and_unbiased_sampling_is_in_range() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for n in [0usize, 1, 2, 10, 1000] {
            let mut p = random_permutation(&mut rng, n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
        for bound in [1u64, 2, 3, 7, 1 << 63, u64::MAX] {
            for _ in 0..100 {
                assert!(uniform_below(&mut rng, bound) < bound);
            }
        }
        // Every position of 0..3 takes every value, roughly uniformly.
        let mut counts = [[0u32; 3]; 3];
        for _ in 0..6000 {
            let p = random_permutation(&mut rng, 3);
            for (i, &v) in p.iter().enumerate() {
                counts[i][v] += 1;
            }
        }
        for row in counts {
            for c in row {
                assert!((1700..2300).contains(&c), "{counts:?}");
            }
        }
    }

    #[tokio::test]
    async fn shuffle_keeps_records_and_permutes() {
        let n = 1000;
        let keys: Vec<Z64> = (0..n as u64).map(|i| Z64(i * 7 + 3)).collect();
        let pay: Vec<Z64> = keys.iter().map(|k| Z64(k.0 * k.0 + 1)).collect();
        let out = run_shuffle(5, vec![keys.clone(), pay]).await;
        for (opened, rounds, bytes, _) in &out {
            assert_eq!(opened, &out[0].0);
            assert_eq!(*rounds, 3);
            // A party sends in two of the three passes, one frame of both columns each.
            assert_eq!(*bytes, 2 * framed(2 * n * 8));
        }
        let (k, p) = (&out[0].0[0], &out[0].0[1]);
        // Records stay together.
        for (a, b) in k.iter().zip(p) {
            assert_eq!(*b, Z64(a.0 * a.0 + 1));
        }
        // Same multiset, different order.
        let mut sorted = k.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        assert_ne!(*k, keys);
        let fixed = k.iter().zip(&keys).filter(|(a, b)| a == b).count();
        assert!(fixed < 20, "{fixed} fixed points");
        // A different seed gives a different permutation.
        let other = run_shuffle(6, vec![keys.clone()]).await;
        assert_ne!(other[0].0[0], *k);
        let mut sorted = other[0].0[0].clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    #[tokio::test]
    async fn shuffle_output_is_consistent_and_fresh_over_z128() {
        let vals: Vec<Z128> = (0..50u128).map(|i| Z128(i << 70 | i)).collect();
        let out = run_shuffle(7, vec![vals.clone(), vals.clone(), vals.clone()]).await;
        for c in 0..3 {
            let col: Vec<Z128> = (0..50)
                .map(|i| reconstruct(&[out[0].3[c][i], out[1].3[c][i], out[2].3[c][i]]).unwrap())
                .collect();
            assert_eq!(col, out[0].0[0]);
        }
        // Equal columns get independent components: the output sharing is fresh.
        for party in &out {
            for i in 0..50 {
                assert_ne!(party.3[0][i], party.3[1][i]);
                assert_ne!(party.3[1][i], party.3[2][i]);
            }
        }
        for (_, rounds, bytes, _) in &out {
            assert_eq!(*rounds, 3);
            assert_eq!(*bytes, 2 * framed(3 * 50 * 16));
        }
    }

    #[tokio::test]
    async fn empty_and_single_and_unequal_columns() {
        let out = run_shuffle::<Z64>(8, vec![vec![], vec![]]).await;
        for (opened, rounds, bytes, _) in &out {
            assert_eq!(opened, &vec![Vec::<Z64>::new(), vec![]]);
            // Two empty frames: the passes run even on no records.
            assert_eq!((*rounds, *bytes), (3, 2 * framed(0)));
        }
        let out = run_shuffle(9, vec![vec![Z64(42)]]).await;
        assert_eq!(out[1].0, vec![vec![Z64(42)]]);
        let out = run_shuffle::<Z64>(9, vec![]).await;
        assert!(out[2].0.is_empty());
        let out = run3(10, |mut s| async move {
            let a = s.correlated().random_shares::<Z64>(3);
            let b = s.correlated().random_shares::<Z64>(2);
            s.shuffle(&[a, b]).await
        })
        .await;
        for r in out {
            assert!(matches!(r, Err(EngineError::Invalid(_))));
        }
    }
}
