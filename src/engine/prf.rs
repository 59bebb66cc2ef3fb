//! Correlated randomness from pairwise seeds: zero sharings, random replicated sharings and
//! randomness common to a pair of neighbours, all without communication.
//!
//! Party i holds seed k_i (its own, shared with party i − 1) and k_{i+1} (received from
//! party i + 1). Seed k_j is thus held by exactly the parties that hold share component j.
//! Each seed drives two [`Prg`] streams: stream 0 for [`Correlated::zero_shares`] and
//! [`Correlated::random_shares`] (all three parties draw in lock step), stream 1 for
//! [`Correlated::common_with`] (only the two holders of the seed draw). Everything is
//! deterministic given the seeds. This module does not agree on seeds (see `session`) and
//! holds no networking.

use rand::SeedableRng;

use super::ring::Ring;
use super::share::Share;
use super::transport::Peer;

/// A 32-byte PRF seed.
pub type Seed = [u8; 32];

pub use super::prg::Prg;

/// The correlated randomness of one party.
pub struct Correlated {
    /// Stream 0 of k_i.
    own: Prg,
    /// Stream 0 of k_{i+1}.
    next: Prg,
    /// Stream 1 of k_i: common with party i − 1.
    own_common: Prg,
    /// Stream 1 of k_{i+1}: common with party i + 1.
    next_common: Prg,
}

fn stream(seed: Seed, id: u64) -> Prg {
    let mut rng = Prg::from_seed(seed);
    rng.set_stream(id);
    rng
}

fn draw<R: Ring>(rng: &mut Prg, n: usize) -> Vec<R> {
    (0..n).map(|_| R::random(rng)).collect()
}

impl Correlated {
    /// Party i's randomness from its own seed k_i and its next neighbour's seed k_{i+1}.
    pub fn new(own: Seed, next: Seed) -> Self {
        Correlated {
            own: stream(own, 0),
            next: stream(next, 0),
            own_common: stream(own, 1),
            next_common: stream(next, 1),
        }
    }

    /// This party's additive 3-out-of-3 shares of n zeros: α_i = F(k_i) − F(k_{i+1}).
    pub fn zero_shares<R: Ring>(&mut self, n: usize) -> Vec<R> {
        // Each stream is drawn in order, so interleaving the two changes no value.
        (0..n)
            .map(|_| R::random(&mut self.own) - R::random(&mut self.next))
            .collect()
    }

    /// The two parts F(k_i), F(k_{i+1}) of [`Correlated::zero_shares`], for proofs that
    /// need them apart; the same draws, so either call keeps the streams in lock step.
    pub fn zero_share_parts<R: Ring>(&mut self, n: usize) -> (Vec<R>, Vec<R>) {
        (draw(&mut self.own, n), draw(&mut self.next, n))
    }

    /// This party's XOR shares of `words` zero words (64 zero bits each):
    /// β_i = F(k_i) ⊕ F(k_{i+1}), drawn from stream 0 in lock step like
    /// [`Correlated::zero_shares`], so β_0 ⊕ β_1 ⊕ β_2 = 0.
    pub fn zero_bits(&mut self, words: usize) -> Vec<u64> {
        let (mut own, next) = self.zero_bit_parts(words);
        for (o, n) in own.iter_mut().zip(&next) {
            *o ^= n;
        }
        own
    }

    /// The two parts F(k_i), F(k_{i+1}) of [`Correlated::zero_bits`], for proofs that
    /// need them apart; the same draws, so either call keeps the streams in lock step.
    pub fn zero_bit_parts(&mut self, words: usize) -> (Vec<u64>, Vec<u64>) {
        let (mut own, mut next) = (vec![0; words], vec![0; words]);
        self.own.fill_u64(&mut own);
        self.next.fill_u64(&mut next);
        (own, next)
    }

    /// This party's pairs of a replicated sharing of n random values nobody knows:
    /// component j is F(k_j), so party i's pair is (F(k_i), F(k_{i+1})).
    pub fn random_shares<R: Ring>(&mut self, n: usize) -> Vec<Share<R>> {
        (0..n)
            .map(|_| Share {
                a: R::random(&mut self.own),
                b: R::random(&mut self.next),
            })
            .collect()
    }

    /// The two pairwise streams themselves, for draws other than ring elements (noise
    /// samplers): the stream of k_i (common with party i − 1, the other holder of
    /// component i) and that of k_{i+1} (common with party i + 1). The neighbours must make
    /// the same draws from them in the same order.
    pub fn common_streams(&mut self) -> (&mut Prg, &mut Prg) {
        (&mut self.own_common, &mut self.next_common)
    }

    /// n random values known to this party and neighbour `peer` only. The neighbour must
    /// make the mirror call (`common_with(Prev, n)` there for `Next` here).
    pub fn common_with<R: Ring>(&mut self, peer: Peer, n: usize) -> Vec<R> {
        match peer {
            Peer::Next => draw(&mut self.next_common, n),
            Peer::Prev => draw(&mut self.own_common, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::share::reconstruct;

    /// Party i gets (k_i, k_{i+1}).
    fn three() -> [Correlated; 3] {
        let k = [[1u8; 32], [2u8; 32], [3u8; 32]];
        [0, 1, 2].map(|i| Correlated::new(k[i], k[(i + 1) % 3]))
    }

    #[test]
    fn zero_shares_sum_to_zero() {
        let mut c = three();
        for n in [0, 1, 50] {
            let z: Vec<Vec<Z128>> = c.iter_mut().map(|p| p.zero_shares(n)).collect();
            assert_eq!(z[0].len(), n);
            for ((p, q), r) in z[0].iter().zip(&z[1]).zip(&z[2]) {
                assert_eq!(*p + *q + *r, Z128(0));
                assert_ne!(*p, Z128(0));
            }
        }
    }

    #[test]
    fn zero_bits_xor_to_zero() {
        let mut c = three();
        for n in [0, 1, 40] {
            let z: Vec<Vec<u64>> = c.iter_mut().map(|p| p.zero_bits(n)).collect();
            assert_eq!(z[2].len(), n);
            for ((p, q), r) in z[0].iter().zip(&z[1]).zip(&z[2]) {
                assert_eq!(p ^ q ^ r, 0);
                assert_ne!(*p, 0);
            }
        }
    }

    #[test]
    fn random_shares_are_consistent_and_fresh() {
        let mut c = three();
        let r: Vec<Vec<Share<Z64>>> = c.iter_mut().map(|p| p.random_shares(20)).collect();
        let values: Vec<Z64> = (0..20)
            .map(|j| reconstruct(&[r[0][j], r[1][j], r[2][j]]).unwrap())
            .collect();
        assert_ne!(values[0], values[1]);
        let again: Vec<Vec<Share<Z64>>> = c.iter_mut().map(|p| p.random_shares(1)).collect();
        assert_ne!(again[0][0], r[0][0]);
    }

    #[test]
    fn common_randomness_matches_only_the_pair() {
        let mut c = three();
        for i in 0..3 {
            let j = (i + 1) % 3;
            let mine: Vec<Z64> = c[i].common_with(Peer::Next, 5);
            let theirs: Vec<Z64> = c[j].common_with(Peer::Prev, 5);
            assert_eq!(mine, theirs);
        }
        // Streams are separate from the zero-share streams: still in lock step.
        let z: Vec<Vec<Z64>> = c.iter_mut().map(|p| p.zero_shares(3)).collect();
        assert_eq!(z[0][0] + z[1][0] + z[2][0], Z64(0));
        // Deterministic given the seeds.
        let mut d = three();
        let _: Vec<Z64> = d[0].common_with(Peer::Next, 5);
        let x: Vec<Z64> = d[0].common_with(Peer::Next, 1);
        let y: Vec<Z64> = three()[0].common_with(Peer::Next, 6);
        assert_eq!(x[0], y[5]);
    }
}
